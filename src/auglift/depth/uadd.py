"""UADD, the Uncertainty-Aware Depth Descriptor: robust depth statistics around each 2D keypoint.

For every keypoint ``(x, y)`` with confidence ``c`` the sampler reads a depth map in a disk of
radius ``r(c)`` around the keypoint and returns ``(d, d_min, d_max)``:

* **radius** (:class:`LinearRadius`, the paper's rule and the default,
  :class:`ScaleAdaptiveRadius`, the research code's rule, or :class:`TorsoRadius`, the linear
  rule in torso lengths of the person). Radii are given in pixels of the
  *original image*; when the depth map has another resolution the caller passes
  ``scale = map pixels per image pixel`` (see :func:`to_map_pixels`) and the disk is scaled with
  it, so a descriptor does not depend on the depth map's resolution.
* **statistics** (:class:`Stats`): ``d`` is the median of the disk (paper, default) or the depth
  at the keypoint; ``d_min``/``d_max`` are the ``low``/``high`` quantiles (0/1 = minimum/maximum,
  the paper's default; 0.1/0.9 in the research code). Quantiles interpolate linearly between
  order statistics (NumPy's default ``"linear"`` method), so the median of an even count is the
  mean of the two middle values.
* **mode** ``"exact"``: every pixel whose centre lies in the disk ``(u - x)^2 + (v - y)^2 <= r^2``
  (pixel centres at integer coordinates; the keypoint's nearest pixel is always included), the
  keypoint-centre value is that nearest pixel. Vectorised: the pixels of a square window are
  gathered for many keypoints at once and masked.
* **mode** ``"fast"``: a fixed, deterministic pattern of ``points`` (default 97) offsets in the
  unit disk (:func:`disk_pattern`: the centre plus a sunflower/Vogel spiral) scaled by ``r``; each
  point reads the depth of its nearest pixel (one read per sample, values are depths that occur in
  the map): on the CPU a fused numba kernel (:mod:`auglift.depth.kernels`) reads every sample of a
  disk in one pass and prefetches the next disks' cache lines, elsewhere ``grid_sample`` with
  ``mode="nearest"`` on the depth map's device; both read the same pixels. When a statistic
  is the minimum or the maximum, :data:`RIM_POINTS` (32) more points on the circle of radius
  ``r - 0.71`` (each rounds to a pixel of the disk) join those two statistics only: the extremes
  of a smooth surface lie on the rim, which the equal-area spiral samples sparsely. The
  keypoint-centre value is the keypoint's nearest pixel, as in exact mode (read only when a
  statistic uses it). On planes every statistic is within 1.2 px x the slope of exact mode for a
  disk inside the image, 1.2 (1 + r/5) px x the slope for one cut by the border (tested in
  ``tests/test_uadd.py``, as 20 % of the disk's exact spread on a smooth scene); errors on scenes
  with depth edges are measured by
  ``benchmarks/bench_uadd.py`` and listed in the README ("Depth and the UADD descriptor"). Each
  keypoint's samples are computed on their own, so a descriptor does not depend on the batch.

Pixels outside the image and NaN depth values (holes) are ignored; a bilinear sample touching a
NaN pixel is NaN and ignored too. Infinite depths are not ignored: a statistic that reaches one
is infinite and the descriptor invalid. A keypoint with a NaN coordinate, outside the image
(``x`` outside ``[-0.5, W - 0.5)`` or ``y`` outside ``[-0.5, H - 0.5)``) or without any finite
depth in its disk gets ``NaN`` descriptors and ``valid = False``; nothing raises.

Inputs may be NumPy arrays or torch tensors; the result has the kind of ``depth`` (NumPy in,
NumPy out; a CUDA tensor in, CUDA tensors out).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from auglift.depth import kernels
from auglift.errors import ConfigError, DataError

__all__ = [
    "PAPER_DESCRIPTOR",
    "PAPER_STATS",
    "RESEARCH_STATS",
    "RIM_POINTS",
    "DescriptorSpec",
    "LinearRadius",
    "ScaleAdaptiveRadius",
    "Stats",
    "TorsoRadius",
    "UaddResult",
    "descriptor_config",
    "disk_pattern",
    "radius_from_config",
    "sample_uadd",
    "to_map_pixels",
]

ArrayLike = np.ndarray | torch.Tensor
Mode = Literal["exact", "fast"]

# Elements (keypoints x samples) handled per vectorised step; bounds temporary memory to ~0.5 GB.
_CHUNK_ELEMS = 1 << 23
_CHUNK_ELEMS_EXACT = 1 << 21
# Fast mode's rim points (used for the minimum and the maximum) and how far inside the rim they
# sit: more than sqrt(2)/2 px, so that the pixel nearest to each lies in the disk.
RIM_POINTS = 32
_RIM_INSET = 0.71


# ----------------------------------------------------------------------------- options
def _torso_px(kp2d_image: torch.Tensor, pelvis: int, thorax: int, rule: str) -> torch.Tensor:
    """``(B,)`` pelvis-to-thorax length in pixels of ``kp2d_image (B, J, 2)`` (NaN where a joint is missing)."""
    if kp2d_image.shape[1] <= max(pelvis, thorax):
        raise ConfigError(f"radius: the {rule} rule reads joints {pelvis} (pelvis) and {thorax} (thorax); "
                          f"the keypoints have only {kp2d_image.shape[1]} joints")
    return torch.linalg.vector_norm(kp2d_image[:, thorax] - kp2d_image[:, pelvis], dim=-1)


def _check_radius_range(r_min: float, r_max: float) -> None:
    if not (0 <= r_min <= r_max) or not math.isfinite(r_max):
        raise ConfigError(f"radius: need 0 <= r_min <= r_max < inf, got r_min={r_min}, r_max={r_max}")


@dataclass(frozen=True)
class LinearRadius:
    """The paper's rule: ``r = r_min + (1 - c) (r_max - r_min)``, clamped to ``[r_min, r_max]``.

    ``r_min``/``r_max`` are pixels of the original image (defaults 3 and 30 px: the research
    code's clip range). ``c`` outside ``[0, 1]`` is clipped; a NaN confidence counts as 0.
    """

    r_min: float = 3.0
    r_max: float = 30.0

    rule: Literal["linear"] = "linear"

    def __post_init__(self) -> None:
        _check_radius_range(self.r_min, self.r_max)

    def radii(self, conf: torch.Tensor, kp2d_image: torch.Tensor) -> torch.Tensor:
        """``(B, J)`` radii in original-image pixels from ``conf (B, J)`` (``kp2d_image`` unused)."""
        c = _clean_conf(conf)
        return self.r_min + (1.0 - c) * (self.r_max - self.r_min)


@dataclass(frozen=True)
class ScaleAdaptiveRadius:
    """The research code's rule: ``r = clip(k * S * (1 + beta (1 - c))^gamma, r_min, r_max)``.

    ``S`` is the pelvis-to-thorax length of the frame in original-image pixels (joints
    ``pelvis``/``thorax``, H36M-17 indices 0 and 8). A frame where ``S`` is not finite (a
    missing pelvis or thorax) uses ``r_max`` for all its joints.
    """

    k: float = 0.04
    beta: float = 3.0
    gamma: float = 1.5
    r_min: float = 3.0
    r_max: float = 30.0
    pelvis: int = 0
    thorax: int = 8

    rule: Literal["scale_adaptive"] = "scale_adaptive"

    def __post_init__(self) -> None:
        _check_radius_range(self.r_min, self.r_max)
        if self.k < 0 or self.beta < 0:
            raise ConfigError(f"radius: k and beta must be >= 0, got k={self.k}, beta={self.beta}")

    def radii(self, conf: torch.Tensor, kp2d_image: torch.Tensor) -> torch.Tensor:
        """``(B, J)`` radii in original-image pixels; ``kp2d_image (B, J, 2)`` in original-image pixels."""
        c = _clean_conf(conf)
        s = _torso_px(kp2d_image, self.pelvis, self.thorax, "scale-adaptive")
        r = self.k * s[:, None] * (1.0 + self.beta * (1.0 - c)) ** self.gamma
        r = torch.where(torch.isfinite(r), r, torch.full_like(r, self.r_max))
        return r.clamp(self.r_min, self.r_max)


@dataclass(frozen=True)
class TorsoRadius:
    """The paper's linear rule in units of the person's size: ``r = S (t_min + (1 - c)(t_max - t_min))``.

    ``S`` is the frame's pelvis-to-thorax length in original-image pixels (H36M-17 joints 0 and
    8), so the disk covers the same part of the body whether the person is near or far, in a
    small or a large image. ``t_min``/``t_max`` are torso lengths (defaults 0.03 and 0.3: the
    linear rule's 3-30 px at the ~100 px torso of the ``lab`` domain). A frame without a finite
    torso length uses ``fallback_px`` for ``S``; radii are at least ``floor_px`` pixels.
    """

    t_min: float = 0.03
    t_max: float = 0.3
    fallback_px: float = 100.0
    floor_px: float = 1.0
    pelvis: int = 0
    thorax: int = 8

    rule: Literal["torso_linear"] = "torso_linear"

    def __post_init__(self) -> None:
        _check_radius_range(self.t_min, self.t_max)
        if not (self.fallback_px > 0 and self.floor_px >= 0):
            raise ConfigError(f"radius: need fallback_px > 0 and floor_px >= 0, got {self.fallback_px}, "
                              f"{self.floor_px}")

    def radii(self, conf: torch.Tensor, kp2d_image: torch.Tensor) -> torch.Tensor:
        """``(B, J)`` radii in original-image pixels; ``kp2d_image (B, J, 2)`` in original-image pixels."""
        c = _clean_conf(conf)
        s = _torso_px(kp2d_image, self.pelvis, self.thorax, "torso")
        s = torch.where(torch.isfinite(s) & (s > 0), s, torch.full_like(s, self.fallback_px))
        return (s[:, None] * (self.t_min + (1.0 - c) * (self.t_max - self.t_min))).clamp_min(self.floor_px)


@dataclass(frozen=True)
class Stats:
    """Which statistics make ``(d, d_min, d_max)``.

    ``center``: ``"median"`` (paper) or ``"keypoint"`` (depth at the keypoint, research code).
    ``low``/``high``: quantiles in ``[0, 1]`` for ``d_min``/``d_max`` (0/1: minimum/maximum).
    """

    center: Literal["median", "keypoint"] = "median"
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.center not in ("median", "keypoint"):
            raise ConfigError(f"stats: center must be 'median' or 'keypoint', got {self.center!r}")
        if not (0.0 <= self.low <= self.high <= 1.0):
            raise ConfigError(f"stats: need 0 <= low <= high <= 1, got low={self.low}, high={self.high}")


PAPER_STATS = Stats("median", 0.0, 1.0)
RESEARCH_STATS = Stats("keypoint", 0.1, 0.9)

Radius = LinearRadius | ScaleAdaptiveRadius | TorsoRadius


def radius_from_config(cfg: dict[str, Any]) -> Radius:
    """Rebuild a radius rule from its ``asdict`` form (as stored in ``meta["depth_model"]``)."""
    cfg = dict(cfg)
    rule = cfg.pop("rule", "linear")
    cls = {"linear": LinearRadius, "scale_adaptive": ScaleAdaptiveRadius, "torso_linear": TorsoRadius}.get(rule)
    if cls is None:
        raise ConfigError(f"radius: unknown rule {rule!r} (linear, scale_adaptive, torso_linear)")
    try:
        return cls(**cfg)
    except TypeError as exc:
        raise ConfigError(f"radius: {exc}") from None


@dataclass(frozen=True)
class DescriptorSpec:
    """How descriptors are sampled: radius rule, statistics, mode and fast-mode sample count.

    The defaults are the paper's (median/min/max, exact mode; 97 samples when fast) except the
    radius: :class:`TorsoRadius`, the paper's linear rule in torso lengths, which measured better
    out of distribution than the rule in image pixels (README, "A radius in the person's units");
    :data:`PAPER_DESCRIPTOR` is the paper's spec (linear radius 3-30 px), the one descriptors of
    earlier versions were sampled with. :meth:`to_dict` is the JSON form stored in
    ``meta["depth_model"]["descriptor"]`` (and so in checkpoints; it names the radius rule, so a
    stored spec reads back unchanged whatever the default); :meth:`from_dict` reads it back.
    """

    radius: Radius = TorsoRadius()
    stats: Stats = PAPER_STATS
    mode: Mode = "exact"
    points: int = 97
    # How the fast pattern reads the map: "nearest pixel" (with RIM_POINTS extra points for min/max) since
    # the nearest-pixel sampler; "bilinear" marks a spec recorded by the earlier bilinear fast sampler (read
    # back from older PoseSets and checkpoints, kept so they round-trip; sampling always uses today's sampler).
    read: str = "nearest pixel"

    def __post_init__(self) -> None:
        if self.mode not in ("exact", "fast"):
            raise ConfigError(f"mode must be 'exact' or 'fast', got {self.mode!r}")
        if self.read not in ("nearest pixel", "bilinear"):
            raise ConfigError(f"pattern.read must be 'nearest pixel' or 'bilinear', got {self.read!r}")
        if isinstance(self.points, bool) or not isinstance(self.points, int) or self.points < 1:
            raise ConfigError(f"pattern: need at least 1 point, got {self.points!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (stored with the depth model's identity); ``pattern`` only in fast mode."""
        out: dict[str, Any] = {"radius": asdict(self.radius), "stats": asdict(self.stats), "mode": self.mode,
                               "radius_units": "torso lengths" if isinstance(self.radius, TorsoRadius)
                               else "px of the original image"}
        if self.mode == "fast":
            out["pattern"] = {"kind": "sunflower", "points": int(self.points)}
            if self.read == "nearest pixel":
                out["pattern"] |= {"read": self.read, "rim_points": RIM_POINTS}
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DescriptorSpec:
        """The spec a :meth:`to_dict` form describes; :class:`ConfigError` for an unreadable one."""
        try:
            pattern = d.get("pattern") or {}
            return cls(radius_from_config(dict(d["radius"])), Stats(**dict(d["stats"])), str(d.get("mode", "exact")),
                       int(pattern.get("points", cls.points)), str(pattern.get("read", "bilinear" if pattern else
                                                                                 "nearest pixel")))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"unreadable descriptor options ({exc})") from None

    def sample(self, depth: ArrayLike, kp2d: ArrayLike, conf: ArrayLike, *, scale: float | ArrayLike = 1.0,
               map_index: ArrayLike | None = None) -> UaddResult:
        """:func:`sample_uadd` with these options."""
        return sample_uadd(depth, kp2d, conf, radius=self.radius, stats=self.stats, mode=self.mode, scale=scale,
                           map_index=map_index, points=self.points)


# The paper's descriptor (linear radius 3-30 px of the image): the default before TorsoRadius, and the spec
# assumed for checkpoints and PoseSets that record none.
PAPER_DESCRIPTOR = DescriptorSpec(LinearRadius())


def descriptor_config(radius: Radius, stats: Stats, mode: Mode, points: int = 97) -> dict[str, Any]:
    """JSON-ready description of the descriptor options: ``DescriptorSpec(...).to_dict()``."""
    return DescriptorSpec(radius, stats, mode, points).to_dict()


class UaddResult(NamedTuple):
    """``uadd (B, J, 3)`` float32 ``(d, d_min, d_max)`` in the depth map's units (NaN where
    invalid) and ``valid (B, J)`` bool."""

    uadd: ArrayLike
    valid: ArrayLike


# ----------------------------------------------------------------------------- helpers
# fast mode on the CPU runs the fused numba gather (:func:`_fast_cpu`); tests switch it off to compare
# with the grid_sample path
_CPU_KERNEL = True

def _tensor(x: Any, dev: torch.device) -> torch.Tensor:
    """A tensor on ``dev``; read-only NumPy arrays (memory maps) are copied instead of aliased."""
    if torch.is_tensor(x):
        return x.to(dev)
    a = np.asarray(x)
    if not a.flags.writeable:
        a = np.array(a)
    return torch.as_tensor(a, device=dev)


def _clean_conf(conf: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(conf, nan=0.0).clamp(0.0, 1.0)


def disk_pattern(points: int = 97) -> np.ndarray:
    """``(points, 2)`` float64 offsets in the unit disk: the centre, then a sunflower spiral.

    Point ``k >= 1`` sits at radius ``sqrt(k / (points - 1))`` and angle ``k * golden_angle``,
    so the points cover the disk with equal area each and the last one lies on the rim.
    """
    if points < 1:
        raise ConfigError(f"pattern: need at least 1 point, got {points}")
    out = np.zeros((points, 2))
    if points > 1:
        k = np.arange(1, points, dtype=np.float64)
        rho = np.sqrt(k / (points - 1))
        theta = k * math.pi * (3.0 - math.sqrt(5.0))
        out[1:, 0] = rho * np.cos(theta)
        out[1:, 1] = rho * np.sin(theta)
    return out


def to_map_pixels(kp2d: ArrayLike, image_size: tuple[int, int] | ArrayLike,
                  map_size: tuple[int, int]) -> tuple[ArrayLike, ArrayLike]:
    """Convert keypoints from original-image pixels to depth-map pixels.

    ``kp2d (B, J, 2)`` px of images of ``image_size = (width, height)`` (or ``(B, 2)`` per
    frame) -> ``(kp_map (B, J, 2), scale (B,))`` for a map of ``map_size = (w, h)``, with pixel
    centres aligned: ``u_map = (u + 0.5) * w / width - 0.5``. ``scale`` (map px per image px,
    the geometric mean of the two axes) is what :func:`sample_uadd` takes as ``scale``.
    """
    is_t = torch.is_tensor(kp2d)
    xp = torch if is_t else np
    kp = kp2d if is_t else np.asarray(kp2d, dtype=np.float64)
    size = torch.as_tensor(image_size, dtype=kp.dtype, device=kp.device) if is_t else np.asarray(image_size, np.float64)
    size = size.reshape(-1, 2)
    sx = map_size[0] / size[:, 0]
    sy = map_size[1] / size[:, 1]
    out = xp.stack([(kp[..., 0] + 0.5) * sx[:, None] - 0.5, (kp[..., 1] + 0.5) * sy[:, None] - 0.5], -1)
    scale = xp.sqrt(sx * sy)
    if not is_t:
        out = out.astype(np.float32)
        scale = np.broadcast_to(scale, (kp.shape[0],)).astype(np.float32)
    else:
        scale = scale.expand(kp.shape[0])
    return out, scale


def _quantiles(vals: torch.Tensor, qs: list[float], presorted: bool = False) -> torch.Tensor:
    """Linear-interpolated quantiles of each row of ``vals (K, N)``, ignoring NaN entries.

    Returns ``(K, len(qs))``; NaN for rows without a value. ``vals`` is sorted in place (NaN sort
    last in both libraries), unless ``presorted`` says its rows already are (CPU only). Sorting runs
    in NumPy on the CPU (its SIMD sort is several times faster than torch's there) and in torch
    elsewhere, the quantiles of the sorted rows by :func:`auglift.depth.kernels.row_quantiles` on the CPU
    (the same numbers: ``tests/test_uadd.py``). ``vals`` is float32 (depth maps are sampled in float32).
    """
    if vals.device.type == "cpu":
        arr = vals.numpy()  # a view (rows may be strided), sorted in place
        if not presorted:
            arr.sort(axis=-1)
        out = np.empty((arr.shape[0], len(qs)), np.float32)
        kernels.row_quantiles(arr, np.asarray(qs, np.float64), out, 0, np.arange(len(qs)))
        return torch.from_numpy(out)
    return _sorted_quantiles_torch(torch.sort(vals, dim=-1).values, qs)


def _sorted_quantiles_torch(s: torch.Tensor, qs: list[float]) -> torch.Tensor:
    """:func:`_quantiles` of the sorted rows ``s (K, N)`` (NaN last) in torch, on any device."""
    n = (~torch.isnan(s)).sum(-1)
    last = (n - 1).clamp_min(0)[:, None]
    q = torch.as_tensor(qs, dtype=torch.float64, device=s.device)
    pos = q[None, :] * last.to(torch.float64)  # (K, Q)
    lo = pos.floor().long()
    hi = torch.minimum(lo + 1, last)
    frac = (pos - lo).to(s.dtype)
    a = torch.gather(s, 1, lo)
    b = torch.gather(s, 1, hi)
    out = torch.where(frac == 0, a, a + (b - a) * frac)  # no inf * 0 where hi == lo
    return torch.where(n[:, None] > 0, out, torch.full_like(out, math.nan))


# ----------------------------------------------------------------------------- the sampler
def sample_uadd(
    depth: ArrayLike,
    kp2d: ArrayLike,
    conf: ArrayLike,
    *,
    radius: Radius | None = None,
    stats: Stats | None = None,
    mode: Mode = "exact",
    scale: float | ArrayLike = 1.0,
    map_index: ArrayLike | None = None,
    points: int = 97,
) -> UaddResult:
    """UADD descriptors of keypoints on depth maps.

    Args:
        depth: ``(M, H, W)`` depth maps (metres, or relative units), float.
        kp2d: ``(B, J, 2)`` keypoints in *depth-map* pixels (pixel centres at integers).
        conf: ``(B, J)`` confidences in ``[0, 1]``.
        radius: :class:`LinearRadius` (default) or :class:`ScaleAdaptiveRadius`, in original-image px.
        stats: :class:`Stats` (default :data:`PAPER_STATS`: median, min, max).
        mode: ``"exact"`` (every pixel in the disk) or ``"fast"`` (``points`` nearest-pixel samples,
            plus rim samples for a minimum or maximum).
        scale: depth-map pixels per original-image pixel, a float or ``(B,)``; radii are
            multiplied by it (1 when the map has the image's resolution).
        map_index: ``(B,)`` int, the map each keypoint set reads (default ``arange(B)``, then
            ``M == B``); lets several frames share one depth map.
        points: samples per keypoint in fast mode.

    Returns:
        :class:`UaddResult` ``(uadd (B, J, 3) float32, valid (B, J) bool)``.
    """
    radius = LinearRadius() if radius is None else radius
    stats = PAPER_STATS if stats is None else stats
    if mode not in ("exact", "fast"):
        raise ConfigError(f"mode must be 'exact' or 'fast', got {mode!r}")
    as_numpy = not torch.is_tensor(depth)
    dev = depth.device if torch.is_tensor(depth) else torch.device("cpu")
    d = _tensor(depth, dev)
    if d.ndim != 3:
        raise DataError(None, "depth", f"expected depth maps of shape (M, H, W), got {tuple(d.shape)}")
    d = d.float()  # float16/bfloat16 maps are sampled in float32
    kp = _tensor(kp2d, dev).float()
    c = _tensor(conf, dev).float()
    if kp.ndim != 3 or kp.shape[-1] != 2:
        raise DataError(None, "kp2d", f"expected keypoints of shape (B, J, 2), got {tuple(kp.shape)}")
    b, j = kp.shape[:2]
    if tuple(c.shape) != (b, j):
        raise DataError(None, "conf", f"expected confidences of shape {(b, j)}, got {tuple(c.shape)}")
    m, h, w = d.shape
    if map_index is None:
        if m != b:
            raise DataError(None, "depth", f"expected {b} depth maps (one per keypoint set), got {m}; "
                                           "pass map_index to share maps")
        mi = None  # arange(b), made where a path needs it
    else:
        mi = _tensor(map_index, dev).long().reshape(-1)
        if mi.shape[0] != b or (b and (int(mi.min()) < 0 or int(mi.max()) >= m)):
            raise DataError(None, "map_index", f"expected {b} map indices in [0, {m}), got shape {tuple(mi.shape)}")
    sc = _tensor(scale, dev).float().reshape(-1)
    if sc.numel() == 1:
        sc = sc.expand(b)
    if sc.shape[0] != b or not bool(torch.all(torch.isfinite(sc) & (sc > 0))):
        raise DataError(None, "scale", f"expected a positive scale or {b} of them")
    r = radius.radii(c, kp / sc[:, None, None]) * sc[:, None]  # map px, (B, J)
    qs = [0.5, stats.low, stats.high] if stats.center == "median" else [stats.low, stats.high]
    if mode == "fast" and h and w and b * j and dev.type == "cpu" and _CPU_KERNEL:
        # NumPy and the numba kernel: torch's cost per op (10-60 us on a few thousand values) is not paid
        got = _fast_cpu(d.numpy(), kp.numpy(), r.numpy(), np.arange(b) if mi is None else mi.numpy(), qs, points,
                        stats.center == "median")
        return UaddResult(*got) if as_numpy else UaddResult(*(torch.from_numpy(a) for a in got))
    mi = torch.arange(b, device=dev) if mi is None else mi
    x, y = kp[..., 0], kp[..., 1]
    inside = torch.isfinite(x) & torch.isfinite(y) & (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)
    out = torch.full((b, j, 3), math.nan, dtype=torch.float32, device=dev)
    if mode == "exact" and h and w:
        sel = inside.reshape(-1).nonzero().squeeze(1)  # exact work is per keypoint: skip invalid ones
        if sel.numel():
            kmap = mi[:, None].expand(b, j).reshape(-1)[sel]
            kx, ky, kr = x.reshape(-1)[sel], y.reshape(-1)[sel], r.reshape(-1)[sel]
            q = _exact(d, kmap, kx, ky, kr, qs)
            out.view(-1, 3)[sel] = q if stats.center == "median" else _with_centre(d, kmap, kx, ky, q)
    elif mode == "fast" and h and w and b * j:
        # every keypoint in its (B, J) place (invalid ones parked at pixel 0 with radius 0): the
        # per-map layout then stays a plain reshape; their results are discarded below
        kxy = torch.where(inside[..., None], kp, 0.0).reshape(-1, 2)
        kr = torch.where(inside, r, 0.0).reshape(-1)
        kmap = mi[:, None].expand(b, j).reshape(-1)
        share = 1 if map_index is None else _maps_share(mi, m)
        q = _fast(d, kmap, kxy, kr, qs, points, per_map=None if share is None else j * share)
        out = (q if stats.center == "median" else _with_centre(d, kmap, kxy[:, 0], kxy[:, 1], q)).view(b, j, 3)
        valid = torch.isfinite(out).all(-1) & inside
        out = torch.where(valid[..., None], out, math.nan)
        if as_numpy:
            return UaddResult(out.cpu().numpy(), valid.cpu().numpy())
        return UaddResult(out, valid)
    valid = torch.isfinite(out).all(-1)
    out[~valid] = math.nan
    if as_numpy:
        return UaddResult(out.cpu().numpy(), valid.cpu().numpy())
    return UaddResult(out, valid)


def _maps_share(mi: torch.Tensor, m: int) -> int | None:
    """``c`` when the keypoint sets read the ``m`` maps in order, ``c`` consecutive sets per map
    (``mi = [0]*c + [1]*c + ...``; ``c = 1`` without ``map_index``), else None: fast mode then lays the
    keypoints out per map by a plain reshape (the caller path passes ``map_index = arange(B)``)."""
    b = mi.shape[0]
    if m == 0 or b % m:
        return None
    c = b // m
    expect = torch.arange(m, device=mi.device).repeat_interleave(c)
    return c if torch.equal(mi, expect) else None


def _exact(d: torch.Tensor, kmap: torch.Tensor, kx: torch.Tensor, ky: torch.Tensor, kr: torch.Tensor,
           qs: list[float]) -> torch.Tensor:
    """Quantiles over every pixel centre in each disk, many keypoints per vectorised step.

    Keypoints are sorted by radius and processed in chunks; a chunk gathers the square window
    of its largest disk around each keypoint (built from separable row/column terms) and masks
    the pixels outside the disk or the image with NaN.
    """
    _, h, w = d.shape
    dev = d.device
    flat = d.reshape(-1)
    cx = torch.floor(kx + 0.5).long().clamp(0, w - 1)
    cy = torch.floor(ky + 0.5).long().clamp(0, h - 1)
    qout = torch.empty((kx.shape[0], len(qs)), dtype=torch.float32, device=dev)
    order = torch.argsort(kr)
    r_sorted = kr[order].tolist()
    k_total = kx.shape[0]
    start = 0
    while start < k_total:
        # largest chunk whose window (sized by its largest radius) fits the element budget
        stop = start + 1
        step = 1
        while stop < k_total:
            nxt = min(k_total, stop + step)
            side = 2 * (math.ceil(r_sorted[nxt - 1]) + 1) + 1
            if (nxt - start) * side * side > _CHUNK_ELEMS_EXACT:
                break
            stop, step = nxt, step * 2
        rr = math.ceil(r_sorted[stop - 1]) + 1
        idx = order[start:stop]
        off = torch.arange(-rr, rr + 1, device=dev)
        col = cx[idx, None] + off  # (k, S) pixel columns
        row = cy[idx, None] + off  # (k, S) pixel rows
        ddx = (col - kx[idx, None]) ** 2
        ddy = (row - ky[idx, None]) ** 2
        keep = (ddy[:, :, None] + ddx[:, None, :]) <= (kr[idx] ** 2)[:, None, None]  # (k, S, S)
        keep[:, rr, rr] = True  # the nearest pixel always counts
        keep &= ((row >= 0) & (row < h))[:, :, None] & ((col >= 0) & (col < w))[:, None, :]
        lin = ((kmap[idx, None] * h + row.clamp(0, h - 1)) * w)[:, :, None] + col.clamp(0, w - 1)[:, None, :]
        vals = flat[lin.reshape(len(idx), -1)].masked_fill_(~keep.reshape(len(idx), -1), math.nan)
        qout[idx] = _quantiles(vals, qs)
        start = stop
    return qout


def _fast(d: torch.Tensor, kmap: torch.Tensor, kxy: torch.Tensor, kr: torch.Tensor, qs: list[float],
          points: int, per_map: int | None = None) -> torch.Tensor:
    """Quantiles over a fixed pattern of nearest-pixel samples, off the CPU (:func:`_fast_cpu` there): maps
    processed in groups with ``grid_sample`` (``mode="nearest"``: one read per sample, no interpolation).
    Both paths read the same pixels and compute the same statistics (``tests/test_uadd.py`` compares them).

    ``kxy (K, 2)`` map px, ``kr (K,)`` map px, ``kmap (K,)`` the map of each keypoint. Each disk
    is read at ``points`` area points and, when a statistic is the minimum or the maximum, at
    :data:`RIM_POINTS` rim points that join those two statistics only. Keypoints are laid out per
    map (``grid (maps, keypoints of the busiest map, samples, 2)``); with ``per_map`` (every map
    read by exactly that many consecutive keypoints, in map order: one or ``c`` frames per map, see
    :func:`_maps_share`) that layout
    is a plain reshape and chunks are slices. Samples of disks that cross the image border are
    masked per sample.
    """
    m, h, w = d.shape
    dev = d.device
    ext = [i for i, q in enumerate(qs) if q in (0.0, 1.0)]
    ax, ay = 2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)
    cols = points + (RIM_POINTS if ext else 0)
    basis_t, scale_xy = _grid_basis(points, cols - points, h, w, dev)
    k_total = kmap.shape[0]
    qout = torch.empty((k_total, len(qs)), dtype=torch.float32, device=dev)
    # disks crossing the border (flagged for all keypoints at once): samples outside the image are dropped
    x, y = kxy[:, 0], kxy[:, 1]
    edge_all = (x - kr < -0.5) | (x + kr > w - 0.5) | (y - kr < -0.5) | (y + kr > h - 0.5)
    any_edge = bool(edge_all.any())

    def make_grid(sl: slice | torch.Tensor) -> torch.Tensor:
        """The ``(keypoints, P, 2)`` normalised sample positions of the keypoints ``sl``."""
        xy, r = kxy[sl] * scale_xy - 1.0, kr[sl, None]
        r_in = (r - _RIM_INSET).clamp_min(0.0)  # the rim points' radius
        # normalised grid coordinates (align_corners=True: -1 and 1 are the outer pixel centres); not a
        # matrix product: TF32/bf16 matmul precision would shift the positions
        grid = xy[:, None, :].expand(-1, cols, 2).reshape(-1, 2 * cols)
        return grid.addcmul(r, basis_t[0:1]).addcmul(r_in, basis_t[1:2]).view(-1, cols, 2)

    def stats_of(vals: torch.Tensor) -> torch.Tensor:
        """``(K, len(qs))`` from the samples ``(K, cols)``: quantiles of the area points, the
        rim points joining the minimum and the maximum (where a smooth surface has its extremes)."""
        q = _quantiles(vals[:, :points], qs)
        for i in ext:
            ends = _nan_extreme(vals[:, points:], lowest=qs[i] == 0.0)
            q[:, i] = torch.fmin(q[:, i], ends) if qs[i] == 0.0 else torch.fmax(q[:, i], ends)
        return q

    if per_map is not None:
        maps_per_chunk = max(1, _CHUNK_ELEMS // max(1, per_map * cols))
        chunks = [(m0, min(m, m0 + maps_per_chunk)) for m0 in range(0, m, maps_per_chunk)]
        for m0, m1 in chunks:
            sl = slice(m0 * per_map, m1 * per_map)
            grid = make_grid(sl)
            samp = F.grid_sample(d[m0:m1, None], grid.view(m1 - m0, per_map, cols, 2), mode="nearest",
                                 padding_mode="border", align_corners=True)
            vals = samp.view(-1, cols)
            if any_edge:
                _mask_outside(vals, grid, edge_all[sl], ax, ay, h, w)
            qout[sl] = stats_of(vals)
        return qout

    counts_l = torch.bincount(kmap, minlength=m).tolist()
    sorted_maps = bool(torch.all(kmap[1:] >= kmap[:-1])) if k_total > 1 else True
    order = torch.arange(k_total, device=dev) if sorted_maps else torch.argsort(kmap, stable=True)
    starts_l = np.concatenate([[0], np.cumsum(counts_l)[:-1]]).astype(np.int64).tolist()
    starts_t = torch.as_tensor(starts_l, device=dev)
    m0 = 0
    while m0 < m:
        # a range of maps whose padded sample count stays within the chunk budget
        m1, gmax = m0, 0
        while m1 < m:
            g = max(gmax, counts_l[m1])
            if m1 > m0 and (m1 - m0 + 1) * g * cols > _CHUNK_ELEMS:
                break
            gmax, m1 = g, m1 + 1
        if gmax == 0:
            m0 = m1
            continue
        k0, k1 = starts_l[m0], starts_l[m1 - 1] + counts_l[m1 - 1]
        idx = order[k0:k1]  # keypoints of maps m0..m1-1, grouped by map
        grid = make_grid(idx)
        slot = torch.arange(k0, k1, device=dev) - starts_t[kmap[idx]]
        mm = kmap[idx] - m0
        padded = torch.zeros((m1 - m0, gmax, cols, 2), dtype=torch.float32, device=dev)
        padded[mm, slot] = grid
        samp = F.grid_sample(d[m0:m1, None], padded, mode="nearest", padding_mode="border", align_corners=True)
        vals = samp[:, 0][mm, slot]
        if any_edge:
            _mask_outside(vals, grid, edge_all[idx], ax, ay, h, w)
        qout[idx] = stats_of(vals)
        m0 = m1
    return qout


def _fast_cpu(d: np.ndarray, kp: np.ndarray, r: np.ndarray, mi: np.ndarray, qs: list[float], points: int,
              median: bool) -> tuple[np.ndarray, np.ndarray]:
    """Fast mode on the CPU, in NumPy (a torch op on a few thousand values costs 10-60 us here, NumPy's a
    few): ``(uadd (B, J, 3), valid (B, J))`` as :func:`sample_uadd` returns them.

    ``d (M, H, W)`` float32 maps, ``kp (B, J, 2)`` float32 map px, ``r (B, J)`` float32 radii in map px,
    ``mi (B,)`` the map of each keypoint set, ``qs`` the quantiles (the median first when ``median``, else
    the keypoint's own pixel leads). The fused kernel :func:`auglift.depth.kernels.gather` reads the
    samples, keeps the minimum and maximum over area and rim samples and sorts the area samples of each
    keypoint in its threads, block by block; the other quantiles come from each sorted block.
    """
    b, j = r.shape
    ext = [i for i, q in enumerate(qs) if q in (0.0, 1.0)]
    inner = [i for i in range(len(qs)) if i not in ext]
    area, rim = _pattern(points, RIM_POINTS if ext else 0)
    q = np.empty((b * j, len(qs)), np.float32)
    q_in, cols = np.asarray([qs[i] for i in inner], np.float64), np.asarray(inner, np.int64)

    def pick(k0: int, rows: np.ndarray) -> None:
        """The inner quantiles of the sorted rows of keypoints ``k0 ..`` (while they are in the cache)."""
        kernels.row_quantiles(rows, q_in, q, k0, cols)

    # keypoints outside the image read nothing (NaN throughout); the samples go to pick block by block
    _, ends = kernels.gather(np.ascontiguousarray(d), np.repeat(mi.astype(np.int64), j),
                             np.ascontiguousarray(kp.reshape(-1, 2)), np.ascontiguousarray(r.reshape(-1)), area, rim,
                             _RIM_INSET, torch.get_num_threads(), sort=bool(inner), each_block=pick)
    for i in ext:
        q[:, i] = ends[:, 0 if qs[i] == 0.0 else 1]
    if not median:  # the keypoint's nearest pixel (the pattern's centre point), then the quantiles
        q = np.concatenate([ends[:, 2:], q], 1)
    out = q.reshape(b, j, 3)
    valid = np.isfinite(out[..., 0]) & np.isfinite(out[..., 1]) & np.isfinite(out[..., 2])
    if not valid.all():
        out[~valid] = np.nan
    return out, valid


@functools.lru_cache(maxsize=8)
def _pattern(points: int, rim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(area (points, 2), rim (rim, 2))`` float64 unit-disk offsets of fast mode (cached; read only): the
    area points of :func:`disk_pattern` visited row by row (the centre first: neighbouring reads share
    cache lines), then ``rim`` equally spaced directions on the unit circle."""
    pat = disk_pattern(points)
    pat = np.concatenate([pat[:1], pat[1:][np.lexsort((pat[1:, 0], pat[1:, 1]))]])
    ang = (np.arange(rim) + 0.5) * (2.0 * math.pi / max(rim, 1))
    ring = np.stack([np.cos(ang), np.sin(ang)], 1).reshape(rim, 2)
    pat.flags.writeable = ring.flags.writeable = False
    return pat, ring


@functools.lru_cache(maxsize=32)
def _grid_basis(points: int, rim: int, h: int, w: int, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(basis (2, 2S), scale_xy (2,))`` float32 on ``dev`` for maps of ``h x w``, ``S = points +
    rim`` samples (cached; read only).

    ``grid = (x', y') + r * basis[0] + r_in * basis[1]`` gives the normalised coordinates of every
    sample (``x' = x * ax - 1``, likewise ``y'``; ``scale_xy = (ax, ay)``; ``r_in`` the rim points'
    radius) in ``grid_sample``'s interleaved ``(S, 2)`` layout: the area points of :func:`_pattern` at
    radius ``r``, then ``rim`` equally spaced points on the circle of radius ``r_in``.
    """
    pat, ring = _pattern(points, rim)
    ax, ay = 2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)
    basis = np.zeros((2, points + rim, 2))
    basis[0, :points] = pat * (ax, ay)
    basis[1, points:] = ring * (ax, ay)
    return (torch.as_tensor(basis.reshape(2, -1), dtype=torch.float32, device=dev),
            torch.tensor([ax, ay], dtype=torch.float32, device=dev))


def _nan_extreme(vals: torch.Tensor, *, lowest: bool) -> torch.Tensor:
    """Row-wise minimum (``lowest``) or maximum of ``vals (K, N)`` ignoring NaN (NaN for rows
    without a value)."""
    filled = torch.nan_to_num(vals, nan=math.inf if lowest else -math.inf, posinf=math.inf, neginf=-math.inf)
    red = filled.amin(1) if lowest else filled.amax(1)
    return torch.where(torch.isnan(vals).all(1), math.nan, red)


def _with_centre(d: torch.Tensor, kmap: torch.Tensor, kx: torch.Tensor, ky: torch.Tensor,
                 q: torch.Tensor) -> torch.Tensor:
    """``(K, 3)``: the depth at each keypoint's nearest pixel (half-pixel positions round up; read
    only when a statistic needs it), then the quantiles ``q (K, 2)``."""
    _, h, w = d.shape
    cx = torch.floor(kx + 0.5).long().clamp(0, w - 1)
    cy = torch.floor(ky + 0.5).long().clamp(0, h - 1)
    return torch.cat([d.reshape(-1)[(kmap * h + cy) * w + cx][:, None], q], 1)


def _mask_outside(vals: torch.Tensor, grid: torch.Tensor, edge: torch.Tensor, ax: float, ay: float,
                  h: int, w: int) -> None:
    """Set to NaN, in place, the samples ``vals (K, S)`` of the disks flagged ``edge (K,)`` whose
    normalised positions ``grid (K, S, 2)`` fall outside the image (compared in normalised units:
    map px ``-0.5`` and ``w - 0.5`` are ``-1 - ax / 2`` and ``1 + ax / 2``)."""
    e = edge.nonzero().squeeze(1)
    if not e.numel():
        return
    g = grid[e]
    gx, gy = g[..., 0], g[..., 1]
    out_px = (gx < -1.0 - 0.5 * ax) | (gx > 1.0 + 0.5 * ax) | (gy < -1.0 - 0.5 * ay) | (gy > 1.0 + 0.5 * ay)
    vals[e] = vals[e].masked_fill(out_px, math.nan)
