"""Process pools for independent jobs (matrix cells, demo domains): each worker a fresh interpreter with a
fixed torch thread count, its log lines forwarded to the parent's ``log``, its errors re-raised there as one line.

Small lifters do not fill several cores with one process (PyTorch's intra-op threads gain little on a
256 x 512 matrix product, and Python, the optimiser and batch preparation run on one core), so the cells
of a matrix run faster as one single-threaded process per core. A cell's numbers depend only on its own
configuration and thread count, never on which worker ran it or when.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

import torch

from auglift.errors import AugliftError, ConfigError, DataError

__all__ = ["available_cores", "default_jobs", "process_pool", "raise_returned", "run_returning_errors", "worker_log"]

_QUEUE: Any = None  # in a worker: the queue its log lines go to


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_jobs(jobs: int | None, what: str) -> int:
    """``jobs`` checked (>= 1), or by default one worker per core (at most 8; 1 where a GPU serves the cells)."""
    if jobs is None:
        return 1 if torch.cuda.is_available() else min(available_cores(), 8)
    if jobs < 1:
        raise ConfigError(f"{what} jobs must be at least 1, got {jobs}")
    return jobs


def _init_worker(queue: Any, threads: int) -> None:
    global _QUEUE
    _QUEUE = queue
    torch.set_num_threads(threads)
    if sys.platform == "linux":  # end with the parent (killed, it cannot shut the pool down): PR_SET_PDEATHSIG
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def worker_log(msg: str) -> None:
    """Log a line from a pool worker (to the parent's ``log``); outside a pool, to stderr."""
    if _QUEUE is None:
        print(msg, file=sys.stderr, flush=True)
    else:
        _QUEUE.put(msg)


@contextmanager
def process_pool(jobs: int, *, log: Callable[[str], None], threads: int = 1) -> Iterator[ProcessPoolExecutor]:
    """``jobs`` spawned worker processes with ``threads`` torch threads each; their :func:`worker_log`
    lines reach ``log`` (from a thread of this process) until the pool has shut down."""
    ctx = mp.get_context("spawn")  # not fork: torch's thread pools and locks do not survive a fork
    queue = ctx.Queue()

    def pump() -> None:
        while (msg := queue.get()) is not None:
            log(msg)

    reader = threading.Thread(target=pump, name="auglift-worker-log", daemon=True)
    reader.start()
    try:
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=(queue, threads)) as pool:
            try:
                yield pool
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        queue.put(None)  # after the workers exited: their lines are all in the queue before it
        reader.join()
        queue.close()


def run_returning_errors(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a worker; an :class:`AugliftError` comes back as a value (:func:`raise_returned`
    raises it in the parent with its one-line message), since its constructor may not survive pickling."""
    try:
        return fn(*args, **kwargs)
    except AugliftError as exc:
        return {"__auglift_error__": type(exc).__name__, "message": str(exc)}


def raise_returned(value: Any) -> Any:
    """``value``, or the error :func:`run_returning_errors` returned in its place, raised."""
    if isinstance(value, dict) and "__auglift_error__" in value:
        if value["__auglift_error__"] == "DataError":
            raise DataError(None, None, value["message"])
        raise ConfigError(value["message"])
    return value
