"""The extraction run: depth for every frame of a PoseSet, sampled into UADD descriptors at once.

``extract_uadd(poseset_dir, estimator)`` decodes the frames of each clip (video or image
pattern, :mod:`auglift.video`; the oracle estimator renders ``synthetic:`` clips
instead), runs the depth model in batches, samples the descriptors immediately
(:class:`~auglift.depth.uadd.DescriptorSpec`, on the model's device) and keeps only them; full depth
maps are written only with ``save_maps=True``. It then writes the PoseSet's ``uadd`` and
``uadd_valid`` fields (``PoseSet.write_field``) and ``meta["depth_model"]`` = the estimator's
identity plus the descriptor options. :func:`describe` does the same for an in-memory PoseSet
(``auglift infer``'s tracks) and returns the descriptors.

Work layout (all under the PoseSet directory; the run machinery of :mod:`auglift.chunks`)::

    .depth_chunks/<key>/manifest.json          what the key hashes: estimator identity, descriptor
                                               options, every, chunk size, PoseSet fingerprint
    .depth_chunks/<key>/chunk-000012.npz       uadd (n, J, 3), valid (n, J), rows [start, stop)
    .depth_chunks/<key>/maps/chunk-000012.npz  depth maps (save_maps=True only), float16
    .depth_chunks/<key>/merge.lock             serialises the merge step

* **Chunks** are fixed row ranges (``chunk_frames`` rows, boundaries moved back to the start
  of an ``every`` group), independent of sharding. Each is written atomically when complete;
  a restarted run (after ``kill -9``, an error, a full disk) skips the chunks that exist, so
  the result equals an uninterrupted run.
* **Shards**: ``shard=(i, n)`` processes the i-th of n contiguous ranges of chunks; under
  ``torchrun`` the shard defaults to ``(RANK, WORLD_SIZE)``. Any shard that finds all chunks
  present merges them (under a file lock; a second merger finds the work done). ``merge_uadd``
  runs the merge alone.
* **Subsampling** ``every=K``: the depth model runs on every K-th frame of each clip (positions
  0, K, 2K, ... among the clip's frames). Every row is still described, with its *own* keypoints
  and confidences, on the depth map of the nearest sampled frame of its clip (ties go to the
  earlier one); ``meta["depth_model"]["every"]`` records K, and a row is a depth-model row exactly
  when its position in its clip is a multiple of K. Rows of one clip that show the same frame
  (several people in an ``auglift infer`` input) share its depth map.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from auglift.chunks import (
    ChunkRun,
    ClipReaders,
    batches,
    check_shard,
    chunk_bounds,
    clip_label,
    poseset_fingerprint,
    progress_bar,
    shard_from_env,
)
from auglift.depth.estimators import DepthEstimator
from auglift.depth.uadd import DescriptorSpec, to_map_pixels
from auglift.errors import ConfigError, DataError
from auglift.io import atomic_write, read_json
from auglift.poseset import PoseSet
from auglift.video import FrameReader

__all__ = ["ExtractResult", "chunk_bounds", "depth_source_rows", "describe", "extract_uadd", "merge_uadd", "run_key",
           "shard_from_env"]

# The frame reader of a clip (by clip index).
ReaderFor = Callable[[int], FrameReader]

CHUNK_DIR = ".depth_chunks"


@dataclass
class ExtractResult:
    """What a run did: the chunk key, chunk counts, rows processed, time, and whether it merged."""

    path: Path
    key: str
    chunks_total: int
    chunks_done: int  # computed by this call
    chunks_skipped: int  # already present
    chunks_missing: int  # still absent after this call (other shards)
    rows: int  # rows described by this call
    maps: int  # depth maps estimated by this call
    seconds: float
    merged: bool  # the PoseSet now holds this run's descriptors
    shard: tuple[int, int]
    depth_model: dict[str, Any] = field(default_factory=dict)

    @property
    def frames_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


# ----------------------------------------------------------------------------- planning
def depth_source_rows(ps: PoseSet, every: int) -> np.ndarray:
    """``(N,)`` int64: the row whose depth map describes each row (itself when ``every == 1`` and no
    two rows of a clip show the same frame).

    Within each clip, the frames at positions ``0, every, 2 every, ...`` (counting each frame once)
    are depth-model frames; the others use the nearest one in the same clip (the earlier on a tie).
    A frame's depth map is the one of its first row.
    """
    if every < 1:
        raise ConfigError(f"every must be >= 1, got {every}")
    n = len(ps)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    clip = np.asarray(ps.clip, dtype=np.int64)
    frame = np.asarray(ps.frame, dtype=np.int64)
    first = np.ones(n, dtype=bool)  # the row starts a new (clip, frame)
    first[1:] = (clip[1:] != clip[:-1]) | (frame[1:] != frame[:-1])
    group = np.cumsum(first) - 1  # the row's frame, counted over all clips
    starts = np.flatnonzero(first)
    if every == 1:
        return starts[group]
    cr = ps.clip_ranges
    g0, g1 = group[cr[clip, 0]], group[cr[clip, 1] - 1] + 1  # the clip's frames: [g0, g1)
    pos = group - g0
    lo = (pos // every) * every
    hi = lo + every
    use_hi = (g0 + hi < g1) & (hi - pos < pos - lo)
    return starts[g0 + np.where(use_hi, hi, lo)]


def _fingerprint(ps: PoseSet) -> dict[str, Any]:
    """What identifies the PoseSet's inputs to the descriptors (checksums from meta.json)."""
    return poseset_fingerprint(ps, ("clip", "frame", "kp2d", "conf"))


def _manifest(ps: PoseSet, estimator: DepthEstimator, desc: dict[str, Any], every: int,
              chunk_frames: int) -> dict[str, Any]:
    return {"estimator": estimator.identity(), "descriptor": desc, "every": int(every),
            "chunk_frames": int(chunk_frames), "poseset": _fingerprint(ps)}


def run_key(poseset_dir: str | os.PathLike[str], estimator: DepthEstimator, *,
            descriptor: DescriptorSpec | None = None, every: int = 1, chunk_frames: int = 256) -> str:
    """The ``.depth_chunks/<key>`` name :func:`extract_uadd` uses for these settings."""
    ps = PoseSet.load(poseset_dir)
    return ChunkRun.key_of(_manifest(ps, estimator, (descriptor or DescriptorSpec()).to_dict(), every, chunk_frames))


# ----------------------------------------------------------------------------- the run
def extract_uadd(
    poseset_dir: str | os.PathLike[str],
    estimator: DepthEstimator,
    *,
    descriptor: DescriptorSpec | None = None,
    batch_size: int = 8,
    chunk_frames: int = 256,
    shard: tuple[int, int] | None = None,
    every: int = 1,
    merge: bool = True,
    save_maps: bool = False,
    progress: bool | None = None,
) -> ExtractResult:
    """Estimate depth for a saved PoseSet and write its ``uadd``/``uadd_valid`` fields.

    Args:
        poseset_dir: a saved PoseSet whose clips reference videos, image patterns or ``synthetic:``.
        estimator: a :class:`~auglift.depth.estimators.DepthEstimator`.
        descriptor: how descriptors are sampled (default: the paper's :class:`~auglift.depth.uadd.DescriptorSpec`).
        batch_size: frames per depth-model batch (frames of one clip).
        chunk_frames: rows per resumable chunk.
        shard: ``(i, n)``, 0-based; default ``(RANK, WORLD_SIZE)`` under torchrun, else ``(0, 1)``.
        every: run the depth model on every ``every``-th row of each clip (see the module docstring).
        merge: merge into the PoseSet when all chunks exist (after this shard's work).
        save_maps: also keep the estimated depth maps (float16) next to the chunks.
        progress: a tqdm progress bar with frames/s: ``None`` on a terminal only, True always, False never.

    Returns:
        :class:`ExtractResult`.
    """
    descriptor = descriptor or DescriptorSpec()
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    check_shard(shard)
    root = Path(poseset_dir)
    ps = PoseSet.load(root)
    desc = descriptor.to_dict()
    src = depth_source_rows(ps, every)
    run = ChunkRun.open(root, CHUNK_DIR, _manifest(ps, estimator, desc, every, chunk_frames),
                        chunk_bounds(src, chunk_frames), shard)
    readers = ClipReaders(ps, root)
    maps_done = 0

    def chunk(a: int, b: int, bar: Any) -> dict[str, np.ndarray]:
        nonlocal maps_done
        c = int(np.searchsorted(run.bounds, a))
        maps = run.kdir / "maps" / run.path(c).name if save_maps else None
        uadd, valid, nmaps = _run_chunk(ps, estimator, readers.get, a, b, src, descriptor, batch_size, maps, bar)
        maps_done += nmaps
        return {"uadd": uadd, "valid": valid}

    try:
        done, skipped, rows, seconds = run.compute(chunk, progress=progress, desc="depth")
    finally:
        readers.close()
    missing = len(run.missing())
    depth_model = estimator.identity() | {"descriptor": desc, "every": int(every), "chunks": run.key}
    merged = bool(merge and missing == 0) and _merge(run, depth_model, estimator.kind)
    return ExtractResult(root, run.key, run.num_chunks, done, skipped, missing, rows, maps_done, seconds,
                         merged, run.shard, depth_model)


def describe(ps: PoseSet, estimator: DepthEstimator, *, descriptor: DescriptorSpec | None = None, every: int = 1,
             batch_size: int = 8, reader_for: ReaderFor | None = None, progress: bool | None = None
             ) -> tuple[np.ndarray, np.ndarray, int]:
    """Descriptors of every row of a PoseSet held in memory, as :func:`extract_uadd` samples them (no files).

    Returns ``uadd (N, J, 3)``, ``uadd_valid (N, J)`` and the number of depth maps estimated.
    ``reader_for(clip)`` gives a clip's frames (default: its clip-table source, as for a saved
    PoseSet); ``every`` subsamples the depth model's frames as in :func:`extract_uadd`.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    src = depth_source_rows(ps, every)
    readers = ClipReaders(ps, ps.path)
    bar = progress_bar(len(ps), progress, "depth")
    try:
        return _run_chunk(ps, estimator, reader_for or readers.get, 0, len(ps), src, descriptor or DescriptorSpec(),
                          batch_size, None, bar)
    finally:
        readers.close()
        if bar is not None:
            bar.close()


def _run_chunk(ps: PoseSet, est: DepthEstimator, reader_for: ReaderFor, a: int, b: int, src: np.ndarray,
               descriptor: DescriptorSpec, batch_size: int, maps_path: Path | None, bar: Any
               ) -> tuple[np.ndarray, np.ndarray, int]:
    """Descriptors ``(b - a, J, 3)``, validity ``(b - a, J)`` and the map count for rows ``[a, b)``."""
    j = ps.num_joints
    uadd = np.full((b - a, j, 3), np.nan, dtype=np.float32)
    valid = np.zeros((b - a, j), dtype=bool)
    rows_src = src[a:b]
    map_rows = np.unique(rows_src)
    clip = np.asarray(ps.clip)
    kept: list[np.ndarray] = []
    n_maps = 0
    for batch in batches(map_rows, clip, batch_size):
        c = int(clip[batch[0]])
        if est.needs_frames:
            frames = np.asarray(ps.frame[batch], dtype=np.int64)
            images = reader_for(c).read(frames)
            maps = est.predict_tensor(images)
        else:
            maps = est.predict_rows(ps, batch)
        if maps.ndim != 3 or maps.shape[0] != len(batch):
            raise DataError(None, "depth", f"{clip_label(ps, c)}: the estimator returned maps of shape "
                                           f"{tuple(maps.shape)} for {len(batch)} frames")
        n_maps += len(batch)
        # rows of this chunk that read these maps
        sel = np.flatnonzero((rows_src >= batch[0]) & (rows_src <= batch[-1]))
        rows = a + sel
        map_index = np.searchsorted(batch, rows_src[sel])
        kp = np.asarray(ps.kp2d[rows], dtype=np.float32)
        conf = np.asarray(ps.conf[rows], dtype=np.float32)
        h, w = int(maps.shape[1]), int(maps.shape[2])
        width, height = int(ps.clips.width[c]), int(ps.clips.height[c])
        scale: Any = 1.0
        if (w, h) != (width, height):
            kp, scale = to_map_pixels(kp, (width, height), (w, h))
        res = descriptor.sample(maps, torch.from_numpy(kp).to(maps.device), torch.from_numpy(conf).to(maps.device),
                                scale=torch.as_tensor(scale, device=maps.device), map_index=torch.from_numpy(map_index))
        uadd[sel] = res.uadd.cpu().numpy()
        valid[sel] = res.valid.cpu().numpy()
        if maps_path is not None:
            kept.append(maps.to(torch.float16).cpu().numpy())
        if bar is not None:
            bar.update(len(sel))
    if maps_path is not None:
        with atomic_write(maps_path) as fh:
            np.savez(fh, rows=map_rows, maps=np.concatenate(kept) if kept else np.zeros((0, 0, 0), np.float16))
    return uadd, valid, n_maps


# ----------------------------------------------------------------------------- merging
def _merge(run: ChunkRun, depth_model: dict[str, Any], kind: str) -> bool:
    """Assemble all chunks and write ``uadd``/``uadd_valid`` (nothing to do if another process
    already merged this run). Returns True: the PoseSet holds this run's descriptors."""
    with run.lock():
        ps = PoseSet.load(run.root)
        if ps.meta.get("depth_model") == depth_model and ps.has("uadd", "uadd_valid"):
            return True
        n, j = len(ps), ps.num_joints
        out = run.read({"uadd": np.full((n, j, 3), np.nan, dtype=np.float32), "valid": np.zeros((n, j), dtype=bool)})
        units = dict(ps.meta.get("units") or {}) | {"uadd": "m" if kind == "metric" else "relative"}
        # depth_model is cleared while the two fields are replaced, so an interrupted merge is
        # never mistaken for a finished one (the next run merges again)
        PoseSet.write_field(run.root, "uadd", out["uadd"], {"depth_model": None})
        PoseSet.write_field(run.root, "uadd_valid", out["valid"], {"depth_model": depth_model, "units": units})
    return True


def merge_uadd(poseset_dir: str | os.PathLike[str], key: str | None = None) -> ExtractResult:
    """Merge the chunks of a finished (possibly sharded) run into the PoseSet.

    ``key`` selects the run under ``.depth_chunks/``; when omitted there must be exactly one run
    whose chunks are all present.
    """
    root = Path(poseset_dir)
    base = root / CHUNK_DIR
    ps = PoseSet.load(root)
    if key:
        keys = [key]
    elif base.is_dir():
        keys = sorted(p.name for p in base.iterdir() if (p / "manifest.json").exists())
    else:
        keys = []
    complete = []
    for k in keys:
        man = read_json(base / k / "manifest.json", "manifest")
        if man.get("poseset") != _fingerprint(ps):
            continue
        bounds = chunk_bounds(depth_source_rows(ps, int(man["every"])), int(man["chunk_frames"]))
        run = ChunkRun(root, base / k, k, bounds, (0, 1))
        complete.append((run, man, run.num_chunks - len(run.missing())))
    full = [x for x in complete if x[2] == x[0].num_chunks]
    if not full:
        what = "; ".join(f"{r.key}: {d}/{r.num_chunks} chunks" for r, _m, d in complete) or "no runs found"
        raise DataError(base, "chunks", f"no complete extraction run to merge ({what})")
    if len(full) > 1:
        raise DataError(base, "chunks", f"several complete runs ({', '.join(x[0].key for x in full)}); pass the "
                                        "key or the --model that made it")
    run, man, _ = full[0]
    depth_model = man["estimator"] | {"descriptor": man["descriptor"], "every": man["every"], "chunks": run.key}
    t0 = time.perf_counter()
    merged = _merge(run, depth_model, man["estimator"].get("kind", "metric"))
    return ExtractResult(root, run.key, run.num_chunks, 0, run.num_chunks, 0, 0, 0, time.perf_counter() - t0,
                         merged, (0, 1), depth_model)
