"""The real datasets' public API (:data:`DATASETS`, :func:`convert`, :func:`prepare`) and the converters'
shared machinery.

A converter reads a dataset as distributed and produces one :class:`ClipData` per clip (one
camera view of one sequence, or one person of a 3DPW sequence): per-frame arrays in the
canonical conventions (H36M-17 joints, 3D in metres in the camera frame with x right, y down,
z forward, 2D in pixels of the original frames) plus the clip's metadata. :func:`assemble`
concatenates the clips into one :class:`~auglift.poseset.PoseSet` (with the ``split`` column),
drops frames whose 3D is unusable, and measures how well ``project(kp3d)`` matches the
dataset's own 2D annotation (``meta["extra"]["reprojection_px"]``) so a wrong axis or unit
convention shows up at once. :func:`prepare` runs a converter and writes one PoseSet per split.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from auglift.errors import ConfigError, DataError
from auglift.geometry import project
from auglift.io import PathLike, check_npz, is_safe_name, natural_key, regular_file_size
from auglift.outputs import claim, writing
from auglift.poseset import ClipTable, PoseSet, as_kind
from auglift.safe_pickle import load_npz_restricted
from auglift.skeleton import conversion_matrix, get_joint_set

__all__ = [
    "DATASETS",
    "ClipData",
    "as_strings",
    "assemble",
    "joints_to_h36m",
    "load_npz",
    "pattern_literal",
    "prepare",
    "progress",
    "write_splits",
]

T = TypeVar("T")

# Dataset name -> converter module; each module provides ``convert(root, **options) -> PoseSet``.
DATASETS: dict[str, str] = {
    "h36m": "auglift.datasets.h36m",
    "mpi_inf_3dhp": "auglift.datasets.mpi_inf_3dhp",
    "3dpw": "auglift.datasets.pw3d",
    "fit3d": "auglift.datasets.fit3d",
}
ALIASES: dict[str, str] = {"human36m": "h36m", "3dhp": "mpi_inf_3dhp", "mpi-inf-3dhp": "mpi_inf_3dhp",
                           "pw3d": "3dpw"}


@dataclass
class ClipData:
    """One clip in canonical conventions, before assembly.

    Arrays (``F`` frames of this clip, H36M-17 joints):

    * ``frame`` ``(F,)`` int: 0-based frame index in the clip's frame ``source``;
    * ``kp3d`` ``(F, 17, 3)`` metres, camera frame (x right, y down, z forward), absolute;
    * ``kp2d_gt`` ``(F, 17, 2)`` pixels or ``None`` (then computed as ``project(kp3d)``);
    * ``kp2d`` ``(F, 17, 2)`` pixels or ``None`` (then ``kp2d_gt``), ``conf`` ``(F, 17)`` or
      ``None`` (then 1); ``visible`` ``(F, 17)`` bool or ``None``; ``kp2d_valid`` ``(F,)`` or ``None``;
    * ``ref2d`` ``(F, 17, 2)``: the dataset's own 2D annotation used only for the reprojection check.
    """

    subject: str
    action: str
    camera: str
    split: str
    width: int
    height: int
    intrinsics: np.ndarray  # (4,) [fx, fy, cx, cy] px
    frame: np.ndarray
    kp3d: np.ndarray
    distortion: np.ndarray = field(default_factory=lambda: np.zeros(5))
    source: str = ""
    fps: float = 50.0
    kp2d_gt: np.ndarray | None = None
    kp2d: np.ndarray | None = None
    conf: np.ndarray | None = None
    visible: np.ndarray | None = None
    kp2d_valid: np.ndarray | None = None
    ref2d: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, idx: np.ndarray | slice) -> ClipData:
        """The same clip restricted to rows ``idx`` (an index array, boolean mask or slice)."""
        rows = ("frame", "kp3d", "kp2d_gt", "kp2d", "conf", "visible", "kp2d_valid", "ref2d")
        return replace(self, **{k: getattr(self, k)[idx] for k in rows if getattr(self, k) is not None})

    def every(self, step: int) -> ClipData:
        """Keep every ``step``-th row (temporal subsampling, e.g. ``step=2``: 50 -> 25 Hz); ``fps`` follows."""
        return self if step <= 1 else replace(self.take(slice(None, None, step)), fps=self.fps / step)


def joints_to_h36m(kp: np.ndarray, joint_set: str) -> np.ndarray:
    """Keypoints ``(..., J, D)`` of ``joint_set`` -> H36M-17 ``(..., 17, D)`` float64.

    The same linear map as :func:`auglift.skeleton.to_h36m`, done as one matrix product
    (``tensordot``) so it stays fast on millions of frames.
    """
    js = get_joint_set(joint_set)
    kp = np.asarray(kp, dtype=np.float64)
    if kp.ndim < 2 or kp.shape[-2] != js.num_joints:
        raise DataError(None, "keypoints", f"expected (..., {js.num_joints}, D) for {js.name}, got {kp.shape}")
    return np.moveaxis(np.tensordot(kp, conversion_matrix(js), axes=([-2], [1])), -1, -2)


def check_step_splits(dataset: str, step: int, splits: Sequence[str] | None,
                      known: Sequence[str] = ("train", "test")) -> tuple[str, ...]:
    """Validate a converter's ``step`` and ``splits`` options; returns the splits (default: all ``known``)."""
    if step < 1:
        raise ConfigError(f"step must be >= 1, got {step}")
    out = tuple(splits or known)
    for s in out:
        if s not in known:
            raise ConfigError(f"{dataset} splits are {', '.join(map(repr, known))}; got {s!r}")
    return out


def progress(items: Iterable[T], *, desc: str, enabled: bool = True, unit: str = "clip") -> Iterator[T]:
    """A tqdm progress bar on stderr (silent when ``enabled`` is False or stderr is not a terminal)."""
    yield from tqdm(items, desc=desc, unit=unit, disable=None if enabled else True, leave=False, file=sys.stderr,
                    dynamic_ncols=True)


def load_npz(path: PathLike, keys: Sequence[str] | None = None) -> dict[str, Any]:
    """Read members of an ``.npz`` archive without ever unpickling unsafely.

    Numeric and string members are read with ``allow_pickle=False``; if the archive holds object
    arrays (VideoPose3D's dicts, P-STMO's sequence dicts) the whole archive is read through
    :func:`auglift.safe_pickle.load_npz_restricted`, and 0-d object members are unwrapped to
    the Python object they hold. Missing ``keys`` raise a :class:`DataError` naming them.
    """
    p = Path(path)
    regular_file_size(p, None, "an .npz archive")
    with open(p, "rb") as fh:
        magic = fh.read(6)
    if magic.startswith(b"\x93NUMPY"):
        raise DataError(p, None, "expected an .npz archive, found a single .npy array")
    if magic[:1] == b"\x80":
        raise DataError(p, None, "a bare pickle, not an .npz archive; refusing to unpickle it")
    members = check_npz(p)  # headers checked against the archive before NumPy allocates anything
    for k in keys or ():
        if k not in members:
            raise DataError(p, k, f"missing from the archive (found: {', '.join(sorted(members)) or 'nothing'})")
    if not any(members[k][1].hasobject for k in keys or members):
        try:
            with open(p, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                return {k: z[k] for k in keys or list(members)}
        except (ValueError, zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise DataError(p, None, f"not a valid .npz archive ({exc})") from None
    arrays = load_npz_restricted(p)  # the same members
    res: dict[str, Any] = {}
    for k in keys or list(arrays):
        a = arrays[k]
        res[k] = a.item() if (a.dtype.hasobject and a.ndim == 0) else a
    return res


def require(mapping: Mapping[str, Any], key: str, path: PathLike, what: str = "") -> Any:
    """``mapping[key]`` or a :class:`DataError` naming the file and the missing field."""
    if not isinstance(mapping, Mapping):
        raise DataError(path, key, f"expected a mapping with key {key!r}, got {type(mapping).__name__}")
    if key not in mapping:
        found = ", ".join(sorted(map(str, mapping))[:20])
        raise DataError(path, key, f"missing{' (' + what + ')' if what else ''}; found: {found or 'nothing'}")
    return mapping[key]


def as_array(value: Any, path: PathLike, name: str, shape: tuple[int | None, ...],
             dtype: Any = np.float64, *, finite: bool = False) -> np.ndarray:
    """``np.asarray(value, dtype)`` checked against ``shape`` (``None`` = any size) and, with ``finite``,
    for NaN and infinity; else a DataError."""
    try:
        a = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DataError(path, name, f"expected a numeric array of shape {_fmt_shape(shape)} ({exc})") from None
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        raise DataError(path, name, f"expected shape {_fmt_shape(shape)}, got {a.shape}")
    if finite and not np.isfinite(a).all():
        raise DataError(path, name, "expected finite numbers")
    return a


def as_strings(value: Any, path: PathLike, name: str) -> np.ndarray:
    """``value`` as an array of ``str``: an object array holding only ``str``, or what a clip-table string
    column accepts (:func:`auglift.poseset.as_kind`: bytes decoded as UTF-8); anything else is a DataError."""
    a = np.asarray(value)
    if a.dtype.hasobject and all(isinstance(v, str) for v in a.reshape(-1).tolist()):
        return a.astype(str)
    return as_kind(a, "U", path, name)


def pattern_literal(text: str) -> str:
    """``text`` (a name read from a dataset) escaped for use inside a ``{frame}`` image pattern.

    Braces in a sequence or image name must stay literal: unescaped, ``{frame:999999999999d}``
    in a name would be a format field when frames are read.
    """
    return text.replace("{", "{{").replace("}", "}}")


def _fmt_shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("N" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _usable(clips: Sequence[ClipData], min_depth: float) -> tuple[list[ClipData], int]:
    """The clips with their usable frames (finite 3D in front of the camera), frames ascending; and how many
    frames were dropped. A clip listing a frame twice is a DataError."""
    kept: list[ClipData] = []
    dropped = 0
    for c in clips:
        if len(c) == 0:
            continue
        ok = np.isfinite(c.kp3d).all(axis=(1, 2)) & (c.kp3d[..., 2] >= min_depth).all(axis=1)
        if not ok.all():
            dropped += int((~ok).sum())
            c = c.take(ok)
            if len(c) == 0:
                continue
        if len(c) > 1 and (np.diff(c.frame) <= 0).any():
            c = c.take(np.argsort(c.frame, kind="stable"))
            dup = np.flatnonzero(np.diff(c.frame) == 0)
            if dup.size:
                raise DataError(None, "frame", f"clip {c.subject}/{c.action}/{c.camera} lists frame "
                                               f"{int(c.frame[dup[0]])} twice")
        kept.append(c)
    return kept, dropped


def assemble(clips: Sequence[ClipData], meta: Mapping[str, Any], *, min_depth: float = 1e-3) -> PoseSet:
    """Concatenate clips into one PoseSet (rows grouped by clip, frames ascending within a clip).

    Frames whose ``kp3d`` is not finite or has a joint at depth ``z < min_depth`` (behind the
    camera) are dropped and counted in ``meta["extra"]["dropped_frames"]``; empty clips are
    dropped. ``kp2d_gt`` defaults to ``project(kp3d, intrinsics, distortion)``, ``kp2d`` to
    ``kp2d_gt`` and ``conf`` to 1. When clips carry ``ref2d`` (the dataset's own 2D annotation)
    the reprojection error is summarised in ``meta["extra"]["reprojection_px"]``.
    """
    kept, dropped = _usable(clips, min_depth)
    counts = np.array([len(c) for c in kept], dtype=np.int64)
    n = int(counts.sum())
    bounds = np.concatenate([[0], np.cumsum(counts)])  # rows bounds[i]:bounds[i + 1] are clip i's
    clip_id = np.repeat(np.arange(len(kept), dtype=np.int32), counts)
    intr = np.array([np.asarray(c.intrinsics, np.float64) for c in kept]).reshape(len(kept), 4)
    dist = np.array([np.asarray(c.distortion, np.float64) for c in kept]).reshape(len(kept), 5)

    def cat(name: str, tail: tuple[int, ...], dtype: Any, default: Any = None, *, always: bool = False
            ) -> np.ndarray | None:
        """The clips' ``name`` arrays in one ``(n, *tail)`` array (``default`` for a clip without it); None
        when no clip has it, unless ``always`` (then all ``default``)."""
        parts = [getattr(c, name) for c in kept]
        if not always and all(p is None for p in parts):
            return None
        out = np.empty((n, *tail), dtype=dtype)
        for start, stop, p in zip(bounds[:-1], bounds[1:], parts):
            out[start:stop] = default if p is None else p
        return out

    kp3d = cat("kp3d", (17, 3), np.float32, always=True)
    gt = cat("kp2d_gt", (17, 2), np.float32, np.nan)
    proj = project(kp3d, intr[clip_id], dist[clip_id]).astype(np.float32)
    if gt is None:
        gt = proj
    else:
        missing = np.isnan(gt).all(axis=(1, 2))
        gt[missing] = proj[missing]
    kp2d = cat("kp2d", (17, 2), np.float32, np.nan)
    kp2d_from_gt = kp2d is None
    if kp2d is None:
        kp2d = gt.copy()
    conf = cat("conf", (17,), np.float32, 1.0, always=True)
    np.clip(conf, 0.0, 1.0, out=conf)
    conf[~np.isfinite(conf)] = 0.0
    fields: dict[str, np.ndarray] = {
        "clip": clip_id,
        "frame": cat("frame", (), np.int32, always=True),
        "kp2d": kp2d, "conf": conf, "kp3d": kp3d, "kp2d_gt": gt,
    }
    optional = {"visible": cat("visible", (17,), bool, True), "kp2d_valid": cat("kp2d_valid", (), bool, True)}
    fields |= {k: v for k, v in optional.items() if v is not None}
    m = dict(meta)
    extra = dict(m.get("extra", {}))
    extra.setdefault("kp2d_source", "gt" if kp2d_from_gt else "dataset")
    extra["dropped_frames"] = dropped
    ref = cat("ref2d", (17, 2), np.float32, np.nan)
    if ref is not None:
        err = np.linalg.norm(proj.astype(np.float64) - ref, axis=-1)
        err = err[np.isfinite(err)]
        if err.size:
            extra["reprojection_px"] = {k: round(float(v), 4) for k, v in
                                        (("median", np.median(err)), ("p95", np.percentile(err, 95)),
                                         ("max", err.max()))}
    m["extra"] = extra
    m.setdefault("joint_set", "h36m17")
    m["units"] = {"kp2d": "px", "kp3d": "m", "uadd": "m"}
    return PoseSet(fields, _clip_table(kept, intr, dist), m)


def _clip_table(kept: Sequence[ClipData], intr: np.ndarray, dist: np.ndarray) -> ClipTable:
    """The clips' metadata as columns, typed even when no clip is left (all frames dropped)."""
    def column(name: str, kind: type) -> np.ndarray:
        return np.array([kind(getattr(c, name)) for c in kept], dtype=kind)

    return ClipTable({name: column(name, str) for name in ("subject", "action", "camera", "split", "source")},
                     width=column("width", int), height=column("height", int), intrinsics=intr, distortion=dist,
                     fps=column("fps", float))


def write_splits(ps: PoseSet, out: PathLike, *, combined: bool = False, overwrite: bool = False) -> list[Path]:
    """Save ``ps`` to ``out`` (``combined``) or one PoseSet per split to ``out/<split>``; returns the paths.
    A split directory holding something other than a PoseSet is refused unless ``overwrite``."""
    out = Path(out)
    if combined:
        return [ps.save(out)]
    paths = []
    for split in sorted(set(ps.clips.split.tolist()), key=natural_key):
        if not is_safe_name(split):  # out/<split> must stay inside out
            raise DataError(out, "clips.split", f"split {split!r} cannot name an output directory; use --combined "
                                                "or plain split names")
        claim(out / split, "poseset", overwrite=overwrite)
        paths.append(ps.select(split=split).save(out / split))
    return paths


def convert(dataset: str, root: PathLike, **options: Any) -> PoseSet:
    """Run the converter of ``dataset`` (``h36m``, ``mpi_inf_3dhp``, ``3dpw``, ``fit3d``) on ``root``.

    ``options`` are the converter's keyword arguments; one it does not take is a ConfigError.
    """
    key = ALIASES.get(dataset.lower(), dataset.lower())
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
    mod = importlib.import_module(DATASETS[key])
    fn = mod.convert
    params = inspect.signature(fn).parameters
    for name in options:
        if name not in params:
            takes = ", ".join(p for p in params if p != "root")
            raise ConfigError(f"option {name!r} does not apply to dataset {key} (it takes: {takes})")
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, None, "dataset root directory not found" if not root.exists() else "not a directory")
    return fn(root, **options)


def prepare(dataset: str, root: PathLike, out: PathLike, *, combined: bool = False, overwrite: bool = False,
            **options: Any) -> tuple[PoseSet, list[Path]]:
    """Convert ``dataset`` at ``root`` and write it under ``out``; returns the PoseSet and written paths.

    ``out`` must be absent, empty or auglift's own output (a PoseSet with ``combined``, else a directory
    of PoseSets, held locked while converting) unless ``overwrite`` (:mod:`auglift.outputs`).
    """
    with writing(out, "poseset" if combined else "posesets", overwrite=overwrite) as dest:
        ps = convert(dataset, root, **options)
        if len(ps) == 0:
            dropped = int((ps.meta.get("extra") or {}).get("dropped_frames", 0))
            why = (f"; all {dropped} frames were dropped (3D not finite or behind the camera)" if dropped else
                   " (see the README section 'Real datasets' for the expected layout)")
            raise DataError(root, None, f"no frames found for {dataset} with these options{why}")
        return ps, write_splits(ps, dest, combined=combined, overwrite=overwrite)
