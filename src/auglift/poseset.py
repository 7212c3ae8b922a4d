"""The canonical dataset: a :class:`PoseSet` is a directory of ``.npy`` arrays plus ``meta.json``.

Layout of a saved PoseSet ``DIR``::

    DIR/meta.json            schema, version, joint set, units, source, depth model, fields
    DIR/<field>.npy          one per-frame array per field (N rows), memory-mapped on load
    DIR/clips/<column>.npy   the clip table (C rows): subject, action, camera, split, ...

Per-frame fields (``N`` frames, ``J = 17`` joints, H36M-17 order):

==============  ==========  =========  ==================================================
field           shape       dtype      meaning
==============  ==========  =========  ==================================================
``clip``        (N,)        int32      row of the clip table; rows are grouped by clip
``frame``       (N,)        int32      0-based frame index in the clip's frame source
``kp2d``        (N, J, 2)   float32    2D keypoints, pixels of the original frame (the
                                       detector's, or GT); NaN where a detection is missing
``conf``        (N, J)      float32    2D confidence in [0, 1]; 0 where ``kp2d`` is NaN
``kp3d``        (N, J, 3)   float32    3D joints, metres, camera frame (x right, y down,
                                       z forward), absolute (not root-relative)
``kp2d_gt``     (N, J, 2)   float32    ground-truth 2D (projection of ``kp3d``), pixels
``visible``     (N, J)      bool       joint not occluded (where the source knows)
``kp2d_valid``  (N,)        bool       a 2D detection exists for the frame
``uadd``        (N, J, 3)   float32    depth descriptor (d, d_min, d_max); metres or
                                       relative units (``meta["depth_model"]``); NaN where
                                       it could not be sampled
``uadd_valid``  (N, J)      bool       the descriptor was sampled inside the image
==============  ==========  =========  ==================================================

Only ``clip``, ``frame``, ``kp2d`` and ``conf`` are required; ``kp3d`` is needed for training
and evaluation. Clip-table columns: ``subject``, ``action``, ``camera``, ``split`` (str),
``width``, ``height`` (int32, pixels), ``intrinsics`` (C, 4) float64 ``[fx, fy, cx, cy]``
pixels, ``distortion`` (C, 5) float64 OpenCV ``[k1, k2, p1, p2, k3]``, ``source`` (str: a
video path, an image pattern with ``{frame}``/``{frame1}`` placeholders for the 0-/1-based
frame number, or ``synthetic:...``; relative paths are relative to ``meta["frame_root"]``)
and ``fps`` (float32).

Temporal lifters read sliding windows as index arithmetic over these arrays
(:meth:`PoseSet.windows`); nothing is copied until a batch is gathered.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from auglift import __version__
from auglift.errors import ConfigError, DataError
from auglift.io import PathLike, atomic_dir, load_npy, read_json, save_npy, sha256_file, write_json
from auglift.skeleton import get_joint_set

__all__ = ["SCHEMA", "SCHEMA_VERSION", "ClipTable", "FieldSpec", "PoseSet", "Windows", "clip_label",
           "default_intrinsics"]

SCHEMA = "auglift.poseset"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class FieldSpec:
    """Shape/dtype contract of a per-frame field. ``tail`` uses ``"J"`` for the joint count."""

    tail: tuple[int | str, ...]
    kind: Literal["f", "i", "b"]
    required: bool = False
    allow_nan: bool = False
    lo: float | None = None
    hi: float | None = None
    doc: str = ""

    @property
    def dtype(self) -> np.dtype:
        return np.dtype({"f": np.float32, "i": np.int32, "b": np.bool_}[self.kind])

    def shape_for(self, n: int, j: int) -> tuple[int, ...]:
        return (n, *(j if t == "J" else int(t) for t in self.tail))

    def describe(self) -> str:
        return "(N" + "".join(f", {t}" for t in self.tail) + ")"


FIELDS: dict[str, FieldSpec] = {
    "clip": FieldSpec((), "i", True, doc="clip-table row"),
    "frame": FieldSpec((), "i", True, lo=0, doc="0-based frame index in the clip source"),
    "kp2d": FieldSpec(("J", 2), "f", True, allow_nan=True, doc="2D keypoints, pixels"),
    "conf": FieldSpec(("J",), "f", True, lo=0.0, hi=1.0, doc="2D confidence in [0, 1]"),
    "kp3d": FieldSpec(("J", 3), "f", doc="3D joints, metres, camera frame"),
    "kp2d_gt": FieldSpec(("J", 2), "f", doc="ground-truth 2D, pixels"),
    "visible": FieldSpec(("J",), "b", doc="joint not occluded"),
    "kp2d_valid": FieldSpec((), "b", doc="a 2D detection exists for the frame"),
    "uadd": FieldSpec(("J", 3), "f", allow_nan=True, doc="depth descriptor (d, d_min, d_max)"),
    "uadd_valid": FieldSpec(("J",), "b", doc="descriptor sampled inside the image"),
}

CLIP_COLUMNS: dict[str, tuple[tuple[int, ...], str, bool]] = {
    # name: (tail shape, kind ('U' str, 'i', 'f'), required)
    "subject": ((), "U", True),
    "action": ((), "U", True),
    "camera": ((), "U", True),
    "split": ((), "U", True),
    "width": ((), "i", True),
    "height": ((), "i", True),
    "intrinsics": ((4,), "f", True),
    "distortion": ((5,), "f", False),
    "source": ((), "U", False),
    "fps": ((), "f", False),
}


def as_kind(arr: Any, kind: str, path: PathLike | None, name: str) -> np.ndarray:
    """``arr`` as a clip-table column of ``kind``: ``"U"`` str (bytes decoded as UTF-8), ``"i"`` int32 or
    ``"f"`` float64; a DataError naming ``path`` and ``name`` when its values are of another kind."""
    a = np.asarray(arr)
    if kind == "U":
        if a.dtype.kind not in "US":
            raise DataError(path, name, f"expected strings, got dtype {a.dtype}")
        if a.dtype.kind == "S":  # bytes: decode as UTF-8 (astype(str) would assume ASCII and raise)
            try:
                return np.char.decode(a, "utf-8").astype(str)
            except UnicodeDecodeError as exc:
                raise DataError(path, name, f"expected UTF-8 text, found byte {exc.object[exc.start]:#04x} "
                                            "that is not UTF-8") from None
        return a.astype(str)
    if kind == "i":
        if a.dtype.kind not in "iub":
            raise DataError(path, name, f"expected integers, got dtype {a.dtype}")
        return a.astype(np.int32)
    if a.dtype.kind not in "iuf":
        raise DataError(path, name, f"expected numbers, got dtype {a.dtype}")
    return a.astype(np.float64)


class ClipTable:
    """Per-clip metadata as columns of equal length ``C`` (attribute access: ``clips.subject``)."""

    _defaults: ClassVar[dict[str, Any]] = {"distortion": 0.0, "source": "", "fps": 50.0}

    def __init__(self, columns: Mapping[str, Any] | None = None, *, path: PathLike | None = None, **kw: Any):
        cols = dict(columns or {}) | kw
        unknown = sorted(set(cols) - set(CLIP_COLUMNS))
        if unknown:
            raise DataError(path, f"clips.{unknown[0]}", f"unknown clip column; known: {', '.join(CLIP_COLUMNS)}")
        missing = [c for c, (_, _, req) in CLIP_COLUMNS.items() if req and c not in cols]
        if missing:
            raise DataError(path, f"clips.{missing[0]}", "required clip column is missing")
        n = len(np.asarray(cols["subject"]))
        out: dict[str, np.ndarray] = {}
        for name, (tail, kind, _req) in CLIP_COLUMNS.items():
            if name not in cols:
                out[name] = np.full((n, *tail), self._defaults[name], dtype=str if kind == "U" else np.float64)
                continue
            a = as_kind(cols[name], kind, path, f"clips.{name}")
            if a.shape != (n, *tail):
                raise DataError(path, f"clips.{name}", f"expected shape {(n, *tail)}, got {a.shape}")
            if kind == "f" and not np.isfinite(a).all():
                raise DataError(path, f"clips.{name}", "expected finite values, found NaN/inf")
            out[name] = a
        for side in ("width", "height"):
            if n and (out[side] <= 0).any():
                raise DataError(path, f"clips.{side}", "image width and height must be positive")
        self.columns = out

    def __len__(self) -> int:
        return len(self.columns["subject"])

    def __getattr__(self, name: str) -> np.ndarray:
        cols = self.__dict__.get("columns")
        if cols is not None and name in cols:
            return cols[name]
        raise AttributeError(name)

    def __getitem__(self, rows: Any) -> ClipTable:
        idx = np.arange(len(self))[rows]
        return ClipTable({k: v[np.atleast_1d(idx)] for k, v in self.columns.items()})

    def record(self, i: int) -> dict[str, Any]:
        """Clip ``i`` as a plain dict (Python scalars/lists)."""
        return {k: v[i].tolist() for k, v in self.columns.items()}

    def mask(
        self,
        *,
        split: str | Iterable[str] | None = None,
        subject: str | Iterable[str] | None = None,
        action: str | Iterable[str] | None = None,
        camera: str | Iterable[str] | None = None,
    ) -> np.ndarray:
        """``(C,)`` bool of clips matching every given criterion (each a value or a list)."""
        m = np.ones(len(self), dtype=bool)
        for col, want in (("split", split), ("subject", subject), ("action", action), ("camera", camera)):
            if want is None:
                continue
            vals = [want] if isinstance(want, str) else list(want)
            m &= np.isin(self.columns[col], np.asarray(vals, dtype=str))
        return m

    @staticmethod
    def concatenate(tables: Iterable[ClipTable]) -> ClipTable:
        tables = list(tables)
        return ClipTable({k: np.concatenate([t.columns[k] for t in tables]) for k in CLIP_COLUMNS})


@dataclass(frozen=True)
class Windows:
    """Sliding windows over a PoseSet as index arithmetic (no data copies).

    Window ``m`` covers rows ``clip(centers[m] + offsets, lo[m], hi[m])``: near clip edges the
    boundary frame is repeated (edge padding). ``target`` is the position inside the window
    whose pose a many-to-one lifter predicts (``None``: all positions, many-to-many).
    """

    centers: np.ndarray  # (M,) int64 reference row of each window
    lo: np.ndarray  # (M,) int64 first row of the window's clip
    hi: np.ndarray  # (M,) int64 last row of the window's clip
    offsets: np.ndarray  # (T,) int64
    target: int | None

    def __len__(self) -> int:
        return len(self.centers)

    @property
    def length(self) -> int:
        return len(self.offsets)

    def rows(self, sel: Any = slice(None)) -> np.ndarray:
        """``(B, T)`` int64 row indices of the selected windows."""
        c = self.centers[sel]
        return np.clip(c[..., None] + self.offsets, self.lo[sel][..., None], self.hi[sel][..., None])

    def valid(self, sel: Any = slice(None)) -> np.ndarray:
        """``(B, T)`` bool: position holds its own frame (not an edge-padding repeat)."""
        r = self.centers[sel][..., None] + self.offsets
        return (r >= self.lo[sel][..., None]) & (r <= self.hi[sel][..., None])

    def target_rows(self, sel: Any = slice(None)) -> np.ndarray:
        """Rows whose poses are predicted: ``(B,)`` (many-to-one) or ``(B, T)`` (many-to-many)."""
        return self.rows(sel) if self.target is None else self.rows(sel)[..., self.target]

    __getitem__ = rows


class PoseSet:
    """The canonical dataset: per-frame arrays (attributes ``kp2d``, ``conf``, ...), ``clips`` and ``meta``.

    Construct in memory with ``PoseSet(fields, clips, meta)``, or open a saved one with
    :meth:`load` (memory-mapped, structural checks only; :meth:`validate` checks values).
    Optional fields that are absent read as ``None``.
    """

    FIELDS: ClassVar[dict[str, FieldSpec]] = FIELDS

    def __init__(
        self,
        fields: Mapping[str, np.ndarray],
        clips: ClipTable | Mapping[str, Any],
        meta: Mapping[str, Any] | None = None,
        *,
        path: PathLike | None = None,
        check: bool = True,
    ):
        self.path = None if path is None else Path(path)
        self.clips = clips if isinstance(clips, ClipTable) else ClipTable(clips, path=path)
        self.meta = dict(meta or {})
        for key, default in (("joint_set", "h36m17"), ("units", {"kp2d": "px", "kp3d": "m", "uadd": "m"}),
                             ("source", "unknown"), ("depth_model", None), ("frame_root", ""), ("extra", {})):
            self.meta.setdefault(key, default)
        self._fields: dict[str, np.ndarray] = {}
        for name, arr in fields.items():
            if name not in FIELDS:
                raise DataError(path, name, f"unknown field; known: {', '.join(FIELDS)}")
            spec = FIELDS[name]
            a = np.asanyarray(arr)
            if a.dtype != spec.dtype:
                ok = {"f": "fiu", "i": "iu", "b": "b"}[spec.kind]
                if a.dtype.kind not in ok:
                    raise DataError(self._fpath(name), name, f"expected dtype {spec.dtype}, got {a.dtype}")
                a = a.astype(spec.dtype)
            self._fields[name] = a
        if check:
            self._check_structure()

    # ------------------------------------------------------------------ basic access
    @property
    def fields(self) -> dict[str, np.ndarray]:
        """The present per-frame fields by name (read-only mapping view semantics)."""
        return dict(self._fields)

    def __getattr__(self, name: str) -> Any:
        if name in FIELDS:
            return self.__dict__["_fields"].get(name)
        raise AttributeError(name)

    def has(self, *names: str) -> bool:
        return all(n in self._fields for n in names)

    def require(self, *names: str, why: str = "") -> None:
        """Raise a :class:`DataError` naming the first missing field."""
        for n in names:
            if n not in self._fields:
                suffix = f" ({why})" if why else ""
                raise DataError(self.path, n, f"field is missing from this PoseSet{suffix}")

    def __len__(self) -> int:
        return int(self._fields["clip"].shape[0])

    @property
    def num_frames(self) -> int:
        return len(self)

    @property
    def num_joints(self) -> int:
        return get_joint_set(self.meta["joint_set"]).num_joints

    def __repr__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return (f"PoseSet({len(self)} frames, {len(self.clips)} clips, fields="
                f"{sorted(self._fields)}{where})")

    def _fpath(self, name: str) -> Path | None:
        return None if self.path is None else self.path / f"{name}.npy"

    # ------------------------------------------------------------------ checks
    def _check_structure(self) -> None:
        """Cheap checks (shapes, dtypes, clip ids sorted and in range): O(N) on int32 only."""
        for req in (n for n, s in FIELDS.items() if s.required):
            if req not in self._fields:
                raise DataError(self.path, req, "required field is missing")
        n = len(self._fields["clip"])
        j = self.num_joints
        for name, a in self._fields.items():
            spec = FIELDS[name]
            want = spec.shape_for(n, j)
            if a.shape != want:
                what = f"expected shape {spec.describe()} = {want}, got {a.shape}"
                if a.ndim == len(want) and a.shape[0] == n and len(want) > 1 and a.shape[1] != j:
                    what = f"expected {j} joints ({self.meta['joint_set']}), got {a.shape[1]}; " + what
                elif a.ndim >= 1 and a.shape[0] != n:
                    what = f"has {a.shape[0]} rows but the PoseSet has {n} frames (from clip.npy)"
                raise DataError(self._fpath(name), name, what)
        clip = self._fields["clip"]
        if n:
            cmin, cmax = int(clip.min()), int(clip.max())
            if cmin < 0 or cmax >= len(self.clips):
                raise DataError(self._fpath("clip"), "clip",
                                f"clip ids must lie in [0, {len(self.clips)}), found [{cmin}, {cmax}]")
            if (np.diff(clip) < 0).any():
                raise DataError(self._fpath("clip"), "clip", "rows must be grouped by clip in ascending clip order")

    def validate(self, *, checksums: bool = False) -> PoseSet:
        """Check values: finiteness (NaN only where allowed), ranges, frames increasing within a clip.

        With ``checksums=True`` (saved sets only) also re-hash every file against ``meta.json``.
        Returns ``self``; raises :class:`DataError` on the first problem.
        """
        self._check_structure()
        for name, a in self._fields.items():
            spec = FIELDS[name]
            if spec.kind == "f":
                bad = np.isinf(a) if spec.allow_nan else ~np.isfinite(a)
                if bad.any():
                    row = int(np.argwhere(bad)[0][0])
                    what = "NaN or inf" if not spec.allow_nan else "inf"
                    raise DataError(self._fpath(name), name, f"expected finite values, found {what} (frame {row})")
            if spec.lo is not None or spec.hi is not None:
                vals = a[np.isfinite(a)] if spec.kind == "f" else a
                if spec.lo is not None and vals.size and vals.min() < spec.lo:
                    raise DataError(self._fpath(name), name, f"values must be >= {spec.lo}, found {vals.min()}")
                if spec.hi is not None and vals.size and vals.max() > spec.hi:
                    raise DataError(self._fpath(name), name, f"values must be <= {spec.hi}, found {vals.max()}")
        self._check_marked_valid()
        clip, frame = self._fields["clip"], self._fields["frame"]
        bad = (clip[1:] == clip[:-1]) & (frame[1:] <= frame[:-1])
        if bad.any():
            row = int(np.flatnonzero(bad)[0]) + 1
            raise DataError(self._fpath("frame"), "frame", f"frames must increase within a clip (frame row {row})")
        if checksums:
            if self.path is None:
                raise DataError(None, "meta", "checksums need a saved PoseSet")
            for name, info in self.meta.get("fields", {}).items():
                if "sha256" in info and sha256_file(self.path / f"{name}.npy") != info["sha256"]:
                    raise DataError(self._fpath(name), name, "checksum mismatch with meta.json")
        return self

    def _check_marked_valid(self) -> None:
        """NaN is allowed only where nothing marks the value valid: a ``kp2d`` joint with ``conf`` 0 or in a
        frame whose ``kp2d_valid`` is false (a frame marked valid has a finite joint), ``uadd`` where
        ``uadd_valid`` is false. Every command opens its PoseSets through :meth:`validate`."""
        bad2d = ~np.isfinite(np.asarray(self.kp2d)).all(axis=-1)  # (N, J)
        frame_ok = np.ones(len(self), bool) if self.kp2d_valid is None else np.asarray(self.kp2d_valid)
        checks = [("kp2d", bad2d & (np.asarray(self.conf) > 0) & frame_ok[:, None], "where conf > 0")]
        if self.kp2d_valid is not None:
            checks.append(("kp2d", bad2d.all(axis=1) & frame_ok, "in every joint of a frame marked kp2d_valid"))
        if self.uadd is not None and self.uadd_valid is not None:
            checks.append(("uadd", ~np.isfinite(np.asarray(self.uadd)).all(axis=-1) & np.asarray(self.uadd_valid),
                           "where uadd_valid is true"))
        for name, bad, where in checks:
            if bad.any():
                raise DataError(self._fpath(name), name, f"non-finite value {where} (frame "
                                                         f"{int(np.argwhere(bad)[0][0])}); expected a finite value "
                                                         "or the joint marked invalid")

    # ------------------------------------------------------------------ clips and rows
    @cached_property
    def clip_ranges(self) -> np.ndarray:
        """``(C, 2)`` int64 ``[start, stop)`` rows of every clip (empty clips: start == stop)."""
        clip = self._fields["clip"]
        c = np.arange(len(self.clips))
        start = np.searchsorted(clip, c, side="left")
        stop = np.searchsorted(clip, c, side="right")
        return np.stack([start, stop], axis=1).astype(np.int64)

    def rows_of(self, clip_mask: np.ndarray) -> np.ndarray:
        """Row indices ``(M,)`` int64 of the clips selected by a ``(C,)`` bool mask (or clip ids)."""
        cm = np.asarray(clip_mask)
        ids = np.flatnonzero(cm) if cm.dtype == bool else cm.astype(np.int64)
        r = self.clip_ranges[ids]
        counts = r[:, 1] - r[:, 0]
        return np.repeat(r[:, 0], counts) + index_within_groups(counts)

    def select(
        self,
        *,
        split: str | Iterable[str] | None = None,
        subject: str | Iterable[str] | None = None,
        action: str | Iterable[str] | None = None,
        camera: str | Iterable[str] | None = None,
        clips: np.ndarray | Iterable[int] | None = None,
        rows: np.ndarray | None = None,
    ) -> PoseSet:
        """A new in-memory PoseSet with the matching clips (or explicit ``rows``), clip ids renumbered.

        Selecting one contiguous block of rows returns views of the memory maps; otherwise the
        selected rows are gathered (copied).
        """
        if rows is None:
            m = self.clips.mask(split=split, subject=subject, action=action, camera=camera)
            if clips is not None:
                cm = np.zeros(len(self.clips), dtype=bool)
                cm[np.asarray(list(clips) if not isinstance(clips, np.ndarray) else clips)] = True
                m &= cm
            rows = self.rows_of(m)
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (np.diff(rows) <= 0).any():
            raise DataError(self.path, "rows", "row selection must be strictly increasing")
        contiguous = rows.size > 0 and rows[-1] - rows[0] + 1 == rows.size
        take = (lambda a: a[rows[0]: rows[-1] + 1]) if contiguous else (lambda a: a[rows])
        fields = {k: take(v) for k, v in self._fields.items()}
        used, new_clip = np.unique(fields["clip"], return_inverse=True)
        fields["clip"] = new_clip.astype(np.int32)
        return PoseSet(fields, self.clips[used], self.meta)

    def windows(
        self,
        length: int,
        *,
        stride: int = 1,
        anchor: Literal["center", "causal", "start"] = "center",
        pad: Literal["edge", "none"] = "edge",
        clips: np.ndarray | None = None,
    ) -> Windows:
        """Sliding windows of ``length`` frames as a :class:`Windows` index view.

        * ``anchor="center"``: the target is the middle frame (odd ``length``), one window per
          frame (every ``stride``-th) of the selected clips;
        * ``"causal"``: the target is the last frame (real-time lifters);
        * ``"start"``: many-to-many clips starting every ``stride`` frames (e.g. MotionBERT
          with ``stride=length``); all positions are targets.
        * ``pad="edge"`` repeats boundary frames; ``"none"`` keeps only windows fully inside a clip.
        * ``clips``: ``(C,)`` bool mask (or ids) of clips to draw windows from (default all).
        """
        if length < 1 or stride < 1:
            raise ValueError("length and stride must be >= 1")
        if anchor == "center" and length % 2 == 0:
            raise ValueError("centred windows need an odd length")
        cr = self.clip_ranges
        ids = np.arange(len(self.clips)) if clips is None else (
            np.flatnonzero(clips) if np.asarray(clips).dtype == bool else np.asarray(clips, dtype=np.int64))
        start, stop = cr[ids, 0], cr[ids, 1]
        n = stop - start
        a = {"center": length // 2, "causal": length - 1, "start": 0}.get(anchor)  # the anchor's position
        if a is None:
            raise ValueError(f"unknown anchor {anchor!r}")
        offsets, target = np.arange(length) - a, None if anchor == "start" else a
        first, last = (start, stop - 1) if pad == "edge" else (start + a, stop - length + a)
        counts = np.where((n > 0) & (last >= first), (last - first) // stride + 1, 0)
        which = np.repeat(np.arange(len(ids)), counts)
        centers = first[which] + index_within_groups(counts) * stride
        return Windows(centers.astype(np.int64), start[which].astype(np.int64),
                       (stop[which] - 1).astype(np.int64), offsets.astype(np.int64), target)

    def with_fields(self, meta_updates: Mapping[str, Any] | None = None, **arrays: np.ndarray) -> PoseSet:
        """A new in-memory PoseSet sharing this one's arrays, with fields added/replaced."""
        meta = dict(self.meta) | dict(meta_updates or {})
        return PoseSet(self._fields | arrays, self.clips, meta)

    # ------------------------------------------------------------------ persistence
    def save(self, path: PathLike, *, overwrite: bool = True, checksums: bool = True) -> Path:
        """Validate and write atomically to directory ``path`` (built under a temp name, then renamed)."""
        self.validate()
        dest = Path(path)
        with atomic_dir(dest, overwrite=overwrite) as tmp:
            (tmp / "clips").mkdir()
            finfo: dict[str, Any] = {}
            for name, a in self._fields.items():
                save_npy(tmp / f"{name}.npy", a)
                finfo[name] = {"shape": list(a.shape), "dtype": str(a.dtype)}
                if checksums:
                    finfo[name]["sha256"] = sha256_file(tmp / f"{name}.npy")
            for name, a in self.clips.columns.items():
                save_npy(tmp / "clips" / f"{name}.npy", a)
            meta = {"schema": SCHEMA, "version": SCHEMA_VERSION, "auglift_version": __version__,
                    "num_frames": len(self), "num_clips": len(self.clips), "fields": finfo}
            meta |= {k: v for k, v in self.meta.items() if k not in meta}  # the rest of this set's meta
            write_json(tmp / "meta.json", meta)
        self.meta = meta
        return dest

    @classmethod
    def load(cls, path: PathLike, *, mmap: bool = True, validate: bool = False) -> PoseSet:
        """Open a saved PoseSet (fields memory-mapped read-only unless ``mmap=False``).

        Structural checks always run (headers, shapes, joint counts, lengths, clip ids); value
        checks run with ``validate=True``. Errors are :class:`DataError` naming file and field.
        """
        root = Path(path)
        if not root.is_dir():
            raise DataError(root, None, "not a PoseSet directory" if root.exists() else "PoseSet directory not found")
        meta = read_json(root / "meta.json", "meta")
        if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
            raise DataError(root / "meta.json", "schema", f"expected \"{SCHEMA}\"")
        ver = meta.get("version")
        if not isinstance(ver, int) or ver > SCHEMA_VERSION or ver < 1:
            raise DataError(root / "meta.json", "version",
                            f"unsupported schema version {ver!r} (this auglift reads 1..{SCHEMA_VERSION})")
        finfo = meta.get("fields")
        if not isinstance(finfo, dict):
            raise DataError(root / "meta.json", "fields", "expected an object mapping field names to info")
        try:
            get_joint_set(meta.get("joint_set", ""))
        except KeyError as exc:
            raise DataError(root / "meta.json", "joint_set", str(exc.args[0])) from None
        for key, types, what in (("frame_root", (str,), "a directory path"), ("source", (str,), "a string"),
                                 ("units", (dict,), "a table of units"), ("extra", (dict,), "a table"),
                                 ("depth_model", (dict, str, type(None)), "a table, a name or null")):
            if key in meta and not isinstance(meta[key], types):
                raise DataError(root / "meta.json", key, f"expected {what}, got {type(meta[key]).__name__}")
        fields: dict[str, np.ndarray] = {}
        for name in finfo:
            if name not in FIELDS:
                raise DataError(root / "meta.json", name, f"unknown field; known: {', '.join(FIELDS)}")
            arr = load_npy(root / f"{name}.npy", mmap=mmap, field=name)
            if arr.dtype != FIELDS[name].dtype:
                raise DataError(root / f"{name}.npy", name, f"expected dtype {FIELDS[name].dtype}, got {arr.dtype}")
            fields[name] = arr
        cdir = root / "clips"
        clips = ClipTable({c: load_npy(cdir / f"{c}.npy", mmap=False, field=f"clips.{c}")
                           for c, (_tail, _kind, req) in CLIP_COLUMNS.items() if req or (cdir / f"{c}.npy").exists()},
                          path=cdir)
        ps = cls(fields, clips, meta, path=root)
        if meta.get("num_frames") not in (None, len(ps)):
            raise DataError(root / "meta.json", "num_frames",
                            f"meta says {meta['num_frames']} frames, arrays have {len(ps)}")
        if validate:
            ps.validate()
        return ps

    @staticmethod
    def write_field(
        path: PathLike, name: str, array: np.ndarray, meta_updates: Mapping[str, Any] | None = None
    ) -> None:
        """Add or replace one field of a saved PoseSet, atomically.

        The array is first written in full to a hidden staging file (a full disk fails there and
        changes nothing); a field being replaced is then dropped from ``meta.json``, the staged
        file renamed into place, and ``meta.json`` rewritten listing the new field. A crash at any
        point leaves a consistent set: the old field, no field, or the new one, never an array
        that ``meta.json`` describes differently.
        """
        root = Path(path)
        ps = PoseSet.load(root)
        spec = FIELDS.get(name)
        if spec is None:
            raise DataError(root, name, f"unknown field; known: {', '.join(FIELDS)}")
        a = np.asarray(array).astype(spec.dtype, copy=False)
        PoseSet(ps.fields | {name: a}, ps.clips, ps.meta, path=root)  # structural check
        staged = root / f".{name}.npy.staged"
        meta = dict(ps.meta)
        try:
            save_npy(staged, a)
            sha = sha256_file(staged)
            if name in meta["fields"]:
                write_json(root / "meta.json", meta | {"fields": {k: v for k, v in meta["fields"].items()
                                                                  if k != name}})
            os.replace(staged, root / f"{name}.npy")
        finally:
            staged.unlink(missing_ok=True)
        meta |= dict(meta_updates or {})
        meta["fields"] = dict(meta["fields"]) | {name: {"shape": list(a.shape), "dtype": str(a.dtype), "sha256": sha}}
        write_json(root / "meta.json", meta)  # also makes the rename above durable (fsyncs the directory)

    @staticmethod
    def drop_fields(path: PathLike, names: Iterable[str], meta_updates: Mapping[str, Any] | None = None) -> None:
        """Remove optional fields of a saved PoseSet and apply ``meta_updates``: ``meta.json`` stops
        listing them first (atomically), then their files are deleted."""
        root = Path(path)
        meta = dict(PoseSet.load(root).meta)
        names = [n for n in names if n in meta["fields"]]
        if required := [n for n in names if FIELDS[n].required]:
            raise DataError(root, required[0], "a required field cannot be dropped")
        meta["fields"] = {k: v for k, v in meta["fields"].items() if k not in names}
        write_json(root / "meta.json", meta | dict(meta_updates or {}))
        for n in names:
            (root / f"{n}.npy").unlink(missing_ok=True)

    # ------------------------------------------------------------------ summaries
    def summary(self) -> dict[str, Any]:
        """Counts and distributions for ``auglift info``: frames, clips, subjects, actions, fields, depth/size stats."""
        c = self.clips
        out: dict[str, Any] = {
            "path": None if self.path is None else str(self.path),
            "source": self.meta.get("source"),
            "joint_set": self.meta.get("joint_set"),
            "frames": len(self),
            "clips": len(c),
            "fields": sorted(self._fields),
            "depth_model": self.meta.get("depth_model"),
            "splits": _counts(c.split, self.clip_ranges),
            "subjects": _counts(c.subject, self.clip_ranges),
            "actions": _counts(c.action, self.clip_ranges),
            "cameras": sorted(set(c.camera.tolist())),
            "image_sizes": _counts(np.stack([c.width, c.height], axis=1), self.clip_ranges, "{0[0]}x{0[1]}".format),
        }
        if self.kp3d is not None and len(self):
            z = np.asarray(self.kp3d[:: max(1, len(self) // 200_000), 0, 2], dtype=np.float64)
            z = z[np.isfinite(z)]
            if z.size:
                hist, edges = np.histogram(z, bins=10)
                out["root_depth_m"] = {"mean": float(z.mean()), "min": float(z.min()), "max": float(z.max()),
                                       "hist": hist.tolist(), "edges": np.round(edges, 3).tolist()}
        if len(self):
            conf = np.asarray(self.conf[:: max(1, len(self) // 200_000)], dtype=np.float64)
            out["conf_mean"] = float(conf.mean())
        extra = self.meta.get("extra") or {}
        if isinstance(extra, dict):
            out |= {k: extra[k] for k in ("kp2d_source", "reprojection_px") if k in extra}
        if self.kp2d_valid is not None and len(self):
            out["kp2d_valid_frac"] = float(np.asarray(self.kp2d_valid).mean())
        return out


def _counts(labels: np.ndarray, ranges: np.ndarray, key: Callable[[Any], str] = str) -> dict[str, int]:
    """Frames per distinct label, named ``key(label)``: ``labels`` holds one label (a row) per clip."""
    uniq, inv = np.unique(labels, axis=0, return_inverse=True)
    cnt = np.bincount(inv.ravel(), weights=ranges[:, 1] - ranges[:, 0], minlength=len(uniq)).astype(int)
    return {key(u): int(n) for u, n in zip(uniq, cnt, strict=True)}


def index_within_groups(counts: np.ndarray) -> np.ndarray:
    """``0 .. counts[0]-1, 0 .. counts[1]-1, ...``: each element's index inside its group of ``counts`` (int64)."""
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def default_intrinsics(width: int, height: int, focal: float | None = None) -> np.ndarray:
    """``[fx, fy, cx, cy]`` px for in-the-wild input: ``focal`` or ``max(width, height)``, centred principal point
    (what ``auglift infer``, :meth:`auglift.lifter.Lifter.predict` and ``auglift view`` assume without a camera)."""
    f = float(max(width, height)) if focal is None else float(focal)
    if not (math.isfinite(f) and f > 0):
        raise ConfigError(f"focal length must be a positive number of pixels, got {focal}")
    return np.array([f, f, (width - 1) / 2.0, (height - 1) / 2.0], dtype=np.float64)


def clip_label(ps: PoseSet, c: int) -> str:
    """``clip 3 (S9/walk/55011271)``: how messages name a clip."""
    cl = ps.clips
    return f"clip {c} ({cl.subject[c]}/{cl.action[c]}/{cl.camera[c]})"
