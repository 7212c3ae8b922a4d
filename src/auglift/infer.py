"""Lift real videos and images to 3D: 2D keypoints -> tracking -> depth descriptors -> lifter -> files.

``infer(input, checkpoint, out_dir=...)`` runs the stages of ``auglift infer``:

1. **Input**: a video file (OpenCV), one image, or a folder of images (sorted naturally, one
   frame each; all of one size). A corrupt or unreadable video is a :class:`DataError`.
2. **2D** (:mod:`auglift.keypoints2d`): a keypoint file (COCO / Halpe / MMPose JSON, ``.npy`` /
   ``.npz`` arrays) or MediaPipe Pose, mapped to H36M-17 with confidences.
3. **Tracking** (:mod:`auglift.tracking`): instances -> tracks; the largest track by default,
   every track with ``all_tracks=True``. Frames inside a track without an instance get
   interpolated keypoints (flagged ``detected = False``).
4. **Depth**: any :mod:`auglift.depth.estimators` model; the UADD descriptors are sampled with
   the options the checkpoint's training set used (``checkpoint["depth_model"]["descriptor"]``;
   the training PoseSet's ``meta.json`` for older checkpoints; the paper's defaults otherwise),
   and the model's kind (metric/relative) must be the one the encoder was fitted on. A
   checkpoint whose input needs depth and no depth model is an error before any work starts.
5. **Lifter**: the checkpoint's lifter and encoder through :func:`auglift.evaluate.predict`
   (sliding windows with edge padding, one clip per track; many-to-many lifters read
   consecutive clips; optional flip test). Output poses are root-relative (pelvis = 0), metres.
6. **Absolute root** (metric depth only, :func:`estimate_root`): every confident joint with a
   valid descriptor is back-projected at its descriptor depth plus a body-surface offset
   (the joint lies about half a limb's thickness behind the surface the depth model sees,
   :data:`SURFACE_OFFSET`), the predicted root-relative offset is subtracted, and the median
   over joints is the root. Intrinsics: ``focal`` px, or ``max(width, height)`` when not
   given (a ~53 degree field of view across the long side: Human3.6M's 1145 px on 1000 px
   frames and 3DPW's 1960 px on 1920 px ones are within 15 %), principal point at the
   image centre ``((W - 1) / 2, (H - 1) / 2)``. The root depth does not depend on the focal
   length; its x and y scale with ``1 / focal``.
7. **Outputs** in ``out_dir``: ``poses3d.npz`` (NumPy arrays, no pickle) and ``poses3d.json``
   (the same plus metadata), and with ``render`` a video/GIF of the frame with its 2D skeleton
   next to the 3D skeleton (:mod:`auglift.render`).

Every stage is timed; :attr:`InferResult.timings` holds frames/s per stage (decode, 2D,
tracking, depth, lifter, render).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from auglift.checkpoint import Checkpoint
from auglift.depth.frames import FrameReader, VideoReader, imread, video_capture
from auglift.depth.uadd import DescriptorSpec
from auglift.errors import ConfigError, DataError
from auglift.io import atomic_write, write_json
from auglift.skeleton import get_joint_set

__all__ = [
    "DEFAULT_DEPTH",
    "IMAGE_SUFFIXES",
    "SURFACE_OFFSET",
    "FrameSource",
    "ImageListReader",
    "InferResult",
    "default_intrinsics",
    "depth_settings",
    "estimate_root",
    "infer",
    "open_input",
]

PathLike = str | os.PathLike[str]
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# Default depth models (hub ids) when the checkpoint needs depth and none is given: the paper's
# metric model, or the relative one for checkpoints fitted on relative depth.
DEFAULT_DEPTH = {"metric": "depth-anything/Depth-Anything-V2-Metric-Indoor-Large-hf",
                 "relative": "depth-anything/Depth-Anything-V2-Large-hf"}
# Metres from the body surface a depth model sees to the joint centre behind it (about half the
# body's thickness at the joint), H36M-17 order. The embedded synthetic world's bodies agree
# within 2 cm (median over visible joints with exact depth).
SURFACE_OFFSET = np.array([0.11, 0.09, 0.06, 0.045, 0.09, 0.06, 0.045, 0.11, 0.11, 0.02, 0.02,
                           0.055, 0.04, 0.035, 0.055, 0.04, 0.035], dtype=np.float64)
FORMAT = "auglift.poses3d"


# ----------------------------------------------------------------------------- input
class ImageListReader(FrameReader):
    """Frames stored as a list of image files (a folder of images, or one image)."""

    def __init__(self, files: Sequence[Path], label: str, size: tuple[int, int] | None = None):
        super().__init__(str(files[0].parent if files else ""), label, size)
        self.files = list(files)

    def read(self, frames: np.ndarray) -> np.ndarray:
        import cv2

        out = []
        for f in np.asarray(frames, dtype=np.int64).tolist():
            if not 0 <= f < len(self.files):
                raise DataError(self.source, "frame", f"{self.label}: frame {f} out of range (0-{len(self.files) - 1})")
            p = self.files[f]
            img = imread(str(p))
            if img is None:
                raise DataError(p, "frame", f"{self.label}, frame {f}: cannot decode the image")
            out.append(cv2.cvtColor(self._check_size(img, f, str(p)), cv2.COLOR_BGR2RGB))
        return np.stack(out) if out else np.zeros((0, 0, 0, 3), np.uint8)


@dataclass(frozen=True)
class FrameSource:
    """An input: ``kind`` ``"video"``, ``"image"`` or ``"images"`` (a folder), its frame count, size (px) and fps.

    ``files``/``names``: the image files and their names relative to the folder (image inputs only).
    """

    path: Path
    kind: str
    num_frames: int
    width: int
    height: int
    fps: float
    files: tuple[Path, ...] | None = None
    names: tuple[str, ...] | None = None

    def reader(self) -> FrameReader:
        label = f"input {self.path.name}"
        if self.kind == "video":
            return VideoReader(str(self.path), label, (self.width, self.height))
        assert self.files is not None
        return ImageListReader(self.files, label, (self.width, self.height))


def _natural_key(s: str) -> tuple[Any, ...]:
    from auglift.datasets._common import natural_key

    return natural_key(s)


def open_input(path: PathLike, *, fps: float | None = None) -> FrameSource:
    """Probe an input (video, image or folder of images) without decoding it all.

    A video must open and decode its first frame; its frame count is the container's (counted by
    decoding when the container does not say). ``fps`` overrides the video's rate (image inputs: 30
    unless given).
    """
    import cv2

    p = Path(path)
    if not p.exists():
        raise DataError(p, None, "input not found (a video file, an image or a folder of images)")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ConfigError(f"fps must be a positive number, got {fps}")
    if p.is_dir():
        files = sorted((f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
                       key=lambda f: _natural_key(f.name))
        if not files:
            raise DataError(p, None, f"no images in this folder ({', '.join(sorted(IMAGE_SUFFIXES))})")
        kind = "images"
    elif p.suffix.lower() in IMAGE_SUFFIXES:
        files, kind = [p], "image"
    else:
        cap = video_capture(str(p))
        try:
            if not cap.isOpened():
                raise DataError(p, "video", "cannot open the video (corrupt file or unsupported format)")
            ok, first = cap.read()
            if not ok or first is None:
                raise DataError(p, "video", "cannot decode the first frame (corrupt file or unsupported format)")
            h, w = first.shape[:2]
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            rate = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            if n <= 0:  # the container does not say: count by decoding
                n = 1
                while cap.grab():
                    n += 1
        finally:
            cap.release()
        rate = fps or (rate if math.isfinite(rate) and rate > 0 else 30.0)
        return FrameSource(p, "video", n, int(w), int(h), float(rate))
    img = imread(str(files[0]))
    if img is None:
        raise DataError(files[0], "image", "cannot decode the image")
    h, w = img.shape[:2]
    names = tuple(f.name for f in files)
    return FrameSource(p, kind, len(files), int(w), int(h), float(fps or 30.0), tuple(files), names)


def default_intrinsics(width: int, height: int, focal: float | None = None) -> np.ndarray:
    """``[fx, fy, cx, cy]`` px for in-the-wild input: ``focal`` or ``max(width, height)``, centred principal point."""
    f = float(max(width, height)) if focal is None else float(focal)
    if not (math.isfinite(f) and f > 0):
        raise ConfigError(f"focal length must be a positive number of pixels, got {focal}")
    return np.array([f, f, (width - 1) / 2.0, (height - 1) / 2.0], dtype=np.float64)


# ----------------------------------------------------------------------------- checkpoint depth settings
@dataclass(frozen=True)
class DepthSettings:
    """How inference samples descriptors for a checkpoint, and what it records about that."""

    descriptor: DescriptorSpec  # the training set's options, else the paper's defaults
    kind: str  # "metric" | "relative": the depth the encoder was fitted on
    options_from: str  # where the descriptor options come from
    training_depth_model: Any  # the training set's meta["depth_model"] as recorded


def depth_settings(ckpt: Checkpoint) -> DepthSettings:
    """How to sample descriptors for ``ckpt``: the training set's descriptor options (recorded in the
    checkpoint, or in the training PoseSet's ``meta.json`` for older checkpoints), else the paper's
    defaults (linear radius 3-30 px, median/min/max, exact mode)."""
    prov = ckpt.provenance
    if prov.descriptor is not None:
        spec, source = prov.descriptor, prov.recorded_in
    else:
        spec, source = DescriptorSpec(), "default (the training set records no descriptor options)"
    return DepthSettings(spec, ckpt.encoder.depth_kind, source, prov.depth_model)


def _is_hub_id(spec: str) -> bool:
    return not Path(spec).exists() and spec.count("/") == 1 and not spec.startswith((".", "/", "~"))


def _auto_depth_spec(settings: DepthSettings) -> str:
    dm = settings.training_depth_model
    src = str(dm.get("source", "")) if isinstance(dm, Mapping) else ""
    src = src.split("@", 1)[0]
    if src and _is_hub_id(src) and isinstance(dm, Mapping) and dm.get("family") == "depth-anything-v2":
        return src
    return DEFAULT_DEPTH.get(settings.kind, DEFAULT_DEPTH["metric"])


def _load_depth(spec: str, *, device: Any, dtype: str, input_size: int, max_batch: int,
                max_depth: float | None, progress: bool | None) -> Any:
    from auglift.depth.estimators import load_estimator

    if progress is False:
        with contextlib.suppress(ImportError):
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # "Loading weights" bars

    if spec == "oracle" or spec.startswith("oracle:"):
        raise ConfigError("--depth oracle renders the synthetic world's PoseSets only; for videos and images pass a "
                          "Depth Anything V2 directory, an official .pth checkpoint or a hub id")
    try:
        return load_estimator(spec, device=str(device), dtype=dtype, input_size=input_size, max_batch=max_batch,
                              max_depth=max_depth)
    except DataError as exc:
        if _is_hub_id(spec):
            raise DataError(spec, "depth", "cannot load this Depth Anything V2 hub id: it is not in the local "
                                           "Hugging Face cache and the hub cannot be reached (offline?). Pass --depth "
                                           "with a local save_pretrained directory or an official .pth checkpoint "
                                           "(e.g. depth_anything_v2_metric_hypersim_vitl.pth), or --depth none for a "
                                           "checkpoint without depth channels (" + exc.expected.splitlines()[0][:200]
                                           + ")") from None
        raise


# ----------------------------------------------------------------------------- absolute root
def estimate_root(kp3d_rel: np.ndarray, kp2d: np.ndarray, conf: np.ndarray, uadd: np.ndarray,
                  uadd_valid: np.ndarray, intrinsics: np.ndarray, *, min_conf: float = 0.5,
                  offsets: np.ndarray | None = None) -> np.ndarray:
    """Absolute root (pelvis) positions ``(N, 3)`` metres, camera frame, from metric depth descriptors.

    For each joint ``j`` with ``conf >= min_conf`` and a valid, positive descriptor depth ``d_j``:
    the joint is at ``backproject(kp2d_j, d_j + offsets_j)`` (``offsets`` default
    :data:`SURFACE_OFFSET`), so the root is there minus the predicted ``kp3d_rel_j``; the
    per-coordinate median over those joints is the estimate. NaN for frames without such a joint.

    Args:
        kp3d_rel: ``(N, 17, 3)`` root-relative poses, metres.
        kp2d: ``(N, 17, 2)`` px; conf ``(N, 17)``.
        uadd: ``(N, 17, 3)`` descriptors (metres); uadd_valid ``(N, 17)`` bool.
        intrinsics: ``[fx, fy, cx, cy]`` px, ``(4,)`` or ``(N, 4)``.
    """
    from auglift.geometry import backproject

    off = SURFACE_OFFSET if offsets is None else np.asarray(offsets, dtype=np.float64)
    d = np.asarray(uadd, dtype=np.float64)[..., 0]
    kp = np.asarray(kp2d, dtype=np.float64)
    rel = np.asarray(kp3d_rel, dtype=np.float64)
    ok = (np.asarray(uadd_valid, dtype=bool) & np.isfinite(d) & (d > 0) & (np.asarray(conf) >= min_conf)
          & np.isfinite(kp).all(-1) & np.isfinite(rel).all(-1))
    intr = np.broadcast_to(np.asarray(intrinsics, dtype=np.float64), (len(kp), 4))
    pos = backproject(np.nan_to_num(kp), np.where(ok, d, 0.0) + off, intr)  # (N, 17, 3)
    est = np.where(ok[..., None], pos - np.nan_to_num(rel), np.nan)
    out = np.full((len(kp), 3), np.nan)
    has = ok.any(-1)
    if has.any():
        out[has] = np.nanmedian(est[has], axis=1)
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- timing
@dataclass
class _Timer:
    stages: dict[str, dict[str, float]] = field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, stage: str, frames: int = 0) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - t0, frames)

    def add(self, stage: str, seconds: float, frames: int = 0) -> None:
        s = self.stages.setdefault(stage, {"seconds": 0.0, "frames": 0})
        s["seconds"] += seconds
        s["frames"] += frames

    def report(self) -> dict[str, dict[str, float]]:
        return {k: {"frames": int(v["frames"]), "seconds": round(v["seconds"], 4),
                    "fps": round(v["frames"] / v["seconds"], 2) if v["seconds"] > 0 and v["frames"] else None}
                for k, v in self.stages.items()}


def _bar(total: int, desc: str, enabled: bool | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="frame", leave=False, dynamic_ncols=True,
                disable=None if enabled is None else not enabled)


# ----------------------------------------------------------------------------- result
@dataclass
class InferResult:
    """What :func:`infer` produced. Per output row (a frame of a track; rows grouped by track):
    ``kp3d (R, 17, 3)`` root-relative metres, ``root (R, 3)`` metres (NaN without metric depth),
    ``kp2d (R, 17, 2)`` px, ``conf (R, 17)``, ``uadd (R, 17, 3)`` (NaN without depth),
    ``uadd_valid (R, 17)``, ``frame (R,)``, ``track (R,)`` (0 = largest), ``detected (R,)``."""

    out_dir: Path
    npz: Path
    json: Path
    render: Path | None
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]

    @property
    def timings(self) -> dict[str, dict[str, float]]:
        return self.meta["timings"]

    def __getattr__(self, name: str) -> Any:
        arrays = self.__dict__.get("arrays")
        if arrays is not None and name in arrays:
            return arrays[name]
        raise AttributeError(name)

    def __len__(self) -> int:
        return len(self.arrays["frame"])


def _json_array(a: np.ndarray, nd: int = 5) -> Any:
    """Nested lists with NaN -> None (JSON has no NaN), floats rounded to ``nd`` decimals."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        r = np.round(a.astype(np.float64), nd).astype(object)
        r[~np.isfinite(a)] = None
        return r.tolist()
    return a.tolist()


# ----------------------------------------------------------------------------- the run
def infer(
    input: PathLike,
    checkpoint: PathLike | Checkpoint,
    *,
    out_dir: PathLike,
    keypoints: PathLike | None = None,
    keypoint_format: str | None = None,
    joint_set: str | None = None,
    id_scheme: str = "frame",
    keypoint_key: str | None = None,
    min_score: float = 0.0,
    detector: str = "mediapipe",
    depth: Any = "auto",
    depth_dtype: str = "auto",
    depth_input_size: int = 518,
    depth_batch: int = 4,
    depth_every: int = 1,
    max_depth: float | None = None,
    render: PathLike | None = None,
    render_height: int = 480,
    all_tracks: bool = False,
    max_gap: int = 30,
    min_similarity: float = 0.25,
    flip_test: bool | None = None,
    focal: float | None = None,
    fps: float | None = None,
    root_min_conf: float = 0.5,
    device: str = "auto",
    batch_size: int = 0,
    amp: str = "none",
    progress: bool | None = None,
) -> InferResult:
    """Lift a video, an image or a folder of images to 3D poses (see the module doc).

    Args:
        input: video file, image, or folder of images.
        checkpoint: an ``auglift train`` checkpoint (path or :class:`~auglift.checkpoint.Checkpoint`), or an
            ``auglift export`` ``.onnx`` model (its metadata holds the encoding; onnxruntime runs it).
        out_dir: where ``poses3d.npz`` and ``poses3d.json`` go.
        keypoints: a keypoint file (COCO/Halpe/MMPose JSON, ``.npy``/``.npz``); None runs ``detector``.
        keypoint_format, joint_set, id_scheme, keypoint_key, min_score: see :func:`auglift.keypoints2d.read_keypoints`.
        detector: 2D detector without a keypoint file: ``"mediapipe"``.
        depth: ``"auto"`` (the default model when the checkpoint needs depth, else none), ``None``/``"none"``,
            a hub id / ``save_pretrained`` directory / official ``.pth``, or a DepthEstimator.
        depth_dtype, depth_input_size, depth_batch, max_depth: depth-model options (see ``auglift depth``).
        depth_every: run the depth model on every K-th frame (other frames read the nearest map).
        render: ``.mp4``/``.avi``/``.gif`` path for the side-by-side rendering; ``render_height`` px.
        all_tracks: lift every track (default: only the largest).
        max_gap, min_similarity: tracker options (:func:`auglift.tracking.track_instances`).
        flip_test: average with the mirrored input (default: the checkpoint's ``augment.flip_test``).
        focal: focal length px (default ``max(width, height)``); fps: override the input's rate.
        root_min_conf: confidence a joint needs to vote for the absolute root.
        device: ``auto``, ``cpu``, ``cuda``...; batch_size: lifter windows per batch (0 = auto).
        amp: lifter precision, ``"none"`` (float32), ``"bf16"`` or ``"fp16"`` (autocast; bf16 also on CPUs, where
            AVX512-BF16/AMX make it 1.4-1.8x faster for a few mm of difference).
        progress: tqdm bars (None: on a terminal only).

    Returns:
        :class:`InferResult` (arrays, metadata with per-stage frames/s, output paths).
    """
    import torch

    from auglift.depth.estimators import DepthEstimator
    from auglift.encoding import required_fields
    from auglift.predict import lifter_module, open_checkpoint, predict, resolve_device

    timer = _Timer()
    t_start = time.perf_counter()
    ckpt = open_checkpoint(checkpoint)
    onnx_path = ckpt.path if ckpt.onnx else None
    ck_path = ckpt.where
    state = ckpt.encoder
    if ckpt.provenance.joint_set != "h36m17" or ckpt.lifter.num_joints != 17:
        raise DataError(ck_path, "joint_set", "inference lifts H36M-17 keypoints; this lifter was trained on "
                                              f"{ckpt.provenance.joint_set} ({ckpt.lifter.num_joints} joints)")
    needs_depth = "uadd" in required_fields(state)
    if amp not in ("none", "bf16", "fp16"):
        raise ConfigError(f"amp: expected none, bf16 or fp16, got {amp!r}")
    if depth_every < 1 or depth_batch < 1:
        raise ConfigError("depth_every and depth_batch must be >= 1")
    if max_gap < 0 or not 0.0 <= min_similarity <= 1.0 or render_height < 2:
        raise ConfigError("tracking/render options: need max_gap >= 0, 0 <= min_similarity <= 1, render_height >= 2")
    if render is not None and Path(render).suffix.lower() not in (".mp4", ".avi", ".gif"):
        raise ConfigError(f"--render: expected a file ending in .mp4, .avi or .gif, got {render}")
    dev = resolve_device(device)
    settings = depth_settings(ckpt)

    # ---- depth model (resolved first: a missing one is an error before any work)
    est: Any = None
    if isinstance(depth, DepthEstimator):
        est = depth
    elif depth is not None and str(depth).lower() != "none":
        spec = str(depth)
        if spec == "auto":
            spec = _auto_depth_spec(settings) if needs_depth else ""
        if spec:
            with timer("load depth model"):
                est = _load_depth(spec, device=dev, dtype=depth_dtype, input_size=depth_input_size,
                                  max_batch=depth_batch, max_depth=max_depth, progress=progress)
    if needs_depth and est is None:
        raise ConfigError(f"{ck_path}: the checkpoint's input {state['label']!r} ({', '.join(state['channels'])}) "
                          "needs depth descriptors, but no depth model was given; pass --depth (a Depth Anything V2 "
                          "save_pretrained directory, an official .pth checkpoint or a hub id)")
    if needs_depth and est.kind != settings.kind:
        raise ConfigError(f"{ck_path}: the checkpoint was trained on {settings.kind} depth, but the depth model "
                          f"{est.name!r} is {est.kind}; use a {settings.kind} model")
    if est is not None and not est.needs_frames:
        raise ConfigError(f"depth model {est.name!r} does not read images; it cannot describe videos")

    src = open_input(input, fps=fps)
    intr = default_intrinsics(src.width, src.height, focal)
    F = src.num_frames

    # ---- 2D
    from auglift.keypoints2d import Detections, MediaPipePose, read_keypoints

    if keypoints is not None:
        with timer("2D", F):
            det = read_keypoints(keypoints, num_frames=F, frame_names=src.names, fmt=keypoint_format,
                                 joint_set=joint_set, id_scheme=id_scheme, key=keypoint_key, min_score=min_score)
        kp_info: dict[str, Any] = {"source": "file", "path": str(keypoints), "format": det.fmt,
                                   "joint_set": det.joint_set}
    elif detector == "mediapipe":
        kp_l, c_l, f_l = [], [], []
        with MediaPipePose(static_image_mode=src.kind != "video") as mpp, contextlib.closing(src.reader()) as rd, \
                _bar(F, "2D (mediapipe)", progress) as bar:
            for s in range(0, F, 16):
                frames = np.arange(s, min(F, s + 16))
                with timer("decode", len(frames)):
                    imgs = rd.read(frames)
                with timer("2D", len(frames)):
                    kp, c, found = mpp(imgs)
                kp_l.append(kp[found])
                c_l.append(c[found])
                f_l.append(frames[found])
                bar.update(len(frames))
            kp_info = {"source": "mediapipe", **mpp.identity()}
        det = Detections(np.concatenate(f_l), np.concatenate(kp_l), np.concatenate(c_l), "mediapipe33",
                         "mediapipe", "mediapipe")
    else:
        raise ConfigError(f"unknown 2D detector {detector!r}; use 'mediapipe' or pass a keypoint file")
    if len(det) == 0:
        raise DataError(keypoints or src.path, "keypoints", "no person was found in any frame")

    # ---- tracking
    from auglift.tracking import interpolate_track, track_instances

    with timer("tracking", F):
        tr = track_instances(det.frame, det.kp, det.conf, min_similarity=min_similarity, max_gap=max_gap)
    if tr.num_tracks == 0:
        raise DataError(keypoints or src.path, "keypoints", "no detection has a confident keypoint")
    chosen = list(range(tr.num_tracks)) if all_tracks else [0]
    parts = []
    for t in chosen:
        idx = np.flatnonzero(tr.track == t)
        idx = idx[np.argsort(det.frame[idx], kind="stable")]
        parts.append(interpolate_track(det.frame[idx], det.kp[idx], det.conf[idx]))
    frame = np.concatenate([p[0] for p in parts]).astype(np.int64)
    kp2d = np.concatenate([p[1] for p in parts]).astype(np.float32)
    conf = np.concatenate([p[2] for p in parts]).astype(np.float32)
    detected = np.concatenate([p[3] for p in parts])
    track = np.repeat(np.asarray(chosen, dtype=np.int64), [len(p[0]) for p in parts])
    slot = np.repeat(np.arange(len(chosen), dtype=np.int64), [len(p[0]) for p in parts])
    R = len(frame)

    # ---- depth descriptors
    uadd = np.full((R, 17, 3), np.nan, dtype=np.float32)
    uadd_valid = np.zeros((R, 17), dtype=bool)
    if est is not None:
        uadd, uadd_valid = _describe(src, est, frame, kp2d, conf, settings, depth_every, depth_batch, timer,
                                     progress)

    # ---- lifter
    from auglift.poseset import ClipTable, PoseSet

    k = len(chosen)
    clips = ClipTable(subject=[f"track{t}" for t in chosen], action=[src.path.stem] * k, camera=["0"] * k,
                      split=["infer"] * k, width=[src.width] * k, height=[src.height] * k,
                      intrinsics=np.tile(intr, (k, 1)), source=[str(src.path)] * k, fps=[src.fps] * k)
    fields = {"clip": slot.astype(np.int32), "frame": frame.astype(np.int32), "kp2d": kp2d, "conf": conf}
    depth_meta: Any = None
    if est is not None:
        fields |= {"uadd": uadd, "uadd_valid": uadd_valid}
        depth_meta = est.identity() | {"descriptor": _descriptor_dict(settings)}
    ps = PoseSet(fields, clips, {"source": "infer", "depth_model": depth_meta})
    if flip_test is None:
        flip_test = ckpt.config.augment.flip_test
    with timer("load lifter"):
        model = lifter_module(ckpt, dev)
    with timer("lifter", R), torch.inference_mode():
        pred = predict(ckpt, ps, model=model, batch_size=batch_size, flip_test=flip_test, device=dev,
                       amp="none" if onnx_path is not None else amp, progress=bool(progress))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
    kp3d = np.full((R, 17, 3), np.nan, dtype=np.float32)
    kp3d[pred.rows] = pred.pred
    kp3d = kp3d - kp3d[:, :1]  # root-relative: pelvis = 0

    # ---- absolute root
    root_kind = est.kind if est is not None else None
    if root_kind == "metric":
        root = estimate_root(kp3d, kp2d, conf, uadd, uadd_valid, intr, min_conf=root_min_conf)
    else:
        root = np.full((R, 3), np.nan, dtype=np.float32)

    arrays = {"kp3d": kp3d, "root": root, "kp2d": kp2d, "conf": conf, "uadd": uadd, "uadd_valid": uadd_valid,
              "frame": frame.astype(np.int32), "track": track.astype(np.int32), "detected": detected,
              "intrinsics": intr, "image_size": np.array([src.width, src.height], dtype=np.int32),
              "joint_names": np.array(get_joint_set("h36m17").joints)}

    # ---- render
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    render_path = None
    if render is not None:
        render_path = _render(src, Path(render), arrays, slot, len(chosen), render_height, timer, progress)

    # ---- write
    tracks_meta = []
    for i, t in enumerate(chosen):
        rows = np.flatnonzero(slot == i)
        tracks_meta.append({"track": t, "rows": [int(rows[0]), int(rows[-1]) + 1],
                            "first_frame": int(frame[rows[0]]), "last_frame": int(frame[rows[-1]]),
                            "detected_frames": int(detected[rows].sum()), "box_area_sum_px2": float(tr.area[t])})
    timer.add("total", time.perf_counter() - t_start, F)
    meta = {
        "format": FORMAT, "version": 1,
        "input": {"path": str(src.path), "kind": src.kind, "frames": F, "width": src.width, "height": src.height,
                  "fps": src.fps},
        "intrinsics": {"fx_fy_cx_cy": intr.tolist(), "focal_source": "given" if focal is not None else
                       "max(width, height)"},
        "checkpoint": ck_path, "lifter_backend": "onnxruntime" if onnx_path is not None else "pytorch",
        "model": {kk: v for kk, v in ckpt.lifter.to_dict().items()
                  if kk in ("name", "kwargs", "receptive_field", "many_to_many", "anchor")},
        "input_set": state["label"], "channels": list(state["channels"]), "flip_test": bool(flip_test),
        "amp": amp if onnx_path is None else "none",
        "device": str(dev),
        "keypoints": kp_info,
        "tracking": {"tracks_found": tr.num_tracks, "all_tracks": bool(all_tracks), "max_gap": max_gap,
                     "min_similarity": min_similarity},
        "tracks": tracks_meta,
        "depth_model": depth_meta, "depth_every": depth_every if est is not None else None,
        "descriptor_options_from": settings.options_from if est is not None else None,
        "training_depth_model": settings.training_depth_model,
        "root": {"available": root_kind == "metric",
                 "method": "median over confident joints of backproject(kp2d, d + surface offset) - kp3d_rel",
                 "min_conf": root_min_conf, "surface_offset_m": SURFACE_OFFSET.tolist()},
        "units": {"kp3d": "m, root-relative, camera frame (x right, y down, z forward)", "root": "m, camera frame",
                  "kp2d": "px", "uadd": ("m" if root_kind == "metric" else "relative") if est is not None else None},
        "render": None if render_path is None else str(render_path),
        "timings": timer.report(),
    }
    npz_path, json_path = out / "poses3d.npz", out / "poses3d.json"
    with atomic_write(npz_path) as fh:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        fh.write(buf.getvalue())
    doc = dict(meta) | {"arrays": {kk: _json_array(v) for kk, v in arrays.items()
                                   if kk not in ("intrinsics", "image_size", "joint_names")},
                        "joint_names": list(get_joint_set("h36m17").joints)}
    write_json(json_path, doc)
    return InferResult(out, npz_path, json_path, render_path, arrays, meta)


def _descriptor_dict(settings: DepthSettings) -> dict[str, Any]:
    return settings.descriptor.to_dict()


def _describe(src: FrameSource, est: Any, frame: np.ndarray, kp2d: np.ndarray, conf: np.ndarray,
              settings: DepthSettings, every: int, batch: int, timer: _Timer, progress: bool | None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors ``(R, 17, 3)`` / validity ``(R, 17)`` for rows at ``frame (R,)``, depth run on every ``every``-th
    needed frame (others read the nearest one, the earlier on a tie)."""
    import torch

    from auglift.depth.uadd import sample_uadd, to_map_pixels

    needed = np.unique(frame)
    model_frames = needed[::every]
    pos = np.searchsorted(model_frames, frame)  # first model frame >= row frame
    lo = model_frames[np.clip(pos - 1, 0, len(model_frames) - 1)]
    hi = model_frames[np.clip(pos, 0, len(model_frames) - 1)]
    src_frame = np.where((frame - lo) <= (hi - frame), lo, hi)
    src_frame = np.where(np.isin(frame, model_frames), frame, src_frame)
    order = np.argsort(src_frame, kind="stable")
    sf_sorted = src_frame[order]
    R = len(frame)
    uadd = np.full((R, 17, 3), np.nan, dtype=np.float32)
    valid = np.zeros((R, 17), dtype=bool)
    spec = settings.descriptor
    with contextlib.closing(src.reader()) as rd, _bar(len(model_frames), "depth", progress) as bar:
        for s in range(0, len(model_frames), batch):
            fb = model_frames[s: s + batch]
            with timer("decode", len(fb)):
                imgs = rd.read(fb)
            t0 = time.perf_counter()
            maps = est.predict_tensor(imgs)
            a, b = np.searchsorted(sf_sorted, fb[0], "left"), np.searchsorted(sf_sorted, fb[-1], "right")
            rows = order[a:b]
            kp = kp2d[rows]
            h, w = int(maps.shape[1]), int(maps.shape[2])
            scale: Any = 1.0
            if (w, h) != (src.width, src.height):
                kp, scale = to_map_pixels(kp, (src.width, src.height), (w, h))
            mi = np.searchsorted(fb, src_frame[rows])
            dev = maps.device
            res = sample_uadd(maps, torch.from_numpy(np.ascontiguousarray(kp)).to(dev),
                              torch.from_numpy(conf[rows]).to(dev), scale=torch.as_tensor(scale, device=dev),
                              map_index=torch.from_numpy(mi).to(dev), radius=spec.radius, stats=spec.stats,
                              mode=spec.mode, points=spec.points)
            uadd[rows] = res.uadd.cpu().numpy()
            valid[rows] = res.valid.cpu().numpy()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            timer.add("depth", time.perf_counter() - t0, len(fb))
            bar.update(len(fb))
    return uadd, valid


def _render(src: FrameSource, path: Path, arrays: Mapping[str, np.ndarray], slot: np.ndarray, k: int, height: int,
            timer: _Timer, progress: bool | None) -> Path:
    from auglift.render import VideoSink, compose

    F = src.num_frames
    lookup = np.full((k, F), -1, dtype=np.int64)
    lookup[slot, arrays["frame"]] = np.arange(len(slot))
    track = arrays["track"]
    h = int(min(height, src.height))
    h += h % 2
    sink = VideoSink(path, src.fps)
    try:
        with contextlib.closing(src.reader()) as rd, _bar(F, "render", progress) as bar:
            for s in range(0, F, 16):
                frames = np.arange(s, min(F, s + 16))
                with timer("decode", len(frames)):
                    imgs = rd.read(frames)
                t0 = time.perf_counter()
                for img, f in zip(imgs, frames.tolist()):
                    rows = lookup[:, f][lookup[:, f] >= 0]
                    labels = [f"#{int(track[r])}" for r in rows] if k > 1 else None
                    sink.write(compose(img, arrays["kp2d"][rows], arrays["conf"][rows], arrays["kp3d"][rows],
                                       height=h, labels=labels))
                timer.add("render", time.perf_counter() - t0, len(frames))
                bar.update(len(frames))
        t0 = time.perf_counter()
        out = sink.close()
        timer.add("render", time.perf_counter() - t0, 0)
    except BaseException:
        sink.abort()
        raise
    return out
