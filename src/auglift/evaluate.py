"""Evaluate a trained lifter on one or more PoseSets: batched inference, flip test, metrics, reports.

``evaluate(checkpoint, posesets)`` loads a checkpoint written by :func:`auglift.train.train`
(``torch.load(weights_only=True)``), rebuilds the lifter and its input encoder from it, predicts
every frame of every PoseSet in batches of windows (no per-frame Python loop), optionally
averages with the prediction for the left/right-mirrored input (flip test), and computes

* MPJPE, P-MPJPE, N-MPJPE, MPJVE (mm), PCK@150 mm and AUC (%) via :mod:`auglift.metrics`;
* per action (clip table ``action``), per joint, and occluded vs visible joints (``visible``).

Poses are compared root-relative (pelvis = 0), in metres, camera frame. Joints whose ground
truth is NaN are left out. Results are a plain dict; :func:`write_report` writes it as JSON and
markdown.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from auglift.checkpoint import Checkpoint
from auglift.encoding import parse_channels, target
from auglift.errors import ConfigError, DataError
from auglift.io import PathLike, check_output_dir, json_safe, write_file, write_json
from auglift.lifter import Lifter
from auglift.metrics import breakdown, joint_errors, per_joint, summary
from auglift.outputs import claim, writing
from auglift.poseset import PoseSet
from auglift.predict import Prediction, poseset_name
from auglift.predictions import Predictions
from auglift.skeleton import get_joint_set

__all__ = ["evaluate", "evaluate_poseset", "format_markdown", "write_report"]


# --------------------------------------------------------------------------- metrics
def evaluate_poseset(pred: Prediction, ps: PoseSet) -> dict[str, Any]:
    """Metrics of ``pred`` against ``ps.kp3d``: summary, per action, per joint, occluded vs visible."""
    ps.require("kp3d", why="needed for evaluation")
    rows = pred.rows
    gt = target(ps.kp3d[rows])
    mask = np.isfinite(gt).all(-1) & np.isfinite(pred.pred).all(-1)
    gt = np.where(mask[..., None], gt, 0.0)
    p = np.where(mask[..., None], pred.pred, 0.0)
    clip = np.asarray(ps.clip[rows])
    err, perr, nerr = _joint_errors(p, gt, mask)
    res: dict[str, Any] = {"frames": len(rows), "joints_evaluated": int(mask.sum()),
                           "metrics": summary(p, gt, mask, clip=clip, errors=(err, perr, nerr))}
    res["per_clip"] = _per_clip(clip, mask, err, perr, nerr)
    actions = ps.clips.action[clip]
    a1, a2 = breakdown(err, actions, mask), breakdown(perr, actions, mask)
    res["per_action"] = {str(a): {"mpjpe": v[0], "p_mpjpe": a2[a][0], "frames": v[1] // ps.num_joints}
                         for a, v in sorted(a1.items())}
    names = get_joint_set(ps.meta["joint_set"]).joints
    pj, ppj = per_joint(err, mask), per_joint(perr, mask)
    res["per_joint"] = {n: {"mpjpe": float(a), "p_mpjpe": float(b)} for n, a, b in zip(names, pj, ppj)}
    if ps.visible is not None:
        vis = np.asarray(ps.visible[rows], dtype=bool)
        b1, b2 = breakdown(err, vis, mask), breakdown(perr, vis, mask)
        res["occlusion"] = {("visible" if k else "occluded"): {"mpjpe": v[0], "p_mpjpe": b2[k][0], "joints": v[1]}
                            for k, v in sorted(b1.items(), reverse=True)}
    return res


def _joint_errors(p: np.ndarray, gt: np.ndarray, mask: np.ndarray, step: int = 8192
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`auglift.metrics.joint_errors` ``(N, J)`` mm with alignments none, procrustes and scale, in runs of
    ``step`` frames (every alignment is per frame: the same values, a fraction of the float64 temporaries)."""
    runs = [slice(s, s + step) for s in range(0, len(p), step)] or [slice(None)]
    err, perr, nerr = ([joint_errors(p[r], gt[r], align=a, mask=mask[r]) for r in runs]
                       for a in ("none", "procrustes", "scale"))
    return np.concatenate(err), np.concatenate(perr), np.concatenate(nerr)


def _per_clip(clip: np.ndarray, mask: np.ndarray, err: np.ndarray, perr: np.ndarray, nerr: np.ndarray
              ) -> dict[str, list[Any]]:
    """Per clip: evaluated joints and the sums of MPJPE, P-MPJPE and N-MPJPE joint errors (mm).

    The three alignments are per frame, so a set's metric is ``sum(sums) / sum(joints)`` over any
    resample of its clips: what :mod:`auglift.report` bootstraps its confidence intervals from.
    """
    ids, inv = np.unique(clip, return_inverse=True)
    w = mask.astype(np.float64)

    def sums(e: np.ndarray) -> list[float]:
        return np.bincount(inv, weights=(e * w).sum(-1), minlength=len(ids)).tolist()

    return {"clip": ids.tolist(), "joints": np.bincount(inv, weights=w.sum(-1), minlength=len(ids)).tolist(),
            "mpjpe": sums(err), "p_mpjpe": sums(perr), "n_mpjpe": sums(nerr)}


def evaluate(
    checkpoint: PathLike | Checkpoint,
    posesets: Iterable[PathLike | PoseSet] | PathLike | PoseSet,
    *,
    flip_test: bool = True,
    channels: str | Sequence[str] | None = None,
    split: str | None = None,
    subjects: Sequence[str] | None = None,
    actions: Sequence[str] | None = None,
    batch_size: int = 0,
    device: str = "auto",
    amp: str = "none",
    out: PathLike | None = None,
    save_predictions: PathLike | None = None,
    progress: bool | None = False,
    overwrite: bool = False,
    on_prediction: Callable[[PoseSet, Prediction], Any] | None = None,
) -> dict[str, Any]:
    """Evaluate one checkpoint on several PoseSets; returns ``{"checkpoint", "model", "input", "datasets": [...]}``.

    ``channels``: the input set the caller expects (e.g. ``"uadd"``); a checkpoint trained on
    another set raises :class:`ConfigError`. ``split``/``subjects``/``actions`` select clips of
    every PoseSet. With ``out``, writes ``eval.json`` and ``eval.md`` there (atomically); ``out`` is
    checked first and must be absent, empty or an evaluation directory unless ``overwrite``.
    ``checkpoint``: an ``auglift train`` checkpoint, an exported ``.onnx`` model or a
    ``save_pretrained`` directory (:class:`auglift.lifter.Lifter`, the one prediction path).

    ``save_predictions``: a directory for each PoseSet's per-frame predictions,
    ``<name>.predictions.npz`` (:class:`auglift.predictions.Predictions`: root-relative metres,
    frames, clips, ground truth, per-joint errors), or with one PoseSet a file ending in ``.npz``;
    each dataset's entry records its file under ``"predictions"``. ``on_prediction(ps, pred)`` is called with
    each PoseSet's predictions (the matrix caches its post-hoc errors from them instead of predicting again).
    """
    if out is not None:
        claim(out, "eval", overwrite=overwrite, create=False)  # before any work
        check_output_dir(out)
    lifter = Lifter.from_checkpoint(checkpoint, device=device, flip_test=flip_test, batch_size=batch_size, amp=amp)
    ckpt = lifter.checkpoint
    if channels is not None:
        ckpt.require_channels(parse_channels(channels))
    posesets = [posesets] if isinstance(posesets, (str, os.PathLike, PoseSet)) else list(posesets)
    results, taken = [], set[Path]()
    for item in posesets:
        ps = item if isinstance(item, PoseSet) else PoseSet.load(item, validate=True)  # values, as every command
        ps.require("kp3d", why="needed for evaluation")
        m = ps.clips.mask(split=split, subject=subjects or None, action=actions or None)
        if not m.any() or ps.rows_of(m).size == 0:
            raise DataError(ps.path, "clips", f"no frames match split={split!r} subjects={subjects} actions={actions}")
        pred = lifter.predict_poseset(ps, clips=m, progress=progress)
        if on_prediction is not None:
            on_prediction(ps, pred)
        res = {"name": poseset_name(ps), "path": None if ps.path is None else str(ps.path),
               "depth_model": ps.meta.get("depth_model"), **evaluate_poseset(pred, ps)}
        if save_predictions is not None:
            dst = _predictions_path(save_predictions, res["name"], len(posesets), taken)
            label = f"{ckpt.lifter.name} {ckpt.encoder.label}"
            res["predictions"] = str(Predictions.from_poseset(pred.pred, pred.rows, ps, label=label,
                                                              checkpoint=ckpt.where).save(dst))
        results.append(res)
    lifter = ckpt.lifter
    out_dict = json_safe({
        "checkpoint": ckpt.where,
        "model": {"name": lifter.name, "kwargs": lifter.kwargs, "receptive_field": lifter.receptive_field,
                  "anchor": lifter.anchor},
        "input": ckpt.encoder.label,
        "channels": list(ckpt.encoder.channels),
        "epoch": ckpt.epoch,
        "flip_test": bool(flip_test),
        "selection": {"split": split, "subjects": list(subjects or []), "actions": list(actions or [])},
        "datasets": results,
    })
    if out is not None:
        # checked before the work with the caller's overwrite; since then only our predictions went in
        with writing(out, "eval", overwrite=True, lock=False) as d:
            write_report(out_dict, d)
    return out_dict


def _predictions_path(dest: PathLike, name: str, count: int, taken: set[Path]) -> Path:
    """Where a PoseSet named ``name`` (of ``count``) saves its predictions (see :func:`evaluate`); ``taken``: the
    files of the PoseSets before it (a repeated name gets a number)."""
    d = Path(dest)
    if d.suffix.lower() == ".npz":
        if count != 1:
            raise ConfigError(f"--save-predictions {d}: a file name fits one PoseSet; give a directory for {count}")
        d.parent.mkdir(parents=True, exist_ok=True)
        return d
    d.mkdir(parents=True, exist_ok=True)
    stem, k = name.replace(os.sep, "_"), 1
    while (d / f"{stem}.predictions.npz") in taken:
        stem, k = f"{name.replace(os.sep, '_')}_{k}", k + 1
    taken.add(d / f"{stem}.predictions.npz")
    return d / f"{stem}.predictions.npz"


# --------------------------------------------------------------------------- reports
def _f(v: Any, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def format_markdown(res: Mapping[str, Any]) -> str:
    """Markdown tables of an :func:`evaluate` result."""
    m = res["model"]
    lines = [f"# Evaluation of `{res['checkpoint']}`", "",
             f"Lifter `{m['name']}` (window {m.get('receptive_field', 1)}), input `{res['input']}` "
             f"({', '.join(res['channels'])}), flip test {'on' if res['flip_test'] else 'off'}.", "",
             "| dataset | frames | MPJPE | P-MPJPE | N-MPJPE | MPJVE | PCK@150 | AUC |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for d in res["datasets"]:
        s = d["metrics"]
        lines.append(f"| {d['name']} | {d['frames']:,} | {_f(s['mpjpe'])} | {_f(s['p_mpjpe'])} | {_f(s['n_mpjpe'])} "
                     f"| {_f(s['mpjve'], 2)} | {_f(s['pck150'])} | {_f(s['auc'])} |")
    lines += ["", "Errors in millimetres (MPJVE in mm/frame), PCK and AUC in percent."]
    for d in res["datasets"]:
        lines += ["", f"## {d['name']}", "", "| action | frames | MPJPE | P-MPJPE |", "|---|---:|---:|---:|"]
        lines += [f"| {a} | {v['frames']:,} | {_f(v['mpjpe'])} | {_f(v['p_mpjpe'])} |"
                  for a, v in d["per_action"].items()]
        if "occlusion" in d:
            lines += ["", "| joints | count | MPJPE | P-MPJPE |", "|---|---:|---:|---:|"]
            lines += [f"| {k} | {v['joints']:,} | {_f(v['mpjpe'])} | {_f(v['p_mpjpe'])} |"
                      for k, v in d["occlusion"].items()]
        lines += ["", "| joint | MPJPE | P-MPJPE |", "|---|---:|---:|"]
        lines += [f"| {j} | {_f(v['mpjpe'])} | {_f(v['p_mpjpe'])} |" for j, v in d["per_joint"].items()]
    return "\n".join(lines) + "\n"


def write_report(res: Mapping[str, Any], out: PathLike) -> tuple[Path, Path]:
    """Write ``eval.json`` and ``eval.md`` into directory ``out`` (atomically); returns both paths."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    write_json(d / "eval.json", json_safe(dict(res)))
    write_file(d / "eval.md", format_markdown(res))
    return d / "eval.json", d / "eval.md"
