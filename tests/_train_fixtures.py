"""Fixtures for the encoding/training/evaluation tests: small structured PoseSets with a `uadd` field.

``moving_poseset`` builds bodies from an H36M-17 template that turn and sway smoothly over
time (so temporal lifters have real motion to use), seen by a 1000x1000 camera ~4-6 m away;
``add_uadd`` synthesises the depth descriptor from the true joint depths (noise, a local
spread, some invalid joints flagged in ``uadd_valid`` and set to NaN).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from auglift.geometry import project
from auglift.poseset import ClipTable, PoseSet

# A standing H36M-17 body in metres (x right, y down, z forward), pelvis at the origin.
TEMPLATE = np.array([
    [0.00, 0.00, 0.00],  # pelvis
    [-0.13, 0.00, 0.00], [-0.13, 0.45, 0.02], [-0.13, 0.88, 0.05],  # right hip, knee, foot
    [0.13, 0.00, 0.00], [0.13, 0.45, 0.02], [0.13, 0.88, 0.05],  # left hip, knee, foot
    [0.00, -0.24, 0.00], [0.00, -0.50, 0.00], [0.00, -0.58, -0.06], [0.00, -0.70, 0.00],  # spine .. head
    [0.17, -0.48, 0.00], [0.30, -0.24, 0.00], [0.33, 0.00, -0.05],  # left shoulder, elbow, wrist
    [-0.17, -0.48, 0.00], [-0.30, -0.24, 0.00], [-0.33, 0.00, -0.05],  # right shoulder, elbow, wrist
], dtype=np.float64)


def moving_poseset(n_clips: int = 4, frames: int | list[int] = 24, seed: int = 0, *,
                   splits: tuple[str, ...] = ("train", "test"), noise_px: float = 2.0) -> PoseSet:
    """Smoothly moving bodies: yaw turns, swaying limbs, drifting root; detections = projection + noise."""
    rng = np.random.default_rng(seed)
    counts = [frames] * n_clips if isinstance(frames, int) else list(frames)
    kp3d_all, clip, frame = [], [], []
    for c, t_n in enumerate(counts):
        t = np.arange(t_n)[:, None]
        yaw = rng.uniform(-np.pi, np.pi) + rng.uniform(-0.08, 0.08) * t[:, 0]
        amp = rng.uniform(0.0, 0.12, (17, 3))
        amp[0] = 0.0
        phase = rng.uniform(0, 2 * np.pi, (17, 3))
        omega = rng.uniform(0.1, 0.3)
        body = TEMPLATE[None] * rng.uniform(0.9, 1.1) + amp[None] * np.sin(omega * t[:, :, None] + phase[None])
        cs, sn = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
        rot = np.stack([cs * body[..., 0] + sn * body[..., 2], body[..., 1], -sn * body[..., 0] + cs * body[..., 2]],
                       -1)
        root = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.1, 0.3), rng.uniform(4.0, 6.0)])
        root = root + np.concatenate([rng.uniform(-0.01, 0.01, 2), [rng.uniform(-0.02, 0.02)]]) * t
        kp3d_all.append(rot + root[:, None, :])
        clip.append(np.full(t_n, c))
        frame.append(np.arange(t_n))
    kp3d = np.concatenate(kp3d_all).astype(np.float32)
    clip_a = np.concatenate(clip).astype(np.int32)
    intr = np.tile([1145.0, 1145.0, 500.0, 500.0], (len(counts), 1))
    kp2d_gt = project(kp3d, intr[clip_a]).astype(np.float32)
    n = len(kp3d)
    fields = {
        "clip": clip_a, "frame": np.concatenate(frame).astype(np.int32),
        "kp2d": (kp2d_gt + rng.normal(0, noise_px, kp2d_gt.shape)).astype(np.float32),
        "conf": rng.uniform(0.5, 1.0, (n, 17)).astype(np.float32),
        "kp3d": kp3d, "kp2d_gt": kp2d_gt,
        "visible": rng.uniform(size=(n, 17)) > 0.25,
    }
    k = len(counts)
    clips = ClipTable(subject=[f"S{1 + i % 3}" for i in range(k)],
                      action=[("walk", "sit", "wave")[i % 3] for i in range(k)],
                      camera=[str(i % 4) for i in range(k)], split=[splits[i % len(splits)] for i in range(k)],
                      width=[1000] * k, height=[1000] * k, intrinsics=intr, fps=[50.0] * k)
    return PoseSet(fields, clips, {"source": "test:moving"})


def add_uadd(ps: PoseSet, seed: int = 0, *, noise: float = 0.02, invalid: float = 0.05,
             depth_model: Any = "oracle-metric") -> PoseSet:
    """``ps`` plus ``uadd`` (d = true joint depth + noise, d_min/d_max = d -/+ a spread) and ``uadd_valid``."""
    rng = np.random.default_rng(seed)
    z = np.asarray(ps.kp3d[..., 2], dtype=np.float64)
    d = z + rng.normal(0, noise, z.shape)
    spread = rng.uniform(0.0, 0.15, (*z.shape, 2))
    uadd = np.stack([d, d - spread[..., 0], d + spread[..., 1]], -1).astype(np.float32)
    valid = rng.uniform(size=z.shape) >= invalid
    uadd[~valid] = np.nan
    return ps.with_fields({"depth_model": depth_model}, uadd=uadd, uadd_valid=valid)


def repeat_poseset(ps: PoseSet, k: int) -> PoseSet:
    """``ps`` with all its clips repeated ``k`` times (as new clips): more steps per epoch, same poses."""
    n, c = len(ps), len(ps.clips)
    fields = {name: np.concatenate([a] * k) for name, a in ps.fields.items()}
    fields["clip"] = (np.asarray(ps.clip)[None] + c * np.arange(k)[:, None]).ravel().astype(np.int32)
    assert len(fields["clip"]) == n * k
    clips = ClipTable.concatenate([ps.clips] * k)
    return PoseSet(fields, clips, ps.meta)


# Small, fast configurations of the registered lifters (keyword arguments of auglift.models.build).
# Lifters not (yet) registered are skipped by the tests that iterate over auglift.models.MODELS.
TINY_MODELS: dict[str, dict[str, Any]] = {
    "simple_baseline": {"width": 64, "num_blocks": 1, "dropout": 0.0},
    "tcn": {"receptive_field": 9, "filter_widths": [3, 3], "channels": 64, "dropout": 0.0},
    "poseformer": {"receptive_field": 9, "embed_dim_ratio": 16, "depth": 2, "num_heads": 2, "drop_path_rate": 0.0},
    "motionbert": {"receptive_field": 8, "dim_feat": 32, "mlp_ratio": 2, "dim_rep": 32, "depth": 1, "num_heads": 4},
}


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """Write a TOML config from ``{"section": {key: value}}`` (dotted section names allowed)."""
    lines = []
    for sec, kv in sections.items():
        lines.append(f"[{sec}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in kv.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def tiny_config(train: Path, val: Path | None, out: Path, *, model: str = "simple_baseline",
                kwargs: dict[str, Any] | None = None, channels: str = "uadd", epochs: int = 3, batch: int = 16,
                lr: float = 3e-3, extra: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Sections of a small CPU training config (as a dict; write it with :func:`write_config`)."""
    sec: dict[str, dict[str, Any]] = {
        "data.train": {"path": str(train), "split": "train"},
        "model": {"name": model},
        "model.kwargs": dict(TINY_MODELS.get(model, {}) if kwargs is None else kwargs),
        "input": {"channels": channels},
        "optim": {"optimizer": "adam", "lr": lr, "epochs": epochs, "batch_size": batch, "lr_decay": 0.95},
        "runtime": {"seed": 0, "threads": 1, "progress": False, "log": False, "out": str(out)},
    }
    if val is not None:
        sec["data.val"] = {"path": str(val), "split": "test"}
    for k, v in (extra or {}).items():
        sec.setdefault(k, {}).update(v)
    return sec


def subprocess_env() -> dict[str, str]:
    """Environment for child Python processes: the test tree importable, 1 thread, no GPU."""
    env = dict(os.environ)
    here = str(Path(__file__).parent)
    env["PYTHONPATH"] = os.pathsep.join([here, *(p for p in sys.path if p)])
    env["OMP_NUM_THREADS"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


# --------------------------------------------------------------------------- test-only lifters


class TinyTemporal(nn.Module):
    """Test-only lifter (no BatchNorm, no dropout): per-frame Linear, one temporal Conv1d, Linear.

    ``(B, T, J, C) -> (B, 1, J, 3)`` (centre frame, or last when ``causal``) or ``(B, T, J, 3)``
    with ``many_to_many``. Built by name ``"_train_fixtures:TinyTemporal"``.
    """

    def __init__(self, in_channels: int, num_joints: int = 17, window: int = 5, width: int = 64,
                 many_to_many: bool = False, causal: bool = False):
        super().__init__()
        self.receptive_field, self.many_to_many, self.causal = window, many_to_many, causal
        self.inp = nn.Linear(num_joints * in_channels, width)
        self.conv = nn.Conv1d(width, width, 3, padding=1)
        self.out = nn.Linear(width, num_joints * 3)
        self.num_joints = num_joints

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        h = torch.relu(self.inp(x.reshape(b, t, -1)))
        h = h + torch.relu(self.conv(h.transpose(1, 2))).transpose(1, 2)
        y = self.out(h).view(b, t, self.num_joints, 3)
        if self.many_to_many:
            return y
        i = t - 1 if self.causal else t // 2
        return y[:, i: i + 1]


TINY = "_train_fixtures:TinyTemporal"
