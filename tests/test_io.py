import errno
import io
import os
import pickle

import numpy as np
import pytest

from auglift.errors import DataError
from auglift.io import atomic_write, load_npy, read_json, save_npy, write_json
from auglift.safe_pickle import RestrictedUnpickler, load_npz_restricted, load_pickle


def test_atomic_write_keeps_old_content_on_failure(tmp_path):
    p = tmp_path / "a.json"
    write_json(p, {"x": 1})
    with pytest.raises(RuntimeError), atomic_write(p, "w") as fh:
        fh.write('{"x": 2')
        raise RuntimeError("boom")
    assert read_json(p) == {"x": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["a.json"]  # no temp files left


def test_written_files_get_the_usual_mode(tmp_path):
    write_json(tmp_path / "m.json", {})
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o666 & ~mask


def test_full_disk_fails_cleanly(tmp_path, monkeypatch):
    p = tmp_path / "arr.npy"
    save_npy(p, np.arange(3))

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        save_npy(p, np.arange(10))
    monkeypatch.undo()
    np.testing.assert_array_equal(load_npy(p), np.arange(3))
    assert sorted(f.name for f in tmp_path.iterdir()) == ["arr.npy"]


def test_load_npy_bad_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_npy(tmp_path / "missing.npy", field="kp2d")
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        load_npy(tmp_path / "empty.npy")
    save_npy(tmp_path / "t.npy", np.zeros((100, 17, 2), np.float32))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-10])
    with pytest.raises(DataError, match="truncated"):
        load_npy(tmp_path / "t.npy", field="kp2d")
    (tmp_path / "junk.npy").write_bytes(b"hello world, not numpy")
    with pytest.raises(DataError, match="not a valid .npy"):
        load_npy(tmp_path / "junk.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickle"):
        load_npy(tmp_path / "obj.npy")
    with pytest.raises(DataError, match="object array"):
        save_npy(tmp_path / "x.npy", np.array([None], dtype=object))


def test_read_json_errors(tmp_path):
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(DataError, match="invalid JSON"):
        read_json(tmp_path / "bad.json")
    (tmp_path / "latin.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(DataError, match="UTF-8"):
        read_json(tmp_path / "latin.json")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_reads_plain_data_and_refuses_code(tmp_path):
    good = {"poses": np.arange(6.0).reshape(2, 3), "name": "seq", "ids": [1, 2], "t": (1, 2.5)}
    (tmp_path / "good.pkl").write_bytes(pickle.dumps(good, protocol=2))
    loaded = load_pickle(tmp_path / "good.pkl")
    np.testing.assert_array_equal(loaded["poses"], good["poses"])
    assert loaded["name"] == "seq" and loaded["ids"] == [1, 2]
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"x": _Evil()}))
    with pytest.raises(DataError, match="posix.system|os.system|not allowed"):
        load_pickle(tmp_path / "evil.pkl")
    (tmp_path / "trunc.pkl").write_bytes(pickle.dumps(good)[:20])
    with pytest.raises(DataError, match="not a readable pickle"):
        load_pickle(tmp_path / "trunc.pkl")


def test_python2_latin1_pickle():
    # a protocol-2 pickle whose array buffer is a byte string, as 3DPW's files are
    arr = np.arange(4, dtype=np.float64)
    data = pickle.dumps({"a": arr}, protocol=2)
    got = RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    np.testing.assert_array_equal(got["a"], arr)


def test_npz_with_object_arrays(tmp_path):
    positions = {"S1": {"Walking": np.ones((5, 32, 3))}}
    np.savez(tmp_path / "d.npz", positions_3d=np.array(positions, dtype=object), n=np.arange(3))
    out = load_npz_restricted(tmp_path / "d.npz")
    np.testing.assert_array_equal(out["n"], np.arange(3))
    assert out["positions_3d"].item()["S1"]["Walking"].shape == (5, 32, 3)
    np.savez(tmp_path / "e.npz", x=np.array([_Evil()], dtype=object))
    with pytest.raises(DataError, match="not allowed"):
        load_npz_restricted(tmp_path / "e.npz")
