"""Monocular-depth error model: turns exact z-buffers into imperfect "estimated" depth maps.

The model and its calibration are described in
:class:`~auglift.datasets.synthetic.domains.DepthErrorSpec`. Everything random is a function of
the sequence's error seed and the frame number (``np.random.default_rng([seed, frame, k])``),
never of the batch a frame is rendered in, so any frame's map is reproducible on its own. The
per-pixel noise of a frame is a random circular shift of the sequence's white-noise texture
(drawing 65k normals per frame would dominate the cost).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from auglift.datasets.synthetic.domains import DepthErrorSpec

__all__ = ["FIELD_GRID", "SequenceError", "apply_depth_error", "draw_sequence_error"]

FIELD_GRID = 4  # smooth error fields are drawn on a 4x4 grid over the image and interpolated


@dataclass(frozen=True)
class SequenceError:
    """Per-sequence draw of the error model (stored in the clip's ``source``).

    ``seed``: integer seeding per-frame draws; ``log_scale``: global log-scale bias; ``shift``:
    metres; ``flicker``: ``(3, 3)`` rows ``[amplitude, frequency Hz, phase]`` of the slow
    log-scale flicker; the remaining fields copy the domain's :class:`DepthErrorSpec`.
    """

    seed: int
    log_scale: float
    shift: float
    flicker: np.ndarray
    field_sd: float
    frame_field_sd: float
    white_sd: float
    blur_frac: float
    max_depth: float
    rel_scale_sd: float
    rel_shift_max: float

    def to_json(self) -> dict:
        return {"seed": self.seed, "log_scale": self.log_scale, "shift": self.shift,
                "flicker": self.flicker.tolist(), "field_sd": self.field_sd,
                "frame_field_sd": self.frame_field_sd, "white_sd": self.white_sd, "blur_frac": self.blur_frac,
                "max_depth": self.max_depth, "rel_scale_sd": self.rel_scale_sd, "rel_shift_max": self.rel_shift_max}

    @staticmethod
    def from_json(d: dict) -> SequenceError:
        return SequenceError(int(d["seed"]), float(d["log_scale"]), float(d["shift"]),
                             np.asarray(d["flicker"], dtype=np.float64).reshape(-1, 3), float(d["field_sd"]),
                             float(d["frame_field_sd"]), float(d["white_sd"]), float(d["blur_frac"]),
                             float(d["max_depth"]), float(d["rel_scale_sd"]), float(d["rel_shift_max"]))


def draw_sequence_error(spec: DepthErrorSpec, rng: np.random.Generator) -> SequenceError:
    """Draw one sequence's error parameters (values rounded as stored)."""
    amp = spec.flicker_sd * np.sqrt(2.0 / 3.0)  # three sinusoids with total sd flicker_sd
    flicker = np.stack([np.full(3, amp), rng.uniform(0.05, 0.8, 3), rng.uniform(0, 2 * np.pi, 3)], axis=1)
    return SequenceError(
        seed=int(rng.integers(0, 2**31 - 1)),
        log_scale=round(float(rng.normal(0.0, spec.log_scale_sd)), 6),
        shift=round(float(rng.normal(0.0, spec.shift_sd)), 6),
        flicker=np.round(flicker, 6),
        field_sd=spec.field_sd, frame_field_sd=spec.frame_field_sd, white_sd=spec.white_sd,
        blur_frac=spec.blur_frac, max_depth=spec.max_depth, rel_scale_sd=spec.rel_scale_sd,
        rel_shift_max=spec.rel_shift_max)


def _interp_matrix(n: int) -> np.ndarray:
    """``(n, FIELD_GRID)`` smooth (Gaussian-RBF, rows sum to 1) interpolation from grid to ``n`` pixels."""
    x = (np.arange(n) + 0.5) / n
    c = (np.arange(FIELD_GRID) + 0.5) / FIELD_GRID
    w = np.exp(-0.5 * ((x[:, None] - c[None, :]) * FIELD_GRID / 0.85) ** 2)
    return w / w.sum(axis=1, keepdims=True)


def _field(grids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Smooth fields ``(B, h, w)`` float32 from grid values ``(B, G, G)``.

    Separable interpolation written as broadcast multiply-adds rather than BLAS matrix
    products: tiny products are slow under a loaded multi-threaded BLAS.
    """
    uy = _interp_matrix(size[0]).astype(np.float32)
    ux = _interp_matrix(size[1]).astype(np.float32)
    rows = np.einsum("hi,bij->bhj", uy, grids.astype(np.float32))  # (B, h, G)
    out = rows[:, :, 0, None] * ux[None, None, :, 0]
    for j in range(1, grids.shape[2]):
        out += rows[:, :, j, None] * ux[None, None, :, j]
    return out


@functools.lru_cache(maxsize=64)
def _texture(seed: int, h: int, w: int) -> np.ndarray:
    """A sequence's unit white-noise texture ``(h, w)`` float32; frames use random circular shifts of it."""
    return np.random.default_rng([seed, 0x7E47]).standard_normal((h, w), dtype=np.float32)


def _blur(z: np.ndarray, sigma: float, boxes: np.ndarray | None) -> None:
    """Gaussian edge blur in place; only inside ``boxes`` (B, 4) ``[u0, u1, v0, v1]`` (+ margin) when given.

    Depth edges exist only at the silhouettes of the body and props (planes are smooth and stay
    unchanged by a Gaussian), so blurring a window around them equals blurring the whole map
    there at a fraction of the cost.
    """
    _, h, w = z.shape
    if boxes is None:
        z[:] = gaussian_filter(z, sigma=(0, sigma, sigma), mode="nearest", truncate=3.0)
        return
    m = int(np.ceil(3 * sigma)) + 1
    keep = boxes[:, 1] >= boxes[:, 0]
    if not keep.any():
        return
    sel = np.flatnonzero(keep)
    bx = boxes[sel]
    lo_u, hi_u = np.maximum(bx[:, 0] - 2 * m, 0), np.minimum(bx[:, 1] + 2 * m, w - 1)
    lo_v, hi_v = np.maximum(bx[:, 2] - 2 * m, 0), np.minimum(bx[:, 3] + 2 * m, h - 1)
    Wk, Hk = int((hi_u - lo_u).max()) + 1, int((hi_v - lo_v).max()) + 1
    u0, v0 = np.minimum(lo_u, w - Wk), np.minimum(lo_v, h - Hk)
    ui = u0[:, None] + np.arange(Wk)[None, :]
    vi = v0[:, None] + np.arange(Hk)[None, :]
    idx = (sel[:, None, None], vi[:, :, None], ui[:, None, :])
    win = z[idx]
    blurred = gaussian_filter(win, sigma=(0, sigma, sigma), mode="nearest", truncate=3.0)
    inner_u = (ui >= (bx[:, 0] - m)[:, None]) & (ui <= (bx[:, 1] + m)[:, None])
    inner_v = (vi >= (bx[:, 2] - m)[:, None]) & (vi <= (bx[:, 3] + m)[:, None])
    z[idx] = np.where(inner_v[:, :, None] & inner_u[:, None, :], blurred, win)


def apply_depth_error(z: np.ndarray, errors: list[SequenceError], frame: np.ndarray, fps: np.ndarray,
                      flavour: str, boxes: np.ndarray | None = None) -> np.ndarray:
    """Estimated depth maps from exact ones.

    Args:
        z: ``(B, h, w)`` float32 true depth, metres (modified in place and returned).
        errors: per row, its sequence's :class:`SequenceError`.
        frame: ``(B,)`` frame numbers; ``fps``: ``(B,)``.
        flavour: ``"metric"`` (metres) or ``"relative"`` (affine-invariant disparity, larger = nearer).
        boxes: optional ``(B, 4)`` int ``[u0, u1, v0, v1]`` map-pixel boxes holding every depth
            edge (the body and props); the edge blur is computed only around them.

    Returns:
        ``(B, h, w)`` float32.
    """
    B, h, w = z.shape
    # edge blur (sigma = blur_frac x long side, the same fraction in image and map pixels)
    sig = np.round(np.array([e.blur_frac for e in errors]) * max(h, w), 4)
    for s in np.unique(sig):
        if s > 0:
            m = np.flatnonzero(sig == s)
            sub = z[m]
            _blur(sub, float(s), None if boxes is None else boxes[m])
            z[m] = sub
    t = np.asarray(frame, dtype=np.float64) / np.asarray(fps, dtype=np.float64)
    log_scale = np.empty(B)
    grids = np.empty((B, FIELD_GRID, FIELD_GRID))
    rel = np.empty((B, 2))
    shift = np.empty(B)
    vmax = np.empty(B)
    fac = np.empty((B, h, w), dtype=np.float32)
    static: dict[int, np.ndarray] = {}
    for i, e in enumerate(errors):
        fl = e.flicker
        log_scale[i] = e.log_scale + float((fl[:, 0] * np.sin(2 * np.pi * fl[:, 1] * t[i] + fl[:, 2])).sum())
        if e.seed not in static:
            static[e.seed] = np.random.default_rng([e.seed, 0x5EED]).standard_normal((FIELD_GRID, FIELD_GRID))
        g = np.random.default_rng([e.seed, int(frame[i]), 1])
        grids[i] = e.field_sd * static[e.seed] + e.frame_field_sd * g.standard_normal((FIELD_GRID, FIELD_GRID))
        dy, dx = g.integers(0, h), g.integers(0, w)
        tex = _texture(e.seed, h, w)
        np.multiply(np.roll(tex, (int(dy), int(dx)), axis=(0, 1)), np.float32(e.white_sd), out=fac[i])
        a = np.exp(0.5 + e.rel_scale_sd * g.standard_normal())
        rel[i] = a, a * g.uniform(0.0, e.rel_shift_max)
        shift[i] = e.shift
        vmax[i] = e.max_depth
    fac += _field(grids, (h, w))
    fac += log_scale.astype(np.float32)[:, None, None]
    np.exp(fac, out=fac)
    z *= fac
    z += shift.astype(np.float32)[:, None, None]
    np.clip(z, 0.05, vmax.astype(np.float32)[:, None, None], out=z)
    if flavour == "relative":
        np.divide(1.0, z, out=z)
        z *= rel[:, 0].astype(np.float32)[:, None, None]
        z += rel[:, 1].astype(np.float32)[:, None, None]
    return z
