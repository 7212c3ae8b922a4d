"""Bad-input corpus, part 1: saved PoseSets (every field, every clip column, meta.json) through ``auglift info``.

Each case corrupts one thing of a valid saved PoseSet (wrong shape, row count, dtype, NaN/inf,
out-of-range values, empty/truncated/garbage files, headers declaring huge, overflowing or
negative sizes, pickle payloads, symlink loops, directories, FIFOs and devices where a file
belongs, non-UTF-8 strings) and expects one ``auglift: error:`` line naming the file and the
field, exit status 2, no hang and no allocation beyond the address-space limit
(see ``_reliability_fixtures.run_cases``).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _reliability_fixtures import (
    Case,
    check_clean_error,
    env_for_child,
    garbage,
    npy_bytes,
    npy_of,
    run_cases,
    shared_results,
    sparse_file,
    symlink_loop,
    truncate,
)
from auglift.poseset import FIELDS, PoseSet
from conftest import make_poseset


def _base() -> PoseSet:
    ps = make_poseset(n_clips=3, frames=8, seed=3)
    n = len(ps)
    rng = np.random.default_rng(0)
    uadd = np.asarray(ps.kp3d)[..., 2:3] + rng.uniform(-0.1, 0.1, (n, 17, 3)).astype(np.float32)
    return ps.with_fields({"depth_model": {"name": "test", "kind": "metric"}}, uadd=uadd,
                          uadd_valid=np.ones((n, 17), bool), kp2d_valid=np.ones(n, bool))


_BASE_DIR: list[Path] = []


def _copy(d: Path) -> Path:
    dest = d / "ps"
    shutil.copytree(_BASE_DIR[0], dest)
    return dest


def _info(ps: Path) -> list[str]:
    return ["info", str(ps)]


def _field_case(field: str, variant: str) -> Case:
    spec = FIELDS[field]

    def build(d: Path) -> tuple[list[str], list[str]]:
        ps = _copy(d)
        f = ps / f"{field}.npy"
        a = np.load(f)
        n = len(a)
        tail = a.shape[1:]
        if variant == "shape":  # one joint fewer (or a stray extra axis for per-frame scalars)
            bad = a[:, :-1] if a.ndim > 1 else a[:, None].repeat(2, 1)
            np.save(f, bad)
        elif variant == "rows":
            np.save(f, a[:-1])
        elif variant == "dtype":
            np.save(f, a.astype({"f": np.float64, "i": np.int64, "b": np.uint8}[spec.kind]))
        elif variant == "strings":
            np.save(f, np.full(a.shape, "x", dtype="<U3"))
        elif variant == "bigendian":
            np.save(f, a.astype(a.dtype.newbyteorder(">")))
        elif variant == "nan":
            bad = a.copy()
            bad.reshape(n, -1)[n // 2, 0] = np.nan
            np.save(f, bad)
        elif variant == "nan_frame":  # every joint of a frame NaN, confidence 0, but kp2d_valid true
            bad = a.copy()
            bad[n // 2] = np.nan
            np.save(f, bad)
            conf = np.load(ps / "conf.npy")
            conf[n // 2] = 0.0
            np.save(ps / "conf.npy", conf)
        elif variant == "inf":
            bad = a.copy()
            bad.reshape(n, -1)[n // 2, 0] = np.inf
            np.save(f, bad)
        elif variant == "range":
            bad = a.copy()
            bad.reshape(n, -1)[1, 0] = -5 if field == "frame" else 1.5
            np.save(f, bad)
        elif variant == "order":  # clip ids not grouped / frames not increasing
            bad = a.copy()
            bad[[0, -1]] = bad[[-1, 0]]
            np.save(f, bad)
        elif variant == "empty":
            f.write_bytes(b"")
        elif variant == "truncated":
            truncate(f, 0.6)
        elif variant == "header_only":
            f.write_bytes(f.read_bytes()[:128])
        elif variant == "huge":
            f.write_bytes(npy_bytes((10**12, *tail), a.dtype.str))
        elif variant == "overflow":  # 2**32 * 2**32 elements: 0 after int64 wrap-around
            f.write_bytes(npy_bytes((1 << 32, 1 << 32, *tail), a.dtype.str))
        elif variant == "negative":
            f.write_bytes(npy_bytes((-n, *tail), a.dtype.str))
        elif variant == "pickle":
            f.write_bytes(npy_of(np.array([{"a": 1}] * n, dtype=object)))
        elif variant == "garbage":
            f.write_bytes(garbage(300))
        elif variant == "loop":
            symlink_loop(f)
        elif variant == "directory":
            f.unlink()
            f.mkdir()
        elif variant == "fifo":
            f.unlink()
            os.mkfifo(f)
        elif variant == "device":
            f.unlink()
            os.symlink("/dev/zero", f)
        elif variant == "missing":
            f.unlink()
        else:  # pragma: no cover
            raise ValueError(variant)
        return _info(ps), [f"{field}.npy", field] if variant not in ("loop", "missing", "directory", "fifo",
                                                                      "device") else [f"{field}.npy"]

    return Case(f"field-{field}-{variant}", build)


def _variants(field: str) -> list[str]:
    spec = FIELDS[field]
    v = ["shape", "rows", "dtype", "strings", *([] if spec.kind == "b" else ["bigendian"]), "empty", "truncated",
         "header_only", "huge", "overflow", "negative", "pickle", "garbage", "loop", "directory", "fifo", "device",
         "missing"]
    if spec.kind == "f":
        v += ["inf", "nan"]  # NaN where allowed is refused too: the base marks every value valid
    if spec.lo is not None or spec.hi is not None:
        v.append("range")
    if field in ("clip", "frame"):
        v.append("order")
    if field == "kp2d":
        v.append("nan_frame")
    return v


FIELD_CASES = [_field_case(f, v) for f in FIELDS for v in _variants(f)]


def _column_case(col: str, variant: str) -> Case:
    def build(d: Path) -> tuple[list[str], list[str]]:
        ps = _copy(d)
        f = ps / "clips" / f"{col}.npy"
        a = np.load(f)
        if variant == "rows":
            np.save(f, np.concatenate([a, a[:1]]))
        elif variant == "tail":
            np.save(f, a[:, :-1] if a.ndim > 1 else a[:, None].repeat(2, 1))
        elif variant == "dtype":  # numbers where strings belong and vice versa
            np.save(f, np.full(a.shape, "abc") if a.dtype.kind != "U" else np.zeros(a.shape, np.float32))
        elif variant == "nan":
            bad = a.astype(np.float64)
            bad.reshape(len(a), -1)[0, 0] = np.nan
            np.save(f, bad)
        elif variant == "nonpositive":
            np.save(f, np.zeros_like(a))
        elif variant == "non_utf8":
            np.save(f, np.array([b"S\xff\xfe"] * len(a), dtype="S3"))
        elif variant == "truncated":
            truncate(f, 0.5)
        elif variant == "huge":
            f.write_bytes(npy_bytes((10**12, *a.shape[1:]), a.dtype.str))
        elif variant == "pickle":
            f.write_bytes(npy_of(np.array(["x"] * len(a), dtype=object)))
        elif variant == "missing":
            f.unlink()
        elif variant == "loop":
            symlink_loop(f)
        else:  # pragma: no cover
            raise ValueError(variant)
        names = [f"{col}.npy"] if variant in ("truncated", "huge", "pickle", "missing", "loop") else [f"clips.{col}"]
        if variant == "rows":  # the table's length comes from the subject column: the first other column is named
            names = ["clips", "expected shape"]
        return _info(ps), names

    return Case(f"clips-{col}-{variant}", build)


COLUMN_CASES = [
    _column_case(c, v) for c, vs in {
        "subject": ("rows", "dtype", "non_utf8", "truncated", "huge", "pickle", "missing", "loop"),
        "split": ("rows", "non_utf8"),
        "source": ("dtype", "non_utf8"),
        "width": ("rows", "dtype", "nonpositive", "truncated"),
        "height": ("nonpositive", "huge"),
        "intrinsics": ("tail", "nan", "dtype", "missing"),
        "distortion": ("tail", "nan"),
        "fps": ("nan", "rows"),
    }.items() for v in vs
]


def _meta_case(variant: str) -> Case:
    def build(d: Path) -> tuple[list[str], list[str]]:
        ps = _copy(d)
        f = ps / "meta.json"
        meta = json.loads(f.read_text())
        expect = ["meta.json"]
        if variant == "empty":
            f.write_bytes(b"")
        elif variant == "invalid":
            f.write_text(f.read_text()[:-30])
        elif variant == "non_utf8":
            f.write_bytes(b'{"schema": "auglift.poseset", "source": "\xff\xfe"}')
        elif variant == "deep":
            f.write_text("[" * 200_000 + "]" * 200_000)
        elif variant == "huge":
            sparse_file(f, (64 << 20) + 1, b"{")
        elif variant == "list":
            f.write_text(json.dumps([meta]))
        elif variant == "schema":
            f.write_text(json.dumps(meta | {"schema": "other"}))
        elif variant == "version":
            f.write_text(json.dumps(meta | {"version": 99}))
        elif variant == "version_str":
            f.write_text(json.dumps(meta | {"version": "1"}))
        elif variant == "fields_list":
            f.write_text(json.dumps(meta | {"fields": ["kp2d"]}))
        elif variant == "unknown_field":
            f.write_text(json.dumps(meta | {"fields": meta["fields"] | {"../../etc/passwd": {}}}))
            expect.append("unknown field")
        elif variant == "joint_set":
            f.write_text(json.dumps(meta | {"joint_set": "h36m32"}))
            expect = ["kp2d.npy", "32 joints"]
        elif variant == "joint_set_unknown":
            f.write_text(json.dumps(meta | {"joint_set": "nope"}))
        elif variant == "joint_set_number":
            f.write_text(json.dumps(meta | {"joint_set": 17}))
        elif variant in ("frame_root_number", "extra_list", "units_text", "depth_model_number", "source_list"):
            key, value = {"frame_root_number": ("frame_root", 5), "extra_list": ("extra", [1]),
                          "units_text": ("units", "m"), "depth_model_number": ("depth_model", 3),
                          "source_list": ("source", ["a"])}[variant]
            f.write_text(json.dumps(meta | {key: value}))
            expect.append(key)
        elif variant == "num_frames":
            f.write_text(json.dumps(meta | {"num_frames": 5}))
        elif variant == "nan_literal":
            f.write_text(json.dumps(meta | {"num_frames": float("nan")}))
        elif variant == "directory":
            f.unlink()
            f.mkdir()
        elif variant == "loop":
            symlink_loop(f)
        elif variant == "missing":
            f.unlink()
        elif variant == "not_a_dir":
            shutil.rmtree(ps)
            ps.write_bytes(b"not a directory")
            expect = ["ps", "not a PoseSet directory"]
        elif variant == "checksum":
            a = np.load(ps / "kp3d.npy")
            np.save(ps / "kp3d.npy", a + 1)
            return ["info", "--checksums", str(ps)], ["kp3d.npy", "checksum"]
        else:  # pragma: no cover
            raise ValueError(variant)
        return _info(ps), expect

    return Case(f"meta-{variant}", build)


META_CASES = [_meta_case(v) for v in (
    "empty", "invalid", "non_utf8", "deep", "huge", "list", "schema", "version", "version_str", "fields_list",
    "unknown_field", "joint_set", "joint_set_unknown", "joint_set_number", "frame_root_number", "extra_list",
    "units_text", "depth_model_number", "source_list", "num_frames", "nan_literal",
    "directory", "loop", "missing", "not_a_dir", "checksum")]

CASES = FIELD_CASES + COLUMN_CASES + META_CASES


def _compute(base: Path) -> dict:
    _BASE_DIR[:] = [_base().save(base / "base")]
    try:
        return run_cases(CASES, base / "cases")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return shared_results(tmp_path_factory, "bad_poseset", _compute)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_malformed_poseset_gives_one_clear_error(case, results):
    problem = check_clean_error(results[case.id])
    assert not problem, problem


def test_the_valid_base_passes(tmp_path):
    """Control: the uncorrupted PoseSet the cases start from is accepted (so each case tests its corruption)."""
    ps = _base().save(tmp_path / "ps")
    out = subprocess.run([sys.executable, "-m", "auglift", "info", str(ps)], capture_output=True, text=True,
                         env=env_for_child(), timeout=120)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert PoseSet.load(ps).validate(checksums=True)


def test_non_utf8_path_and_pickled_meta_through_a_real_process(tmp_path):
    """Bytes that are not UTF-8 in a directory name reach the real CLI (surrogate-escaped argv) and
    are printed without a UnicodeEncodeError; a pickle where meta.json belongs is refused."""
    base = _base()
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9_\xff"))
    ps = base.save(odd)
    ok = subprocess.run([os.fsencode(sys.executable), b"-m", b"auglift", b"info", os.fsencode(ps)],
                        capture_output=True, env=env_for_child(), timeout=120)
    assert ok.returncode == 0, ok.stderr
    (ps / "meta.json").write_bytes(pickle.dumps({"schema": "auglift.poseset"}))
    bad = subprocess.run([os.fsencode(sys.executable), b"-m", b"auglift", b"info", os.fsencode(ps)],
                         capture_output=True, env=env_for_child(), timeout=120)
    lines = bad.stderr.decode("utf-8", "backslashreplace").strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and lines[0].startswith("auglift: error: "), lines
    assert "meta.json" in lines[0] and "caf\\udce9_\\udcff" in lines[0]  # the name, escaped on one line


def test_case_count():
    """The corpus size reported in docs/reliability.md."""
    assert len(FIELD_CASES) == 192 and len(COLUMN_CASES) == 26 and len(META_CASES) == 26
