"""A restricted unpickler for the untrusted pickle files real datasets ship.

3DPW sequence files, MMPose's ``cameras.pkl`` and VideoPose3D's ``.npz`` files (object
arrays of dicts) are pickles. Unpickling can run arbitrary code, so these files are read by
:class:`RestrictedUnpickler`, which resolves only plain containers and the handful of NumPy
callables needed to rebuild arrays, dtypes and scalars. Anything else (``os.system``,
``builtins.eval``, ``subprocess.Popen``, custom classes) is refused with a :class:`DataError`.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from auglift.errors import DataError
from auglift.io import check_npz, read_npy_stream_header, regular_file_size

__all__ = ["RestrictedUnpickler", "describe_load_error", "load_npy_object", "load_npz_restricted", "load_pickle"]

# (module, name) pairs a pickle may reference. Containers (dict, list, tuple, str, ...) are
# built by pickle opcodes and need no entry; these are the global callables.
_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "bytearray"),
        ("builtins", "complex"),
        ("builtins", "slice"),
        ("builtins", "range"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),
    }
)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits only plain containers and NumPy arrays/scalars/dtypes."""

    def __init__(self, file: Any, *, source: str | os.PathLike[str] | None = None, **kwargs: Any):
        super().__init__(file, **kwargs)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            if module.startswith("numpy"):
                return _numpy_global(name)
            return super().find_class(module, name)
        raise DataError(
            self._source,
            None,
            f"pickle references {module}.{name}, which is not allowed "
            "(only plain containers and NumPy arrays are accepted)",
        )

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(self._source, None, "pickle uses persistent ids, which are not allowed")


_TORCH_ADVICE = ("Weights only load failed", "Please file an issue", "Check the documentation", "Re-running",
                 "In PyTorch 2.6")


def describe_load_error(exc: BaseException) -> str:
    """One line saying why ``torch.load(path, weights_only=True)`` failed.

    PyTorch's refusals span several lines of advice; the reason is a global the restricted
    unpickler does not allow (named here), an unsupported opcode, or a zip/EOF error.
    """
    text = str(exc)
    m = re.search(r"GLOBAL ([\w.]+)", text)
    if m:
        return f"{type(exc).__name__}: the pickle references {m.group(1)}, which is not allowed"
    if isinstance(exc, EOFError) and not text.strip():
        return "EOFError: the file ends early (empty or truncated)"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_TORCH_ADVICE)] or lines or ["no details"]
    return f"{type(exc).__name__}: {useful[0][:200]}"


def _numpy_global(name: str) -> Any:
    # Resolve through the installed NumPy regardless of numpy.core vs numpy._core spelling.
    if name == "_reconstruct":
        return np.ndarray.__reduce__(np.zeros(0))[0]
    if name == "scalar":
        return np.int64(0).__reduce__()[0]
    if name == "_frombuffer":
        for mod in ("numpy._core.numeric", "numpy.core.numeric"):
            try:
                return importlib.import_module(mod)._frombuffer
            except (ImportError, AttributeError):
                continue
    return getattr(np, name)


def _unpickle(data: bytes | io.IOBase, source: Any, encoding: str) -> Any:
    fh = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    try:
        return RestrictedUnpickler(fh, source=source, encoding=encoding).load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError, UnicodeDecodeError, OverflowError) as exc:
        raise DataError(source, None, f"not a readable pickle ({type(exc).__name__}: {exc})") from None


def load_pickle(path: str | os.PathLike[str], *, encoding: str = "latin1") -> Any:
    """Load a pickle file through :class:`RestrictedUnpickler`.

    ``encoding="latin1"`` reads Python-2 pickles (3DPW) whose NumPy buffers are byte strings.
    """
    p = Path(path)
    regular_file_size(p, None, "a pickle")
    with open(p, "rb") as fh:
        return _unpickle(fh, p, encoding)


def load_npy_object(fh: Any, source: Any, *, encoding: str = "latin1") -> np.ndarray:
    """Read one ``.npy`` stream; an object array's pickle payload goes through the restricted path."""
    try:
        shape, fortran, dtype, _offset = read_npy_stream_header(fh)
    except (ValueError, OSError, SyntaxError, EOFError) as exc:
        raise DataError(source, None, f"not a valid .npy stream ({exc})") from None
    if dtype.hasobject:
        arr = _unpickle(fh.read(), source, encoding)
        if not isinstance(arr, np.ndarray):
            raise DataError(source, None, f"object payload is {type(arr).__name__}, expected an array")
        return arr
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    buf = fh.read(count * dtype.itemsize)
    if len(buf) != count * dtype.itemsize:
        raise DataError(source, None, "truncated array data")
    arr = np.frombuffer(buf, dtype=dtype, count=count)
    return arr.reshape(shape, order="F" if fortran else "C")


def load_npz_restricted(path: str | os.PathLike[str], *, encoding: str = "latin1") -> dict[str, np.ndarray]:
    """Load every member of an ``.npz`` file; object members use the restricted unpickler."""
    p = Path(path)
    check_npz(p)  # missing/empty file refused and member sizes checked before anything is read
    out: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(p) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                key = info.filename.removesuffix(".npy")
                with zf.open(info) as fh:
                    out[key] = load_npy_object(io.BytesIO(fh.read()), f"{p}[{key}]", encoding=encoding)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise DataError(p, None, f"not a valid .npz archive ({exc})") from None
    return out
