import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from auglift import metrics
from auglift.errors import DataError


def _pose(seed=0, n=4):
    return np.random.default_rng(seed).normal(size=(n, 17, 3))


def test_mpjpe_hand_computed():
    gt = np.zeros((1, 3, 3))
    pred = np.zeros((1, 3, 3))
    pred[0, 1] = [0.003, 0.004, 0.0]  # 5 mm
    pred[0, 2] = [0.0, 0.0, 0.010]  # 10 mm
    assert metrics.mpjpe(pred, gt) == pytest.approx(5.0)  # (0 + 5 + 10) / 3
    mask = np.array([[True, True, False]])
    assert metrics.mpjpe(pred, gt, mask) == pytest.approx(2.5)


def test_mpjpe_is_root_relative():
    gt = _pose()
    assert metrics.mpjpe(gt + np.array([1.0, 2.0, 3.0]), gt) == pytest.approx(0.0, abs=1e-9)
    assert metrics.mpjpe(gt + 1.0, gt, root=None) == pytest.approx(1000 * np.sqrt(3))


def test_p_mpjpe_known_similarity_is_zero():
    gt = _pose(1)
    R = Rotation.from_euler("xyz", [10, 40, -25], degrees=True).as_matrix()
    pred = 1.7 * gt @ R.T + np.array([0.3, -1.0, 4.0])
    assert metrics.p_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-6)
    assert metrics.mpjpe(pred, gt) > 100


def test_p_mpjpe_does_not_undo_reflection():
    gt = _pose(2)
    pred = gt * np.array([-1.0, 1.0, 1.0])
    assert metrics.p_mpjpe(pred, gt) > 10


def test_n_mpjpe_scale_only():
    gt = _pose(3)
    gt = gt - gt[:, :1]
    assert metrics.n_mpjpe(0.5 * gt, gt) == pytest.approx(0.0, abs=1e-9)
    R = Rotation.from_euler("z", 30, degrees=True).as_matrix()
    assert metrics.n_mpjpe(gt @ R.T, gt) > 1  # rotation is not undone


def test_mpjve_skips_clip_boundaries():
    gt = np.zeros((4, 2, 3))
    pred = gt.copy()
    pred[2:, 1, 0] = 0.1  # a 100 mm jump between row 1 and 2 (a clip boundary)
    assert metrics.mpjve(pred, gt) == pytest.approx(100 / 6)
    assert metrics.mpjve(pred, gt, clip=np.array([0, 0, 1, 1])) == pytest.approx(0.0)


def test_pck_and_auc():
    gt = np.zeros((1, 4, 3))
    pred = gt.copy()
    pred[0, 1:, 0] = [0.05, 0.149, 0.3]  # root 0 mm, then 50, 149, 300 mm
    assert metrics.pck(pred, gt, root=None) == pytest.approx(75.0)
    assert metrics.pck(pred, gt, root=None, threshold_mm=100) == pytest.approx(50.0)
    th = metrics.AUC_THRESHOLDS_MM
    assert len(th) == 31 and th[0] == 0 and th[-1] == 150
    expected = np.mean([(np.array([0, 50, 149, 300]) <= t).mean() for t in th]) * 100
    assert metrics.auc(pred, gt, root=None) == pytest.approx(expected)


def test_breakdowns():
    err = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    by_action = metrics.breakdown(err, np.array(["a", "b", "a"]))
    assert by_action == {"a": (3.5, 4), "b": (3.5, 2)}
    vis = np.array([[True, False], [True, True], [False, False]])
    by_vis = metrics.breakdown(err, vis)
    assert by_vis[True] == (pytest.approx(8 / 3), 3)
    assert by_vis[False] == (pytest.approx(13 / 3), 3)
    np.testing.assert_allclose(metrics.per_joint(err), [3, 4])
    np.testing.assert_allclose(metrics.per_joint(err, vis), [2, 4])


def test_summary_keys_and_bad_shapes():
    gt = _pose(4)
    s = metrics.summary(gt + 0.01, gt)
    assert set(s) == {"mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "pck150", "auc"}
    assert s["mpjpe"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(DataError, match="does not match"):
        metrics.mpjpe(gt[:, :16], gt)
    with pytest.raises(DataError, match="mask"):
        metrics.mpjpe(gt, gt, mask=np.ones((2, 17), bool))


def test_torch_losses_match_numpy():
    gt = _pose(5)
    pred = gt + np.random.default_rng(6).normal(scale=0.02, size=gt.shape)
    loss = metrics.mpjpe_loss(torch.tensor(pred), torch.tensor(gt))
    assert float(loss) * 1000 == pytest.approx(metrics.mpjpe(pred, gt, root=None))
    v = metrics.velocity_loss(torch.tensor(pred)[None], torch.tensor(gt)[None])
    assert float(v) * 1000 == pytest.approx(metrics.mpjve(pred, gt, root=None))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.2, 5.0))
def test_invariances(seed, scale):
    rng = np.random.default_rng(seed)
    gt = rng.normal(size=(3, 17, 3))
    pred = gt + rng.normal(scale=0.05, size=gt.shape)
    assert metrics.mpjpe(gt, gt) == 0.0
    R = Rotation.random(random_state=seed % 1000).as_matrix()
    moved = scale * pred @ R.T + rng.normal(size=3)
    assert metrics.p_mpjpe(moved, gt) == pytest.approx(metrics.p_mpjpe(pred, gt), rel=1e-6, abs=1e-6)
