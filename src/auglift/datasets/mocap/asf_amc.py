"""Acclaim skeleton (ASF) and motion (AMC) files, as written by Vicon and the CMU database.

ASF (one skeleton)::

    :units
      mass 1.0
      length 0.45          # lengths in the file are (base unit) * length
      angle deg
    :root
      order TX TY TZ RX RY RZ
      axis XYZ
      position 0 0 0
      orientation 0 0 0
    :bonedata
      begin
        id 1
        name lfemur
        direction 0.342 -0.940 0
        length 7.1
        axis 0 0 20 XYZ
        dof rx ry rz
        limits (-160.0 20.0)
               (-70.0 70.0)
               (-60.0 70.0)
      end
    :hierarchy
      begin
        root lhipjoint rhipjoint lowerback
        lhipjoint lfemur
      end

AMC (frames)::

    :FULLY-SPECIFIED
    :DEGREES
    1
    root 9.37 17.87 -17.32 -2.02 -7.60 -3.23
    lfemur -20.1 5.3 12.0
    ...

Conventions (checked against the CMU mocap FAQ and two public readers, see the README):

* A bone starts where its parent ends (the root's children start at the root). ``direction``
  (unit vector, world axes of the rest pose) times ``length`` is the bone's vector.
* ``axis ax ay az ORDER`` is the bone's local frame ``C``: rotations about the fixed world axes
  applied in ``ORDER`` (``XYZ``: ``C = R_z(az) @ R_y(ay) @ R_x(ax)``).
* The AMC values of a bone are rotations about the bone's local axes, applied in the order
  of its ``dof`` line (``rx ry rz``: ``M = R_z @ R_y @ R_x``). The bone's world rotation is
  ``G = G_parent @ C @ M @ C^-1`` and its end is ``start + G @ (length * direction)``.
  The root's rotation uses ``order``'s RX/RY/RZ values in the root ``axis`` order, with the
  ``orientation`` as its ``C``; its position is ``position`` plus the TX/TY/TZ values.
* Lengths (bones and root translation) are divided by ``:units length`` to give the base
  unit; CMU's base unit is the inch, so one CMU file unit is ``(1/0.45) * 2.54 cm = 0.056444 m``
  (CMU FAQ). :func:`load_amc` detects the base unit from the size of the rest pose or takes
  ``units=``. Angles follow ``:units angle`` (deg/rad), overridden by an AMC ``:DEGREES`` /
  ``:RADIANS`` line.
* AMC files carry no frame rate; CMU captured at 120 fps, the default.

Joints of the resulting :class:`Motion`: ``root``, then one per bone located at the bone's
*start* (named after the bone, e.g. ``ltibia`` is the knee), plus ``<bone>_end`` at the tip of
each leaf bone (``head_end`` is the top of the head). Errors name the file and line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from auglift.datasets.mocap.kinematics import Motion, Skeleton, detect_unit_scale, euler_matrices, parse_floats
from auglift.datasets.mocap.kinematics import line_error as _err
from auglift.errors import DataError

__all__ = ["AsfBone", "AsfSkeleton", "find_asf", "load_amc", "parse_amc", "parse_asf", "read_asf"]

_ROT_DOF = ("rx", "ry", "rz")
_ALL_DOF = ("rx", "ry", "rz", "tx", "ty", "tz", "l")
MAX_TEXT_BYTES = 1 << 30


@dataclass(frozen=True)
class AsfBone:
    """One ``:bonedata`` entry. Lengths are in the file's numbers (before ``:units length``)."""

    name: str
    direction: np.ndarray   # (3,) unit vector, rest-pose world axes
    length: float
    axis: np.ndarray        # (3,) angles of the local frame C, in the ASF angle unit
    axis_order: str         # e.g. "XYZ"
    dof: tuple[str, ...]    # e.g. ("rx", "ry", "rz")
    limits: np.ndarray      # (len(dof), 2) lower/upper limits (inf where the file has no bound)
    line: int               # line of the bone's "begin"


@dataclass(frozen=True)
class AsfSkeleton:
    """A parsed ASF file.

    ``bones`` are in depth-first hierarchy order and ``parents[i]`` is the index of bone ``i``'s
    parent bone, ``-1`` for bones attached to the root.
    """

    path: str | None
    length_unit: float              # ":units length" (file numbers / length_unit = base unit)
    angle_unit: str                 # "deg" or "rad"
    root_order: tuple[str, ...]     # AMC value order of the root, e.g. ("tx", "ty", "tz", "rx", "ry", "rz")
    root_axis: str                  # rotation order of the root, e.g. "XYZ"
    root_position: np.ndarray       # (3,) file numbers
    root_orientation: np.ndarray    # (3,) angles
    bones: tuple[AsfBone, ...]
    parents: tuple[int, ...]
    root_line: int

    def skeleton(self) -> tuple[Skeleton, np.ndarray]:
        """The generic joint tree and ``(B,)`` int64 joint index of each bone's start joint.

        Offsets are in base units (file numbers / ``length_unit``), in rest-pose world axes.
        """
        # one row per joint: (name, parent joint, offset, end site, line)
        joints: list[tuple[str, int, np.ndarray, bool, int]] = [("root", -1, np.zeros(3), False, self.root_line)]
        joint_of_bone = np.zeros(len(self.bones), np.int64)
        has_child = np.zeros(len(self.bones), bool)
        has_child[[p for p in self.parents if p >= 0]] = True
        vec = [b.direction * (b.length / self.length_unit) for b in self.bones]
        for i, b in enumerate(self.bones):
            p = self.parents[i]
            joint_of_bone[i] = len(joints)
            joints.append((b.name, 0 if p < 0 else int(joint_of_bone[p]), np.zeros(3) if p < 0 else vec[p], False,
                           b.line))
            if not has_child[i]:
                joints.append((f"{b.name}_end", int(joint_of_bone[i]), vec[i], True, b.line))
        # Children must follow their parent: bones are depth-first, so a bone's start joint is
        # added after its parent bone's start joint.
        names, parents, offsets, end, lines = zip(*joints)
        skel = Skeleton(names, np.asarray(parents, np.int64), np.asarray(offsets, np.float64),
                        np.asarray(end, bool), lines, self.path)
        return skel, joint_of_bone


def _nums(parts: list[str], n: int, path: str | None, line: int, what: str) -> np.ndarray:
    if len(parts) != n:
        raise _err(path, line, f"{what}: expected {n} numbers, got {len(parts)}")
    return np.array(parse_floats(parts, path, line, what))


def _read_text(path: str | os.PathLike[str]) -> str:
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise DataError(path, None, f"file of {size} bytes is larger than the {MAX_TEXT_BYTES}-byte limit")
    text = path.read_bytes().decode("latin-1")
    if "\x00" in text:
        raise DataError(path, None, "not a text file (binary data)")
    return text


def parse_asf(text: str, path: str | os.PathLike[str] | None = None) -> AsfSkeleton:
    """Parse ASF ``text`` (``path`` only names the file in errors)."""
    p = None if path is None else os.fspath(path)
    # (line number, tokens) of every non-empty, non-comment line
    rows = [(i + 1, s.split()) for i, s in enumerate(text.splitlines()) if s.strip() and not s.lstrip().startswith("#")]
    sections: dict[str, list[tuple[int, list[str]]]] = {}
    section_line: dict[str, int] = {}
    current: str | None = None
    for ln, parts in rows:
        if parts[0].startswith(":"):
            current = parts[0][1:].lower()
            if current in sections and current in ("units", "root", "bonedata", "hierarchy"):
                raise _err(p, ln, f"a second :{current} section (first on line {section_line[current]})")
            sections[current] = [(ln, parts[1:])] if len(parts) > 1 else []
            section_line[current] = ln
        elif current is None:
            raise _err(p, ln, f"expected an ASF keyword such as ':version' or ':units', got {' '.join(parts)!r}")
        else:
            sections[current].append((ln, parts))
    last = rows[-1][0] if rows else 1
    for need in ("root", "bonedata", "hierarchy"):
        if need not in sections:
            raise _err(p, last, f"no :{need} section (an ASF file needs :root, :bonedata and :hierarchy)")

    length_unit, angle_unit = 1.0, "deg"
    for ln, parts in sections.get("units", []):
        key = parts[0].lower()
        if key == "length":
            length_unit = float(_nums(parts[1:], 1, p, ln, ":units length")[0])
            if length_unit <= 0:
                raise _err(p, ln, f":units length: expected a positive number, got {parts[1]}")
        elif key == "angle":
            val = parts[1].lower() if len(parts) > 1 else ""
            if val not in ("deg", "rad", "degrees", "radians"):
                raise _err(p, ln, f":units angle: expected deg or rad, got {val!r}")
            angle_unit = val[:3]

    root_order: tuple[str, ...] = ("tx", "ty", "tz", "rx", "ry", "rz")
    root_axis = "XYZ"
    root_pos, root_ori = np.zeros(3), np.zeros(3)
    for ln, parts in sections["root"]:
        key = parts[0].lower()
        if key == "order":
            root_order = tuple(x.lower() for x in parts[1:])
            bad = [x for x in root_order if x not in ("tx", "ty", "tz", "rx", "ry", "rz")]
            if bad or len(set(root_order)) != len(root_order):
                raise _err(p, ln, f":root order: expected distinct TX TY TZ RX RY RZ, got {' '.join(parts[1:])!r}")
        elif key == "axis":
            root_axis = parts[1].upper() if len(parts) == 2 else ""
            if sorted(root_axis) != list("XYZ"):
                raise _err(p, ln, f":root axis: expected a rotation order such as XYZ, got {' '.join(parts[1:])!r}")
        elif key == "position":
            root_pos = _nums(parts[1:], 3, p, ln, ":root position")
        elif key == "orientation":
            root_ori = _nums(parts[1:], 3, p, ln, ":root orientation")
    root_line = section_line["root"]

    bones: dict[str, AsfBone] = {}
    it = iter(sections["bonedata"])
    for ln, parts in it:
        if parts[0].lower() != "begin":
            raise _err(p, ln, f":bonedata: expected 'begin', got {' '.join(parts)!r}")
        bone = _parse_bone(it, ln, p)
        if bone.name in bones or bone.name == "root":
            raise _err(p, ln, f"duplicate bone name {bone.name!r}")
        bones[bone.name] = bone

    children: dict[str, list[str]] = {}
    attached: dict[str, int] = {}
    h = sections["hierarchy"]
    if not h or h[0][1][0].lower() != "begin":
        raise _err(p, section_line["hierarchy"], ":hierarchy: expected 'begin'")
    for ln, parts in h[1:]:
        if parts[0].lower() == "end":
            break
        parent, kids = parts[0], parts[1:]
        if parent != "root" and parent not in bones:
            raise _err(p, ln, f":hierarchy: unknown bone {parent!r} (not in :bonedata)")
        for c in kids:
            if c not in bones:
                raise _err(p, ln, f":hierarchy: unknown bone {c!r} (not in :bonedata)")
            if c in attached:
                raise _err(p, ln, f":hierarchy: bone {c!r} already attached on line {attached[c]}")
            attached[c] = ln
        children.setdefault(parent, []).extend(kids)
    else:
        raise _err(p, h[-1][0], ":hierarchy: no closing 'end'")
    order: list[str] = []
    parent_of: dict[str, str] = {}
    todo = [("root", c) for c in reversed(children.get("root", []))]
    while todo:
        par, b = todo.pop()
        if b in parent_of:
            raise _err(p, attached[b], f":hierarchy: bone {b!r} is part of a cycle")
        parent_of[b] = par
        order.append(b)
        todo.extend((b, c) for c in reversed(children.get(b, [])))
    loose = [b for b in bones if b not in parent_of]
    if loose:
        where = attached.get(loose[0], bones[loose[0]].line)
        raise _err(p, where, f":hierarchy: bones not connected to the root: {', '.join(loose)}")
    index = {b: i for i, b in enumerate(order)}
    parents = tuple(-1 if parent_of[b] == "root" else index[parent_of[b]] for b in order)
    return AsfSkeleton(p, length_unit, angle_unit, root_order, root_axis, root_pos, root_ori,
                       tuple(bones[b] for b in order), parents, root_line)


def _parse_bone(it, begin_line: int, p: str | None) -> AsfBone:
    fields: dict[str, tuple[int, list[str]]] = {}
    limits: list[tuple[int, str]] = []
    in_limits = False
    for ln, parts in it:
        key = parts[0].lower()
        if key == "end":
            break
        if in_limits and parts[0].startswith("("):
            limits.append((ln, " ".join(parts)))
            continue
        in_limits = False
        if key == "limits":
            in_limits = True
            if len(parts) > 1:
                limits.append((ln, " ".join(parts[1:])))
            continue
        fields[key] = (ln, parts[1:])
    else:
        raise _err(p, begin_line, "bone block without 'end'")
    for need in ("name", "direction", "length", "axis"):
        if need not in fields:
            raise _err(p, begin_line, f"bone block has no '{need}' line")
    name = " ".join(fields["name"][1])
    ln, v = fields["direction"]
    direction = _nums(v, 3, p, ln, f"direction of {name!r}")
    norm = float(np.linalg.norm(direction))
    ln, v = fields["length"]
    length = float(_nums(v, 1, p, ln, f"length of {name!r}")[0])
    if length < 0:
        raise _err(p, ln, f"length of {name!r}: expected >= 0, got {length}")
    if norm == 0 and length > 0:
        raise _err(p, fields["direction"][0], f"direction of {name!r} is zero")
    direction = direction / norm if norm > 0 else direction
    ln, v = fields["axis"]
    if len(v) != 4:
        raise _err(p, ln, f"axis of {name!r}: expected 3 angles and an order such as XYZ, got {' '.join(v)!r}")
    axis = _nums(v[:3], 3, p, ln, f"axis of {name!r}")
    axis_order = v[3].upper()
    if sorted(axis_order) != list("XYZ"):
        raise _err(p, ln, f"axis of {name!r}: expected a rotation order such as XYZ, got {v[3]!r}")
    dof: tuple[str, ...] = ()
    if "dof" in fields:
        ln, v = fields["dof"]
        dof = tuple(x.lower() for x in v)
        bad = [x for x in dof if x not in _ALL_DOF]
        if bad or len(set(dof)) != len(dof):
            raise _err(p, ln, f"dof of {name!r}: expected distinct rx ry rz (tx ty tz l), got {' '.join(v)!r}")
        other = [x for x in dof if x not in _ROT_DOF]
        if other:
            raise _err(p, ln, f"dof of {name!r}: only rotations (rx ry rz) are supported on bones, got "
                              f"{' '.join(other)}")
    lim = np.tile([-np.inf, np.inf], (len(dof), 1))
    if limits:
        text = " ".join(s for _, s in limits)
        pairs = re.findall(r"\(\s*([^()\s]+)\s+([^()\s]+)\s*\)", text)
        if len(pairs) != len(dof):
            raise _err(p, limits[0][0], f"limits of {name!r}: expected {len(dof)} '(lo hi)' pairs (one per dof), "
                                        f"got {len(pairs)}")
        for j, (lo, hi) in enumerate(pairs):
            try:
                lim[j] = [float(lo), float(hi)]
            except ValueError:
                raise _err(p, limits[0][0], f"limits of {name!r}: expected numbers, got ({lo} {hi})") from None
    return AsfBone(name, direction, length, axis, axis_order, dof, lim, begin_line)


def read_asf(path: str | os.PathLike[str]) -> AsfSkeleton:
    """Read and parse an ASF file."""
    return parse_asf(_read_text(path), path)


def parse_amc(text: str, asf: AsfSkeleton, path: str | os.PathLike[str] | None = None
              ) -> tuple[dict[str, np.ndarray], str | None]:
    """Parse AMC ``text`` against its skeleton.

    Returns ``({bone: (F, n_dof) float64 values in dof order, "root": (F, len(root order))},
    angle unit named in the AMC header or None)``. Every frame must list the root and every
    bone that has a dof in the ASF.
    """
    p = None if path is None else os.fspath(path)
    lines = text.splitlines()
    angle: str | None = None
    rows: list[tuple[int, str]] = []
    for i, s in enumerate(lines):
        t = s.strip()
        if not t or t.startswith("#"):
            continue
        if t.startswith(":"):
            kw = t[1:].split()[0].upper() if len(t) > 1 else ""
            if kw in ("DEGREES", "DEGREE"):
                angle = "deg"
            elif kw in ("RADIANS", "RADIAN"):
                angle = "rad"
            continue
        rows.append((i + 1, t))
    need = {"root": len(asf.root_order)} | {b.name: len(b.dof) for b in asf.bones if b.dof}
    known = {"root": len(asf.root_order)} | {b.name: len(b.dof) for b in asf.bones}
    if not rows:
        return {k: np.zeros((0, n)) for k, n in need.items()}, angle
    first_tok = [t.split(None, 1)[0] for _, t in rows]
    is_marker = np.array([t.isdigit() and len(r.split()) == 1 for t, (_, r) in zip(first_tok, rows)])
    if not is_marker[0]:
        raise _err(p, rows[0][0], f"expected a frame number before the first bone line, got {rows[0][1][:40]!r}")
    starts = np.flatnonzero(is_marker)
    n_frames = len(starts)
    bounds = np.append(starts, len(rows))
    lengths = np.diff(bounds) - 1
    # Fast path: every frame lists the same known bones, in the same order, with the right
    # number of values; anything else goes to the slow path, which names the first bad line.
    first = first_tok[1:bounds[1]]
    if (np.all(lengths == len(first)) and len(set(first)) == len(first)
            and all(b in known for b in first) and set(need) <= set(first)):
        names = np.array(first_tok, dtype=object)[~is_marker].reshape(n_frames, len(first))
        body = [r for (_, r), m in zip(rows, is_marker) if not m]
        per_line = np.array([known[b] for b in first])
        counts = np.array([len(r.split()) - 1 for r in body]).reshape(n_frames, len(first))
        if np.all(names == np.array(first, dtype=object)[None, :]) and np.all(counts == per_line[None, :]):
            tokens = " ".join(r.split(None, 1)[1] if len(r.split(None, 1)) > 1 else "" for r in body).split()
            try:
                vals = np.array(tokens, dtype=np.float64).reshape(n_frames, -1)
            except ValueError:
                vals = None
            if vals is not None and np.all(np.isfinite(vals)):
                cols = np.concatenate([[0], np.cumsum(per_line)])
                out = {b: vals[:, cols[j]:cols[j + 1]] for j, b in enumerate(first)}
                return {k: out[k] for k in need}, angle
    return _parse_amc_slow(rows, starts, bounds, need, known, p), angle


def _parse_amc_slow(rows, starts, bounds, need, known, p) -> dict[str, np.ndarray]:
    """Frame-by-frame AMC reading that stops at the first problem with its line number."""
    out = {k: np.zeros((len(starts), n)) for k, n in need.items()}
    for f, s in enumerate(starts):
        seen: dict[str, int] = {}
        marker_line, marker = rows[s]
        for j in range(s + 1, bounds[f + 1]):
            ln, r = rows[j]
            parts = r.split()
            b = parts[0]
            if b not in known:
                raise _err(p, ln, f"frame {marker}: unknown bone {b!r} (not in the ASF)")
            if b in seen:
                raise _err(p, ln, f"frame {marker}: bone {b!r} listed twice (first on line {seen[b]})")
            seen[b] = ln
            vals = _nums(parts[1:], known[b], p, ln, f"frame {marker}: {b!r} (dof count in the ASF)")
            if b in out:
                out[b][f] = vals
        missing = [b for b in need if b not in seen]
        if missing:
            raise _err(p, marker_line, f"frame {marker}: missing bones {', '.join(missing)} (each bone with a "
                                       f"dof in the ASF must appear in every frame)")
    return out


def find_asf(amc: str | os.PathLike[str]) -> Path:
    """The ASF file of an AMC file: same stem, CMU's ``SS_TT.amc`` -> ``SS.asf``, or the only ASF beside it."""
    amc = Path(amc)
    cands = [amc.with_suffix(".asf"), amc.with_suffix(".ASF")]
    stem = amc.stem.split("_")[0]
    cands += [amc.with_name(stem + ".asf"), amc.with_name(stem + ".ASF")]
    for c in cands:
        if c.is_file():
            return c
    others = sorted(x for x in amc.parent.iterdir() if x.suffix.lower() == ".asf") if amc.parent.is_dir() else []
    if len(others) == 1:
        return others[0]
    raise DataError(amc, "asf", f"no skeleton file found: expected {amc.with_suffix('.asf').name}, "
                                f"{stem}.asf or a single .asf in {amc.parent}; pass asf=")


def load_amc(amc: str | os.PathLike[str], asf: str | os.PathLike[str] | AsfSkeleton | None = None, *,
             fps: float = 120.0, units: str | float = "auto") -> Motion:
    """Read an AMC motion with its ASF skeleton into a :class:`Motion`.

    Args:
        amc: the motion file.
        asf: the skeleton (path or parsed); found with :func:`find_asf` when omitted.
        fps: frame rate of the AMC (the file does not say; CMU: 120).
        units: base length unit after ``:units length`` (``"auto"``: detected from the rest
            pose, ``inch`` for CMU), a unit name or metres per base unit.
    """
    if not (np.isfinite(fps) and fps > 0):
        raise DataError(amc, "fps", f"expected a positive frame rate, got {fps}")
    if not isinstance(asf, AsfSkeleton):
        asf = read_asf(find_asf(amc) if asf is None else asf)
    values, amc_angle = parse_amc(_read_text(amc), asf, amc)
    deg = (amc_angle or asf.angle_unit) == "deg"
    skel, joint_of_bone = asf.skeleton()
    F, K = values["root"].shape[0], skel.num_joints
    rotations = np.broadcast_to(np.eye(3), (F, K, 3, 3)).copy()
    translations = np.broadcast_to(skel.offsets, (F, K, 3)).copy()

    # Root: position + translation values, rotation in the root axis order about its orientation.
    rv = values["root"]
    col = {d: j for j, d in enumerate(asf.root_order)}
    for a, d in enumerate(("tx", "ty", "tz")):
        translations[:, 0, a] = asf.root_position[a] / asf.length_unit + (
            rv[:, col[d]] / asf.length_unit if d in col else 0.0)
    seq = "".join(c for c in asf.root_axis if "r" + c.lower() in col)
    C0 = euler_matrices(asf.root_orientation[["XYZ".index(c) for c in asf.root_axis]], asf.root_axis.lower(),
                        degrees=asf.angle_unit == "deg")
    if seq:
        M0 = euler_matrices(rv[:, [col["r" + c.lower()] for c in seq]], seq.lower(), degrees=deg)
        rotations[:, 0] = C0 @ M0 @ C0.T

    # Bones: C M C^-1, one scipy call per distinct dof sequence.
    C = np.zeros((len(asf.bones), 3, 3))
    groups: dict[str, list[int]] = {}
    for i, b in enumerate(asf.bones):   # once per bone of the skeleton, not per frame
        C[i] = euler_matrices(b.axis[["XYZ".index(c) for c in b.axis_order]], b.axis_order.lower(),
                              degrees=asf.angle_unit == "deg")
        if b.dof:
            groups.setdefault("".join(d[1] for d in b.dof), []).append(i)
    for seq, bones in groups.items():
        ang = np.stack([values[asf.bones[i].name] for i in bones], axis=1)      # (F, n, len(seq))
        M = euler_matrices(ang, seq, degrees=deg)                                 # (F, n, 3, 3)
        Cb = C[bones]
        rotations[:, joint_of_bone[bones]] = Cb @ M @ np.swapaxes(Cb, -1, -2)
    scale, unit = detect_unit_scale(skel.rest_positions(), amc, units)
    info = {"unit": f"{unit} (ASF :units length {asf.length_unit:g})", "asf": asf.path,
            "angle_unit": "deg" if deg else "rad", "length_unit": asf.length_unit}
    return Motion(skel, rotations, translations, float(fps), scale, "asf", os.fspath(amc), info)
