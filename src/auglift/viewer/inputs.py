"""What ``auglift view`` can show, read into one form: :class:`ViewData` (clips of per-frame arrays).

Three inputs (:func:`read_inputs` tells them apart):

* a PoseSet directory: the ``kp3d`` poses of each clip, with ``kp2d``/``conf``/``uadd``;
* one or more predictions files (:class:`auglift.predictions.Predictions`): the ground truth and
  every file's prediction overlaid, frames matched by clip (subject/action/camera) and frame
  number; per-joint errors; the worst frames of each prediction;
* an ``auglift infer`` output (``poses3d.npz`` + ``poses3d.json``): one clip per track, and the
  input video or images when they are still where ``poses3d.json`` says.

Clips are chosen by name patterns before anything is read, and long inputs are thinned to every
``stride``-th frame (:func:`plan`) so that a page never holds more than ``max_frames`` frames.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from auglift.encoding import target
from auglift.errors import ConfigError, DataError
from auglift.io import PathLike, check_npz, read_json
from auglift.poseset import ClipTable, PoseSet, default_intrinsics
from auglift.predictions import FORMAT as PREDICTIONS_FORMAT
from auglift.predictions import Predictions, checked_array
from auglift.skeleton import get_joint_set

__all__ = ["ViewClip", "ViewData", "plan", "read_inputs"]

WORST_FRAMES = 20  # listed per prediction


@dataclass(frozen=True)
class ViewClip:
    """One clip as the page shows it (``n`` frames, ``J`` joints).

    ``poses[k]``: layer ``k``'s joints ``(n, J, 3)`` metres, root-relative, camera frame (NaN where
    missing); ``errors[k]``: its per-joint errors ``(n, J)`` mm or None; ``root`` ``(n, 3)`` metres,
    camera frame (None: unknown); ``kp2d`` ``(n, J, 2)`` px, ``conf`` ``(n, J)``, ``uadd``
    ``(n, J, 3)``; ``intrinsics`` ``[fx, fy, cx, cy]`` px of a ``width`` x ``height`` image.
    """

    name: str
    fps: float
    width: int
    height: int
    intrinsics: np.ndarray
    frame: np.ndarray
    poses: list[np.ndarray]
    errors: list[np.ndarray | None]
    root: np.ndarray | None = None
    kp2d: np.ndarray | None = None
    conf: np.ndarray | None = None
    uadd: np.ndarray | None = None
    stride: int = 1


@dataclass
class ViewData:
    """Everything a page shows: ``layers`` as ``(label, role)`` with role ``"gt"``, ``"pred"`` or ``"pose"``."""

    kind: str
    title: str
    joint_set: str
    layers: list[tuple[str, str]]
    clips: list[ViewClip]
    uadd_units: str = ""
    notes: list[str] = field(default_factory=list)
    # per prediction layer: (label, [(clip index, frame number, mean error mm), ...]) worst first
    worst: list[tuple[str, list[tuple[int, int, float]]]] = field(default_factory=list)
    # infer outputs: the input video / image folder and its expected (width, height)
    frames_source: tuple[Path, int, int] | None = None


# ----------------------------------------------------------------------------- selection
def plan(names: Sequence[str], lengths: Sequence[int], patterns: Sequence[str] | None,
         max_frames: int | None) -> tuple[np.ndarray, int]:
    """Clips to show (indices into ``names``) and the frame stride that keeps them under ``max_frames``.

    A pattern is a clip index or an ``fnmatch`` pattern on the clip name (``S9/walk*``); a clip is
    shown when any pattern matches it (all clips without patterns).
    """
    chosen = np.arange(len(names))
    if patterns:
        chosen = np.flatnonzero([any((pat.isdigit() and int(pat) == i) or fnmatch.fnmatchcase(n, pat)
                                     for pat in patterns) for i, n in enumerate(names)])
        if not len(chosen):
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise ConfigError(f"--clip {' '.join(patterns)}: no clip matches; clips: {shown}")
    total = int(np.asarray(lengths, dtype=np.int64)[chosen].sum())
    if total == 0:
        raise ConfigError("nothing to show: the chosen clips have no frames")
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"--max-frames must be at least 1, got {max_frames}")
    stride = 1 if max_frames is None or total <= max_frames else math.ceil(total / max_frames)
    return chosen, stride


def _take(a: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if a is None else np.asarray(a[rows])


# ----------------------------------------------------------------------------- PoseSet
def read_poseset(path: Path, patterns: Sequence[str] | None, max_frames: int | None) -> ViewData:
    """A PoseSet's clips: ``kp3d`` as one layer (root-relative plus its root), 2D and descriptors."""
    ps = PoseSet.load(path)
    c = ps.clips
    names = _clip_names(c).tolist()
    ranges = ps.clip_ranges
    chosen, stride = plan(names, ranges[:, 1] - ranges[:, 0], patterns, max_frames)
    uadd = ps.uadd
    clips = []
    for ci in chosen:
        rows = np.arange(ranges[ci, 0], ranges[ci, 1], stride)
        if not len(rows):
            continue
        kp3d = _take(ps.kp3d, rows)
        u = _take(uadd, rows)
        if u is not None and ps.uadd_valid is not None:
            u = np.where(np.asarray(ps.uadd_valid[rows])[..., None], u, np.nan)
        clips.append(ViewClip(
            names[ci], float(c.fps[ci]), int(c.width[ci]), int(c.height[ci]), c.intrinsics[ci],
            np.asarray(ps.frame[rows]), [] if kp3d is None else [target(kp3d)], [] if kp3d is None else [None],
            root=None if kp3d is None else kp3d[:, 0], kp2d=_take(ps.kp2d, rows), conf=_take(ps.conf, rows),
            uadd=u, stride=stride))
    units = ps.meta.get("units", {}).get("uadd", "") if ps.has("uadd") else ""
    notes = [] if ps.has("kp3d") else ["this PoseSet has no 3D poses (kp3d): only the 2D keypoints are shown"]
    return ViewData("poseset", path.name or str(path), str(ps.meta["joint_set"]),
                    [("3D pose", "pose")] if ps.has("kp3d") else [], clips, str(units), notes)


# ----------------------------------------------------------------------------- predictions
def _clip_names(c: ClipTable) -> np.ndarray:
    """``subject/action/camera`` of every clip: what ``--clip`` patterns match."""
    return np.array([f"{s}/{a}/{k}" for s, a, k in zip(c.subject, c.action, c.camera)], dtype=str)


def _match_rows(ref_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """For each reference key, its row in ``keys`` or -1."""
    order = np.argsort(keys, kind="stable")
    pos = np.clip(np.searchsorted(keys[order], ref_keys), 0, max(len(keys) - 1, 0))
    found = (keys[order][pos] == ref_keys) if len(keys) else np.zeros(len(ref_keys), bool)
    return np.where(found, order[pos] if len(keys) else -1, -1)


def _gather(a: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    """``a[rows]`` with NaN where ``rows`` is -1 (a frame the file does not have)."""
    if a is None:
        return None
    out = a[np.maximum(rows, 0)].astype(np.float32)
    out[rows < 0] = np.nan
    return out


def read_predictions(paths: Sequence[Path], patterns: Sequence[str] | None, max_frames: int | None) -> ViewData:
    """Predictions files overlaid on the frames of the first one: ground truth, then one layer per file."""
    preds = [Predictions.load(p) for p in paths]
    ref = preds[0]
    if any(p.joint_set != ref.joint_set for p in preds):
        raise ConfigError("the predictions files use different joint sets: "
                          + ", ".join(f"{path} ({p.joint_set})" for p, path in zip(preds, paths)))
    ref_names = _clip_names(ref.clips)
    # one id per clip name over every file, so rows of different files can be matched by (clip, frame)
    all_names = np.unique(np.concatenate([_clip_names(p.clips) for p in preds]))
    keys = [np.searchsorted(all_names, _clip_names(p.clips))[p.clip].astype(np.int64) << 32 | p.frame for p in preds]
    matched = [_match_rows(keys[0], k) for k in keys]
    order = np.lexsort((ref.frame, ref.clip))
    counts = np.bincount(ref.clip, minlength=len(ref.clips))
    chosen, stride = plan(list(ref_names), counts, patterns, max_frames)
    gt_file = next((k for k, p in enumerate(preds) if p.gt is not None), None)
    labels = [p.label for p in preds]
    if len(set(labels)) < len(labels):  # the same label twice: tell them apart by file name
        labels = [f"{p.label} ({path.name})" for p, path in zip(preds, paths)]
    layers = ([("ground truth", "gt")] if gt_file is not None else []) + [(lab, "pred") for lab in labels]

    # the first file holding each per-frame extra (None: no file has it)
    extra = {name: next((k for k, p in enumerate(preds) if getattr(p, name) is not None), None)
             for name in ("root", "kp2d", "conf", "uadd")}
    starts = np.searchsorted(ref.clip[order], np.arange(len(ref.clips) + 1))
    clips, worst_rows = [], []
    for ci in chosen:
        rows_all = order[starts[ci]:starts[ci + 1]]
        if not len(rows_all):
            continue
        err_all = [_gather(p.errors, m[rows_all]) for p, m in zip(preds, matched)]
        worst_rows.append((len(clips), ref.frame[rows_all], err_all))
        rows = rows_all[::stride]
        poses = [_gather(p.pred, m[rows]) for p, m in zip(preds, matched)]
        errors = [None if e is None else e[::stride] for e in err_all]
        if gt_file is not None:
            poses.insert(0, _gather(preds[gt_file].gt, matched[gt_file][rows]))
            errors.insert(0, None)
        more = {name: None if k is None else _gather(getattr(preds[k], name), matched[k][rows])
                for name, k in extra.items()}
        clips.append(ViewClip(ref_names[ci], float(ref.clips.fps[ci]), int(ref.clips.width[ci]),
                              int(ref.clips.height[ci]), ref.clips.intrinsics[ci], ref.frame[rows], poses, errors,
                              stride=stride, **more))
    title = paths[0].name if len(paths) == 1 else f"{len(paths)} predictions"
    worst = [(lab, _worst(worst_rows, k)) for k, lab in enumerate(labels) if preds[k].errors is not None]
    return ViewData("predictions", title, ref.joint_set, layers, clips, worst=worst)


def _worst(per_clip: list[tuple[int, np.ndarray, list[np.ndarray | None]]], k: int) -> list[tuple[int, int, float]]:
    """The :data:`WORST_FRAMES` frames of layer ``k`` with the largest mean joint error, over all clips."""
    clip = np.concatenate([np.full(len(f), ci) for ci, f, _ in per_clip])
    frame = np.concatenate([f for _, f, _ in per_clip])
    err = np.concatenate([e[k] for _, _, e in per_clip])
    valid = np.isfinite(err)
    mean = np.where(valid.any(1), np.where(valid, err, 0).sum(1) / np.maximum(valid.sum(1), 1), -1.0)
    top = np.argsort(-mean, kind="stable")[:WORST_FRAMES]
    return [(int(clip[r]), int(frame[r]), float(mean[r])) for r in top if mean[r] >= 0]


# ----------------------------------------------------------------------------- infer outputs
_INFER_ARRAYS = {"kp3d": (("J", 3), "f"), "frame": ((), "i"), "track": ((), "i"), "kp2d": (("J", 2), "f"),
                 "conf": (("J",), "f"), "root": ((3,), "f"), "uadd": (("J", 3), "f")}


def read_infer(path: Path, patterns: Sequence[str] | None, max_frames: int | None) -> ViewData:
    """An ``auglift infer`` output: one clip per track, the input's frames when they can be found."""
    folder = path if path.is_dir() else path.parent
    npz, meta_path = folder / "poses3d.npz", folder / "poses3d.json"
    headers = check_npz(npz)
    if any(dtype.hasobject for _shape, dtype in headers.values()):
        raise DataError(npz, None, "object (pickle) member refused")
    with np.load(npz, allow_pickle=False) as z:
        raw = {k: z[k] for k in headers}
    num_joints = get_joint_set("h36m17").num_joints
    arrays = {}
    for name, (tail, kind) in _INFER_ARRAYS.items():
        if name not in raw:
            if name in ("root", "uadd"):
                continue
            raise DataError(npz, name, "required array is missing (not an auglift infer output?)")
        try:
            arrays[name] = checked_array(raw[name], name, kind,
                                         tuple(num_joints if t == "J" else t for t in tail))
        except DataError as exc:
            raise DataError(npz, exc.field, exc.expected) from None
        if len(arrays[name]) != len(arrays["kp3d"]):
            raise DataError(npz, name, f"expected {len(arrays['kp3d'])} rows (as kp3d), got {len(arrays[name])}")
    meta = read_json(meta_path, "poses3d") if meta_path.is_file() else {}
    info = _table(meta, "input")
    size = _floats(raw.get("image_size", [_number(info.get("width")), _number(info.get("height"))]), npz, "image_size")
    if size.shape != (2,) or (size < 1).any() or (size > 100_000).any():
        raise DataError(npz, "image_size", "expected [width, height] in pixels (or poses3d.json input.width/height)")
    width, height = int(size[0]), int(size[1])
    intr = _floats(raw.get("intrinsics", default_intrinsics(width, height)), npz, "intrinsics")
    if intr.shape != (4,) or (intr[:2] <= 0).any():
        raise DataError(npz, "intrinsics", "expected [fx, fy, cx, cy] pixels")
    fps = _number(info.get("fps")) or 30.0
    track = arrays["track"]
    tracks, counts = np.unique(track, return_counts=True)
    names = [f"track {t}" for t in tracks]
    chosen, stride = plan(names, counts, patterns, max_frames)
    clips = []
    for k in chosen:
        rows = np.flatnonzero(track == tracks[k])
        rows = rows[np.argsort(arrays["frame"][rows], kind="stable")][::stride]
        clips.append(ViewClip(names[k], fps, width, height, intr,
                              arrays["frame"][rows], [arrays["kp3d"][rows]], [None],
                              root=_take(arrays.get("root"), rows), kp2d=arrays["kp2d"][rows],
                              conf=np.nan_to_num(arrays["conf"][rows]), uadd=_take(arrays.get("uadd"), rows),
                              stride=stride))
    units = _table(meta, "units").get("uadd")
    data = ViewData("infer", npz.parent.name, "h36m17", [("3D pose", "pose")], clips,
                    units if isinstance(units, str) else "")
    source = info.get("path")
    if isinstance(source, str) and source:
        src = Path(source)  # where poses3d.json says, else beside or inside the output folder (moved together)
        found = next((c for c in (src, folder.parent / src.name, folder / src.name) if c.exists()), None)
        if found is None:
            data.notes.append(f"frames not shown: the input {source} is not there any more")
        else:
            data.frames_source = (found, width, height)
    else:
        data.notes.append("frames not shown: poses3d.json does not name the input")
    return data


def _table(obj: object, key: str) -> dict:
    """``obj[key]`` when ``obj`` is a JSON object and that member is one too, else ``{}``."""
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def _number(value: object) -> float:
    """A positive finite JSON number, else 0."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    return float(value) if ok else 0.0  # type: ignore[arg-type]


def _floats(value: object, path: Path, name: str) -> np.ndarray:
    """``value`` as a flat finite float64 array, or a DataError naming ``path`` and ``name``."""
    try:
        a = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(path, name, "expected numbers") from None
    if not np.isfinite(a).all():
        raise DataError(path, name, "expected finite numbers")
    return a


# ----------------------------------------------------------------------------- dispatch
def input_kind(path: Path) -> str:
    """``"poseset"``, ``"predictions"`` or ``"infer"`` for a path given to ``auglift view``."""
    if path.is_dir():
        if (path / "meta.json").is_file():
            return "poseset"
        if (path / "poses3d.npz").is_file():
            return "infer"
        raise DataError(path, None, "not a PoseSet directory (meta.json) nor an auglift infer output (poses3d.npz)")
    if not path.exists():
        raise DataError(path, None, "file not found")
    if path.name in ("poses3d.npz", "poses3d.json"):
        return "infer"
    if path.suffix == ".npz":
        headers = check_npz(path)
        if "format" in headers:
            return "predictions"
        if "kp3d" in headers and "track" in headers:
            return "infer"
    raise DataError(path, None, f"not something auglift view shows: expected a PoseSet directory, a predictions "
                                f"file ({PREDICTIONS_FORMAT} .npz) or an auglift infer output")


READERS: dict[str, Callable[[Path, Sequence[str] | None, int | None], ViewData]] = {
    "poseset": read_poseset, "infer": read_infer}


def read_inputs(paths: Sequence[PathLike], patterns: Sequence[str] | None = None,
                max_frames: int | None = None) -> ViewData:
    """Read what ``auglift view PATH...`` shows: one PoseSet / infer output, or predictions files overlaid."""
    if not paths:
        raise ConfigError("auglift view needs at least one path")
    ps = [Path(p) for p in paths]
    kinds = [input_kind(p) for p in ps]
    if kinds[0] == "predictions":
        if set(kinds) != {"predictions"}:
            raise ConfigError("several paths must all be predictions files (they are overlaid); got "
                              + ", ".join(f"{p} ({k})" for p, k in zip(ps, kinds)))
        return read_predictions(ps, patterns, max_frames)
    if len(ps) > 1:
        raise ConfigError(f"only predictions files can be shown together; {ps[0]} is a {kinds[0]} output: "
                          "give one path")
    return READERS[kinds[0]](ps[0], patterns, max_frames)
