"""Shared machinery of the fault tests: kill a child process at a chosen point, inject ENOSPC.

**Kill points.** :func:`kill_when` starts a command, polls a progress function every few
milliseconds and sends ``SIGKILL`` once the progress reaches a threshold (plus a seeded random
delay), so a test can aim at "after the 7th chunk" or "after the 3rd checkpoint" and still land
at varying instants around that event, including inside the next write.

**Full disk.** :class:`DiskFull` patches the primitives every atomic writer goes through
(``os.fdopen`` of the temporary file, ``os.fsync``, ``tempfile.mkstemp``/``mkdtemp``) so the
n-th write call, a write crossing a byte budget, the n-th fsync or the n-th temp-file creation
raises ``OSError(ENOSPC)``; only paths under ``root`` are affected.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _reliability_fixtures import env_for_child

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@dataclass
class Kill:
    """What happened at one kill point."""

    target: int  # progress the kill aimed at
    delay: float  # seconds waited after reaching it
    progress: int  # progress seen when the signal was sent
    killed: bool  # False when the process finished (or failed) before the kill point
    returncode: int
    seconds: float
    stderr: str = ""


def auglift_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "auglift", *args]


def kill_when(cmd: Sequence[str], progress: Callable[[], int], target: int, delay: float, *,
              timeout: float = 120.0, poll: float = 0.003) -> Kill:
    """Run ``cmd``; once ``progress() >= target``, wait ``delay`` s and SIGKILL it."""
    t0 = time.monotonic()
    proc = subprocess.Popen(list(cmd), env=env_for_child(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = 0
    try:
        while proc.poll() is None and time.monotonic() - t0 < timeout:
            seen = progress()
            if seen >= target:
                if delay:
                    time.sleep(delay)
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(poll)
        else:
            if proc.poll() is None:
                proc.kill()
                raise AssertionError(f"{' '.join(cmd[2:])}: no progress to {target} in {timeout} s (at {seen})")
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    killed = proc.returncode == -signal.SIGKILL
    return Kill(target, delay, seen, killed, proc.returncode, time.monotonic() - t0, err.decode(errors="replace"))


def run_to_end(cmd: Sequence[str], timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(list(cmd), env=env_for_child(), capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


class Replacements:
    """Counts how many times files matching ``pattern`` under ``root`` were (re)written: every
    atomic write gives the destination a new (inode, modification time) pair."""

    def __init__(self, root: Path, pattern: str):
        self.root, self.pattern = root, pattern
        self.seen: set[tuple[str, int, int]] = set()

    def __call__(self) -> int:
        for p in self.root.glob(self.pattern):
            try:
                st = os.stat(p)
            except FileNotFoundError:
                continue
            self.seen.add((str(p), st.st_ino, st.st_mtime_ns))
        return len(self.seen)


# ----------------------------------------------------------------------------- full disk
class _Proxy:
    """A file object whose writes go through :class:`DiskFull`'s budget."""

    def __init__(self, fh: Any, owner: DiskFull, fds: set[int]):
        self._fh, self._owner, self._fds = fh, owner, fds

    def write(self, data: Any) -> int:
        self._owner.charge(len(data))
        return self._fh.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def __enter__(self) -> _Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fds.discard(self._fh.fileno())
        self._fh.close()

    def __iter__(self) -> Any:
        return iter(self._fh)


@dataclass
class DiskFull:
    """ENOSPC for writes under ``root`` at a chosen point (``None``: that trigger is off).

    * ``after_bytes``: the write call that would take the total past this many bytes fails;
    * ``at_write``: the n-th write call (1-based) fails;
    * ``at_fsync``: the n-th ``os.fsync`` fails;
    * ``at_create``: the n-th temporary file/directory creation fails.
    """

    root: Path
    after_bytes: int | None = None
    at_write: int | None = None
    at_fsync: int | None = None
    at_create: int | None = None
    written: int = 0
    writes: int = 0
    fsyncs: int = 0
    creates: int = 0
    fired: list[str] = field(default_factory=list)

    def charge(self, n: int) -> None:
        self.writes += 1
        if (self.at_write is not None and self.writes >= self.at_write) or (
                self.after_bytes is not None and self.written + n > self.after_bytes):
            self.fired.append(f"write {self.writes} at byte {self.written}")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += n

    def _ours(self, path: Any) -> bool:
        try:
            return Path(os.fspath(path)).resolve().is_relative_to(self.root.resolve())
        except (TypeError, ValueError):
            return False

    def install(self, monkeypatch: Any) -> DiskFull:
        real_fdopen, real_fsync = os.fdopen, os.fsync
        real_mkstemp, real_mkdtemp = tempfile.mkstemp, tempfile.mkdtemp
        ours_fds: set[int] = set()

        def fdopen(fd: int, *a: Any, **k: Any) -> Any:
            fh = real_fdopen(fd, *a, **k)
            return _Proxy(fh, self, ours_fds) if fd in ours_fds else fh

        def fsync(fd: int) -> None:
            if fd in ours_fds:
                self.fsyncs += 1
                if self.at_fsync is not None and self.fsyncs >= self.at_fsync:
                    self.fired.append(f"fsync {self.fsyncs}")
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)

        def create(dir: Any) -> None:
            if dir is not None and self._ours(dir):
                self.creates += 1
                if self.at_create is not None and self.creates >= self.at_create:
                    self.fired.append(f"create {self.creates}")
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def mkstemp(*a: Any, **k: Any) -> Any:
            create(k.get("dir"))
            fd, name = real_mkstemp(*a, **k)
            if self._ours(name):
                ours_fds.add(fd)
            return fd, name

        def mkdtemp(*a: Any, **k: Any) -> Any:
            create(k.get("dir"))
            return real_mkdtemp(*a, **k)

        monkeypatch.setattr(os, "fdopen", fdopen)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
        return self
