"""The predictions file (:mod:`auglift.predictions`): round trips, what it gathers from a PoseSet and a
trained lifter's predictions, and bad or hostile files (one DataError naming file and member)."""

from __future__ import annotations

import io
import pickle
import tempfile
import zipfile
from pathlib import Path
from unittest import mock

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auglift.cli import main
from auglift.errors import DataError
from auglift.poseset import ClipTable, PoseSet
from auglift.predictions import FORMAT, Predictions, compute_errors
from conftest import make_poseset

J = 17
_FAST = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10)


def f32(lo: float, hi: float, nan: bool = True) -> st.SearchStrategy[float]:
    s = st.floats(lo, hi, width=32)
    return st.one_of(s, st.just(float("nan"))) if nan else s


@st.composite
def predictions(draw: st.DrawFn) -> Predictions:
    c = draw(st.integers(1, 4))
    n = draw(st.integers(0, 12))
    arrays = {"pred": draw(hnp.arrays(np.float32, (n, J, 3), elements=f32(-3, 3))),
              "clip": draw(hnp.arrays(np.int32, n, elements=st.integers(0, c - 1))),
              "frame": draw(hnp.arrays(np.int32, n, elements=st.integers(0, 2**31 - 1)))}
    optional = {"gt": ((J, 3), f32(-3, 3)), "root": ((3,), f32(-50, 50)), "kp2d": ((J, 2), f32(-1e4, 1e4)),
                "conf": ((J,), f32(0, 1, nan=False)), "uadd": ((J, 3), f32(0, 100))}
    for name in draw(st.sets(st.sampled_from(sorted(optional)))):
        tail, elements = optional[name]
        arrays[name] = draw(hnp.arrays(np.float32, (n, *tail), elements=elements))
    text = {k: draw(names) for k in ("subject", "action", "camera")}
    clips = ClipTable(subject=[text["subject"] + str(i) for i in range(c)], action=[text["action"]] * c,
                      camera=[text["camera"]] * c, split=["test"] * c,
                      width=draw(st.lists(st.integers(1, 5000), min_size=c, max_size=c)),
                      height=draw(st.lists(st.integers(1, 5000), min_size=c, max_size=c)),
                      intrinsics=draw(hnp.arrays(np.float64, (c, 4), elements=st.floats(1, 5000))),
                      fps=draw(st.lists(st.floats(1, 240), min_size=c, max_size=c)))
    return Predictions(clips=clips, label=draw(names), source=draw(names), checkpoint=draw(names), **arrays)


@settings(max_examples=40, **_FAST)
@given(p=predictions())
def test_save_load_round_trip(p):
    with tempfile.TemporaryDirectory() as d, mock.patch("os.fsync", lambda fd: None):
        path = p.save(Path(d) / "p.npz")
        back = Predictions.load(path)
    for name in ("pred", "clip", "frame", "gt", "errors", "root", "kp2d", "conf", "uadd"):
        a, b = getattr(p, name), getattr(back, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert b.dtype == a.dtype and b.shape == a.shape, name
            np.testing.assert_array_equal(b, a, err_msg=name)  # NaN == NaN
    for k, v in p.clips.columns.items():
        np.testing.assert_array_equal(back.clips.columns[k], v, err_msg=k)
    assert (back.label, back.source, back.checkpoint, back.joint_set) == (p.label, p.source, p.checkpoint, "h36m17")
    assert (p.errors is None) == (p.gt is None)


def test_from_poseset_gathers_ground_truth_root_2d_and_the_clips_of_the_rows(tmp_path):
    ps = make_poseset(n_clips=4, frames=10, seed=2)
    rows = np.arange(12, 35)  # clips 1..3
    pred = np.asarray(ps.kp3d[rows]) + np.float32(0.02) * np.arange(J)[None, :, None]
    p = Predictions.from_poseset(pred, rows, ps, label="tcn uadd", checkpoint=tmp_path / "best.pt")
    kp3d = np.asarray(ps.kp3d[rows])
    np.testing.assert_allclose(p.gt, kp3d - kp3d[:, :1], atol=1e-6)
    np.testing.assert_allclose(p.pred, pred - pred[:, :1], atol=1e-6)  # root-relative
    np.testing.assert_allclose(p.root, kp3d[:, 0])
    np.testing.assert_array_equal(p.kp2d, ps.kp2d[rows])
    assert p.uadd is None and p.checkpoint == str(tmp_path / "best.pt")
    # joint j is off by 2 cm * j in each coordinate: |(0.02 j) * (1, 1, 1)| in mm
    np.testing.assert_allclose(p.errors, np.broadcast_to(20 * np.sqrt(3) * np.arange(J), (len(rows), J)), rtol=1e-4)
    assert list(p.clips.subject) == list(ps.clips.subject[1:]) and p.clip.min() == 0 and p.clip.max() == 2
    assert [p.clips.subject[c] for c in p.clip] == list(ps.clips.subject[ps.clip[rows]])
    np.testing.assert_array_equal(p.frame, ps.frame[rows])


def test_errors_of_a_trained_lifter_match_auglift_eval(tmp_path):
    """Predictions.from_poseset on predict.predict's output: the mean per-joint error is eval's MPJPE."""
    import torch

    from _infer_fixtures import train_lifter
    from auglift.checkpoint import Checkpoint
    from auglift.evaluate import evaluate
    from auglift.predict import predict

    torch.set_num_threads(1)
    ckpt_path = train_lifter(tmp_path, model="simple_baseline", channels="xyc", epochs=1, steps=2)
    ps = PoseSet.load(tmp_path / "train_ps")
    with torch.inference_mode():
        out = predict(Checkpoint.load(ckpt_path), ps)
    p = Predictions.from_poseset(out.pred, out.rows, ps, label="sb xyc", checkpoint=ckpt_path)
    res = evaluate(ckpt_path, [ps], device="cpu")
    assert float(np.nanmean(p.errors)) == pytest.approx(res["datasets"][0]["metrics"]["mpjpe"], rel=1e-5)
    back = Predictions.load(p.save(tmp_path / "train.predictions.npz"))
    assert back.source == str(tmp_path / "train_ps") and len(back) == len(ps)


def test_compute_errors_is_nan_where_either_side_is():
    gt = np.zeros((2, J, 3), np.float32)
    pred = gt.copy()
    pred[0, 3] = [0.3, 0.4, 0.0]
    gt[1, 5] = np.nan
    err = compute_errors(pred, gt)
    assert err[0, 3] == pytest.approx(500.0) and np.isnan(err[1, 5]) and np.nansum(err) == pytest.approx(500.0)


# ----------------------------------------------------------------------------- bad files
def _valid() -> Predictions:
    ps = make_poseset(n_clips=2, frames=5, seed=1)
    return Predictions.from_poseset(np.asarray(ps.kp3d), np.arange(len(ps)), ps, label="x")


def _members(p: Predictions, tmp: Path) -> dict[str, np.ndarray]:
    with np.load(p.save(tmp / "valid.npz"), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write(path: Path, members: dict[str, np.ndarray]) -> Path:
    np.savez(path, **members)
    return path


def _changed(**changes):
    def edit(m: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        m = dict(m)
        for k, v in changes.items():
            if v is None:
                m.pop(k)
            else:
                m[k] = v
        return m
    return edit


def _inf(m):
    m = dict(m)
    m["pred"] = m["pred"].copy()
    m["pred"][0, 0, 0] = np.inf
    return m


def _errors_off(m):
    m = dict(m)
    m["errors"] = m["errors"] + 1.0
    return m


BAD = {
    "no format member": (_changed(format=None), "format"),
    "another format": (_changed(format=np.array("auglift.poses3d")), "format"),
    "future version": (_changed(version=np.array(2)), "version"),
    "missing pred": (_changed(pred=None), "pred"),
    "16 joints": (lambda m: _changed(pred=m["pred"][:, :16])(m), "pred"),
    "rows differ": (lambda m: _changed(frame=m["frame"][:-1])(m), "frame"),
    "clip id out of range": (lambda m: _changed(clip=m["clip"] + 5)(m), "clip"),
    "negative frame": (lambda m: _changed(frame=m["frame"] - 100)(m), "frame"),
    "inf": (_inf, "pred"),
    "confidence above 1": (lambda m: _changed(conf=m["conf"] + 2)(m), "conf"),
    "errors do not match": (_errors_off, "errors"),
    "errors without gt": (_changed(gt=None), "errors"),
    "string dtype for pred": (lambda m: _changed(pred=m["pred"].astype(str))(m), "pred"),
    "label is an array": (_changed(label=np.array(["a", "b"])), "label"),
    "unknown member": (_changed(extra=np.zeros(3)), "extra"),
    "unknown joint set": (_changed(joint_set=np.array("h36m18")), "joint_set"),
    "clip table missing subject": (_changed(**{"clips.subject": None}), "clips.subject"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_members_are_one_data_error_naming_file_and_member(case, tmp_path):
    edit, member = BAD[case]
    path = _write(tmp_path / "bad.npz", edit(_members(_valid(), tmp_path)))
    with pytest.raises(DataError) as err:
        Predictions.load(path)
    assert err.value.path == str(path) and err.value.field == member, str(err.value)


def test_pickles_garbage_and_truncated_files(tmp_path, capsys):
    m = _members(_valid(), tmp_path)
    pickled = tmp_path / "pickle.npz"
    np.savez(pickled, **(m | {"label": np.array([{"a": 1}], dtype=object)}))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(np.random.default_rng(0).bytes(3000))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes((tmp_path / "valid.npz").read_bytes()[:1500])
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    inner = io.BytesIO()
    pickle.dump({"x": 1}, inner)
    raw_pickle = tmp_path / "raw.npz"
    raw_pickle.write_bytes(inner.getvalue())
    for path in (pickled, garbage, truncated, empty, raw_pickle, tmp_path / "missing.npz"):
        with pytest.raises(DataError) as err:
            Predictions.load(path)
        assert str(path) in str(err.value)
        assert main(["view", str(path), "--out", str(tmp_path / "v.html")]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("auglift: error: ") and str(path) in lines[0]


@settings(max_examples=60, **_FAST)
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=8))
def test_corrupted_bytes_load_or_raise_data_error(flips):
    """Flipping bytes of a valid file: it still loads (a flip in padding) or is one DataError, never a traceback."""
    with tempfile.TemporaryDirectory() as d:
        data = bytearray(_VALID_BYTES[0])
        for pos, x in flips:
            data[pos % len(data)] ^= x
        path = Path(d) / "p.npz"
        path.write_bytes(bytes(data))
        try:
            Predictions.load(path)
        except DataError as exc:
            assert exc.path == str(path)


def _valid_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return _valid().save(Path(d) / "v.npz").read_bytes()


_VALID_BYTES = [_valid_bytes()]


def test_the_file_is_a_plain_npz_anyone_reads(tmp_path):
    p = _valid().save(tmp_path / "p.npz")
    assert zipfile.is_zipfile(p)
    with np.load(p, allow_pickle=False) as z:
        assert str(z["format"]) == FORMAT and z["pred"].shape == (10, J, 3) and z["errors"].dtype == np.float32
        assert list(z["clips.subject"]) == ["S1", "S2"]
