"""Output paths: never overwrite what auglift did not write, and one writer per output directory.

* :func:`claim` checks an output path before any work: it must be absent, an empty directory, or
  auglift's own output of the same kind (a PoseSet's ``meta.json``, the ``.auglift-output``
  marker of a run directory, or the files a run of that kind writes); anything else is refused
  with one line unless ``overwrite``. A PoseSet is then replaced as a whole
  (:func:`auglift.io.atomic_dir`); a run directory is created and marked, and only its own files
  are written into it.
* :func:`recorded` / :func:`resolve_recorded`: a path a run directory records about its own files (a
  matrix cell's checkpoint) is stored relative to the recording directory, so a run directory that is
  moved or copied still finds them.
* :func:`hold` takes an advisory lock (``fcntl.flock``) on an output directory for the life of a
  job; a second job gets one line naming the holder (pid, host, start time). The kernel releases
  the lock when its process dies, so a stale lock of a killed job is taken over.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from auglift.errors import ConfigError
from auglift.io import read_json, write_file

__all__ = ["LOCK", "MARKER", "LockedError", "claim", "hold", "kind_of", "recorded", "resolve_recorded", "writing"]

MARKER = ".auglift-output"  # text file: the kind of run directory (train, eval, matrix, ...)
LOCK = ".auglift.lock"  # text file: who holds the directory (pid, host, start time)

# Files that identify a directory written by an earlier auglift without the marker.
_SIGNS: dict[str, tuple[str, ...]] = {
    "train": ("last.pt", "best.pt", "run.json"), "eval": ("eval.json",), "matrix": ("cells", "report.md"),
    "infer": ("poses3d.npz",),
}
_WHAT = {"poseset": "a PoseSet", "onnx": "an ONNX model", "png": "a preview image", "render": "a rendering"}
_FILES = ("onnx", "png", "render")  # single-file kinds; the others are directories


class LockedError(ConfigError):
    """The output directory is held by another running job."""


def kind_of(path: str | os.PathLike[str]) -> str | None:
    """The kind of auglift output at ``path`` (``"poseset"``, ``"train"``, ``"onnx"``, ...) or None."""
    p = Path(path)
    if p.is_dir():
        with contextlib.suppress(OSError, UnicodeDecodeError):
            return (p / MARKER).read_text().strip()
        if (p / "meta.json").is_file():
            return "poseset" if _is_poseset(p) else None
        kind = next((k for k, names in _SIGNS.items() if any((p / n).exists() for n in names)), None)
        with os.scandir(p) as it:
            entries = [e for e in it if not _ours(e.name)]
        if kind is None and entries and all(e.is_dir() and _is_poseset(Path(e.path)) for e in entries):
            kind = "posesets"  # a directory of PoseSets (prepare, synth with several domains)
        return kind
    if p.is_file() and p.suffix.lower() == ".png":  # synth --preview: a text chunk before the image data
        with contextlib.suppress(OSError), open(p, "rb") as fh:
            return "png" if b"Software\x00auglift" in fh.read(1 << 16) else None
    if p.is_file() and p.suffix.lower() == ".onnx":  # metadata_props are serialised last: look at the tail
        with contextlib.suppress(OSError), open(p, "rb") as fh:
            fh.seek(max(0, p.stat().st_size - (1 << 20)))
            return "onnx" if b"auglift.model" in fh.read() else None
    return None


def _is_poseset(p: Path) -> bool:
    with contextlib.suppress(Exception):  # a missing or unreadable meta.json: not a PoseSet we can vouch for
        return read_json(p / "meta.json").get("schema") == "auglift.poseset"
    return False


def _ours(name: str) -> bool:
    """The marker, the lock, or a marker being written (another rank of a ``torchrun`` job)."""
    return name in (MARKER, LOCK) or name.startswith(f".{MARKER}.")


def _empty(p: Path) -> bool:
    if not p.is_dir():
        return False
    with os.scandir(p) as it:
        return not any(not _ours(e.name) for e in it)


def claim(path: str | os.PathLike[str], kind: str, *, overwrite: bool = False, create: bool = True) -> Path:
    """Check that output of ``kind`` may be written at ``path``; returns its absolute path.

    Allowed: an absent path, an empty directory, auglift's own output of the same ``kind``, or
    anything when ``overwrite``. Kinds ``"poseset"`` (replaced whole by ``PoseSet.save``),
    ``"onnx"``, ``"png"`` and ``"render"`` (single files, replaced atomically; a rendered video
    carries no mark, so an existing one needs ``overwrite``) are only checked; any other
    kind is a run directory, created here (unless not ``create``) and marked with :data:`MARKER`. Raises
    :class:`ConfigError` (one line: the path, what is there, ``--overwrite``) otherwise.
    """
    p = Path(os.path.abspath(path))  # "--out ." becomes a real name that can be renamed
    single = kind in _FILES
    if os.path.lexists(p) and not _empty(p) and kind_of(p) != kind:
        what = "a directory" if p.is_dir() else "a file" if p.is_file() else "something else"
        if not overwrite or (single and p.is_dir()):
            hint = "choose another output" if single and p.is_dir() else "pass --overwrite to replace it"
            owned = _WHAT.get(kind, f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} directory")
            raise ConfigError(f"{p}: {what} that is not {owned} written by "
                              f"auglift is in the way; {hint}")
    if create and kind not in ("poseset", *_FILES):
        _make(p, kind)
    return p


def _make(p: Path, kind: str) -> None:
    """Create run directory ``p`` (replacing a file there) and mark it as output of ``kind``."""
    if os.path.lexists(p) and not p.is_dir():
        p.unlink()
    p.mkdir(parents=True, exist_ok=True)
    if kind_of(p) != kind or not (p / MARKER).exists():
        write_file(p / MARKER, kind + "\n")


@contextlib.contextmanager
def hold(directory: str | os.PathLike[str], name: str = LOCK) -> Iterator[Path]:
    """Hold the advisory lock ``directory/name`` for the block (created if needed); yields the directory.
    ``name`` ``.X.lock`` locks ``directory/X`` from beside it (a directory that may be deleted and made anew).

    Raises :class:`LockedError` naming the holder when another process holds it.
    """
    import fcntl  # POSIX only: imported where a lock is taken

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / name, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "another process"
            what = d if name == LOCK else d / name.removeprefix(".").removesuffix(".lock")  # a lock beside its dir
            raise LockedError(f"{what}: in use by {holder}; wait for it to finish or choose another output") from None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()} since {stamp}\n".encode(), 0)
        yield d
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def writing(path: str | os.PathLike[str], kind: str, *, overwrite: bool = False, lock: bool = True
            ) -> Iterator[Path]:
    """:func:`claim` ``path`` for ``kind`` and, for a run directory, :func:`hold` it for the block.

    Yields the absolute path. A run directory this call created is removed again when the block
    fails before writing anything into it (no empty leftovers).
    """
    p = claim(path, kind, overwrite=overwrite, create=False)
    existed = os.path.lexists(p)
    run_dir = kind not in ("poseset", *_FILES)
    if run_dir and existed and not p.is_dir():  # overwrite: a file where the directory goes
        p.unlink()
    try:
        with hold(p) if run_dir and lock else contextlib.nullcontext(p):
            if run_dir:
                _make(p, kind)
            yield p
    except BaseException:
        if run_dir and not existed and _empty(p):
            shutil.rmtree(p, ignore_errors=True)
        raise


def recorded(path: str | os.PathLike[str], base: str | os.PathLike[str]) -> str:
    """``path`` as a run directory ``base`` records it: relative to ``base`` when inside it, else absolute."""
    p, b = Path(path).absolute(), Path(base).absolute()
    return str(p.relative_to(b)) if p.is_relative_to(b) else str(p)


def resolve_recorded(value: str, base: str | os.PathLike[str], *, tail: int = 2) -> Path:
    """The path :func:`recorded` stored as ``value`` in ``base``: a relative one is resolved against ``base``.
    An absolute one (what runs recorded before) that no longer exists, as after the run directory was moved,
    is looked for at its last ``tail`` components under ``base``; the recorded path is returned when that is
    missing too, so the caller's error names it."""
    p = Path(value)
    if not p.is_absolute():
        return Path(base) / p
    moved = Path(base).joinpath(*p.parts[-tail:])
    return p if p.exists() or not moved.exists() else moved

