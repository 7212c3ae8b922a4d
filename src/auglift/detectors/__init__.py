"""2D person detectors for dataset frames, behind one interface, with H36M-17 output.

* :mod:`~auglift.detectors.base`: :class:`PersonDetector2D` (``images uint8 (B, H, W, 3)`` RGB
  and optional ground-truth 2D -> :class:`Keypoints2D`: ``kp2d (B, 17, 2)`` px, ``conf``,
  ``valid`` and seconds per stage), the person choice and the conversion to H36M-17;
* :mod:`~auglift.detectors.rtm`: RTMDet + RTMPose (ONNX Runtime, rtmlib's pre/post-processing;
  the ``detect`` extra), model files by :mod:`~auglift.detectors.model_files`;
* :mod:`~auglift.detectors.mediapipe_pose`: MediaPipe Pose (the ``mediapipe`` extra);
* :mod:`~auglift.detectors.report`: the detected-vs-ground-truth 2D error report;
* :mod:`~auglift.detectors.run`: :func:`~auglift.detectors.run.detect_poseset`, the resumable,
  sharded run over a saved PoseSet's frames (``auglift detect``).

:func:`build_detector` makes a backend from its name.
"""

from __future__ import annotations

from typing import Any

from auglift.detectors.base import (
    STAGES,
    Keypoints2D,
    PersonCandidates,
    PersonDetector2D,
    choose_person,
    ground_truth_boxes,
    poseset_ground_truth_2d,
)
from auglift.detectors.mediapipe_pose import MediaPipeDetector
from auglift.detectors.report import detection_errors, format_detection_errors, poseset_detection_errors
from auglift.errors import ConfigError

__all__ = [
    "DETECTORS",
    "STAGES",
    "Keypoints2D",
    "MediaPipeDetector",
    "PersonCandidates",
    "PersonDetector2D",
    "build_detector",
    "choose_person",
    "detection_errors",
    "format_detection_errors",
    "ground_truth_boxes",
    "poseset_detection_errors",
    "poseset_ground_truth_2d",
]

DETECTORS = ("rtmpose", "mediapipe")


def build_detector(name: str, **options: Any) -> PersonDetector2D:
    """``"rtmpose"``: :class:`~auglift.detectors.rtm.RTMPoseDetector` (options: det_model, pose_model,
    joint_set, device, threads, det_batch, pose_batch, score_threshold, max_people);
    ``"mediapipe"``: :class:`~auglift.detectors.mediapipe_pose.MediaPipeDetector` (options:
    static_image_mode, min_detection_confidence)."""
    if name == "rtmpose":
        from auglift.detectors.rtm import RTMPoseDetector  # needs OpenCV (the video extra): imported when chosen

        return RTMPoseDetector(**options)
    if name == "mediapipe":
        return MediaPipeDetector(**options)
    raise ConfigError(f"detector: expected one of {', '.join(DETECTORS)}, got {name!r}")
