"""Retargeting to H36M-17: skeleton detection, user mappings, up axis, height, floor, frame rate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _mocap_fixtures import (
    CMU_ASF_BONES,
    CMU_BVH_HEIGHT_M,
    CMU_BVH_TREE,
    CMU_UNIT_M,
    MIXAMO_RENAME,
    asf_text,
    random_amc,
    random_channels,
    random_frames,
    tree_skeleton,
    write_tree_bvh,
)
from auglift.datasets.mocap import (
    SKELETON_MAPS,
    Skeleton,
    detect_skeleton,
    find_motion_files,
    format_bvh,
    load_bvh,
    load_motion,
    load_motions,
    mapping_matrix,
    read_bvh,
    retarget,
)
from auglift.errors import ConfigError, DataError
from auglift.skeleton import H36M17

J = {n: i for i, n in enumerate(H36M17.joints)}
BIOVISION = {"LHipJoint": None, "RHipJoint": None, "LeftUpLeg": "LeftHip", "LeftLeg": "LeftKnee",
             "LeftFoot": "LeftAnkle", "RightUpLeg": "RightHip", "RightLeg": "RightKnee", "RightFoot": "RightAnkle",
             "LowerBack": None, "Spine": None, "Spine1": "Chest", "Neck1": None, "LeftShoulder": "LeftCollar",
             "LeftArm": "LeftShoulder", "LeftForeArm": "LeftElbow", "LeftHand": "LeftWrist",
             "RightShoulder": "RightCollar", "RightArm": "RightShoulder", "RightForeArm": "RightElbow",
             "RightHand": "RightWrist", "LeftToeBase": "LeftToe", "RightToeBase": "RightToe"}
UNKNOWN = {n: f"j{i:02d}" for i, (n, _, _) in enumerate(CMU_BVH_TREE)}


def make_bvh(tmp_path, name="m.bvh", *, rename=None, prefix="", per_m=100.0, up="y", frames=60, fps=120.0,
             seed=0, joint_positions=False, max_deg=35.0):
    rng = np.random.default_rng(seed)
    sk = tree_skeleton(CMU_BVH_TREE, rename=rename, prefix=prefix, scale=per_m, up=up)
    ch = random_channels(sk, rng, joint_positions=joint_positions)
    fr = random_frames(sk, ch, frames, rng, scale=per_m, up=up, max_deg=max_deg)
    return write_tree_bvh(tmp_path / name, sk, ch, fr, fps=fps)


@pytest.mark.parametrize(("rename", "prefix", "expect", "knee", "head"), [
    (None, "", "cmu_bvh", "LeftLeg", "Head_end"),
    (MIXAMO_RENAME, "mixamorig:", "mixamo", "mixamorig:LeftLeg", "mixamorig:Head_end"),
    (MIXAMO_RENAME, "", "motionbuilder", "LeftLeg", "Head_end"),
    (BIOVISION, "", "biovision", "LeftKnee", "Head_end"),
])
def test_detects_bvh_skeletons(tmp_path, rename, prefix, expect, knee, head):
    m = load_bvh(make_bvh(tmp_path, rename=rename, prefix=prefix, joint_positions=prefix != ""))
    W, name, feet = mapping_matrix(m)
    assert name == expect
    assert W[J["left_knee"], m.skeleton.index(knee)] == 1.0
    assert W[J["head"], m.skeleton.index(head)] == 1.0
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    assert {m.skeleton.names[k] for k in feet} >= {prefix + ("LeftAnkle" if expect == "biovision" else "LeftFoot")}


def test_detects_cmu_asf(tmp_path):
    (tmp_path / "01.asf").write_text(asf_text())
    text, _ = random_amc(CMU_ASF_BONES, 10, np.random.default_rng(0))
    (tmp_path / "01_01.amc").write_text(text)
    clip = load_motion(tmp_path / "01_01.amc", fps=30)
    assert clip.skeleton == "cmu_asf"
    assert detect_skeleton(["root", "lfemur"]) is None
    assert set(SKELETON_MAPS) == {"cmu_asf", "mixamo", "cmu_bvh", "biovision", "motionbuilder"}


def test_unknown_skeleton_needs_a_mapping(tmp_path):
    p = make_bvh(tmp_path, "odd.bvh", rename=UNKNOWN)
    with pytest.raises(DataError, match=r"odd\.bvh: line 2: unknown skeleton: its joint names \(j00, j01"):
        load_motion(p)
    table = {"pelvis": "j00", "right_hip": "j08", "right_knee": "j09", "right_foot": "j10",
             "left_hip": "j02", "left_knee": "j03", "left_foot": "j04", "spine": "j15",
             "thorax": "j16", "neck_nose": "j18", "head": "j18_end",
             "left_shoulder": "j21", "left_elbow": "j22", "left_wrist": "j23",
             "right_shoulder": "j26", "right_elbow": "j27", "right_wrist": "j28"}
    ref = load_motion(make_bvh(tmp_path, "ref.bvh"), fps=None)
    for form in ("dict", "toml", "json"):
        if form == "dict":
            mapping = table
        elif form == "toml":
            mapping = tmp_path / "map.toml"
            mapping.write_text("# h36m joint = source joint\n[joints]\n"
                               + "".join(f'{k} = "{v}"\n' for k, v in table.items()))
        else:
            mapping = tmp_path / "map.json"
            mapping.write_text(json.dumps(table))
        clip = load_motion(p, mapping=mapping, fps=None)
        assert clip.skeleton == "custom"
        np.testing.assert_allclose(clip.kp3d, ref.kp3d, atol=1e-9)


def test_bad_user_mappings(tmp_path):
    p = make_bvh(tmp_path, "odd.bvh", rename=UNKNOWN)
    bad = tmp_path / "bad.toml"
    bad.write_text('pelvis = "j00"\nleft_knee = "nope"\n')
    with pytest.raises(DataError, match=r"bad\.toml: left_knee: joint 'nope' is not in .*odd\.bvh"):
        load_motion(p, mapping=bad)
    bad.write_text('pelvis = "j00"\n')
    with pytest.raises(DataError, match=r"bad\.toml: the joint mapping does not define right_hip"):
        load_motion(p, mapping=bad)
    bad.write_text('hips = "j00"\n')
    with pytest.raises(DataError, match=r"bad\.toml: hips: not an H36M-17 joint"):
        load_motion(p, mapping=bad)
    bad.write_text('pelvis = [j00\n')
    with pytest.raises(DataError, match=r"bad\.toml: not a valid TOML joint mapping"):
        load_motion(p, mapping=bad)
    with pytest.raises(ConfigError, match="mapping file not found"):
        load_motion(p, mapping=tmp_path / "missing.toml")


def test_partial_override_on_a_known_skeleton(tmp_path):
    m = load_bvh(make_bvh(tmp_path))
    W, name, _ = mapping_matrix(m, {"spine": ["Spine", "Spine1"]})
    assert name == "cmu_bvh+custom"
    assert W[J["spine"], m.skeleton.index("Spine")] == 0.5 == W[J["spine"], m.skeleton.index("Spine1")]


def test_output_frame_height_and_floor(tmp_path):
    clip = load_motion(make_bvh(tmp_path, frames=240, max_deg=20.0), fps=30)
    kp = clip.kp3d
    assert kp.shape == (60, 17, 3) and clip.fps == 30.0
    assert clip.info["up_axis"] == "+y" and clip.info["unit"] == "cm"
    assert clip.height == pytest.approx(CMU_BVH_HEIGHT_M)
    # z is up: the head is above the pelvis, the pelvis above the ankles, in every frame
    assert np.all(kp[:, J["head"], 2] > kp[:, J["pelvis"], 2])
    assert np.all(kp[:, J["pelvis"], 2] > kp[:, [J["left_foot"], J["right_foot"]], 2].max(axis=1))
    # the floor is found from the feet: the 5th percentile of the lowest toe/ankle point is z = 0
    m = load_bvh(tmp_path / "m.bvh")
    pos = m.positions()[::4] @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]).T
    feet = [m.skeleton.index(n) for n in m.skeleton.names if "Foot" in n or "Toe" in n]
    lowest = pos[:, feet, 2].min(axis=1) - clip.info["floor_m"]
    assert np.percentile(lowest, 5) == pytest.approx(0.0, abs=1e-9)
    assert np.all(kp[:, [J["left_foot"], J["right_foot"]], 2].max(axis=1) > 0.0)
    # centred: the middle of the pelvis path's bounding box is above the origin
    path = kp[:, J["pelvis"], :2]
    np.testing.assert_allclose(path.min(axis=0) + path.max(axis=0), 0.0, atol=1e-12)
    assert np.ptp(path[:, 0]) + np.ptp(path[:, 1]) > 0.05        # the subject does move
    # left is left: the y-up source faces +z with its left on +x; the proper rotation onto z-up
    # keeps +x, so the subject faces -y in the world and its left hip has the larger x
    assert kp[0, J["left_hip"], 0] > kp[0, J["right_hip"], 0]


def to_z_up(src, dst):
    """Rewrite a y-up BVH as the same motion in a z-up file: offsets and positions Q v, rotations Q R Q^T."""
    from scipy.spatial.transform import Rotation

    Q = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    b = read_bvh(src)
    frames = b.frames.copy()
    starts = b.column_offsets
    for k, chans in enumerate(b.channels):
        cols = np.arange(starts[k], starts[k + 1])
        rot_cols = [c for c, n in zip(cols, chans) if n.endswith("rotation")]
        pos_cols = [c for c, n in zip(cols, chans) if n.endswith("position")]
        if rot_cols:
            seq = "".join(chans[c - starts[k]][0] for c in rot_cols)
            R = Rotation.from_euler(seq, b.frames[:, rot_cols], degrees=True).as_matrix()
            frames[:, rot_cols] = Rotation.from_matrix(Q @ R @ Q.T).as_euler(seq, degrees=True)
        if pos_cols:
            assert [chans[c - starts[k]][0] for c in pos_cols] == list("XYZ")
            frames[:, pos_cols] = b.frames[:, pos_cols] @ Q.T
    sk = b.skeleton
    zsk = Skeleton(sk.names, sk.parents, sk.offsets @ Q.T, sk.end_site, sk.lines)
    dst.write_text(format_bvh(zsk, b.channels, frames, b.frame_time))
    return dst


def test_y_up_and_z_up_files_agree(tmp_path):
    ypath = make_bvh(tmp_path, "y.bvh", seed=3)
    y = load_motion(ypath, fps=None)
    z = load_motion(to_z_up(ypath, tmp_path / "z.bvh"), fps=None)
    assert y.info["up_axis"] == "+y" and z.info["up_axis"] == "+z"
    np.testing.assert_allclose(y.kp3d, z.kp3d, atol=1e-6)
    forced = load_motion(ypath, fps=None, up="y")
    np.testing.assert_allclose(forced.kp3d, y.kp3d)
    with pytest.raises(ConfigError, match="up axis must be"):
        load_motion(ypath, up="w")


def test_height_normalisation(tmp_path):
    # a small body (1.68 * 0.75 = 1.26 m, in cm): the unit is still detected (cm), and
    # height="auto" scales it up to the 1.4 m lower bound
    small = make_bvh(tmp_path, "small.bvh", per_m=100.0 * 0.75)
    clip = load_motion(small, fps=None)
    assert clip.info["unit"] == "cm"
    assert clip.info["raw_height_m"] == pytest.approx(CMU_BVH_HEIGHT_M * 0.75)
    assert clip.height == pytest.approx(1.4)
    assert load_motion(small, fps=None, height=None).height == pytest.approx(CMU_BVH_HEIGHT_M * 0.75)
    exact = load_motion(small, fps=None, height=1.8)
    assert exact.height == pytest.approx(1.8)
    a, b = exact.kp3d, load_motion(small, fps=None, height=0.9).kp3d
    np.testing.assert_allclose(a[..., 2], 2 * b[..., 2], atol=1e-9)   # scaling is about the floor
    with pytest.raises(ConfigError, match="height must be"):
        load_motion(small, height=-1.0)


def test_limb_bones_rigid_after_retarget_and_resampling(tmp_path):
    clip = load_motion(make_bvh(tmp_path, frames=300, max_deg=90.0), fps=50)
    assert clip.num_frames == int(299 / 120 * 50) + 1
    for a, b in [("left_hip", "left_knee"), ("left_knee", "left_foot"), ("right_shoulder", "right_elbow"),
                 ("right_elbow", "right_wrist")]:
        d = np.linalg.norm(clip.kp3d[:, J[a]] - clip.kp3d[:, J[b]], axis=-1)
        assert np.ptp(d) < 1e-9, (a, b)
    assert np.linalg.norm(clip.kp3d[0, J["left_hip"]] - clip.kp3d[0, J["left_knee"]]) == pytest.approx(0.42)


def test_cmu_bvh_units_and_directories(tmp_path):
    d = tmp_path / "lib"
    d.mkdir()
    make_bvh(d, "a.bvh", per_m=1 / CMU_UNIT_M)
    make_bvh(d, "b.BVH", per_m=1 / 0.0254, rename=MIXAMO_RENAME, prefix="mixamorig:", joint_positions=True)
    (d / "sub").mkdir()
    (d / "sub" / "05.asf").write_text(asf_text())
    (d / "sub" / "05_01.amc").write_text(random_amc(CMU_ASF_BONES, 24, np.random.default_rng(1))[0])
    (d / "notes.txt").write_text("not motion")
    assert [f.name for f in find_motion_files(d)] == ["a.bvh", "b.BVH", "05_01.amc"]
    clips = load_motions(d, fps=30)
    assert [c.skeleton for c in clips] == ["cmu_bvh", "mixamo", "cmu_asf"]
    assert [c.info["unit"].split()[0] for c in clips] == ["cmu", "inch", "inch"]
    assert all(1.4 <= c.height <= 2.0 for c in clips)
    assert clips[2].num_frames == 6
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no motion files"):
        find_motion_files(tmp_path / "empty")
    with pytest.raises(DataError, match=r"missing: no such file or directory"):
        find_motion_files(tmp_path / "missing")
    with pytest.raises(DataError, match=r"notes\.txt: not a motion file"):
        load_motion(d / "notes.txt")


def test_retarget_keeps_file_fps(tmp_path):
    m = load_bvh(make_bvh(tmp_path, fps=60.0, frames=7))
    c = retarget(m, fps=None)
    assert c.fps == 60.0 and c.num_frames == 7 and c.info["source_fps"] == 60.0


def test_h36m_head_proportions(tmp_path):
    p = make_bvh(tmp_path, frames=40, max_deg=40.0)
    src = load_motion(p, fps=None, head="source")
    h36 = load_motion(p, fps=None)
    np.testing.assert_allclose(src.height, h36.height)
    s = h36.height / 1.75
    t, n, h = J["thorax"], J["neck_nose"], J["head"]
    for (a, b), length in zip(((t, n), (n, h)), (0.11, 0.105)):
        d_new = h36.kp3d[:, b] - h36.kp3d[:, a]
        d_src = src.kp3d[:, b] - src.kp3d[:, a]
        np.testing.assert_allclose(np.linalg.norm(d_new, axis=-1), length * s, atol=1e-12)
        cos = (d_new * d_src).sum(-1) / np.linalg.norm(d_new, axis=-1) / np.linalg.norm(d_src, axis=-1)
        np.testing.assert_allclose(cos, 1.0, atol=1e-12)          # the source's neck and head directions
    others = [j for j in range(17) if j not in (n, h)]
    np.testing.assert_allclose(h36.kp3d[:, others], src.kp3d[:, others], atol=1e-12)
    # the source's head top is 0.33 m above its neck base; H36M's head sits 0.215 m (x height/1.75) above
    assert np.linalg.norm(src.kp3d[0, h] - src.kp3d[0, t]) > 0.3
    with pytest.raises(ConfigError, match="head must be"):
        load_motion(p, head="big")
