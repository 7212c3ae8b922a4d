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

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from auglift.encoding import check_compatible, encode, parse_channels, target
from auglift.errors import ConfigError, DataError
from auglift.io import atomic_write, write_json
from auglift.metrics import breakdown, joint_errors, per_joint, summary
from auglift.poseset import PoseSet, Windows
from auglift.skeleton import get_joint_set

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "CHECKPOINT_FORMAT",
    "Prediction",
    "auto_batch",
    "build_lifter",
    "check_lifter_info",
    "evaluate",
    "evaluate_poseset",
    "format_markdown",
    "load_checkpoint",
    "model_from_checkpoint",
    "predict",
    "predict_windows",
    "resolve_device",
    "write_report",
]

CHECKPOINT_FORMAT = "auglift.checkpoint"
PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- checkpoints
def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` (CPU tensors) and check its layout."""
    import warnings

    import torch

    from auglift.safe_pickle import describe_load_error

    p = Path(path)
    if not p.is_file():
        raise DataError(p, None, "checkpoint file not found" if not p.exists() else "not a regular file")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles before refusing them
            warnings.simplefilter("ignore")
            ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling/zip error means "not a checkpoint"
        raise DataError(p, None, f"cannot read checkpoint ({describe_load_error(exc)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise DataError(p, "format", f"not an auglift checkpoint (expected format {CHECKPOINT_FORMAT!r})")
    for key in ("model", "model_state", "encoder", "config"):
        if key not in ckpt:
            raise DataError(p, key, "missing from the checkpoint")
    _check_layout(ckpt, p)
    ckpt["_path"] = str(p)
    return ckpt


def _check_layout(ckpt: Mapping[str, Any], p: Path) -> None:
    """The nested parts of a checkpoint have the types evaluation relies on (a file is untrusted input)."""
    import torch

    state = ckpt["model_state"]
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                 for k, v in state.items()):
        raise DataError(p, "model_state", "expected a state dict (parameter name -> tensor)")
    check_lifter_info(ckpt["model"], ckpt["encoder"], p)


def check_lifter_info(model: Any, enc: Any, p: PathLike | None) -> None:
    """Check a checkpoint's (or exported model's) lifter description and encoder state: the types
    and values building and encoding rely on. Raises :class:`DataError` naming ``p``."""
    from auglift.encoding import DEFAULTS, make_state

    if not isinstance(model, Mapping):
        raise DataError(p, "model", f"expected a table of lifter arguments, got {type(model).__name__}")
    ints = {"in_channels": 1, "num_joints": 1, "receptive_field": 1}
    for key, lo in ints.items():
        v = model.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise DataError(p, f"model.{key}", f"expected an integer >= {lo}, got {v!r}")
    if not isinstance(model.get("name"), str) or not isinstance(model.get("kwargs", {}), Mapping):
        raise DataError(p, "model", "expected a lifter name and a table of keyword arguments")
    if model.get("anchor", "center") not in ("center", "causal", "start"):
        raise DataError(p, "model.anchor", f"expected center, causal or start, got {model.get('anchor')!r}")
    if not isinstance(enc, Mapping) or "channels" not in enc:
        raise DataError(p, "encoder", "expected the encoder state (a table with the input channels and options)")
    try:
        make_state({k: enc[k] for k in DEFAULTS if k in enc})
    except (ConfigError, TypeError, ValueError) as exc:
        raise DataError(p, "encoder", f"invalid encoder state ({exc})") from None
    missing = [k for k in (*DEFAULTS, "label") if k not in enc]
    if missing:
        raise DataError(p, "encoder", f"encoder state lacks {', '.join(missing)}")
    if len(enc["channels"]) != model["in_channels"]:
        raise DataError(p, "encoder", f"{len(enc['channels'])} input channels, but the lifter takes "
                                      f"{model['in_channels']}")


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; otherwise ``torch.device(name)``."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"runtime.device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"runtime.device: {name!r} requested but CUDA is not available")
    return dev


def build_lifter(name: str, in_channels: int, num_joints: int, **kwargs: Any) -> nn.Module:
    """:func:`auglift.models.build`, also accepting ``"package.module:callable"`` for a lifter outside auglift."""
    from auglift.models import MODELS, build, register

    if ":" in name and name not in MODELS:
        register(name, name)
    return build(name, in_channels=in_channels, num_joints=num_joints, **kwargs)


def model_from_checkpoint(ckpt: Mapping[str, Any], device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the lifter stored in ``ckpt`` (from :func:`load_checkpoint`) in eval mode on ``device``.

    Only registered lifters are built (auglift's own, or ones registered with
    :func:`auglift.models.register` in this process): a ``"package.module:callable"`` name read
    from a checkpoint file is not imported, because a checkpoint must not be able to run code.
    """
    from auglift.models import MODELS

    info = ckpt["model"]
    name = info.get("name") if isinstance(info, Mapping) else None
    if not isinstance(name, str) or name not in MODELS:
        hint = (f"; a lifter outside auglift is built only after auglift.models.register({name!r}, {name!r}) "
                "in your own code (a checkpoint cannot import code)" if isinstance(name, str) and ":" in name else
                f"; known: {', '.join(sorted(MODELS))}")
        raise DataError(ckpt.get("_path"), "model.name", f"unknown lifter {name!r}{hint}")
    try:
        model = build_lifter(info["name"], int(info["in_channels"]), int(info["num_joints"]),
                             **dict(info.get("kwargs", {})))
    except (KeyError, ImportError, AttributeError) as exc:
        raise DataError(ckpt.get("_path"), "model.name", f"cannot build lifter {info['name']!r}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise DataError(ckpt.get("_path"), "model.kwargs", f"cannot build lifter {info['name']!r}: {exc}") from None
    try:
        model.load_state_dict(ckpt["model_state"])
    except RuntimeError as exc:
        raise DataError(ckpt.get("_path"), "model_state",
                        f"does not fit lifter {info['name']!r}: {str(exc).splitlines()[0]}") from None
    return model.to(device).eval()


# --------------------------------------------------------------------------- inference
def auto_batch(window: int, frames: int = 65536) -> int:
    """Windows per inference batch so that a batch holds about ``frames`` frames (at most 4096 windows)."""
    return int(max(1, min(4096, frames // max(1, window))))


def _forward(model: nn.Module, x: torch.Tensor, *, flip_test: bool, perm: torch.Tensor,
             channels: Sequence[str], center: str, root: int, amp: str) -> torch.Tensor:
    import torch

    from auglift.encoding import flip_input, flip_pose

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        if flip_test:
            xf = flip_input(x, perm, channels, center=center, root=root)
            y = model(torch.cat([x, xf])).float()
            b = x.shape[0]
            return 0.5 * (y[:b] + flip_pose(y[b:], perm))
        return model(x).float()


def predict_windows(
    model: nn.Module,
    state: Mapping[str, Any],
    ps: PoseSet,
    windows: Windows,
    sel: np.ndarray | None = None,
    *,
    batch_size: int = 0,
    flip_test: bool = True,
    flip_center: str = "root",
    device: str | torch.device = "cpu",
    amp: str = "none",
    progress: bool = False,
    desc: str = "predict",
) -> np.ndarray:
    """Predict windows ``sel`` (indices into ``windows``, default all): ``(M, T_out, J, 3)`` float32 metres.

    ``T_out`` is 1 for many-to-one windows (``windows.target`` set) and the window length for
    many-to-many ones. The model is used as given (call ``model.eval()`` first).
    """
    import torch
    from tqdm.auto import tqdm

    sel = np.arange(len(windows)) if sel is None else np.asarray(sel, dtype=np.int64)
    bs = batch_size or auto_batch(windows.length)
    perm = torch.as_tensor(get_joint_set(ps.meta["joint_set"]).flip_permutation, device=device)
    channels = state["channels"]
    t_out = 1 if windows.target is not None else windows.length
    out = np.empty((len(sel), t_out, ps.num_joints, 3), dtype=np.float32)
    with torch.inference_mode(), tqdm(total=len(sel), desc=desc, unit="win", unit_scale=True,
                                      disable=not progress, leave=False) as bar:
        for s in range(0, len(sel), bs):
            idx = sel[s: s + bs]
            x = torch.from_numpy(encode(ps, windows.rows(idx), state)).to(device)
            y = _forward(model, x, flip_test=flip_test, perm=perm, channels=channels, center=flip_center,
                         root=state["root"], amp=amp)
            if y.shape[1] != t_out:
                raise ValueError(f"lifter returned {y.shape[1]} frames per window, expected {t_out}")
            out[s: s + len(idx)] = y.cpu().numpy()
            bar.update(len(idx))
    return out


@dataclass(frozen=True)
class Prediction:
    """Per-row predictions of a PoseSet: ``pred (M, J, 3)`` metres root-relative, for ``rows (M,)``."""

    pred: np.ndarray
    rows: np.ndarray


def windows_for(ps: PoseSet, model_info: Mapping[str, Any], *, clips: np.ndarray | None = None,
                stride: int = 0) -> Windows:
    """The evaluation windows of a lifter: every frame once (stride 1, or the window length if many-to-many)."""
    t = int(model_info["receptive_field"])
    anchor = model_info["anchor"]
    if stride <= 0:
        stride = t if anchor == "start" else 1
    return ps.windows(t, stride=stride, anchor=anchor, pad="edge", clips=clips)


def scatter_rows(pred: np.ndarray, windows: Windows, sel: np.ndarray) -> Prediction:
    """Average window predictions ``(M, T_out, J, 3)`` onto the rows they cover (padding repeats skipped)."""
    if windows.target is not None:
        rows = windows.target_rows(sel)
        order = np.argsort(rows, kind="stable")
        return Prediction(pred[order, 0], rows[order])
    rows = windows.rows(sel).ravel()
    keep = windows.valid(sel).ravel()
    rows, p = rows[keep], pred.reshape(-1, *pred.shape[2:])[keep]
    uniq, inv = np.unique(rows, return_inverse=True)
    acc = np.zeros((len(uniq), *p.shape[1:]), dtype=np.float64)
    np.add.at(acc, inv, p)
    cnt = np.bincount(inv, minlength=len(uniq))
    return Prediction((acc / cnt[:, None, None]).astype(np.float32), uniq)


def predict(
    ckpt: Mapping[str, Any],
    ps: PoseSet,
    *,
    model: nn.Module | None = None,
    clips: np.ndarray | None = None,
    batch_size: int = 0,
    flip_test: bool = True,
    device: str | torch.device = "cpu",
    amp: str = "none",
    progress: bool = False,
) -> Prediction:
    """Predict every frame of the selected clips of ``ps`` with the checkpoint's lifter and encoder."""
    state = ckpt["encoder"]
    check_compatible(state, ps)
    model = model if model is not None else model_from_checkpoint(ckpt, device)
    w = windows_for(ps, ckpt["model"], clips=clips)
    sel = np.arange(len(w))
    center = ckpt["config"].get("augment", {}).get("flip_center", "root")
    pred = predict_windows(model, state, ps, w, sel, batch_size=batch_size, flip_test=flip_test,
                           flip_center=center, device=device, amp=amp, progress=progress,
                           desc=f"predict {_name(ps)}")
    return scatter_rows(pred, w, sel)


# --------------------------------------------------------------------------- metrics
def _clean(x: Any) -> Any:
    """JSON-safe: NaN -> None, numpy scalars -> Python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _name(ps: PoseSet) -> str:
    return ps.path.name if ps.path is not None else str(ps.meta.get("source", "poseset"))


def evaluate_poseset(pred: Prediction, ps: PoseSet) -> dict[str, Any]:
    """Metrics of ``pred`` against ``ps.kp3d``: summary, per action, per joint, occluded vs visible."""
    ps.require("kp3d", why="needed for evaluation")
    rows = pred.rows
    gt = target(ps.kp3d[rows])
    mask = np.isfinite(gt).all(-1) & np.isfinite(pred.pred).all(-1)
    gt = np.where(mask[..., None], gt, 0.0)
    p = np.where(mask[..., None], pred.pred, 0.0)
    clip = np.asarray(ps.clip[rows])
    res: dict[str, Any] = {"frames": len(rows), "joints_evaluated": int(mask.sum()),
                           "metrics": summary(p, gt, mask, clip=clip)}
    err = joint_errors(p, gt, mask=mask)
    perr = joint_errors(p, gt, align="procrustes", mask=mask)
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


def evaluate(
    checkpoint: PathLike | Mapping[str, Any],
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
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate one checkpoint on several PoseSets; returns ``{"checkpoint", "model", "input", "datasets": [...]}``.

    ``channels``: the input set the caller expects (e.g. ``"uadd"``); a checkpoint trained on
    another set raises :class:`ConfigError`. ``split``/``subjects``/``actions`` select clips of
    every PoseSet. With ``out``, writes ``eval.json`` and ``eval.md`` there (atomically).
    """
    import torch

    ckpt = dict(checkpoint) if isinstance(checkpoint, Mapping) else load_checkpoint(checkpoint)
    where = ckpt.get("_path", "<checkpoint>")
    state = ckpt["encoder"]
    if channels is not None:
        want = list(parse_channels(channels))
        if want != list(state["channels"]):
            raise ConfigError(f"{where}: checkpoint was trained on input {state['label']!r} "
                              f"({', '.join(state['channels'])}), but input {','.join(want)!r} was requested")
    dev = resolve_device(device)
    model = model_from_checkpoint(ckpt, dev)
    if isinstance(posesets, (str, os.PathLike, PoseSet)):
        posesets = [posesets]
    results = []
    for item in posesets:
        ps = item if isinstance(item, PoseSet) else PoseSet.load(item)
        ps.require("kp3d", why="needed for evaluation")
        m = ps.clips.mask(split=split, subject=subjects or None, action=actions or None)
        if not m.any() or ps.rows_of(m).size == 0:
            raise DataError(ps.path, "clips", f"no frames match split={split!r} subjects={subjects} actions={actions}")
        with torch.inference_mode():
            pred = predict(ckpt, ps, model=model, clips=m, batch_size=batch_size, flip_test=flip_test,
                           device=dev, amp=amp, progress=progress)
        res = {"name": _name(ps), "path": None if ps.path is None else str(ps.path),
               "depth_model": ps.meta.get("depth_model"), **evaluate_poseset(pred, ps)}
        results.append(res)
    out_dict = _clean({
        "checkpoint": str(where),
        "model": {k: ckpt["model"][k] for k in ("name", "kwargs", "receptive_field", "anchor") if k in ckpt["model"]},
        "input": state["label"],
        "channels": list(state["channels"]),
        "epoch": ckpt.get("epoch"),
        "flip_test": bool(flip_test),
        "selection": {"split": split, "subjects": list(subjects or []), "actions": list(actions or [])},
        "datasets": results,
    })
    if out is not None:
        write_report(out_dict, out)
    return out_dict


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
    write_json(d / "eval.json", _clean(dict(res)))
    with atomic_write(d / "eval.md", "w") as fh:
        fh.write(format_markdown(res))
    return d / "eval.json", d / "eval.md"
