"""Pose-lifting metrics, batched NumPy (plus torch losses for training).

All metric functions take ``pred`` and ``gt`` of shape ``(N, J, 3)`` in **metres** (any
leading batch shape works) and an optional ``mask (N, J)`` of joints to count, and return
**millimetres** (PCK and AUC in percent). Poses are made root-relative first (joint
``root``, default 0 = pelvis; pass ``root=None`` if they already are or should not be).

* ``mpjpe``   mean per-joint position error.
* ``p_mpjpe`` after per-frame similarity Procrustes (rotation, translation, scale; no reflection).
* ``n_mpjpe`` after per-frame optimal scale only.
* ``mpjve``   mean per-joint velocity error (finite differences along the frame axis,
  never across clip boundaries when ``clip`` ids are given).
* ``pck``     percentage of joints within ``threshold_mm`` (default 150 mm).
* ``auc``     mean PCK over thresholds 0..150 mm in 31 steps.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np

from auglift.errors import DataError
from auglift.geometry import procrustes, root_relative

if TYPE_CHECKING:
    import torch

__all__ = [
    "AUC_THRESHOLDS_MM",
    "auc",
    "breakdown",
    "joint_errors",
    "mpjpe",
    "mpjpe_loss",
    "mpjve",
    "n_mpjpe",
    "p_mpjpe",
    "pck",
    "per_joint",
    "summary",
    "velocity_loss",
]

AUC_THRESHOLDS_MM = np.linspace(0.0, 150.0, 31)

Align = Literal["none", "procrustes", "scale"]


def _check(
    pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None, dtype: type | None = np.float64
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    pred = np.asarray(pred, dtype=dtype)
    gt = np.asarray(gt, dtype=dtype)
    if pred.shape != gt.shape:
        raise DataError(None, "pred", f"shape {pred.shape} does not match gt {gt.shape}")
    if pred.ndim < 2 or pred.shape[-1] != 3:
        raise DataError(None, "pred", f"expected (N, J, 3) metres, got {pred.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != pred.shape[:-1]:
            raise DataError(None, "mask", f"expected shape {pred.shape[:-1]}, got {mask.shape}")
    return pred, gt, mask


def joint_errors(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    root: int | None = 0,
    align: Align = "none",
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Per-joint Euclidean errors ``(N, J)`` in millimetres after the chosen alignment.

    ``align="procrustes"`` fits a similarity per frame (on the masked joints when a mask is
    given), ``"scale"`` the least-squares scale of the root-relative prediction.
    """
    pred, gt, mask = _check(pred, gt, mask)
    if root is not None:
        pred, gt = root_relative(pred, root), root_relative(gt, root)
    if align == "procrustes":
        pred = procrustes(pred, gt, None if mask is None else mask.astype(np.float64))[0]
    elif align == "scale":
        w = np.ones(pred.shape[:-1]) if mask is None else mask.astype(np.float64)
        num = (w * (pred * gt).sum(-1)).sum(-1)
        den = np.maximum((w * (pred * pred).sum(-1)).sum(-1), 1e-12)
        pred = pred * (num / den)[..., None, None]
    elif align != "none":
        raise ValueError(f"unknown alignment {align!r}")
    return np.linalg.norm(pred - gt, axis=-1) * 1000.0


def _masked_mean(err: np.ndarray, mask: np.ndarray | None) -> float:
    vals = err if mask is None else err[mask]
    return float(vals.mean()) if vals.size else float("nan")


def mpjpe(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, *, root: int | None = 0) -> float:
    """Mean per-joint position error (mm) of root-relative poses."""
    return _masked_mean(joint_errors(pred, gt, root=root, mask=mask), mask)


def p_mpjpe(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, *, root: int | None = 0) -> float:
    """MPJPE (mm) after per-frame similarity Procrustes alignment (reflection excluded)."""
    return _masked_mean(joint_errors(pred, gt, root=root, align="procrustes", mask=mask), mask)


def n_mpjpe(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None, *, root: int | None = 0) -> float:
    """MPJPE (mm) after per-frame least-squares scaling of the root-relative prediction."""
    return _masked_mean(joint_errors(pred, gt, root=root, align="scale", mask=mask), mask)


def mpjve(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    clip: np.ndarray | None = None,
    root: int | None = 0,
) -> float:
    """Mean per-joint velocity error (mm/frame) along axis 0.

    ``clip`` ``(N,)`` ids mark sequence membership; differences between consecutive rows of
    different clips are skipped. A joint's velocity counts when it is masked-in at both frames.
    """
    pred, gt, mask = _check(pred, gt, mask, dtype=None)  # float64 per run below
    if pred.shape[0] < 2:
        return float("nan")
    step = 8192  # frames per run (plus one of overlap): the same values, a fraction of the float64 temporaries
    err = np.concatenate([_velocity_errors(pred[s: s + step + 1], gt[s: s + step + 1], root)
                          for s in range(0, len(pred) - 1, step)])
    keep = np.ones(err.shape, dtype=bool)
    if clip is not None:
        clip = np.asarray(clip)
        if clip.shape != pred.shape[:1]:
            raise DataError(None, "clip", f"expected shape {pred.shape[:1]}, got {clip.shape}")
        keep &= (clip[1:] == clip[:-1])[:, None]
    if mask is not None:
        keep &= mask[1:] & mask[:-1]
    return _masked_mean(err, keep)


def _velocity_errors(pred: np.ndarray, gt: np.ndarray, root: int | None) -> np.ndarray:
    """``|diff(pred) - diff(gt)|`` per joint (mm) of consecutive frames, ``(N - 1, J)``."""
    pred, gt, _ = _check(pred, gt, None)
    if root is not None:
        pred, gt = root_relative(pred, root), root_relative(gt, root)
    return np.linalg.norm(np.diff(pred, axis=0) - np.diff(gt, axis=0), axis=-1) * 1000.0


def pck(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    threshold_mm: float = 150.0,
    root: int | None = 0,
) -> float:
    """Percentage (0-100) of joints whose error is at most ``threshold_mm``."""
    err = joint_errors(pred, gt, root=root, mask=mask)
    return 100.0 * _masked_mean((err <= threshold_mm).astype(np.float64), mask)


def auc(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    thresholds_mm: Sequence[float] | np.ndarray = AUC_THRESHOLDS_MM,
    root: int | None = 0,
) -> float:
    """Area under the PCK curve (percent): mean PCK over ``thresholds_mm`` (0..150 mm, 31 steps)."""
    err = joint_errors(pred, gt, root=root, mask=mask)
    th = np.asarray(thresholds_mm, dtype=np.float64)
    hits = (err[..., None] <= th).astype(np.float64)  # (N, J, T)
    return 100.0 * _masked_mean(hits, mask)


def per_joint(errors: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean of ``errors (N, J)`` over frames per joint -> ``(J,)`` (NaN for joints never masked in)."""
    errors = np.asarray(errors, dtype=np.float64)
    if mask is None:
        return errors.mean(axis=0)
    m = np.asarray(mask, dtype=bool)
    cnt = m.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (errors * m).sum(axis=0) / cnt, np.nan)


def breakdown(
    errors: np.ndarray,
    groups: np.ndarray,
    mask: np.ndarray | None = None,
) -> dict[Hashable, tuple[float, int]]:
    """Mean error per group label: ``{label: (mean, count)}``.

    ``errors`` is ``(N, J)``; ``groups`` is ``(N,)`` (per-frame labels such as actions; every
    joint of a frame counts) or ``(N, J)`` (per-joint labels such as visible/occluded).
    Vectorised with ``np.unique`` + ``np.bincount``.
    """
    errors = np.asarray(errors, dtype=np.float64)
    g = np.asarray(groups)
    keep = np.ones(errors.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if g.shape == errors.shape[:1]:  # per-frame labels: sorted once per frame, not per joint
        labels, inv_frame = np.unique(g, return_inverse=True)
        inv = np.broadcast_to(inv_frame.reshape(-1, 1), errors.shape)[keep]
    elif g.shape == errors.shape:
        labels, inv = np.unique(g[keep], return_inverse=True)
    else:
        raise DataError(None, "groups", f"expected shape {errors.shape[:1]} or {errors.shape}, got {np.shape(groups)}")
    sums = np.bincount(inv, weights=errors[keep], minlength=len(labels))
    cnts = np.bincount(inv, minlength=len(labels))
    return {lab: (float(s / c), int(c)) for lab, s, c in zip(labels.tolist(), sums, cnts, strict=True) if c}


def summary(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    clip: np.ndarray | None = None,
    root: int | None = 0,
    errors: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> dict[str, float]:
    """All scalar metrics at once: ``mpjpe, p_mpjpe, n_mpjpe, mpjve, pck150, auc`` (mm / %).

    ``errors``: the :func:`joint_errors` ``(N, J)`` of ``pred`` with alignments ``"none"``, ``"procrustes"`` and
    ``"scale"`` (same ``root`` and ``mask``) when the caller has them already; computed otherwise.
    """
    if errors is None:
        errors = tuple(joint_errors(pred, gt, root=root, align=a, mask=mask) for a in ("none", "procrustes", "scale"))
    err, perr, nerr = errors
    return {
        "mpjpe": _masked_mean(err, mask),
        "p_mpjpe": _masked_mean(perr, mask),
        "n_mpjpe": _masked_mean(nerr, mask),
        "mpjve": mpjve(pred, gt, mask, clip=clip, root=root),
        "pck150": 100.0 * _masked_mean((err <= 150.0).astype(np.float64), mask),
        "auc": 100.0 * _masked_mean((err[..., None] <= AUC_THRESHOLDS_MM).mean(-1), mask),
    }


# --------------------------------------------------------------------------- torch losses
def mpjpe_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Differentiable MPJPE in the input unit (metres): mean Euclidean joint distance.

    ``pred``, ``gt``: ``(..., J, 3)`` tensors; ``mask`` optional ``(..., J)`` (bool or weights).
    """
    d = (pred - gt).norm(dim=-1)
    if mask is None:
        return d.mean()
    m = mask.to(d.dtype)
    return (d * m).sum() / m.sum().clamp_min(1.0)


def n_mpjpe_loss(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Differentiable N-MPJPE (MotionBERT's scale term), metres: :func:`mpjpe_loss` after scaling
    each predicted pose by the least-squares factor ``<p, g> / <p, p>`` over its counted joints.

    ``pred``, ``gt``: ``(..., J, 3)``; ``mask`` optional ``(..., J)`` (bool or weights). The factor
    is not detached, as in the original.
    """
    w = pred.new_ones(pred.shape[:-1]) if mask is None else mask.to(pred.dtype)
    num = (pred * gt * w[..., None]).sum(dim=(-1, -2))
    den = (pred * pred * w[..., None]).sum(dim=(-1, -2)).clamp_min(1e-12)
    return mpjpe_loss((num / den)[..., None, None] * pred, gt, mask)


def velocity_loss(pred: torch.Tensor, gt: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Mean Euclidean error of finite differences along ``dim`` (the time axis), metres/frame."""
    dp = pred.diff(dim=dim)
    dg = gt.diff(dim=dim)
    return (dp - dg).norm(dim=-1).mean()

