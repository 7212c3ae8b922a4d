"""The detection run: 2D keypoints for every row of a saved PoseSet, from its clips' frames.

``detect_poseset(poseset_dir, detector)`` decodes each clip's frames (video or image pattern,
the readers of ``auglift depth``: :class:`auglift.chunks.ClipReaders`), runs the
:class:`~auglift.detectors.base.PersonDetector2D` on batches of one clip's frames, keeps the
person of the dataset's track in each frame (IoU with the ground-truth 2D when the PoseSet has
it, :func:`~auglift.detectors.base.poseset_ground_truth_2d`; else the highest mean score) and
writes ``kp2d``, ``conf`` and ``kp2d_valid`` through
:func:`~auglift.datasets.detections.replace_keypoints` (as ``auglift detections import``): ground
truth in ``kp2d`` moves to ``kp2d_gt``, the UADD descriptors sampled at the old keypoints are
dropped, ``meta["extra"]["kp2d_source"]`` becomes ``detect:<detector>:<key>`` and
``meta["extra"]["detections"]`` holds the detector's identity and the counts.

The work is chunked, resumable and shardable by the run machinery of ``auglift depth``
(:mod:`auglift.chunks`, under ``.detect_chunks/<key>/``): the key hashes the detector's
identity (models' SHA-256), ``min_iou``, the chunk size and the PoseSet's rows, clips and
ground truth, so a run resumed after ``kill -9`` gives the result of an uninterrupted one. The
merge writes the fields one at a time (``PoseSet.write_field``), each atomically, and marks
``kp2d_source`` as incomplete until the last one is in place; files in the PoseSet directory
that are not its fields (frames, other runs' chunks) are never touched.

Frames where nobody (or nobody overlapping the ground truth) was found get ``kp2d_valid``
False, NaN keypoints and confidence 0. A missing or unreadable frame, a video shorter than the
PoseSet or a frame of another size stops the run with one line naming the clip and the frame
(the finished chunks are kept); so does a PoseSet in which no frame got a detection (nothing
is written).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from auglift.chunks import ChunkRun, ClipReaders, batches, check_shard, chunk_bounds, clip_label, poseset_fingerprint
from auglift.datasets.detections import DERIVED_FROM_KEYPOINTS, DetectionResult, kp2d_if_ground_truth, replace_keypoints
from auglift.detectors.base import DEFAULT_MIN_IOU, STAGES, PersonDetector2D, poseset_ground_truth_2d
from auglift.errors import ConfigError, DataError
from auglift.poseset import PoseSet

__all__ = ["CHUNK_DIR", "DetectResult", "detect_poseset"]

CHUNK_DIR = ".detect_chunks"
_HASH_BLOCK = 1 << 16  # rows per block when hashing the ground truth


@dataclass
class DetectResult:
    """What a run did: chunk key and counts, rows detected by this call, seconds (total and per
    stage: ``decode`` plus :data:`~auglift.detectors.base.STAGES`), whether the PoseSet now holds
    this run's keypoints, and then its ``meta["extra"]["detections"]`` (``stats``)."""

    path: Path
    key: str
    chunks_total: int
    chunks_done: int
    chunks_skipped: int
    chunks_missing: int
    rows: int
    seconds: float
    merged: bool
    shard: tuple[int, int]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def frames_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def stage_frames_per_s(self) -> dict[str, float]:
        """Frames per second of each stage alone (``rows / stage seconds``)."""
        return {k: self.rows / s for k, s in self.stage_seconds.items() if s > 0}


def _ground_truth_sha(ps: PoseSet, kp2d_is_gt: bool) -> str | None:
    """SHA-256 of the ground-truth 2D (float32) the person choice uses; None without any."""
    h = hashlib.sha256()
    for a in range(0, len(ps), _HASH_BLOCK):
        gt = poseset_ground_truth_2d(ps, np.arange(a, min(a + _HASH_BLOCK, len(ps))), kp2d_is_gt=kp2d_is_gt)
        if gt is None:
            return None
        h.update(np.ascontiguousarray(gt, dtype=np.float32).tobytes())
    return h.hexdigest()


def detect_poseset(
    poseset_dir: str | os.PathLike[str],
    detector: PersonDetector2D,
    *,
    batch_size: int = 8,
    chunk_frames: int = 256,
    shard: tuple[int, int] | None = None,
    min_iou: float = DEFAULT_MIN_IOU,
    merge: bool = True,
    progress: bool | None = None,
) -> DetectResult:
    """Detect 2D keypoints for a saved PoseSet and write its ``kp2d``/``conf``/``kp2d_valid``.

    Args:
        poseset_dir: a saved PoseSet whose clips reference videos or image patterns.
        detector: a :class:`~auglift.detectors.base.PersonDetector2D` (:func:`~auglift.detectors.build_detector`).
        batch_size: frames per detector call (frames of one clip).
        chunk_frames: rows per resumable chunk.
        shard: ``(i, n)``, 0-based; default ``(RANK, WORLD_SIZE)`` under torchrun, else ``(0, 1)``.
        min_iou: the smallest IoU with the ground-truth box that keeps a person (frames with ground truth).
        merge: write into the PoseSet when all chunks exist (after this shard's work).
        progress: a tqdm progress bar: ``None`` on a terminal only, True always, False never.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    check_shard(shard)
    root = Path(poseset_dir)
    ps = PoseSet.load(root)
    kp2d_is_gt = kp2d_if_ground_truth(ps) is not None
    manifest = {"detector": detector.identity(), "min_iou": float(min_iou), "chunk_frames": int(chunk_frames),
                "poseset": poseset_fingerprint(ps, ("clip", "frame")) | {"gt2d": _ground_truth_sha(ps, kp2d_is_gt)}}
    rows = np.arange(len(ps))
    run = ChunkRun.open(root, CHUNK_DIR, manifest, chunk_bounds(rows, chunk_frames), shard)
    readers = ClipReaders(ps, root)
    timings = dict.fromkeys(("decode", *STAGES), 0.0)
    clip, frame = np.asarray(ps.clip), np.asarray(ps.frame, dtype=np.int64)

    def chunk(a: int, b: int, bar: Any) -> dict[str, np.ndarray]:
        out = _no_detections(b - a)
        for batch in batches(rows[a:b], clip, batch_size):
            t0 = time.perf_counter()
            images = readers.get(int(clip[batch[0]])).read(frame[batch])
            timings["decode"] += time.perf_counter() - t0
            res = detector(images, gt_kp2d=poseset_ground_truth_2d(ps, batch, kp2d_is_gt=kp2d_is_gt), min_iou=min_iou)
            for k, v in res.timings.items():
                timings[k] += v
            for name, rows_out in out.items():  # kp2d, conf, valid, people: the Keypoints2D fields of these names
                rows_out[batch - a] = getattr(res, name)
            if bar is not None:
                bar.update(len(batch))
        return out

    try:
        done, skipped, n_rows, seconds = run.compute(chunk, progress=progress, desc="detect")
    finally:
        readers.close()
    missing = len(run.missing())
    stats: dict[str, Any] = {}
    if merge and missing == 0:
        stats = _merge(run, f"detect:{detector.name}:{run.key}",
                       {"detector": manifest["detector"], "min_iou": float(min_iou),
                        "select": "gt-iou" if manifest["poseset"]["gt2d"] else "score"})
    return DetectResult(root, run.key, run.num_chunks, done, skipped, missing, n_rows, seconds, bool(stats),
                        run.shard, {k: v for k, v in timings.items() if v > 0}, stats)


def _no_detections(n: int) -> dict[str, np.ndarray]:
    """The chunk arrays of ``n`` rows without a detection (NaN keypoints, confidence 0, no person)."""
    return {"kp2d": np.full((n, 17, 2), np.nan, np.float32), "conf": np.zeros((n, 17), np.float32),
            "valid": np.zeros(n, bool), "people": np.zeros(n, np.int32)}


def _merge(run: ChunkRun, source: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Assemble the chunks and write the keypoints with ``kp2d_source`` = ``source`` (see the module doc);
    returns the stored stats."""
    with run.lock():
        ps = PoseSet.load(run.root)
        extra = dict(ps.meta.get("extra") or {})
        if extra.get("kp2d_source") == source and ps.has("kp2d_valid"):
            return dict(extra.get("detections") or {})  # another shard merged this run already
        n = len(ps)
        out = run.read(_no_detections(n))
        valid = out["valid"]
        if not valid.any():
            raise DataError(run.kdir, "detections", f"no frame of the PoseSet ({n} frames) received a detection; "
                                                    "nothing written (check the models and the frames)")
        clip = np.asarray(ps.clip)
        empty = np.flatnonzero(np.bincount(clip, weights=valid, minlength=len(ps.clips)) == 0)
        stats = settings | {"frames": n, "frames_with_detection": int(valid.sum()),
                            "frames_without_detection": int(n - valid.sum()),
                            "frames_with_several_people": int((out["people"] > 1).sum()),
                            "clips_without_detection": [clip_label(ps, int(c)) for c in empty[:20]],
                            "joint_set": settings["detector"].get("joint_set", "")}
        new = replace_keypoints(ps, DetectionResult(out["kp2d"], out["conf"], valid, stats), source)
        if extra.get("kp2d_source") == f"{source} (incomplete)":  # an interrupted merge: keep what it did
            first = extra.get("detections") or {}
            new.meta["extra"]["detections"] |= {k: first[k] for k in ("kept_previous_kp2d_as_gt", "dropped_fields")
                                                if k in first}
        _write_in_place(run.root, ps, new, source)
        return dict(new.meta["extra"]["detections"])


def _write_in_place(root: Path, old: PoseSet, new: PoseSet, source: str) -> None:
    """Bring the saved PoseSet ``old`` to ``new``'s fields one atomic step at a time (see the module doc)."""
    if new.kp2d_gt is not None and old.kp2d_gt is None:  # the ground truth first: a crash never loses it
        PoseSet.write_field(root, "kp2d_gt", new.kp2d_gt)
    extra = new.meta["extra"] | {"kp2d_source": f"{source} (incomplete)"}
    PoseSet.drop_fields(root, DERIVED_FROM_KEYPOINTS, {"depth_model": None, "extra": extra})
    PoseSet.write_field(root, "kp2d", new.kp2d)
    PoseSet.write_field(root, "conf", new.conf)
    PoseSet.write_field(root, "kp2d_valid", new.kp2d_valid, {"extra": new.meta["extra"]})
