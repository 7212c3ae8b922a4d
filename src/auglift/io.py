"""Safe, atomic file I/O shared by every stage.

* Writes go to a temporary file in the destination directory, are flushed and fsync'ed,
  then renamed over the destination (``os.replace`` is atomic on POSIX), so a reader never
  sees a partially written file, even after ``kill -9`` or a full disk.
* ``.npy`` files are read with ``allow_pickle=False`` after their header has been checked
  against the file size, so a truncated or hostile file gives a :class:`DataError` naming
  the file instead of a traceback from deep inside NumPy.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from auglift.errors import DataError

PathLike = str | os.PathLike[str]

__all__ = [
    "atomic_dir",
    "atomic_write",
    "check_npz",
    "check_output_dir",
    "file_identity",
    "is_safe_name",
    "load_npy",
    "read_json",
    "read_npy_header",
    "read_npy_stream_header",
    "regular_file_size",
    "save_npy",
    "sha256_file",
    "tqdm_disable",
    "write_csv",
    "write_file",
    "write_json",
]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates files readable by the owner only; published files get the usual mode.
FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file (0o666 less the umask)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _naming(dest: Path) -> Iterator[None]:
    """Re-raise an ``OSError`` that names no file (e.g. ENOSPC creating a temporary file) naming ``dest``."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(dest)) from exc
        raise


def check_output_dir(path: PathLike) -> None:
    """Check now that directory ``path`` can be created and written (a temporary file is made and removed),
    so that a command fails on a bad output path (``--out /proc/x``) before its work, not after; directories
    created for the check are removed again. An ``OSError`` names the path."""
    dest = Path(path)
    created = [p for p in (dest, *dest.parents) if not p.exists()]  # deepest first
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with _naming(dest):
            tempfile.TemporaryFile(dir=dest).close()
    finally:
        for p in created:
            with contextlib.suppress(OSError):
                p.rmdir()


def log_stderr(msg: str) -> None:
    """The default progress log of long jobs: one line to stderr, flushed."""
    print(msg, file=sys.stderr, flush=True)


def tqdm_disable(progress: bool | None) -> bool | None:
    """tqdm's ``disable`` for a progress option: True/False force the bar on/off; None shows it only when
    stderr is a terminal (so log files get no carriage-return bars)."""
    return None if progress is None else not progress


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on clean exit rename it to ``path``.

    On any exception (including ``OSError(ENOSPC)``) the temporary file is removed and the
    previous content of ``path``, if any, is left untouched; an ``OSError`` that names no file
    (a full disk while writing) is re-raised naming ``path``.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _naming(dest):
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        try:
            os.fchmod(fd, FILE_MODE)
            with os.fdopen(fd, mode) as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    _fsync_dir(dest.parent)


@contextlib.contextmanager
def atomic_dir(path: PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Build a directory under a temporary name and move it to ``path`` on success.

    Yields the temporary directory. If ``path`` exists it is replaced only when the block
    finishes without error (``overwrite=True``); otherwise :class:`FileExistsError`. An
    ``OSError`` raised while building (e.g. a full disk) is re-raised naming ``path``.
    """
    dest = Path(os.path.abspath(path))  # "." and "x/.." cannot be renamed; their absolute names can
    dest.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(dest) and not overwrite:
        raise FileExistsError(f"{dest}: already exists")
    with _naming(dest):
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if os.path.lexists(dest):
            trash = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            try:
                os.replace(dest, trash / "old")
            except BaseException:
                os.rmdir(trash)
                raise
            try:
                os.replace(tmp, dest)
            except BaseException:
                os.replace(trash / "old", dest)  # put the previous one back
                os.rmdir(trash)
                raise
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        inside = exc.filename is None or str(exc.filename).startswith(str(tmp)) if isinstance(exc, OSError) else False
        if isinstance(exc, OSError) and exc.errno is not None and inside:
            inner = "" if exc.filename is None else f" (writing {os.path.relpath(exc.filename, tmp)})"
            raise OSError(exc.errno, f"{exc.strerror or exc}{inner}", str(dest)) from exc
        raise


def natural_key(s: str) -> tuple[Any, ...]:
    """Sort key that orders ``S2`` before ``S11`` and ``Seq2`` before ``Seq10`` (file and sequence names)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))


def is_safe_name(name: object) -> bool:
    """True when ``name`` (read from data or a config) can be used as one file/directory name inside
    an output directory: a non-empty string without ``/``, ``\\``, NUL, surrounding spaces, and not
    ``.`` or ``..`` (so ``out / name`` never leads outside ``out``)."""
    return (isinstance(name, str) and name not in ("", ".", "..") and not any(c in name for c in "/\\\0")
            and name == name.strip())


def sha256_file(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def file_identity(path: PathLike, *, full: bool = False) -> str:
    """What identifies a file's content for a cache key: ``"sha256:<hex>"`` of every byte when ``full``;
    else ``"<size>:<hash>"`` with the SHA-256 of 16 blocks of 4 KiB spread over the file (all of a file up
    to 64 KiB), so a rewrite or a copy over it changes it at the cost of a few reads, while a copy of the
    same bytes (another machine, another directory) keeps it. An edit of a few bytes between the sampled
    blocks of a large file needs ``full``."""
    if full:
        return "sha256:" + sha256_file(path)
    size = os.stat(path).st_size
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for i in range(16 if size > 1 << 16 else 1):
            fh.seek((size - 4096) * i // 15 if size > 1 << 16 else 0)
            h.update(fh.read(4096 if size > 1 << 16 else 1 << 16))
    return f"{size}:{h.hexdigest()[:32]}"


def save_npy(path: PathLike, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` in ``.npy`` format, atomically. Object arrays are refused."""
    arr = np.asanyarray(array)
    if arr.dtype.hasobject:
        raise DataError(path, None, "refusing to write an object array (it would need pickle)")
    with atomic_write(path, "wb") as fh:
        np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False)


def regular_file_size(p: Path, field: str | None, expected: str) -> int:
    """The size of the regular, non-empty file ``p`` (a DataError naming it and ``field`` otherwise)."""
    if not p.is_file():
        raise DataError(p, field, "file not found" if not p.exists() else "not a regular file")
    size = p.stat().st_size
    if size == 0:
        raise DataError(p, field, f"empty file, expected {expected}")
    return size


def read_npy_stream_header(fh: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, data offset)`` of the ``.npy`` stream ``fh`` (ValueError if unsupported)."""
    version = np.lib.format.read_magic(fh)
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise ValueError(f"unsupported .npy version {version}")
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(fh)
    return shape, fortran, dtype, fh.tell()


def read_npy_header(path: PathLike, field: str | None = None) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """Read and check the header of a ``.npy`` file without reading its data.

    Returns ``(shape, dtype, fortran_order, data_offset)``. Raises :class:`DataError` for a
    missing, empty, truncated or non-``.npy`` file and for object (pickle) payloads.
    """
    p = Path(path)
    size = regular_file_size(p, field, "a .npy array")
    try:
        with open(p, "rb") as fh:
            shape, fortran, dtype, offset = read_npy_stream_header(fh)
    except (ValueError, OSError, SyntaxError, EOFError) as exc:
        raise DataError(p, field, f"not a valid .npy file ({exc})") from None
    if dtype.hasobject:
        raise DataError(p, field, "object (pickle) payload refused; expected a numeric array")
    if any(int(s) < 0 for s in shape):
        raise DataError(p, field, f"not a valid .npy file (negative dimension in shape {shape})")
    count = math.prod(int(s) for s in shape)  # Python ints: no int64 wrap-around for absurd shapes
    need = offset + count * dtype.itemsize
    if size < need:
        raise DataError(p, field, f"truncated file: header declares {shape} {dtype} ({need} bytes), file has {size}")
    return tuple(int(s) for s in shape), dtype, bool(fortran), offset


# Deflate expands data at most about 1032:1, so a deflated .npz member cannot hold more than this
# many times its compressed size; a header declaring more is refused before NumPy allocates it.
MAX_DEFLATE_RATIO = 1032


def check_npz(path: PathLike, field: str | None = None) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Check an ``.npz`` archive before NumPy reads it; returns ``member -> (shape, dtype)``.

    NumPy allocates an ``.npz`` member's declared shape before it reads the data, so a small
    archive whose ``.npy`` header declares 10^12 elements would ask for terabytes. Every member's
    header is read here and must declare no more data than the member can hold (its stored size,
    or at most 1032 x its compressed size for deflate, whose expansion ratio is bounded; other
    compression methods are refused). Object (pickle) members are reported with their dtype and
    not size-checked: callers refuse them or read them through :mod:`auglift.safe_pickle`.
    Raises :class:`DataError` for a missing, empty, truncated or non-zip file and oversized members.
    """
    p = Path(path)
    size = regular_file_size(p, field, "an .npz archive")
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(p) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                name = info.filename.removesuffix(".npy")
                where = f"{field}[{name}]" if field else name
                if info.compress_type == zipfile.ZIP_STORED:
                    cap = info.compress_size
                elif info.compress_type == zipfile.ZIP_DEFLATED:
                    cap = info.compress_size * MAX_DEFLATE_RATIO + 1024
                else:
                    raise DataError(p, where, f"unsupported zip compression method {info.compress_type} "
                                              "(NumPy writes stored or deflated members)")
                if info.compress_size > size:
                    raise DataError(p, where, f"truncated archive: member of {info.compress_size} bytes, "
                                              f"file has {size}")
                with zf.open(info) as fh:
                    shape, _fortran, dtype, offset = read_npy_stream_header(fh)
                shape = tuple(int(s) for s in shape)
                if any(s < 0 for s in shape):
                    raise DataError(p, where, f"not a valid .npy member (negative dimension in shape {shape})")
                if not dtype.hasobject:
                    need = offset + math.prod(shape) * dtype.itemsize
                    if need > min(info.file_size, cap):
                        raise DataError(p, where, f"header declares {shape} {dtype} ({need} bytes) but the member "
                                                  f"holds at most {min(info.file_size, cap)} bytes (truncated or "
                                                  "malformed archive)")
                out[name] = (shape, dtype)
    except DataError:
        raise
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, SyntaxError, NotImplementedError) as exc:
        raise DataError(p, field, f"not a valid .npz archive ({exc})") from None
    return out


def load_npy(path: PathLike, *, mmap: bool = True, field: str | None = None) -> np.ndarray:
    """Load a ``.npy`` file (memory-mapped read-only by default), never unpickling.

    Empty arrays are returned in memory (``mmap`` of zero bytes is not possible).
    """
    use_mmap = 0 not in read_npy_header(path, field)[0] and mmap  # the header is checked either way
    try:
        return np.load(path, mmap_mode="r" if use_mmap else None, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(path, field, f"cannot read array ({exc})") from None


def json_safe(x: Any) -> Any:
    """``x`` as plain JSON values: NaN/inf -> None, NumPy scalars and arrays -> Python, tuples -> lists, keys -> str."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_file(path: PathLike, data: str | bytes) -> None:
    """Write ``data`` (text or bytes) to ``path``, atomically (:func:`atomic_write`)."""
    with atomic_write(path, "w" if isinstance(data, str) else "wb") as fh:
        fh.write(data)


def write_csv(path: PathLike, rows: Iterable[Iterable[Any]], *, lineterminator: str = "\r\n") -> None:
    """Write ``rows`` (the header row first) as CSV in the csv module's default dialect, atomically."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator=lineterminator).writerows(rows)
    write_file(path, buf.getvalue())


def write_json(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as pretty JSON (UTF-8), atomically."""
    write_file(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_json(path: PathLike, field: str | None = None, *, max_bytes: int = 64 << 20) -> Any:
    """Read a JSON file with clear errors (missing, empty, too large, not UTF-8, invalid)."""
    p = Path(path)
    size = regular_file_size(p, field, "JSON")
    if size > max_bytes:
        raise DataError(p, field, f"file of {size} bytes exceeds the {max_bytes}-byte limit for JSON")
    try:
        return json.loads(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise DataError(p, field, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DataError(p, field, f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise DataError(p, field, "JSON nested too deeply to read") from None
