import numpy as np
import pytest

from auglift.errors import DataError
from auglift.skeleton import (
    COCO17,
    FIT3D25,
    H36M17,
    JOINT_SETS,
    MPI_INF_3DHP17,
    MPI_INF_3DHP28,
    MPI_INF_3DHP_28_TO_17,
    SMPL24,
    conversion_matrix,
    get_joint_set,
    to_h36m,
)


def test_h36m_order_is_mmpose():
    assert H36M17.joints[0] == "pelvis"
    assert H36M17.joints[1:4] == ("right_hip", "right_knee", "right_foot")
    assert H36M17.joints[4:7] == ("left_hip", "left_knee", "left_foot")
    assert H36M17.joints[7:11] == ("spine", "thorax", "neck_nose", "head")
    assert H36M17.joints[11:14] == ("left_shoulder", "left_elbow", "left_wrist")
    assert H36M17.joints[14:17] == ("right_shoulder", "right_elbow", "right_wrist")


@pytest.mark.parametrize("js", list(JOINT_SETS.values()), ids=list(JOINT_SETS))
def test_every_set_is_consistent(js):
    perm = js.flip_permutation
    assert sorted(perm) == list(range(js.num_joints))
    assert (perm[perm] == np.arange(js.num_joints)).all()  # an involution
    for left, right in js.flip_pairs:
        assert js.joints[left].replace("left_", "") == js.joints[right].replace("right_", "")
    W = conversion_matrix(js)
    assert W.shape == (17, js.num_joints)
    np.testing.assert_allclose(W.sum(1), 1.0)
    # the tree has exactly one root and every joint reaches it
    roots = [i for i, p in enumerate(js.parents) if p < 0]
    assert len(roots) == 1
    for i in range(js.num_joints):
        seen = set()
        while i >= 0:
            assert i not in seen
            seen.add(i)
            i = js.parents[i]


def test_h36m_flip_pairs():
    assert set(H36M17.flip_pairs) == {(4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16)}


def _named(js, values: dict[str, np.ndarray]) -> np.ndarray:
    kp = np.full((js.num_joints, 3), np.nan)
    for i, n in enumerate(js.joints):
        kp[i] = values.get(n, np.array([np.nan] * 3))
    return kp


def test_coco_rule_on_named_joints():
    rng = np.random.default_rng(0)
    vals = {n: rng.normal(size=3) for n in COCO17.joints}
    kp = _named(COCO17, vals)
    conf = np.linspace(0.1, 0.9, 17)
    out, c = to_h36m(kp, "coco17", conf)
    pelvis = (vals["left_hip"] + vals["right_hip"]) / 2
    thorax = (vals["left_shoulder"] + vals["right_shoulder"]) / 2
    np.testing.assert_allclose(out[H36M17.index("pelvis")], pelvis)
    np.testing.assert_allclose(out[H36M17.index("thorax")], thorax)
    np.testing.assert_allclose(out[H36M17.index("spine")], (pelvis + thorax) / 2)
    np.testing.assert_allclose(out[H36M17.index("head")], (vals["left_eye"] + vals["right_eye"]) / 2)
    np.testing.assert_allclose(out[H36M17.index("neck_nose")], vals["nose"])
    np.testing.assert_allclose(out[H36M17.index("right_foot")], vals["right_ankle"])
    np.testing.assert_allclose(out[H36M17.index("left_wrist")], vals["left_wrist"])
    cidx = {n: i for i, n in enumerate(COCO17.joints)}
    assert c[0] == pytest.approx((conf[cidx["left_hip"]] + conf[cidx["right_hip"]]) / 2)
    assert c[H36M17.index("spine")] == pytest.approx(
        np.mean([conf[cidx[k]] for k in ("left_hip", "right_hip", "left_shoulder", "right_shoulder")]))
    assert c[H36M17.index("neck_nose")] == pytest.approx(conf[cidx["nose"]])


@pytest.mark.parametrize("name", ["halpe26", "mediapipe33", "openpose18"])
def test_coco_like_sets_follow_the_coco_rule(name):
    js = get_joint_set(name)
    rng = np.random.default_rng(1)
    vals = {n: rng.normal(size=3) for n in js.joints}
    out, _ = to_h36m(_named(js, vals), js)
    coco_vals = {n: vals[n] for n in COCO17.joints}
    ref, _ = to_h36m(_named(COCO17, coco_vals), COCO17)
    np.testing.assert_allclose(out, ref)


def test_3dhp_sets_agree():
    rng = np.random.default_rng(2)
    kp28 = rng.normal(size=(5, 28, 3))
    kp17 = kp28[:, list(MPI_INF_3DHP_28_TO_17)]
    a, _ = to_h36m(kp28, MPI_INF_3DHP28)
    b, _ = to_h36m(kp17, MPI_INF_3DHP17)
    np.testing.assert_allclose(a, b)
    # the classic index list used by 3DHP lifting code
    np.testing.assert_allclose(b, kp17[:, [14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]])


def test_fit3d_first_17_are_h36m_and_smpl_named():
    kp = np.random.default_rng(3).normal(size=(2, 25, 3))
    out, _ = to_h36m(kp, FIT3D25)
    np.testing.assert_allclose(out, kp[:, :17])
    s = np.random.default_rng(4).normal(size=(24, 3))
    out, _ = to_h36m(s, SMPL24)
    np.testing.assert_allclose(out[H36M17.index("left_knee")], s[SMPL24.index("left_knee")])
    np.testing.assert_allclose(out[H36M17.index("neck_nose")],
                               (s[SMPL24.index("neck")] + s[SMPL24.index("head")]) / 2)


def test_bad_joint_count_is_a_clear_error():
    with pytest.raises(DataError, match="expected .*17, D"):
        to_h36m(np.zeros((4, 16, 2)), "coco17")
    with pytest.raises(KeyError, match="unknown joint set"):
        get_joint_set("nope")
