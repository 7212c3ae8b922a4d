"""Training batches: the window dataset of one data split and the stream of an epoch's batches.

A :class:`WindowSet` is the windows a run reads from one PoseSet split (index views over the
memory-mapped arrays, :meth:`PoseSet.windows`) together with the encoder; it serves training
(:meth:`WindowSet.batch`: encoded inputs, targets, loss masks) and validation
(:meth:`WindowSet.targets`) alike. :func:`epoch_batches` yields the batches of one epoch: the
window order and flip decisions come from ``numpy.random.default_rng([seed, epoch])`` (so they
need no saved state and a resumed epoch continues where it stopped), every DDP rank takes an
interleaved share of each global batch (:func:`shard_batch`), rows are read in ascending order
(memory-map locality), and the next batch is gathered and encoded in a background thread while
the caller computes the current step. A frame's encoding depends on that frame alone, so a window set
encodes the frames its windows read once, on its first batch (a 27-frame TCN reads every frame 27 times
an epoch), and batches gather from that cache (bit for bit the same inputs); a set whose encoding would
exceed :data:`ENCODE_CACHE_MAX_BYTES` is encoded batch by batch instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from auglift.encoding import EncoderState, encode, target
from auglift.poseset import PoseSet, Windows

__all__ = ["ENCODE_CACHE_MAX_BYTES", "Batch", "WindowSet", "epoch_batches", "epoch_plan", "shard_batch"]

# Largest encoded-frame cache (float32 bytes) a window set keeps; above it batches are encoded on the fly.
ENCODE_CACHE_MAX_BYTES = 1 << 30


@dataclass
class Batch:
    """One step's data: ``x (B, T, J, C)`` encoded inputs, ``y (B, T_out, J, 3)`` root-relative targets
    (metres, NaN -> 0), ``mask (B, T_out, J)`` (joints that count in the loss), ``flip (B,)``.

    ``fetch_s``: seconds spent gathering and encoding it; ``wait_s``: seconds the caller waited for it;
    ``t0``: :func:`time.perf_counter` when the caller started waiting (the start of its step).
    """

    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    flip: np.ndarray
    fetch_s: float = 0.0
    wait_s: float = 0.0
    t0: float = 0.0


@dataclass
class WindowSet:
    """The windows ``sel`` (indices into ``windows``) of a PoseSet that a run reads, with their encoder."""

    ps: PoseSet
    windows: Windows
    sel: np.ndarray  # (M,) int64
    encoder: EncoderState
    # (sorted rows (R,) int64, their encodings (R, J, C) float32), built on first use; False: too big to cache
    _cache: tuple[np.ndarray, np.ndarray] | bool | None = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.sel)

    def inputs(self, idx: np.ndarray) -> np.ndarray:
        """``(B, T, J, C)`` float32 encoded inputs of windows ``idx (B,)`` (from the frame cache when it fits)."""
        rows = self.windows.rows(idx)
        with self._lock:
            if self._cache is None:
                self._cache = self._encode_frames()
        if self._cache is False:
            return encode(self.ps, rows, self.encoder)
        cached_rows, x = self._cache
        return x[np.searchsorted(cached_rows, rows)]

    def _encode_frames(self) -> tuple[np.ndarray, np.ndarray] | bool:
        """The rows the selected windows read (whole clips: ``lo .. hi``) and their encodings, or False if too big."""
        spans = np.unique(np.stack([self.windows.lo[self.sel], self.windows.hi[self.sel]], 1), axis=0)
        n = int((spans[:, 1] - spans[:, 0] + 1).sum()) if len(spans) else 0
        if n * self.ps.num_joints * len(self.encoder.channels) * 4 > ENCODE_CACHE_MAX_BYTES:
            return False
        rows = np.unique(np.concatenate([np.arange(lo, hi + 1) for lo, hi in spans] or [np.zeros(0, np.int64)]))
        return rows, encode(self.ps, rows, self.encoder)

    def targets(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(y (B, T_out, J, 3) float32, mask (B, T_out, J) bool)`` of windows ``idx``: root-relative
        ground truth (metres) and where it is finite and not edge padding; ``y`` is 0 outside the mask."""
        w = self.windows
        y = target(self.ps.kp3d[w.target_rows(idx)], self.encoder.root)
        if w.target is not None:
            y = y[:, None]
            pos = np.ones(y.shape[:2], dtype=bool)
        else:
            pos = w.valid(idx)
        mask = np.isfinite(y).all(-1) & pos[..., None]
        return np.where(mask[..., None], y, 0.0).astype(np.float32), mask

    def batch(self, idx: np.ndarray, flip: np.ndarray) -> Batch:
        """The training batch of windows ``idx (B,)`` with flip decisions ``flip (B,)``."""
        t0 = time.perf_counter()
        x = self.inputs(idx)
        y, mask = self.targets(idx)
        return Batch(x, y, mask, flip, time.perf_counter() - t0)


def shard_batch(n: int, k: int, batch: int, rank: int, world: int) -> np.ndarray:
    """Positions in the epoch's order that rank ``rank`` of ``world`` reads for global step ``k``.

    The global batch is positions ``[k * batch, (k + 1) * batch)`` (clipped to ``n``); rank r takes
    every ``world``-th of them starting at r, so the ranks' shares are disjoint and together form
    the single-process batch. ``(B_r,)`` int64.
    """
    return np.arange(k * batch, min((k + 1) * batch, n), dtype=np.int64)[rank::world]


def epoch_plan(n: int, seed: int, epoch: int, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """The epoch's window order ``(n,)`` (a permutation) and flip decisions ``(n,)`` bool (p = 0.5 when ``flip``)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    flips = (rng.random(n) < 0.5) if flip else np.zeros(n, dtype=bool)
    return order, flips


def epoch_batches(data: WindowSet, pool: ThreadPoolExecutor, *, seed: int, epoch: int, batch_size: int,
                  steps: int, start: int = 0, flip: bool = False, rank: int = 0, world: int = 1
                  ) -> Iterator[tuple[int, Batch]]:
    """``(step, batch)`` for steps ``start .. steps - 1`` of ``epoch``; each batch is this rank's share of the
    global batch, prepared in ``pool`` while the previous step runs."""
    order, flips = epoch_plan(len(data), seed, epoch, flip)

    def submit(k: int) -> Future[Batch]:
        pos = shard_batch(len(order), k, batch_size, rank, world)
        pos = pos[np.argsort(order[pos], kind="stable")]  # ascending rows: memory-map locality
        return pool.submit(data.batch, data.sel[order[pos]], flips[pos])

    nxt = submit(start) if start < steps else None
    for k in range(start, steps):
        t0 = time.perf_counter()
        assert nxt is not None
        batch = nxt.result()
        batch.t0, batch.wait_s = t0, time.perf_counter() - t0
        nxt = submit(k + 1) if k + 1 < steps else None
        yield k, batch
