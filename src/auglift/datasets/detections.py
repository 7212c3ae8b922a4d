"""2D detection files -> a PoseSet's ``kp2d`` / ``conf`` / ``kp2d_valid`` (ground truth kept in ``kp2d_gt``).

Formats read (``fmt``; guessed from the file when omitted):

* ``coco``: a COCO keypoint *result* list ``[{"image_id", "keypoints": [x, y, s] * J, "score"}, ...]``
  (also a COCO dataset dict with ``"annotations"`` and ``"images"``). ``halpe`` is the same
  layout with Halpe-26 (AlphaPose: ``image_id`` is the image file name, 26 or 136 joints).
* ``mmpose``: MMPose/RTMPose inferencer output: per image a JSON list of instances
  ``{"keypoints": [[x, y], ...], "keypoint_scores": [...], "bbox", "bbox_score"}`` named after the
  image (a directory of them, or one file); per video a JSON list ``[{"frame_id", "instances"}]``
  named after the video (0-based ``frame_id``); or the top-down demo's
  ``{"meta_info", "instance_info": [{"frame_id", "instances"}]}`` (1-based ``frame_id``).
* ``npy`` / ``npz``: an array ``(N, J, 2|3)`` (x, y[, score]) aligned to the PoseSet's rows
  (``align="rows"``) or indexed by frame number (``align="frames"``, one clip), e.g. MMPose's
  H36M detection ``.npy``; or VideoPose3D's ``data_2d_h36m_<det>.npz`` (``positions_2d``:
  subject -> action -> one array per camera, read through the restricted unpickler).

Matching instances to frames:

* by **file name** (strings: AlphaPose ``image_id``, MMPose per-image files, or integer ids
  resolved through a COCO ``images`` list ``[{"id", "file_name"}]`` given as ``images=``): each
  PoseSet row gets a name from its clip's frame source pattern (``imgs/S9_{frame1:06d}.jpg``) or
  from ``name_pattern`` (placeholders ``{frame}``, ``{frame1}``, ``{subject}``, ``{action}``,
  ``{camera}``, ``{split}``, ``{clip}``, ``{stem}`` = source file name without extension; needed
  when the sources are videos). Names match without extension, on the longest unambiguous
  trailing part of the path, so absolute paths and bare file names both work.
* by **integer id** with ``id_scheme``: ``row`` / ``row1`` (0-/1-based PoseSet row), ``frame`` /
  ``frame1`` (frame number; one-clip PoseSets), or ``clip*K+frame`` (e.g. ``clip*100000+frame``).
* per **video** (MMPose video JSON): the file's path without extension is matched to the clips'
  video sources the same way, then ``frame_id`` to the frame number.

Several people in a frame: the instance with the highest mean keypoint score is kept
(``select="gt"`` keeps the one closest to ``kp2d_gt``; use it when several clips share the
images, like the people of a 3DPW sequence). Keypoints are converted to H36M-17 with
their confidences (:func:`keypoints_to_h36m`). Frames without a detection get NaN ``kp2d``,
confidence 0 and ``kp2d_valid`` False. Joint sets by count: 17 -> COCO-17 for JSON formats and
H36M-17 for arrays (override with ``joint_set``), 26 -> Halpe-26, 133 -> COCO-WholeBody (its
first 17), 136 -> Halpe-136 (its first 26), 18 -> OpenPose-18, 33 -> MediaPipe-33.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Formatter
from typing import Any, Literal

import numpy as np

from auglift.datasets.common import load_npz, progress
from auglift.errors import ConfigError, DataError
from auglift.io import PathLike, load_npy, natural_key, read_json
from auglift.outputs import claim
from auglift.poseset import PoseSet, index_within_groups
from auglift.skeleton import conversion_matrix, get_joint_set

__all__ = [
    "FORMATS",
    "MAX_JSON_BYTES",
    "DetectionResult",
    "Instances",
    "apply_detections",
    "detect_format",
    "import_detections",
    "json_kind",
    "keypoints_to_h36m",
    "kp2d_if_ground_truth",
    "match_detections",
    "match_names",
    "read_instances",
    "replace_keypoints",
    "resolve_format",
    "resolve_joints",
    "select_best",
]

FORMATS: tuple[str, ...] = ("coco", "mmpose", "halpe", "npy", "npz")
MAX_JSON_BYTES = 4 << 30  # largest detection JSON file read
# Joint count -> (joint set, number of leading joints to keep).
_BY_COUNT: dict[int, tuple[str, int]] = {26: ("halpe26", 26), 133: ("coco17", 17), 136: ("halpe26", 26),
                                         18: ("openpose18", 18), 33: ("mediapipe33", 33)}
_SUPERSETS: dict[str, tuple[int, ...]] = {"coco17": (133,), "halpe26": (136,)}
# Fields computed from the 2D keypoints: dropped when the keypoints are replaced.
DERIVED_FROM_KEYPOINTS = ("uadd", "uadd_valid")
H36M_CAMERA_IDS: tuple[str, ...] = ("54138969", "55011271", "58860488", "60457274")  # Human3.6M camera order
# VideoPose3D's metadata layout_name -> joint set of its 2D keypoints.
LAYOUT_JOINTS = {"h36m": "h36m17", "coco": "coco17"}


def keypoints_to_h36m(kp: np.ndarray, score: np.ndarray | None, joint_set: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert keypoints ``(..., J, 2)`` px with scores ``(..., J)`` to H36M-17, confidence-aware.

    A joint defined as a mean of source joints (pelvis = mean hips, ...) averages only the source
    joints with a positive score and finite coordinates; its confidence is the plain weighted
    mean of the source scores (a missing hip halves the pelvis confidence). A joint with no
    usable source joint gets NaN coordinates and confidence 0. Returns float32
    ``(kp17 (..., 17, 2), conf17 (..., 17))``. Without scores every joint counts with score 1.
    """
    kp = np.asarray(kp, dtype=np.float64)
    js = get_joint_set(joint_set)
    if kp.ndim < 2 or kp.shape[-2] != js.num_joints:
        raise DataError(None, "keypoints", f"expected (..., {js.num_joints}, 2) for {js.name}, got {kp.shape}")
    W = conversion_matrix(js)
    s = np.ones(kp.shape[:-1]) if score is None else np.asarray(score, dtype=np.float64)
    s = np.where(np.isfinite(s), np.clip(s, 0.0, 1.0), 0.0)
    present = (s > 0) & np.isfinite(kp).all(axis=-1)
    kp0 = np.where(present[..., None], kp, 0.0)
    num = np.moveaxis(np.tensordot(kp0, W, axes=([-2], [1])), -1, -2)  # one GEMM: (..., 17, 2)
    den = present.astype(np.float64) @ W.T
    with np.errstate(invalid="ignore", divide="ignore"):
        kp17 = num / den[..., None]
    conf17 = s @ W.T
    kp17[den <= 0] = np.nan
    conf17[den <= 0] = 0.0
    return kp17.astype(np.float32), np.clip(conf17, 0.0, 1.0).astype(np.float32)


@dataclass
class Instances:
    """Person instances read from detection files, before matching to frames.

    ``kp (M, J, 2)`` px, ``score (M, J)`` in [0, 1], and per instance exactly one addressing:
    ``name`` (image file name), ``image_id`` (int), or ``video`` + ``frame`` (0-based).
    """

    kp: np.ndarray
    score: np.ndarray
    joint_set: str
    source: str
    name: list[str] | None = None
    image_id: np.ndarray | None = None
    video: list[str] | None = None
    frame: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.kp)


@dataclass
class DetectionResult:
    """Per-row detections ready to store: ``kp2d (N, 17, 2)`` px (NaN where missing), ``conf (N, 17)``,
    ``valid (N,)`` and counts for the report."""

    kp2d: np.ndarray
    conf: np.ndarray
    valid: np.ndarray
    stats: dict[str, Any]


# ----------------------------------------------------------------------------- reading
def detect_format(path: PathLike) -> str:
    """Guess the format of a detection file or directory (``coco``, ``halpe``, ``mmpose``, ``npy``, ``npz``)."""
    return resolve_format(Path(path), None)[0]


def resolve_format(path: Path, fmt: str | None) -> tuple[str, dict[Path, Any]]:
    """``fmt`` checked, or the format of ``path`` guessed: a directory is ``mmpose``, ``.npy``/``.npz`` by the
    name, a ``.json`` file by its content (:func:`json_kind`), whose parsed data comes back as
    ``{path: data}`` so that it is read once."""
    preloaded: dict[Path, Any] = {}
    suffix = path.suffix.lower()
    if not fmt and path.is_dir():
        fmt = "mmpose"
    elif not fmt and suffix in (".npy", ".npz"):
        fmt = suffix[1:]
    elif not fmt and suffix == ".json":
        preloaded[path] = read_json(path, "detections", max_bytes=MAX_JSON_BYTES)
        fmt = json_kind(preloaded[path], path)
    elif not fmt:
        raise ConfigError(f"{path}: cannot tell the detection format from the name; pass --format "
                          f"({', '.join(FORMATS)})")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown detection format {fmt!r}; known: {', '.join(FORMATS)}")
    return fmt, preloaded


def json_kind(data: Any, p: Path) -> str:
    """The format of parsed detection JSON ``data``: ``"mmpose"``, ``"coco"`` or ``"halpe"`` (DataError
    naming ``p``)."""
    if isinstance(data, dict):
        if "instance_info" in data:
            return "mmpose"
        if "annotations" in data:
            return "coco"
        raise DataError(p, None, "unrecognised detection JSON object (expected a COCO dataset with "
                                 "'annotations' or MMPose's 'instance_info')")
    if not isinstance(data, list):
        raise DataError(p, None, f"expected a JSON list of detections, got {type(data).__name__}")
    first = next((d for d in data if isinstance(d, dict)), None)
    if first is None:
        return "mmpose"  # an image with no person, or an empty result list
    if "image_id" in first:
        kp = first.get("keypoints")
        n = len(kp) // 3 if isinstance(kp, list) else 0
        return "halpe" if n in (26, 136) else "coco"
    return "mmpose"


def resolve_joints(count: int, joint_set: str | None, default17: str, path: Path, expected: str | None = None
                    ) -> tuple[str, int]:
    """(joint set, leading joints to keep) for ``count`` joints per person: those of ``joint_set`` (the
    user's) or ``expected`` (the format's), a superset's leading ones, else by the count."""
    if joint_set is not None or expected is not None:
        try:
            js = get_joint_set(expected if joint_set is None else joint_set)
        except KeyError as exc:
            raise ConfigError(str(exc.args[0])) from None
        if count == js.num_joints or count in _SUPERSETS.get(js.name, ()):
            return js.name, js.num_joints
        hint = "" if joint_set is not None else "; pass --joint-set for another layout"
        raise DataError(path, "keypoints", f"expected {js.num_joints} joints per person ({js.name}), got {count}{hint}")
    if count == 17:
        return default17, 17
    if count in _BY_COUNT:
        return _BY_COUNT[count]
    raise DataError(path, "keypoints", f"{count} joints per person is not a known joint set (17 COCO/H36M, "
                                       "26 Halpe, 133 COCO-WholeBody, 136 Halpe-136, 18 OpenPose, 33 MediaPipe); "
                                       "pass --joint-set")


def _flat_keypoints(records: Sequence[Any], path: Path, what: str) -> np.ndarray:
    """``[x, y, s] * J`` lists -> ``(M, J, 3)``; one clear error for ragged or non-numeric lists."""
    lens = np.fromiter((len(r) if isinstance(r, list) else -1 for r in records), np.int64, len(records))
    if (lens < 0).any():
        raise DataError(path, f"[{np.flatnonzero(lens < 0)[0]}].{what}", "expected a list of numbers")
    bad = np.flatnonzero((lens != lens[:1]) | (lens % 3 != 0))  # lens[:1]: the first record's length (if any)
    if bad.size:
        raise DataError(path, f"[{bad[0]}].{what}", f"expected [x, y, score] * J with the same J for every "
                                                    f"detection; got lengths {sorted(set(lens.tolist()))[:5]}")
    try:
        arr = np.asarray(records, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(path, what, "expected numbers") from None
    return arr.reshape(len(records), -1, 3) if len(records) else np.zeros((0, 0, 3))


def _read_coco(path: Path, data: Any, fmt: str, joint_set: str | None, images: PathLike | None) -> Instances:
    id_to_name: dict[int, str] | None = None
    if isinstance(data, dict):  # COCO dataset format
        if isinstance(data.get("images"), list):
            id_to_name = _images_map(data, path)
        data = data.get("annotations")
        if not isinstance(data, list):
            raise DataError(path, "annotations", "expected a list")
    recs = [r for r in data if isinstance(r, dict)]
    if len(recs) != len(data):
        raise DataError(path, None, "every detection must be a JSON object")
    for i, r in enumerate(recs):
        if "image_id" not in r or "keypoints" not in r:
            raise DataError(path, f"[{i}]", "expected 'image_id' and 'keypoints'")
    kps = _flat_keypoints([r["keypoints"] for r in recs], path, "keypoints")
    name, keep = resolve_joints(kps.shape[1], joint_set, "coco17", path, "halpe26" if fmt == "halpe" else None)
    kps = kps[:, :keep]
    ids = [r["image_id"] for r in recs]
    inst = Instances(kp=kps[..., :2], score=kps[..., 2], joint_set=name, source=str(path))
    if images is not None:
        id_to_name = _images_map(read_json(Path(images), "images", max_bytes=MAX_JSON_BYTES), Path(images))
    if all(isinstance(i, str) for i in ids):
        inst.name = [str(i) for i in ids]
    elif all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        if id_to_name is not None:
            missing = [i for i in ids if i not in id_to_name]
            if missing:
                raise DataError(path, "image_id", f"id {missing[0]} is not in the images list")
            inst.name = [id_to_name[i] for i in ids]
        else:
            inst.image_id = np.asarray(ids, dtype=np.int64)
    else:
        raise DataError(path, "image_id", "expected all integer ids or all file-name strings")
    return inst


def _images_map(data: Any, p: Path) -> dict[int, str]:
    """``{id: file_name}`` of a COCO ``images`` list (or of a COCO dataset dict holding one)."""
    images = data.get("images") if isinstance(data, dict) else data
    if not isinstance(images, list):
        raise DataError(p, "images", "expected a COCO 'images' list of {id, file_name}")
    out: dict[int, str] = {}
    for i, im in enumerate(images):
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise DataError(p, f"images[{i}]", "expected {'id', 'file_name'}")
        if not isinstance(im["id"], int) or isinstance(im["id"], bool) or not isinstance(im["file_name"], str):
            raise DataError(p, f"images[{i}].id", f"expected an integer id and a file_name string, got "
                                                  f"{im['id']!r} and {im['file_name']!r}")
        out[im["id"]] = im["file_name"]
    return out


def _mmpose_instances(instances: Any, path: Path, where: str) -> tuple[list[Any], list[Any]]:
    if not isinstance(instances, list):
        raise DataError(path, where, "expected a list of instances")
    kps, scores = [], []
    for k, ins in enumerate(instances):
        if not isinstance(ins, dict) or "keypoints" not in ins:
            raise DataError(path, f"{where}[{k}]", "expected an instance with 'keypoints'")
        kps.append(ins["keypoints"])
        scores.append(ins.get("keypoint_scores"))
    return kps, scores


def _read_mmpose(paths: list[Path], joint_set: str | None, frame_base: int | None, show: bool) -> Instances:
    kps: list[Any] = []
    scores: list[Any] = []
    names: list[str] = []
    videos: list[str] = []
    frames: list[int] = []
    kind: str | None = None
    base_dir = paths[0].parent if len(paths) == 1 else Path(os.path.commonpath([str(p.parent) for p in paths]))
    for p in progress(paths, desc="reading detections", enabled=show and len(paths) > 50, unit="file"):
        data = read_json(p, "detections", max_bytes=MAX_JSON_BYTES)
        key = p.relative_to(base_dir).as_posix()
        if isinstance(data, dict) and "instance_info" in data:
            seq, fb, this = data["instance_info"], 1, "video"
        elif isinstance(data, list) and data and isinstance(data[0], dict) and "frame_id" in data[0]:
            seq, fb, this = data, 0, "video"
        elif isinstance(data, list):
            seq, fb, this = None, 0, "image"
        else:
            raise DataError(p, None, "not an MMPose prediction file (a list of instances or of "
                                     "{frame_id, instances}, or a dict with instance_info)")
        if kind is not None and kind != this:
            raise DataError(p, None, "mixes per-image and per-video MMPose files")
        kind = this
        if seq is None:
            k, s = _mmpose_instances(data, p, "instances")
            kps += k
            scores += s
            names += [key] * len(k)
            continue
        if not isinstance(seq, list):
            raise DataError(p, "instance_info", "expected a list of {frame_id, instances}")
        base = fb if frame_base is None else frame_base
        for i, fr in enumerate(seq):
            if not isinstance(fr, dict) or "frame_id" not in fr or "instances" not in fr:
                raise DataError(p, f"[{i}]", "expected {'frame_id', 'instances'}")
            k, s = _mmpose_instances(fr["instances"], p, f"[{i}].instances")
            kps += k
            scores += s
            fid = fr["frame_id"]
            if not isinstance(fid, int) or isinstance(fid, bool):
                raise DataError(p, f"[{i}].frame_id", f"expected an integer frame number, got {fid!r}")
            videos += [key] * len(k)
            frames += [fid - base] * len(k)
    src = str(paths[0]) if len(paths) == 1 else str(base_dir)
    if not kps:
        return Instances(np.zeros((0, 17, 2)), np.zeros((0, 17)), joint_set or "coco17", src,
                         name=[] if kind != "video" else None, video=[] if kind == "video" else None,
                         frame=np.zeros(0, np.int64) if kind == "video" else None)
    counts = {len(k) if isinstance(k, list) else -1 for k in kps}
    if len(counts) != 1 or -1 in counts:
        raise DataError(src, "keypoints", f"every instance must have the same number of joints; got {sorted(counts)}")
    try:
        kp = np.asarray(kps, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(src, "keypoints", "expected [[x, y], ...] numbers per instance") from None
    if kp.ndim != 3 or kp.shape[2] < 2:
        raise DataError(src, "keypoints", f"expected (J, 2) per instance, got {kp.shape[1:]}")
    J = kp.shape[1]
    if any(s is None for s in scores):
        sc = np.ones((len(kp), J))
    else:
        try:
            sc = np.asarray(scores, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(src, "keypoint_scores", "expected one score per keypoint") from None
        if sc.shape != (len(kp), J):
            raise DataError(src, "keypoint_scores", f"expected {J} scores per instance, got shape {sc.shape[1:]}")
    name, keep = resolve_joints(J, joint_set, "coco17", Path(src))
    inst = Instances(kp=kp[:, :keep, :2], score=sc[:, :keep], joint_set=name, source=src)
    if kind == "video":
        inst.video, inst.frame = videos, np.asarray(frames, dtype=np.int64)
    else:
        inst.name = names
    return inst


def read_instances(files: Sequence[PathLike], fmt: str | None = None, *, joint_set: str | None = None,
                   images: PathLike | None = None, frame_base: int | None = None,
                   progress_bar: bool = False, preloaded: dict[Path, Any] | None = None) -> Instances:
    """Read person instances from JSON detection files (``coco``, ``halpe``, ``mmpose``); see the module doc.

    ``preloaded`` maps a path to its already parsed JSON (to avoid parsing a large file twice).
    """
    paths: list[Path] = []
    for f in files:
        p = Path(f)
        if p.is_dir():
            found = sorted(p.rglob("*.json"), key=lambda q: natural_key(str(q)))
            if not found:
                raise DataError(p, None, "no .json files in this directory")
            paths += found
        elif not p.exists():
            raise DataError(p, None, "detection file not found")
        else:
            paths.append(p)
    fmt = fmt or detect_format(paths[0])
    if fmt == "mmpose":
        return _read_mmpose(paths, joint_set, frame_base, progress_bar)
    if fmt not in ("coco", "halpe"):
        raise ConfigError(f"read_instances reads coco, halpe and mmpose JSON; got format {fmt!r}")
    pre = preloaded or {}
    parts = [_read_coco(p, pre[p] if p in pre else read_json(p, "detections", max_bytes=MAX_JSON_BYTES), fmt,
                        joint_set, images) for p in paths]
    if len({p.joint_set for p in parts}) > 1 or len({(p.name is None) for p in parts}) > 1:
        raise DataError(paths[0], None, "detection files differ in joint set or image-id kind")
    first = parts[0]
    return Instances(
        kp=np.concatenate([p.kp for p in parts]), score=np.concatenate([p.score for p in parts]),
        joint_set=first.joint_set, source=str(paths[0]),
        name=None if first.name is None else [n for p in parts for n in (p.name or [])],
        image_id=None if first.image_id is None else np.concatenate([p.image_id for p in parts]),  # type: ignore[misc]
    )


# ----------------------------------------------------------------------------- naming and matching
_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff", "json", "mp4", "avi", "mov", "mkv",
                         "webm", "npy", "npz"})


def _norm(path: str) -> str:
    """Path with ``/`` separators, no leading ``./`` and no image/video/json extension."""
    s = path.replace("\\", "/")
    while s.startswith("./"):
        s = s[2:]
    stem, dot, ext = s.rpartition(".")
    if dot and "/" not in ext and ext.lower() in _EXTENSIONS:
        s = stem
    return s


def _render(pattern: str, frames: np.ndarray, fields: dict[str, Any]) -> np.ndarray:
    """Format ``pattern`` for every frame number, vectorised for ``{frame}`` / ``{frame1:0Nd}``."""
    out = np.full(len(frames), "", dtype="U1")
    try:
        parsed = list(Formatter().parse(pattern))
    except ValueError as exc:
        raise ConfigError(f"bad name pattern {pattern!r} ({exc})") from None
    for literal, fname, spec, conv in parsed:
        if any(int(w) > 64 for w in re.findall(r"\d+", spec or "")):
            raise ConfigError(f"name pattern {pattern!r}: format spec {spec!r} pads to more than 64 characters")
        if literal:
            out = np.char.add(out, literal)
        if fname is None:
            continue
        if fname in ("frame", "frame1"):
            vals = np.asarray(frames, dtype=np.int64) + (1 if fname == "frame1" else 0)
            m = re.fullmatch(r"(0?)(\d*)d?", spec or "")
            if m and not conv:
                txt = vals.astype(str)
                if m.group(2):
                    txt = np.char.zfill(txt, int(m.group(2))) if m.group(1) else np.char.rjust(txt, int(m.group(2)))
            else:
                txt = np.array([format(int(v), spec or "") for v in vals], dtype=str)
            out = np.char.add(out, txt)
        elif fname in fields:
            out = np.char.add(out, format(fields[fname], spec or ""))
        else:
            raise ConfigError(f"unknown placeholder {{{fname}}} in name pattern {pattern!r}; use "
                              f"frame, frame1, {', '.join(fields)}")
    return out


def _row_names(ps: PoseSet, name_pattern: str | None) -> np.ndarray:
    frames = np.asarray(ps.frame, dtype=np.int64)
    names = np.empty(len(ps), dtype=object)  # filled clip by clip below
    for c, (a, b) in enumerate(ps.clip_ranges):
        if a == b:
            continue
        rec = ps.clips.record(c)
        src = str(rec.get("source", ""))
        pattern = name_pattern or src
        if "{frame" not in pattern:
            raise ConfigError(f"clip {c} ({rec['subject']}/{rec['action']}/{rec['camera']}) has frame source "
                              f"{src!r}, which names no single frames; give --name-pattern "
                              "(e.g. '{stem}/{frame:06d}.jpg') to say how the detected images are named")
        stem = _norm(src).rsplit("/", 1)[-1] if src else ""
        fields = {k: rec[k] for k in ("subject", "action", "camera", "split")} | {"clip": c, "stem": stem}
        names[a:b] = _render(pattern, frames[a:b], fields)
    return names


def match_names(query: Sequence[str], target: Sequence[str]) -> tuple[np.ndarray, int]:
    """Index into ``target`` for each query name (-1: none), matching on the longest unambiguous
    trailing path; also returns how many queries were ambiguous."""
    qparts = [_norm(s).split("/") for s in query]
    tparts = [_norm(s).split("/") for s in target]
    out = np.full(len(qparts), -1, dtype=np.int64)
    ambiguous = np.zeros(len(qparts), dtype=bool)  # a query's last unmatched tail was ambiguous
    if not qparts or not tparts:
        return out, 0
    todo = np.arange(len(qparts))
    for depth in range(min(max(len(p) for p in tparts), max(len(p) for p in qparts)), 0, -1):
        if not len(todo):
            break
        table: dict[str, int] = {}
        for i, parts in enumerate(tparts):
            if len(parts) >= depth:
                key = "/".join(parts[-depth:])
                table[key] = -2 if key in table else i
        nxt = []
        for i in todo:
            parts = qparts[i]
            if len(parts) < depth:
                nxt.append(i)
                continue
            hit = table.get("/".join(parts[-depth:]), -1)
            if hit >= 0:
                out[i] = hit
            else:
                ambiguous[i] |= hit == -2
                nxt.append(i)
        todo = np.asarray(nxt, dtype=np.int64)
    return out, int(ambiguous[out < 0].sum())


def _rows_of(ps: PoseSet, clip: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Row of each ``(clip, frame)`` pair (-1 where the PoseSet has no such frame)."""
    pf = np.asarray(ps.frame, dtype=np.int64)
    pc = np.asarray(ps.clip, dtype=np.int64)
    big = int(max(pf.max(initial=0), np.max(frame, initial=0))) + 1
    key = pc * big + pf  # ascending: rows are grouped by clip with frames increasing
    q = clip.astype(np.int64) * big + frame.astype(np.int64)
    pos = np.searchsorted(key, q)
    ok = (pos < len(key)) & (clip >= 0) & (frame >= 0)
    ok[ok] &= key[pos[ok]] == q[ok]
    return np.where(ok, pos, -1)


def _rows_by_id(ps: PoseSet, ids: np.ndarray, scheme: str | None, src: str) -> np.ndarray:
    if scheme is None:
        raise ConfigError(f"{src}: integer image ids need --id-scheme (row, row1, frame, frame1, clip*K+frame) "
                          "or --images (a COCO images list mapping ids to file names)")
    n = len(ps)
    if scheme in ("row", "row1"):
        r = ids - (1 if scheme == "row1" else 0)
        return np.where((r >= 0) & (r < n), r, -1)
    if scheme in ("frame", "frame1"):
        if len(ps.clips) != 1:
            raise ConfigError(f"--id-scheme {scheme} needs a PoseSet with one clip (this one has {len(ps.clips)}); "
                              "use clip*K+frame or --images")
        return _rows_of(ps, np.zeros(len(ids), np.int64), ids - (1 if scheme == "frame1" else 0))
    m = re.fullmatch(r"\s*clip\s*\*\s*(\d+)\s*\+\s*frame\s*", scheme)
    if m:
        k = int(m.group(1))
        return _rows_of(ps, ids // k, ids % k)
    raise ConfigError(f"unknown --id-scheme {scheme!r}; use row, row1, frame, frame1 or clip*K+frame")


def _groups(names: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Group equal (normalised) names: ``(unique names, member order, group starts (G + 1,))``."""
    norm = np.array([_norm(str(n)) for n in names], dtype=object).astype(str) if len(names) else np.zeros(0, str)
    uniq, inv = np.unique(norm, return_inverse=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[order], np.arange(len(uniq) + 1))
    return uniq.tolist(), order, starts


def _expand(g: np.ndarray, order: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For entries matched to group ``g`` (-1: none): (entry index once per group member, member index)."""
    src = np.flatnonzero(g >= 0)
    gg = g[src]
    cnt = starts[gg + 1] - starts[gg]
    return np.repeat(src, cnt), order[np.repeat(starts[gg], cnt) + index_within_groups(cnt)]


def match_detections(ps: PoseSet, inst: Instances, *, id_scheme: str | None = None,
                     name_pattern: str | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Pair instances with PoseSet rows: ``(index (K,), rows (K,), counts)``.

    ``index`` points into the instances, ``rows`` into the PoseSet (-1: the instance matched no
    frame). An image (or video) shared by several clips, e.g. the two people of a 3DPW
    sequence, pairs each of its instances with the row of every such clip; use
    ``select="gt"`` in :func:`apply_detections` to give each clip its own person.
    """
    info: dict[str, int] = {}
    m = len(inst)
    if inst.video is not None:
        assert inst.frame is not None
        keys = sorted(set(inst.video))
        cnames, corder, cstarts = _groups([str(s) for s in ps.clips.source])
        if len(cnames) == 1 and len(keys) == 1:
            gidx = np.zeros(1, np.int64)
        else:
            gidx, amb = match_names(keys, cnames)
            info["ambiguous_videos"] = amb
        lut = dict(zip(keys, gidx.tolist()))
        g = np.array([lut[v] for v in inst.video], dtype=np.int64) if m else np.zeros(0, np.int64)
        rep, clip = _expand(g, corder, cstarts)
        rows = _rows_of(ps, clip, inst.frame[rep])
        info["unmatched_videos"] = int((gidx < 0).sum())
    elif inst.name is not None:
        uniq, inv = np.unique(np.asarray(inst.name, dtype=object).astype(str), return_inverse=True)
        tnames, torder, tstarts = _groups(_row_names(ps, name_pattern).tolist())
        gidx, amb = match_names(uniq.tolist(), tnames)
        rep, rows = _expand(gidx[inv.reshape(-1)] if m else np.zeros(0, np.int64), torder, tstarts)
        info["ambiguous_names"] = amb
    elif inst.image_id is not None:
        rep, rows = np.arange(m), _rows_by_id(ps, inst.image_id, id_scheme, inst.source)
    else:  # pragma: no cover - readers always set one addressing
        raise DataError(inst.source, None, "detections carry no image names or ids")
    unmatched = np.setdiff1d(np.arange(m), rep[rows >= 0])
    index = np.concatenate([rep[rows >= 0], unmatched]).astype(np.int64)
    rows = np.concatenate([rows[rows >= 0], np.full(len(unmatched), -1)]).astype(np.int64)
    return index, rows, info


# ----------------------------------------------------------------------------- arrays
def _array_rows(ps: PoseSet, arr: np.ndarray, path: Path, align: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows (M,), instance index (M,)) for an array detection file."""
    n = len(ps)
    if align == "rows":
        if len(arr) != n:
            raise DataError(path, "keypoints", f"mismatched frame count: the array has {len(arr)} frames, the PoseSet "
                                               f"has {n} rows (use --align frames to index it by frame number)")
        return np.arange(n), np.arange(n)
    if align == "frames":
        if len(ps.clips) != 1:
            raise ConfigError(f"--align frames needs a PoseSet with one clip (this one has {len(ps.clips)})")
        fr = np.asarray(ps.frame, dtype=np.int64)
        if n and fr.max() >= len(arr):
            raise DataError(path, "keypoints", f"mismatched frame count: the array has {len(arr)} frames, the clip "
                                               f"needs frame {int(fr.max())}")
        return np.arange(n), fr
    raise ConfigError(f"unknown --align {align!r}; use rows or frames")


def read_array_file(path: Path, fmt: str, key: str | None, *, ndims: tuple[int, ...] = (3,)
                    ) -> tuple[np.ndarray | None, dict[str, Any] | None, str | None]:
    """Read a keypoint array file: ``.npy``, or the member ``key`` of an ``.npz``.

    Without ``key`` an ``.npz`` member is chosen: VideoPose3D's ``positions_2d``, else the only
    numeric array whose number of dimensions is in ``ndims``. Returns (plain array or None,
    VideoPose3D positions_2d dict or None, the joint set of its metadata's layout name, :data:`LAYOUT_JOINTS`;
    an unknown layout is a DataError).
    """
    if fmt == "npy":
        return np.asarray(load_npy(path, mmap=False, field="keypoints")), None, None
    z = load_npz(path)
    if key is None:
        if "positions_2d" in z:
            key = "positions_2d"
        else:
            cands = [k for k, v in z.items()
                     if isinstance(v, np.ndarray) and v.dtype.kind in "fiu" and v.ndim in ndims]
            if len(cands) != 1:
                raise ConfigError(f"{path}: choose the array with --key (found: {', '.join(sorted(z)) or 'none'})")
            key = cands[0]
    if key not in z:
        raise DataError(path, key, f"missing from the archive (found: {', '.join(sorted(z))})")
    val = z[key]
    if isinstance(val, dict):
        meta = z.get("metadata", {})
        layout = str(meta.get("layout_name", "h36m") if isinstance(meta, dict) else "h36m")
        if layout not in LAYOUT_JOINTS:
            raise DataError(path, "metadata.layout_name",
                            f"unsupported keypoint layout {layout!r}; known: {', '.join(LAYOUT_JOINTS)}")
        return None, val, LAYOUT_JOINTS[layout]
    return np.asarray(val), None, None


def _vp3d_rows(ps: PoseSet, pos2d: dict[str, Any], path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per clip: (rows, (F, J, C) keypoints of those rows) from VideoPose3D's nested dict."""
    rows_out, kps_out = [], []
    for c, (a, b) in enumerate(ps.clip_ranges):
        rec = ps.clips.record(c)
        subj, action, cam = str(rec["subject"]), str(rec["action"]), str(rec["camera"])
        try:
            per_cam = pos2d[subj][action]
        except (KeyError, TypeError):
            continue
        ci = H36M_CAMERA_IDS.index(cam) if cam in H36M_CAMERA_IDS else (int(cam) if cam.isdigit() else -1)
        if not 0 <= ci < len(per_cam):
            continue
        arr = np.asarray(per_cam[ci], dtype=np.float64)
        fr = np.asarray(ps.frame[a:b], dtype=np.int64)
        if arr.ndim != 3:
            raise DataError(path, f"positions_2d[{subj}][{action}][{ci}]", f"expected (F, J, 2|3), got {arr.shape}")
        if b > a and fr.max() >= len(arr):
            raise DataError(path, f"positions_2d[{subj}][{action}][{ci}]",
                            f"mismatched frame count: has {len(arr)} frames, the PoseSet clip needs frame "
                            f"{int(fr.max())}")
        rows_out.append(np.arange(a, b))
        kps_out.append(arr[fr])
    return rows_out, kps_out


# ----------------------------------------------------------------------------- selection and storage
def select_best(rows: np.ndarray, rank: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Best instance per row: (instance indices, their rows, frames with several candidates).

    ``rows (M,)`` is each instance's row (-1: none), ``rank (M,)`` its score (higher wins; ties keep
    the earlier instance), ``n`` the number of rows."""
    idx = np.flatnonzero(rows >= 0)
    r = rows[idx]
    order = np.lexsort((-rank[idx], r))
    rs = r[order]
    first = np.diff(rs, prepend=-1) != 0  # the best instance of each row (rows are >= 0)
    counts = np.bincount(rs, minlength=n)
    return idx[order][first], rs[first], int((counts > 1).sum())


def apply_detections(ps: PoseSet, inst: Instances, rows: np.ndarray, *, index: np.ndarray | None = None,
                     select: str = "score", min_score: float = 0.0, gt: np.ndarray | None = None) -> DetectionResult:
    """Keep one instance per frame, convert it to H36M-17 and lay it out per PoseSet row.

    ``rows (K,)`` pairs instance ``index[k]`` (default ``k``) with a PoseSet row (-1: none), as
    :func:`match_detections` returns them. ``select="score"`` keeps the highest
    mean keypoint score; ``"gt"`` the instance closest to the ground truth ``gt (N, 17, 2)``
    (default: the PoseSet's ``kp2d_gt``). Instances with a mean score below ``min_score`` are ignored.
    """
    n = len(ps)
    index = np.arange(len(rows)) if index is None else np.asarray(index, dtype=np.int64)
    inst_mean = inst.score.mean(axis=1) if inst.score.size else np.zeros(len(inst))
    mean_score = inst_mean[index]
    rows = np.where(mean_score >= min_score, rows, -1)
    if select == "score":
        rank = mean_score
    elif select == "gt":
        kp17_all, _ = keypoints_to_h36m(inst.kp[index], inst.score[index], inst.joint_set)
        ref = gt if gt is not None else ps.kp2d_gt
        if ref is None:
            raise ConfigError("--select gt needs ground-truth 2D (the PoseSet's kp2d_gt, or GT kp2d)")
        ok = rows >= 0
        d = np.full(len(rows), np.inf)
        if ok.any():
            g = np.asarray(ref[rows[ok]], dtype=np.float64)
            dist = np.linalg.norm(kp17_all[ok] - g, axis=-1)
            d[ok] = np.nanmean(np.where(np.isfinite(dist), dist, np.nan), axis=1)
        rank = -np.nan_to_num(d, nan=np.inf)
    else:
        raise ConfigError(f"unknown --select {select!r}; use score or gt")
    best, best_rows, multi = select_best(rows, rank, n)
    kp2d = np.full((n, 17, 2), np.nan, dtype=np.float32)
    conf = np.zeros((n, 17), dtype=np.float32)
    valid = np.zeros(n, dtype=bool)
    chosen = index[best]
    kp2d[best_rows], conf[best_rows] = keypoints_to_h36m(inst.kp[chosen], inst.score[chosen], inst.joint_set)
    valid[best_rows] = True
    matched = int(np.unique(index[rows >= 0]).size)
    stats = {"instances": len(inst), "matched_instances": matched,
             "unmatched_instances": len(inst) - matched, "frames_with_detection": int(valid.sum()),
             "frames_without_detection": int(n - valid.sum()), "frames_with_several_people": multi,
             "joint_set": inst.joint_set, "select": select}
    return DetectionResult(kp2d, conf, valid, stats)


def _from_arrays(ps: PoseSet, path: Path, fmt: str, key: str | None, joint_set: str | None,
                 align: str) -> DetectionResult:
    arr, vp3d, vp3d_joints = read_array_file(path, fmt, key)
    if vp3d is not None:
        rows_l, kps_l = _vp3d_rows(ps, vp3d, path)
        if not rows_l:
            raise DataError(path, "positions_2d", "no (subject, action, camera) of the PoseSet is in this file")
        rows = np.concatenate(rows_l)
        raw = np.concatenate(kps_l)
        js_default = joint_set or vp3d_joints
    else:
        assert arr is not None
        if arr.ndim != 3 or arr.shape[2] not in (2, 3) or not np.issubdtype(arr.dtype, np.number):
            raise DataError(path, "keypoints", f"expected a numeric array (frames, joints, 2|3), got "
                                               f"{arr.shape} {arr.dtype}")
        rows, take = _array_rows(ps, arr, path, align)
        raw = np.asarray(arr[take], dtype=np.float64)
        js_default = joint_set
    name, keep = resolve_joints(raw.shape[1], js_default, "h36m17", path)
    raw = raw[:, :keep]
    score = raw[..., 2] if raw.shape[2] == 3 else np.ones(raw.shape[:2])
    finite = np.isfinite(raw[..., :2]).all(axis=(1, 2))
    inst = Instances(kp=raw[..., :2], score=np.where(np.isfinite(score), score, 0.0), joint_set=name,
                     source=str(path))
    res = apply_detections(ps, inst, np.where(finite, rows, -1))
    res.stats["frames_missing_in_file"] = len(ps) - len(rows)
    return res


def import_detections(
    poseset: PathLike,
    files: Sequence[PathLike],
    *,
    fmt: Literal["coco", "mmpose", "halpe", "npy", "npz"] | None = None,
    joint_set: str | None = None,
    id_scheme: str | None = None,
    images: PathLike | None = None,
    name_pattern: str | None = None,
    key: str | None = None,
    align: Literal["rows", "frames"] = "rows",
    select: Literal["score", "gt"] = "score",
    min_score: float = 0.0,
    frame_base: int | None = None,
    out: PathLike | None = None,
    overwrite: bool = False,
    progress_bar: bool = True,
) -> dict[str, Any]:
    """Read detection ``files``, store them as ``kp2d``/``conf``/``kp2d_valid`` of the PoseSet at ``poseset``.

    The PoseSet is rewritten atomically in place, or written to ``out`` (refused when something
    other than a PoseSet is there, unless ``overwrite``). Descriptors sampled at the old keypoints
    (``uadd``, ``uadd_valid``) are dropped; ``stats["dropped_fields"]`` names them. If ``kp2d_gt`` is
    absent and the current ``kp2d`` is ground truth (``meta["extra"]["kp2d_source"] == "gt"``,
    or no source recorded and every confidence is 1), the current ``kp2d`` is kept as ``kp2d_gt``.
    Returns the matching counts (also stored in ``meta["extra"]["detections"]``).
    Raises :class:`DataError` when nothing matches, on a wrong joint count or frame count.
    """
    if not files:
        raise ConfigError("no detection files given")
    ps = PoseSet.load(poseset)
    dest = Path(poseset) if out is None else claim(out, "poseset", overwrite=overwrite)
    gt_ref = kp2d_if_ground_truth(ps)
    paths = [Path(f) for f in files]
    fmt, preloaded = resolve_format(paths[0], fmt)
    if fmt in ("npy", "npz"):
        if len(paths) != 1:
            raise ConfigError("array detection formats take exactly one file")
        if not paths[0].is_file():
            raise DataError(paths[0], None, "detection file not found")
        res = _from_arrays(ps, paths[0], fmt, key, joint_set, align)
    else:
        for opt, val in (("--key", key), ("--align", None if align == "rows" else align)):
            if val is not None:
                raise ConfigError(f"{opt} applies to npy/npz detections only")
        inst = read_instances(paths, fmt, joint_set=joint_set, images=images, frame_base=frame_base,
                              progress_bar=progress_bar, preloaded=preloaded)
        index, rows, info = match_detections(ps, inst, id_scheme=id_scheme, name_pattern=name_pattern)
        res = apply_detections(ps, inst, rows, index=index, select=select, min_score=min_score, gt=gt_ref)
        res.stats.update(info)
        if len(inst) and not (rows >= 0).any():
            hint = ""
            if inst.name:
                hint = f"; first name {inst.name[0]!r} vs first frame {_row_names(ps, name_pattern)[0]!r}"
                if info.get("ambiguous_names"):
                    hint += f" ({info['ambiguous_names']} names are ambiguous: give longer paths or --name-pattern)"
            raise DataError(paths[0], None, f"no detection matched any frame of the PoseSet{hint}")
    if res.stats["frames_with_detection"] == 0:
        raise DataError(paths[0], None, "no frame of the PoseSet received a detection")
    res.stats["format"] = fmt
    res.stats["files"] = [str(p) for p in paths[:5]] + ([f"... {len(paths) - 5} more"] if len(paths) > 5 else [])
    new = replace_keypoints(ps, res, f"detections:{fmt}:{paths[0].name}")
    new.save(dest)
    return dict(new.meta["extra"]["detections"])


def kp2d_if_ground_truth(ps: PoseSet) -> np.ndarray | None:
    """The PoseSet's ``kp2d`` when it is ground truth that no ``kp2d_gt`` holds yet: its
    ``meta["extra"]["kp2d_source"]`` is ``"gt"``, or no source is recorded and every confidence is 1."""
    src = (ps.meta.get("extra") or {}).get("kp2d_source")
    was_gt = ps.kp2d_gt is None and (src == "gt" or (src is None and bool(np.all(np.asarray(ps.conf) == 1.0))))
    return np.asarray(ps.kp2d) if was_gt else None


def replace_keypoints(ps: PoseSet, res: DetectionResult, source: str) -> PoseSet:
    """``ps`` with new 2D keypoints: ``kp2d``/``conf``/``kp2d_valid`` from ``res``, in memory.

    The previous ``kp2d`` becomes ``kp2d_gt`` when there is no ``kp2d_gt`` and it was ground truth
    (``meta["extra"]["kp2d_source"] == "gt"``, or no source recorded and every confidence 1).
    Fields sampled at the previous keypoints (:data:`DERIVED_FROM_KEYPOINTS`: the UADD
    descriptors) and ``meta["depth_model"]`` are dropped. ``meta["extra"]`` records ``source`` as
    ``kp2d_source`` and ``res.stats`` (plus ``kept_previous_kp2d_as_gt`` and ``dropped_fields``)
    as ``detections``.
    """
    gt = kp2d_if_ground_truth(ps)
    fields = {k: v for k, v in ps.fields.items() if k not in DERIVED_FROM_KEYPOINTS}
    conf = np.where(np.isfinite(res.kp2d).all(axis=-1), res.conf, np.float32(0))  # a missing joint: conf 0
    fields |= {"kp2d": res.kp2d, "conf": conf, "kp2d_valid": res.valid}
    if gt is not None:
        fields["kp2d_gt"] = gt.astype(np.float32)
    dropped = [k for k in DERIVED_FROM_KEYPOINTS if ps.has(k)]
    stats = dict(res.stats) | {"kept_previous_kp2d_as_gt": gt is not None, "dropped_fields": dropped}
    extra = dict(ps.meta.get("extra") or {}) | {"kp2d_source": source, "detections": stats}
    return PoseSet(fields, ps.clips, dict(ps.meta) | {"extra": extra, "depth_model": None})
