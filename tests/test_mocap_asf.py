"""ASF/AMC reader: hand-computed FK, CMU units, dof orders, radians, round trips, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _mocap_fixtures import CMU_ASF_BONES, CMU_UNIT_M, asf_text, random_amc, reference_asf_fk, rot
from auglift.datasets.mocap import find_asf, load_amc, read_asf
from auglift.errors import DataError

TINY_ASF = """# a two-bone arm
:version 1.10
:name tiny
:units
  mass 1.0
  length 1.0
  angle {angle}
:root
  order TX TY TZ RX RY RZ
  axis XYZ
  position 0 0 0
  orientation 0 0 0
:bonedata
  begin
    id 1
    name a
    direction 0 1 0
    length 10
    axis 0 0 0 XYZ
    dof rx ry rz
    limits (-180 180)
           (-180 180)
           (-180 180)
  end
  begin
    id 2
    name b
    direction 1 0 0
    length 5
    axis 0 0 {b_axis} XYZ
    dof {b_dof}
  end
:hierarchy
  begin
    root a
    a b
  end
"""


def tiny(tmp_path, frames: str, *, angle="deg", b_axis="90", b_dof="rx", header=":DEGREES"):
    (tmp_path / "tiny.asf").write_text(TINY_ASF.format(angle=angle, b_axis=b_axis, b_dof=b_dof))
    (tmp_path / "tiny.amc").write_text(f":FULLY-SPECIFIED\n{header}\n{frames}")
    return load_amc(tmp_path / "tiny.amc", units="m", fps=60)


def test_hand_computed_two_bones(tmp_path):
    # Frame 1: root at (1, 2, 3), a turned 90 deg about z, b turned 90 deg about its local x.
    # a: G_a = Rz(90); a ends at root + Rz(90) (0, 10, 0) = root + (-10, 0, 0).
    # b: C = Rz(90), so its local x is world y: C Rx(90) C^-1 = Ry(90); G_b = Rz(90) Ry(90);
    #    b ends at a's end + G_b (5, 0, 0) = + Rz(90) (0, 0, -5) = + (0, 0, -5).
    m = tiny(tmp_path, "1\nroot 1 2 3 0 0 0\na 0 0 90\nb 90\n2\nroot 0 0 0 0 0 0\na 0 0 0\nb 0\n")
    assert m.skeleton.names == ("root", "a", "b", "b_end")
    assert m.fps == 60.0
    pos = m.positions()
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [1, 2, 3], [-9, 2, 3], [-9, 2, -2]], atol=1e-9)
    np.testing.assert_allclose(pos[1], [[0, 0, 0], [0, 0, 0], [0, 10, 0], [5, 10, 0]], atol=1e-9)


def test_dof_order_and_radians(tmp_path):
    # dof "rz rx": rz applied first, then rx about the fixed local axes: M = Rx Rz.
    m = tiny(tmp_path, "1\nroot 0 0 0 0 0 0\na 0 0 0\nb 0.5 0.25\n", angle="rad", b_axis="0", b_dof="rz rx",
             header=":RADIANS")
    tip = m.positions()[0, 3]
    R = rot("x", np.degrees(0.25)) @ rot("z", np.degrees(0.5))
    np.testing.assert_allclose(tip, [0, 10, 0] + R @ [5, 0, 0], atol=1e-9)
    assert m.info["angle_unit"] == "rad"


def test_amc_degrees_header_overrides_asf_radians(tmp_path):
    m = tiny(tmp_path, "1\nroot 0 0 0 0 0 0\na 0 0 90\nb 0\n", angle="rad", b_axis="0")
    np.testing.assert_allclose(m.positions()[0, 2], [-10, 0, 0], atol=1e-9)


def test_cmu_units_and_reference_fk(tmp_path):
    """CMU convention: lengths * (1/0.45) inches -> 0.056444 m per file unit (CMU FAQ)."""
    rng = np.random.default_rng(2)
    (tmp_path / "86.asf").write_text(asf_text())
    text, vals = random_amc(CMU_ASF_BONES, 25, rng)
    (tmp_path / "86_02.amc").write_text(text)
    assert find_asf(tmp_path / "86_02.amc") == tmp_path / "86.asf"
    m = load_amc(tmp_path / "86_02.amc")
    assert m.info["unit"].startswith("inch") and m.fps == 120.0
    assert m.unit_scale / read_asf(tmp_path / "86.asf").length_unit == pytest.approx(CMU_UNIT_M, rel=1e-12)
    assert CMU_UNIT_M == pytest.approx(0.056444, abs=1e-6)
    ref = reference_asf_fk(CMU_ASF_BONES, vals)
    pos = m.positions()
    for name, expect in ref.items():
        if name in m.skeleton.names:
            np.testing.assert_allclose(pos[:, m.skeleton.index(name)], expect, atol=1e-7, err_msg=name)
    # the femur keeps its length (0.42 m) in every frame
    d = np.linalg.norm(pos[:, m.skeleton.index("ltibia")] - pos[:, m.skeleton.index("lfemur")], axis=-1)
    np.testing.assert_allclose(d, 0.42, atol=1e-9)


def test_root_order_and_axis(tmp_path):
    rng = np.random.default_rng(4)
    order = "RZ RX RY TY TX TZ"
    (tmp_path / "s.asf").write_text(asf_text(root_order=order, root_axis="ZYX"))
    text, vals = random_amc(CMU_ASF_BONES, 6, rng, root_order=order)
    (tmp_path / "s.amc").write_text(text)
    m = load_amc(tmp_path / "s.amc")
    ref = reference_asf_fk(CMU_ASF_BONES, vals, root_order=order, root_axis="ZYX")
    for name in ("root", "lfemur", "head_end", "rhand_end"):
        np.testing.assert_allclose(m.positions()[:, m.skeleton.index(name)], ref[name], atol=1e-7)


_AXIS = st.sampled_from(["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
_DOF = st.sampled_from(["rx", "ry", "rz", "rx ry", "rz rx", "ry rz", "rx ry rz", "rz ry rx", "ry rx rz",
                        "rz rx ry"])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(axes=st.lists(st.tuples(st.floats(-90, 90), st.floats(-90, 90), st.floats(-90, 90), _AXIS),
                     min_size=3, max_size=3),
       dofs=st.lists(_DOF, min_size=3, max_size=3), seed=st.integers(0, 2**16), rad=st.booleans())
def test_random_axes_and_dof_orders_match_reference(tmp_path, axes, dofs, seed, rad):
    bones = [("a", "root", (0.2, 1, 0.1), 0.4, "", ""), ("b", "a", (1, -0.3, 0), 0.3, "", ""),
             ("c", "b", (0, -1, 0.5), 0.35, "", "")]
    bones = [(n, p, d, ln, f"{ax[0]:.6g} {ax[1]:.6g} {ax[2]:.6g} {ax[3]}", dof)
             for (n, p, d, ln, _, _), ax, dof in zip(bones, axes, dofs)]
    rng = np.random.default_rng(seed)
    (tmp_path / "h.asf").write_text(asf_text(bones, length_unit=1.0, metres_per_base=1.0,
                                             angle="rad" if rad else "deg"))
    text, vals = random_amc(bones, 4, rng, length_unit=1.0, metres_per_base=1.0, max_deg=170,
                            header=":RADIANS" if rad else ":DEGREES", radians=rad)
    (tmp_path / "h.amc").write_text(text)
    m = load_amc(tmp_path / "h.amc", units="m")
    ref = reference_asf_fk(bones, vals, length_unit=1.0, metres_per_base=1.0)
    pos = m.positions()
    for name in ("a", "b", "c", "c_end"):
        np.testing.assert_allclose(pos[:, m.skeleton.index(name)], ref[name], atol=1e-6, err_msg=name)


def _pair(tmp_path, amc: str, asf: str | None = None):
    (tmp_path / "x.asf").write_text(asf or TINY_ASF.format(angle="deg", b_axis="0", b_dof="rx"))
    (tmp_path / "x.amc").write_text(amc)
    return tmp_path / "x.amc"


@pytest.mark.parametrize(("amc", "line", "message"), [
    (":DEGREES\n1\nroot 0 0 0 0 0 0\na 0 0 0\nb 0\n2\nroot 0 0 0 0 0 0\nb 0\n", 6, "frame 2: missing bones a"),
    (":DEGREES\n1\nroot 0 0 0 0 0 0\na 0 0\nb 0\n", 4, "frame 1: 'a' .dof count in the ASF.: expected 3 numbers"),
    (":DEGREES\n1\nroot 0 0 0 0 0 0\na 0 0 0\nb 0\nc 1\n", 6, "unknown bone 'c'"),
    (":DEGREES\n1\nroot 0 0 0 0 0 0\na 0 0 0\nb zero\n", 5, "expected numbers"),
    (":DEGREES\n1\nroot 0 0 0 0 0 0\na 0 0 0\na 0 0 0\nb 0\n", 5, "bone 'a' listed twice"),
    (":DEGREES\nroot 0 0 0 0 0 0\n", 2, "expected a frame number"),
])
def test_broken_amc_names_file_and_line(tmp_path, amc, line, message):
    p = _pair(tmp_path, amc)
    with pytest.raises(DataError, match=rf"x\.amc: line {line}: .*{message}"):
        load_amc(p, units="m")


def _break(old: str, new: str) -> str:
    text = TINY_ASF.format(angle="deg", b_axis="0", b_dof="rx")
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(("asf", "line", "message"), [
    (_break("    a b\n", "    a c\n"), 36, "unknown bone 'c'"),
    (_break("    a b\n", ""), 25, "bones not connected to the root: b"),
    (_break("    direction 1 0 0\n", "    direction 1 0\n"), 28, "direction of 'b': expected 3 numbers"),
    (_break("    axis 0 0 0 XYZ\n    dof rx\n", "    axis 0 0 0 XYQ\n    dof rx\n"), 30, "expected a rotation order"),
    (_break("    dof rx\n", "    dof rx tx\n"), 31, "only rotations"),
    (_break("           (-180 180)\n  end", "  end"), 21, "expected 3 '.lo hi.' pairs"),
    (_break(":hierarchy", ":nohierarchy"), 37, "no :hierarchy section"),
    (_break("    name b\n", "    name a\n"), 25, "duplicate bone name 'a'"),
    (_break("  angle deg", "  angle grad"), 7, "expected deg or rad"),
])
def test_broken_asf_names_file_and_line(tmp_path, asf, line, message):
    (tmp_path / "bad.asf").write_text(asf)
    with pytest.raises(DataError, match=rf"bad\.asf: line {line}: .*{message}"):
        read_asf(tmp_path / "bad.asf")


def test_missing_asf_is_a_clear_error(tmp_path):
    (tmp_path / "a.asf").write_text("x")
    (tmp_path / "b.asf").write_text("x")
    (tmp_path / "m.amc").write_text(":DEGREES\n")
    with pytest.raises(DataError, match=r"m\.amc: asf: no skeleton file found"):
        load_amc(tmp_path / "m.amc")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["asf", "amc"]), edits=st.lists(st.tuples(
    st.sampled_from(["drop", "dup", "junk", "cut"]), st.integers(0, 10_000),
    st.text(alphabet=" ():abcdefghijklmnoprstuvxyz0123456789.-\t", max_size=14)), min_size=1, max_size=3))
def test_mangled_asf_amc_raise_data_error_or_load(tmp_path, which, edits):
    asf = TINY_ASF.format(angle="deg", b_axis="30", b_dof="rz rx")
    amc = ":DEGREES\n1\nroot 0 0 0 0 0 0\na 0 0 90\nb 10 20\n2\nroot 1 1 1 0 0 0\na 0 0 0\nb 5 5\n"
    lines = (asf if which == "asf" else amc).splitlines()
    for op, pos, junk in edits:
        i = pos % max(len(lines), 1)
        if op == "drop" and lines:
            del lines[i]
        elif op == "dup" and lines:
            lines.insert(i, lines[i])
        elif op == "junk":
            lines.insert(i, junk)
        elif op == "cut" and lines:
            lines[i] = lines[i][: pos % (len(lines[i]) + 1)]
    text = "\n".join(lines) + "\n"
    (tmp_path / "f.asf").write_text(text if which == "asf" else asf)
    (tmp_path / "f.amc").write_text(text if which == "amc" else amc)
    try:
        m = load_amc(tmp_path / "f.amc", units="m")
    except DataError as exc:   # a damaged ASF may be valid and disagree with the AMC: either file is named
        assert re.search(r"f\.(asf|amc): (line \d+|units): ", str(exc)), str(exc)
        return
    assert np.all(np.isfinite(m.positions()))
