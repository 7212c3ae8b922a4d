"""BVH reader: hand-computed forward kinematics, channel layouts, units, round trips, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _mocap_fixtures import (
    CMU_BVH_HEIGHT_M,
    CMU_BVH_TREE,
    CMU_UNIT_M,
    random_channels,
    random_frames,
    reference_bvh_fk,
    rot,
    tree_skeleton,
    write_tree_bvh,
)
from auglift.datasets.mocap import Skeleton, format_bvh, load_bvh, parse_bvh, read_bvh, resample
from auglift.errors import DataError

CHAIN = """HIERARCHY
ROOT Hips
{{
  OFFSET 0 0 0
  CHANNELS 6 {root}
  JOINT Upper
  {{
    OFFSET 0 10 0
    CHANNELS 3 {joint}
    End Site
    {{
      OFFSET 0 10 0
    }}
  }}
}}
MOTION
Frames: {n}
Frame Time: 0.0333333
{frames}
"""


def chain(tmp_path, root: str, joint: str, frames: list[str], name: str = "chain.bvh"):
    p = tmp_path / name
    p.write_text(CHAIN.format(root=root, joint=joint, n=len(frames), frames="\n".join(frames)))
    return p


def test_hand_computed_zxy_chain(tmp_path):
    # Root at (1, 2, 3) turned 90 deg about Z; the joint turned 90 deg about its X.
    p = chain(tmp_path, "Xposition Yposition Zposition Zrotation Xrotation Yrotation",
              "Zrotation Xrotation Yrotation",
              ["1 2 3 90 0 0 0 90 0", "0 0 0 0 0 0 0 0 0"])
    m = load_bvh(p, units="m")
    pos = m.positions()
    assert m.skeleton.names == ("Hips", "Upper", "Upper_end")
    # frame 0: Upper = root + Rz(90) (0,10,0) = (1-10, 2, 3); tip = Upper + Rz(90) Rx(90) (0,10,0)
    #          Rx(90) (0,10,0) = (0,0,10); Rz(90) (0,0,10) = (0,0,10)
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [-9, 2, 3], [-9, 2, 13]], atol=1e-9)
    np.testing.assert_allclose(pos[1], [[0, 0, 0], [0, 10, 0], [0, 20, 0]], atol=1e-9)
    assert m.fps == 30.0


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_rotation_order_is_channel_order(tmp_path, order):
    angles = {"X": 30.0, "Y": -50.0, "Z": 70.0}
    joint = " ".join(f"{a}rotation" for a in order)
    vals = " ".join(str(angles[a]) for a in order)
    p = chain(tmp_path, "Xposition Yposition Zposition Xrotation Yrotation Zrotation", joint,
              [f"0 0 0 0 0 0 {vals}"])
    tip = load_bvh(p, units="m").positions()[0, 2]
    R = rot(order[0], angles[order[0]]) @ rot(order[1], angles[order[1]]) @ rot(order[2], angles[order[2]])
    np.testing.assert_allclose(tip, [0, 10, 0] + R @ [0, 10, 0], atol=1e-9)


def test_rotation_channels_before_positions_and_six_channel_joints(tmp_path):
    text = """HIERARCHY
ROOT Hips
{
  OFFSET 5 5 5
  CHANNELS 6 Yrotation Xrotation Zrotation Zposition Xposition Yposition
  JOINT Arm
  {
    OFFSET 0 10 0
    CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 2 0 0
    }
  }
}
MOTION
Frames: 1
Frame Time: 0.01
90 0 0 7 8 9 0 4 0 0 0 90
"""
    p = tmp_path / "six.bvh"
    p.write_text(text)
    pos = load_bvh(p, units="m").positions()[0]
    # root position channels (z=7, x=8, y=9) replace the root offset; root turned 90 deg about Y
    np.testing.assert_allclose(pos[0], [8, 9, 7], atol=1e-9)
    # the joint's position channels (0, 4, 0) replace its offset (0, 10, 0): Ry(90) (0,4,0) = (0,4,0)
    np.testing.assert_allclose(pos[1], [8, 13, 7], atol=1e-9)
    # tip: Ry(90) Rz(90) (2,0,0) = Ry(90) (0,2,0) = (0,2,0)
    np.testing.assert_allclose(pos[2], [8, 15, 7], atol=1e-9)


@pytest.mark.parametrize(("unit", "per_m"), [("m", 1.0), ("cm", 100.0), ("mm", 1000.0),
                                             ("inch", 1 / 0.0254), ("cmu", 1 / CMU_UNIT_M)])
def test_units_detected_and_given(tmp_path, unit, per_m):
    rng = np.random.default_rng(3)
    sk = tree_skeleton(CMU_BVH_TREE, scale=per_m)
    ch = random_channels(sk, rng)
    fr = random_frames(sk, ch, 12, rng, scale=per_m)
    p = write_tree_bvh(tmp_path / f"{unit}.bvh", sk, ch, fr)
    auto = load_bvh(p)
    assert auto.info["unit"] == unit
    expect = reference_bvh_fk(sk, ch, fr) / per_m
    np.testing.assert_allclose(auto.positions(), expect, atol=1e-7)
    np.testing.assert_allclose(np.ptp(auto.rest_positions()[:, 1]), CMU_BVH_HEIGHT_M, atol=1e-9)
    given_units = load_bvh(p, units=1.0 / per_m)
    np.testing.assert_allclose(given_units.positions(), expect, atol=1e-7)


def test_undetectable_units_name_the_file(tmp_path):
    sk = tree_skeleton(CMU_BVH_TREE, scale=7.0)       # 1.68 m body in units of 1/7 m: no known unit
    ch = random_channels(sk, np.random.default_rng(0))
    p = write_tree_bvh(tmp_path / "odd.bvh", sk, ch, random_frames(sk, ch, 3, np.random.default_rng(0), scale=7))
    with pytest.raises(DataError, match=r"odd\.bvh: units: cannot detect the length unit"):
        load_bvh(p)
    assert load_bvh(p, units=1 / 7.0).unit_scale == pytest.approx(1 / 7.0)


def test_bone_lengths_are_rigid(tmp_path):
    rng = np.random.default_rng(5)
    sk = tree_skeleton(CMU_BVH_TREE, scale=100)
    ch = random_channels(sk, rng)
    fr = random_frames(sk, ch, 200, rng, scale=100, max_deg=120)
    m = load_bvh(write_tree_bvh(tmp_path / "rigid.bvh", sk, ch, fr))
    pos = m.positions()
    child = np.arange(1, sk.num_joints)
    lengths = np.linalg.norm(pos[:, child] - pos[:, sk.parents[child]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(np.linalg.norm(sk.offsets[child], axis=1) / 100,
                                                        lengths.shape), atol=1e-9)
    # slerp resampling 120 -> 50 fps keeps every bone exactly as long
    r = resample(m, 50.0)
    pr = r.positions()
    lr = np.linalg.norm(pr[:, child] - pr[:, sk.parents[child]], axis=-1)
    np.testing.assert_allclose(lr, np.broadcast_to(lengths[0], lr.shape), atol=1e-9)
    assert r.num_frames == int((200 - 1) / 120 * 50) + 1


def test_integer_ratio_resampling_picks_frames(tmp_path):
    rng = np.random.default_rng(1)
    sk = tree_skeleton(CMU_BVH_TREE, scale=100)
    ch = random_channels(sk, rng)
    fr = random_frames(sk, ch, 121, rng, scale=100)
    m = load_bvh(write_tree_bvh(tmp_path / "r.bvh", sk, ch, fr))
    r = resample(m, 30.0)
    assert r.num_frames == 31 and r.fps == 30.0
    np.testing.assert_allclose(r.positions(), m.positions()[::4], atol=1e-12)


_ORDERS = st.sampled_from(["X", "Y", "Z", "XY", "YZ", "ZX", "XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orders=st.lists(_ORDERS, min_size=4, max_size=4),
       angles=st.lists(st.floats(-179.0, 179.0, allow_nan=False), min_size=3 * 4 * 6, max_size=3 * 4 * 6),
       pos_first=st.booleans(), scale=st.sampled_from([1.0, 100.0, 1 / 0.0254]))
def test_roundtrip_random_orders_write_read_fk(tmp_path, orders, angles, pos_first, scale):
    """Random rotation orders and angles survive write -> read, and FK matches the naive reference."""
    names = ("Root", "A", "B", "C", "C_end")
    parents = np.array([-1, 0, 1, 2, 3])
    offsets = np.array([[0, 0, 0], [0, 0.5, 0], [0.4, 0.3, 0.0], [0.0, -0.3, 0.5], [0.3, 0.1, -0.2]]) * scale
    sk = Skeleton(names, parents, offsets, np.array([0, 0, 0, 0, 1], bool), (1, 2, 3, 4, 5))
    pos = ("Xposition", "Yposition", "Zposition")
    chans = []
    for k, o in enumerate(orders):
        rots = tuple(f"{a}rotation" for a in o)
        chans.append((pos + rots if pos_first else rots + pos) if k == 0 else rots)
    chans.append(())
    F = 3
    a = np.asarray(angles).reshape(F, 4, 6)
    cols = []
    for k, ch in enumerate(chans):
        for j, c in enumerate(ch):
            cols.append(a[:, k, j] * (0.01 * scale if c.endswith("position") else 1.0))
    frames = np.stack(cols, axis=1)
    path = tmp_path / "rt.bvh"
    path.write_text(format_bvh(sk, chans, frames, 1 / 60))
    back = read_bvh(path)
    assert back.skeleton.names == names and back.channels == tuple(tuple(c) for c in chans)
    np.testing.assert_allclose(back.frames, frames, rtol=1e-8, atol=1e-9 * scale)
    assert back.fps == 60.0
    m = load_bvh(path, units=1.0)
    np.testing.assert_allclose(m.positions(), reference_bvh_fk(sk, chans, frames), atol=1e-7 * scale)


GOOD_HEAD = ("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n"
             "  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation\n")


@pytest.mark.parametrize(("body", "line", "message"), [
    (GOOD_HEAD + "  JOINT A\n  {\n    OFFSET 0 1 0\n    CHANNELS 3 Zrotation Xrotation Yrotation\n"
     "}\nMOTION\nFrames: 1\nFrame Time: 0.1\n0 0 0 0 0 0 0 0 0\n", 11, "MOTION before the hierarchy is closed"),
    (GOOD_HEAD + "}\n}\nMOTION\n", 7, "unmatched '}'"),
    (GOOD_HEAD + "  JOINT A\n  {\n    CHANNELS 3 Zrotation Xrotation Yrotation\n  }\n}\n", 9,
     "'A' .line 6. closed without an OFFSET"),
    (GOOD_HEAD + "  JOINT A\n  {\n    OFFSET 0 1 0\n    CHANNELS 3 Zrotation Xrotation Wrotation\n", 9,
     "unknown channel 'Wrotation'"),
    (GOOD_HEAD + "  JOINT A\n  {\n    OFFSET 0 1\n", 8, "expected 3 numbers"),
    (GOOD_HEAD + "  JOINT A\n  {\n    OFFSET 0 1 0\n    CHANNELS 4 Zrotation Xrotation Yrotation\n", 9,
     "the count says 4 but 3"),
    (GOOD_HEAD + "  JOINT A\n    OFFSET 0 1 0\n", 7, "expected '[{]' to open 'A'"),
    (GOOD_HEAD + "}\nJOINT B\n{\n", 7, "JOINT outside the ROOT block"),
    (GOOD_HEAD + "}\nROOT Other\n", 7, "a second ROOT"),
    (GOOD_HEAD + "  JOINT A\n  {\n    OFFSET 0 1 0\n    CHANNELS 3 Zrotation Xrotation Yrotation\n  }\n", 10,
     "the file ends inside the hierarchy: 'Hips' opened on line 2"),
    (GOOD_HEAD + "  JOINT Hips\n", 6, "duplicate joint name 'Hips'"),
    (GOOD_HEAD + "  BONE A\n", 6, "unexpected 'BONE'"),
    (GOOD_HEAD + "}\nMOTION\nFrames: 2\nFrame Time: 0.1\n0 0 0 0 0 0\n0 0 0 0 0\n", 11, "frame 1 has 5 values"),
    (GOOD_HEAD + "}\nMOTION\nFrames: 3\nFrame Time: 0.1\n0 0 0 0 0 0\n0 0 0 0 0 0\n", 11,
     "the file ends after 2 frames, 'Frames:' says 3"),
    (GOOD_HEAD + "}\nMOTION\nFrames: 1\nFrame Time: 0.1\n0 0 0 0 0 x\n", 10, "frame 0: expected numbers"),
    (GOOD_HEAD + "}\nMOTION\nFrames: 1\nFrame Time: 0.1\n0 0 0 0 0 0\n1 1 1 1 1 1\n", 11, "more frame lines"),
    (GOOD_HEAD + "}\nMOTION\nFrames: 1\nFrame Time: -0.1\n0 0 0 0 0 0\n", 9, "Frame Time: expected seconds > 0"),
    (GOOD_HEAD + "}\nMOTION\nFrame Time: 0.1\n", 8, "no 'Frames:' line"),
    ("ROOT Hips\n", 1, "expected 'HIERARCHY'"),
])
def test_broken_files_name_file_and_line(tmp_path, body, line, message):
    p = tmp_path / "broken.bvh"
    p.write_text(body)
    with pytest.raises(DataError, match=rf"broken\.bvh: line {line}: .*{message}"):
        read_bvh(p)


def test_parse_text_and_blank_lines(tmp_path):
    text = "\n\nHIERARCHY\nROOT My Hips {\n OFFSET 0 0 0\n CHANNELS 3 Xrotation Yrotation Zrotation\n}\n" \
           "MOTION\nFrames: 2\nFrame Time: 0.008333333\n\n1 2 3\n\n4 5 6\n\n"
    b = parse_bvh(text, "mem.bvh")
    assert b.skeleton.names == ("My Hips",)
    assert b.fps == 120.0
    np.testing.assert_array_equal(b.frames, [[1, 2, 3], [4, 5, 6]])


def _valid_text() -> str:
    rng = np.random.default_rng(0)
    sk = tree_skeleton(CMU_BVH_TREE[:8], scale=100)
    ch = random_channels(sk, rng)
    return format_bvh(sk, ch, random_frames(sk, ch, 3, rng, scale=100), 1 / 30)


@settings(max_examples=150, deadline=None)
@given(edits=st.lists(st.tuples(st.sampled_from(["drop", "dup", "swap", "junk", "cut"]), st.integers(0, 10_000),
                                st.text(alphabet=" {}0123456789.-eXYZrotainpsJOINTEndSite\t", max_size=12)),
                      min_size=1, max_size=4))
def test_mangled_files_raise_data_error_or_parse(edits):
    """Any damage to a BVH file is either still a valid file or a DataError (never another exception)."""
    lines = _valid_text().splitlines()
    for op, pos, junk in edits:
        i = pos % max(len(lines), 1)
        if op == "drop" and lines:
            del lines[i]
        elif op == "dup" and lines:
            lines.insert(i, lines[i])
        elif op == "swap" and len(lines) > 1:
            j = (i + 1) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "junk":
            lines.insert(i, junk)
        elif op == "cut" and lines:
            lines[i] = lines[i][: pos % (len(lines[i]) + 1)]
    try:
        b = parse_bvh("\n".join(lines), "fuzz.bvh")
    except DataError as exc:
        assert str(exc).startswith("fuzz.bvh: line ")
        return
    assert b.frames.shape[1] == sum(len(c) for c in b.channels)
    assert np.all(np.isfinite(b.frames))
