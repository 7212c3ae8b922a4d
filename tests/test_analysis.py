"""Post-hoc analyses (auglift.analysis) on hand-made arrays: buckets, values, rendering."""

import numpy as np
import pytest

from auglift.analysis import (
    FrameErrors,
    analyse,
    bucket_means,
    descriptor_depth_error,
    error_2d,
    novelty,
    occluded_fraction,
    ordering_accuracy,
    pose_prototypes,
    quantile_buckets,
    render,
)
from auglift.poseset import PoseSet


def test_prototypes_and_novelty_distances():
    rng = np.random.default_rng(0)
    a, b = np.zeros((17, 3)), np.full((17, 3), 0.5)
    train = np.concatenate([a + 0.001 * rng.standard_normal((50, 17, 3)), b + 0.001 * rng.standard_normal((50, 17, 3))])
    protos = pose_prototypes(train, 2, seed=0)
    assert protos.shape == (2, 17, 3)
    assert sorted(np.round(protos.mean((1, 2)), 2)) == [0.0, 0.5]
    test = np.stack([a, b, a + 0.1])  # two known poses, one 100 mm away from prototype a on every axis
    d = novelty(test, protos)
    assert d[:2] == pytest.approx([0.0, 0.0], abs=3.0)
    assert d[2] == pytest.approx(100 * np.sqrt(3), rel=0.03)  # RMS joint distance, mm


def test_quantile_and_bucket_means():
    b, edges = quantile_buckets(np.arange(8.0))
    assert b.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and edges.tolist() == pytest.approx([1.75, 3.5, 5.25])
    b2, _ = quantile_buckets(np.array([0.0, 1.0, np.nan, 2.0]))
    assert b2[2] == 3  # NaN goes to the worst bucket
    err = np.array([[10.0, 20.0], [30.0, np.nan], [5.0, 5.0]])
    mean, cnt = bucket_means(err, np.array([0, 1, 0]), 3)  # per frame
    assert mean[:2].tolist() == [10.0, 30.0] and np.isnan(mean[2]) and cnt.tolist() == [4, 1, 0]
    mean, cnt = bucket_means(err, np.array([[0, 1], [1, 1], [0, 0]]), 2)  # per joint
    assert mean.tolist() == pytest.approx([20 / 3, 25.0]) and cnt.tolist() == [3, 2]


def test_occlusion_and_2d_error():
    vis = np.array([[True] * 4, [True, False, True, True], [False] * 4])
    assert occluded_fraction(vis).tolist() == [0.0, 0.25, 1.0]
    kp = np.zeros((1, 2, 2))
    gt = np.array([[[3.0, 4.0], [np.nan, 0.0]]])
    e = error_2d(kp, gt)
    assert e[0, 0] == 5.0 and np.isnan(e[0, 1])


def test_descriptor_error_and_ordering():
    z = np.array([[4.0, 4.2, 3.8, 4.5]])  # metres, joint 0 is the root
    kp3d = np.zeros((1, 4, 3))
    kp3d[..., 2] = z
    d = z + np.array([[0.0, 0.05, 0.0, -0.1]])  # joint 3 read 100 mm too near
    uadd = np.repeat(d[..., None], 3, -1)
    valid = np.ones((1, 4), bool)
    err = descriptor_depth_error(uadd, kp3d, valid)
    assert err[0] == pytest.approx([0.0, 50.0, 0.0, 100.0])
    # relative depth: an affine map of the true depth is fitted away exactly
    err_rel = descriptor_depth_error(np.repeat(2.0 * kp3d[..., 2:] + 7.0, 3, -1), kp3d, valid, relative=True)
    assert err_rel[0] == pytest.approx([0.0] * 4, abs=1e-6)
    v2 = valid.copy()
    v2[0, 0] = False  # no root: nothing is measurable
    assert np.isnan(descriptor_depth_error(uadd, kp3d, v2)).all()
    # ordering: pairs (0,1) 0.2 m, (0,2) 0.2, (0,3) 0.5, (1,2) 0.4, (1,3) 0.3, (2,3) 0.7 apart: all count;
    # d = 4.0, 4.25, 3.8, 4.4 keeps every order -> 1.0; swapping joints 1 and 3 breaks (1,3) only
    acc, per_joint = ordering_accuracy(d, z, valid)
    assert acc == 1.0 and (per_joint == 1.0).all()
    bad = np.array([[4.0, 4.6, 3.8, 4.4]])
    acc, per_joint = ordering_accuracy(bad, z, valid)
    assert acc == pytest.approx(5 / 6) and per_joint.tolist() == pytest.approx([1.0, 2 / 3, 1.0, 2 / 3])
    acc_disp, _ = ordering_accuracy(1.0 / bad, z, valid, larger_is_nearer=True)  # disparity: same answer
    assert acc_disp == pytest.approx(5 / 6)
    acc_gap, pj = ordering_accuracy(bad, z, valid, min_gap=0.45)  # only (0,3) and (2,3) remain
    assert acc_gap == 1.0 and np.isnan(pj[1])


def _tiny_poseset(n: int, seed: int) -> PoseSet:
    rng = np.random.default_rng(seed)
    kp3d = (rng.standard_normal((n, 17, 3)) * 0.2 + [0, 0, 4]).astype(np.float32)
    kp2d_gt = (kp3d[..., :2] / kp3d[..., 2:] * 1000 + 500).astype(np.float32)
    kp2d = kp2d_gt + rng.standard_normal((n, 17, 2)).astype(np.float32) * np.linspace(0, 10, n)[:, None, None]
    visible = rng.random((n, 17)) > 0.2
    uadd = np.repeat(kp3d[..., 2:], 3, -1)
    clips = {"subject": ["s"], "action": ["a"], "camera": ["c"], "split": ["test"], "width": [1000],
             "height": [1000], "intrinsics": [[1000, 1000, 500, 500]]}
    return PoseSet({"clip": np.zeros(n, np.int32), "frame": np.arange(n, dtype=np.int32), "kp2d": kp2d,
                    "conf": np.ones((n, 17), np.float32), "kp3d": kp3d, "kp2d_gt": kp2d_gt, "visible": visible,
                    "uadd": uadd, "uadd_valid": np.ones((n, 17), bool)}, clips, {"depth_model": {"kind": "metric"}})


def test_analyse_and_render(tmp_path):
    train, test = _tiny_poseset(60, 0), _tiny_poseset(40, 1)
    sets = {"train": train, "test": test}
    rows = np.arange(40)
    # errors grow with the 2D noise (frame index): the worst 2D quartile must have the largest error
    recs = [FrameErrors("sb", inp, "lab", "t", iid, "test", ("train", None), rows,
                        np.repeat(np.linspace(10, 50, 40)[:, None], 17, 1).astype(np.float32) * f)
            for inp, f in (("xy", 1.0), ("uadd", 0.5)) for iid in (True, False)]
    tables = analyse(recs, sets, k=4)
    e2 = tables["error_2d"]["bars"]
    assert np.diff(e2["sb/xy"]["OOD"]).min() > 0
    assert np.asarray(e2["sb/uadd"]["ID"]) == pytest.approx(0.5 * np.asarray(e2["sb/xy"]["ID"]))
    assert tables["per_joint"]["bars"]["sb/xy"]["ID"] == pytest.approx([30.0] * 17)
    assert set(tables["novelty"]["bars"]["sb/xy"]) == {"ID", "OOD"}
    assert tables["descriptors"]["t"]["ordering"] == 1.0
    assert tables["descriptors"]["t"]["median_depth_error_mm"] == pytest.approx(0.0, abs=1e-3)
    assert tables["descriptors"]["t"]["off_share"] == 0.0
    md, paths = render(tables, tmp_path)
    assert "### Pose novelty" in md and "| sb/uadd | OOD |" in md and "### Depth descriptors" in md
    assert all(p.exists() and p.read_bytes()[:4] == b"\x89PNG" for p in paths) and len(paths) == 7
