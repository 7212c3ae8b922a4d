"""RTMDet person boxes + RTMPose keypoints on ONNX Runtime, with rtmlib's pre- and post-processing.

The models are MMDeploy ONNX exports, as rtmlib runs them:

* **RTMDet** (end-to-end, NMS inside): input ``(N, 3, H, W)`` float32 (640x640 for RTMDet-m),
  BGR, ``(x - mean) / std`` with mean ``(103.53, 116.28, 123.675)``, std ``(57.375, 57.12,
  58.395)`` (MMDetection's RTMDet preprocessing: no BGR-to-RGB swap); the frame is scaled to fit
  and padded with 114 at the bottom/right (letterbox). Outputs ``dets (N, K, 5)``
  ``[x0, y0, x1, y1, score]`` in input pixels and ``labels (N, K)`` (0 = person); boxes scoring
  above ``score_threshold`` (0.3, rtmlib's) are kept, at most ``max_people`` per frame.
* **RTMPose** (SimCC): input ``(N, 3, h, w)`` float32 (256x192 or 384x288), an affine crop of
  the box enlarged 1.25x to the input's aspect ratio (rtmlib's ``bbox_xyxy2cs`` and
  ``top_down_affine``), **RGB**, mean ``(123.675, 116.28, 103.53)``, std ``(58.395, 57.12,
  57.375)`` (MMPose trains RTMPose on RGB; rtmlib feeds it OpenCV's BGR, its issue #48).
  Outputs ``simcc_x (N, J, w * r)`` and ``simcc_y (N, J, h * r)`` (split ratio ``r`` = 2); the
  argmax of each is the keypoint (rtmlib's ``get_simcc_maximum``), the mean of the two maxima
  its score. ``J`` = 17 (COCO-17 / body7), 26 (Halpe-26) or 133 (COCO-WholeBody: its first 17).

Why not rtmlib's ``RTMDet``/``RTMPose`` classes: they run one image and one box per session call
(no batching; RTMDet reads batch element 0 only), download any path that does not exist (no
timeout, no offline switch), and feed BGR to RTMPose. We keep rtmlib's functions and run our own
batched ``onnxruntime.InferenceSession`` (models with a fixed batch of 1 run frame by frame).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from auglift.datasets.detections import resolve_joints
from auglift.detectors.base import PersonCandidates, PersonDetector2D
from auglift.detectors.model_files import resolve_model
from auglift.errors import ConfigError, DataError, need_extra
from auglift.io import sha256_file

__all__ = ["RTMPoseDetector", "load_session"]

DET_MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
DET_STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)
POSE_MEAN_RGB = np.array([123.675, 116.28, 103.53], dtype=np.float32)
POSE_STD_RGB = np.array([58.395, 57.12, 57.375], dtype=np.float32)
BOX_PADDING = 1.25  # top-down crop = the box enlarged by this factor (MMPose / rtmlib)
LETTERBOX_FILL = 114
DEFAULT_DET_SIZE = (640, 640)  # (h, w) when the detector's input size is dynamic

DET_SIGNATURE = ("an RTMDet end-to-end ONNX export: input (N, 3, H, W) float32 -> dets (N, K, 5) "
                 "[x0, y0, x1, y1, score], labels (N, K)")
POSE_SIGNATURE = ("an RTMPose SimCC ONNX export: input (N, 3, h, w) float32 -> simcc_x (N, J, 2w), "
                  "simcc_y (N, J, 2h) with J = 17, 26 or 133")


def _rtmlib() -> Any:
    try:  # optional dependency (the detect extra); imported on use so the rest of auglift works without it
        from rtmlib.tools.pose_estimation import post_processings, pre_processings
    except ImportError as exc:
        raise ConfigError(f"RTMDet/RTMPose need the detect extra (pip install 'auglift[detect]': rtmlib, "
                          f"onnxruntime); importing rtmlib failed: {exc}") from None
    return pre_processings, post_processings


def _providers(device: str) -> list[Any]:
    import onnxruntime as ort  # optional dependency (the detect/onnx extras)

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda" or device.startswith("cuda:"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ConfigError(f"device {device}: this onnxruntime has no CUDA provider (install onnxruntime-gpu "
                              "instead of onnxruntime), or use --device cpu")
        index = int(device.split(":")[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    raise ConfigError(f"device: expected cpu, cuda or cuda:N, got {device!r}")


def load_session(path: Path, *, device: str = "cpu", threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``path``; one-line :class:`DataError` for a bad file."""
    ort = need_extra("onnxruntime", "RTMDet/RTMPose need", "detect", "rtmlib, onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or 0)  # 0: onnxruntime's default (all cores)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    providers = _providers(device)
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
        raise DataError(path, None, f"cannot load the ONNX model ({' '.join(str(exc).split())[:200]})") from None


def _describe(session: Any) -> str:
    ins, outs = (", ".join(f"{a.name} {tuple(a.shape)} {a.type}" for a in args)
                 for args in (session.get_inputs(), session.get_outputs()))
    return f"inputs {ins}; outputs {outs}"


def _static(dim: Any) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


@dataclass(frozen=True)
class _Signature:
    """What a checked ONNX model takes and gives: input name, fixed batch (None: dynamic), (h, w), output names."""

    input: str
    batch: int | None
    size: tuple[int, int]
    outputs: tuple[str, ...]


def _image_input(session: Any, path: Path, expected: str, default_size: tuple[int, int] | None) -> _Signature:
    ins = session.get_inputs()
    shape = list(ins[0].shape) if len(ins) == 1 else []
    if len(shape) != 4 or ins[0].type != "tensor(float)" or _static(shape[1]) not in (3, None):
        raise DataError(path, "inputs", f"expected {expected}; got {_describe(session)}")
    h, w = _static(shape[2]), _static(shape[3])
    if h is None or w is None:
        if default_size is None:
            raise DataError(path, "inputs", f"expected a fixed input height and width for {expected}; got "
                                            f"{_describe(session)}")
        h, w = default_size
    return _Signature(ins[0].name, _static(shape[0]), (h, w), ())


def _pick_outputs(session: Any, names: tuple[str, ...], ranks: tuple[int, ...]) -> tuple[str, ...] | None:
    """Output names: by the exporter's names, else the outputs in order if their ranks fit."""
    outs = session.get_outputs()
    if set(names) <= {o.name for o in outs}:
        return names
    if len(outs) >= len(ranks) and all(len(o.shape) == r for o, r in zip(outs, ranks)):
        return tuple(o.name for o in outs[:len(ranks)])
    return None


def _run(session: Any, sig: _Signature, x: np.ndarray, max_batch: int, path: Path) -> list[np.ndarray]:
    """Run ``x (M, 3, h, w)`` in chunks (the model's fixed batch, else ``max_batch``); outputs concatenated."""
    step = sig.batch or max(1, int(max_batch))
    parts: list[list[np.ndarray]] = []
    for s in range(0, len(x), step):
        chunk = x[s:s + step]
        n = len(chunk)
        if sig.batch and n < sig.batch:  # a fixed-batch model: pad the last chunk
            chunk = np.concatenate([chunk, np.zeros((sig.batch - n, *chunk.shape[1:]), chunk.dtype)])
        try:
            res = session.run(list(sig.outputs), {sig.input: np.ascontiguousarray(chunk)})
        except Exception as exc:  # onnxruntime's InvalidArgument / Fail / RuntimeException
            raise DataError(path, None, f"the ONNX model failed on input {chunk.shape} "
                                        f"({' '.join(str(exc).split())[:200]})") from None
        parts.append([np.asarray(r)[:n] for r in res])
    return [np.concatenate(p) for p in zip(*parts)]


class RTMPoseDetector(PersonDetector2D):
    """RTMDet person boxes, then RTMPose keypoints in each box (see the module doc).

    Args:
        det_model: RTMDet ONNX: a local ``.onnx``, an id of :data:`~auglift.detectors.model_files.RTM_MODELS`
            (``rtmdet-m``) or a URL.
        pose_model: RTMPose ONNX, the same forms (``rtmpose-l``: body7/COCO-17, 256x192, the paper's;
            ``rtmpose-l-halpe26``: Halpe-26).
        joint_set: the pose model's keypoint set (default: by its keypoint count).
        device: ``cpu``, ``cuda`` or ``cuda:N`` (needs onnxruntime-gpu).
        threads: ONNX Runtime intra-op threads (None: all cores).
        det_batch: frames per detector run; pose_batch: crops per pose run.
        score_threshold: minimum detector box score; max_people: boxes kept per frame (best first).
    """

    name = "rtmdet+rtmpose"

    def __init__(self, det_model: str | os.PathLike[str] = "rtmdet-m",
                 pose_model: str | os.PathLike[str] = "rtmpose-l", *, joint_set: str | None = None,
                 device: str = "cpu", threads: int | None = None, det_batch: int = 8, pose_batch: int = 64,
                 score_threshold: float = 0.3, max_people: int = 20):
        self._pre, self._post = _rtmlib()
        self.det_spec, self.pose_spec = os.fspath(det_model), os.fspath(pose_model)
        self.det_path = resolve_model(det_model, option="--det-model")
        self.pose_path = resolve_model(pose_model, option="--pose-model")
        self.device, self.threads = device, threads
        self.det_batch, self.pose_batch = int(det_batch), int(pose_batch)
        self.score_threshold, self.max_people = float(score_threshold), int(max_people)
        self._det = load_session(self.det_path, device=device, threads=threads)
        self._pose = load_session(self.pose_path, device=device, threads=threads)
        self.det_sig = self._check_detector()
        self.pose_sig, self.split_ratio, num_joints = self._check_pose()
        self.joint_set, self._keep = resolve_joints(num_joints, joint_set, "coco17", self.pose_path)

    # -- model checks
    def _check_detector(self) -> _Signature:
        sig = _image_input(self._det, self.det_path, DET_SIGNATURE, DEFAULT_DET_SIZE)
        outs = _pick_outputs(self._det, ("dets", "labels"), (3, 2)) or _pick_outputs(self._det, ("dets",), (3,))
        shapes = {o.name: o.shape for o in self._det.get_outputs()}
        if outs is None or _static(shapes[outs[0]][-1]) not in (5, None):
            raise DataError(self.det_path, "outputs", f"expected {DET_SIGNATURE}; got {_describe(self._det)}")
        return replace(sig, outputs=outs)

    def _check_pose(self) -> tuple[_Signature, float, int]:
        """Signature, SimCC split ratio and keypoint count, from one run on a blank crop."""
        sig = _image_input(self._pose, self.pose_path, POSE_SIGNATURE, None)
        outs = _pick_outputs(self._pose, ("simcc_x", "simcc_y"), (3, 3))
        if outs is None:
            raise DataError(self.pose_path, "outputs", f"expected {POSE_SIGNATURE}; got {_describe(self._pose)}")
        sig = replace(sig, outputs=outs)
        h, w = sig.size
        sx, sy = _run(self._pose, sig, np.zeros((1, 3, h, w), np.float32), 1, self.pose_path)
        ratio = sx.shape[-1] / w
        if sx.ndim != 3 or sy.ndim != 3 or sx.shape[:2] != sy.shape[:2] or sy.shape[-1] != round(ratio * h) \
                or ratio < 1:
            raise DataError(self.pose_path, "outputs", f"expected {POSE_SIGNATURE}; got simcc_x {sx.shape}, "
                                                       f"simcc_y {sy.shape} for a {h}x{w} input")
        return sig, ratio, int(sx.shape[1])

    @functools.cached_property
    def _sha256(self) -> tuple[str, str]:
        return sha256_file(self.det_path), sha256_file(self.pose_path)

    def identity(self) -> dict[str, Any]:
        import onnxruntime as ort  # optional dependency, loaded in __init__ already

        return {"name": self.name, "det_model": self.det_spec, "det_sha256": self._sha256[0],
                "pose_model": self.pose_spec, "pose_sha256": self._sha256[1],
                "joint_set": self.joint_set, "det_input_hw": list(self.det_sig.size),
                "pose_input_hw": list(self.pose_sig.size), "score_threshold": self.score_threshold,
                "max_people": self.max_people, "onnxruntime": ort.__version__}

    # -- stages
    def detect_boxes(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Person boxes of ``images uint8 (B, H, W, 3)`` RGB: ``(frame (M,) int64, box (M, 4) float32
        [x0, y0, x1, y1] px, score (M,) float32)``, best first within a frame."""
        x, ratio = self._letterbox(images)
        res = _run(self._det, self.det_sig, x, self.det_batch, self.det_path)
        dets = res[0]
        if dets.ndim != 3 or dets.shape[-1] != 5 or dets.shape[0] != len(images):
            raise DataError(self.det_path, "dets", f"expected {DET_SIGNATURE}; got dets {dets.shape}")
        score = dets[..., 4].astype(np.float64)
        keep = np.isfinite(dets).all(-1) & (score > self.score_threshold)
        if len(res) > 1:
            keep &= res[1].reshape(score.shape) == 0
        h, w = images.shape[1:3]
        box = np.clip(dets[..., :4] / ratio, 0, [w, h, w, h])
        keep &= (box[..., 2] > box[..., 0]) & (box[..., 3] > box[..., 1])
        order = np.argsort(np.where(keep, -score, np.inf), axis=1, kind="stable")
        keep &= np.argsort(order, axis=1) < self.max_people  # each box's rank: the inverse permutation
        frame, k = np.nonzero(keep)
        sel = np.lexsort((-score[frame, k], frame))
        frame, k = frame[sel], k[sel]
        return frame.astype(np.int64), box[frame, k].astype(np.float32), score[frame, k].astype(np.float32)

    def _letterbox(self, images: np.ndarray) -> tuple[np.ndarray, float]:
        """Detector input ``(B, 3, h, w)`` float32: each frame scaled to fit, padded with 114, BGR, normalised."""
        dh, dw = self.det_sig.size
        h, w = images.shape[1:3]
        ratio = min(dh / h, dw / w)
        nh, nw = int(h * ratio), int(w * ratio)
        canvas = np.full((len(images), dh, dw, 3), LETTERBOX_FILL, dtype=np.uint8)
        for i, img in enumerate(images):  # OpenCV resizes one image per call
            canvas[i, :nh, :nw] = img if (nh, nw) == (h, w) else cv2.resize(img, (nw, nh),
                                                                             interpolation=cv2.INTER_LINEAR)
        x = (canvas[..., ::-1].astype(np.float32) - DET_MEAN_BGR) / DET_STD_BGR
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), ratio

    def estimate_poses(self, images: np.ndarray, frame: np.ndarray, box: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """RTMPose keypoints for the boxes ``box (M, 4)`` px of frames ``frame (M,)``: ``(kp (M, J, 2)``
        float32 px, ``score (M, J)`` float32) in :attr:`joint_set` order."""
        h, w = self.pose_sig.size
        num = len(frame)
        if num == 0:
            return np.zeros((0, self._keep, 2), np.float32), np.zeros((0, self._keep), np.float32)
        center, scale = self._pre.bbox_xyxy2cs(np.asarray(box, dtype=np.float64), padding=BOX_PADDING)
        crops = np.empty((num, h, w, 3), dtype=np.float32)
        for m in range(num):  # one affine warp per person (OpenCV); the network dominates the cost
            crops[m], scale[m] = self._pre.top_down_affine((w, h), scale[m], center[m], images[frame[m]])
        x = np.ascontiguousarray(((crops - POSE_MEAN_RGB) / POSE_STD_RGB).transpose(0, 3, 1, 2))
        simcc_x, simcc_y = _run(self._pose, self.pose_sig, x, self.pose_batch, self.pose_path)
        locs, vals = self._post.get_simcc_maximum(simcc_x, simcc_y)
        kp = locs / self.split_ratio / np.array([w, h]) * scale[:, None] + center[:, None] - scale[:, None] / 2
        return kp[:, :self._keep].astype(np.float32), vals[:, :self._keep].astype(np.float32)

    def find_people(self, images: np.ndarray, timings: dict[str, float]) -> PersonCandidates:
        t0 = time.perf_counter()
        frame, box, box_score = self.detect_boxes(images)
        t1 = time.perf_counter()
        kp, score = self.estimate_poses(images, frame, box)
        timings["detector"] = timings.get("detector", 0.0) + t1 - t0
        timings["pose"] = timings.get("pose", 0.0) + time.perf_counter() - t1
        return PersonCandidates(frame, kp, score, box, box_score, self.joint_set)

    def close(self) -> None:
        self._det = self._pose = None
