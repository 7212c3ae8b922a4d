"""Chunked, resumable, shardable runs over a saved PoseSet's rows (``auglift depth``, ``auglift detect``).

A run computes per-row arrays for rows ``[0, N)`` of a PoseSet in fixed chunks
``[bounds[c], bounds[c + 1])`` and keeps them under the PoseSet directory::

    <chunk dir>/<key>/manifest.json      what the key hashes (the run's settings and inputs)
    <chunk dir>/<key>/chunk-000012.npz   the chunk's arrays and ``rows = [start, stop]``
    <chunk dir>/<key>/merge.lock         serialises the merge step

* **Chunks** are written atomically when complete; a restarted run (after ``kill -9``, an
  error, a full disk) skips the chunks that exist, so the result equals an uninterrupted run.
* **Shards**: ``shard=(i, n)`` computes the i-th of n contiguous ranges of chunks; under
  ``torchrun`` the shard defaults to ``(RANK, WORLD_SIZE)``. The caller merges (under
  :meth:`ChunkRun.lock`) once :meth:`ChunkRun.missing` is empty.

:class:`ClipReaders` keeps the current clip's frame reader (:mod:`auglift.video`) open across
batches and chunks.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from auglift.errors import ConfigError, DataError
from auglift.io import atomic_write, check_npz, file_identity, read_json, tqdm_disable, write_json
from auglift.poseset import PoseSet, clip_label
from auglift.video import FrameReader, open_clip_frames, resolve_source

__all__ = ["ChunkRun", "ClipReaders", "batches", "check_shard", "chunk_bounds", "clip_label", "poseset_fingerprint",
           "progress_bar",
           "shard_from_env"]

# Computes the arrays of rows [a, b) (each (b - a, ...)), updating the progress bar (or None).
ChunkFn = Callable[[int, int, Any], dict[str, np.ndarray]]


def chunk_bounds(src: np.ndarray, chunk_frames: int) -> np.ndarray:
    """Row boundaries ``[0, b1, ..., N]`` of chunks of about ``chunk_frames`` rows.

    Boundaries sit at multiples of ``chunk_frames``, moved back to the start of the run of rows
    sharing a value of ``src (N,)`` (e.g. a depth map), so such a run is never split.
    """
    if chunk_frames < 1:
        raise ConfigError(f"chunk_frames must be >= 1, got {chunk_frames}")
    n = len(src)
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


def check_shard(shard: tuple[int, int] | None) -> tuple[int, int]:
    """``shard`` (default :func:`shard_from_env`), checked: ``0 <= i < n``."""
    rank, world = shard if shard is not None else shard_from_env()
    if world < 1 or not (0 <= rank < world):
        raise ConfigError(f"shard must be i/n with 0 <= i < n, got {rank}/{world}")
    return rank, world


def poseset_fingerprint(ps: PoseSet, names: tuple[str, ...], full_hash: bool = False) -> dict[str, Any]:
    """What identifies a run's inputs: row and clip counts, the actual files of fields ``names`` of the
    saved PoseSet (:func:`auglift.io.file_identity`: size and sampled bytes, or every byte with
    ``full_hash``; never the checksums ``meta.json`` claims) and the SHA-256 of the clips' sources and
    frame sizes."""
    out: dict[str, Any] = {"num_frames": len(ps), "num_clips": len(ps.clips),
                           "hash": "full" if full_hash else "sampled"}
    out |= {name: None if ps.path is None else file_identity(ps.path / f"{name}.npy", full=full_hash) for name in names}
    cols = {k: ps.clips.columns[k].tolist() for k in ("source", "width", "height")}
    out["clips"] = hashlib.sha256(json.dumps(cols, sort_keys=True).encode()).hexdigest()
    return out


def progress_bar(total: int, enabled: bool | None, desc: str) -> Any:
    """A tqdm bar over ``total`` frames: ``enabled`` None on a terminal only, True always, False never."""
    if enabled is False or total == 0:
        return None
    return tqdm(total=total, unit="frame", desc=desc, dynamic_ncols=True, smoothing=0.1,
                disable=tqdm_disable(enabled))


def batches(rows: np.ndarray, clip: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive runs of ``rows`` of one clip (``clip`` indexed by row), at most ``batch_size`` long."""
    cuts = np.flatnonzero(np.diff(clip[rows]) != 0) + 1
    for run in np.split(rows, cuts):
        for s in range(0, len(run), batch_size):
            yield run[s: s + batch_size]


class ClipReaders:
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
            label = clip_label(self.ps, c)
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


@dataclass
class ChunkRun:
    """One run's chunk directory ``kdir`` (``<root>/<chunk dir>/<key>``), its chunk ``bounds`` and this
    process's ``shard``; :meth:`open` makes it from the run's manifest."""

    root: Path
    kdir: Path
    key: str
    bounds: np.ndarray
    shard: tuple[int, int]

    @classmethod
    def open(cls, root: Path, chunk_dir: str, manifest: dict[str, Any], bounds: np.ndarray,
             shard: tuple[int, int] | None = None) -> ChunkRun:
        """The run whose key is the hash of ``manifest`` (JSON-ready); writes the manifest once."""
        key = cls.key_of(manifest)
        kdir = root / chunk_dir / key
        kdir.mkdir(parents=True, exist_ok=True)
        if not (kdir / "manifest.json").exists():
            write_json(kdir / "manifest.json", manifest | {"num_chunks": len(bounds) - 1})
        return cls(root, kdir, key, bounds, check_shard(shard))

    @staticmethod
    def key_of(manifest: dict[str, Any]) -> str:
        """The run's key: 16 hex digits of the SHA-256 of ``manifest`` as sorted JSON."""
        return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def num_chunks(self) -> int:
        return len(self.bounds) - 1

    def path(self, c: int) -> Path:
        return self.kdir / f"chunk-{c:06d}.npz"

    def missing(self) -> list[int]:
        """Chunks not written yet (by any shard)."""
        return [c for c in range(self.num_chunks) if not self.path(c).exists()]

    def compute(self, fn: ChunkFn, *, progress: bool | None, desc: str) -> tuple[int, int, int, float]:
        """Compute and write this shard's missing chunks: ``(chunks done, chunks skipped, rows, seconds)``.

        Processes working on one run share the chunks: each holds a chunk's byte of ``chunks.lock``
        (``fcntl.lockf``, released by the kernel if the process dies) while computing it, skips chunks
        another process holds, then waits for those and finds them written (or computes them)."""
        rank, world = self.shard
        n, b = self.num_chunks, self.bounds
        sizes = np.diff(b)  # rows per chunk
        lo, hi = (n * rank) // world, (n * (rank + 1)) // world
        todo = [c for c in range(lo, hi) if not self.path(c).exists()]
        bar = progress_bar(int(sizes[todo].sum()), progress, f"{desc} {rank}/{world}")
        t0 = time.perf_counter()
        done: list[int] = []

        def one(c: int) -> None:
            start, stop = int(b[c]), int(b[c + 1])
            arrays = fn(start, stop, bar)
            with atomic_write(self.path(c)) as fh:
                np.savez(fh, **arrays, rows=np.array([start, stop], dtype=np.int64))
            done.append(c)

        try:
            with open(self.kdir / "chunks.lock", "ab") as lock:
                busy = [c for c in todo if not self._with_chunk(lock, c, one, wait=False)]
                for c in busy:  # another process is computing these: wait for each (compute it if that one died)
                    self._with_chunk(lock, c, one, wait=True)
        finally:
            if bar is not None:
                bar.close()
        return len(done), (hi - lo) - len(done), int(sizes[done].sum()), time.perf_counter() - t0

    def _with_chunk(self, lock: Any, c: int, compute: Callable[[int], None], *, wait: bool) -> bool:
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
            if not self.path(c).exists():
                compute(c)
        finally:
            fcntl.lockf(lock.fileno(), fcntl.LOCK_UN, 1, c)
        return True

    def changed_inputs(self, manifest: dict[str, Any]) -> list[str]:
        """The inputs (``manifest["poseset"]`` entries) that differ from the latest other run of the same
        settings in this chunk directory: its chunks describe older inputs, so this run starts afresh."""
        same = {k: v for k, v in manifest.items() if k != "poseset"}
        runs = [p for p in self.kdir.parent.glob("*/manifest.json") if p.parent != self.kdir]
        for p in sorted(runs, key=lambda q: q.stat().st_mtime, reverse=True):
            with contextlib.suppress(DataError):
                old = read_json(p, "manifest")
                if isinstance(old, dict) and {k: old.get(k) for k in same} == same:
                    prev, now = old.get("poseset") or {}, manifest["poseset"]
                    return [k for k in now if k not in ("num_frames", "num_clips", "hash")
                            and prev.get(k) != now.get(k)]
        return []

    def read(self, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Fill the full-length arrays ``out`` (name -> ``(N, ...)``) from every chunk; one-line
        :class:`DataError` for a missing, unreadable or misshapen chunk."""
        for c in range(self.num_chunks):
            a, b = int(self.bounds[c]), int(self.bounds[c + 1])
            p = self.path(c)
            if not p.exists():
                raise DataError(p, "chunk", f"chunk {c} (rows {a}-{b - 1}) is missing; run the remaining shards first")
            try:
                check_npz(p, "chunk")  # declared sizes checked before NumPy allocates them
                with open(p, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                    got = {k: z[k] for k in (*out, "rows")}
            except (DataError, OSError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
                raise DataError(p, "chunk", f"unreadable chunk ({exc}); delete it and rerun") from None
            want = {k: (b - a, *v.shape[1:]) for k, v in out.items()}
            if got.pop("rows").tolist() != [a, b] or any(got[k].shape != s for k, s in want.items()):
                raise DataError(p, "chunk", f"expected rows {a}-{b - 1} with shapes {list(want.values())}, got "
                                            f"{[v.shape for v in got.values()]}; delete it and rerun")
            for k, v in got.items():
                out[k][a:b] = v
        return out

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold ``merge.lock`` (an exclusive POSIX file lock) for the merge step."""
        import fcntl  # POSIX only: imported where the lock is taken

        with open(self.kdir / "merge.lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
