"""Per-frame predictions of a lifter on a PoseSet: one ``.npz`` file that the viewer and users read.

:class:`Predictions` is the one owner of this file. It holds, for ``N`` frames and ``J`` joints
(17 for H36M-17):

==============  ==========  =========  ==================================================
member          shape       dtype      meaning
==============  ==========  =========  ==================================================
``pred``        (N, J, 3)   float32    predicted joints, metres, root-relative (pelvis = 0),
                                       camera frame (x right, y down, z forward)
``clip``        (N,)        int32      row of the clip table (``clips.*`` members)
``frame``       (N,)        int32      0-based frame index in the clip's frame source
``gt``          (N, J, 3)   float32    ground truth, same frame and units (optional)
``errors``      (N, J)      float32    per-joint error ``|pred - gt|`` in millimetres
                                       (present exactly when ``gt`` is; NaN where either is)
``root``        (N, 3)      float32    absolute pelvis of the ground truth, metres, camera
                                       frame (optional; places the pose in the camera view)
``kp2d``        (N, J, 2)   float32    the 2D keypoints that were lifted, pixels (optional)
``conf``        (N, J)      float32    their confidences in [0, 1] (optional)
``uadd``        (N, J, 3)   float32    depth descriptors (d, d_min, d_max) (optional)
==============  ==========  =========  ==================================================

plus the clip table of the frames' clips (:class:`auglift.poseset.ClipTable`: subject, action,
camera, split, image width/height, intrinsics, fps, ...) as ``clips.<column>`` members, and the
strings ``format`` (``"auglift.predictions"``), ``label`` (model / input name), ``joint_set``,
``source`` (the PoseSet path) and ``checkpoint``, and the integer ``version``. NaN is allowed in
the float arrays (missing joints), infinities are not.

:meth:`Predictions.save` writes it atomically with ``np.savez_compressed``;
:meth:`Predictions.load` reads it with ``allow_pickle=False`` after checking every member's
header (:func:`auglift.io.check_npz`) and validates it: any problem is one
:class:`~auglift.errors.DataError` naming the file and the member.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from auglift.encoding import target
from auglift.errors import DataError
from auglift.io import PathLike, atomic_write, check_npz
from auglift.metrics import joint_errors
from auglift.poseset import CLIP_COLUMNS, ClipTable, PoseSet
from auglift.skeleton import get_joint_set

__all__ = ["FORMAT", "VERSION", "Predictions", "checked_array", "compute_errors"]

FORMAT = "auglift.predictions"
VERSION = 1

# per-frame arrays: name -> (tail shape, kind "f" float32 / "i" int32, required)
_ARRAYS: dict[str, tuple[tuple[str | int, ...], str, bool]] = {
    "pred": (("J", 3), "f", True),
    "clip": ((), "i", True),
    "frame": ((), "i", True),
    "gt": (("J", 3), "f", False),
    "errors": (("J",), "f", False),
    "root": ((3,), "f", False),
    "kp2d": (("J", 2), "f", False),
    "conf": (("J",), "f", False),
    "uadd": (("J", 3), "f", False),
}
_STRINGS = ("label", "joint_set", "source", "checkpoint")
# errors stored in a file must agree with |pred - gt| to this many millimetres (float32 rounding)
_ERROR_TOLERANCE_MM = 0.05


def checked_array(value: Any, name: str, kind: str, tail: tuple[int, ...]) -> np.ndarray:
    """``value`` as a float32 (``kind="f"``, no inf) or int32 (``"i"``) array of shape ``(N, *tail)``; else a
    :class:`DataError` naming ``name``."""
    a = np.asarray(value)
    if kind == "f":
        if a.dtype.kind not in "fiu":
            raise DataError(None, name, f"expected numbers, got dtype {a.dtype}")
        a = a.astype(np.float32)
        if np.isinf(a).any():
            raise DataError(None, name, "expected finite values or NaN, found inf")
    else:
        if a.dtype.kind not in "iu":
            raise DataError(None, name, f"expected integers, got dtype {a.dtype}")
        if a.size and (a.min() < np.iinfo(np.int32).min or a.max() > np.iinfo(np.int32).max):
            raise DataError(None, name, "values outside the int32 range")
        a = a.astype(np.int32)
    if a.ndim != 1 + len(tail) or a.shape[1:] != tail:
        shape = ", ".join(["N", *map(str, tail)])
        raise DataError(None, name, f"expected shape ({shape}), got {a.shape}")
    return a


def compute_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-joint errors ``(N, J)`` mm of root-relative ``pred`` vs ``gt`` ``(N, J, 3)`` metres; NaN where either is."""
    mask = np.isfinite(pred).all(-1) & np.isfinite(gt).all(-1)
    err = joint_errors(np.where(mask[..., None], pred, 0.0), np.where(mask[..., None], gt, 0.0), mask=mask)
    return np.where(mask, err, np.nan).astype(np.float32)


@dataclass(frozen=True, eq=False)
class Predictions:
    """Per-frame 3D predictions with their frames, clips, optional ground truth and per-joint errors.

    Arrays are converted to float32/int32 and checked on construction (shapes, joint count of
    ``joint_set``, clip ids, no inf, confidences in [0, 1]); ``errors`` is computed from ``pred``
    and ``gt`` when it is not given. See the module docstring for the fields and units.
    """

    pred: np.ndarray
    clip: np.ndarray
    frame: np.ndarray
    clips: ClipTable
    gt: np.ndarray | None = None
    errors: np.ndarray | None = None
    root: np.ndarray | None = None
    kp2d: np.ndarray | None = None
    conf: np.ndarray | None = None
    uadd: np.ndarray | None = None
    label: str = "prediction"
    joint_set: str = "h36m17"
    source: str = ""
    checkpoint: str = ""

    def __post_init__(self) -> None:
        for name in _STRINGS:
            value = getattr(self, name)
            if not isinstance(value, str) or "\0" in value:
                raise DataError(None, name, "expected a string without NUL characters")
        try:
            num_joints = get_joint_set(self.joint_set).num_joints
        except KeyError as exc:
            raise DataError(None, "joint_set", str(exc.args[0])) from None
        if not isinstance(self.clips, ClipTable):
            object.__setattr__(self, "clips", ClipTable(self.clips))
        for name, (tail, kind, required) in _ARRAYS.items():
            value = getattr(self, name)
            if value is None:
                if required:
                    raise DataError(None, name, "required array is missing")
                continue
            shape = tuple(num_joints if t == "J" else int(t) for t in tail)
            object.__setattr__(self, name, checked_array(value, name, kind, shape))
        self._check_values()

    def _check_values(self) -> None:
        n = len(self.pred)
        for name in _ARRAYS:
            a = getattr(self, name)
            if a is not None and len(a) != n:
                raise DataError(None, name, f"expected {n} rows (as pred), got {len(a)}")
        if n and (self.clip.min() < 0 or self.clip.max() >= len(self.clips)):
            raise DataError(None, "clip", f"clip ids must lie in 0..{len(self.clips) - 1} (the clip table's rows)")
        if n and self.frame.min() < 0:
            raise DataError(None, "frame", "frame numbers must be >= 0")
        if self.conf is not None and ((self.conf < 0) | (self.conf > 1)).any():
            raise DataError(None, "conf", "confidences must lie in [0, 1]")
        if self.gt is None:
            if self.errors is not None:
                raise DataError(None, "errors", "per-joint errors given without ground truth 'gt'")
            return
        expected = compute_errors(self.pred, self.gt)
        if self.errors is None:
            object.__setattr__(self, "errors", expected)
            return
        same_nan = np.array_equal(np.isnan(self.errors), np.isnan(expected))
        close = np.allclose(self.errors, expected, rtol=1e-4, atol=_ERROR_TOLERANCE_MM, equal_nan=True)
        if not (same_nan and close):
            raise DataError(None, "errors", "per-joint errors do not match |pred - gt| in mm")

    def __len__(self) -> int:
        return len(self.pred)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        pred: np.ndarray,
        *,
        clip: np.ndarray,
        frame: np.ndarray,
        clips: ClipTable | Mapping[str, Any],
        gt: np.ndarray | None = None,
        root: np.ndarray | None = None,
        kp2d: np.ndarray | None = None,
        conf: np.ndarray | None = None,
        uadd: np.ndarray | None = None,
        label: str = "prediction",
        joint_set: str = "h36m17",
        source: PathLike = "",
        checkpoint: PathLike = "",
    ) -> Predictions:
        """Predictions from arrays: ``pred``/``gt`` ``(N, J, 3)`` metres camera frame are made
        root-relative (joint 0 subtracted; a no-op for root-relative input), ``errors`` computed."""
        return cls(pred=target(pred), clip=clip, frame=frame, clips=clips,
                   gt=None if gt is None else target(gt), root=root, kp2d=kp2d, conf=conf, uadd=uadd,
                   label=label, joint_set=joint_set, source=os.fspath(source), checkpoint=os.fspath(checkpoint))

    @classmethod
    def from_poseset(cls, pred: np.ndarray, rows: np.ndarray, ps: PoseSet, *, label: str = "prediction",
                     checkpoint: PathLike = "") -> Predictions:
        """Predictions ``(M, J, 3)`` metres for rows ``(M,)`` of ``ps``, with everything else gathered from ``ps``.

        Ground truth and the absolute root come from ``kp3d`` when present; ``kp2d``, ``conf`` and
        ``uadd`` as stored; the clip table is cut to the clips of these rows. This is what
        ``auglift.predict.predict(...)`` returns, in one line::

            p = predict(ckpt, ps); Predictions.from_poseset(p.pred, p.rows, ps, label="tcn uadd").save(path)
        """
        rows = np.asarray(rows, dtype=np.int64)
        used, clip = np.unique(np.asarray(ps.clip[rows]), return_inverse=True)
        kp3d = None if ps.kp3d is None else np.asarray(ps.kp3d[rows], dtype=np.float32)

        def gather(name: str) -> np.ndarray | None:
            arr = getattr(ps, name)
            return None if arr is None else np.asarray(arr[rows])

        return cls.from_arrays(
            pred, clip=clip.astype(np.int32), frame=np.asarray(ps.frame[rows]), clips=ps.clips[used],
            gt=kp3d, root=None if kp3d is None else kp3d[:, 0], kp2d=gather("kp2d"), conf=gather("conf"),
            uadd=gather("uadd"), label=label, joint_set=str(ps.meta.get("joint_set", "h36m17")),
            source="" if ps.path is None else str(ps.path), checkpoint=checkpoint)

    # ------------------------------------------------------------------ file
    def save(self, path: PathLike) -> Path:
        """Write the predictions to ``path`` (``.npz``, no pickle), atomically; returns the path."""
        members: dict[str, np.ndarray] = {"format": np.array(FORMAT), "version": np.array(VERSION, np.int64)}
        members |= {name: np.array(getattr(self, name)) for name in _STRINGS}
        members |= {name: getattr(self, name) for name in _ARRAYS if getattr(self, name) is not None}
        members |= {f"clips.{name}": col for name, col in self.clips.columns.items()}
        with atomic_write(path, "wb") as fh:
            np.savez_compressed(fh, **members)
        return Path(path)

    @classmethod
    def load(cls, path: PathLike) -> Predictions:
        """Read and validate a predictions file; a bad file is one :class:`DataError` naming it and the member."""
        members = _read_members(path)
        scalars = {name: _scalar(members, name, path) for name in _STRINGS}
        clip_cols = {k[len("clips."):]: v for k, v in members.items() if k.startswith("clips.")}
        try:
            clips = ClipTable(clip_cols, path=path)
            return cls(clips=clips, **{name: members.get(name) for name in _ARRAYS}, **scalars)
        except DataError as exc:
            if exc.path is not None:
                raise
            raise DataError(path, exc.field, exc.expected) from None


def _read_members(path: PathLike) -> dict[str, np.ndarray]:
    """Every member of a predictions ``.npz``, checked for format, version, unknown names and pickles."""
    headers = check_npz(path)
    known = {"format", "version", *_STRINGS, *_ARRAYS, *(f"clips.{c}" for c in CLIP_COLUMNS)}
    if "format" not in headers:
        raise DataError(path, "format", f"not an auglift predictions file (no 'format' member; expected {FORMAT!r})")
    for name, (_shape, dtype) in headers.items():
        if name not in known:
            raise DataError(path, name, f"unknown member; known: {', '.join(sorted(known))}")
        if dtype.hasobject:
            raise DataError(path, name, "object (pickle) member refused; expected a numeric or string array")
    try:
        with np.load(path, allow_pickle=False) as z:
            members = {name: z[name] for name in headers}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(path, None, f"cannot read the archive ({exc})") from None
    fmt = members["format"]
    if fmt.shape != () or fmt.dtype.kind != "U" or str(fmt) != FORMAT:
        raise DataError(path, "format", f"expected {FORMAT!r}")
    version = members.get("version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        raise DataError(path, "version", "expected an integer version")
    if not 1 <= int(version) <= VERSION:
        raise DataError(path, "version", f"unsupported version {int(version)} (this auglift reads 1..{VERSION})")
    return members


def _scalar(members: Mapping[str, np.ndarray], name: str, path: PathLike) -> str:
    default = next(f.default for f in fields(Predictions) if f.name == name)
    if name not in members:
        return str(default)
    value = members[name]
    if value.shape != () or value.dtype.kind != "U":
        raise DataError(path, name, f"expected a string, got an array of shape {value.shape} and dtype {value.dtype}")
    return str(value)
