"""Simulated 2D detections: what an RTMPose-class detector would return on the synthetic frames.

Calibration: :class:`~auglift.datasets.synthetic.domains.DetectorSpec`. The detector "sees" a
COCO-like set of joints (hips, knees, ankles, nose, head, shoulders, elbows, wrists); pelvis,
spine and thorax are derived by the COCO-to-H36M rule, so their errors (and small systematic
offsets) follow from those of the detected joints, as in the AugLift pipeline. All draws come
from the generator passed in, vectorised over frames.

**Noise scale.** ``noise_scale`` (:func:`noise2d_scale`: 0 = exact 2D, 1 = the calibrated detector, in
[0, 5]) multiplies the noise sd and the outlier and left/right-swap rates; an outlier's displacement
and a swap's length (what one gross error is) and the confidence model (which grades the actual
error against the calibrated detector's sd, so a noisier detector is less confident) are kept. The
random draws do not depend on the scale (a rate is a threshold on the same uniform draws), so a
sweep changes magnitudes, not luck, and scale 1 reproduces the calibrated detector bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from auglift.datasets.synthetic.domains import DetectorSpec
from auglift.errors import ConfigError
from auglift.poseset import index_within_groups

__all__ = ["MAX_NOISE_SCALE", "DetectionResult", "noise2d_scale", "simulate_detections"]

MAX_NOISE_SCALE = 5.0

_BASE = np.array([1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16])
_ARMS = (np.array([11, 12, 13]), np.array([14, 15, 16]))
_LEGS = (np.array([4, 5, 6]), np.array([1, 2, 3]))
_SMOOTH_FRAMES = 1.5  # sd (frames) of the Gaussian filter of the detector's smooth noise


@dataclass
class DetectionResult:
    """``kp2d (N, 17, 2)`` float32 px (NaN where no detection), ``conf (N, 17)`` float32,
    ``valid (N,)`` bool, and diagnostics: ``outlier (N, 17)``, ``swapped (N,)`` bool."""

    kp2d: np.ndarray
    conf: np.ndarray
    valid: np.ndarray
    outlier: np.ndarray
    swapped: np.ndarray


def _derive(kp: np.ndarray) -> None:
    """COCO rule in place on keypoints ``(N, 17, ...)`` or confidences ``(N, 17)``: pelvis = mean hips,
    thorax = mean shoulders, spine = mean(pelvis, thorax)."""
    kp[:, 0] = 0.5 * (kp[:, 1] + kp[:, 4])
    kp[:, 8] = 0.5 * (kp[:, 11] + kp[:, 14])
    kp[:, 7] = 0.5 * (kp[:, 0] + kp[:, 8])


def noise2d_scale(value: float | str) -> float:
    """A 2D-noise scale: a number in [0, 5] (0 exact 2D, 1 the calibrated detector, 2 twice its noise)."""
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"2D noise scale must be a number in [0, {MAX_NOISE_SCALE:g}] (1 = the calibrated "
                          f"detector), got {value!r}") from None
    if isinstance(value, bool) or not 0.0 <= scale <= MAX_NOISE_SCALE:
        raise ConfigError(f"2D noise scale must lie in [0, {MAX_NOISE_SCALE:g}] (0 exact 2D, 1 the calibrated "
                          f"detector), got {value!r}")
    return scale


def _swap_events(u: np.ndarray, p_swap: np.ndarray, scale: float, swap_len: tuple[int, int],
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Swap events: start frames (``u < p_swap x scale``), lengths and kinds (0 arms, 1 legs, 2 all).

    The calibrated events (``u < p_swap``) take their length and kind from the first draws, as at
    scale 1; frames that start an event only at a larger scale take them from draws made for every
    frame afterwards, so no frame's event depends on the scale.
    """
    base = np.flatnonzero(u < p_swap)
    lens_all = np.empty(len(u), dtype=np.int64)
    kinds_all = np.empty(len(u), dtype=np.int64)
    lens_all[base] = rng.integers(swap_len[0], swap_len[1] + 1, len(base))
    kinds_all[base] = rng.integers(0, 3, len(base))
    extra = np.setdiff1d(np.arange(len(u)), base)
    lens_all[extra] = rng.integers(swap_len[0], swap_len[1] + 1, len(u))[extra]
    kinds_all[extra] = rng.integers(0, 3, len(u))[extra]
    starts = np.flatnonzero(u < p_swap * scale)
    return starts, lens_all[starts], kinds_all[starts]


def _temporal_noise(rng: np.random.Generator, shape: tuple[int, ...], clip: np.ndarray,
                    white_share: float) -> np.ndarray:
    """Unit-sd noise of ``shape (N, ...)``, frames first: white noise (``white_share`` of the variance) plus
    noise filtered along frames by a Gaussian of sd :data:`_SMOOTH_FRAMES` within each clip
    (``mode="nearest"`` at clip ends) and rescaled to unit sd. Two draws of ``shape`` from ``rng``."""
    white = rng.standard_normal(shape)
    smooth = rng.standard_normal(shape)
    gain = np.sqrt(2 * np.sqrt(np.pi) * _SMOOTH_FRAMES)  # 1 / the filter's L2 norm
    for seg in np.split(np.arange(shape[0]), np.flatnonzero(np.diff(clip)) + 1):
        if len(seg) > 1:
            smooth[seg] = gaussian_filter1d(smooth[seg], _SMOOTH_FRAMES, axis=0, mode="nearest") * gain
    return np.sqrt(white_share) * white + np.sqrt(1.0 - white_share) * smooth


def simulate_detections(kp2d_gt: np.ndarray, visible: np.ndarray, width: np.ndarray, height: np.ndarray,
                        clip: np.ndarray, spec: DetectorSpec, rng: np.random.Generator,
                        noise_scale: float = 1.0) -> DetectionResult:
    """Detections for ``N`` frames.

    Args:
        kp2d_gt: ``(N, 17, 2)`` true projections, px.
        visible: ``(N, 17)`` bool, not self-occluded and inside the image.
        width, height: ``(N,)`` image size per frame, px.
        clip: ``(N,)`` clip id per frame (temporal smoothing and swap events stay inside clips).
        spec: the detector calibration.
        rng: random generator (the only source of randomness).
        noise_scale: multiplies the noise sd and the outlier and swap rates (module docstring);
            the same draws at every scale.
    """
    gt = np.asarray(kp2d_gt, dtype=np.float64)
    N = len(gt)
    W = np.asarray(width, dtype=np.float64)[:, None]
    H = np.asarray(height, dtype=np.float64)[:, None]
    u, v = gt[..., 0], gt[..., 1]
    inside = (u >= -0.5) & (u <= W - 0.5) & (v >= -0.5) & (v <= H - 0.5)
    occluded = inside & ~visible
    ext = np.maximum(np.ptp(u, axis=1), np.ptp(v, axis=1)) * 1.1  # ~ person height in px
    ext = np.maximum(ext, 20.0)[:, None]
    nominal = spec.sigma_frac * ext * np.asarray(spec.joint_factor)[None, :]
    border = np.minimum.reduce([u + 0.5, W - 0.5 - u, v + 0.5, H - 0.5 - v])
    sigma = nominal * np.where(occluded, spec.occluded_factor, 1.0) * np.where(inside, 1.0, spec.truncated_factor)
    sigma *= 1.0 + spec.border_gain * np.exp(-np.maximum(border, 0.0) / (0.04 * ext))
    noise = _temporal_noise(rng, (N, 17, 2), clip, spec.white_share) * (sigma * noise_scale)[..., None]
    # outliers: a displacement of 8-35% of the person's height in a random direction
    p_out = np.where(occluded | ~inside, spec.outlier_p_occluded, spec.outlier_p)
    outlier = rng.random((N, 17)) < np.minimum(p_out * noise_scale, 1.0)
    mag = rng.uniform(*spec.outlier_range, (N, 17)) * ext
    ang = rng.uniform(0, 2 * np.pi, (N, 17))
    noise += (outlier * mag)[..., None] * np.stack([np.cos(ang), np.sin(ang)], axis=-1)
    det = gt + noise
    det = np.clip(det, 0.0, np.stack([W, H], axis=-1) - 1.0)  # detectors answer inside the image
    err = np.linalg.norm(det - gt, axis=-1)
    # confidence: falls with occlusion, truncation and the actual error, with calibration noise
    base = np.where(inside, np.where(occluded, spec.conf_logits[1], spec.conf_logits[0]), spec.conf_logits[2])
    calib = _temporal_noise(rng, (N, 17), clip, spec.white_share)  # the same temporal model as the positions
    logit = base - spec.conf_err_slope * np.minimum(err / nominal, 12.0) + spec.conf_noise * calib
    over = outlier & (rng.random((N, 17)) < spec.overconfident_p)
    logit = np.where(over, spec.conf_logits[0] - 0.5 + spec.conf_noise * rng.standard_normal((N, 17)), logit)
    conf = 1.0 / (1.0 + np.exp(-logit))
    # left/right swaps: events start with probability swap_p per frame (x back_view_factor when the
    # subject faces away: its left hip appears left of its right hip), lasting swap_len frames
    facing_away = gt[:, 4, 0] < gt[:, 1, 0]
    p_swap = spec.swap_p * np.where(facing_away, spec.back_view_factor, 1.0)
    starts, lens, kinds = _swap_events(rng.random(N), p_swap, noise_scale, spec.swap_len, rng)
    first = np.repeat(starts, lens)
    rows = first + index_within_groups(lens)
    kind = np.repeat(kinds, lens)
    ok = rows < N
    rows, kind, first = rows[ok], kind[ok], first[ok]
    ok = clip[rows] == clip[first]  # events end at clip boundaries
    which = np.full(N, -1)
    which[rows[ok]] = kind[ok]
    swapped = which >= 0
    for k, pairs in ((0, [_ARMS]), (1, [_LEGS]), (2, [_ARMS, _LEGS])):
        sel = np.flatnonzero(which == k)
        for left, right in pairs if len(sel) else []:
            idx = np.concatenate([left, right])
            src = np.concatenate([right, left])
            det[sel[:, None], idx[None, :]] = det[sel[:, None], src[None, :]]
            conf[sel[:, None], idx[None, :]] = conf[sel[:, None], src[None, :]]
    _derive(det)
    _derive(conf)
    valid = inside[:, _BASE].sum(axis=1) >= spec.min_joints
    det[~valid] = np.nan
    conf[~valid] = 0.0
    return DetectionResult(det.astype(np.float32), np.clip(conf, 0.0, 1.0).astype(np.float32), valid,
                           outlier, swapped)
