"""3DPW -> PoseSet, from the sequence pickles ``sequenceFiles/{train,validation,test}/*.pkl``.

Each pickle (Python 2, latin-1; read through :mod:`auglift.safe_pickle`, so a file that tries
to run code is refused) holds one sequence: per person (lists) ``jointPositions`` ``(F, 72)``
SMPL-24 joints in world metres, ``poses2d`` ``(F, 3, 18)`` OpenPose-18 detections (x, y,
confidence) and ``campose_valid`` ``(F,)``; per frame ``cam_poses`` ``(F, 4, 4)`` world-to-camera
transforms; ``cam_intrinsics`` ``(3, 3)``; ``sequence`` (name) and ``img_frame_ids``.

Conventions: one clip per person (subject ``<sequence>/p<k>``, action = sequence name without its
trailing ``_NN``), frames where ``campose_valid`` is false are dropped, joints converted with
``X_cam = R X + t`` from ``cam_poses`` and SMPL-24 -> H36M-17 (an approximation without the
mesh regressor, see :mod:`auglift.skeleton`). ``kp2d_gt`` is the projection of ``kp3d``.
``kp2d``/``conf`` are the provided OpenPose poses mapped to H36M-17 (``kp2d="openpose"``,
default; joints with zero confidence do not pull averaged joints, frames without any detection
get NaN, confidence 0 and ``kp2d_valid`` False) or the projected ground truth (``kp2d="gt"``).
Frames: ``imageFiles/<sequence>/image_{frame:05d}.jpg`` at 30 Hz; the image size is read from
the first frame when the images are present, else taken as 1080x1920 portrait (1920x1080 when
the principal point says landscape). Splits: the folder names ``train``, ``validation``, ``test``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from auglift.datasets.common import (
    ClipData,
    as_array,
    assemble,
    check_step_splits,
    joints_to_h36m,
    pattern_literal,
    progress,
    require,
)
from auglift.datasets.detections import keypoints_to_h36m
from auglift.errors import ConfigError, DataError
from auglift.io import PathLike, natural_key
from auglift.poseset import PoseSet
from auglift.safe_pickle import load_pickle

__all__ = ["SPLITS", "convert", "read_sequence"]

SPLITS: tuple[str, ...] = ("train", "validation", "test")
FPS = 30.0


def read_sequence(path: PathLike) -> dict[str, Any]:
    """Load and check one 3DPW sequence pickle (restricted unpickler); returns the raw dict."""
    p = Path(path)
    d = load_pickle(p, encoding="latin1")
    if not isinstance(d, dict):
        raise DataError(p, None, f"expected a pickled dict (3DPW sequence file), got {type(d).__name__}")
    for key in ("jointPositions", "cam_poses", "cam_intrinsics", "campose_valid"):
        require(d, key, p, "3DPW sequence field")
    return d


def _image_size(root: Path, seq: str, K: np.ndarray, frame0: int) -> tuple[int, int]:
    img = root / "imageFiles" / seq / f"image_{frame0:05d}.jpg"
    if img.is_file():
        try:
            with Image.open(img) as im:
                return int(im.size[0]), int(im.size[1])
        except OSError:
            pass
    return (1080, 1920) if K[1, 2] >= K[0, 2] else (1920, 1080)


def convert(
    root: PathLike,
    *,
    splits: list[str] | tuple[str, ...] | None = None,
    kp2d: Literal["openpose", "gt"] = "openpose",
    step: int = 1,
    progress_bar: bool = True,
) -> PoseSet:
    """Convert 3DPW at ``root`` (holding ``sequenceFiles/`` and ``imageFiles/``) into one PoseSet.

    Args:
        splits: subset of ``("train", "validation", "test")`` (default all three).
        kp2d: ``"openpose"`` (the provided ``poses2d``) or ``"gt"`` (projected ground truth) as ``kp2d``.
        step: keep every ``step``-th frame of each clip.
    """
    root = Path(root)
    splits = check_step_splits("3DPW", step, splits, SPLITS)
    if kp2d not in ("openpose", "gt"):
        raise ConfigError(f"kp2d must be 'openpose' or 'gt', got {kp2d!r}")
    seq_dir = root / "sequenceFiles"
    files = [(s, f) for s in splits for f in sorted((seq_dir / s).glob("*.pkl"), key=lambda p: natural_key(p.name))]
    if not files:
        raise DataError(seq_dir, None, f"no sequence pickles found under sequenceFiles/{{{','.join(splits)}}}/")
    clips = [c.every(step) for split, path in progress(files, desc="3dpw", enabled=progress_bar, unit="seq")
             for c in _sequence_clips(root, path, split, kp2d)]
    meta = {"source": "3dpw", "frame_root": str(root.resolve()),
            "extra": {"dataset": "3dpw", "step": step, "kp2d_source": "gt" if kp2d == "gt" else "3dpw_openpose"}}
    return assemble(clips, meta)


def _sequence_clips(root: Path, path: Path, split: str, kp2d_mode: str) -> list[ClipData]:
    d = read_sequence(path)
    seq = str(d.get("sequence", path.stem))
    K = as_array(d["cam_intrinsics"], path, "cam_intrinsics", (3, 3), finite=True)
    poses = as_array(d["cam_poses"], path, "cam_poses", (None, 4, 4))
    F = len(poses)
    raw_ids = d.get("img_frame_ids", np.arange(F))
    ids = as_array(raw_ids, path, "img_frame_ids", (None,) * np.ndim(raw_ids), np.int64).reshape(-1)
    if len(ids) != F:
        raise DataError(path, "img_frame_ids", f"has {len(ids)} entries but cam_poses has {F} frames")
    joints = d["jointPositions"]
    valid = d["campose_valid"]
    p2d = d.get("poses2d")
    if not isinstance(joints, list | tuple):
        raise DataError(path, "jointPositions", f"expected a list of (F, 72) arrays, one per person, got "
                                                f"{type(joints).__name__}")
    if not isinstance(valid, list | tuple) or len(valid) != len(joints):
        raise DataError(path, "campose_valid", "expected a list of (F,) arrays, one per person of jointPositions")
    if kp2d_mode == "openpose" and (not isinstance(p2d, list | tuple) or len(p2d) != len(joints)):
        raise DataError(path, "poses2d", "expected one (F, 3, 18) array per person (or use --kp2d gt)")
    Rt, t = poses[:, :3, :3].transpose(0, 2, 1), poses[:, :3, 3]
    intr = np.array([K[0, 0], K[1, 1], K[0, 2], K[1, 2]])
    w, h = _image_size(root, seq, K, int(ids[0]) if F else 0)
    action = re.sub(r"_\d+$", "", seq)
    clips = []
    for pi in range(len(joints)):
        J = as_array(joints[pi], path, f"jointPositions[{pi}]", (F, 72)).reshape(F, 24, 3)
        ok = as_array(valid[pi], path, f"campose_valid[{pi}]", (F,)).astype(bool)
        world17 = joints_to_h36m(J, "smpl24")
        kp3d = world17 @ Rt + t[:, None, :]  # X_cam = R X + t, row vectors
        clip = ClipData(subject=f"{seq}/p{pi}", action=action, camera="0", split=split, width=w, height=h,
                        intrinsics=intr, source=f"imageFiles/{pattern_literal(seq)}/image_{{frame:05d}}.jpg", fps=FPS,
                        frame=ids, kp3d=kp3d)
        if kp2d_mode == "openpose":
            op = as_array(p2d[pi], path, f"poses2d[{pi}]", (F, 3, 18)).transpose(0, 2, 1)
            score = np.clip(op[..., 2], 0.0, 1.0)
            kp, conf = keypoints_to_h36m(op[..., :2], score, "openpose18")
            found = score.max(axis=1) > 0
            kp[~found] = np.nan
            conf[~found] = 0.0
            clip.kp2d, clip.conf, clip.kp2d_valid = kp, conf, found
        clips.append(clip.take(ok))
    return clips
