"""Monocular-depth error model: turns exact z-buffers into imperfect "estimated" depth maps.

The model and its calibration are described in
:class:`~auglift.datasets.synthetic.domains.DepthErrorSpec`; the failures that act on the body's
geometry (thin limbs, order swaps) are in :mod:`~auglift.datasets.synthetic.depth_failures`,
this module does the map-level steps (relief, blur, scale, fields, noise, relative disparity).

**Quality.** A sequence's ``severity`` scales every error magnitude: 0 is exact depth (``ideal``:
the metric flavour equals the true z-buffer), 1 the calibrated ``default``, 2 ``poor``
(:data:`DEPTH_QUALITY`); any value in between (or above) sweeps depth quality continuously. The
random draws do not depend on the severity, so a sweep changes magnitudes, not luck.

Everything random is a function of the sequence's error seed and the frame number
(``np.random.default_rng([seed, frame, k])``), never of the batch a frame is rendered in, so any
frame's map is reproducible on its own. The per-pixel noise of a frame is a random circular shift
of the sequence's white-noise texture (drawing 65k normals per frame would dominate the cost).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
from scipy.ndimage import gaussian_filter

from auglift.datasets.synthetic.domains import DepthErrorSpec
from auglift.datasets.synthetic.kernels import error_factor
from auglift.errors import ConfigError

__all__ = ["DEPTH_QUALITY", "FIELD_GRID", "SequenceError", "apply_depth_error", "depth_severity",
           "draw_sequence_error", "quality_record"]

FIELD_GRID = 4  # smooth error fields are drawn on a 4x4 grid over the image and interpolated
DEPTH_QUALITY: dict[str, float] = {"ideal": 0.0, "default": 1.0, "poor": 2.0}  # preset -> severity
MAX_SEVERITY = 5.0


def depth_severity(quality: str | float) -> float:
    """The severity of a depth quality: a preset name of :data:`DEPTH_QUALITY` or a number in [0, 5]."""
    if isinstance(quality, str):
        if quality in DEPTH_QUALITY:
            return DEPTH_QUALITY[quality]
        try:
            quality = float(quality)
        except ValueError:
            raise ConfigError(f"depth quality must be {', '.join(DEPTH_QUALITY)} or a severity in "
                              f"[0, {MAX_SEVERITY:g}], got {quality!r}") from None
    if isinstance(quality, bool) or not 0.0 <= float(quality) <= MAX_SEVERITY:
        raise ConfigError(f"depth quality severity must lie in [0, {MAX_SEVERITY:g}] (0 ideal, 1 default, "
                          f"2 poor), got {quality!r}")
    return float(quality)


def quality_record(quality: str | float) -> dict:
    """``{"preset": name or None, "severity": s}`` as stored in PoseSet meta."""
    s = depth_severity(quality)
    return {"preset": next((k for k, v in DEPTH_QUALITY.items() if v == s), None), "severity": s}


@dataclass(frozen=True)
class SequenceError:
    """Per-sequence draw of the error model (stored in the clip's ``source``).

    ``seed``: integer seeding per-frame draws; ``log_scale``: the sequence's random log-scale
    deviation (at severity 1, without the domain bias); ``shift``: metres; ``flicker``: ``(3, 3)``
    rows ``[amplitude, frequency Hz, phase]`` of the slow log-scale flicker; ``severity``: the
    depth quality (0 exact, 1 default); ``spec``: the domain's calibration.
    """

    seed: int
    log_scale: float
    shift: float
    flicker: np.ndarray
    severity: float
    spec: DepthErrorSpec

    def to_json(self) -> dict:
        return {"seed": self.seed, "log_scale": self.log_scale, "shift": self.shift,
                "flicker": self.flicker.tolist(), "severity": self.severity, "spec": asdict(self.spec)}

    @staticmethod
    def from_json(d: dict, fallback: DepthErrorSpec) -> SequenceError:
        """Parse :meth:`to_json` output; spec fields missing (sources of version 1 stored the old
        fields flat and no severity) come from ``fallback``, the domain's current calibration."""
        given = d.get("spec", d)
        spec = replace(fallback, **{f.name: _as_field(given[f.name]) for f in fields(DepthErrorSpec)
                                    if f.name in given})
        return SequenceError(int(d["seed"]), float(d["log_scale"]), float(d["shift"]),
                             np.asarray(d["flicker"], dtype=np.float64).reshape(-1, 3),
                             float(d.get("severity", 1.0)), spec)

    def with_severity(self, severity: float) -> SequenceError:
        return replace(self, severity=float(severity))


def _as_field(v: object) -> object:
    return tuple(v) if isinstance(v, list) else v


def draw_sequence_error(spec: DepthErrorSpec, rng: np.random.Generator, severity: float = 1.0) -> SequenceError:
    """Draw one sequence's error parameters (values rounded as stored)."""
    amp = spec.flicker_sd * np.sqrt(2.0 / 3.0)  # three sinusoids with total sd flicker_sd
    flicker = np.stack([np.full(3, amp), rng.uniform(0.05, 0.8, 3), rng.uniform(0, 2 * np.pi, 3)], axis=1)
    return SequenceError(
        seed=int(rng.integers(0, 2**31 - 1)),
        log_scale=round(float(rng.normal(0.0, spec.log_scale_sd)), 6),
        shift=round(float(rng.normal(0.0, spec.shift_sd)), 6),
        flicker=np.round(flicker, 6),
        severity=float(severity),
        spec=spec)


def _interp_matrix(n: int) -> np.ndarray:
    """``(n, FIELD_GRID)`` smooth (Gaussian-RBF, rows sum to 1) interpolation from grid to ``n`` pixels."""
    x = (np.arange(n) + 0.5) / n
    c = (np.arange(FIELD_GRID) + 0.5) / FIELD_GRID
    w = np.exp(-0.5 * ((x[:, None] - c[None, :]) * FIELD_GRID / 0.85) ** 2)
    return w / w.sum(axis=1, keepdims=True)


def _field_rows(grids: np.ndarray, h: int) -> np.ndarray:
    """The smooth fields' grid columns interpolated to the map rows: ``(B, h, G)`` float32 from grid values
    ``(B, G, G)`` (:func:`~auglift.datasets.synthetic.kernels.error_factor` interpolates the columns)."""
    return np.einsum("hi,bij->bhj", _interp_matrix(h).astype(np.float32), grids.astype(np.float32))


@functools.lru_cache(maxsize=64)
def _texture(seed: int, h: int, w: int) -> np.ndarray:
    """A sequence's unit white-noise texture ``(h, w)`` float32; frames use random circular shifts of it."""
    return np.random.default_rng([seed, 0x7E47]).standard_normal((h, w), dtype=np.float32)


@functools.lru_cache(maxsize=4096)
def _sequence_draws(seed: int) -> tuple[np.ndarray, float]:
    """A sequence's static field grid ``(G, G)`` and relief deviation (unit normals)."""
    field = np.random.default_rng([seed, 0x5EED]).standard_normal((FIELD_GRID, FIELD_GRID))
    return field, float(np.random.default_rng([seed, 0x2E1F]).standard_normal())


def _blur(z: np.ndarray, sigma: float, boxes: np.ndarray | None, rows: np.ndarray) -> None:
    """Gaussian edge blur of the maps ``rows`` of ``z`` in place; only inside ``boxes`` (B, 4)
    ``[u0, u1, v0, v1]`` (+ margin) when given.

    Depth edges exist only at the silhouettes of the body and props (planes are smooth and stay
    unchanged by a Gaussian), so blurring a window around them equals blurring the whole map
    there at a fraction of the cost.
    """
    _, h, w = z.shape
    if boxes is None:
        z[rows] = gaussian_filter(z[rows], sigma=(0, sigma, sigma), mode="nearest", truncate=3.0)
        return
    m = int(np.ceil(3 * sigma)) + 1
    sel = rows[boxes[rows, 1] >= boxes[rows, 0]]
    if not len(sel):
        return
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


def _blur_edges(z: np.ndarray, errors: list[SequenceError], boxes: np.ndarray | None) -> None:
    """Edge blur in place: sigma = severity x blur_frac x long side (the same fraction in image and map)."""
    h, w = z.shape[1:]
    sig = np.round(np.array([e.severity * e.spec.blur_frac for e in errors]) * max(h, w), 4)
    for s in np.unique(sig):
        if s > 0:
            _blur(z, float(s), boxes, np.flatnonzero(sig == s))


def _compress_relief(z: np.ndarray, body: np.ndarray, z_ref: np.ndarray, k: np.ndarray,
                     boxes: np.ndarray | None) -> None:
    """Body pixels towards the reference depth in place: ``z -> z_ref + k (z - z_ref)``; only inside
    ``boxes`` (B, 4) ``[u0, u1, v0, v1]`` when given (the body lies inside its box)."""
    h, w = z.shape[1:]
    for i in np.flatnonzero(np.abs(k - 1.0) > 1e-12).tolist():
        u0, u1, v0, v1 = (0, w - 1, 0, h - 1) if boxes is None else boxes[i].tolist()
        win, m = z[i, v0: v1 + 1, u0: u1 + 1], body[i, v0: v1 + 1, u0: u1 + 1]
        win[m] = np.float32(z_ref[i]) + np.float32(k[i]) * (win[m] - np.float32(z_ref[i]))


def apply_depth_error(z: np.ndarray, errors: list[SequenceError], frame: np.ndarray, fps: np.ndarray,
                      flavour: str, boxes: np.ndarray | None = None, body: np.ndarray | None = None,
                      z_ref: np.ndarray | None = None, work: np.ndarray | None = None) -> np.ndarray:
    """Estimated depth maps from exact ones (the map-level steps 3-4 of ``DepthErrorSpec``).

    Args:
        z: ``(B, h, w)`` float32 true depth, metres (modified in place and returned).
        errors: per row, its sequence's :class:`SequenceError` (with the severity to render at).
        frame: ``(B,)`` frame numbers; ``fps``: ``(B,)``.
        flavour: ``"metric"`` (metres) or ``"relative"`` (affine-invariant disparity, larger = nearer).
        boxes: optional ``(B, 4)`` int ``[u0, u1, v0, v1]`` map-pixel boxes holding every depth
            edge (the body and props); the edge blur is computed only around them.
        body: optional ``(B, h, w)`` bool, pixels showing the body; with ``z_ref`` ``(B,)`` metres
            (the pelvis depth) the body's relief is compressed about ``z_ref``.
        work: optional ``(B, h, w)`` float32 C-contiguous buffer for the error factor (else allocated).

    Returns:
        ``(B, h, w)`` float32.
    """
    B, h, w = z.shape
    t = np.asarray(frame, dtype=np.float64) / np.asarray(fps, dtype=np.float64)
    sev = np.array([e.severity for e in errors])
    log_scale, relief = np.empty(B), np.empty(B)
    grids = np.empty((B, FIELD_GRID, FIELD_GRID))
    rel, shift = np.empty((B, 2)), np.empty(B)
    roll, white = np.empty((B, 2), dtype=np.int64), np.empty(B, dtype=np.float32)
    textures: dict[int, int] = {}  # sequence seed -> index in the stack of textures
    tex_of = np.array([textures.setdefault(e.seed, len(textures)) for e in errors], dtype=np.int64)
    for i, e in enumerate(errors):
        sp, fl = e.spec, e.flicker
        flicker = float((fl[:, 0] * np.sin(2 * np.pi * fl[:, 1] * t[i] + fl[:, 2])).sum())
        log_scale[i] = sp.scale_bias + e.log_scale + flicker
        field, relief_seq = _sequence_draws(e.seed)
        g = np.random.default_rng([e.seed, int(frame[i]), 1])
        grids[i] = sp.field_sd * field + sp.frame_field_sd * g.standard_normal((FIELD_GRID, FIELD_GRID))
        roll[i] = g.integers(0, h), g.integers(0, w)
        white[i] = sp.white_sd * sev[i]
        a = np.exp(0.5 + sp.rel_scale_sd * g.standard_normal())
        rel[i] = a, a * g.uniform(0.0, sp.rel_shift_max)
        relief[i] = np.log(sp.relief) + sp.relief_seq_sd * relief_seq + sp.relief_frame_sd * g.standard_normal()
        shift[i] = e.shift
    if body is not None and z_ref is not None:
        _compress_relief(z, body, np.asarray(z_ref), np.exp(sev * relief), boxes)
    _blur_edges(z, errors, boxes)
    fac = np.empty((B, h, w), dtype=np.float32) if work is None else work
    error_factor(fac, np.stack([_texture(seed, h, w) for seed in textures]), tex_of, roll, white,
                 _field_rows(grids * sev[:, None, None], h), _interp_matrix(w).astype(np.float32),
                 (sev * log_scale).astype(np.float32))
    np.exp(fac, out=fac)
    z *= fac
    z += (sev * shift).astype(np.float32)[:, None, None]
    vmax = np.array([e.spec.max_depth if s > 0 else np.inf for e, s in zip(errors, sev)], dtype=np.float32)
    np.clip(z, 0.05 * (sev > 0).astype(np.float32)[:, None, None], vmax[:, None, None], out=z)
    if flavour == "relative":
        np.divide(1.0, z, out=z)
        z *= rel[:, 0].astype(np.float32)[:, None, None]
        z += rel[:, 1].astype(np.float32)[:, None, None]
    return z
