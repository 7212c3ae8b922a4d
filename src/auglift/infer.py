"""Lift real videos and images to 3D: ``read_2d -> track -> describe -> lift -> root -> write``.

``infer(input, checkpoint, out_dir=...)`` runs the stages of ``auglift infer`` (options:
:class:`InferOptions`):

1. **Input** (:func:`auglift.video.open_input`): a video file (OpenCV), one image, or a folder of
   images (sorted naturally, one frame each; all of one size). A corrupt or unreadable video is a
   :class:`DataError`.
2. **read_2d** (:mod:`auglift.keypoints2d`): a keypoint file (COCO / Halpe / MMPose JSON, ``.npy``
   / ``.npz`` arrays) or MediaPipe Pose, mapped to H36M-17 with confidences.
3. **track** (:mod:`auglift.tracking`): instances -> tracks; the largest track by default, every
   track with ``all_tracks=True``. Frames inside a track without an instance get interpolated
   keypoints (flagged ``detected = False``).
4. **describe**: any :mod:`auglift.depth.estimators` model; the tracks form a PoseSet in memory
   (one clip: the input) that :func:`auglift.depth.extract.describe` samples exactly as
   ``auglift depth`` does, with the descriptor options of the checkpoint's training set
   (:class:`~auglift.checkpoint.Provenance`; the paper's defaults when it records none).
   ``depth_every=K`` runs the depth model on every K-th frame (the others read the nearest such
   frame's map); people in one frame share its map. The model's kind (metric/relative) must be the
   one the encoder was fitted on; a checkpoint whose input needs depth and no depth model is an
   error before any work starts.
5. **lift**: the checkpoint's lifter and encoder through :class:`auglift.lifter.Lifter`
   (sliding windows with edge padding, one clip per track; many-to-many lifters read
   consecutive clips; optional flip test). Output poses are root-relative (pelvis = 0), metres.
6. **root** (metric depth only, :func:`estimate_root`): every confident joint with a
   valid descriptor is back-projected at its descriptor depth plus a body-surface offset
   (the joint lies about half a limb's thickness behind the surface the depth model sees,
   :data:`SURFACE_OFFSET`), the predicted root-relative offset is subtracted, and the median
   over joints is the root. Intrinsics: ``focal`` px, or ``max(width, height)`` when not
   given (a ~53 degree field of view across the long side: Human3.6M's 1145 px on 1000 px
   frames and 3DPW's 1960 px on 1920 px ones are within 15 %), principal point at the
   image centre ``((W - 1) / 2, (H - 1) / 2)``. The root depth does not depend on the focal
   length; its x and y scale with ``1 / focal``.
7. **write** into ``out_dir``: ``poses3d.npz`` (NumPy arrays, no pickle) and ``poses3d.json``
   (the same plus metadata), and with ``render`` a video/GIF of the frame with its 2D skeleton
   next to the 3D skeleton (:mod:`auglift.render`).

Every stage is timed; :attr:`InferResult.timings` holds frames/s per stage (decode, 2D,
tracking, depth, lifter, render).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from auglift.checkpoint import Checkpoint
from auglift.depth.estimators import DepthEstimator, load_estimator
from auglift.depth.extract import describe as describe_poseset
from auglift.depth.uadd import PAPER_DESCRIPTOR, DescriptorSpec
from auglift.encoding import required_fields
from auglift.errors import ConfigError, DataError, short
from auglift.geometry import backproject
from auglift.hub import is_hub_id
from auglift.io import PathLike, atomic_write, check_output_dir, tqdm_disable, write_json
from auglift.keypoints2d import Detections, MediaPipePose, read_keypoints
from auglift.lifter import Lifter, open_any
from auglift.outputs import claim, writing
from auglift.poseset import ClipTable, PoseSet, default_intrinsics
from auglift.predict import resolve_device
from auglift.render import VideoSink, compose
from auglift.skeleton import get_joint_set
from auglift.tracking import TrackResult, interpolate_track, track_instances
from auglift.video import FrameReader, FrameSource, open_input

__all__ = [
    "DEFAULT_DEPTH",
    "SURFACE_OFFSET",
    "DepthSettings",
    "InferOptions",
    "InferResult",
    "Tracks",
    "default_intrinsics",
    "depth_model",
    "depth_settings",
    "describe",
    "estimate_root",
    "infer",
    "lift",
    "read_2d",
    "render",
    "track",
    "write",
]

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


# ----------------------------------------------------------------------------- options and settings
@dataclass(frozen=True)
class InferOptions:
    """The options of :func:`infer` (``auglift infer``'s flags), checked when built.

    * 2D: ``keypoints`` (a keypoint file: COCO/Halpe/MMPose JSON, ``.npy``/``.npz``; None runs
      ``detector``, ``"mediapipe"``); ``keypoint_format``, ``joint_set``, ``id_scheme``,
      ``keypoint_key``, ``min_score``: see :func:`auglift.keypoints2d.read_keypoints`.
    * depth: ``depth`` (``"auto"``: the default model when the checkpoint needs depth, else none;
      None/``"none"``; a hub id / ``save_pretrained`` directory / official ``.pth``; or a
      DepthEstimator), ``depth_dtype``, ``depth_input_size``, ``depth_batch``, ``max_depth`` (see
      ``auglift depth``), ``depth_every`` (run the depth model on every K-th frame).
    * tracking: ``all_tracks`` (lift every track; default only the largest), ``max_gap``,
      ``min_similarity`` (:func:`auglift.tracking.track_instances`).
    * lifter: ``flip_test`` (default: the checkpoint's ``augment.flip_test``), ``device``,
      ``batch_size`` (windows per batch, 0 = auto), ``amp`` (``"none"``, ``"bf16"``, ``"fp16"``:
      autocast; bf16 also on CPUs, where AVX512-BF16/AMX make it 1.4-1.8x faster for a few mm).
    * camera and root: ``focal`` px (default ``max(width, height)``), ``fps`` (override the
      input's rate), ``root_min_conf`` (the confidence a joint needs to vote for the root).
    * output: ``render`` (``.mp4``/``.avi``/``.gif`` side-by-side rendering, ``render_height`` px),
      ``progress`` (tqdm bars; None: on a terminal only), ``overwrite`` (replace outputs auglift did
      not write: :mod:`auglift.outputs`).
    """

    keypoints: PathLike | None = None
    keypoint_format: str | None = None
    joint_set: str | None = None
    id_scheme: str = "frame"
    keypoint_key: str | None = None
    min_score: float = 0.0
    detector: str = "mediapipe"
    depth: Any = "auto"
    depth_dtype: str = "auto"
    depth_input_size: int = 518
    depth_batch: int = 4
    depth_every: int = 1
    max_depth: float | None = None
    render: PathLike | None = None
    render_height: int = 480
    all_tracks: bool = False
    max_gap: int = 30
    min_similarity: float = 0.25
    flip_test: bool | None = None
    focal: float | None = None
    fps: float | None = None
    root_min_conf: float = 0.5
    device: str = "auto"
    batch_size: int = 0
    amp: str = "none"
    progress: bool | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.amp not in ("none", "bf16", "fp16"):
            raise ConfigError(f"amp: expected none, bf16 or fp16, got {self.amp!r}")
        if self.depth_every < 1 or self.depth_batch < 1:
            raise ConfigError("depth_every and depth_batch must be >= 1")
        if self.max_gap < 0 or not 0.0 <= self.min_similarity <= 1.0 or self.render_height < 2:
            raise ConfigError("tracking/render options: need max_gap >= 0, 0 <= min_similarity <= 1, "
                              "render_height >= 2")
        if self.render is not None and Path(self.render).suffix.lower() not in (".mp4", ".avi", ".gif"):
            raise ConfigError(f"--render: expected a file ending in .mp4, .avi or .gif, got {self.render}")


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
        spec, source = PAPER_DESCRIPTOR, "default (the training set records no descriptor options)"
    return DepthSettings(spec, ckpt.encoder.depth_kind, source, prov.depth_model)


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

    def seconds(self, stage: str) -> float:
        return self.stages.get(stage, {}).get("seconds", 0.0)

    def report(self) -> dict[str, dict[str, float]]:
        return {k: {"frames": int(v["frames"]), "seconds": round(v["seconds"], 4),
                    "fps": round(v["frames"] / v["seconds"], 2) if v["seconds"] > 0 and v["frames"] else None}
                for k, v in self.stages.items()}


class _TimedReader(FrameReader):
    """A frame reader whose reads count as the ``decode`` stage."""

    def __init__(self, reader: FrameReader, timer: _Timer):
        super().__init__(reader.source, reader.label, reader.size)
        self.reader, self.timer = reader, timer

    def read(self, frames: np.ndarray) -> np.ndarray:
        with self.timer("decode", len(frames)):
            return self.reader.read(frames)

    def close(self) -> None:
        self.reader.close()


def _frame_batches(src: FrameSource, timer: _Timer, desc: str, progress: bool | None
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(frame indices (n,), RGB images (n, H, W, 3))`` of every input frame, 16 at a time (decoding timed)."""
    with contextlib.closing(_TimedReader(src.reader(), timer)) as rd, \
            tqdm(total=src.num_frames, desc=desc, unit="frame", leave=False, dynamic_ncols=True,
                 disable=tqdm_disable(progress)) as bar:
        for s in range(0, src.num_frames, 16):
            frames = np.arange(s, min(src.num_frames, s + 16))
            yield frames, rd.read(frames)
            bar.update(len(frames))


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


@dataclass(frozen=True)
class Tracks:
    """The people to lift, one row per frame of a chosen track (rows grouped by track, frames ascending):
    ``frame (R,)``, ``kp2d (R, 17, 2)`` px, ``conf (R, 17)``, ``detected (R,)`` (False: interpolated),
    ``track (R,)`` (the track's rank, 0 = largest), ``slot (R,)`` (its index among ``chosen``)."""

    frame: np.ndarray
    kp2d: np.ndarray
    conf: np.ndarray
    detected: np.ndarray
    track: np.ndarray
    slot: np.ndarray
    chosen: tuple[int, ...]
    found: TrackResult

    def __len__(self) -> int:
        return len(self.frame)


# ----------------------------------------------------------------------------- the run
def infer(input: PathLike, checkpoint: PathLike | Checkpoint, *, out_dir: PathLike, **options: Any) -> InferResult:
    """Lift a video, an image or a folder of images to 3D poses (see the module doc).

    ``checkpoint``: an ``auglift train`` checkpoint (path or :class:`~auglift.checkpoint.Checkpoint`),
    an ``auglift export`` ``.onnx`` model (its metadata holds the encoding; onnxruntime runs it) or a
    ``save_pretrained`` directory / hub id (:func:`auglift.lifter.open_any`).
    ``out_dir``: where ``poses3d.npz`` and ``poses3d.json`` go. ``options``: the fields of
    :class:`InferOptions`. Returns :class:`InferResult` (arrays, metadata with per-stage frames/s,
    output paths).
    """
    opts = InferOptions(**options)
    if opts.render is not None:
        claim(opts.render, "render", overwrite=opts.overwrite)
        check_output_dir(Path(opts.render).parent)
    with writing(out_dir, "infer", overwrite=opts.overwrite, lock=False) as out:
        return _infer(input, checkpoint, out, opts)


def _infer(input: PathLike, checkpoint: PathLike | Checkpoint, out: Path, opts: InferOptions) -> InferResult:
    timer, t_start = _Timer(), time.perf_counter()
    ckpt = open_any(checkpoint)
    if ckpt.provenance.joint_set != "h36m17" or ckpt.lifter.num_joints != 17:
        raise DataError(ckpt.where, "joint_set", "inference lifts H36M-17 keypoints; this lifter was trained on "
                                                 f"{ckpt.provenance.joint_set} ({ckpt.lifter.num_joints} joints)")
    if opts.flip_test is None:  # as the checkpoint was validated
        opts = dataclasses.replace(opts, flip_test=ckpt.config.augment.flip_test)
    dev = resolve_device(opts.device)
    settings = depth_settings(ckpt)
    est = depth_model(ckpt, settings, opts, dev, timer)  # first: a missing model is an error before any work
    depth_meta = None if est is None else est.identity() | {"descriptor": settings.descriptor.to_dict()}
    src = open_input(input, fps=opts.fps)
    intr = default_intrinsics(src.width, src.height, opts.focal)
    det, kp_info = read_2d(src, opts, timer)
    tracks = track(det, src, opts, timer)
    uadd, uadd_valid = describe(src, intr, tracks, est, settings.descriptor, opts, timer)
    kp3d = lift(ckpt, src, intr, tracks, uadd, uadd_valid, depth_meta, opts, dev, timer)
    if est is not None and est.kind == "metric":
        root = estimate_root(kp3d, tracks.kp2d, tracks.conf, uadd, uadd_valid, intr, min_conf=opts.root_min_conf)
    else:
        root = np.full((len(tracks), 3), np.nan, dtype=np.float32)
    arrays = {"kp3d": kp3d, "root": root, "kp2d": tracks.kp2d, "conf": tracks.conf, "uadd": uadd,
              "uadd_valid": uadd_valid, "frame": tracks.frame.astype(np.int32), "track": tracks.track.astype(np.int32),
              "detected": tracks.detected, "intrinsics": intr,
              "image_size": np.array([src.width, src.height], dtype=np.int32),
              "joint_names": np.array(get_joint_set("h36m17").joints)}
    render_path = None if opts.render is None else render(src, Path(opts.render), arrays, tracks, opts, timer)
    timer.add("total", time.perf_counter() - t_start, src.num_frames)
    meta = _metadata(ckpt, src, intr, tracks, est, depth_meta, settings, kp_info, opts, dev, render_path)
    return write(out, arrays, meta | {"timings": timer.report()}, render_path)


def depth_model(ckpt: Checkpoint, settings: DepthSettings, opts: InferOptions, device: torch.device,
                timer: _Timer) -> DepthEstimator | None:
    """The depth model ``opts.depth`` names (``"auto"``: the checkpoint's, when its input needs depth), checked
    against the checkpoint: one is needed for depth channels, and of the kind the encoder was fitted on."""
    needs_depth = "uadd" in required_fields(ckpt.encoder)
    est: DepthEstimator | None = None
    if isinstance(opts.depth, DepthEstimator):
        est = opts.depth
    elif opts.depth is not None and str(opts.depth).lower() != "none":
        spec = str(opts.depth)
        if spec == "auto":
            spec = _auto_depth_spec(settings) if needs_depth else ""
        if spec:
            with timer("load depth model"):
                est = _load_depth(spec, device=device, opts=opts)
    state = ckpt.encoder
    if needs_depth and est is None:
        raise ConfigError(f"{ckpt.where}: the checkpoint's input {state.label!r} ({', '.join(state.channels)}) "
                          "needs depth descriptors, but no depth model was given; pass --depth (a Depth Anything V2 "
                          "save_pretrained directory, an official .pth checkpoint or a hub id)")
    if needs_depth and est is not None and est.kind != settings.kind:
        raise ConfigError(f"{ckpt.where}: the checkpoint was trained on {settings.kind} depth, but the depth model "
                          f"{est.name!r} is {est.kind}; use a {settings.kind} model")
    if est is not None and not est.needs_frames:
        raise ConfigError(f"depth model {est.name!r} does not read images; it cannot describe videos")
    return est


def _auto_depth_spec(settings: DepthSettings) -> str:
    dm = settings.training_depth_model
    src = str(dm.get("source", "")).split("@", 1)[0] if isinstance(dm, Mapping) else ""
    if src and is_hub_id(src) and dm.get("family") == "depth-anything-v2":
        return src
    return DEFAULT_DEPTH.get(settings.kind, DEFAULT_DEPTH["metric"])


def _load_depth(spec: str, *, device: torch.device, opts: InferOptions) -> DepthEstimator:
    if opts.progress is False:
        with contextlib.suppress(ImportError):
            from transformers.utils import logging as hf_logging  # optional (the "depth" extra)

            hf_logging.disable_progress_bar()  # "Loading weights" bars
    if spec == "oracle" or spec.startswith("oracle:"):
        raise ConfigError("--depth oracle renders the synthetic world's PoseSets only; for videos and images pass a "
                          "Depth Anything V2 directory, an official .pth checkpoint or a hub id")
    try:
        return load_estimator(spec, device=str(device), dtype=opts.depth_dtype, input_size=opts.depth_input_size,
                              max_batch=opts.depth_batch, max_depth=opts.max_depth)
    except DataError as exc:
        if is_hub_id(spec):
            why = short(exc.expected, 200, quote=False)
            raise DataError(spec, "depth", f"cannot load this Depth Anything V2 hub id ({why}); pass --depth with "
                                           "a local save_pretrained directory or an official .pth checkpoint (e.g. "
                                           "depth_anything_v2_metric_hypersim_vitl.pth), or --depth none for a "
                                           "checkpoint without depth channels") from None
        raise


def read_2d(src: FrameSource, opts: InferOptions, timer: _Timer) -> tuple[Detections, dict[str, Any]]:
    """The 2D instances of the input (from ``opts.keypoints``, or MediaPipe) and where they came from."""
    n = src.num_frames
    if opts.keypoints is not None:
        with timer("2D", n):
            det = read_keypoints(opts.keypoints, num_frames=n, frame_names=src.names, fmt=opts.keypoint_format,
                                 joint_set=opts.joint_set, id_scheme=opts.id_scheme, key=opts.keypoint_key,
                                 min_score=opts.min_score)
        info: dict[str, Any] = {"source": "file", "path": str(opts.keypoints), "format": det.fmt,
                                "joint_set": det.joint_set}
    elif opts.detector == "mediapipe":
        parts = []  # (frames, keypoints, confidences) of the people found, per batch
        with MediaPipePose(static_image_mode=src.kind != "video") as mpp:
            for frames, imgs in _frame_batches(src, timer, "2D (mediapipe)", opts.progress):
                with timer("2D", len(frames)):
                    kp, c, found = mpp(imgs)
                parts.append((frames[found], kp[found], c[found]))
            info = {"source": "mediapipe", **mpp.identity()}
        det = Detections(*(np.concatenate(a) for a in zip(*parts)), "mediapipe33", "mediapipe", "mediapipe")
    else:
        raise ConfigError(f"unknown 2D detector {opts.detector!r}; use 'mediapipe' or pass a keypoint file")
    if len(det) == 0:
        raise DataError(opts.keypoints or src.path, "keypoints", "no person was found in any frame")
    return det, info


def track(det: Detections, src: FrameSource, opts: InferOptions, timer: _Timer) -> Tracks:
    """Link instances into tracks and keep the largest (or all): one row per frame of a kept track."""
    with timer("tracking", src.num_frames):
        found = track_instances(det.frame, det.kp, det.conf, min_similarity=opts.min_similarity,
                                max_gap=opts.max_gap)
    if found.num_tracks == 0:
        raise DataError(opts.keypoints or src.path, "keypoints", "no detection has a confident keypoint")
    chosen = tuple(range(found.num_tracks)) if opts.all_tracks else (0,)
    parts = []
    for t in chosen:
        idx = np.flatnonzero(found.track == t)
        idx = idx[np.argsort(det.frame[idx], kind="stable")]
        parts.append(interpolate_track(det.frame[idx], det.kp[idx], det.conf[idx]))
    frame, kp, conf, detected = (np.concatenate(a) for a in zip(*parts))
    sizes = [len(p[0]) for p in parts]
    return Tracks(frame.astype(np.int64), kp.astype(np.float32), conf.astype(np.float32), detected,
                  np.repeat(np.asarray(chosen, dtype=np.int64), sizes),
                  np.repeat(np.arange(len(chosen), dtype=np.int64), sizes), chosen, found)


def describe(src: FrameSource, intr: np.ndarray, tracks: Tracks, est: DepthEstimator | None, spec: DescriptorSpec,
             opts: InferOptions, timer: _Timer) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors ``(R, 17, 3)`` and validity ``(R, 17)`` of the tracks' rows (NaN / False without a depth
    model): the rows form a one-clip PoseSet, ordered by frame, that the extraction code describes."""
    r = len(tracks)
    if est is None:
        return np.full((r, 17, 3), np.nan, dtype=np.float32), np.zeros((r, 17), dtype=bool)
    order = np.lexsort((tracks.slot, tracks.frame))  # by frame: people of one frame share its depth map
    ps = PoseSet({"clip": np.zeros(r, np.int32), "frame": tracks.frame[order].astype(np.int32),
                  "kp2d": tracks.kp2d[order], "conf": tracks.conf[order]}, _clips(src, intr, ["input"]),
                 {"source": "infer"})
    t0, decoded = time.perf_counter(), timer.seconds("decode")
    with contextlib.closing(_TimedReader(src.reader(), timer)) as rd:
        got, valid, maps = describe_poseset(ps, est, descriptor=spec, every=opts.depth_every,
                                            batch_size=opts.depth_batch, reader_for=lambda _clip: rd,
                                            progress=opts.progress)
    timer.add("depth", time.perf_counter() - t0 - (timer.seconds("decode") - decoded), maps)
    uadd, uadd_valid = np.empty_like(got), np.empty_like(valid)
    uadd[order], uadd_valid[order] = got, valid
    return uadd, uadd_valid


def _clips(src: FrameSource, intr: np.ndarray, subjects: list[str]) -> ClipTable:
    """A clip table of one clip per subject, each the whole input with intrinsics ``intr``."""
    k = len(subjects)
    return ClipTable(subject=subjects, action=[src.path.stem] * k, camera=["0"] * k, split=["infer"] * k,
                     width=[src.width] * k, height=[src.height] * k, intrinsics=np.tile(intr, (k, 1)),
                     source=[str(src.path)] * k, fps=[src.fps] * k)


def lift(ckpt: Checkpoint, src: FrameSource, intr: np.ndarray, tracks: Tracks, uadd: np.ndarray,
         uadd_valid: np.ndarray, depth_meta: dict[str, Any] | None, opts: InferOptions, device: torch.device,
         timer: _Timer) -> np.ndarray:
    """Root-relative 3D poses ``(R, 17, 3)`` metres of the tracks' rows (one clip per track; ``depth_meta``:
    the depth model and descriptor options, None without depth)."""
    r = len(tracks)
    clips = _clips(src, intr, [f"track{t}" for t in tracks.chosen])
    fields = {"clip": tracks.slot.astype(np.int32), "frame": tracks.frame.astype(np.int32), "kp2d": tracks.kp2d,
              "conf": tracks.conf}
    if depth_meta is not None:
        fields |= {"uadd": uadd, "uadd_valid": uadd_valid}
    ps = PoseSet(fields, clips, {"source": "infer", "depth_model": depth_meta})
    with timer("load lifter"):
        lifter = Lifter.from_checkpoint(ckpt, device=device, flip_test=bool(opts.flip_test),
                                        batch_size=opts.batch_size, amp=opts.amp)
    with timer("lifter", r):
        pred = lifter.predict_poseset(ps, progress=bool(opts.progress))  # numpy: the device work is done
    kp3d = np.full((r, 17, 3), np.nan, dtype=np.float32)
    kp3d[pred.rows] = pred.pred
    return kp3d - kp3d[:, :1]  # root-relative: pelvis = 0


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
    out[has] = np.nanmedian(est[has], axis=1)  # (no frame has a joint: an empty assignment)
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- outputs
def render(src: FrameSource, path: Path, arrays: Mapping[str, np.ndarray], tracks: Tracks, opts: InferOptions,
           timer: _Timer) -> Path:
    """Every input frame with its tracks' 2D skeletons beside their 3D poses, written to ``path``."""
    n, k = src.num_frames, len(tracks.chosen)
    lookup = np.full((k, n), -1, dtype=np.int64)
    lookup[tracks.slot, tracks.frame] = np.arange(len(tracks))
    h = int(min(opts.render_height, src.height))
    h += h % 2
    sink = VideoSink(path, src.fps)
    try:
        for frames, imgs in _frame_batches(src, timer, "render", opts.progress):
            with timer("render", len(frames)):  # (decoding is timed apart, in _frame_batches)
                for img, f in zip(imgs, frames.tolist()):
                    rows = lookup[:, f][lookup[:, f] >= 0]
                    labels = [f"#{int(tracks.track[r])}" for r in rows] if k > 1 else None
                    sink.write(compose(img, arrays["kp2d"][rows], arrays["conf"][rows], arrays["kp3d"][rows],
                                       height=h, labels=labels))
        with timer("render"):
            return sink.close()
    except BaseException:
        sink.abort()
        raise


def _metadata(ckpt: Checkpoint, src: FrameSource, intr: np.ndarray, tracks: Tracks, est: DepthEstimator | None,
              depth_meta: dict[str, Any] | None, settings: DepthSettings, kp_info: dict[str, Any],
              opts: InferOptions, device: torch.device, render_path: Path | None) -> dict[str, Any]:
    """``poses3d.json``'s description of the run (everything but the arrays and the timings)."""
    metric = est is not None and est.kind == "metric"
    tracks_meta = []
    for i, t in enumerate(tracks.chosen):
        rows = np.flatnonzero(tracks.slot == i)
        tracks_meta.append({"track": t, "rows": [int(rows[0]), int(rows[-1]) + 1],
                            "first_frame": int(tracks.frame[rows[0]]), "last_frame": int(tracks.frame[rows[-1]]),
                            "detected_frames": int(tracks.detected[rows].sum()),
                            "box_area_sum_px2": float(tracks.found.area[t])})
    return {
        "format": FORMAT, "version": 1,
        "input": {"path": str(src.path), "kind": src.kind, "frames": src.num_frames, "width": src.width,
                  "height": src.height, "fps": src.fps},
        "intrinsics": {"fx_fy_cx_cy": intr.tolist(), "focal_source": "given" if opts.focal is not None else
                       "max(width, height)"},
        "checkpoint": ckpt.where, "lifter_backend": "onnxruntime" if ckpt.onnx else "pytorch",
        "model": {k: v for k, v in ckpt.lifter.to_dict().items()
                  if k in ("name", "kwargs", "receptive_field", "many_to_many", "anchor")},
        "input_set": ckpt.encoder.label, "channels": list(ckpt.encoder.channels),
        "flip_test": bool(opts.flip_test),
        "amp": "none" if ckpt.onnx else opts.amp, "device": str(device), "keypoints": kp_info,
        "tracking": {"tracks_found": tracks.found.num_tracks, "all_tracks": bool(opts.all_tracks),
                     "max_gap": opts.max_gap, "min_similarity": opts.min_similarity},
        "tracks": tracks_meta,
        "depth_model": depth_meta,
        "depth_every": opts.depth_every if est is not None else None,
        "descriptor_options_from": settings.options_from if est is not None else None,
        "training_depth_model": settings.training_depth_model,
        "root": {"available": metric,
                 "method": "median over confident joints of backproject(kp2d, d + surface offset) - kp3d_rel",
                 "min_conf": opts.root_min_conf, "surface_offset_m": SURFACE_OFFSET.tolist()},
        "units": {"kp3d": "m, root-relative, camera frame (x right, y down, z forward)", "root": "m, camera frame",
                  "kp2d": "px", "uadd": ("m" if metric else "relative") if est is not None else None},
        "render": None if render_path is None else str(render_path),
    }


def write(out: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any], render_path: Path | None) -> InferResult:
    """``poses3d.npz`` (the arrays) and ``poses3d.json`` (metadata and arrays as lists, NaN -> null), atomically."""
    npz_path, json_path = out / "poses3d.npz", out / "poses3d.json"
    with atomic_write(npz_path, "wb") as fh:
        np.savez(fh, **arrays)
    doc = dict(meta) | {"arrays": {k: _json_array(v) for k, v in arrays.items()
                                   if k not in ("intrinsics", "image_size", "joint_names")},
                        "joint_names": list(get_joint_set("h36m17").joints)}
    write_json(json_path, doc)
    return InferResult(out, npz_path, json_path, render_path, arrays, meta)


def _json_array(a: np.ndarray, nd: int = 5) -> Any:
    """Nested lists with NaN -> None (JSON has no NaN), floats rounded to ``nd`` decimals."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        r = np.round(a.astype(np.float64), nd).astype(object)
        r[~np.isfinite(a)] = None
        return r.tolist()
    return a.tolist()
