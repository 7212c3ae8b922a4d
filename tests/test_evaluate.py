"""Evaluation: metrics against a direct computation, flip test, many-to-many scatter, breakdowns, reports, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _train_fixtures import TINY, add_uadd, moving_poseset, tiny_config, write_config
from auglift.checkpoint import Checkpoint
from auglift.encoding import encode, target
from auglift.errors import ConfigError, DataError
from auglift.evaluate import evaluate
from auglift.metrics import summary
from auglift.poseset import PoseSet
from auglift.predict import predict, scatter_rows, windows_for
from auglift.skeleton import get_joint_set
from auglift.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    ps = add_uadd(moving_poseset(6, [30, 17, 25, 9, 12, 20], seed=11))
    ps.save(root / "ps")
    add_uadd(moving_poseset(3, 15, seed=12, splits=("test",)), seed=1).save(root / "other")
    out = {"root": root}
    for name, kw in (("m2o", {"window": 5, "width": 32}), ("m2m", {"window": 8, "width": 32, "many_to_many": True}),
                     ("sb", None)):
        model = "simple_baseline" if kw is None else TINY
        sec = tiny_config(root / "ps", None, root / name, model=model, kwargs=kw, epochs=2, batch=16)
        out[name] = train(write_config(root / f"{name}.toml", sec))
    return out


def test_metrics_match_a_direct_computation_on_several_posesets(run):
    root = run["root"]
    res = evaluate(run["m2o"], [root / "ps", root / "other"], split="test", device="cpu", out=root / "ev")
    assert [d["name"] for d in res["datasets"]] == ["ps", "other"]
    ck = Checkpoint.load(run["m2o"])
    for d, path in zip(res["datasets"], [root / "ps", root / "other"]):
        ps = PoseSet.load(path)
        m = ps.clips.mask(split="test")
        p = predict(ck, ps, clips=m)
        rows = ps.rows_of(m)
        np.testing.assert_array_equal(p.rows, rows)  # every frame of the selection, once, in order
        want = summary(p.pred, target(ps.kp3d[rows]), clip=ps.clip[rows])
        for k, v in want.items():
            assert d["metrics"][k] == pytest.approx(v, rel=1e-9), k
        assert d["frames"] == len(rows)
        assert set(d["per_action"]) == set(ps.clips.action[m])
        assert sum(a["frames"] for a in d["per_action"].values()) == len(rows)
        mp = np.average([a["mpjpe"] for a in d["per_action"].values()],
                        weights=[a["frames"] for a in d["per_action"].values()])
        assert mp == pytest.approx(d["metrics"]["mpjpe"], rel=1e-9)
        assert list(d["per_joint"]) == list(get_joint_set("h36m17").joints)
        assert np.mean([j["mpjpe"] for j in d["per_joint"].values()]) == pytest.approx(d["metrics"]["mpjpe"])
        occ = d["occlusion"]
        vis = np.asarray(ps.visible[rows])
        assert occ["visible"]["joints"] == vis.sum() and occ["occluded"]["joints"] == (~vis).sum()
    saved = json.loads((root / "ev" / "eval.json").read_text())
    assert saved["datasets"][1]["metrics"]["mpjpe"] == pytest.approx(res["datasets"][1]["metrics"]["mpjpe"])
    md = (root / "ev" / "eval.md").read_text()
    assert "| ps |" in md and "| other |" in md and "| occluded |" in md and "| left_wrist |" in md


def test_flip_test_averages_with_the_mirrored_prediction(run):
    ps = PoseSet.load(run["root"] / "ps")
    ck = Checkpoint.load(run["m2o"])
    model = ck.build_model()
    state = ck.encoder
    perm = get_joint_set("h36m17").flip_permutation
    w = windows_for(ps, ck.lifter)
    x = torch.from_numpy(encode(ps, w.rows(np.arange(len(w))), state))
    from auglift.encoding import flip_input, flip_pose

    with torch.no_grad():
        plain = model(x)
        xf = flip_input(x, torch.as_tensor(perm), state["channels"], center=ck.config.augment.flip_center)
        mirrored = flip_pose(model(xf), torch.as_tensor(perm))
    on = predict(ck, ps, flip_test=True).pred
    off = predict(ck, ps, flip_test=False).pred
    np.testing.assert_allclose(off, plain[:, 0].numpy(), atol=1e-6)
    np.testing.assert_allclose(on, 0.5 * (plain + mirrored)[:, 0].numpy(), atol=1e-6)
    r_on = evaluate(ck, [ps], flip_test=True, device="cpu")
    r_off = evaluate(ck, [ps], flip_test=False, device="cpu")
    assert r_on["flip_test"] and not r_off["flip_test"]
    assert r_on["datasets"][0]["metrics"]["mpjpe"] != r_off["datasets"][0]["metrics"]["mpjpe"]


def test_many_to_many_predictions_cover_every_frame_once(run):
    ps = PoseSet.load(run["root"] / "ps")
    ck = Checkpoint.load(run["m2m"])
    assert ck.lifter.anchor == "start" and ck.lifter.receptive_field == 8
    p = predict(ck, ps, flip_test=False)
    np.testing.assert_array_equal(p.rows, np.arange(len(ps)))  # clips of 30, 17, 9 ... frames: edge windows padded
    model = ck.build_model()
    rows = np.arange(8)  # first window of the first clip (30 frames)
    with torch.no_grad():
        direct = model(torch.from_numpy(encode(ps, rows[None], ck.encoder)))[0].numpy()
    np.testing.assert_allclose(p.pred[:8], direct, atol=1e-6)
    seen = []
    res = evaluate(ck, [ps], device="cpu", on_prediction=lambda s, pr: seen.append((s, pr)))["datasets"][0]
    assert res["frames"] == len(ps) and np.isfinite(res["metrics"]["mpjve"])
    # the caller sees the predictions the metrics came from (the matrix caches its post-hoc errors from them)
    assert len(seen) == 1 and seen[0][0] is ps
    np.testing.assert_array_equal(seen[0][1].pred, predict(ck, ps).pred)


def test_nan_ground_truth_joints_are_left_out(run, tmp_path):
    ps = PoseSet.load(run["root"] / "ps")
    kp3d = np.array(ps.kp3d)
    kp3d[3, 5] = np.nan
    kp3d[10, :] = np.nan
    bad = ps.with_fields(kp3d=kp3d)
    ck = Checkpoint.load(run["sb"])
    res = evaluate(ck, [bad], device="cpu")["datasets"][0]
    assert res["joints_evaluated"] == len(ps) * 17 - 1 - 17
    assert all(np.isfinite(v) for v in res["metrics"].values())


def test_errors_are_clear(run, tmp_path):
    root = run["root"]
    with pytest.raises(ConfigError, match="trained on input 'uadd'.*'x,y' was requested"):
        evaluate(run["sb"], [root / "ps"], channels="xy", device="cpu")
    moving_poseset(2, 10, seed=3).save(tmp_path / "no_uadd")
    with pytest.raises(DataError, match=r"no_uadd: uadd: field is missing from this PoseSet \(needed by input"):
        evaluate(run["sb"], [tmp_path / "no_uadd"], device="cpu")
    rel = add_uadd(moving_poseset(2, 10, seed=3), depth_model={"name": "da2", "kind": "relative"})
    with pytest.raises(DataError, match="relative depth"):
        evaluate(run["sb"], [rel], device="cpu")
    with pytest.raises(DataError, match="no frames match"):
        evaluate(run["sb"], [root / "ps"], split="val", device="cpu")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="junk.pt: cannot read checkpoint"):
        Checkpoint.load(tmp_path / "junk.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "auglift.checkpoint", "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="evil.pt: cannot read checkpoint"):
        Checkpoint.load(tmp_path / "evil.pt")
    torch.save({"format": "something"}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not an auglift checkpoint"):
        Checkpoint.load(tmp_path / "other.pt")


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(1, 30), min_size=1, max_size=5), window=st.integers(1, 9),
       stride=st.integers(1, 9), anchor=st.sampled_from(["start", "center"]))
def test_scatter_rows_puts_every_prediction_on_its_frame(lengths, window, stride, anchor):
    """Window predictions that encode their own row number land on exactly that row (overlaps averaged)."""
    if anchor == "center" and window % 2 == 0:
        window += 1
    ps = moving_poseset(len(lengths), lengths, seed=0)
    w = ps.windows(window, stride=stride if anchor == "start" else 1, anchor=anchor)
    sel = np.arange(len(w))
    rows = w.rows(sel) if anchor == "start" else w.target_rows(sel)[:, None]
    pred = np.broadcast_to(rows[..., None, None].astype(np.float32), (*rows.shape, 17, 3))
    p = scatter_rows(np.ascontiguousarray(pred), w, sel)
    np.testing.assert_array_equal(p.pred[:, 0, 0], p.rows)
    if anchor == "center" or stride <= window:
        np.testing.assert_array_equal(p.rows, np.arange(len(ps)))  # full coverage
