"""Helpers of the reliability suite (bad inputs, security, faults): a batch runner of CLI cases in
one memory-limited child process, writers of malformed files, and a validity scan of output trees.

**Case runner.** Every malformed-input case is one ``auglift`` command line (or one library call
for readers without a command). :func:`run_cases` writes the cases to JSON and runs them all in a
single child process (the heavy imports are paid once) under ``RLIMIT_AS`` = the address space
after importing torch/NumPy/SciPy/h5py/OpenCV plus :data:`HEADROOM` bytes, so an allocation
proportional to a declared (not actual) size fails instead of succeeding lazily. Each case runs
``auglift.cli.main(argv)`` with stdout/stderr captured, under a ``SIGALRM`` timeout; anything
other than the CLI's own handling (an exception escaping ``main``, ``SystemExit`` from argparse,
a timeout) is recorded with its traceback. The child process itself has a wall-clock timeout, and
it writes the id of the case it is running before starting it, so a hang in C code is reported
with its case.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import traceback
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TESTS = Path(__file__).resolve().parent
HEADROOM = 3 << 30  # bytes of address space a case may add on top of the imported libraries
CASE_TIMEOUT_S = 30


# ----------------------------------------------------------------------------- cases
@dataclass
class Case:
    """One malformed input: ``build(dir) -> (argv or call, expected substrings of the error line)``.

    ``build`` writes the input under its own directory and returns either an argv list for
    ``auglift`` or a dict ``{"call": "module:function", "args": [...], "kwargs": {...}}`` for a
    library reader without a command; the error line must contain every expected substring
    (typically the offending file's name and the field).
    """

    id: str
    build: Callable[[Path], tuple[list[str] | dict[str, Any], list[str]]]
    group: str = ""


@dataclass
class Result:
    id: str
    rc: Any
    stdout: str
    stderr: str
    error: str = ""  # traceback of anything the CLI did not handle
    expect: list[str] = field(default_factory=list)


def env_for_child() -> dict[str, str]:
    """One thread, no GPU, the test tree importable, bounded malloc arenas (so RLIMIT_AS is meaningful)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), *(p for p in sys.path if p)])
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "CUDA_VISIBLE_DEVICES": "", "MALLOC_ARENA_MAX": "2", "TOKENIZERS_PARALLELISM": "false",
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "always"})
    env.pop("AUGLIFT_DEBUG", None)
    return env


def run_cases(cases: Iterable[Case], workdir: Path, *, timeout: float = 240.0) -> dict[str, Result]:
    """Build every case under ``workdir/<id>/`` and run them in one child process; results by id."""
    specs = []
    for case in cases:
        d = workdir / case.id
        d.mkdir(parents=True, exist_ok=True)
        what, expect = case.build(d)
        specs.append({"id": case.id, "what": what, "expect": [str(e) for e in expect]})
    cases_json = workdir / "cases.json"
    out_json = workdir / "results.json"
    progress = workdir / "progress.txt"
    cases_json.write_text(json.dumps(specs))
    cmd = [sys.executable, "-m", "_reliability_fixtures", str(cases_json), str(out_json), str(progress)]
    try:
        proc = subprocess.run(cmd, env=env_for_child(), capture_output=True, text=True, timeout=timeout,
                              cwd=workdir)
    except subprocess.TimeoutExpired:
        current = progress.read_text() if progress.exists() else "?"
        raise AssertionError(f"the case runner hung (timeout {timeout} s) in case {current}") from None
    if proc.returncode != 0 or not out_json.exists():
        raise AssertionError(f"case runner failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    raw = json.loads(out_json.read_text())
    return {r["id"]: Result(**r) for r in raw}


_PROGRESS = re.compile(r"\d+%\|.*\|.*\d/\S*\d+ \[")  # a tqdm bar: "Loading weights: 100%|###| 143/143 [..."


def shared_results(tmp_path_factory: Any, key: str, compute: Callable[[Path], dict[str, Result]]
                   ) -> dict[str, Result]:
    """Run ``compute(workdir)`` once per test session even under pytest-xdist, whose workers share
    the parent of their base temp directories: the first worker computes (holding a file lock) and
    stores the results as JSON, the others read them. (``--dist loadgroup`` cannot keep a module on
    one worker with pytest 9, so a module-scoped fixture would otherwise run on both.)"""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    store = root / f"reliability-{key}.json"
    with open(root / f"reliability-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not store.exists():
            res = compute(Path(tempfile.mkdtemp(prefix=f"{key}-", dir=base)))
            store.write_text(json.dumps({k: v.__dict__ for k, v in res.items()}))
        raw = json.loads(store.read_text())
    return {k: Result(**v) for k, v in raw.items()}


def error_lines(stderr: str) -> list[str]:
    """Non-empty stderr lines other than progress bars (which write their updates with carriage returns)."""
    return [ln for ln in stderr.replace("\r", "\n").splitlines() if ln.strip() and not _PROGRESS.search(ln)]


def check_clean_error(res: Result) -> str:
    """'' when ``res`` is one ``auglift: error: ...`` line with exit status 2 naming what it should, else why not."""
    if res.error:
        return f"not handled by the CLI:\n{res.error}"
    lines = error_lines(res.stderr)
    if res.rc != 2:
        return f"exit status {res.rc!r}, expected 2; stderr: {res.stderr[-2000:]!r}"
    if len(lines) != 1 or not lines[0].startswith("auglift: error: "):
        return f"expected exactly one 'auglift: error: ...' line, got {lines!r}"
    if len(lines[0]) > 2100:  # values are cut (issue 15 item 12): never the whole of a huge input
        return f"the error line has {len(lines[0])} characters: {lines[0][:300]!r}..."
    missing = [e for e in res.expect if e not in lines[0]]
    if missing:
        return f"the error line does not name {missing!r}: {lines[0]!r}"
    if "Traceback" in res.stderr or "Traceback" in res.stdout:
        return "a traceback was printed"
    return ""


# ----------------------------------------------------------------------------- the child process
class _Timeout(BaseException):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _call(spec: dict[str, Any]) -> int:
    import importlib

    from auglift.errors import AugliftError

    mod, _, fn = spec["call"].partition(":")
    func: Any = importlib.import_module(mod)
    for attr in fn.split("."):  # "module:Class.method"
        func = getattr(func, attr)
    try:
        func(*spec.get("args", []), **spec.get("kwargs", {}))
    except AugliftError as exc:  # what the CLI would print
        print(f"auglift: error: {exc}", file=sys.stderr)
        return 2
    print("auglift: no error raised", file=sys.stderr)
    return 0


def _child(cases_path: str, results_path: str, progress_path: str) -> None:
    import resource
    import warnings

    import cv2  # noqa: F401  (heavy libraries first: they are the baseline of the address-space limit)
    import h5py  # noqa: F401
    import scipy.io  # noqa: F401
    import torch

    import auglift.cli as cli

    torch.set_num_threads(1)
    cli.build_parser()  # imports every command module
    warnings.simplefilter("always")
    limit = _vm_size() + HEADROOM
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    signal.signal(signal.SIGALRM, _on_alarm)
    results = []
    for spec in json.loads(Path(cases_path).read_text()):
        Path(progress_path).write_text(spec["id"])
        out, err = io.StringIO(), io.StringIO()
        rc: Any = None
        tb = ""
        signal.alarm(CASE_TIMEOUT_S)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                what = spec["what"]
                rc = cli.main(what) if isinstance(what, list) else _call(what)
        except _Timeout:
            tb = f"timed out after {CASE_TIMEOUT_S} s (a hang)"
        except SystemExit as exc:
            rc = exc.code
            tb = f"SystemExit({exc.code!r}) (argparse usage error?)"
        except BaseException:
            tb = traceback.format_exc()
        finally:
            signal.alarm(0)
        results.append({"id": spec["id"], "rc": rc, "stdout": out.getvalue()[-4000:],
                        "stderr": err.getvalue()[-4000:], "error": tb[-6000:], "expect": spec["expect"]})
    Path(results_path).write_text(json.dumps(results))


# ----------------------------------------------------------------------------- malformed files
def npy_bytes(shape: tuple[int, ...], dtype: str = "<f4", data: bytes | None = None, *, fortran: bool = False,
              version: tuple[int, int] = (1, 0)) -> bytes:
    """A ``.npy`` file whose header declares ``shape``/``dtype``, followed by ``data`` (default: none)."""
    buf = io.BytesIO()
    hdr = {"descr": dtype, "fortran_order": fortran, "shape": tuple(shape)}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(buf, hdr)
    else:
        np.lib.format.write_array_header_2_0(buf, hdr)
    return buf.getvalue() + (data or b"")


def npy_of(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=True)
    return buf.getvalue()


def write_npz(path: Path, members: dict[str, bytes], *, compress: bool = False) -> Path:
    """An ``.npz`` archive from raw member bytes (``name`` -> ``.npy`` bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", mode) as z:
        for name, data in members.items():
            z.writestr(name if name.endswith(".npy") else f"{name}.npy", data)
    return path


def garbage(n: int, seed: int = 0) -> bytes:
    """``n`` random bytes, the same for the same ``seed`` (a corrupt file that reproduces)."""
    return np.random.default_rng(seed).bytes(n)


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    return path


def sparse_file(path: Path, size: int, head: bytes = b"") -> Path:
    """A file of ``size`` bytes that starts with ``head`` and is otherwise a hole (no disk used)."""
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(size)
    return path


def symlink_loop(path: Path) -> Path:
    """``path`` -> ``path.loop`` -> ``path``."""
    other = path.with_name(path.name + ".loop")
    for p in (path, other):
        if p.is_symlink() or p.exists():
            p.unlink()
    os.symlink(other.name, path)
    os.symlink(path.name, other)
    return path


def mat5_huge(path: Path, name: str = "annot3", *, dims: tuple[int, int] = (1 << 30, 1 << 10),
              nbytes: int = 0xF0000000) -> Path:
    """A MATLAB v5 file whose one double matrix declares ``dims`` and a data element of ``nbytes`` bytes
    (about 4 GB) that the file does not hold."""
    hdr = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024".ljust(116, b" ")
    hdr += b"\x00" * 8 + struct.pack("<H", 0x0100) + b"IM"
    nm = name.encode()
    name_el = struct.pack("<II", 1, len(nm)) + nm + b"\x00" * (-len(nm) % 8)  # miINT8
    flags = struct.pack("<IIII", 6, 8, 6, 0)  # miUINT32, 8 bytes: class mxDOUBLE_CLASS
    dims_el = struct.pack("<II", 5, 8) + struct.pack("<ii", *dims)  # miINT32
    data_hdr = struct.pack("<II", 9, nbytes)  # miDOUBLE, declared byte count
    body = flags + dims_el + name_el + data_hdr + b"\x00" * 64
    path.write_bytes(hdr + struct.pack("<II", 14, min(len(body) - 64 + nbytes, 0xFFFFFFF8)) + body)  # miMATRIX
    return path


# ----------------------------------------------------------------------------- output-tree validity scan
def scan_tree(root: Path, *, ignore: Callable[[Path], bool] | None = None) -> list[str]:
    """Problems with the files under ``root`` after a crash: every ``.npy`` must load with
    :func:`auglift.io.load_npy`, every ``.npz`` must open with all members readable, every
    ``.json`` must parse, every ``.pt`` must load with ``torch.load(weights_only=True)``, every
    PoseSet directory (``meta.json`` with the schema) must load; temporary files (``.*.tmp``,
    ``.*.old``) are reported separately by :func:`temp_files`. Returns a list of messages ([] = clean).
    """
    from auglift.errors import DataError
    from auglift.io import load_npy
    from auglift.poseset import PoseSet

    problems: list[str] = []
    for p in sorted(root.rglob("*")):
        if ignore is not None and ignore(p):
            continue
        if any(part.startswith(".") and part.endswith((".tmp", ".old")) for part in p.relative_to(root).parts):
            continue  # temp files: a reader never opens these names
        if not p.is_file():
            continue
        try:
            if p.suffix == ".npy":
                np.asarray(load_npy(p, mmap=False))
            elif p.suffix == ".npz":
                with np.load(p, allow_pickle=False) as z:
                    for k in z.files:
                        z[k]
            elif p.suffix == ".json":
                json.loads(p.read_text())
            elif p.suffix == ".pt":
                import torch

                torch.load(p, map_location="cpu", weights_only=True)
            if p.name == "meta.json":
                meta = json.loads(p.read_text())
                if isinstance(meta, dict) and meta.get("schema") == "auglift.poseset":
                    PoseSet.load(p.parent).validate(checksums=True)
        except (DataError, OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile) as exc:
            problems.append(f"{p.relative_to(root)}: {type(exc).__name__}: {str(exc)[:300]}")
    return problems


def temp_files(root: Path) -> list[Path]:
    """Leftover temporary files/directories of the atomic writers (``.<name>.<random>.tmp`` / ``.old``)."""
    return sorted(p for p in root.rglob(".*") if p.name.endswith((".tmp", ".old")))


def tree_snapshot(root: Path, *, exclude: Iterable[Path] = ()) -> dict[str, tuple[int, int]]:
    """``relative path -> (size, mtime_ns)`` of every file and link under ``root`` except under ``exclude``."""
    ex = [Path(e).resolve() for e in exclude]
    out: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if any(d.resolve() == e or e in d.resolve().parents for e in ex):
            dirnames[:] = []
            continue
        for n in filenames + [x for x in dirnames if (d / x).is_symlink()]:
            st = os.lstat(d / n)
            out[str((d / n).relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


if __name__ == "__main__":
    _child(*sys.argv[1:4])
