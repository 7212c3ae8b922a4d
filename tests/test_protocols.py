"""Evaluation protocols: the same predictions scored under each published convention, checked
against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from auglift.errors import ConfigError, DataError
from auglift.protocols import H36M_ACTIONS, PROTOCOLS, action_table, evaluate_protocol, h36m_action


def skeleton(n: int, seed: int = 0) -> np.ndarray:
    """``(n, 17, 3)`` metres: random root-relative poses ~5 m in front of the camera."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(0, 0.3, (n, 17, 3))
    pose[:, 0] = 0.0
    return pose + np.array([0.1, 0.2, 5.0])


def offset_case():
    """Two actions: 2 frames of 'Directions 1' + 2 of 'Directions' (one action, 10 mm off) and
    6 frames of 'WalkingDog' (40 mm off). Every joint of a frame, the root included, is moved by
    the same vector: a root-relative protocol sees no error, one that keeps the root sees it all."""
    gt = skeleton(10)
    pred = gt - gt[:, :1]  # what a lifter predicts: root-relative
    pred[:4] += np.array([0.0, 0.0, 0.010])
    pred[4:] += np.array([0.0, 0.040, 0.0])
    actions = ["Directions 1"] * 2 + ["Directions"] * 2 + ["WalkingDog"] * 6
    clips = np.array([0, 0, 1, 1, 2, 2, 2, 2, 2, 2])
    return pred, gt, actions, clips


def test_root_and_averaging_conventions_match_a_hand_computation():
    pred, gt, actions, clips = offset_case()
    res = {name: evaluate_protocol(pred, gt, actions=actions, clips=clips, protocol=name) for name in PROTOCOLS}
    # VideoPose3D: root kept, mean of the action means (10 and 40 mm)
    assert res["videopose3d"]["mpjpe"] == pytest.approx(25.0)
    assert set(res["videopose3d"]["per_action"]) == {"Directions", "WalkDog"}
    assert res["videopose3d"]["per_action"]["WalkDog"]["frames"] == 6
    # MMPose: root kept, frame-weighted (4 frames at 10 mm, 6 at 40 mm)
    assert res["mmpose"]["mpjpe"] == pytest.approx((4 * 10 + 6 * 40) / 10)
    assert res["mmpose"]["per_action"]["Directions"]["mpjpe"] == pytest.approx(10.0)
    # root-relative protocols: the offsets vanish
    assert res["auglift"]["mpjpe"] == pytest.approx(0.0, abs=1e-9)
    assert res["motionbert"]["mpjpe"] == pytest.approx(0.0, abs=1e-9)
    # the project's default keeps sub-action groups apart
    assert set(res["auglift"]["per_action"]) == {"Directions 1", "Directions", "WalkingDog"}
    # a rigid offset is removed by Procrustes under every protocol
    for r in res.values():
        assert r["p_mpjpe"] == pytest.approx(0.0, abs=1e-6)
    assert res["videopose3d"]["actions_missing"] == [a for a in H36M_ACTIONS if a not in ("Directions", "WalkDog")]


def test_frame_weighting_against_action_averaging_by_hand():
    # per-frame errors that differ inside an action: action A frames of 3 and 5 mm, action B 1 frame of 20 mm
    gt = skeleton(3, seed=1)
    gt = gt - gt[:, :1]
    pred = gt.copy()
    for i, e in enumerate((0.003, 0.005, 0.020)):
        pred[i, 1:] += np.array([e, 0.0, 0.0])  # the root stays: every protocol sees the same joints
    actions = ["Eating", "Eating 1", "Smoking"]
    per_frame = np.array([3.0, 5.0, 20.0]) * 16 / 17  # 16 of 17 joints moved
    vp = evaluate_protocol(pred, gt, actions=actions, protocol="videopose3d")
    mb = evaluate_protocol(pred, gt, actions=actions, protocol="motionbert")
    mm = evaluate_protocol(pred, gt, actions=actions, protocol="mmpose")
    assert vp["mpjpe"] == pytest.approx((per_frame[:2].mean() + per_frame[2]) / 2)
    assert mb["mpjpe"] == pytest.approx(vp["mpjpe"])
    assert mm["mpjpe"] == pytest.approx(per_frame.mean())


def test_velocity_error_per_frame_and_per_second():
    # joint 1 drifts by 1 mm per frame in the prediction: velocity error 1 mm/frame on 1 of 17 joints
    n = 6
    gt = np.repeat(skeleton(1, seed=2), n, 0)
    pred = gt - gt[:, :1]
    pred[:, 1, 0] += 0.001 * np.arange(n)
    clips = np.array([0, 0, 0, 1, 1, 1])  # the step between clips is not a velocity
    for name in ("auglift", "mmpose"):
        res = evaluate_protocol(pred, gt, clips=clips, fps=50.0, protocol=name)
        assert res["mpjve"] == pytest.approx(1.0 / 17)
        assert res["mpjve_mm_s"] == pytest.approx(50.0 / 17)
    fps = np.array([25.0] * 3 + [50.0] * 3)
    res = evaluate_protocol(pred, gt, clips=clips, fps=fps, protocol="auglift")
    assert res["mpjve_mm_s"] == pytest.approx(np.mean([25, 25, 50, 50]) / 17)


def test_videopose3d_velocity_weights_each_clip_by_its_frames():
    # clip 0: 3 frames with a 17 mm/frame error on every step; clip 1: 6 frames without error
    gt = np.repeat(skeleton(1, seed=3), 9, 0)
    pred = gt - gt[:, :1]
    pred[:3, 1, 0] += 0.017 * np.arange(3)
    clips = np.array([0] * 3 + [1] * 6)
    vp = evaluate_protocol(pred, gt, clips=clips, protocol="videopose3d")
    mm = evaluate_protocol(pred, gt, clips=clips, protocol="mmpose")
    assert vp["mpjve"] == pytest.approx(1.0 * 3 / 9)  # clip means 1 and 0 mm, weights 3 and 6 frames
    assert mm["mpjve"] == pytest.approx(1.0 * 2 / 7)  # 2 of the 7 steps


def test_motionbert_25d_factor_and_damaged_sequences():
    gt = skeleton(4, seed=4)
    factor = np.array([0.002, 0.004, 0.003, 0.005])  # metres per 2.5D unit
    pred25 = (gt - gt[:, :1]) / factor[:, None, None]
    pred25[:, 3] += 10.0 / factor[:, None] * 0.001  # joint 3 off by 10 mm (10 / 1000 m) along every axis
    res = evaluate_protocol(pred25, gt / factor[:, None, None], factor=factor, protocol="motionbert")
    assert res["mpjpe"] == pytest.approx(10.0 * np.sqrt(3) / 17)
    # the damaged S9 sequences are left out (VideoPose3D keeps them)
    pred = gt - gt[:, :1]
    pred[:2] += 0.05
    actions, subjects = ["Greeting", "Greeting", "Greeting", "Greeting"], ["S9", "S9", "S11", "S11"]
    mb = evaluate_protocol(pred, gt, actions=actions, subjects=subjects, protocol="motionbert")
    vp = evaluate_protocol(pred, gt, actions=actions, subjects=subjects, protocol="videopose3d")
    assert mb["frames"] == 2 and mb["mpjpe"] == pytest.approx(0.0, abs=1e-9)
    assert vp["frames"] == 4 and vp["mpjpe"] > 40


def test_missing_joints_are_left_out():
    pred, gt, actions, clips = offset_case()
    gt = gt.copy()
    gt[0, 5] = np.nan
    pred[1] = np.nan  # a missing prediction
    res = evaluate_protocol(pred, gt, actions=actions, clips=clips, protocol="mmpose")
    assert res["frames"] == 9
    # a mean over the evaluated joints: frame 0 has 16 (10 mm), frames 2-3 17 (10 mm), 4-9 17 (40 mm)
    assert res["mpjpe"] == pytest.approx((16 * 10 + 2 * 17 * 10 + 6 * 17 * 40) / (16 + 8 * 17))


@pytest.mark.parametrize(("name", "canon"), [
    ("Directions 1", "Directions"), ("Directions_1", "Directions"), ("WalkingDog 1", "WalkDog"),
    ("WalkDog", "WalkDog"), ("TakingPhoto", "Photo"), ("Photo 1", "Photo"), ("WalkingTogether", "WalkTogether"),
    ("WalkTogether 1", "WalkTogether"), ("SittingDown 1", "SittingDown"), ("Sitting", "Sitting"),
    ("Posing", "Posing"), ("TS1", None), ("walk", None),
])
def test_h36m_action_names(name, canon):
    assert h36m_action(name) == canon


def test_non_h36m_groups_merge_trailing_subaction_numbers():
    gt = skeleton(4, seed=5)
    res = evaluate_protocol(gt - gt[:, :1], gt, actions=["walk 1", "walk 2", "TS1", "TS1"], protocol="videopose3d")
    assert set(res["per_action"]) == {"walk", "TS1"} and "actions_missing" not in res


def test_action_table_lists_the_15_actions_in_order():
    pred, gt, actions, _ = offset_case()
    table = action_table({"VideoPose3D": evaluate_protocol(pred, gt, actions=actions, protocol="videopose3d")})
    head, _, row = table.splitlines()
    assert head.split(" | ")[1:16] == list(H36M_ACTIONS)
    cells = [c.strip() for c in row.strip("| ").split("|")]
    assert cells[0] == "VideoPose3D" and cells[1] == "10.0" and cells[13] == "40.0" and cells[-1] == "25.0"
    assert cells[2] == "-"


def test_bad_input():
    gt = skeleton(2)
    with pytest.raises(ConfigError, match="protocol"):
        evaluate_protocol(gt, gt, protocol="h36m")
    with pytest.raises(DataError, match="pred"):
        evaluate_protocol(gt[:, :, :2], gt[:, :, :2])
