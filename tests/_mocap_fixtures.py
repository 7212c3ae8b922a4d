"""Motion-capture fixtures written in the real formats (BVH, ASF/AMC) and a reference FK.

The reference forward kinematics here is deliberately naive (per frame, per joint, 4x4
matrices from elementary rotations) and independent of the library's batched code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from auglift.datasets.mocap import Skeleton, format_bvh

CMU_UNIT_M = (1.0 / 0.45) * 2.54 / 100.0   # CMU mocap FAQ: 0.056444 m per ASF/BVH unit


def rot(axis: str, deg: float) -> np.ndarray:
    """Elementary right-handed rotation about x, y or z by ``deg`` degrees (3x3)."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    if axis.lower() == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis.lower() == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# --------------------------------------------------------------------------------------- BVH
# (name, parent, offset in metres, y-up, subject facing +z so its left is +x)
CMU_BVH_TREE: list[tuple[str, str | None, tuple[float, float, float]]] = [
    ("Hips", None, (0, 0, 0)),
    ("LHipJoint", "Hips", (0, 0, 0)),
    ("LeftUpLeg", "LHipJoint", (0.09, -0.06, 0.0)),
    ("LeftLeg", "LeftUpLeg", (0.0, -0.42, 0.0)),
    ("LeftFoot", "LeftLeg", (0.0, -0.40, 0.0)),
    ("LeftToeBase", "LeftFoot", (0.0, -0.05, 0.12)),
    ("LeftToeBase_end", "LeftToeBase", (0.0, 0.0, 0.05)),
    ("RHipJoint", "Hips", (0, 0, 0)),
    ("RightUpLeg", "RHipJoint", (-0.09, -0.06, 0.0)),
    ("RightLeg", "RightUpLeg", (0.0, -0.42, 0.0)),
    ("RightFoot", "RightLeg", (0.0, -0.40, 0.0)),
    ("RightToeBase", "RightFoot", (0.0, -0.05, 0.12)),
    ("RightToeBase_end", "RightToeBase", (0.0, 0.0, 0.05)),
    ("LowerBack", "Hips", (0, 0, 0)),
    ("Spine", "LowerBack", (0.0, 0.11, 0.0)),
    ("Spine1", "Spine", (0.0, 0.11, 0.0)),
    ("Neck", "Spine1", (0.0, 0.20, 0.0)),
    ("Neck1", "Neck", (0.0, 0.08, 0.0)),
    ("Head", "Neck1", (0.0, 0.08, 0.0)),
    ("Head_end", "Head", (0.0, 0.17, 0.0)),
    ("LeftShoulder", "Spine1", (0.02, 0.18, 0.0)),
    ("LeftArm", "LeftShoulder", (0.16, 0.0, 0.0)),
    ("LeftForeArm", "LeftArm", (0.28, 0.0, 0.0)),
    ("LeftHand", "LeftForeArm", (0.25, 0.0, 0.0)),
    ("LeftHand_end", "LeftHand", (0.08, 0.0, 0.0)),
    ("RightShoulder", "Spine1", (-0.02, 0.18, 0.0)),
    ("RightArm", "RightShoulder", (-0.16, 0.0, 0.0)),
    ("RightForeArm", "RightArm", (-0.28, 0.0, 0.0)),
    ("RightHand", "RightForeArm", (-0.25, 0.0, 0.0)),
    ("RightHand_end", "RightHand", (-0.08, 0.0, 0.0)),
]
# Rest-pose height of CMU_BVH_TREE: toe tip (-0.93) to head top (+0.75).
CMU_BVH_HEIGHT_M = 1.68

MIXAMO_RENAME = {"LowerBack": "Spine", "Spine": "Spine1", "Spine1": "Spine2", "Neck1": None,
                 "LHipJoint": None, "RHipJoint": None}


def tree_skeleton(tree, *, rename: dict[str, str | None] | None = None, prefix: str = "",
                  scale: float = 1.0, up: str = "y") -> Skeleton:
    """A :class:`Skeleton` from a (name, parent, offset m) list.

    ``rename`` maps names (``None`` drops the joint, its offset folded into its children);
    ``prefix`` goes before every joint name; ``scale`` is file units per metre; ``up="z"``
    writes a z-up file (y -> z, z -> -y). Names ending in ``_end`` are End Sites.
    """
    rename = rename or {}
    offsets = {n: np.asarray(o, float) for n, _, o in tree}
    parent = {n: p for n, p, _ in tree}
    kept = [n for n, _, _ in tree if n.endswith("_end") or rename.get(n, n) is not None]
    names, parents, offs, end = [], [], [], []
    for n in kept:
        p, off = parent[n], offsets[n].copy()
        while p is not None and p not in kept:
            off += offsets[p]
            p = parent[p]
        is_end = n.endswith("_end")
        parents.append(-1 if p is None else kept.index(p))
        names.append(names[parents[-1]] + "_end" if is_end else prefix + rename.get(n, n))
        if up == "z":
            off = np.array([off[0], -off[2], off[1]])
        offs.append(off * scale)
        end.append(is_end)
    return Skeleton(tuple(names), np.asarray(parents, np.int64), np.asarray(offs, float),
                    np.asarray(end, bool), tuple(range(1, len(names) + 1)))


def random_channels(skel: Skeleton, rng: np.random.Generator, *, order: str | None = None,
                    joint_positions: bool = False) -> list[tuple[str, ...]]:
    """Channel lists: root 6 (positions first or last), joints 3 rotations (or 6 with positions)."""
    out = []
    for k in range(skel.num_joints):
        if skel.end_site[k]:
            out.append(())
            continue
        o = order or "".join(rng.permutation(list("XYZ")))
        rots = tuple(f"{a}rotation" for a in o)
        pos = tuple(f"{a}position" for a in "XYZ")
        if k == 0:
            out.append(pos + rots if rng.uniform() < 0.7 else rots + pos)
        elif joint_positions:
            out.append(pos + rots)
        else:
            out.append(rots)
    return out


def random_frames(skel: Skeleton, channels, n: int, rng: np.random.Generator, *, max_deg: float = 60.0,
                  root_height: float = 0.95, scale: float = 1.0, up: str = "y") -> np.ndarray:
    """``(n, C)`` channel values: smooth random angles; root position around ``root_height``;
    joint position channels equal to the rest offset (as MotionBuilder writes them)."""
    cols = []
    t = np.linspace(0, 1, n)
    for k, chans in enumerate(channels):
        for c in chans:
            if c.endswith("rotation"):
                a, f, ph = rng.uniform(-max_deg, max_deg), rng.uniform(0.2, 2.0), rng.uniform(0, 6.3)
                cols.append(a * np.sin(2 * np.pi * f * t + ph))
            else:
                axis = "XYZ".index(c[0])
                if k == 0:   # the root walks horizontally at a constant height
                    vertical = 1 if up == "y" else 2
                    cols.append(np.full(n, root_height * scale) if axis == vertical
                                else rng.uniform(-0.3, 0.3) * scale * t)
                else:
                    cols.append(np.full(n, skel.offsets[k, axis]))
    return np.stack(cols, axis=1) if cols else np.zeros((n, 0))


def write_tree_bvh(path: Path, skel: Skeleton, channels, frames: np.ndarray, fps: float = 120.0) -> Path:
    path.write_text(format_bvh(skel, channels, frames, 1.0 / fps))
    return path


def reference_bvh_fk(skel: Skeleton, channels, frames: np.ndarray) -> np.ndarray:
    """Naive BVH forward kinematics: (F, K, 3) in file units."""
    F, K = frames.shape[0], skel.num_joints
    out = np.zeros((F, K, 3))
    for f in range(F):
        col = 0
        world: list[np.ndarray] = []
        for k in range(K):
            off = skel.offsets[k].copy()
            R = np.eye(3)
            for c in channels[k]:
                v = frames[f, col]
                col += 1
                if c.endswith("position"):
                    off["XYZ".index(c[0])] = v
                else:
                    R = R @ rot(c[0], v)
            M = np.eye(4)
            M[:3, :3] = R
            M[:3, 3] = off
            if skel.parents[k] >= 0:
                M = world[skel.parents[k]] @ M
            world.append(M)
            out[f, k] = M[:3, 3]
    return out


# --------------------------------------------------------------------------------------- ASF/AMC
# CMU-like bones: (name, parent, direction, length in metres, axis "ax ay az ORDER", dof)
CMU_ASF_BONES: list[tuple[str, str, tuple[float, float, float], float, str, str]] = [
    ("lhipjoint", "root", (0.6, -0.7, 0.38), 0.13, "0 0 0 XYZ", ""),
    ("lfemur", "lhipjoint", (0.34, -0.94, 0), 0.42, "0 0 20 XYZ", "rx ry rz"),
    ("ltibia", "lfemur", (0.34, -0.94, 0), 0.41, "0 0 20 XYZ", "rx"),
    ("lfoot", "ltibia", (0, 0, 1), 0.13, "-90 7.1 20 XYZ", "rx rz"),
    ("ltoes", "lfoot", (0, 0, 1), 0.06, "-90 7.1 20 XYZ", "rx"),
    ("rhipjoint", "root", (-0.6, -0.7, 0.38), 0.13, "0 0 0 XYZ", ""),
    ("rfemur", "rhipjoint", (-0.34, -0.94, 0), 0.42, "0 0 -20 XYZ", "rx ry rz"),
    ("rtibia", "rfemur", (-0.34, -0.94, 0), 0.41, "0 0 -20 XYZ", "rx"),
    ("rfoot", "rtibia", (0, 0, 1), 0.13, "-90 -7.1 -20 XYZ", "rx rz"),
    ("rtoes", "rfoot", (0, 0, 1), 0.06, "-90 -7.1 -20 XYZ", "rx"),
    ("lowerback", "root", (0, 1, 0), 0.115, "0 0 0 XYZ", "rx ry rz"),
    ("upperback", "lowerback", (0, 1, 0), 0.117, "0 0 0 XYZ", "rx ry rz"),
    ("thorax", "upperback", (0, 1, 0), 0.117, "0 0 0 XYZ", "rx ry rz"),
    ("lowerneck", "thorax", (0, 1, 0), 0.10, "0 0 0 XYZ", "rx ry rz"),
    ("upperneck", "lowerneck", (0, 1, 0), 0.10, "0 0 0 XYZ", "rx ry rz"),
    ("head", "upperneck", (0, 1, 0), 0.10, "0 0 0 XYZ", "rx ry rz"),
    ("lclavicle", "thorax", (0.9, 0.1, 0), 0.18, "0 0 -30 XYZ", "ry rz"),
    ("lhumerus", "lclavicle", (1, 0, 0), 0.28, "0 0 -90 XYZ", "rx ry rz"),
    ("lradius", "lhumerus", (1, 0, 0), 0.25, "0 0 -90 XYZ", "rx"),
    ("lwrist", "lradius", (1, 0, 0), 0.03, "0 0 -90 XYZ", "ry"),
    ("lhand", "lwrist", (1, 0, 0), 0.08, "0 0 -90 XYZ", "rx rz"),
    ("rclavicle", "thorax", (-0.9, 0.1, 0), 0.18, "0 0 30 XYZ", "ry rz"),
    ("rhumerus", "rclavicle", (-1, 0, 0), 0.28, "0 0 90 XYZ", "rx ry rz"),
    ("rradius", "rhumerus", (-1, 0, 0), 0.25, "0 0 90 XYZ", "rx"),
    ("rwrist", "rradius", (-1, 0, 0), 0.03, "0 0 90 XYZ", "ry"),
    ("rhand", "rwrist", (-1, 0, 0), 0.08, "0 0 90 XYZ", "rx rz"),
]


def asf_text(bones=CMU_ASF_BONES, *, length_unit: float = 0.45, metres_per_base: float = 0.0254,
             angle: str = "deg", root_order: str = "TX TY TZ RX RY RZ", root_axis: str = "XYZ",
             limits: bool = True) -> str:
    """An ASF file for ``bones`` (lengths in metres converted to file numbers)."""
    to_file = length_unit / metres_per_base
    out = [":version 1.10", ":name VICON", ":units", "  mass 1.0", f"  length {length_unit}",
           f"  angle {angle}", ":documentation", "   test skeleton written by the auglift test suite",
           ":root", f"   order {root_order}", f"   axis {root_axis}", "   position 0 0 0",
           "   orientation 0 0 0", ":bonedata"]
    for i, (name, _, d, length, axis, dof) in enumerate(bones):
        d = np.asarray(d, float)
        d = d / np.linalg.norm(d)
        ax = axis.split()
        if angle == "rad":
            ax = [f"{np.radians(float(a)):.9g}" for a in ax[:3]] + ax[3:]
        out += ["  begin", f"     id {i + 1}", f"     name {name}",
                "     direction " + " ".join(f"{v:.9g}" for v in d),
                f"     length {length * to_file:.9g}", "     axis " + " ".join(ax)]
        if dof:
            out.append(f"    dof {dof}")
            if limits:
                n = len(dof.split())
                lim = ["(-160.0 160.0)"] * n
                out.append("    limits " + lim[0])
                out += ["           " + x for x in lim[1:]]
        out.append("  end")
    out += [":hierarchy", "  begin"]
    kids: dict[str, list[str]] = {}
    for name, parent, *_ in bones:
        kids.setdefault(parent, []).append(name)
    for parent, cs in kids.items():
        out.append(f"    {parent} {' '.join(cs)}")
    out += ["  end", ""]
    return "\n".join(out)


def random_amc(bones, n: int, rng: np.random.Generator, *, root_order: str = "TX TY TZ RX RY RZ",
               max_deg: float = 50.0, length_unit: float = 0.45, metres_per_base: float = 0.0254,
               header: str = ":DEGREES", radians: bool = False) -> tuple[str, dict[str, np.ndarray]]:
    """AMC text with smooth random angles; returns (text, {bone: (n, dof) values as written})."""
    t = np.linspace(0, 1, n)
    to_file = length_unit / metres_per_base
    vals: dict[str, np.ndarray] = {}
    root_cols = []
    for tok in root_order.split():
        if tok.upper().startswith("T"):
            base = 0.95 if tok.upper() == "TY" else 0.0
            root_cols.append((base + rng.uniform(-0.3, 0.3) * t) * to_file)
        else:
            root_cols.append(rng.uniform(-40, 40) * np.sin(2 * np.pi * rng.uniform(0.2, 1.5) * t))
    vals["root"] = np.stack(root_cols, 1)
    for name, _, _, _, _, dof in bones:
        if dof:
            k = len(dof.split())
            vals[name] = np.stack([rng.uniform(-max_deg, max_deg) * np.sin(2 * np.pi * rng.uniform(0.2, 2) * t
                                                                          + rng.uniform(0, 6)) for _ in range(k)], 1)
    rot_cols = np.array([not tok.upper().startswith("T") for tok in root_order.split()])
    lines = ["#!OML:ASF test.asf", ":FULLY-SPECIFIED", header]
    for f in range(n):
        lines.append(str(f + 1))
        for name, v in vals.items():
            vv = v[f].copy()
            if radians:
                if name == "root":
                    vv[rot_cols] = np.radians(vv[rot_cols])
                else:
                    vv = np.radians(vv)
            lines.append(name + " " + " ".join(f"{x:.9g}" for x in vv))
    return "\n".join(lines) + "\n", vals


def reference_asf_fk(bones, vals: dict[str, np.ndarray], *, length_unit: float = 0.45,
                     metres_per_base: float = 0.0254, root_order: str = "TX TY TZ RX RY RZ",
                     root_axis: str = "XYZ") -> dict[str, np.ndarray]:
    """Naive ASF/AMC FK (metres): ``{bone: (F, 3) start position, bone + "_end": end position}``.

    G_b = G_parent C_b M_b C_b^-1 per frame; M_b composes the dof rotations in the dof order
    about fixed axes; C_b the axis angles in the axis order.
    """
    F = vals["root"].shape[0]
    order = [t.lower() for t in root_order.split()]
    out: dict[str, np.ndarray] = {}
    metres = metres_per_base / length_unit
    for f in range(F):
        rv = dict(zip(order, vals["root"][f]))
        M0 = np.eye(3)
        for a in root_axis:
            M0 = rot(a, rv.get("r" + a.lower(), 0.0)) @ M0
        p0 = np.array([rv.get("tx", 0.0), rv.get("ty", 0.0), rv.get("tz", 0.0)]) * metres
        G = {"root": M0}
        end = {"root": p0}
        out.setdefault("root", np.zeros((F, 3)))[f] = p0
        for name, parent, d, length, axis, dof in bones:
            ax = axis.split()
            C = np.eye(3)
            for a, v in zip(ax[3], (dict(zip("XYZ", map(float, ax[:3])))[c] for c in ax[3])):
                C = rot(a, v) @ C
            M = np.eye(3)
            for d_name, v in zip(dof.split(), vals.get(name, np.zeros((F, 0)))[f]):
                M = rot(d_name[1], v) @ M
            G[name] = G[parent] @ C @ M @ C.T
            dvec = np.asarray(d, float) / np.linalg.norm(d)
            start = end[parent]
            end[name] = start + G[name] @ (dvec * length)
            out.setdefault(name, np.zeros((F, 3)))[f] = start
            out.setdefault(name + "_end", np.zeros((F, 3)))[f] = end[name]
    return out


def write_motion_library(root: Path, rng: np.random.Generator, copies: int = 1) -> Path:
    """A small motion library in ``root``: per copy a CMU BVH (240 frames at 120 fps), a Mixamo BVH
    (6 channels per joint, cm, 60 frames at 30 fps) and a CMU ASF/AMC pair (180 frames), smooth
    random rotations up to 40 deg. Copy 0 is ``07_03.bvh``, ``Walking.bvh``, ``86.asf``/``86_02.amc``."""
    for i in range(copies):
        sk = tree_skeleton(CMU_BVH_TREE, scale=1 / 0.056444)
        ch = random_channels(sk, rng)
        write_tree_bvh(root / f"{7 + i:02d}_03.bvh", sk, ch, random_frames(sk, ch, 240, rng, scale=1 / 0.056444,
                                                                             max_deg=40))
        sk = tree_skeleton(CMU_BVH_TREE, rename=MIXAMO_RENAME, prefix="mixamorig:", scale=100)
        ch = random_channels(sk, rng, joint_positions=True)
        write_tree_bvh(root / f"Walking{i or ''}.bvh", sk, ch, random_frames(sk, ch, 60, rng, scale=100, max_deg=40),
                       fps=30)
        (root / f"{86 + i}.asf").write_text(asf_text())
        (root / f"{86 + i}_02.amc").write_text(random_amc(CMU_ASF_BONES, 180, rng, max_deg=40)[0])
    return root
