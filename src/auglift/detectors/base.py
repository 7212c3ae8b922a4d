"""The 2D person-detector interface: frames in, one H36M-17 person per frame out.

A backend (:class:`PersonDetector2D` subclass) implements :meth:`~PersonDetector2D.find_people`:
``images uint8 (B, H, W, 3) RGB -> PersonCandidates``, every person it found, in its own joint
set (COCO-17, Halpe-26, MediaPipe-33). The shared :meth:`~PersonDetector2D.__call__` then keeps
one person per frame and converts it to H36M-17 with confidences:

1. **Person choice** (:func:`choose_person`). With a ground-truth box for the frame (given, or
   the extent of the ground-truth 2D joints, e.g. :func:`poseset_ground_truth_2d`), the candidate
   whose keypoint box (the extent of its H36M-17 joints with confidence > 0) overlaps it most, if
   that IoU is at least ``min_iou`` (default 0.1): the person of the dataset's track, not a
   bystander. Frames without ground truth keep the candidate with the highest mean keypoint
   score (as the paper's pipeline, METHOD.md "2D detections"; the same rank as
   ``auglift detections import``).
2. **Conversion** with the COCO rule of :mod:`auglift.skeleton`
   (:func:`auglift.datasets.detections.keypoints_to_h36m`).

A frame where no person was found, or none overlaps the ground truth, gets ``valid`` False,
NaN keypoints and confidence 0: a stated per-frame outcome, never an exception.
"""

from __future__ import annotations

import abc
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from auglift.datasets.detections import keypoints_to_h36m, kp2d_if_ground_truth, select_best
from auglift.errors import DataError
from auglift.geometry import project
from auglift.tracking import box_iou, keypoint_boxes

__all__ = [
    "STAGES",
    "Keypoints2D",
    "PersonCandidates",
    "PersonDetector2D",
    "check_images",
    "choose_person",
    "ground_truth_boxes",
    "poseset_ground_truth_2d",
]

STAGES = ("detector", "pose", "conversion")
DEFAULT_MIN_IOU = 0.1


@dataclass
class PersonCandidates:
    """Every person found in a batch of ``B`` frames, in the backend's joint set ``joint_set``.

    ``frame (M,)`` int64 index into the batch; ``kp (M, J, 2)`` float32 px (pixel centres at
    integer coordinates); ``score (M, J)`` float32 keypoint scores (RTMPose's SimCC maxima or
    MediaPipe's visibility; clipped to [0, 1] on conversion); ``box (M, 4)`` float32
    ``[x0, y0, x1, y1]`` px, the detector's box (MediaPipe: the landmarks' extent);
    ``box_score (M,)`` float32.
    """

    frame: np.ndarray
    kp: np.ndarray
    score: np.ndarray
    box: np.ndarray
    box_score: np.ndarray
    joint_set: str

    def __len__(self) -> int:
        return len(self.frame)


@dataclass
class Keypoints2D:
    """One person per frame, H36M-17, for ``N`` frames.

    ``kp2d (N, 17, 2)`` float32 px (NaN where not found); ``conf (N, 17)`` float32 in [0, 1]
    (0 where not found); ``valid (N,)`` bool, a person was kept (the PoseSet's ``kp2d_valid``);
    ``people (N,)`` int32, persons the backend found in the frame; ``iou (N,)`` float32, the kept
    person's IoU with the ground-truth box (NaN without ground truth or person); ``timings``
    seconds spent per stage (:data:`STAGES`: ``detector``, ``pose``, ``conversion``) for the batch.
    """

    kp2d: np.ndarray
    conf: np.ndarray
    valid: np.ndarray
    people: np.ndarray
    iou: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.valid)

    @property
    def joint_valid(self) -> np.ndarray:
        """``(N, 17)`` bool: the joint has finite coordinates and confidence > 0."""
        return np.isfinite(self.kp2d).all(-1) & (self.conf > 0)


def check_images(images: Any) -> np.ndarray:
    """``images`` as a ``uint8 (B, H, W, 3)`` array; one-line :class:`DataError` otherwise."""
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or 0 in arr.shape[1:3]:
        raise DataError(None, "images", f"expected uint8 RGB images (B, H, W, 3), got {arr.shape} {arr.dtype}")
    return arr


def ground_truth_boxes(num_frames: int, gt_kp2d: np.ndarray | None = None, gt_boxes: np.ndarray | None = None
                       ) -> np.ndarray | None:
    """Per-frame ground-truth boxes ``(N, 4)`` px (NaN rows: no ground truth) or None.

    ``gt_boxes (N, 4)`` ``[x0, y0, x1, y1]`` px wins; else the extent of the finite joints of
    ``gt_kp2d (N, J, 2)`` px (the projected ground truth of a PoseSet's ``kp2d_gt``).
    """
    if gt_boxes is not None:
        boxes = np.asarray(gt_boxes, dtype=np.float64)
        if boxes.shape != (num_frames, 4):
            raise DataError(None, "gt_boxes", f"expected ({num_frames}, 4) boxes, got {boxes.shape}")
        return boxes
    if gt_kp2d is None:
        return None
    kp = np.asarray(gt_kp2d, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[0] != num_frames or kp.shape[2] != 2:
        raise DataError(None, "gt_kp2d", f"expected ({num_frames}, J, 2) px, got {kp.shape}")
    return keypoint_boxes(kp, np.ones(kp.shape[:2]))


def poseset_ground_truth_2d(ps: Any, rows: np.ndarray, *, kp2d_is_gt: bool | None = None) -> np.ndarray | None:
    """Ground-truth 2D ``(len(rows), 17, 2)`` px of PoseSet ``rows``, or None when the PoseSet has none.

    The PoseSet's ``kp2d_gt``; else its ``kp2d`` when that is ground truth
    (:func:`~auglift.datasets.detections.kp2d_if_ground_truth`, the rule by which importing
    detections keeps it as ``kp2d_gt``); else ``kp3d`` projected with each clip's
    intrinsics and distortion (rows whose projection is not finite stay NaN). ``kp2d_is_gt``
    skips the rule's pass over ``conf`` when the caller knows (many calls on one PoseSet).
    """
    rows = np.asarray(rows, dtype=np.int64)
    if ps.kp2d_gt is not None:
        return np.asarray(ps.kp2d_gt[rows], dtype=np.float64)
    if kp2d_is_gt is None:
        kp2d_is_gt = kp2d_if_ground_truth(ps) is not None
    if kp2d_is_gt:
        return np.asarray(ps.kp2d[rows], dtype=np.float64)
    if ps.kp3d is None:
        return None
    clip = np.asarray(ps.clip[rows], dtype=np.int64)
    uv = project(np.asarray(ps.kp3d[rows]), np.asarray(ps.clips.intrinsics)[clip],
                 np.asarray(ps.clips.distortion)[clip])
    return np.where(np.isfinite(uv), uv, np.nan)


def choose_person(cand: PersonCandidates, num_frames: int, gt_boxes: np.ndarray | None = None, *,
                  min_iou: float = DEFAULT_MIN_IOU) -> Keypoints2D:
    """Keep one candidate per frame (see the module doc) and convert it to H36M-17.

    ``gt_boxes (N, 4)`` px, NaN rows for frames without ground truth (None: none anywhere).
    """
    n = num_frames
    kp17, conf17 = keypoints_to_h36m(cand.kp, cand.score, cand.joint_set)
    frame = np.asarray(cand.frame, dtype=np.int64)
    rank = np.asarray(cand.score, dtype=np.float64).mean(-1) if len(cand) else np.zeros(0)
    rows = frame.copy()
    iou = np.full(len(cand), np.nan)
    if gt_boxes is not None and len(cand):
        ref = np.asarray(gt_boxes, dtype=np.float64)[frame]
        has_gt = np.isfinite(ref).all(-1)
        # pairwise IoU of the few candidates of a batch; the diagonal pairs each with its own frame's box
        iou = np.where(has_gt, np.diagonal(box_iou(keypoint_boxes(kp17, conf17), ref)), np.nan)
        rank = np.where(has_gt, iou, rank)
        rows = np.where(has_gt & ~(iou >= min_iou), -1, frame)
    best, best_rows, _ = select_best(rows, rank, n)
    out = Keypoints2D(kp2d=np.full((n, 17, 2), np.nan, dtype=np.float32), conf=np.zeros((n, 17), np.float32),
                      valid=np.zeros(n, dtype=bool), people=np.bincount(frame, minlength=n).astype(np.int32),
                      iou=np.full(n, np.nan, dtype=np.float32))
    out.kp2d[best_rows], out.conf[best_rows] = kp17[best], conf17[best]
    out.valid[best_rows] = True
    out.iou[best_rows] = iou[best]
    return out


class PersonDetector2D(contextlib.AbstractContextManager):
    """A 2D person detector + keypoint estimator (see the module doc).

    Subclasses set ``name`` and ``joint_set`` and implement :meth:`find_people`, :meth:`identity`
    and :meth:`close` (releases sessions/graphs; also called on ``with`` exit).
    """

    name: str = ""
    joint_set: str = ""

    @abc.abstractmethod
    def find_people(self, images: np.ndarray, timings: dict[str, float]) -> PersonCandidates:
        """Every person in ``images uint8 (B, H, W, 3)`` RGB; adds seconds per stage to ``timings``."""

    @abc.abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-ready description of the models and settings (stored with the detections)."""

    def __call__(self, images: np.ndarray, *, gt_kp2d: np.ndarray | None = None, gt_boxes: np.ndarray | None = None,
                 min_iou: float = DEFAULT_MIN_IOU) -> Keypoints2D:
        """H36M-17 keypoints of one person per frame of ``images uint8 (B, H, W, 3)`` RGB.

        ``gt_kp2d (B, J, 2)`` px or ``gt_boxes (B, 4)`` px (NaN rows allowed) select the
        ground-truth person; see :func:`choose_person`.
        """
        images = check_images(images)
        boxes = ground_truth_boxes(len(images), gt_kp2d, gt_boxes)
        timings = dict.fromkeys(STAGES, 0.0)
        if len(images) == 0:
            return Keypoints2D(np.zeros((0, 17, 2), np.float32), np.zeros((0, 17), np.float32), np.zeros(0, bool),
                               np.zeros(0, np.int32), np.zeros(0, np.float32), timings)
        cand = self.find_people(images, timings)
        t0 = time.perf_counter()
        out = choose_person(cand, len(images), boxes, min_iou=min_iou)
        timings["conversion"] += time.perf_counter() - t0
        out.timings = timings
        return out

    @abc.abstractmethod
    def close(self) -> None:
        """Release the backend's resources (sessions, graphs)."""

    def __exit__(self, *exc: object) -> None:
        self.close()
