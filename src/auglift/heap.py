"""Keep freed large buffers for reuse while a batched loop runs (glibc only; elsewhere a no-op).

A lifter's batch allocates activations of tens of MiB and frees them when it ends. glibc serves
blocks above its mmap threshold (at most 32 MiB) with fresh ``mmap`` calls and returns them at
``free``, so every batch of a loop faults its buffers in again and the kernel zeroes them: about a
quarter of a whole-clip TCN evaluation's CPU time on a 2-core AMD EPYC (system time,
``benchmarks/bench_vs_official.py``). :func:`reuse_freed_memory` raises the mmap and trim thresholds
for the duration of the loop, so freed buffers stay in the heap and the next batch reuses them;
on exit it sets them to the largest values glibc's own dynamic rule reaches (32 / 64 MiB) and
returns the free memory to the system (``malloc_trim``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import platform
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["reuse_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
_MIB = 1 << 20


@functools.cache
def _glibc() -> Any:
    """The C library when it is glibc with ``mallopt`` and ``malloc_trim``, else None."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes, libc.malloc_trim.argtypes = [ctypes.c_int, ctypes.c_int], [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


@contextlib.contextmanager
def reuse_freed_memory(limit_mib: int = 256) -> Iterator[None]:
    """Within the block, blocks up to ``limit_mib`` MiB come from (and return to) the heap and up to
    ``limit_mib`` MiB of free heap stay mapped; afterwards glibc's largest dynamic thresholds and a trim."""
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_THRESHOLD, limit_mib * _MIB)
    libc.mallopt(_M_TRIM_THRESHOLD, limit_mib * _MIB)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * _MIB)
        libc.mallopt(_M_TRIM_THRESHOLD, 64 * _MIB)
        libc.malloc_trim(0)
