"""Evaluation protocols of the published lifters, so numbers compare with their papers.

One function, :func:`evaluate_protocol`, scores per-row predictions under a named convention;
the conventions differ in three places (read from each codebase's evaluation code):

============  ============================  ==============================  ====================
protocol      root of the prediction         Human3.6M average               sub-actions
============  ============================  ==============================  ====================
auglift       subtracted (pelvis = 0)        frame-weighted over all rows    groups kept apart
videopose3d   kept (ground truth root = 0)   mean of the 15 action means      merged
mmpose        kept (ground truth root = 0)   frame-weighted over all rows    merged (per action)
motionbert    subtracted, after the 2.5D     mean of the 15 action means      merged
              factor (when given)
============  ============================  ==============================  ====================

* **auglift** (the project's default, what ``auglift eval`` reports as of this version): both
  poses made root-relative, errors averaged over all evaluated joints of all rows; per-action
  groups are the clip table's names as they are (``"Directions 1"`` apart from ``"Directions"``).
* **videopose3d** (``run.py --evaluate``): the prediction is scored as the network outputs it
  (the root joint is predicted, not zeroed), against the ground truth with its root at 0. Each
  action (sub-actions merged: ``"Directions 1"`` and ``"Directions"``) is frame-weighted inside;
  the headline is the plain mean over the actions. MPJVE is each clip's mean velocity error
  weighted by the clip's frame count, as the original weights it.
* **mmpose** (``MPJPE`` metric of ``mmpose.evaluation``): no predicted-root subtraction (the
  decoded prediction gets the ground-truth root added), one frame-weighted mean over all rows;
  per-action values (``action.split('_')[0]``) are frame-weighted too.
* **motionbert** (``train.py evaluate``): predictions in its 2.5D image space are multiplied by
  the per-frame ``2.5d_factor`` (pass ``factor``; metric predictions need none), then both poses
  are made root-relative; per-action means over frames, headline = mean over actions. Its three
  S9 sequences with damaged ground truth (:data:`auglift.datasets.h36m.DAMAGED`) are left out
  when ``subjects`` is given.

Human3.6M action names are mapped to the 15 canonical ones (:func:`h36m_action`: ``WalkingDog``
/ ``WalkDog``, ``TakingPhoto`` / ``Photo``, ``WalkingTogether`` / ``WalkTogether``, any sub-action
suffix dropped); other datasets' groups are their names without a trailing sub-action number.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from auglift.datasets.h36m import DAMAGED, canonical_action
from auglift.errors import ConfigError, DataError
from auglift.metrics import joint_errors

__all__ = [
    "H36M_ACTIONS",
    "PROTOCOLS",
    "Protocol",
    "action_table",
    "evaluate_protocol",
    "h36m_action",
    "velocity_errors",
]

# The 15 Human3.6M actions in the order of the published tables (VideoPose3D's Table 1).
H36M_ACTIONS: tuple[str, ...] = ("Directions", "Discussion", "Eating", "Greeting", "Phoning", "Photo", "Posing",
                                 "Purchases", "Sitting", "SittingDown", "Smoking", "Waiting", "WalkDog", "Walking",
                                 "WalkTogether")
_ALIASES = {a.lower(): a for a in H36M_ACTIONS} | {"takingphoto": "Photo", "walkingdog": "WalkDog",
                                                    "walkingtogether": "WalkTogether"}


@dataclass(frozen=True)
class Protocol:
    """How a convention scores: ``subtract_pred_root`` (make the prediction root-relative),
    ``average`` (``"frames"``: one frame-weighted mean; ``"actions"``: mean of per-action
    means), ``merge_subactions`` (group ``"Directions 1"`` with ``"Directions"``),
    ``clip_weighted_velocity`` (MPJVE per clip, weighted by the clip's frames: VideoPose3D),
    ``skip_damaged`` (leave out :data:`~auglift.datasets.h36m.DAMAGED`)."""

    name: str
    subtract_pred_root: bool
    average: Literal["frames", "actions"]
    merge_subactions: bool
    clip_weighted_velocity: bool = False
    skip_damaged: bool = False


PROTOCOLS: dict[str, Protocol] = {
    "auglift": Protocol("auglift", True, "frames", False),
    "videopose3d": Protocol("videopose3d", False, "actions", True, clip_weighted_velocity=True),
    "mmpose": Protocol("mmpose", False, "frames", True),
    "motionbert": Protocol("motionbert", True, "actions", True, skip_damaged=True),
}


def h36m_action(name: str) -> str | None:
    """The canonical Human3.6M action of a sequence name (``"Directions 1"``, ``"Directions_1"``,
    ``"WalkingDog"``, ``"TakingPhoto 1"`` -> ``"Directions"``, ``"WalkDog"``, ``"Photo"``), or
    ``None`` when the name is not one of the 15 actions."""
    head = canonical_action(str(name)).partition(" ")[0]
    return _ALIASES.get(re.sub(r"[^a-z]", "", head.lower()))


def _group(name: str, merge: bool) -> str:
    """The action group of a clip: canonical H36M action, else the name (without a trailing
    sub-action number when merging)."""
    if not merge:
        return str(name)
    canon = h36m_action(name)
    return canon if canon is not None else re.sub(r"[ _]\d+$", "", str(name))


def velocity_errors(pred: np.ndarray, gt: np.ndarray, clip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint velocity errors between consecutive rows of the same clip.

    ``pred``, ``gt`` ``(N, J, 3)`` metres; ``clip (N,)`` ids (``None``: one sequence). Returns
    ``(err (N - 1, J) mm/frame, valid (N - 1,))``: ``valid`` is False where rows ``i`` and
    ``i + 1`` belong to different clips.
    """
    err = np.linalg.norm(np.diff(pred, axis=0) - np.diff(gt, axis=0), axis=-1) * 1000.0
    valid = np.ones(len(err), dtype=bool) if clip is None else np.asarray(clip)[1:] == np.asarray(clip)[:-1]
    return err, valid


def evaluate_protocol(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    actions: Sequence[str] | np.ndarray | None = None,
    clips: np.ndarray | None = None,
    subjects: Sequence[str] | np.ndarray | None = None,
    fps: float | np.ndarray | None = None,
    factor: np.ndarray | None = None,
    protocol: str = "auglift",
    root: int = 0,
) -> dict[str, Any]:
    """Score predictions under a published evaluation convention (see the module docstring).

    Args:
        pred: ``(N, J, 3)`` predicted joints, metres, camera frame, as the lifter outputs them
            (root-relative targets; the root joint as predicted). With ``factor``: MotionBERT's
            2.5D image-space units instead.
        gt: ``(N, J, 3)`` ground truth, metres (absolute or root-relative: its root is removed).
            Joints with a NaN coordinate in either array are left out (rows of ``pred`` that
            are all NaN count as missing predictions and are left out too).
        actions: ``(N,)`` action name of each row (the clip table's ``action``); without it the
            whole set is one group.
        clips: ``(N,)`` clip id of each row, rows of a clip consecutive and in frame order:
            velocities are taken inside clips only (one clip without it).
        subjects: ``(N,)`` subject of each row (for the ``motionbert`` protocol's damaged-sequence
            list).
        fps: frames per second (scalar or ``(N,)``) for MPJVE in mm/s.
        factor: ``(N,)`` MotionBERT's ``2.5d_factor`` (metres per 2.5D unit), applied to
            ``pred`` and ``gt`` before the root is removed.
        protocol: a key of :data:`PROTOCOLS`.
        root: the root joint (pelvis).

    Returns:
        ``{"protocol", "average", "frames", "mpjpe", "p_mpjpe", "n_mpjpe", "mpjve" (mm/frame),
        "mpjve_mm_s" (with ``fps``), "per_action": {group: {the same metrics, "frames"}},
        "actions_missing": [canonical H36M actions without frames, when any group is one]}``,
        errors in millimetres. The headline values follow the protocol's averaging.
    """
    proto = PROTOCOLS.get(protocol)
    if proto is None:
        raise ConfigError(f"protocol: unknown {protocol!r} (choose from {', '.join(PROTOCOLS)})")
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise DataError(None, "pred", f"expected pred and gt of one shape (N, J, 3), got {pred.shape} and {gt.shape}")
    n = len(pred)
    names = np.array(["all"] * n if actions is None else [str(a) for a in np.asarray(actions)], dtype=object)
    clip = np.zeros(n, np.int64) if clips is None else np.asarray(clips)
    keep = _kept_rows(proto, names, subjects, n)
    if factor is not None:
        f = np.asarray(factor, dtype=np.float64).reshape(-1, 1, 1)
        pred, gt = pred * f, gt * f
    gt = gt - gt[:, root : root + 1]
    if proto.subtract_pred_root:
        pred = pred - pred[:, root : root + 1]
    mask = np.isfinite(pred).all(-1) & np.isfinite(gt).all(-1) & keep[:, None]
    p, g = np.where(mask[..., None], pred, 0.0), np.where(mask[..., None], gt, 0.0)
    per_joint = {key: joint_errors(p, g, root=None, align=align, mask=mask)  # (the mask weights the alignments)
                 for key, align in (("mpjpe", "none"), ("p_mpjpe", "procrustes"), ("n_mpjpe", "scale"))}
    vel, vvalid = velocity_errors(p, g, clip)
    vmask = mask[1:] & mask[:-1] & vvalid[:, None]
    rate = None if fps is None else np.broadcast_to(np.asarray(fps, dtype=np.float64), (n,))
    groups = np.array([_group(a, proto.merge_subactions) for a in names], dtype=object)
    per_action = {name: _group_metrics(proto, per_joint, mask, groups == name, vel, vmask, clip, rate)
                  for name in sorted(set(groups[keep]))}
    out: dict[str, Any] = {"protocol": proto.name, "average": proto.average, "frames": int(mask.any(1).sum())}
    if proto.average == "actions":
        for key in ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "mpjve_mm_s"):
            vals = [v[key] for v in per_action.values() if key in v]
            if vals:
                out[key] = float(np.nanmean(vals))
    else:
        out.update({k: v for k, v in _group_metrics(proto, per_joint, mask, keep, vel, vmask, clip, rate).items()
                    if k != "frames"})
    out["per_action"] = per_action
    if any(h36m_action(g) is not None for g in per_action):
        out["actions_missing"] = [a for a in H36M_ACTIONS if a not in per_action]
    return out


def _kept_rows(proto: Protocol, names: np.ndarray, subjects: Any, n: int) -> np.ndarray:
    """Rows the protocol scores: all, less the damaged S9 sequences for MotionBERT's."""
    keep = np.ones(n, dtype=bool)
    if proto.skip_damaged and subjects is not None:
        subj = np.asarray(subjects).astype(str)
        if subj.shape != (n,):
            raise DataError(None, "subjects", f"expected shape ({n},), got {subj.shape}")
        canon = np.array([canonical_action(a) for a in names], dtype=object)
        for s, a in DAMAGED:
            keep &= ~((subj == s) & (canon == a))
    return keep


def _group_metrics(proto: Protocol, per_joint: dict[str, np.ndarray], mask: np.ndarray, rows: np.ndarray,
                   vel: np.ndarray, vmask: np.ndarray, clip: np.ndarray, rate: np.ndarray | None) -> dict[str, Any]:
    """Frame-weighted metrics of the rows ``rows (N,)``: mean over their evaluated joints."""
    m = mask & rows[:, None]
    cnt = int(m.sum())
    res: dict[str, Any] = {k: float(v[m].sum() / cnt) if cnt else float("nan") for k, v in per_joint.items()}
    res["frames"] = int(m.any(1).sum())
    vm = vmask & rows[1:, None] & rows[:-1, None]
    res["mpjve"] = _velocity_mean(proto, vel, vm, clip)
    if rate is not None:
        res["mpjve_mm_s"] = _velocity_mean(proto, vel * rate[1:, None], vm, clip)
    return res


def _velocity_mean(proto: Protocol, vel: np.ndarray, vm: np.ndarray, clip: np.ndarray) -> float:
    """Mean velocity error over ``vm``; VideoPose3D's: per clip, weighted by the clip's frames."""
    if not vm.any():
        return float("nan")
    if not proto.clip_weighted_velocity:
        return float(vel[vm].mean())
    ids, inv = np.unique(clip[1:], return_inverse=True)
    sums = np.bincount(inv, weights=(vel * vm).sum(1), minlength=len(ids))
    cnts = np.bincount(inv, weights=vm.sum(1), minlength=len(ids))
    frames = np.bincount(inv, weights=vm.any(1), minlength=len(ids)) + 1.0  # T frames for T - 1 steps
    has = cnts > 0
    return float((sums[has] / cnts[has] * frames[has]).sum() / frames[has].sum())


def action_table(results: dict[str, dict[str, Any]], metric: str = "mpjpe", digits: int = 1) -> str:
    """Markdown table of per-action errors over the 15 Human3.6M actions, one row per result.

    ``results`` maps a row label (a method or protocol) to an :func:`evaluate_protocol` result;
    columns are :data:`H36M_ACTIONS` in the published order and ``Avg`` (the result's headline
    value); ``-`` where a result has no frames of an action.
    """
    head = "| | " + " | ".join(H36M_ACTIONS) + " | Avg |"
    lines = [head, "|---" * (len(H36M_ACTIONS) + 2) + "|"]
    for label, res in results.items():
        per = res.get("per_action", {})
        cells = [per[a][metric] if a in per else None for a in H36M_ACTIONS] + [res.get(metric)]
        lines.append(f"| {label} | " + " | ".join("-" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"
                                                 for v in cells) + " |")
    return "\n".join(lines)
