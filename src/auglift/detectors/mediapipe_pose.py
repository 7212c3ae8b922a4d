"""MediaPipe Pose behind the :class:`~auglift.detectors.base.PersonDetector2D` interface.

The graph is :class:`auglift.keypoints2d.MediaPipePose` (the bundled full model, the same one
``auglift infer`` runs): at most one person per frame, its 33 landmarks with visibility as the
score, converted to H36M-17 by the shared COCO rule. Its person detector and landmark model run
as one graph, so all of its time is the ``pose`` stage. ``static_image_mode=True`` (default)
runs the detector on every frame, so a frame's keypoints do not depend on the frames before it
(chunked, resumable runs give identical results); ``False`` tracks across consecutive frames.
The ``mediapipe`` extra pins ``numpy<2``: it runs in its own environment (``make test-mediapipe``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from auglift.detectors.base import PersonCandidates, PersonDetector2D
from auglift.keypoints2d import MediaPipePose
from auglift.tracking import keypoint_boxes

__all__ = ["MediaPipeDetector"]


class MediaPipeDetector(PersonDetector2D):
    """MediaPipe Pose (see the module doc); ``min_detection_confidence`` as MediaPipe's."""

    name = "mediapipe"
    joint_set = "mediapipe33"

    def __init__(self, *, static_image_mode: bool = True, min_detection_confidence: float = 0.5):
        self._pose = MediaPipePose(static_image_mode=static_image_mode,
                                   min_detection_confidence=min_detection_confidence)

    def identity(self) -> dict[str, Any]:
        return self._pose.identity()

    def find_people(self, images: np.ndarray, timings: dict[str, float]) -> PersonCandidates:
        t0 = time.perf_counter()
        raw, vis, found = self._pose.landmarks(images)
        timings["pose"] = timings.get("pose", 0.0) + time.perf_counter() - t0
        kp, score = raw[found].astype(np.float32), vis[found].astype(np.float32)
        box = keypoint_boxes(kp, score).astype(np.float32)
        return PersonCandidates(np.flatnonzero(found).astype(np.int64), kp, score, box, score.mean(-1),
                                self.joint_set)

    def close(self) -> None:
        self._pose.close()
