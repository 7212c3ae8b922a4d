"""The fused CPU gather of UADD fast mode (numba): every sample of a disk read in one pass, with prefetch.

For every keypoint the kernel computes the nearest pixel of each pattern point (the area points of
:func:`auglift.depth.uadd.disk_pattern` at radius ``r``, then the rim points at ``max(r - inset, 0)``),
reads it, writes the area samples into a ``(K, P)`` array and keeps the minimum and the maximum over
area and rim samples. The torch path (``grid_sample`` on a ``(K, S, 2)`` grid of normalised positions)
spends most of its time building and reading that grid; the kernel touches only the depth pixels.

Reading the disks is bound by memory latency: the maps of a batch (a 1000 x 1000 float32 map is 4 MB)
are far larger than the caches, and each pixel row of a disk is another cache line (at 1000 px,
another page). The kernel therefore prefetches the cache lines of the disk :data:`AHEAD` keypoints
ahead (``llvm.prefetch``, which unlike a load does not hold up the instructions behind it) while it
reads the current one, so the misses of several disks overlap.

Conventions (the torch path's): a point at ``(u, v)`` map px reads pixel ``(floor(u + 0.5),
floor(v + 0.5))``, the last row/column clamped; it is inside the image when ``-0.5 <= u <= W - 0.5``
and likewise ``v``; area samples outside the image are NaN. NaN depths (holes) are skipped by the
minimum and the maximum. Deterministic; ``threads`` splits the keypoints into ranges, and the result
does not depend on it.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from llvmlite import binding, ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from auglift.jit import njit_cached

__all__ = ["AHEAD", "gather"]

# keypoints between a disk's prefetch and its reads (on a 2-core AMD EPYC any distance from 1 to 12 measured
# the same within noise; prefetching at all took the gather from 1.46 to 0.87 us a keypoint at 1000 px)
AHEAD = 3
# below this many keypoints one thread does the work (a thread hand-off costs more than it saves)
_MIN_PER_THREAD = 2048
# floats per 64-byte cache line
_LINE = 16
# the intrinsic's pointer type in its name: opaque pointers ("p0") since LLVM 17
_PREFETCH = "llvm.prefetch.p0" if binding.llvm_version_info >= (17,) else "llvm.prefetch.p0i8"


@intrinsic
def _prefetch(typingctx, arr, idx):  # numba passes the typing context first
    """``_prefetch(flat, i)``: ask for the cache line of ``flat[i]`` (1-D array) to be read, with high
    temporal locality; no effect on results."""

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                            _PREFETCH)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])  # read, keep, data cache
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


@njit_cached()
def _prefetch_disk(flat: np.ndarray, base: int, h: int, w: int, x: float, y: float, r: float) -> None:
    """Prefetch every cache line of the square around the disk ``(x, y, r)`` of the map at ``base``."""
    r0, r1 = max(math.floor(y - r), 0), min(math.ceil(y + r), h - 1)
    c0, c1 = max(math.floor(x - r), 0), min(math.ceil(x + r), w - 1)
    for row in range(r0, r1 + 1):
        for col in range(c0, c1 + _LINE, _LINE):
            _prefetch(flat, base + row * w + min(col, c1))


@njit_cached(error_model="numpy")
def _gather_range(d: np.ndarray, kmap: np.ndarray, kxy: np.ndarray, kr: np.ndarray, px: np.ndarray,
                  py: np.ndarray, n_area: int, inset: np.float32, vals: np.ndarray, ext: np.ndarray,
                  k0: int, k1: int) -> None:
    """Samples of keypoints ``k0 .. k1 - 1`` (see :func:`gather`); ``px``/``py (S,)`` the pattern, area
    points first (``n_area`` of them), then the rim directions."""
    _, h, w = d.shape
    flat = d.reshape(-1)
    n_pts = px.shape[0]
    half = np.float32(0.5)
    cols = np.empty(n_pts, np.int64)  # flat pixel offset of each point, -1 outside the image
    for k in range(k0, min(k0 + AHEAD, k1)):
        _prefetch_disk(flat, kmap[k] * h * w, h, w, kxy[k, 0], kxy[k, 1], kr[k])
    for k in range(k0, k1):
        if k + AHEAD < k1:
            kn = k + AHEAD
            _prefetch_disk(flat, kmap[kn] * h * w, h, w, kxy[kn, 0], kxy[kn, 1], kr[kn])
        x, y, r = kxy[k, 0], kxy[k, 1], kr[k]
        r_in = max(r - inset, np.float32(0.0))
        base = kmap[k] * h * w
        if x - r >= -half and x + r <= w - half and y - r >= -half and y + r <= h - half:
            # the whole disk inside the image (the common case): no test per point
            for p in range(n_pts):
                rad = r if p < n_area else r_in
                cols[p] = (min(math.floor(y + rad * py[p] + half), h - 1) * w
                           + min(math.floor(x + rad * px[p] + half), w - 1))
        else:
            for p in range(n_pts):
                rad = r if p < n_area else r_in
                u, v = x + rad * px[p], y + rad * py[p]
                inside = u >= -half and u <= w - half and v >= -half and v <= h - half
                cols[p] = (min(math.floor(v + half), h - 1) * w + min(math.floor(u + half), w - 1)
                           if inside else -1)
        lo, hi = np.float32(np.inf), np.float32(-np.inf)
        for p in range(n_pts):
            val = flat[base + cols[p]] if cols[p] >= 0 else np.float32(np.nan)
            if p < n_area:
                vals[k, p] = val
            lo = val if val < lo else lo  # NaN compares false: holes are skipped
            hi = val if val > hi else hi
        ext[k, 0], ext[k, 1] = lo, hi


_POOLS: dict[int, ThreadPoolExecutor] = {}
# a forked child inherits the dict but not the threads: it starts its own pools
os.register_at_fork(after_in_child=_POOLS.clear)


def _pool(workers: int) -> ThreadPoolExecutor:
    """A thread pool of ``workers`` threads kept for the process (starting threads for every call of a
    few milliseconds cost more than the split saves); idle threads wait on a lock, they do not spin."""
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="auglift-uadd")
    return _POOLS[workers]


def gather(d: np.ndarray, kmap: np.ndarray, kxy: np.ndarray, kr: np.ndarray, area: np.ndarray,
           rim: np.ndarray, inset: float, threads: int = 1, sort: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(vals (K, P), ext (K, 2))`` float32: the area samples of ``K`` disks (NaN outside the image or in
    a hole; each row sorted, NaN last, with ``sort``) and the minimum / maximum over their area and rim
    samples (NaN where nothing was read).

    ``d (M, H, W)`` float32 C-contiguous depth maps; ``kmap (K,)`` int64 the map of each keypoint;
    ``kxy (K, 2)`` float32 keypoints in map px; ``kr (K,)`` float32 radii in map px; ``area (P, 2)`` and
    ``rim (R, 2)`` unit-disk offsets (``R = 0``: no rim points); the rim points sit at radius
    ``max(r - inset, 0)``. ``threads`` splits the keypoints into ranges (the result does not depend on it).
    """
    k_total = kmap.shape[0]
    vals = np.empty((k_total, area.shape[0]), np.float32)
    ext = np.empty((k_total, 2), np.float32)
    pat = np.concatenate([area, rim]).astype(np.float32)
    args = (d, kmap, kxy, kr, np.ascontiguousarray(pat[:, 0]), np.ascontiguousarray(pat[:, 1]), area.shape[0],
            np.float32(inset), vals, ext)

    def part(k0: int, k1: int) -> None:
        _gather_range(*args, k0, k1)
        if sort:  # NumPy's SIMD sort, which releases the GIL: the threads sort their rows at once
            vals[k0:k1].sort(axis=1)

    parts = max(1, min(threads, k_total // _MIN_PER_THREAD))
    if parts == 1:
        part(0, k_total)
    else:
        bounds = np.linspace(0, k_total, parts + 1).astype(np.int64).tolist()
        list(_pool(parts).map(part, bounds[:-1], bounds[1:]))
    ext[ext[:, 0] > ext[:, 1]] = np.nan  # nothing read: (inf, -inf)
    return vals, ext
