"""2D keypoints for in-the-wild input: keypoint files and MediaPipe Pose, both mapped to H36M-17.

**Keypoint files** (:func:`read_keypoints`) in any format :mod:`auglift.datasets.detections`
reads, matched to the frames of a video, an image or a folder of images:

* ``.npy`` / ``.npz``: ``(F, J, 2|3)`` (one person per frame: x, y[, score]) or ``(F, P, J, 2|3)``
  (up to ``P`` people, NaN rows for absent ones); ``F`` must equal the number of frames (a
  single image also takes ``(J, 2|3)``). 17 joints read as H36M-17 (as ``auglift detections
  import`` reads arrays), other counts by the importer's table (26 Halpe, 33 MediaPipe, ...),
  or ``joint_set=``. An ``.npz`` with several arrays needs ``key=``.
* COCO / Halpe (AlphaPose) results and MMPose JSON: instances are matched to frames by
  - the MMPose per-video file's ``frame_id`` (0-based after the reader's base handling);
  - integer ``image_id``: the frame index, 0-based (``id_scheme="frame"``, default) or 1-based
    (``"frame1"``);
  - file-name ids (AlphaPose, MMPose per-image files): for a folder of images the names are
    matched to the folder's files (longest unambiguous trailing path, no extension); for a
    video the last number in the name is the frame index (``id_scheme`` again decides 0/1-based).
  A single image takes all instances of a file that names a single image, whatever its id.

A detection naming a frame the input does not have (index past the end), or an array with
another frame count, is a :class:`~auglift.errors.DataError` ("mismatched frame count").
Frames without any instance are allowed (no person detected there).

**MediaPipe** (:class:`MediaPipePose`, the optional ``mediapipe`` extra, pinned to 0.10.21): the
``mp.solutions.pose`` graph with its bundled full landmark model (``model_complexity=1``: the
only one shipped in the wheel; lite/heavy would be downloaded at run time), one person per
frame, run offline on the CPU. The 33 landmarks (normalised image coordinates, ``visibility``
as the confidence) go to H36M-17 with the COCO rule of :mod:`auglift.skeleton`. Note the pin
``numpy<2``: install it in its own environment (``make test-mediapipe`` builds one).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from auglift.datasets.detections import (
    keypoints_to_h36m,
    match_names,
    read_array_file,
    read_instances,
    resolve_format,
    resolve_joints,
)
from auglift.errors import ConfigError, DataError
from auglift.io import PathLike

__all__ = ["ID_SCHEMES", "Detections", "MediaPipePose", "read_keypoints"]

ID_SCHEMES = ("frame", "frame1")


@dataclass
class Detections:
    """Person instances of an input: ``frame (M,)`` int64, ``kp (M, 17, 2)`` float32 px (H36M-17, NaN
    where missing), ``conf (M, 17)`` float32 in [0, 1]; ``joint_set`` of the source file."""

    frame: np.ndarray
    kp: np.ndarray
    conf: np.ndarray
    joint_set: str
    source: str
    fmt: str

    def __len__(self) -> int:
        return len(self.frame)

    def take(self, idx: np.ndarray) -> Detections:
        """The instances ``idx`` (an index array or boolean mask), in that order."""
        return Detections(self.frame[idx], self.kp[idx], self.conf[idx], self.joint_set, self.source, self.fmt)


def _check_frames(path: Path, frames: np.ndarray, num_frames: int, id_scheme: str) -> None:
    if not frames.size:
        return
    lo, hi = int(frames.min()), int(frames.max())
    if lo < 0 or hi >= num_frames:
        bad = lo if lo < 0 else hi
        hint = ""
        if id_scheme == "frame" and lo >= 1 and hi == num_frames:
            hint = " (ids look 1-based: pass --id-scheme frame1)"
        elif id_scheme == "frame1" and lo == -1:
            hint = " (ids look 0-based: pass --id-scheme frame)"
        raise DataError(path, "frames", f"mismatched frame count: a detection refers to frame {bad}, the input has "
                                        f"{num_frames} frames (0-{num_frames - 1}){hint}")


def _from_array(path: Path, fmt: str, key: str | None, num_frames: int, joint_set: str | None) -> Detections:
    arr, _vp3d, _layout = read_array_file(path, fmt, key, ndims=(2, 3, 4))
    if arr is None:
        raise DataError(path, key or "positions_2d",
                        "expected a numeric array (frames, joints, 2|3); dataset files such as "
                        "VideoPose3D's data_2d_*.npz go through 'auglift detections import'")
    if arr.dtype.kind not in "fiu":
        raise DataError(path, "keypoints", f"expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 2 and num_frames == 1:
        arr = arr[None]
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[-1] not in (2, 3):
        raise DataError(path, "keypoints", f"expected (frames, joints, 2|3) or (frames, people, joints, 2|3), "
                                           f"got {arr.shape}")
    if arr.shape[0] != num_frames:
        raise DataError(path, "keypoints", f"mismatched frame count: the file has {arr.shape[0]} frames, the input "
                                           f"has {num_frames}")
    name, keep = resolve_joints(arr.shape[2], joint_set, "h36m17", path)
    raw = np.asarray(arr[:, :, :keep], dtype=np.float64)
    f, p = raw.shape[:2]
    raw = raw.reshape(f * p, keep, -1)
    frame = np.repeat(np.arange(f, dtype=np.int64), p)
    score = raw[..., 2] if raw.shape[-1] == 3 else np.ones(raw.shape[:2])
    score = np.where(np.isfinite(score) & np.isfinite(raw[..., :2]).all(-1), score, 0.0)
    present = (score > 0).any(-1)  # an all-NaN / all-zero-score row is an absent person
    kp, conf = keypoints_to_h36m(raw[present, :, :2], score[present], name)
    return Detections(frame[present], kp, conf, name, str(path), fmt)


_TRAILING_NUMBER = re.compile(r"(\d+)\D*$")


def _frames_from_names(path: Path, names: Sequence[str], frame_names: Sequence[str] | None, num_frames: int,
                       base: int) -> np.ndarray:
    uniq = sorted(set(names))
    if num_frames == 1 and len(uniq) == 1:
        return np.zeros(len(names), dtype=np.int64)
    if frame_names is not None:
        idx, ambiguous = match_names(uniq, list(frame_names))
        if (idx < 0).any():
            bad = uniq[int(np.flatnonzero(idx < 0)[0])]
            why = f" ({ambiguous} names are ambiguous)" if ambiguous else ""
            raise DataError(path, "image_id", f"mismatched frames: detection {bad!r} names no image of the input "
                                              f"({num_frames} images, e.g. {frame_names[0]!r}){why}")
    else:
        idx = np.empty(len(uniq), dtype=np.int64)
        for i, n in enumerate(uniq):
            m = _TRAILING_NUMBER.search(Path(n.replace("\\", "/")).stem)
            if m is None:
                raise DataError(path, "image_id", f"cannot tell the video frame of detection {n!r}: expected a "
                                                  "frame number in the name (e.g. 000012.jpg)")
            idx[i] = int(m.group(1)) - base
    lookup = dict(zip(uniq, idx.tolist()))
    return np.asarray([lookup[n] for n in names], dtype=np.int64)


def read_keypoints(path: PathLike, *, num_frames: int, frame_names: Sequence[str] | None = None,
                   fmt: str | None = None, joint_set: str | None = None, id_scheme: str = "frame",
                   key: str | None = None, min_score: float = 0.0) -> Detections:
    """Read a keypoint file and match its instances to the input's frames (see the module doc).

    Args:
        path: the keypoint file (or a directory of MMPose per-image JSON files).
        num_frames: frames of the input.
        frame_names: for image inputs, each frame's file name (relative path); None for a video.
        fmt: ``coco``, ``halpe``, ``mmpose``, ``npy``, ``npz`` (default: guessed).
        joint_set: source joint set (default: by joint count).
        id_scheme: ``"frame"`` (0-based frame numbers / ids) or ``"frame1"`` (1-based).
        key: the array of an ``.npz`` archive.
        min_score: drop instances whose mean keypoint score is below this.

    Returns:
        :class:`Detections` in H36M-17, sorted by frame.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(p, None, "keypoint file not found")
    if id_scheme not in ID_SCHEMES:
        raise ConfigError(f"id scheme: expected one of {', '.join(ID_SCHEMES)}, got {id_scheme!r}")
    base = 1 if id_scheme == "frame1" else 0
    fmt, preloaded = resolve_format(p, fmt)
    if fmt in ("npy", "npz"):
        det = _from_array(p, fmt, key, num_frames, joint_set)
    else:
        if key is not None:
            raise ConfigError("--key applies to .npz keypoint files only")
        inst = read_instances([p], fmt, joint_set=joint_set, preloaded=preloaded)
        if inst.video is not None:
            assert inst.frame is not None
            if len(set(inst.video)) > 1:
                raise DataError(p, "video", f"the file holds detections of {len(set(inst.video))} videos; "
                                            "give the one for this input")
            frame = np.asarray(inst.frame, dtype=np.int64)
        elif inst.name is not None:
            frame = _frames_from_names(p, inst.name, frame_names, num_frames, base)
        else:
            assert inst.image_id is not None
            ids = np.asarray(inst.image_id, dtype=np.int64)
            frame = np.zeros_like(ids) if (num_frames == 1 and len(np.unique(ids)) == 1) else ids - base
        _check_frames(p, frame, num_frames, id_scheme)
        kp, conf = keypoints_to_h36m(inst.kp, inst.score, inst.joint_set)
        det = Detections(frame, kp, conf, inst.joint_set, str(p), fmt)
    if min_score > 0 and len(det):
        det = det.take(det.conf.mean(-1) >= min_score)
    return det.take(np.argsort(det.frame, kind="stable"))


# ----------------------------------------------------------------------------- MediaPipe
class MediaPipePose(contextlib.AbstractContextManager):
    """MediaPipe Pose (``mp.solutions.pose``, bundled full model) -> H36M-17 keypoints, one person per image.

    ``static_image_mode=False`` tracks the person across consecutive video frames (faster, smoother);
    ``True`` runs the detector on every image (independent photos). Call with ``images uint8
    (B, H, W, 3)`` RGB; returns ``(kp (B, 17, 2) float32 px, conf (B, 17) float32, found (B,) bool)``
    (NaN keypoints and zero confidence where no person was found). Landmark coordinates are
    normalised to the image edges; pixels here have their centres at integers, so
    ``u = x * width - 0.5``.
    """

    name = "mediapipe-pose-0.10-full"

    def __init__(self, *, static_image_mode: bool = False, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, smooth_landmarks: bool = True):
        try:
            import mediapipe as mp
        except ImportError:
            raise ConfigError("2D keypoints from MediaPipe need the mediapipe extra (pip install "
                              "'auglift[mediapipe]', mediapipe==0.10.21; it pins numpy<2, so use its own "
                              "environment: make test-mediapipe builds .venv-mediapipe), or pass a keypoint "
                              "file with --keypoints") from None
        self.version = getattr(mp, "__version__", "?")
        self.options = {"static_image_mode": static_image_mode, "model_complexity": 1,
                        "min_detection_confidence": min_detection_confidence,
                        "min_tracking_confidence": min_tracking_confidence}
        self._pose = mp.solutions.pose.Pose(smooth_landmarks=smooth_landmarks, enable_segmentation=False,
                                            **self.options)

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "mediapipe": self.version, **self.options}

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raw, vis, found = self.landmarks(images)
        kp, conf = keypoints_to_h36m(raw, vis, "mediapipe33")
        return kp, conf, found

    def landmarks(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The 33 landmarks before conversion: ``(kp (B, 33, 2) float64 px, visibility (B, 33), found (B,) bool)``."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise DataError(None, "images", f"expected uint8 RGB images (B, H, W, 3), got {images.shape} "
                                            f"{images.dtype}")
        b, h, w = images.shape[:3]
        raw = np.full((b, 33, 2), np.nan)
        vis = np.zeros((b, 33))
        found = np.zeros(b, dtype=bool)
        for i in range(b):  # MediaPipe's graph takes one image at a time
            res = self._pose.process(np.ascontiguousarray(images[i]))
            if res.pose_landmarks is None:
                continue
            lm = np.array([[p.x, p.y, p.visibility] for p in res.pose_landmarks.landmark], dtype=np.float64)
            raw[i] = lm[:, :2] * (w, h) - 0.5
            vis[i] = lm[:, 2]
            found[i] = True
        return raw, vis, found

    def close(self) -> None:
        self._pose.close()

    def __exit__(self, *exc: object) -> None:
        self.close()
