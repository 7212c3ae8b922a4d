"""Detected-vs-ground-truth 2D error: the numbers to check before trusting a detector's keypoints.

:func:`detection_errors` compares detected keypoints with the ground truth (a PoseSet's ``kp2d``
and ``kp2d_gt``) on every joint that both have (finite detection with confidence > 0 in a frame
with ``valid`` True, finite ground truth):

* the joint error ``||kp2d - kp2d_gt||`` px: mean, median, 95th percentile, the share above
  ``outlier_px`` (30 px), and the same per H36M-17 joint;
* how well confidence predicts error: the AUROC of ``1 - conf`` for telling joints whose error
  exceeds ``error_frac`` (5 %) of the person's height from the others (1: low confidence marks
  every bad joint, 0.5: confidence says nothing). Rank-based (Mann-Whitney U, ties counted half),
  undefined (None) when one of the two groups is empty;
* coverage: frames with a detection, joints missing from detected frames.

The person height (px) is the vertical extent of the ground-truth joints in the frame (head to
the lower foot for H36M-17, a little less than the body's height) unless given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from auglift.errors import DataError
from auglift.io import json_safe
from auglift.skeleton import H36M17

__all__ = ["auroc", "detection_errors", "format_detection_errors", "person_height_px", "poseset_detection_errors"]

OUTLIER_PX = 30.0
ERROR_FRAC = 0.05


def person_height_px(kp2d_gt: np.ndarray) -> np.ndarray:
    """``(N,)`` px: vertical extent of the finite ground-truth joints of ``kp2d_gt (N, J, 2)`` (NaN if none)."""
    y = np.asarray(kp2d_gt, dtype=np.float64)[..., 1]
    y = np.where(np.isfinite(y), y, np.nan)
    return np.fmax.reduce(y, axis=-1) - np.fmin.reduce(y, axis=-1)  # NaN-ignoring; NaN where all are


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for separating ``positive`` from negative items.

    The probability that a random positive scores above a random negative (ties count half),
    from the rank sum of the positives. NaN without positives or without negatives.
    """
    s = np.asarray(score, dtype=np.float64).ravel()
    pos = np.asarray(positive, dtype=bool).ravel()
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks for ties
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def _stats(err: np.ndarray, outlier_px: float) -> dict[str, float]:
    if err.size == 0:
        return dict.fromkeys(("mean", "median", "p95", "pct_over"), float("nan")) | {"joints": 0}
    return {"mean": float(err.mean()), "median": float(np.median(err)), "p95": float(np.percentile(err, 95)),
            "pct_over": float(100.0 * (err > outlier_px).mean()), "joints": int(err.size)}


def detection_errors(kp2d: np.ndarray, kp2d_gt: np.ndarray, conf: np.ndarray, valid: np.ndarray | None = None,
                     person_height: np.ndarray | None = None, *, outlier_px: float = OUTLIER_PX,
                     error_frac: float = ERROR_FRAC, joint_names: tuple[str, ...] = H36M17.joints) -> dict[str, Any]:
    """The error report (see the module doc) of detections against ground truth.

    Args:
        kp2d: ``(N, J, 2)`` px detected keypoints (NaN where missing).
        kp2d_gt: ``(N, J, 2)`` px ground truth.
        conf: ``(N, J)`` detection confidences in [0, 1].
        valid: ``(N,)`` bool, frames with a detection (default: every frame with a finite joint).
        person_height: ``(N,)`` px (default :func:`person_height_px` of the ground truth).
        outlier_px: the "large error" threshold in px; error_frac: the AUROC's error threshold as a
            fraction of the person height.

    Returns:
        JSON-ready dict: ``frames``, ``frames_detected``, ``joints_missing`` (detected frames,
        ground truth present, no detection), ``mean``/``median``/``p95`` px, ``pct_over`` (% of
        joints above ``outlier_px``), ``joints`` (evaluated), ``auroc``, ``pct_bad`` (% of joints
        above ``error_frac`` of the height), ``per_joint`` (name -> the same statistics), and
        the thresholds used.
    """
    kp = np.asarray(kp2d, dtype=np.float64)
    gt = np.asarray(kp2d_gt, dtype=np.float64)
    c = np.asarray(conf, dtype=np.float64)
    if kp.shape != gt.shape or kp.ndim != 3 or kp.shape[-1] != 2 or c.shape != kp.shape[:2]:
        raise DataError(None, "kp2d", f"expected kp2d and kp2d_gt (N, J, 2) and conf (N, J) of one size, got "
                                      f"{kp.shape}, {gt.shape}, {c.shape}")
    n, j = c.shape
    det_ok = np.isfinite(kp).all(-1) & (c > 0)
    frames = det_ok.any(-1) if valid is None else np.asarray(valid, dtype=bool).reshape(n)
    gt_ok = np.isfinite(gt).all(-1) & frames[:, None]
    used = gt_ok & det_ok
    err = np.linalg.norm(np.where(used[..., None], kp - gt, 0.0), axis=-1)
    height = person_height_px(gt) if person_height is None else np.asarray(person_height, np.float64).reshape(n)
    bad = err > error_frac * height[:, None]
    scored = used & np.isfinite(height)[:, None]
    names = joint_names if len(joint_names) == j else tuple(str(i) for i in range(j))
    out: dict[str, Any] = {"frames": n, "frames_detected": int(frames.sum()),
                           "joints_missing": int((gt_ok & ~det_ok).sum()), **_stats(err[used], outlier_px),
                           "auroc": auroc(1.0 - c[scored], bad[scored]),
                           "pct_bad": float(100.0 * bad[scored].mean()) if scored.any() else float("nan"),
                           "outlier_px": float(outlier_px), "error_frac": float(error_frac)}
    out["per_joint"] = {name: _stats(err[used[:, k], k], outlier_px) for k, name in enumerate(names)}
    return json_safe(out)  # NaN -> None (undefined statistics, e.g. the AUROC without a bad joint)


def _num(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def poseset_detection_errors(ps: Any, *, max_frames: int = 500_000, **kw: Any) -> dict[str, Any] | None:
    """:func:`detection_errors` of a PoseSet's ``kp2d``/``conf``/``kp2d_valid`` against its ``kp2d_gt``.

    None without ``kp2d_gt``. Above ``max_frames`` rows every k-th row is used (``frames_step``).
    """
    if getattr(ps, "kp2d_gt", None) is None or len(ps) == 0:
        return None
    step = max(1, -(-len(ps) // max_frames))
    valid = None if ps.kp2d_valid is None else np.asarray(ps.kp2d_valid[::step])
    return detection_errors(np.asarray(ps.kp2d[::step]), np.asarray(ps.kp2d_gt[::step]),
                            np.asarray(ps.conf[::step]), valid, **kw) | {"frames_step": step}


def format_detection_errors(rep: dict[str, Any]) -> str:
    """Text of a :func:`detection_errors` report (a summary line, the AUROC line and a per-joint table)."""
    step = f", every {rep['frames_step']}th frame" if rep.get("frames_step", 1) > 1 else ""
    lines = [f"  2D error vs kp2d_gt: mean {_num(rep['mean'])} px, median {_num(rep['median'])} px, 95% "
             f"{_num(rep['p95'])} px, {_num(rep['pct_over'])}% > {rep['outlier_px']:.0f} px ({rep['joints']:,} "
             f"joints; detections in {rep['frames_detected']:,}/{rep['frames']:,} frames{step})",
             f"  confidence vs error: AUROC {_num(rep['auroc'], '.3f')} for errors > {100 * rep['error_frac']:.0f}% "
             f"of the person height ({_num(rep['pct_bad'])}% of joints; 0.5 = confidence says nothing)",
             f"    {'joint':<15}{'mean':>8}{'median':>8}{'> ' + format(rep['outlier_px'], '.0f') + ' px':>10}"]
    for name, s in rep["per_joint"].items():
        lines.append(f"    {name:<15}{_num(s['mean']):>8}{_num(s['median']):>8}{_num(s['pct_over']):>9}%")
    return "\n".join(lines)
