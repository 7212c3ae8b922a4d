import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auglift.errors import DataError
from auglift.io import save_npy
from auglift.poseset import ClipTable, PoseSet
from conftest import make_poseset


def test_round_trip_and_mmap(tmp_path, poseset):
    poseset.save(tmp_path / "ps")
    meta = json.loads((tmp_path / "ps" / "meta.json").read_text())
    assert meta["schema"] == "auglift.poseset" and meta["version"] == 1
    assert meta["joint_set"] == "h36m17" and meta["num_frames"] == len(poseset)
    assert set(meta["fields"]) == set(poseset.fields)
    back = PoseSet.load(tmp_path / "ps")
    assert isinstance(back.kp3d, np.memmap)
    assert not back.kp3d.flags.writeable
    for k, v in poseset.fields.items():
        np.testing.assert_array_equal(getattr(back, k), v)
    for k, v in poseset.clips.columns.items():
        np.testing.assert_array_equal(back.clips.columns[k], v)
    assert back.uadd is None
    back.validate(checksums=True)
    assert back.clips.record(0)["subject"] == "S1"


def test_select_and_clip_ranges(poseset):
    np.testing.assert_array_equal(poseset.clip_ranges, [[0, 20], [20, 40], [40, 60]])
    tr = poseset.select(split="train")
    assert len(tr) == 40 and len(tr.clips) == 2
    np.testing.assert_array_equal(np.unique(tr.clip), [0, 1])
    np.testing.assert_array_equal(tr.kp3d[20:], poseset.kp3d[40:])
    assert len(poseset.select(subject="S2")) == 20
    assert len(poseset.select(action=["walk", "sit"], split="test")) == 20
    one = poseset.select(clips=[1])
    assert np.shares_memory(one.kp3d, poseset.kp3d)  # contiguous -> view
    assert len(poseset.select(subject="nobody")) == 0


def test_windows_centre_edge_padding():
    ps = make_poseset(2, [5, 3])
    w = ps.windows(5)
    assert len(w) == 8 and w.target == 2
    r = w.rows()
    np.testing.assert_array_equal(r[0], [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(r[4], [2, 3, 4, 4, 4])
    np.testing.assert_array_equal(r[5], [5, 5, 5, 6, 7])  # never crosses into the other clip
    np.testing.assert_array_equal(w.target_rows(), np.arange(8))
    np.testing.assert_array_equal(w.valid()[0], [False, False, True, True, True])


def test_windows_modes():
    ps = make_poseset(2, [10, 4])
    assert len(ps.windows(5, pad="none")) == 6  # only clip 0 has full windows
    c = ps.windows(3, anchor="causal")
    np.testing.assert_array_equal(c.rows()[1], [0, 0, 1])
    m = ps.windows(4, anchor="start", stride=4)
    np.testing.assert_array_equal(m.rows(), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 9, 9], [10, 11, 12, 13]])
    assert m.target is None
    s = ps.windows(1, stride=3, clips=np.array([True, False]))
    np.testing.assert_array_equal(s.rows()[:, 0], [0, 3, 6, 9])
    with pytest.raises(ValueError):
        ps.windows(4)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=6), st.integers(1, 9), st.integers(1, 4),
       st.sampled_from(["center", "causal", "start"]), st.sampled_from(["edge", "none"]))
def test_windows_stay_inside_their_clip(counts, length, stride, anchor, pad):
    if anchor == "center" and length % 2 == 0:
        length += 1
    ps = make_poseset(len(counts), counts, with_optional=False)
    w = ps.windows(length, stride=stride, anchor=anchor, pad=pad)
    rows = w.rows()
    assert rows.shape == (len(w), length)
    if len(w):
        clip_of = ps.clip[rows]
        assert (clip_of == clip_of[:, :1]).all()
        assert (np.diff(rows, axis=1) >= 0).all()
        if pad == "none":
            assert w.valid().all()
    if anchor != "start" and stride == 1 and pad == "edge":
        assert len(w) == len(ps)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=4), st.integers(0, 1000))
def test_save_load_round_trip_property(tmp_path_factory, counts, seed):
    ps = make_poseset(len(counts), counts, seed=seed)
    path = tmp_path_factory.mktemp("rt") / "ps"
    ps.save(path)
    back = PoseSet.load(path, validate=True)
    assert len(back) == len(ps)
    for k, v in ps.fields.items():
        np.testing.assert_array_equal(getattr(back, k), v)


def test_write_field_adds_uadd(saved_poseset):
    ps = PoseSet.load(saved_poseset)
    uadd = np.random.default_rng(0).normal(size=(len(ps), 17, 3)).astype(np.float32)
    PoseSet.write_field(saved_poseset, "uadd", uadd, {"depth_model": {"name": "oracle"}})
    back = PoseSet.load(saved_poseset)
    np.testing.assert_array_equal(back.uadd, uadd)
    assert back.meta["depth_model"] == {"name": "oracle"}
    back.validate(checksums=True)
    with pytest.raises(DataError, match="rows but the PoseSet has"):
        PoseSet.write_field(saved_poseset, "uadd", uadd[:5])


# ----------------------------------------------------------------------------- bad input
def _break(path, name, arr):
    save_npy(path / f"{name}.npy", arr)


@pytest.mark.parametrize(
    ("name", "mutate", "message"),
    [
        ("kp3d", lambda a: a[:, :16], "expected 17 joints"),
        ("kp2d", lambda a: a[:10], "has 10 rows but the PoseSet has 60 frames"),
        ("kp3d", lambda a: a.astype(np.float64), "expected dtype float32"),
        ("conf", lambda a: a[..., None], "expected shape"),
        ("clip", lambda a: a + 5, "clip ids must lie in"),
        ("clip", lambda a: a[::-1].copy(), "grouped by clip"),
    ],
)
def test_structural_errors(saved_poseset, name, mutate, message):
    arr = np.load(saved_poseset / f"{name}.npy")
    _break(saved_poseset, name, mutate(arr))
    with pytest.raises(DataError, match=message) as exc:
        PoseSet.load(saved_poseset)
    assert str(exc.value).startswith(str(saved_poseset))
    assert f": {name}: " in str(exc.value)


@pytest.mark.parametrize(
    ("name", "mutate", "message"),
    [
        ("kp3d", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 7, np.nan, a), "NaN or inf"),
        ("kp2d", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 7, np.inf, a), "found inf"),
        ("conf", lambda a: a + 1.0, "<= 1.0"),
        ("conf", lambda a: a - 2.0, ">= 0.0"),
        ("frame", lambda a: np.zeros_like(a), "frames must increase"),
    ],
)
def test_value_errors(saved_poseset, name, mutate, message):
    arr = np.load(saved_poseset / f"{name}.npy")
    _break(saved_poseset, name, mutate(arr).astype(arr.dtype))
    PoseSet.load(saved_poseset)  # structure is fine
    with pytest.raises(DataError, match=message):
        PoseSet.load(saved_poseset, validate=True)


def test_missing_truncated_empty_pickle_fields(saved_poseset):
    (saved_poseset / "conf.npy").unlink()
    with pytest.raises(DataError, match="conf.npy: conf: file not found"):
        PoseSet.load(saved_poseset)
    (saved_poseset / "conf.npy").write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        PoseSet.load(saved_poseset)
    data = (saved_poseset / "kp3d.npy").read_bytes()
    save_npy(saved_poseset / "conf.npy", np.zeros((60, 17), np.float32))
    (saved_poseset / "kp3d.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated"):
        PoseSet.load(saved_poseset)
    np.save(saved_poseset / "kp3d.npy", np.array([1, "x"], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickle"):
        PoseSet.load(saved_poseset)


def test_meta_errors(saved_poseset, tmp_path):
    with pytest.raises(DataError, match="PoseSet directory not found"):
        PoseSet.load(tmp_path / "nope")
    meta = json.loads((saved_poseset / "meta.json").read_text())
    (saved_poseset / "meta.json").write_text(json.dumps(meta | {"version": 99}))
    with pytest.raises(DataError, match="unsupported schema version"):
        PoseSet.load(saved_poseset)
    (saved_poseset / "meta.json").write_text(json.dumps(meta | {"fields": meta["fields"] | {"bogus": {}}}))
    with pytest.raises(DataError, match="bogus: unknown field"):
        PoseSet.load(saved_poseset)
    (saved_poseset / "meta.json").write_text(json.dumps(meta | {"joint_set": "h37"}))
    with pytest.raises(DataError, match="joint_set"):
        PoseSet.load(saved_poseset)
    (saved_poseset / "meta.json").write_text(json.dumps(meta | {"schema": "other"}))
    with pytest.raises(DataError, match="schema"):
        PoseSet.load(saved_poseset)


def test_checksum_detects_silent_corruption(saved_poseset):
    arr = np.load(saved_poseset / "kp3d.npy")
    arr[0, 0, 0] += 1
    raw = (saved_poseset / "kp3d.npy").read_bytes()
    save_npy(saved_poseset / "kp3d.npy", arr)
    assert len(raw) == (saved_poseset / "kp3d.npy").stat().st_size
    with pytest.raises(DataError, match="checksum"):
        PoseSet.load(saved_poseset).validate(checksums=True)


def test_failed_save_leaves_nothing(tmp_path, poseset):
    bad = poseset.with_fields(conf=np.full_like(poseset.conf, 2.0))
    with pytest.raises(DataError):
        bad.save(tmp_path / "ps")
    assert list(tmp_path.iterdir()) == []
    poseset.save(tmp_path / "ps")
    boom = poseset.with_fields(kp3d=poseset.kp3d)
    import auglift.poseset as mod

    orig = mod.save_npy

    def failing(path, arr):
        if str(path).endswith("kp3d.npy"):
            raise OSError(28, "No space left on device")
        orig(path, arr)

    mod.save_npy = failing
    try:
        with pytest.raises(OSError):
            boom.save(tmp_path / "ps")
    finally:
        mod.save_npy = orig
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ps"]  # old set intact, no temp dirs
    PoseSet.load(tmp_path / "ps", validate=True)


def test_clip_table_errors():
    base = dict(subject=["a"], action=["x"], camera=["0"], split=["train"], width=[10], height=[10],
                intrinsics=[[1.0, 1.0, 5.0, 5.0]])
    ClipTable(**base)
    with pytest.raises(DataError, match="clips.bogus: unknown clip column"):
        ClipTable(**base, bogus=[1])
    with pytest.raises(DataError, match="clips.intrinsics: expected shape"):
        ClipTable(**(base | {"intrinsics": [[1.0, 2.0]]}))
    with pytest.raises(DataError, match="clips.width"):
        ClipTable(**(base | {"width": [0]}))
    with pytest.raises(DataError, match="clips.split: required"):
        ClipTable(**{k: v for k, v in base.items() if k != "split"})


def test_large_set_loads_lazily(tmp_path):
    """1.5 M frames: loading reads headers and memory-maps the arrays (timed in benchmarks/bench_poseset.py)."""
    n = 1_500_000
    root = tmp_path / "big"
    ps = make_poseset(3, 2, with_optional=False)
    ps.save(root)
    clip = np.repeat(np.arange(3, dtype=np.int32), n // 3)
    for name, shape, dt in (("clip", None, None), ("frame", (n,), np.int32), ("kp2d", (n, 17, 2), np.float32),
                            ("conf", (n, 17), np.float32), ("kp3d", (n, 17, 3), np.float32)):
        if name == "clip":
            save_npy(root / "clip.npy", clip)
            continue
        mm = np.lib.format.open_memmap(root / f"{name}.npy", mode="w+", dtype=dt, shape=shape)
        del mm  # sparse zero file
    meta = json.loads((root / "meta.json").read_text())
    meta["num_frames"] = n
    (root / "meta.json").write_text(json.dumps(meta))
    big = PoseSet.load(root)
    w = big.windows(243)
    assert len(big) == n and len(w) == n
    for name in ("kp2d", "conf", "kp3d"):  # nothing read into memory: the arrays stay maps of the files
        assert isinstance(big.fields[name], np.memmap), name
