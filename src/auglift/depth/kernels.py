"""The fused CPU gather of UADD fast mode (numba): every sample of a disk read in one pass, with prefetch.

For every keypoint the kernel computes the nearest pixel of each pattern point (the area points of
:func:`auglift.depth.uadd.disk_pattern` at radius ``r``, then the rim points at ``max(r - inset, 0)``),
reads it, writes the area samples into a ``(K, P)`` array and keeps the minimum and the maximum over
area and rim samples. The torch path (``grid_sample`` on a ``(K, S, 2)`` grid of normalised positions)
spends most of its time building and reading that grid; the kernel touches only the depth pixels.

Reading the disks is bound by memory latency: the maps of a batch (a 1000 x 1000 float32 map is 4 MB)
are far larger than the caches, and each pixel row of a disk is another cache line (at 1000 px,
another page). The kernel therefore computes the pixel offsets of each disk :data:`AHEAD` keypoints
before reading it and prefetches exactly those pixels then (``llvm.prefetch``, which unlike a load does
not hold up the instructions behind it), so the misses of several disks overlap and no line is fetched
that is not read.

Conventions (the torch path's): a point at ``(u, v)`` map px reads pixel ``(floor(u + 0.5),
floor(v + 0.5))``, the last row/column clamped; it is inside the image when ``-0.5 <= u <= W - 0.5``
and likewise ``v``; area samples outside the image are NaN. NaN depths (holes) are skipped by the
minimum and the maximum. Deterministic; ``threads`` splits the keypoints into ranges, and the result
does not depend on it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from auglift.jit import njit_cached

__all__ = ["AHEAD", "BLOCK", "gather", "row_quantiles"]

# keypoints between a disk's prefetch and its reads (2-core AMD EPYC, 1000 px maps, detector-like radii: 2, 3, 4
# and 6 measured the same, 0.20-0.23 us a keypoint for the reads; without any prefetch 0.46-0.86 us)
AHEAD = 3
# rows handed to gather's each_block at a time (1024 x 97 float32: 0.4 MB, within a core's L2 cache)
BLOCK = 1024
# below this many keypoints one thread does the work (a thread hand-off costs more than it saves)
_MIN_PER_THREAD = 2048
# the intrinsic's pointer type in its name: opaque pointers ("p0") since LLVM 17
_PREFETCH = "llvm.prefetch.p0" if binding.llvm_version_info >= (17,) else "llvm.prefetch.p0i8"


@intrinsic
def _prefetch(typingctx, arr, idx):  # numba passes the typing context first
    """``_prefetch(flat, i)``: ask for the cache line of ``flat[i]`` (1-D array) to be read into the L2 cache
    (locality 2: ``prefetcht1`` on x86); no effect on results. Into L2 rather than L1: an L1 prefetch holds
    one of the core's few L1 miss buffers, and on a 2-core AMD EPYC the gather at 1000 px measured
    15-45 % faster with locality 2 than with 3, alternated in one process."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            _PREFETCH)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(2), i32(1)])  # read, L2, data cache
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


@njit_cached(error_model="numpy")
def _disk_offsets(out: np.ndarray, base: int, h: int, w: int, x: np.float32, y: np.float32, r: np.float32,
                  r_in: np.float32, px: np.ndarray, py: np.ndarray, n_area: int) -> None:
    """Flat offsets into the maps (``base`` = the map's first pixel) of the nearest pixel of every
    pattern point of the disk ``(x, y)``: area points at radius ``r``, rim points at ``r_in``; -1 for a
    point outside the image. ``out (S,)`` int64."""
    half = np.float32(0.5)
    n_pts = px.shape[0]
    if x - r >= -half and x + r <= w - half and y - r >= -half and y + r <= h - half:
        # the whole disk inside the image (the common case): no test per point
        for p in range(n_pts):
            rad = r if p < n_area else r_in
            out[p] = (base + min(math.floor(y + rad * py[p] + half), h - 1) * w
                      + min(math.floor(x + rad * px[p] + half), w - 1))
        return
    for p in range(n_pts):
        rad = r if p < n_area else r_in
        u, v = x + rad * px[p], y + rad * py[p]
        inside = u >= -half and u <= w - half and v >= -half and v <= h - half
        out[p] = (base + min(math.floor(v + half), h - 1) * w + min(math.floor(u + half), w - 1)
                  if inside else -1)


@njit_cached(error_model="numpy")
def _gather_range(d: np.ndarray, kmap: np.ndarray, kxy: np.ndarray, kr: np.ndarray, px: np.ndarray,
                  py: np.ndarray, n_area: int, inset: np.float32, vals: np.ndarray, ext: np.ndarray,
                  k0: int, k1: int, v0: int) -> None:
    """Samples of keypoints ``k0 .. k1 - 1`` (see :func:`gather`) into rows ``k - v0`` of ``vals``;
    ``px``/``py (S,)`` the pattern, area points first (``n_area`` of them, the first at the centre), then
    the rim directions.

    A disk's pixel offsets are computed :data:`AHEAD` keypoints before it is read, into a ring of
    ``AHEAD + 1`` rows, and each is prefetched then: the reads later find exactly their cache lines
    (prefetching the disk's bounding square instead fetched about twice the lines; the whole call measured
    1.2-1.7x slower at 1000 px)."""
    _, h, w = d.shape
    flat = d.reshape(-1)
    n_pts = px.shape[0]
    half = np.float32(0.5)
    ring = np.empty((AHEAD + 1, n_pts), np.int64)
    off_image = np.empty(AHEAD + 1, np.bool_)  # the keypoint itself outside the image (or NaN)
    for k in range(k0, k1 + AHEAD):
        if k < k1:  # plan and prefetch disk k
            x, y, r = kxy[k, 0], kxy[k, 1], kr[k]
            slot = (k - k0) % (AHEAD + 1)
            off_image[slot] = not (x >= -half and x < w - half and y >= -half and y < h - half)
            if not off_image[slot]:
                offs = ring[slot]
                _disk_offsets(offs, kmap[k] * h * w, h, w, x, y, r, max(r - inset, np.float32(0.0)), px, py, n_area)
                for p in range(n_pts):
                    if offs[p] >= 0:
                        _prefetch(flat, offs[p])
        kc = k - AHEAD
        if kc < k0:
            continue
        slot = (kc - k0) % (AHEAD + 1)  # read disk kc
        row = vals[kc - v0]
        if off_image[slot]:
            row[:] = np.nan
            ext[kc] = np.nan
            continue
        offs = ring[slot]
        lo, hi = np.float32(np.inf), np.float32(-np.inf)
        for p in range(n_pts):
            val = flat[offs[p]] if offs[p] >= 0 else np.float32(np.nan)
            if p < n_area:
                row[p] = val
            lo = val if val < lo else lo  # NaN compares false: holes are skipped
            hi = val if val > hi else hi
        ext[kc, 0], ext[kc, 1] = lo, hi
        ext[kc, 2] = row[0]


@njit_cached(error_model="numpy")
def row_quantiles(rows: np.ndarray, qs: np.ndarray, out: np.ndarray, r0: int, cols: np.ndarray) -> None:
    """``out[r0 + i, cols[c]]`` = quantile ``qs[c]`` of the values of row ``i`` of ``rows (N, P)`` float32,
    each row sorted with NaN last (NaN ignored; NaN for a row without a value).

    Linear interpolation between order statistics (NumPy's ``"linear"`` method): position
    ``q (n - 1)`` in float64 over the ``n`` values, the fraction rounded to float32 and the interpolation
    ``a + (b - a) frac`` in float32; an integer position takes the order statistic itself (no
    ``inf - inf``). The torch path of :func:`auglift.depth.uadd._quantiles` computes the same numbers.
    """
    n_rows, p = rows.shape
    for i in range(n_rows):
        n = p
        if p and np.isnan(rows[i, p - 1]):  # the NaN tail: binary search for its start
            lo_, hi_ = 0, p - 1
            while lo_ < hi_:
                mid = (lo_ + hi_) // 2
                if np.isnan(rows[i, mid]):
                    hi_ = mid
                else:
                    lo_ = mid + 1
            n = lo_
        last = max(n - 1, 0)
        for c in range(qs.shape[0]):
            if n == 0:
                out[r0 + i, cols[c]] = np.nan
                continue
            pos = qs[c] * np.float64(last)
            lo = math.floor(pos)
            frac = np.float32(pos - lo)
            a = rows[i, lo]
            out[r0 + i, cols[c]] = a if frac == 0 else a + (rows[i, min(lo + 1, last)] - a) * frac


_POOLS: dict[int, ThreadPoolExecutor] = {}
# a forked child inherits the dict but not the threads: it starts its own pools
os.register_at_fork(after_in_child=_POOLS.clear)


def _pool(workers: int) -> ThreadPoolExecutor:
    """A thread pool of ``workers`` threads kept for the process (starting threads for every call of a
    few milliseconds cost more than the split saves); idle threads wait on a lock, they do not spin."""
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="auglift-uadd")
    return _POOLS[workers]


def _sort_rows(rows: np.ndarray) -> None:
    """Sort each row of ``rows (N, P)`` float32 in place, NaN last, with NumPy's SIMD sort (which releases the
    GIL: the threads sort their rows at once). When no value has its sign bit set (no negative number, -0.0
    or NaN with the sign bit) the rows are sorted as their int32 bit patterns: for such floats that is the
    same order, NaN after every number, and it measured 0.08 against 0.13 us a row of 97 values; one
    vectorised minimum over the block decides."""
    bits = rows.view(np.int32)
    if bits.size and bits.min() < 0:
        rows.sort(axis=1)
    else:
        bits.sort(axis=1)


def gather(d: np.ndarray, kmap: np.ndarray, kxy: np.ndarray, kr: np.ndarray, area: np.ndarray,
           rim: np.ndarray, inset: float, threads: int = 1, sort: bool = False,
           each_block: Callable[[int, np.ndarray], None] | None = None) -> tuple[np.ndarray | None, np.ndarray]:
    """``(vals (K, P), ext (K, 3))`` float32: the area samples of ``K`` disks (NaN outside the image or in
    a hole; each row sorted, NaN last, with ``sort``); the minimum / maximum over their area and rim
    samples (NaN where nothing was read) and the sample of the first area point (the keypoint's nearest
    pixel when that point is the centre). A keypoint outside the image (``x`` outside ``[-0.5, W - 0.5)``
    or ``y`` outside ``[-0.5, H - 0.5)``, or NaN) reads nothing: NaN throughout.

    ``d (M, H, W)`` float32 C-contiguous depth maps; ``kmap (K,)`` int64 the map of each keypoint;
    ``kxy (K, 2)`` float32 keypoints in map px; ``kr (K,)`` float32 radii in map px; ``area (P, 2)`` and
    ``rim (R, 2)`` unit-disk offsets (``R = 0``: no rim points); the rim points sit at radius
    ``max(r - inset, 0)``. ``threads`` splits the keypoints into ranges (the result does not depend on it).

    With ``each_block(k0, rows)`` the area samples are not kept (``vals`` is None): each thread fills a
    buffer of :data:`BLOCK` rows (0.4 MB, within its core's L2 cache), sorts it with ``sort`` and hands the
    rows of keypoints ``k0 ..`` to ``each_block`` in that thread, so a statistic is read from them while
    they are in the cache and the ``(K, P)`` array is never written to memory.
    """
    k_total = kmap.shape[0]
    n_area = area.shape[0]
    vals = None if each_block is not None else np.empty((k_total, n_area), np.float32)
    ext = np.empty((k_total, 3), np.float32)
    pat = np.concatenate([area, rim]).astype(np.float32)
    args = (d, kmap, kxy, kr, np.ascontiguousarray(pat[:, 0]), np.ascontiguousarray(pat[:, 1]), n_area,
            np.float32(inset))

    def part(k0: int, k1: int) -> None:
        if each_block is None:
            _gather_range(*args, vals, ext, k0, k1, 0)
            if sort:
                _sort_rows(vals[k0:k1])
            return
        buf = np.empty((BLOCK, n_area), np.float32)
        for b0 in range(k0, k1, BLOCK):
            rows = buf[:min(k1 - b0, BLOCK)]
            _gather_range(*args, buf, ext, b0, b0 + rows.shape[0], b0)
            if sort:
                _sort_rows(rows)
            each_block(b0, rows)

    parts = max(1, min(threads, k_total // _MIN_PER_THREAD))
    if parts == 1:
        part(0, k_total)
    else:
        bounds = np.linspace(0, k_total, parts + 1).astype(np.int64).tolist()
        list(_pool(parts).map(part, bounds[:-1], bounds[1:]))
    ext[ext[:, 0] > ext[:, 1], :2] = np.nan  # nothing read: (inf, -inf)
    return vals, ext
