"""MPI-INF-3DHP -> PoseSet, from the dataset as distributed or from P-STMO's ``.npz`` files.

* ``layout="raw"``: training sequences ``S<k>/Seq<m>/annot.mat`` (MATLAB v5: cells ``annot2``
  ``(F, 56)``, ``annot3`` / ``univ_annot3`` ``(F, 84)`` in mm, one per camera, 28 joints) with
  ``S<k>/Seq<m>/camera.calibration`` (per camera a ``name``, ``size W H`` and a row-major 4x4
  ``intrinsic``), frames from ``S<k>/Seq<m>/imageSequence/video_<c>.avi``; and the test set
  ``mpi_inf_3dhp_test_set/TS<k>/annot_data.mat`` (MATLAB v7.3/HDF5: ``annot2`` 2x17x1xF,
  ``annot3`` / ``univ_annot3`` 3x17x1xF in mm, ``valid_frame``; 17 joints), frames from
  ``TS<k>/imageSequence/img_{frame1:06d}.jpg``. Both ``.mat`` versions are read by either path
  (``scipy.io`` for v5, ``h5py`` for v7.3).
* ``layout="pstmo"``: ``data_train_3dhp.npz`` (``data``: ``"S1 Seq1"`` -> ``[{camera: {data_2d,
  data_3d}}, fps]``) and ``data_test_3dhp.npz`` (``data``: ``"TS1"`` -> ``{data_2d, data_3d,
  valid}``), 17 joints, 3D = ``univ_annot3`` in mm (object arrays: read through the restricted
  unpickler).

The 3D annotations are already in each camera's frame (x right, y down, z forward); they are
converted to metres and H36M-17. ``annot3`` is the true metric pose (its projection lands on
``annot2``); ``univ_annot3`` is rescaled to the "universal" skeleton height used by the
benchmark's evaluation (same root, so its projection does not land on ``annot2``). The default is
``univ_annot3``, the annotation the published 3DHP numbers (PCK, AUC, MPJPE) are computed on;
``annot3="annot3"`` chooses the metric one. ``kp2d_gt`` is always the dataset's ``annot2``.
Splits: ``train`` = S1-S8 (cameras 0, 1, 2, 4, 5, 6, 7, 8 by default, the customary
chest-height-and-below set), ``test`` = TS1-TS6 (valid frames only by default). Test cameras:
TS1-TS4 were filmed by studio camera 8 (2048x2048), TS5-TS6 by an outdoor camera (1920x1080,
OpenCV distortion); their intrinsics below are derived from the test set's
``test_util/camera_calibration/ts*.calib`` files (``f_px = focalLength / sensorSize * image
size``, ``fy = fx * pixelAspect``, ``c = size / 2 + centerOffset / sensorSize * size``).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any, Literal

import numpy as np

from auglift.datasets.common import (
    ClipData,
    as_array,
    assemble,
    check_step_splits,
    joints_to_h36m,
    load_npz,
    progress,
    require,
)
from auglift.errors import ConfigError, DataError
from auglift.io import MAX_DEFLATE_RATIO, PathLike, natural_key, regular_file_size
from auglift.poseset import PoseSet

__all__ = ["SEQUENCE_INFO", "TEST_CAMERAS", "TRAIN_INTRINSICS", "convert", "parse_calibration", "read_mat"]

DEFAULT_CAMERAS: tuple[int, ...] = (0, 1, 2, 4, 5, 6, 7, 8)
# Training sequences: (subject, sequence) -> (number of video frames, fps).
SEQUENCE_INFO: dict[tuple[int, int], tuple[int, float]] = {
    (1, 1): (6416, 25), (1, 2): (12430, 50), (2, 1): (6502, 25), (2, 2): (6081, 25),
    (3, 1): (12488, 50), (3, 2): (12283, 50), (4, 1): (6171, 25), (4, 2): (6675, 25),
    (5, 1): (12820, 50), (5, 2): (12312, 50), (6, 1): (6188, 25), (6, 2): (6145, 25),
    (7, 1): (6239, 25), (7, 2): (6320, 25), (8, 1): (6468, 25), (8, 2): (6054, 25),
}
# Intrinsics [fx, fy, cx, cy] of the 14 training cameras (2048x2048, no distortion), as in the
# sequences' camera.calibration files; used for the P-STMO layout, which stores no cameras.
TRAIN_INTRINSICS: tuple[tuple[float, float, float, float], ...] = (
    (1497.693, 1497.103, 1024.704, 1051.394), (1495.217, 1495.52, 1030.519, 1052.626),
    (1495.587, 1497.828, 983.8873, 987.5902), (1495.886, 1496.033, 1029.06, 1041.409),
    (1490.952, 1491.108, 987.6075, 1019.069), (1500.414, 1499.971, 1012.331, 998.5009),
    (1498.471, 1498.8, 999.7319, 1010.251), (1498.831, 1499.674, 987.2716, 976.8773),
    (1500.172, 1500.837, 1017.387, 1043.032), (1501.554, 1501.9, 1010.423, 1037.096),
    (1498.423, 1498.585, 1041.614, 997.0433), (1495.779, 1493.703, 1009.802, 999.9984),
    (1501.326, 1501.491, 1000.56, 1014.975), (1496.961, 1497.378, 1005.702, 1004.214),
)
_STUDIO = {"size": (2048, 2048), "intrinsics": (1500.172, 1500.837, 1017.387, 1043.032),
           "distortion": (0.0, 0.0, 0.0, 0.0, 0.0), "camera": "8"}
_OUTDOOR = {"size": (1920, 1080), "intrinsics": (1683.98345952, 1672.59370772, 939.85754016, 560.140743168),
            "distortion": (-0.276859611, 0.131125256, -0.000360494, -0.001149441, -0.049318332),
            "camera": "outdoor"}
# Test sequences: camera, scene (the benchmark's three settings) and fps.
TEST_CAMERAS: dict[str, dict[str, Any]] = {
    "TS1": {**_STUDIO, "scene": "GS", "fps": 25.0}, "TS2": {**_STUDIO, "scene": "GS", "fps": 25.0},
    "TS3": {**_STUDIO, "scene": "noGS", "fps": 25.0}, "TS4": {**_STUDIO, "scene": "noGS", "fps": 25.0},
    "TS5": {**_OUTDOOR, "scene": "Outdoor", "fps": 50.0}, "TS6": {**_OUTDOOR, "scene": "Outdoor", "fps": 50.0},
}


# ----------------------------------------------------------------------------- file readers
def read_mat(path: PathLike, names: list[str]) -> dict[str, Any]:
    """Read variables from a MATLAB ``.mat`` file, v5 (scipy.io) or v7.3 (HDF5, h5py).

    Arrays come back in MATLAB's dimension order (an HDF5 dataset is transposed back), cells
    as object arrays of arrays. A missing variable raises a :class:`DataError` naming it.
    """
    import h5py
    import scipy.io

    p = Path(path)
    regular_file_size(p, None, "a MATLAB .mat file")
    if h5py.is_hdf5(p):
        out: dict[str, Any] = {}
        try:
            with h5py.File(p, "r") as f:
                for n in names:
                    if n not in f:
                        raise DataError(p, n, f"missing from the .mat file (found: {', '.join(sorted(f.keys()))})")
                    out[n] = _h5_value(f, f[n], p, n)
        except DataError:
            raise
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
            raise DataError(p, None, f"cannot read MATLAB v7.3 file ({exc})") from None
        return out
    _check_mat5(p)
    try:
        data = scipy.io.loadmat(p, variable_names=names)
    except MemoryError:
        raise DataError(p, None, "malformed .mat file: an element declares more data than can be read") from None
    except (ValueError, OSError, TypeError, NotImplementedError, scipy.io.matlab.MatReadError, IndexError, KeyError,
            EOFError, OverflowError, UnicodeDecodeError, zlib.error, struct.error) as exc:
        raise DataError(p, None, f"not a readable .mat file ({exc})") from None
    for n in names:
        if n not in data:
            found = sorted(k for k in data if not k.startswith("__"))
            raise DataError(p, n, f"missing from the .mat file (found: {', '.join(found) or 'nothing'})")
    return {n: data[n] for n in names}


def _check_mat5(p: Path) -> None:
    """Every top-level data element of a MATLAB v5 file must fit in the file.

    A truncated download, or a tag declaring gigabytes the file does not hold, is refused here,
    before SciPy reserves the declared byte count. (Files without the v5 header's endian
    indicator are left to SciPy.)
    """
    size = p.stat().st_size
    with open(p, "rb") as fh:
        head = fh.read(128)
        endian = {b"IM": "<", b"MI": ">"}.get(head[126:128]) if len(head) == 128 else None
        if endian is None:
            return
        pos = 128
        while pos < size:
            fh.seek(pos)
            tag = fh.read(8)
            if len(tag) < 8:
                raise DataError(p, None, f"truncated .mat file (a partial element tag at byte {pos})")
            mdtype, nbytes = struct.unpack(endian + "II", tag)
            if mdtype >> 16:  # small data element: up to 4 bytes packed into the tag
                pos += 8
                continue
            if pos + 8 + nbytes > size:
                raise DataError(p, None, f"truncated or malformed .mat file: the element at byte {pos} declares "
                                         f"{nbytes} bytes, the file ends {size - pos - 8} bytes later")
            pos += 8 + nbytes + (0 if mdtype == 15 else -nbytes % 8)  # miCOMPRESSED (15) is not padded


def _h5_read(ds: Any, path: Path, name: str) -> np.ndarray:
    """All values of an HDF5 dataset, after checking that it stores the data it declares
    (an unallocated chunked dataset declaring 10^9 frames would otherwise be materialised)."""
    import h5py

    if not isinstance(ds, h5py.Dataset):
        raise DataError(path, name, "expected a MATLAB matrix or cell, got a struct/group")
    declared = int(ds.size) * ds.dtype.itemsize
    stored = int(ds.id.get_storage_size())
    if declared > stored * MAX_DEFLATE_RATIO + (1 << 16):  # deflate, MATLAB v7.3's only filter, is bounded
        raise DataError(path, name, f"declares MATLAB size {'x'.join(map(str, ds.shape[::-1]))} ({declared} bytes) "
                                    f"but stores {stored} bytes (malformed or truncated file)")
    return ds[()]


def _h5_value(f: Any, ds: Any, path: Path, name: str) -> Any:
    import h5py

    val = _h5_read(ds, path, name)
    if ds.dtype == h5py.ref_dtype:  # a cell array: dereference every element
        cells = np.empty(val.shape, dtype=object)
        for idx in np.ndindex(val.shape):
            cells[idx] = np.asarray(_h5_read(f[val[idx]], path, f"{name}{{{','.join(map(str, idx))}}}")).T
        return cells.T
    return np.asarray(val).T


def parse_calibration(path: PathLike) -> dict[int, dict[str, Any]]:
    """Parse a 3DHP ``camera.calibration`` file: camera index -> ``{"size": (w, h), "K": (4, 4)}``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(p, None, "camera calibration file not found")
    cams: dict[int, dict[str, Any]] = {}
    cur: int | None = None
    for lineno, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        tok = line.split()
        if not tok:
            continue
        key = tok[0]
        try:
            if key == "name":
                cur = int(tok[1])
                cams[cur] = {}
            elif cur is None:
                continue  # header line(s)
            elif key == "size":
                cams[cur]["size"] = (int(float(tok[1])), int(float(tok[2])))
            elif key in ("intrinsic", "extrinsic"):
                vals = np.array([float(t) for t in tok[1:]])
                if vals.size != 16:
                    raise DataError(p, f"camera {cur}.{key}", f"expected 16 numbers (a 4x4 matrix), got {vals.size} "
                                                              f"(line {lineno})")
                cams[cur]["K" if key == "intrinsic" else "RT"] = vals.reshape(4, 4)
        except DataError:
            raise
        except (IndexError, ValueError):
            raise DataError(p, f"line {lineno}", f"cannot parse {line.strip()!r}") from None
    if not cams:
        raise DataError(p, None, "no 'name <index>' camera blocks found")
    for c, info in cams.items():
        for need in ("size", "K"):
            if need not in info:
                raise DataError(p, f"camera {c}", f"missing the '{'size' if need == 'size' else 'intrinsic'}' line")
    return cams


# ----------------------------------------------------------------------------- conversion
def _mm_to_h36m(kp3d_mm: np.ndarray, kp2d: np.ndarray, joint_set: str) -> tuple[np.ndarray, np.ndarray]:
    return joints_to_h36m(np.asarray(kp3d_mm, np.float64) / 1000.0, joint_set), joints_to_h36m(kp2d, joint_set)


def _matlab_joints(a: Any, path: Path, name: str, dim: int) -> np.ndarray:
    """A MATLAB ``dim x 17 x 1 x F`` (or ``dim x 17 x F``) array -> ``(F, 17, dim)``."""
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(path, name, f"expected a numeric {dim}x17x1xF matrix") from None
    if arr.ndim < 2 or arr.shape[0] != dim or arr.shape[1] != 17:
        raise DataError(path, name, f"expected a {dim}x17x1xF matrix (17 joints), got MATLAB size "
                                    f"{'x'.join(map(str, arr.shape))}")
    return arr.reshape(dim, 17, -1).transpose(2, 1, 0)


def convert(
    root: PathLike,
    *,
    layout: Literal["raw", "pstmo"] = "raw",
    splits: list[str] | tuple[str, ...] | None = None,
    annot3: Literal["annot3", "univ_annot3"] | None = None,
    cameras: list[int] | tuple[int, ...] | None = None,
    test_frames: Literal["valid", "all"] = "valid",
    step: int = 1,
    frame_root: PathLike | None = None,
    progress_bar: bool = True,
) -> PoseSet:
    """Convert MPI-INF-3DHP at ``root`` into one PoseSet (H36M-17, camera frame, ``split`` column).

    Args:
        root: directory holding ``S1..S8`` and ``mpi_inf_3dhp_test_set/`` (raw), or the P-STMO ``.npz`` files.
        layout: ``"raw"`` (``annot.mat`` / ``annot_data.mat``) or ``"pstmo"``.
        splits: subset of ``("train", "test")``.
        annot3: ``"univ_annot3"`` (universal skeleton, the benchmark's; default, and the only one
            P-STMO stores) or ``"annot3"`` (metric; its projection lands on ``annot2``).
        cameras: training cameras to use (default 0, 1, 2, 4, 5, 6, 7, 8).
        test_frames: ``"valid"`` keeps the test frames with ``valid_frame`` set (the benchmark's
            2,929), ``"all"`` keeps every annotated test frame.
        step: keep every ``step``-th frame of each clip.
        frame_root: P-STMO only: the 3DHP dataset directory holding ``S1..S8`` and
            ``mpi_inf_3dhp_test_set/`` (the frames); default ``root``. Becomes ``meta["frame_root"]``.
    """
    root = Path(root)
    explicit = splits is not None
    splits = check_step_splits("MPI-INF-3DHP", step, splits)
    if test_frames not in ("valid", "all"):
        raise ConfigError(f"test_frames must be 'valid' or 'all', got {test_frames!r}")
    try:
        cams = tuple(int(c) for c in (cameras if cameras is not None else DEFAULT_CAMERAS))
    except (TypeError, ValueError):
        raise ConfigError(f"MPI-INF-3DHP cameras are numbers 0..13, got {cameras!r}") from None
    for c in cams:
        if not 0 <= c < 14:
            raise ConfigError(f"MPI-INF-3DHP training cameras are 0..13, got {c}")
    if frame_root is not None and layout != "pstmo":
        raise ConfigError("--frame-root applies to --layout pstmo only (the raw layout's frames are under --root)")
    which = annot3 or "univ_annot3"
    if layout == "raw":
        if which not in ("annot3", "univ_annot3"):
            raise ConfigError(f"annot3 must be 'annot3' or 'univ_annot3', got {which!r}")
        if not explicit:  # the parts that are present
            has_train = any(root.glob("S*/Seq*/annot.mat"))
            has_test = _test_dir(root) is not None
            splits = tuple(s for s, ok in (("train", has_train), ("test", has_test)) if ok) or splits
        readers = {"train": lambda: _raw_train(root, which, cams, progress_bar),
                   "test": lambda: _raw_test(root, which, test_frames, progress_bar)}
    elif layout == "pstmo":
        if which != "univ_annot3":
            raise ConfigError("P-STMO's npz files hold univ_annot3 only; use --annot3 univ_annot3 or the raw layout")
        if not explicit:
            splits = tuple(s for s in splits if (root / f"data_{s}_3dhp.npz").exists()) or splits
        readers = {"train": lambda: _pstmo_train(root, cams, progress_bar),
                   "test": lambda: _pstmo_test(root, test_frames, progress_bar)}
    else:
        raise ConfigError(f"unknown MPI-INF-3DHP layout {layout!r}; use 'raw' or 'pstmo'")
    clips = [c.every(step) for split, read in readers.items() if split in splits for c in read()]
    meta = {"source": f"mpi_inf_3dhp/{layout}", "frame_root": str(Path(frame_root or root).resolve()),
            "extra": {"dataset": "mpi_inf_3dhp", "layout": layout, "annot3": which, "test_frames": test_frames,
                      "cameras": list(cams), "step": step, "kp2d_source": "gt"}}
    return assemble(clips, meta)


def _raw_train(root: Path, which: str, cams: tuple[int, ...], show: bool) -> list[ClipData]:
    seqs = sorted(root.glob("S*/Seq*/annot.mat"), key=lambda p: natural_key(str(p)))
    if not seqs:
        raise DataError(root, None, "no training sequences found (expected S<k>/Seq<m>/annot.mat)")
    clips: list[ClipData] = []
    for mat in progress(seqs, desc="3dhp train", enabled=show, unit="seq"):
        seq_dir = mat.parent
        subj, seq = seq_dir.parent.name, seq_dir.name
        data = read_mat(mat, ["annot2", which])
        calib = parse_calibration(seq_dir / "camera.calibration")
        try:
            key = (int(subj[1:]), int(seq[3:]))
        except ValueError:
            key = (-1, -1)
        n_video, fps = SEQUENCE_INFO.get(key, (None, 25.0))
        a2, a3 = (np.asarray(data[n]).reshape(-1) for n in ("annot2", which))  # one cell per camera
        for c in cams:
            if c >= a2.size or c >= a3.size:
                raise DataError(mat, f"annot2[{c}]", f"camera {c} not in the file ({a2.size} cameras)")
            if c not in calib:
                raise DataError(seq_dir / "camera.calibration", f"camera {c}", "no calibration block for this camera")
            try:
                k2 = np.asarray(a2[c], np.float64)
                k3 = np.asarray(a3[c], np.float64)
            except (TypeError, ValueError):
                raise DataError(mat, f"{which}[{c}]", f"expected numeric (F, 56) annot2 and (F, 84) {which} "
                                                      "matrices in the cells") from None
            if k2.ndim != 2 or k2.shape[1] != 56 or k3.ndim != 2 or k3.shape[1] != 84 or len(k2) != len(k3):
                raise DataError(mat, f"{which}[{c}]", f"expected (F, 56) annot2 and (F, 84) {which} for 28 joints, "
                                                      f"got {k2.shape} and {k3.shape}")
            F = len(k3) if n_video is None else min(len(k3), n_video)
            kp3d, kp2d = _mm_to_h36m(k3[:F].reshape(F, 28, 3), k2[:F].reshape(F, 28, 2), "mpi_inf_3dhp28")
            K = calib[c]["K"]
            w, h = calib[c]["size"]
            clips.append(ClipData(
                subject=subj, action=seq, camera=str(c), split="train", width=w, height=h,
                intrinsics=np.array([K[0, 0], K[1, 1], K[0, 2], K[1, 2]]),
                source=f"{subj}/{seq}/imageSequence/video_{c}.avi", fps=fps, frame=np.arange(F),
                kp3d=kp3d, kp2d_gt=kp2d, ref2d=kp2d if which == "annot3" else None,
            ))
    return clips


def _test_dir(root: Path) -> Path | None:
    """The directory holding the test sequences ``TS1``..``TS6`` (None: no test set)."""
    cands = (root / "mpi_inf_3dhp_test_set", root)
    return next((d for d in cands if any((d / f"TS{i}").is_dir() for i in range(1, 7))), None)


def _raw_test(root: Path, which: str, test_frames: str, show: bool) -> list[ClipData]:
    tdir = _test_dir(root)
    if tdir is None:
        raise DataError(root, None, "test set not found (expected mpi_inf_3dhp_test_set/TS<k>/annot_data.mat)")
    clips: list[ClipData] = []
    names = [n for n in TEST_CAMERAS if (tdir / n).is_dir()]
    for name in progress(names, desc="3dhp test", enabled=show, unit="seq"):
        mat = tdir / name / "annot_data.mat"
        data = read_mat(mat, ["annot2", which, "valid_frame"])
        kp2d_17 = _matlab_joints(data["annot2"], mat, "annot2", 2)
        kp3d_17 = _matlab_joints(data[which], mat, which, 3)
        valid = np.asarray(data["valid_frame"]).reshape(-1).astype(bool)
        if not (len(kp2d_17) == len(kp3d_17) == len(valid)):
            raise DataError(mat, "valid_frame", f"frame counts differ: annot2 {len(kp2d_17)}, {which} "
                                                f"{len(kp3d_17)}, valid_frame {len(valid)}")
        kp3d, kp2d = _mm_to_h36m(kp3d_17, kp2d_17, "mpi_inf_3dhp17")
        rel = tdir.relative_to(root).as_posix() if tdir != root else ""
        clips.append(_test_clip(name, rel, kp3d, kp2d, valid, test_frames, which))
    return clips


def _test_clip(name: str, prefix: str, kp3d: np.ndarray, kp2d: np.ndarray, valid: np.ndarray,
               test_frames: str, which: str) -> ClipData:
    cam = TEST_CAMERAS[name]
    rel = f"{prefix}/{name}" if prefix else name
    clip = ClipData(
        subject=name, action=cam["scene"], camera=cam["camera"], split="test",
        width=cam["size"][0], height=cam["size"][1], intrinsics=np.array(cam["intrinsics"]),
        distortion=np.array(cam["distortion"]), source=f"{rel}/imageSequence/img_{{frame1:06d}}.jpg",
        fps=cam["fps"], frame=np.arange(len(kp3d)), kp3d=kp3d, kp2d_gt=kp2d,
        ref2d=kp2d if which == "annot3" else None,
    )
    # Invalid test frames have unusable annotations (often zeros); "all" keeps them only when finite.
    return clip.take(valid) if test_frames == "valid" else clip


def _pstmo_load(path: Path) -> dict[str, Any]:
    data = require(load_npz(path), "data", path)
    if not isinstance(data, dict):
        raise DataError(path, "data", f"expected a dict of sequences, got {type(data).__name__}")
    return data


def _pstmo_train(root: Path, cams: tuple[int, ...], show: bool) -> list[ClipData]:
    path = root / "data_train_3dhp.npz"
    data = _pstmo_load(path)
    clips: list[ClipData] = []
    for key in progress(sorted(data, key=natural_key), desc="3dhp train (P-STMO)", enabled=show, unit="seq"):
        entry = data[key]
        subj, _, seq = str(key).partition(" ")
        if not isinstance(entry, list | tuple) or len(entry) != 2 or not isinstance(entry[0], dict):
            raise DataError(path, f"data[{key!r}]", "expected [ {camera: {data_2d, data_3d}}, fps ]")
        by_cam, fps = entry
        for c in cams:
            if str(c) not in by_cam:
                continue
            d = by_cam[str(c)]
            k2 = as_array(require(d, "data_2d", path), path, f"data[{key!r}][{c}].data_2d", (None, 17, 2))
            k3 = as_array(require(d, "data_3d", path), path, f"data[{key!r}][{c}].data_3d", (None, 17, 3))
            if len(k2) != len(k3):
                raise DataError(path, f"data[{key!r}][{c}]", f"data_2d has {len(k2)} frames, data_3d {len(k3)}")
            kp3d, kp2d = _mm_to_h36m(k3, k2, "mpi_inf_3dhp17")
            clips.append(ClipData(
                subject=subj, action=seq, camera=str(c), split="train", width=2048, height=2048,
                intrinsics=np.array(TRAIN_INTRINSICS[c]), source=f"{subj}/{seq}/imageSequence/video_{c}.avi",
                fps=float(fps), frame=np.arange(len(k3)), kp3d=kp3d, kp2d_gt=kp2d,
            ))
    return clips


def _pstmo_test(root: Path, test_frames: str, show: bool) -> list[ClipData]:
    path = root / "data_test_3dhp.npz"
    data = _pstmo_load(path)
    clips: list[ClipData] = []
    for name in progress(sorted(data, key=natural_key), desc="3dhp test (P-STMO)", enabled=show, unit="seq"):
        if name not in TEST_CAMERAS:
            raise DataError(path, f"data[{name!r}]", f"unknown test sequence; expected {', '.join(TEST_CAMERAS)}")
        d = data[name]
        k2 = as_array(require(d, "data_2d", path), path, f"data[{name!r}].data_2d", (None, 17, 2))
        k3 = as_array(require(d, "data_3d", path), path, f"data[{name!r}].data_3d", (None, 17, 3))
        valid = np.asarray(require(d, "valid", path)).reshape(-1).astype(bool)
        if not (len(k2) == len(k3) == len(valid)):
            raise DataError(path, f"data[{name!r}]", f"frame counts differ: data_2d {len(k2)}, data_3d {len(k3)}, "
                                                     f"valid {len(valid)}")
        kp3d, kp2d = _mm_to_h36m(k3, k2, "mpi_inf_3dhp17")
        clips.append(_test_clip(name, "mpi_inf_3dhp_test_set", kp3d, kp2d, valid, test_frames, "univ_annot3"))
    return clips
