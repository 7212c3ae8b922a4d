"""Benchmark: 2D detector throughput per stage (RTMDet-m + RTMPose-l on ONNX Runtime; MediaPipe Pose).

No weights can be downloaded, so the RTM models are rebuilt here with random weights and the
real architectures' structure and compute, then exported to ONNX with the signatures of
MMDeploy's exports and run through :class:`auglift.detectors.rtm.RTMPoseDetector`:

* **RTMDet-m-like** (640x640): CSPNeXt backbone (deepen 0.67, widen 0.75: stem, 4 stages of
  strided 3x3 conv + CSP layers of CSPNeXt blocks with 5x5 depthwise convs and channel
  attention, SPPF-style bottleneck in the last stage), CSPNeXt-PAFPN neck (192 channels) and a
  2-conv shared head per level, one class. The exported end-to-end graph decodes boxes and
  keeps the top 100 by score (``dets (N, 100, 5)``, ``labels``); the real export runs NMS on
  them, which costs little next to the 39 GMAC network.
* **RTMPose-l-like** (256x192): CSPNeXt-l backbone (deepen 1, widen 1, last stage only),
  RTMCC head (7x7 conv to 17 maps, a linear layer to 256, one gated attention unit over the 17
  tokens, SimCC classifiers to 384 and 512 bins).

The script prints the graphs' multiply-accumulates (torch's FLOP counter / 2) and parameters next
to the published figures (RTMDet-m: 39.27 GMAC, 24.71 M; RTMPose-l 256x192: 4.16 GMAC,
27.66 M), then frames/s per stage on H36M-sized 1000x1000 frames, one person per frame
(``max_people=1``; random weights find "someone" everywhere): ``detector`` (letterbox +
RTMDet), ``pose`` (affine crops + RTMPose), ``conversion`` (person choice + H36M-17). With
``.venv-mediapipe`` present (``make test-mediapipe``) it also times MediaPipe Pose there on a
real photo (``skimage.data.astronaut()`` on a 1000x1000 canvas), per frame (static image mode, as
``detect`` runs it) and tracking across frames. For comparison, rtmlib's own ``RTMDet`` and
``RTMPose`` classes (one image / one box per session call, the same ONNX files and thread count)
time the same frames.

Usage: ``python benchmarks/bench_detect.py [--threads 2] [--frames 8] [--det-batch 4] [--rounds 2]``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep on a shared machine

import argparse
import contextlib
import io
import json
import logging
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from auglift.detectors.rtm import RTMPoseDetector

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = {"RTMDet-m": (39.27, 24.71), "RTMPose-l": (4.16, 27.66)}  # GMAC, M parameters


# ----------------------------------------------------------------------------- CSPNeXt building blocks
def conv(cin: int, cout: int, k: int = 1, s: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv + BatchNorm + SiLU (an MMCV ConvModule)."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


class CSPNeXtBlock(nn.Module):
    """3x3 conv, then a depthwise-separable 5x5 conv; residual when ``add``."""

    def __init__(self, c: int, add: bool):
        super().__init__()
        self.add = add
        self.body = nn.Sequential(conv(c, c, 3), conv(c, c, 5, groups=c), conv(c, c, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.add else self.body(x)


class CSPLayer(nn.Module):
    """Two 1x1 branches (half width), CSPNeXt blocks on one, concatenation, channel attention, 1x1 out."""

    def __init__(self, cin: int, cout: int, blocks: int, add: bool, attention: bool):
        super().__init__()
        mid = cout // 2
        self.main, self.short = conv(cin, mid), conv(cin, mid)
        self.blocks = nn.Sequential(*[CSPNeXtBlock(mid, add) for _ in range(blocks)])
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(2 * mid, 2 * mid, 1), nn.Hardsigmoid()) \
            if attention else None
        self.final = conv(2 * mid, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.blocks(self.main(x)), self.short(x)], 1)
        if self.attention is not None:
            y = y * self.attention(y)
        return self.final(y)


class SPPBottleneck(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.reduce, self.out = conv(c, c // 2), conv(2 * c, c)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in (5, 9, 13))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.reduce(x)
        return self.out(torch.cat([x, *(p(x) for p in self.pools)], 1))


class CSPNeXt(nn.Module):
    """The P5 CSPNeXt backbone; returns the stride-8, -16 and -32 feature maps."""

    def __init__(self, deepen: float, widen: float):
        super().__init__()
        ch = [int(c * widen) for c in (64, 128, 256, 512, 1024)]
        n = [max(round(b * deepen), 1) for b in (3, 6, 6, 3)]
        half = ch[0] // 2
        self.stem = nn.Sequential(conv(3, half, 3, 2), conv(half, half, 3), conv(half, ch[0], 3))
        self.stages = nn.ModuleList()
        for i in range(4):
            layers = [conv(ch[i], ch[i + 1], 3, 2)] + ([SPPBottleneck(ch[i + 1])] if i == 3 else [])
            layers.append(CSPLayer(ch[i + 1], ch[i + 1], n[i], add=i < 3, attention=True))
            self.stages.append(nn.Sequential(*layers))
        self.channels = ch[2:]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs[1:]


# ----------------------------------------------------------------------------- RTMDet-m-like
class RTMDetLike(nn.Module):
    """CSPNeXt-m + PAFPN + shared-conv head (1 class); output ``dets (N, 100, 5)``, ``labels (N, 100)``."""

    def __init__(self, deepen: float = 0.67, widen: float = 0.75, topk: int = 100):
        super().__init__()
        self.backbone = CSPNeXt(deepen, widen)
        c3, c4, c5 = self.backbone.channels
        nb, out = max(round(3 * deepen), 1), int(256 * widen)
        self.reduce5, self.reduce4 = conv(c5, c4), conv(c4, c3)
        self.td4 = CSPLayer(2 * c4, c4, nb, add=False, attention=False)
        self.td3 = CSPLayer(2 * c3, c3, nb, add=False, attention=False)
        self.down3, self.down4 = conv(c3, c3, 3, 2), conv(c4, c4, 3, 2)
        self.bu4 = CSPLayer(2 * c3, c4, nb, add=False, attention=False)
        self.bu5 = CSPLayer(2 * c4, c5, nb, add=False, attention=False)
        self.outs = nn.ModuleList([conv(c3, out, 3), conv(c4, out, 3), conv(c5, out, 3)])
        self.cls_convs = nn.ModuleList(nn.Sequential(conv(out, out, 3), conv(out, out, 3)) for _ in range(3))
        self.reg_convs = nn.ModuleList(nn.Sequential(conv(out, out, 3), conv(out, out, 3)) for _ in range(3))
        self.cls, self.reg = nn.Conv2d(out, 1, 1), nn.Conv2d(out, 4, 1)
        self.topk = topk

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p3, p4, p5 = self.backbone(x)
        r5 = self.reduce5(p5)
        t4 = self.td4(torch.cat([nn.functional.interpolate(r5, scale_factor=2.0), p4], 1))
        r4 = self.reduce4(t4)
        n3 = self.td3(torch.cat([nn.functional.interpolate(r4, scale_factor=2.0), p3], 1))
        n4 = self.bu4(torch.cat([self.down3(n3), r4], 1))
        n5 = self.bu5(torch.cat([self.down4(n4), r5], 1))
        scores, boxes = [], []
        for lvl, (f, stride) in enumerate(zip((n3, n4, n5), (8, 16, 32))):
            f = self.outs[lvl](f)
            s = self.cls(self.cls_convs[lvl](f)).flatten(1)  # (N, A)
            r = self.reg(self.reg_convs[lvl](f)).flatten(2).transpose(1, 2)  # (N, A, 4) distances
            h, w = f.shape[2:]
            ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            pts = torch.stack([xs, ys], -1).reshape(1, -1, 2).to(x.dtype) * stride
            d = r.exp() * stride
            boxes.append(torch.cat([pts - d[..., :2], pts + d[..., 2:]], -1))
            scores.append(s.sigmoid())
        score, idx = torch.cat(scores, 1).topk(self.topk, dim=1)
        box = torch.gather(torch.cat(boxes, 1), 1, idx[..., None].expand(-1, -1, 4))
        return torch.cat([box, score[..., None]], -1), torch.zeros_like(idx)


# ----------------------------------------------------------------------------- RTMPose-l-like
class GAU(nn.Module):
    """A gated attention unit over the keypoint tokens (RTMCC's block, single head)."""

    def __init__(self, dim: int = 256, expansion: int = 2, s: int = 128):
        super().__init__()
        self.e, self.s = dim * expansion, s
        self.norm = nn.LayerNorm(dim)
        self.uv = nn.Linear(dim, 2 * self.e + s)
        self.gamma = nn.Parameter(torch.randn(2, s) * 0.02)
        self.o = nn.Linear(self.e, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, v, base = torch.split(nn.functional.silu(self.uv(self.norm(x))), [self.e, self.e, self.s], -1)
        qk = base[..., None, :] * self.gamma  # (N, T, 2, s): per-dimension scaled queries and keys
        attn = torch.relu(qk[..., 0, :] @ qk[..., 1, :].transpose(1, 2) / self.s**0.5) ** 2
        return x + self.o(u * (attn @ v))


class RTMPoseLike(nn.Module):
    """CSPNeXt-l (last stage) + RTMCC head; outputs ``simcc_x (N, 17, 384)``, ``simcc_y (N, 17, 512)``."""

    def __init__(self, joints: int = 17, size: tuple[int, int] = (256, 192)):
        super().__init__()
        self.backbone = CSPNeXt(1.0, 1.0)
        h, w = size
        self.final = nn.Conv2d(1024, joints, 7, padding=3)
        self.mlp = nn.Sequential(nn.LayerNorm((h // 32) * (w // 32)), nn.Linear((h // 32) * (w // 32), 256))
        self.gau = GAU()
        self.cls_x, self.cls_y = nn.Linear(256, 2 * w), nn.Linear(256, 2 * h)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.final(self.backbone(x)[-1]).flatten(2)
        t = self.gau(self.mlp(f))
        return self.cls_x(t), self.cls_y(t)


# ----------------------------------------------------------------------------- export, measure
def macs_and_params(model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2e9, sum(p.numel() for p in model.parameters()) / 1e6


def export(model: nn.Module, x: torch.Tensor, path: Path, outputs: list[str]) -> Path:
    quiet = logging.getLogger("torch.onnx")
    quiet.setLevel(logging.ERROR)
    log = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=True, input_names=["input"], output_names=outputs,
                          dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=256)},), external_data=False)
    return path


def frames(n: int, size: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def time_rtm(det_path: Path, pose_path: Path, args: argparse.Namespace) -> dict[str, float]:
    imgs = frames(args.frames)
    det = RTMPoseDetector(det_path, pose_path, threads=args.threads, det_batch=args.det_batch, pose_batch=32,
                          score_threshold=0.0, max_people=1)
    det(imgs[: args.det_batch])  # warm-up
    totals = dict.fromkeys(("detector", "pose", "conversion"), 0.0)
    t0 = time.perf_counter()
    for s in range(0, len(imgs), args.det_batch):
        out = det(imgs[s:s + args.det_batch])
        assert out.valid.all()
        for k, v in out.timings.items():
            totals[k] += v
    wall = time.perf_counter() - t0
    return {k: len(imgs) / v for k, v in totals.items()} | {"end_to_end": len(imgs) / wall}


def time_rtmlib(det_path: Path, pose_path: Path, args: argparse.Namespace) -> dict[str, float]:
    """rtmlib's own RTMDet / RTMPose classes (one image, one box per session call) on the same files."""
    import onnxruntime as ort
    import rtmlib

    imgs = frames(args.frames)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    with contextlib.redirect_stdout(io.StringIO()):  # rtmlib prints a line per model it loads
        det = rtmlib.RTMDet(str(det_path), backend="onnxruntime")
        pose = rtmlib.RTMPose(str(pose_path), model_input_size=(192, 256), backend="onnxruntime")
    for tool, path in ((det, det_path), (pose, pose_path)):  # the same thread count as ours
        tool.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    bgr = np.ascontiguousarray(imgs[..., ::-1])
    det(bgr[0])  # warm-up
    t0 = time.perf_counter()
    boxes = [det(img)[:1] for img in bgr]
    t1 = time.perf_counter()
    for img, box in zip(bgr, boxes):
        pose(img, bboxes=list(box))
    t2 = time.perf_counter()
    return {"detector": len(imgs) / (t1 - t0), "pose": len(imgs) / (t2 - t1)}


MEDIAPIPE_SCRIPT = r"""
import json, sys, time
import numpy as np
from skimage import data
from auglift.detectors import build_detector
n = int(sys.argv[1])
canvas = np.full((1000, 1000, 3), 100, np.uint8)
canvas[244:756, 244:756] = data.astronaut()
imgs = np.repeat(canvas[None], n, 0)
res = {}
for static in (True, False):
    with build_detector("mediapipe", static_image_mode=static) as det:
        det(imgs[:2])
        t0 = time.perf_counter()
        out = det(imgs)
        wall = time.perf_counter() - t0
    assert out.valid.all()
    rates = {k: n / v for k, v in out.timings.items() if v > 0}
    res["static" if static else "tracking"] = rates | {"end_to_end": n / wall}
print(json.dumps(res))
"""


def time_mediapipe(n: int) -> dict | str:
    python = REPO / ".venv-mediapipe" / "bin" / "python"
    if not python.exists():
        return "not run: .venv-mediapipe is missing (make test-mediapipe builds it)"
    env = os.environ | {"OMP_NUM_THREADS": "2"}
    out = subprocess.run([str(python), "-c", MEDIAPIPE_SCRIPT, str(n)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return "failed: " + (out.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--det-batch", type=int, default=4)
    ap.add_argument("--mediapipe-frames", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs, onnxruntime threads {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, model, shape, outs in (("RTMDet-m", RTMDetLike(), (1, 3, 640, 640), ["dets", "labels"]),
                                         ("RTMPose-l", RTMPoseLike(), (1, 3, 256, 192), ["simcc_x", "simcc_y"])):
            model.eval()
            x = torch.randn(shape)
            gmac, mparams = macs_and_params(model, x)
            real_gmac, real_params = PUBLISHED[name]
            print(f"{name}-like: {gmac:.2f} GMAC ({real_gmac} published), {mparams:.2f} M parameters "
                  f"({real_params} published), input {shape[2]}x{shape[3]}")
            paths[name] = export(model, x, Path(tmp) / f"{name}.onnx", outs)
        rates: dict[str, float] = {}
        original: dict[str, float] = {}
        for _ in range(args.rounds):  # alternate the two sides; keep each one's best round
            for best, fn in ((rates, time_rtm), (original, time_rtmlib)):
                for k, v in fn(paths["RTMDet-m"], paths["RTMPose-l"], args).items():
                    best[k] = max(best.get(k, 0.0), v)
    print(f"RTMDet-m + RTMPose-l, {args.frames} frames 1000x1000, 1 person/frame, detector batch {args.det_batch}, "
          f"best of {args.rounds} alternating rounds:")
    for k, v in rates.items():
        ref = f"   rtmlib per image/box {original[k]:6.2f} frames/s ({v / original[k]:.2f}x)" if k in original else ""
        print(f"  {k:<11} {v:8.2f} frames/s{ref}")
    mp_rates = time_mediapipe(args.mediapipe_frames)
    if isinstance(mp_rates, str):
        print(f"MediaPipe Pose: {mp_rates}")
    else:
        for mode, r in mp_rates.items():
            print(f"MediaPipe Pose ({mode}), {args.mediapipe_frames} frames 1000x1000: "
                  + ", ".join(f"{k} {v:.1f} frames/s" for k, v in r.items()))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
