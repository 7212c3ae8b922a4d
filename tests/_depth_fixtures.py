"""Fixtures for the depth tests: tiny Depth Anything V2 models (transformers and official layout),
a functional reference of the official forward pass, small PoseSets with real encoded videos and
image sequences, and a cheap deterministic image estimator."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from auglift.depth.estimators import DepthEstimator
from auglift.poseset import ClipTable, PoseSet

# ----------------------------------------------------------------------------- tiny transformers model
TINY = {"hidden": 32, "layers": 4, "heads": 2, "mlp": 64, "features": 16, "out_channels": [8, 16, 24, 32],
        "blocks": [0, 1, 2, 3], "grid": 4, "head_hidden": 32}


def tiny_transformers_model(kind: str = "relative", max_depth: int = 20, seed: int = 0) -> Any:
    """A randomly initialised DepthAnythingForDepthEstimation with DA-V2's structure at toy size."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    torch.manual_seed(seed)
    t = TINY
    backbone = Dinov2Config(hidden_size=t["hidden"], num_hidden_layers=t["layers"], num_attention_heads=t["heads"],
                            mlp_ratio=t["mlp"] // t["hidden"], patch_size=14, image_size=14 * t["grid"],
                            layerscale_value=1.0, out_indices=[b + 1 for b in t["blocks"]], apply_layernorm=True,
                            reshape_hidden_states=False)
    extra = {"max_depth": max_depth} if kind == "metric" else {}
    cfg = DepthAnythingConfig(backbone_config=backbone, patch_size=14, reassemble_hidden_size=t["hidden"],
                              neck_hidden_sizes=t["out_channels"], fusion_hidden_size=t["features"],
                              head_hidden_size=t["head_hidden"], depth_estimation_type=kind, **extra)
    model = DepthAnythingForDepthEstimation(cfg).eval()
    with torch.no_grad():  # non-trivial layer scales and biases so a mapping mistake shows
        for name, p in model.named_parameters():
            if name.endswith("lambda1") or name.endswith(".bias"):
                p.normal_(0.0, 0.5)
        model.head.conv3.bias.fill_(1.0)  # keep the final ReLU/sigmoid away from a constant output
    return model


# ----------------------------------------------------------------------------- official layout
def official_state_dict(seed: int = 0, *, hidden: int = TINY["hidden"], layers: int = TINY["layers"],
                        mlp: int = TINY["mlp"], features: int = TINY["features"],
                        out_channels: list[int] | None = None, grid: int = TINY["grid"],
                        head_hidden: int = 32) -> dict[str, torch.Tensor]:
    """A random state dict with the key names and shapes of the official Depth-Anything-V2 model.

    Written from the official code (``depth_anything_v2/dpt.py``, ``dinov2.py``,
    ``util/blocks.py``): DINOv2 ``pretrained`` with fused ``attn.qkv`` and LayerScale ``ls*.gamma``;
    ``depth_head`` with ``projects``, ``resize_layers`` (ConvTranspose x4, x2, Identity, Conv s2),
    ``scratch.layer*_rn`` (no bias), ``scratch.refinenet*`` (``out_conv``, ``resConfUnit1/2``) and
    ``scratch.output_conv1``, ``scratch.output_conv2.{0,2}``.
    """
    g = torch.Generator().manual_seed(seed)
    oc = out_channels or TINY["out_channels"]

    def r(*shape: int, s: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * s

    sd: dict[str, torch.Tensor] = {
        "pretrained.cls_token": r(1, 1, hidden),
        "pretrained.pos_embed": r(1, grid * grid + 1, hidden),
        "pretrained.mask_token": r(1, hidden),
        "pretrained.patch_embed.proj.weight": r(hidden, 3, 14, 14, s=0.05),
        "pretrained.patch_embed.proj.bias": r(hidden),
    }
    for i in range(layers):
        b = f"pretrained.blocks.{i}."
        sd |= {b + "norm1.weight": 1 + r(hidden), b + "norm1.bias": r(hidden),
               b + "attn.qkv.weight": r(3 * hidden, hidden), b + "attn.qkv.bias": r(3 * hidden),
               b + "attn.proj.weight": r(hidden, hidden), b + "attn.proj.bias": r(hidden),
               b + "ls1.gamma": r(hidden, s=0.5), b + "norm2.weight": 1 + r(hidden), b + "norm2.bias": r(hidden),
               b + "mlp.fc1.weight": r(mlp, hidden), b + "mlp.fc1.bias": r(mlp),
               b + "mlp.fc2.weight": r(hidden, mlp), b + "mlp.fc2.bias": r(hidden), b + "ls2.gamma": r(hidden, s=0.5)}
    sd |= {"pretrained.norm.weight": 1 + r(hidden), "pretrained.norm.bias": r(hidden)}
    h = "depth_head."
    for i, c in enumerate(oc):
        sd |= {h + f"projects.{i}.weight": r(c, hidden, 1, 1), h + f"projects.{i}.bias": r(c)}
    sd |= {h + "resize_layers.0.weight": r(oc[0], oc[0], 4, 4), h + "resize_layers.0.bias": r(oc[0]),
           h + "resize_layers.1.weight": r(oc[1], oc[1], 2, 2), h + "resize_layers.1.bias": r(oc[1]),
           h + "resize_layers.3.weight": r(oc[3], oc[3], 3, 3), h + "resize_layers.3.bias": r(oc[3])}
    for i, c in enumerate(oc):
        sd[h + f"scratch.layer{i + 1}_rn.weight"] = r(features, c, 3, 3)
    for i in range(1, 5):
        rn = h + f"scratch.refinenet{i}."
        sd |= {rn + "out_conv.weight": r(features, features, 1, 1), rn + "out_conv.bias": r(features)}
        for u in (1, 2):
            for cv in (1, 2):
                sd |= {rn + f"resConfUnit{u}.conv{cv}.weight": r(features, features, 3, 3),
                       rn + f"resConfUnit{u}.conv{cv}.bias": r(features)}
    sd |= {h + "scratch.output_conv1.weight": r(features // 2, features, 3, 3),
           h + "scratch.output_conv1.bias": r(features // 2),
           h + "scratch.output_conv2.0.weight": r(head_hidden, features // 2, 3, 3),
           h + "scratch.output_conv2.0.bias": r(head_hidden),
           h + "scratch.output_conv2.2.weight": r(1, head_hidden, 1, 1),
           h + "scratch.output_conv2.2.bias": torch.tensor([0.3])}
    return sd


def official_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, *, heads: int, blocks: list[int],
                     metric: bool = False, max_depth: float = 20.0) -> torch.Tensor:
    """The official DepthAnythingV2 forward pass written functionally over the official keys.

    ``x (B, 3, h, w)`` with ``h, w`` = 14 x the position-embedding grid (no interpolation).
    Returns ``(B, h, w)`` (relative: ReLU; metric: sigmoid x max_depth).
    """
    P = "pretrained."
    b, _, hh, ww = x.shape
    ph, pw = hh // 14, ww // 14
    t = F.conv2d(x, sd[P + "patch_embed.proj.weight"], sd[P + "patch_embed.proj.bias"], stride=14)
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat([sd[P + "cls_token"].expand(b, -1, -1), t], 1) + sd[P + "pos_embed"]
    d = t.shape[-1]
    feats = []
    n_layers = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith(P + "blocks."))
    for i in range(n_layers):
        k = f"{P}blocks.{i}."
        y = F.layer_norm(t, (d,), sd[k + "norm1.weight"], sd[k + "norm1.bias"], eps=1e-6)
        qkv = F.linear(y, sd[k + "attn.qkv.weight"], sd[k + "attn.qkv.bias"]).reshape(b, -1, 3, heads, d // heads)
        q, kk, v = qkv.permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, kk, v).transpose(1, 2).reshape(b, -1, d)
        t = t + sd[k + "ls1.gamma"] * F.linear(a, sd[k + "attn.proj.weight"], sd[k + "attn.proj.bias"])
        y = F.layer_norm(t, (d,), sd[k + "norm2.weight"], sd[k + "norm2.bias"], eps=1e-6)
        y = F.linear(F.gelu(F.linear(y, sd[k + "mlp.fc1.weight"], sd[k + "mlp.fc1.bias"])),
                     sd[k + "mlp.fc2.weight"], sd[k + "mlp.fc2.bias"])
        t = t + sd[k + "ls2.gamma"] * y
        if i in blocks:
            feats.append(F.layer_norm(t, (d,), sd[P + "norm.weight"], sd[P + "norm.bias"], eps=1e-6))
    H = "depth_head."
    layers = []
    for i, f in enumerate(feats):
        f = f[:, 1:].permute(0, 2, 1).reshape(b, d, ph, pw)
        f = F.conv2d(f, sd[H + f"projects.{i}.weight"], sd[H + f"projects.{i}.bias"])
        if i == 0:
            f = F.conv_transpose2d(f, sd[H + "resize_layers.0.weight"], sd[H + "resize_layers.0.bias"], stride=4)
        elif i == 1:
            f = F.conv_transpose2d(f, sd[H + "resize_layers.1.weight"], sd[H + "resize_layers.1.bias"], stride=2)
        elif i == 3:
            f = F.conv2d(f, sd[H + "resize_layers.3.weight"], sd[H + "resize_layers.3.bias"], stride=2, padding=1)
        layers.append(F.conv2d(f, sd[H + f"scratch.layer{i + 1}_rn.weight"], padding=1))

    def rcu(z: torch.Tensor, pre: str) -> torch.Tensor:
        o = F.conv2d(F.relu(z), sd[pre + "conv1.weight"], sd[pre + "conv1.bias"], padding=1)
        o = F.conv2d(F.relu(o), sd[pre + "conv2.weight"], sd[pre + "conv2.bias"], padding=1)
        return o + z

    def fuse(n: int, z: torch.Tensor, skip: torch.Tensor | None, size: Any) -> torch.Tensor:
        pre = f"{H}scratch.refinenet{n}."
        if skip is not None:
            z = z + rcu(skip, pre + "resConfUnit1.")
        z = rcu(z, pre + "resConfUnit2.")
        z = F.interpolate(z, **({"scale_factor": 2} if size is None else {"size": size}), mode="bilinear",
                          align_corners=True)
        return F.conv2d(z, sd[pre + "out_conv.weight"], sd[pre + "out_conv.bias"])

    l1, l2, l3, l4 = layers
    p4 = fuse(4, l4, None, l3.shape[2:])
    p3 = fuse(3, p4, l3, l2.shape[2:])
    p2 = fuse(2, p3, l2, l1.shape[2:])
    p1 = fuse(1, p2, l1, None)
    o = F.conv2d(p1, sd[H + "scratch.output_conv1.weight"], sd[H + "scratch.output_conv1.bias"], padding=1)
    o = F.interpolate(o, (ph * 14, pw * 14), mode="bilinear", align_corners=True)
    o = F.relu(F.conv2d(o, sd[H + "scratch.output_conv2.0.weight"], sd[H + "scratch.output_conv2.0.bias"], padding=1))
    o = F.conv2d(o, sd[H + "scratch.output_conv2.2.weight"], sd[H + "scratch.output_conv2.2.bias"])
    o = torch.sigmoid(o) * max_depth if metric else F.relu(o)
    return o[:, 0]


# ----------------------------------------------------------------------------- cheap estimator
class ShadeEstimator(DepthEstimator):
    """Deterministic "depth" from the image: ``1 + 4 * (0.5 R + 0.3 G + 0.2 B) / 255`` blurred 3x3.

    ``delay`` seconds of sleep per batch make a run slow enough to be killed mid-way.
    """

    kind = "metric"
    name = "shade-test"

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.calls = 0
        self.device = torch.device("cpu")

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "family": "test"}

    def predict_tensor(self, images: Any) -> torch.Tensor:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        x = torch.as_tensor(images).float()
        d = 1.0 + 4.0 * (0.5 * x[..., 0] + 0.3 * x[..., 1] + 0.2 * x[..., 2]) / 255.0
        return F.avg_pool2d(d[:, None], 3, stride=1, padding=1, count_include_pad=False)[:, 0]


# ----------------------------------------------------------------------------- data
def frame_image(clip: int, f: int, w: int, h: int) -> np.ndarray:
    """A smooth, frame-dependent BGR test image (survives lossy coding well)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    b = 128 + 100 * np.sin(xx / 9.0 + f * 0.3 + clip)
    g = 128 + 100 * np.cos(yy / 7.0 - f * 0.2)
    r = 128 + 90 * np.sin((xx + yy) / 13.0 + f * 0.1 * (clip + 1))
    return np.clip(np.stack([b, g, r], -1), 0, 255).astype(np.uint8)


def write_video(path: Path, n: int, w: int, h: int, clip: int = 0, fps: float = 25.0) -> Path:
    import cv2

    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert vw.isOpened(), "OpenCV cannot write mp4v videos here"
    for f in range(n):
        vw.write(frame_image(clip, f, w, h))
    vw.release()
    return path


def write_images(folder: Path, n: int, w: int, h: int, clip: int = 1) -> str:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for f in range(n):
        cv2.imwrite(str(folder / f"img_{f + 1:04d}.png"), frame_image(clip, f, w, h))
    return f"{folder.name}/img_{{frame1:04d}}.png"


def make_media_poseset(root: Path, *, frames: tuple[int, int] = (24, 18), w: int = 64, h: int = 48,
                       seed: int = 0, video_frames: int | None = None) -> Path:
    """A saved PoseSet of two clips: an mp4 video and a PNG image sequence (frame_root = media/)."""
    rng = np.random.default_rng(seed)
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    write_video(media / "clip0.mp4", video_frames or frames[0], w, h, clip=0)
    pattern = write_images(media / "seq1", frames[1], w, h, clip=1)
    n = sum(frames)
    clip = np.repeat(np.arange(2), frames).astype(np.int32)
    frame = np.concatenate([np.arange(k) for k in frames]).astype(np.int32)
    kp = np.stack([rng.uniform(-4, w + 3, (n, 17)), rng.uniform(-4, h + 3, (n, 17))], -1).astype(np.float32)
    missing = rng.uniform(size=(n, 17)) < 0.05
    kp[missing] = np.nan
    conf = np.where(missing, 0.0, rng.uniform(0, 1, (n, 17))).astype(np.float32)  # a missing joint has conf 0
    fields = {"clip": clip, "frame": frame, "kp2d": kp, "conf": conf}
    clips = ClipTable(subject=["S1", "S2"], action=["walk", "wave"], camera=["0", "1"], split=["test", "test"],
                      width=[w, w], height=[h, h], intrinsics=np.tile([60.0, 60.0, w / 2, h / 2], (2, 1)),
                      source=["clip0.mp4", pattern], fps=[25.0, 25.0])
    out = root / "ps"
    PoseSet(fields, clips, {"source": "test", "frame_root": str(media)}).save(out)
    return out


def decode_all(ps_dir: Path) -> dict[int, np.ndarray]:
    """Every frame of every clip, decoded directly with OpenCV (RGB), for reference computations."""
    import cv2

    ps = PoseSet.load(ps_dir)
    root = Path(ps.meta["frame_root"])
    out = {}
    for c in range(len(ps.clips)):
        src = str(ps.clips.source[c])
        n = int((np.asarray(ps.clip) == c).sum())
        if "{" in src:
            imgs = [cv2.imread(str(root / src.format(frame=f, frame1=f + 1))) for f in range(n)]
        else:
            cap = cv2.VideoCapture(str(root / src))
            imgs = [cap.read()[1] for _ in range(n)]
            cap.release()
        out[c] = np.stack([cv2.cvtColor(i, cv2.COLOR_BGR2RGB) for i in imgs])
    return out


def radial_map(h: int, w: int, cx: float, cy: float, scale: float = 1.0) -> np.ndarray:
    """``(h, w)`` distance of each pixel centre to ``(cx, cy)``, divided by ``scale``."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    return (np.hypot(xx - cx, yy - cy) / scale).astype(np.float32)


def lattice_max_radius(r: float) -> float:
    """Largest distance of an integer lattice point within distance ``r`` of the origin."""
    k = math.floor(r)
    i, j = np.mgrid[-k:k + 1, -k:k + 1]
    d2 = i * i + j * j
    return float(np.sqrt(d2[d2 <= r * r].max()))
