"""Fit3D -> PoseSet, from the dataset as distributed by IMAR.

Layout (``<root>`` = the ``fit3d`` directory; subjects may sit under ``train/`` or directly)::

    <root>/train/s03/joints3d_25/<action>.json            {"joints3d_25": (F, 25, 3) world metres}
    <root>/train/s03/camera_parameters/<cam>/<action>.json {"extrinsics": {"R", "T"},
                                                            "intrinsics_w_distortion": {"f", "c", "k", "p"},
                                                            "intrinsics_wo_distortion": {"f", "c"}}
    <root>/train/s03/videos/<cam>/<action>.mp4

Conventions, checked against IMAR's ``imar_vision_datasets_tools`` (``util/dataset_util.py``):
``T`` is the camera centre in world metres and ``x_cam = (x_world - T) R^T``; ``joints3d_25``
holds the H36M-17 joints first, in H36M order. The distortion ``k`` (radial k1..k3) and ``p``
(tangential) are stored in OpenCV order ``[k1, k2, p1, p2, k3]``; IMAR's own projection weighs the
tangential cross terms like Human3.6M's MATLAB code (sub-pixel difference near the centre).
Clips: one per (subject, action, camera), 50 Hz. Splits (the AugLift/Fit3D convention):
``train`` = s03, s04, s05, s07, s08, s09, ``test`` = s10, s11; other subjects are skipped unless
listed in ``train_subjects``/``test_subjects``. Image size: read from the video when OpenCV can
open it, else 900x900 (Fit3D's video size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from auglift.datasets.common import (
    ClipData,
    as_array,
    assemble,
    check_step_splits,
    joints_to_h36m,
    progress,
    require,
)
from auglift.errors import ConfigError, DataError
from auglift.io import PathLike, natural_key, read_json
from auglift.poseset import PoseSet
from auglift.video import video_capture

__all__ = ["TEST_SUBJECTS", "TRAIN_SUBJECTS", "convert", "read_camera"]

TRAIN_SUBJECTS: tuple[str, ...] = ("s03", "s04", "s05", "s07", "s08", "s09")
TEST_SUBJECTS: tuple[str, ...] = ("s10", "s11")
FPS = 50.0
DEFAULT_SIZE = (900, 900)


def read_camera(path: PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read an IMAR camera json: ``(R (3, 3), centre (3,) metres, intrinsics (4,), distortion (5,))``.

    ``x_cam = (x_world - centre) @ R.T``; intrinsics ``[fx, fy, cx, cy]`` pixels; distortion in
    OpenCV order (zeros when only ``intrinsics_wo_distortion`` is present).
    """
    p = Path(path)
    cam = read_json(p, "camera")

    def numbers(parent: Any, key: str, where: str) -> np.ndarray:
        v = require(parent, key, p)
        return as_array(v, p, where, (None,) * np.ndim(v), finite=True)

    ext = require(cam, "extrinsics", p)
    R = as_array(require(ext, "R", p), p, "extrinsics.R", (3, 3), finite=True)
    T = numbers(ext, "T", "extrinsics.T").reshape(-1)
    if T.size != 3:
        raise DataError(p, "extrinsics.T", f"expected 3 numbers (camera centre), got {T.size}")
    if "intrinsics_w_distortion" in cam:
        which = "intrinsics_w_distortion"
        intr = cam[which]
        k = numbers(intr, "k", f"{which}.k").reshape(-1)
        pt = numbers(intr, "p", f"{which}.p").reshape(-1)
        if k.size != 3 or pt.size != 2:
            raise DataError(p, "intrinsics_w_distortion", f"expected k (3) and p (2), got {k.size} and {pt.size}")
        dist = np.array([k[0], k[1], pt[0], pt[1], k[2]])
    else:
        which = "intrinsics_wo_distortion"
        intr = require(cam, which, p, "or intrinsics_w_distortion")
        dist = np.zeros(5)
    f = numbers(intr, "f", f"{which}.f").reshape(-1)
    c = numbers(intr, "c", f"{which}.c").reshape(-1)
    if f.size != 2 or c.size != 2:
        raise DataError(p, "intrinsics", f"expected f and c of 2 numbers each, got {f.size} and {c.size}")
    return R, T, np.array([f[0], f[1], c[0], c[1]]), dist


def _video_size(video: Path) -> tuple[int, int]:
    if video.is_file():
        try:
            import cv2  # optional (the "video" extra): without it the default size is used
        except ImportError:
            return DEFAULT_SIZE
        cap = video_capture(str(video))  # also for file names that are not UTF-8
        try:
            w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        finally:
            cap.release()
        if w > 0 and h > 0:
            return w, h
    return DEFAULT_SIZE


def convert(
    root: PathLike,
    *,
    splits: list[str] | tuple[str, ...] | None = None,
    train_subjects: list[str] | tuple[str, ...] | None = None,
    test_subjects: list[str] | tuple[str, ...] | None = None,
    cameras: list[str] | tuple[str, ...] | None = None,
    step: int = 1,
    progress_bar: bool = True,
) -> PoseSet:
    """Convert Fit3D at ``root`` into one PoseSet (H36M-17, camera frame, ``split`` column).

    Args:
        splits: subset of ``("train", "test")``.
        train_subjects, test_subjects: override the subject lists (default :data:`TRAIN_SUBJECTS`,
            :data:`TEST_SUBJECTS`).
        cameras: camera names to use (default every camera under ``camera_parameters/``).
        step: keep every ``step``-th frame of each clip (``2``: 50 -> 25 Hz).
    """
    root = Path(root)
    splits = check_step_splits("Fit3D", step, splits)
    split_of = dict.fromkeys(train_subjects or TRAIN_SUBJECTS, "train")
    for s in test_subjects or TEST_SUBJECTS:
        if s in split_of:
            raise ConfigError(f"subject {s} is listed for both train and test")
        split_of[s] = "test"
    found = {p.parent for pattern in ("", "*/", "*/*/") for p in root.glob(pattern + "joints3d_25")}
    subjects = [d for d in sorted(found, key=lambda d: natural_key(d.name)) if split_of.get(d.name) in splits]
    if not subjects:
        raise DataError(root, None, "no Fit3D subjects found (expected [train/]<subject>/joints3d_25/<action>.json "
                                    f"for subjects {', '.join(split_of)})")
    todo = [(d, j) for d in subjects for j in sorted(d.glob("joints3d_25/*.json"), key=lambda p: natural_key(p.name))]
    clips = [c.every(step) for sdir, jpath in progress(todo, desc="fit3d", enabled=progress_bar, unit="seq")
             for c in _sequence_clips(root, sdir, jpath, split_of[sdir.name], cameras)]
    meta = {"source": "fit3d", "frame_root": str(root.resolve()),
            "extra": {"dataset": "fit3d", "step": step, "kp2d_source": "gt",
                      "subjects": dict(split_of)}}
    return assemble(clips, meta)


def _sequence_clips(root: Path, sdir: Path, jpath: Path, split: str,
                    cameras: list[str] | tuple[str, ...] | None) -> list[ClipData]:
    action = jpath.stem
    j = read_json(jpath, "joints3d_25")
    world = as_array(require(j, "joints3d_25", jpath), jpath, "joints3d_25", (None, 25, 3))
    world17 = joints_to_h36m(world, "fit3d25")
    cdir = sdir / "camera_parameters"
    if cameras:
        cam_names = list(cameras)
    else:
        cam_names = sorted((p.name for p in cdir.iterdir() if p.is_dir()), key=natural_key) if cdir.is_dir() else []
    if not cam_names:
        raise DataError(cdir, None, "no camera folders found")
    rel = sdir.relative_to(root).as_posix()
    clips = []
    for cam in cam_names:
        R, centre, intr, dist = read_camera(cdir / cam / f"{action}.json")
        kp3d = (world17 - centre) @ R.T
        w, h = _video_size(sdir / "videos" / cam / f"{action}.mp4")
        clips.append(ClipData(subject=sdir.name, action=action, camera=str(cam), split=split, width=w, height=h,
                              intrinsics=intr, distortion=dist, source=f"{rel}/videos/{cam}/{action}.mp4",
                              fps=FPS, frame=np.arange(len(kp3d)), kp3d=kp3d))
    return clips
