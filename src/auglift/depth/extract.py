"""The extraction run: depth for every frame of a PoseSet, sampled into UADD descriptors at once.

``extract_uadd(poseset_dir, estimator)`` decodes the frames of each clip (video or image
pattern, :mod:`auglift.video`; the oracle estimator renders ``synthetic:`` clips
instead), runs the depth model in batches, samples the descriptors immediately
(:class:`~auglift.depth.uadd.DescriptorSpec`, on the model's device) and keeps only them; full depth
maps are written only with ``save_maps=True``. It then writes the PoseSet's ``uadd`` and
``uadd_valid`` fields (``PoseSet.write_field``) and ``meta["depth_model"]`` = the estimator's
identity plus the descriptor options. :func:`describe` does the same for an in-memory PoseSet
(``auglift infer``'s tracks) and returns the descriptors.

Work layout (all under the PoseSet directory)::

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

import contextlib
import errno
import hashlib
import json
import os
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from auglift.depth.estimators import DepthEstimator
from auglift.depth.uadd import DescriptorSpec, to_map_pixels
from auglift.errors import ConfigError, DataError
from auglift.io import atomic_write, check_npz, file_identity, read_json, write_json
from auglift.poseset import PoseSet
from auglift.video import FrameReader, open_clip_frames, resolve_source

__all__ = ["ExtractResult", "chunk_bounds", "depth_source_rows", "describe", "extract_uadd", "merge_uadd", "run_key",
           "shard_from_env"]

# The frame reader of a clip (by clip index).
ReaderFor = Callable[[int], FrameReader]

CHUNK_DIR = ".depth_chunks"
INPUTS = ("clip", "frame", "kp2d", "conf")  # the fields the descriptors are computed from


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
    changed: list[str] = field(default_factory=list)  # inputs that changed since the last run of these settings

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


def chunk_bounds(src: np.ndarray, chunk_frames: int) -> np.ndarray:
    """Row boundaries ``[0, b1, ..., N]`` of chunks of about ``chunk_frames`` rows.

    Boundaries sit at multiples of ``chunk_frames``, moved back to the start of the run of rows
    sharing a depth map, so a depth map is never needed by two chunks.
    """
    if chunk_frames < 1:
        raise ConfigError(f"chunk_frames must be >= 1, got {chunk_frames}")
    n = len(src)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    group_start = np.flatnonzero(np.concatenate([[True], src[1:] != src[:-1]]))
    want = np.arange(chunk_frames, n, chunk_frames, dtype=np.int64)
    snapped = group_start[np.searchsorted(group_start, want, side="right") - 1]
    return np.unique(np.concatenate([[0], snapped, [n]])).astype(np.int64)


def shard_from_env() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` under ``torchrun``, else ``(0, 1)``."""
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError("RANK and WORLD_SIZE must be integers") from None
    return rank, world


def _fingerprint(ps: PoseSet, full_hash: bool = False) -> dict[str, Any]:
    """What identifies the PoseSet's inputs to the descriptors: the actual files of the fields they
    depend on (:func:`auglift.io.file_identity`: size, mtime and sampled bytes, or every byte with
    ``full_hash``; never the checksums meta.json claims) and the clip table's sources and sizes."""
    out: dict[str, Any] = {"num_frames": len(ps), "num_clips": len(ps.clips),
                           "hash": "full" if full_hash else "sampled"}
    for name in INPUTS:
        out[name] = file_identity(Path(str(ps.path)) / f"{name}.npy", full=full_hash)
    cols = {k: ps.clips.columns[k].tolist() for k in ("source", "width", "height")}
    out["clips"] = hashlib.sha256(json.dumps(cols, sort_keys=True).encode()).hexdigest()
    return out


def _manifest(ps: PoseSet, estimator: DepthEstimator, desc: dict[str, Any], every: int,
              chunk_frames: int, full_hash: bool = False) -> tuple[str, dict[str, Any]]:
    man = {"estimator": estimator.identity(), "descriptor": desc, "every": int(every),
           "chunk_frames": int(chunk_frames), "poseset": _fingerprint(ps, full_hash)}
    key = hashlib.sha256(json.dumps(man, sort_keys=True).encode()).hexdigest()[:16]
    return key, man


def run_key(poseset_dir: str | os.PathLike[str], estimator: DepthEstimator, *,
            descriptor: DescriptorSpec | None = None, every: int = 1, chunk_frames: int = 256,
            full_hash: bool = False) -> str:
    """The ``.depth_chunks/<key>`` name :func:`extract_uadd` uses for these settings and the current inputs."""
    ps = PoseSet.load(poseset_dir)
    return _manifest(ps, estimator, (descriptor or DescriptorSpec()).to_dict(), every, chunk_frames, full_hash)[0]


def _changed_inputs(base: Path, key: str, man: dict[str, Any]) -> list[str]:
    """The input fields that differ from the latest other run of the same settings under ``base`` (empty when
    there is none): its chunks describe older keypoints, so this run computes afresh."""
    same = {k: v for k, v in man.items() if k != "poseset"}
    runs = [p for p in base.glob("*/manifest.json") if p.parent.name != key] if base.is_dir() else []
    for p in sorted(runs, key=lambda q: q.stat().st_mtime, reverse=True):
        with contextlib.suppress(DataError):
            old = read_json(p, "manifest")
            if isinstance(old, dict) and {k: old.get(k) for k in same} == same:
                prev = old.get("poseset") or {}
                return [f for f in (*INPUTS, "clips") if prev.get(f) != man["poseset"].get(f)]
    return []


def _chunk_path(kdir: Path, c: int) -> Path:
    return kdir / f"chunk-{c:06d}.npz"


def _clip_label(ps: PoseSet, c: int) -> str:
    cl = ps.clips
    return f"clip {c} ({cl.subject[c]}/{cl.action[c]}/{cl.camera[c]})"


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
    full_hash: bool = False,
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
        full_hash: key the run on the SHA-256 of every byte of the input fields (default: size, mtime
            and sampled bytes); a change of the inputs starts a new run (``ExtractResult.changed``).

    Processes running on one PoseSet share the chunks: each takes a chunk's lock (``chunks.lock``, one
    byte per chunk, released by the kernel if the process dies) before computing it, skips chunks
    another process is computing and then waits for them.

    Returns:
        :class:`ExtractResult`.
    """
    descriptor = descriptor or DescriptorSpec()
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    rank, world = shard if shard is not None else shard_from_env()
    if world < 1 or not (0 <= rank < world):
        raise ConfigError(f"shard must be i/n with 0 <= i < n, got {rank}/{world}")
    root = Path(poseset_dir)
    ps = PoseSet.load(root, validate=True)
    desc = descriptor.to_dict()
    src = depth_source_rows(ps, every)
    bounds = chunk_bounds(src, chunk_frames)
    key, man = _manifest(ps, estimator, desc, every, chunk_frames, full_hash)
    kdir = root / CHUNK_DIR / key
    changed = [] if kdir.is_dir() else _changed_inputs(root / CHUNK_DIR, key, man)
    kdir.mkdir(parents=True, exist_ok=True)
    if not (kdir / "manifest.json").exists():
        write_json(kdir / "manifest.json", man | {"num_chunks": len(bounds) - 1})
    n_chunks = len(bounds) - 1
    lo_c, hi_c = (n_chunks * rank) // world, (n_chunks * (rank + 1)) // world
    todo = [c for c in range(lo_c, hi_c) if not _chunk_path(kdir, c).exists()]
    t0 = time.perf_counter()
    done: list[int] = []
    rows_done = maps_done = 0
    bar = _progress(sum(int(bounds[c + 1] - bounds[c]) for c in todo), progress, f"depth {rank}/{world}")
    readers = _Readers(ps, root)

    def compute(c: int) -> None:
        nonlocal rows_done, maps_done
        a, b = int(bounds[c]), int(bounds[c + 1])
        uadd, valid, nmaps = _run_chunk(ps, estimator, readers.get, a, b, src, descriptor, batch_size,
                                        kdir / "maps" / f"chunk-{c:06d}.npz" if save_maps else None, bar)
        with atomic_write(_chunk_path(kdir, c)) as fh:
            np.savez(fh, uadd=uadd, valid=valid, rows=np.array([a, b], dtype=np.int64))
        rows_done += b - a
        maps_done += nmaps
        done.append(c)

    try:
        with open(kdir / "chunks.lock", "ab") as lock:
            busy = [c for c in todo if not _with_chunk(lock, kdir, c, compute, wait=False)]
            for c in busy:  # another process is computing these: wait for each (compute it if that one died)
                _with_chunk(lock, kdir, c, compute, wait=True)
    finally:
        readers.close()
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    missing = sum(1 for c in range(n_chunks) if not _chunk_path(kdir, c).exists())
    depth_model = estimator.identity() | {"descriptor": desc, "every": int(every), "chunks": key}
    merged = False
    if merge and missing == 0:
        merged = _merge(root, kdir, bounds, depth_model, estimator.kind)
    return ExtractResult(root, key, n_chunks, len(done), (hi_c - lo_c) - len(done), missing, rows_done, maps_done,
                         seconds, merged, (rank, world), depth_model, changed)


def _with_chunk(lock: Any, kdir: Path, c: int, compute: Callable[[int], None], *, wait: bool) -> bool:
    """Holding byte ``c`` of the open ``lock`` file, ``compute(c)`` unless chunk ``c`` exists by then.
    Returns False (nothing done) when another process holds it and not ``wait``."""
    import fcntl  # POSIX only: imported where the lock is taken

    try:
        fcntl.lockf(lock.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB), 1, c)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN) and not wait:
            return False
        raise
    try:
        if not _chunk_path(kdir, c).exists():
            compute(c)
    finally:
        fcntl.lockf(lock.fileno(), fcntl.LOCK_UN, 1, c)
    return True


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
    readers = _Readers(ps, ps.path)
    bar = _progress(len(ps), progress, "depth")
    try:
        return _run_chunk(ps, estimator, reader_for or readers.get, 0, len(ps), src, descriptor or DescriptorSpec(),
                          batch_size, None, bar)
    finally:
        readers.close()
        if bar is not None:
            bar.close()


def _progress(total: int, enabled: bool | None, desc: str) -> Any:
    if enabled is False or total == 0:
        return None
    # disable=None: tqdm shows the bar only when stderr is a terminal
    return tqdm(total=total, unit="frame", desc=desc, dynamic_ncols=True, smoothing=0.1,
                disable=None if enabled is None else False)


class _Readers:
    """Keeps the current clip's frame reader open across batches and chunks (sequential decoding)."""

    def __init__(self, ps: PoseSet, root: Path | None):
        self.ps, self.root = ps, root
        self.clip: int | None = None
        self.reader: FrameReader | None = None

    def get(self, c: int) -> FrameReader:
        if self.clip != c or self.reader is None:
            self.close()
            raw = str(self.ps.clips.source[c])
            size = (int(self.ps.clips.width[c]), int(self.ps.clips.height[c]))
            label = _clip_label(self.ps, c)
            if raw.startswith("synthetic:"):
                open_clip_frames(raw, label=label)  # raises the explanatory error
            self.reader = open_clip_frames(resolve_source(raw, self.ps.meta.get("frame_root", ""), self.root),
                                           label=label, size=size)
            self.clip = c
        return self.reader

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
        self.reader, self.clip = None, None


def _batches(map_rows: np.ndarray, clip: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive runs of ``map_rows`` of one clip, at most ``batch_size`` long."""
    if len(map_rows) == 0:
        return
    cuts = np.flatnonzero(np.diff(clip[map_rows]) != 0) + 1
    for run in np.split(map_rows, cuts):
        for s in range(0, len(run), batch_size):
            yield run[s: s + batch_size]


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
    for batch in _batches(map_rows, clip, batch_size):
        c = int(clip[batch[0]])
        if est.needs_frames:
            frames = np.asarray(ps.frame[batch], dtype=np.int64)
            images = reader_for(c).read(frames)
            maps = est.predict_tensor(images)
        else:
            maps = est.predict_rows(ps, batch)
        if maps.ndim != 3 or maps.shape[0] != len(batch):
            raise DataError(None, "depth", f"{_clip_label(ps, c)}: the estimator returned maps of shape "
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
@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl  # POSIX only: imported where the lock is taken

    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _merge(root: Path, kdir: Path, bounds: np.ndarray, depth_model: dict[str, Any], kind: str) -> bool:
    """Assemble all chunks and write ``uadd``/``uadd_valid`` (nothing to do if another process
    already merged this run). Returns True: the PoseSet holds this run's descriptors."""
    with _locked(kdir / "merge.lock"):
        ps = PoseSet.load(root)
        if ps.meta.get("depth_model") == depth_model and ps.has("uadd", "uadd_valid"):
            return True
        n, j = len(ps), ps.num_joints
        uadd = np.full((n, j, 3), np.nan, dtype=np.float32)
        valid = np.zeros((n, j), dtype=bool)
        for c in range(len(bounds) - 1):
            a, b = int(bounds[c]), int(bounds[c + 1])
            p = _chunk_path(kdir, c)
            if not p.exists():
                raise DataError(p, "chunk", f"chunk {c} (rows {a}-{b - 1}) is missing; run the remaining shards first")
            try:
                check_npz(p, "chunk")  # declared sizes checked before NumPy allocates them
                with open(p, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                    u, v, r = z["uadd"], z["valid"], z["rows"]
            except (DataError, OSError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
                raise DataError(p, "chunk", f"unreadable chunk ({exc}); delete it and rerun") from None
            if u.shape != (b - a, j, 3) or v.shape != (b - a, j) or r.tolist() != [a, b]:
                raise DataError(p, "chunk", f"expected rows {a}-{b - 1} with shapes {(b - a, j, 3)}/{(b - a, j)}, "
                                            f"got rows {r.tolist()} and {u.shape}/{v.shape}; delete it and rerun")
            uadd[a:b], valid[a:b] = u, v
        units = dict(ps.meta.get("units") or {}) | {"uadd": "m" if kind == "metric" else "relative"}
        # depth_model is cleared while the two fields are replaced, so an interrupted merge is
        # never mistaken for a finished one (the next run merges again)
        PoseSet.write_field(root, "uadd", uadd, {"depth_model": None})
        PoseSet.write_field(root, "uadd_valid", valid, {"depth_model": depth_model, "units": units})
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
        src = depth_source_rows(ps, int(man["every"]))
        bounds = chunk_bounds(src, int(man["chunk_frames"]))
        done = sum(1 for c in range(len(bounds) - 1) if _chunk_path(base / k, c).exists())
        if man.get("poseset") != _fingerprint(ps, (man.get("poseset") or {}).get("hash") == "full"):
            continue
        complete.append((k, man, bounds, done))
    full = [x for x in complete if x[3] == len(x[2]) - 1]
    if not full:
        what = "; ".join(f"{k}: {d}/{len(b) - 1} chunks" for k, _m, b, d in complete) or "no runs found"
        raise DataError(base, "chunks", f"no complete extraction run to merge ({what})")
    if len(full) > 1:
        raise DataError(base, "chunks", f"several complete runs ({', '.join(x[0] for x in full)}); pass the key "
                                        "or the --model that made it")
    k, man, bounds, _ = full[0]
    depth_model = man["estimator"] | {"descriptor": man["descriptor"], "every": man["every"], "chunks": k}
    t0 = time.perf_counter()
    merged = _merge(root, base / k, bounds, depth_model, man["estimator"].get("kind", "metric"))
    return ExtractResult(root, k, len(bounds) - 1, 0, len(bounds) - 1, 0, 0, 0, time.perf_counter() - t0,
                         merged, (0, 1), depth_model)
