"""Retarget motion capture to H36M-17 world trajectories.

A :class:`~auglift.datasets.mocap.kinematics.Motion` (any skeleton, any units, y-up or z-up)
becomes a :class:`MocapClip`: ``(F, 17, 3)`` H36M-17 joints in metres in a z-up world frame
(gravity along ``-z``, floor at ``z = 0``, right-handed, x/y horizontal), at the requested
frame rate.

Steps (:func:`retarget`):

1. resample the local joint transforms to the requested fps (slerp; bones keep their length);
2. forward kinematics -> source joints in metres (:func:`~auglift.datasets.mocap.kinematics.forward_kinematics`);
3. named joint correspondences -> H36M-17 (each H36M joint is one source joint or the mean of
   a few; tables in :data:`SKELETON_MAPS`, detected from the joint names, or a user mapping);
4. up axis: the rest pose's head-minus-feet direction snapped to the nearest axis (or ``up=``),
   rotated onto ``+z``;
5. height: the rest pose's vertical extent; ``height="auto"`` keeps the file's metric size when
   it is 1.4-2.0 m and otherwise scales it to the nearest bound, a number rescales to exactly
   that height, ``None`` keeps the size as read;
6. floor: the 5th percentile over frames of the lowest foot point (ankles, toes and their end
   sites) becomes ``z = 0``; with ``center=True`` the centre of the pelvis path's horizontal
   bounding box is moved above the origin (where the synthetic world's ring cameras look);
7. head: rigs end the head chain at different landmarks (skull top, long CMU necks), so
   neck/nose and head are put at H36M distances along the source's neck and head directions
   (:func:`h36m_head`; ``head="source"`` keeps the mapped joints).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from auglift.datasets.mocap.kinematics import Motion, resample
from auglift.errors import ConfigError, DataError
from auglift.skeleton import H36M17

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "H36M_HEAD_LENGTHS",
    "HEIGHT_RANGE_M",
    "SKELETON_MAPS",
    "MocapClip",
    "SkeletonMap",
    "detect_skeleton",
    "find_motion_files",
    "h36m_head",
    "load_mapping",
    "load_motion",
    "load_motions",
    "mapping_matrix",
    "retarget",
]

H36M_JOINTS = H36M17.joints
# Bodies come out this tall (metres) with height="auto".
HEIGHT_RANGE_M = (1.4, 2.0)
FLOOR_PERCENTILE = 5.0
# thorax -> neck/nose and neck/nose -> head (metres) for a body H36M_REFERENCE_HEIGHT tall.
H36M_HEAD_LENGTHS = (0.11, 0.105)
H36M_REFERENCE_HEIGHT = 1.75
MOTION_SUFFIXES = (".bvh", ".amc")

Alternatives = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class SkeletonMap:
    """Named joint correspondences from one skeleton convention to H36M-17.

    ``joints[h36m_name]`` lists alternatives, tried in order: each alternative is a tuple of
    source joint names whose mean position is the H36M joint (the first alternative whose
    names all exist is used). ``signature`` names must all exist for auto-detection; ``prefix``
    (e.g. ``mixamorig``) must start the raw joint names when set. ``feet`` are the source
    joints whose subtrees touch the floor.
    """

    name: str
    description: str
    joints: Mapping[str, Alternatives]
    signature: tuple[str, ...]
    feet: tuple[str, ...]
    prefix: str | None = None


def _limbs(hip: str, knee: str, ankle: str, shoulder: str, elbow: str, wrist: str,
           left: str = "Left", right: str = "Right") -> dict[str, Alternatives]:
    return {f"{side}_{h36m}": ((pre + src,),) for side, pre in (("left", left), ("right", right))
            for h36m, src in (("hip", hip), ("knee", knee), ("foot", ankle), ("shoulder", shoulder), ("elbow", elbow),
                              ("wrist", wrist))}


_HEAD_TOPS = (("HeadTop_End",), ("HeadEnd",), ("Head_End",), ("Head_end",), ("Head",))

SKELETON_MAPS: dict[str, SkeletonMap] = {m.name: m for m in (
    SkeletonMap(
        "cmu_asf", "CMU/Vicon ASF (joints at bone starts: lfemur = hip, ltibia = knee, lfoot = ankle)",
        {"pelvis": (("root",),), "spine": (("thorax",),), "thorax": (("lowerneck",),),
         "neck_nose": (("head",),), "head": (("head_end",), ("head",)),
         **_limbs("femur", "tibia", "foot", "humerus", "radius", "wrist", "l", "r")},
        ("lfemur", "rfemur", "ltibia", "lhumerus", "lowerneck"), ("lfoot", "rfoot")),
    SkeletonMap(
        "mixamo", "Mixamo BVH (mixamorig:Hips, Spine/Spine1/Spine2, LeftUpLeg, LeftArm, ...)",
        {"pelvis": (("Hips",),), "spine": (("Spine1",), ("Spine",)), "thorax": (("Neck",),),
         "neck_nose": (("Head",),), "head": _HEAD_TOPS,
         **_limbs("UpLeg", "Leg", "Foot", "Arm", "ForeArm", "Hand")},
        ("Hips", "LeftUpLeg", "LeftLeg", "LeftArm", "LeftForeArm"), ("LeftFoot", "RightFoot"), "mixamorig"),
    SkeletonMap(
        "cmu_bvh", "CMU database BVH conversions (Hips, LHipJoint, LowerBack, Spine, Spine1, Neck, Neck1, Head)",
        {"pelvis": (("Hips",),), "spine": (("Spine1",),), "thorax": (("Neck",),),
         "neck_nose": (("Head",),), "head": _HEAD_TOPS,
         **_limbs("UpLeg", "Leg", "Foot", "Arm", "ForeArm", "Hand")},
        ("LHipJoint", "LowerBack", "Neck1", "LeftUpLeg"), ("LeftFoot", "RightFoot")),
    SkeletonMap(
        "biovision",
        "classic Biovision/3ds Max BVH (Hips, Chest, LeftCollar, LeftShoulder, LeftElbow, LeftHip, LeftKnee)",
        {"pelvis": (("Hips",),), "spine": (("Chest",),), "thorax": (("Neck",),),
         "neck_nose": (("Head",),), "head": _HEAD_TOPS,
         **_limbs("Hip", "Knee", "Ankle", "Shoulder", "Elbow", "Wrist")},
        ("LeftHip", "LeftKnee", "LeftAnkle", "LeftElbow", "LeftWrist"), ("LeftAnkle", "RightAnkle")),
    SkeletonMap(
        "motionbuilder", "MotionBuilder/HumanIK-style BVH (Hips, Spine, Spine1, Neck, Head, LeftUpLeg, LeftArm, ...)",
        {"pelvis": (("Hips",),), "spine": (("Spine1",), ("Spine",)), "thorax": (("Neck",), ("Spine2",)),
         "neck_nose": (("Head",),), "head": _HEAD_TOPS,
         **_limbs("UpLeg", "Leg", "Foot", "Arm", "ForeArm", "Hand")},
        ("Hips", "LeftUpLeg", "LeftLeg", "LeftArm", "LeftForeArm"), ("LeftFoot", "RightFoot")),
)}


def canonical(name: str) -> str:
    """Joint name for matching: namespace (``mixamorig:``) dropped, lower case, no ``_ -`` or spaces."""
    return re.sub(r"[\s_\-.]", "", name.rsplit(":", 1)[-1]).lower()


@dataclass
class MocapClip:
    """A motion retargeted to H36M-17.

    Attributes:
        kp3d: ``(F, 17, 3)`` float64 H36M-17 joints, metres, world frame: z up (gravity ``-z``),
            floor ``z = 0``, right-handed, x/y horizontal.
        fps: frames per second.
        name: a short clip name (the file stem).
        path: the source file.
        skeleton: the correspondence table used (``cmu_asf``, ``mixamo``, ..., or ``custom``).
        height: rest-pose height of the output body (metres, vertical extent of all source joints).
        info: how the motion was read and normalised (unit, up axis, scale, floor, fps...).
    """

    kp3d: np.ndarray
    fps: float
    name: str
    path: str | None
    skeleton: str
    height: float
    info: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.kp3d.shape[0])


def load_mapping(mapping: str | os.PathLike[str] | Mapping[str, str | Iterable[str]]
                 ) -> tuple[dict[str, tuple[str, ...]], str | None]:
    """A user mapping: ``{h36m joint: source joint name or list of names (averaged)}``.

    ``mapping`` is a dict, or a ``.toml`` / ``.json`` file holding that table at top level or
    under ``[joints]``. H36M names are those of :data:`auglift.skeleton.H36M17` (``pelvis``,
    ``left_knee``, ``neck_nose``, ...). Returns ``(table, file path or None)``.
    """
    src: str | None = None
    if isinstance(mapping, (str, os.PathLike)):
        src = os.fspath(mapping)
        path = Path(mapping)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"{src}: mapping file not found") from None
        is_json = path.suffix.lower() == ".json"
        try:
            data = (json.loads if is_json else tomllib.loads)(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(src, None, f"not a valid {'JSON' if is_json else 'TOML'} joint mapping: {exc}") from None
    else:
        data = dict(mapping)
    if isinstance(data, dict) and isinstance(data.get("joints"), dict):
        data = data["joints"]
    if not isinstance(data, dict):
        raise DataError(src, None, "expected a table {h36m joint: source joint name(s)}")
    out: dict[str, tuple[str, ...]] = {}
    for key, val in data.items():
        if key not in H36M_JOINTS:
            raise DataError(src, str(key), f"not an H36M-17 joint; expected one of {', '.join(H36M_JOINTS)}")
        names = (val,) if isinstance(val, str) else tuple(val) if isinstance(val, (list, tuple)) else None
        if not names or not all(isinstance(n, str) and n for n in names):
            raise DataError(src, str(key), f"expected a source joint name or a list of names, got {val!r}")
        out[key] = names
    return out, src


def detect_skeleton(names: Iterable[str]) -> SkeletonMap | None:
    """The first table in :data:`SKELETON_MAPS` whose signature and 17 joints all resolve, or None."""
    names = tuple(names)
    canon = {canonical(n) for n in names}
    for m in SKELETON_MAPS.values():
        if m.prefix and not any(n.lower().startswith(m.prefix) for n in names):
            continue
        if not all(canonical(s) in canon for s in m.signature):
            continue
        if all(any(all(canonical(n) in canon for n in alt) for alt in alts) for alts in m.joints.values()):
            return m
    return None


def mapping_matrix(motion: Motion, mapping: str | SkeletonMap | Mapping | os.PathLike[str] | None = None
                   ) -> tuple[np.ndarray, str, list[int]]:
    """The ``(17, K)`` matrix taking the motion's joints to H36M-17 (rows sum to 1).

    ``mapping``: ``None``/``"auto"`` (detect from the joint names), a name in
    :data:`SKELETON_MAPS`, a :class:`SkeletonMap`, or a user table / file (see
    :func:`load_mapping`), which may be partial when the skeleton is also detected.
    Returns ``(W, table name, foot joint indices)``.
    """
    sk = motion.skeleton
    index = {}
    for k, n in enumerate(sk.names):
        index.setdefault(canonical(n), k)
    user: dict[str, tuple[str, ...]] = {}
    user_src: str | None = None
    base: SkeletonMap | None
    if mapping is None or mapping == "auto":
        base = detect_skeleton(sk.names)
    elif isinstance(mapping, SkeletonMap):
        base = mapping
    elif isinstance(mapping, str) and mapping in SKELETON_MAPS:
        base = SKELETON_MAPS[mapping]
    else:
        user, user_src = load_mapping(mapping)
        base = detect_skeleton(sk.names)
    if base is None and not user:
        shown = ", ".join(sk.names[:12]) + (", ..." if sk.num_joints > 12 else "")
        raise DataError(motion.path, f"line {sk.lines[0]}",
                        f"unknown skeleton: its joint names ({shown}) match none of the known skeletons "
                        f"({', '.join(SKELETON_MAPS)}); pass a joint mapping (a TOML/JSON table "
                        f"h36m joint -> source joint, e.g. left_knee = \"LKnee\"; auglift synth --motion-map FILE)")
    W = np.zeros((17, sk.num_joints))
    missing = []
    for h, hname in enumerate(H36M_JOINTS):
        if hname in user:
            idx = []
            for n in user[hname]:
                k = index.get(canonical(n))
                if k is None:
                    raise DataError(user_src or motion.path, hname,
                                    f"joint {n!r} is not in {motion.path or 'the motion'} (joints: "
                                    f"{', '.join(sk.names[:40])}{', ...' if sk.num_joints > 40 else ''})")
                idx.append(k)
        else:
            alts = base.joints[hname] if base is not None else ()
            idx = next(([index[canonical(n)] for n in alt] for alt in alts
                        if all(canonical(n) in index for n in alt)), [])
            if not idx:
                missing.append(hname)
                continue
        for k in idx:
            W[h, k] += 1.0 / len(idx)
    if missing:
        if base is None:
            raise DataError(user_src, None, f"the joint mapping does not define {', '.join(missing)} and "
                                            f"the skeleton of {motion.path} is not a known one")
        raise DataError(motion.path, f"line {sk.lines[0]}",
                        f"skeleton {base.name!r} lacks joints for {', '.join(missing)}; pass a mapping")
    name = "custom" if user and base is None else base.name + ("+custom" if user else "")
    feet = [index[canonical(n)] for n in (base.feet if base is not None else ()) if canonical(n) in index]
    if not feet:   # user mapping of an unknown skeleton: the ankles and everything below them
        feet = [int(k) for h in (H36M_JOINTS.index("left_foot"), H36M_JOINTS.index("right_foot"))
                for k in np.flatnonzero(W[h])]
    return W, name, sorted({j for k in feet for j in sk.descendants(k).tolist()})


# Proper rotations taking the named source axis onto +z.
_TO_Z_UP = {key: Rotation.from_euler(axis, deg, degrees=True).as_matrix().round()  # exact axis permutations
            for key, axis, deg in (("+z", "x", 0.0), ("-z", "x", 180.0), ("+y", "x", 90.0), ("-y", "x", -90.0),
                                   ("+x", "y", -90.0), ("-x", "y", 90.0))}


def _up_axis(rest17: np.ndarray, up: str, path: str | None) -> str:
    if up != "auto":
        key = up.lower() if up[0] in "+-" else "+" + up.lower()
        if key not in _TO_Z_UP:
            raise ConfigError(f"up axis must be auto, x, y, z, -x, -y or -z; got {up!r}")
        return key
    v = rest17[H36M_JOINTS.index("head")] - 0.5 * (rest17[H36M_JOINTS.index("left_foot")]
                                                    + rest17[H36M_JOINTS.index("right_foot")])
    n = float(np.linalg.norm(v))
    a = int(np.argmax(np.abs(v)))
    if n == 0 or abs(v[a]) < 0.8 * n:
        raise DataError(path, "up axis", f"cannot tell which axis is up from the rest pose (head minus feet = "
                                         f"{np.round(v, 3).tolist()}); pass up= (x, y, z, -x, -y, -z)")
    return ("+" if v[a] > 0 else "-") + "xyz"[a]


def h36m_head(kp: np.ndarray, height: float) -> np.ndarray:
    """Put neck/nose and head at H36M distances along the source's neck and head directions.

    Rigs end their head chain at different landmarks (Mixamo's ``HeadTop_End`` is the top of
    the skull, CMU's neck chain is longer than H36M's), while H36M-17's neck/nose and head sit
    about 0.11 m and 0.215 m above the thorax for a 1.75 m person (the synthetic world's head
    model, whose head sphere is placed from these three joints). The thorax -> neck/nose and
    neck/nose -> head directions of the source are kept (head tilt and turn), their lengths set
    to :data:`H36M_HEAD_LENGTHS` x ``height / 1.75``. ``kp`` is ``(F, 17, 3)``; returns a copy.
    """
    out = kp.copy()
    t, n, h = H36M_JOINTS.index("thorax"), H36M_JOINTS.index("neck_nose"), H36M_JOINTS.index("head")
    s = height / H36M_REFERENCE_HEIGHT
    for a, b, length in ((t, n, H36M_HEAD_LENGTHS[0]), (n, h, H36M_HEAD_LENGTHS[1])):
        d = kp[:, b] - kp[:, a]
        norm = np.linalg.norm(d, axis=-1, keepdims=True)
        d = np.where(norm > 1e-9, d / np.maximum(norm, 1e-12), [0.0, 0.0, 1.0])
        out[:, b] = out[:, a] + length * s * d
    return out


def retarget(motion: Motion, *, fps: float | None = 30.0,
             mapping: str | SkeletonMap | Mapping | os.PathLike[str] | None = None,
             up: str = "auto", height: float | str | None = "auto", center: bool = True,
             head: str = "h36m") -> MocapClip:
    """Retarget a motion to H36M-17 in the z-up world frame (see the module docstring).

    Args:
        motion: from :func:`~auglift.datasets.mocap.load_bvh` / :func:`~auglift.datasets.mocap.load_amc`.
        fps: output frame rate (``None`` keeps the file's).
        mapping: joint correspondences (see :func:`mapping_matrix`).
        up: the source's up axis, ``"auto"`` or ``x``/``y``/``z`` with an optional sign.
        height: ``"auto"`` (keep the metric size if 1.4-2.0 m tall, else scale to the nearest
            bound), a number of metres, or ``None`` (no scaling).
        center: move the centre of the pelvis path's horizontal bounding box above the world origin.
        head: ``"h36m"`` puts neck/nose and head at H36M distances from the thorax along the
            source's own directions (:func:`h36m_head`); ``"source"`` keeps the mapped joints.

    Returns:
        A :class:`MocapClip`.
    """
    W, table, feet = mapping_matrix(motion, mapping)
    src_fps = motion.fps
    if fps is not None:
        motion = resample(motion, fps)
    pos = motion.positions()
    rest = motion.rest_positions()
    rest17 = W @ rest
    up_key = _up_axis(rest17, up, motion.path)
    Q = _TO_Z_UP[up_key]
    pos = pos @ Q.T
    rest = rest @ Q.T
    raw_height = float(np.ptp(rest[:, 2]))
    if raw_height <= 0:
        raise DataError(motion.path, "height", "the rest pose has no vertical extent")
    if height is None:
        scale = 1.0
    elif isinstance(height, str):
        if height != "auto":
            raise ConfigError(f"height must be 'auto', a number of metres or None; got {height!r}")
        scale = min(max(raw_height, HEIGHT_RANGE_M[0]), HEIGHT_RANGE_M[1]) / raw_height  # 1.0 inside the range
    else:
        if not (np.isfinite(height) and height > 0):
            raise ConfigError(f"height must be a positive number of metres, got {height}")
        scale = float(height) / raw_height
    pos *= scale
    F = pos.shape[0]
    if F:
        lowest = pos[:, feet, 2].min(axis=1) if feet else pos[:, :, 2].min(axis=1)
        floor = float(np.percentile(lowest, FLOOR_PERCENTILE))
    else:
        floor = 0.0
    pos[..., 2] -= floor
    kp = np.einsum("hk,fkd->fhd", W, pos)
    if head == "h36m":
        kp = h36m_head(kp, raw_height * scale)
    elif head != "source":
        raise ConfigError(f"head must be 'h36m' or 'source', got {head!r}")
    shift = np.zeros(3)
    if center and F:   # the middle of the pelvis path's bounding box above the origin (the capture centre)
        path = kp[:, 0, :2]
        shift[:2] = -0.5 * (path.min(axis=0) + path.max(axis=0))
        kp += shift
    info = {
        "unit": motion.info.get("unit"), "unit_scale_m": motion.unit_scale, "source_fps": src_fps,
        "up_axis": up_key, "height_scale": scale, "raw_height_m": raw_height,
        "floor_m": floor, "shift_m": shift.tolist(), "kind": motion.kind,
    }
    name = Path(motion.path).stem if motion.path else "motion"
    return MocapClip(kp, float(motion.fps), name, motion.path, table, raw_height * scale, info)


def find_motion_files(path: str | os.PathLike[str]) -> list[Path]:
    """The motion files at ``path``: the file itself, or every ``.bvh``/``.amc`` below a directory (sorted)."""
    p = Path(path)
    if p.is_file():
        if p.suffix.lower() not in MOTION_SUFFIXES:
            raise DataError(p, None, f"not a motion file: expected {' or '.join(MOTION_SUFFIXES)}")
        return [p]
    if not p.exists():
        raise DataError(p, None, "no such file or directory")
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MOTION_SUFFIXES)
    if not files:
        raise DataError(p, None, f"no motion files ({', '.join(MOTION_SUFFIXES)}) in this directory")
    return files


def load_motion(path: str | os.PathLike[str], *, fps: float | None = 30.0,
                mapping: str | SkeletonMap | Mapping | os.PathLike[str] | None = None,
                units: str | float = "auto", up: str = "auto", height: float | str | None = "auto",
                asf: str | os.PathLike[str] | None = None, amc_fps: float = 120.0,
                center: bool = True, head: str = "h36m") -> MocapClip:
    """Read one ``.bvh`` or ``.amc`` file and retarget it (see :func:`retarget`).

    ``units`` and ``asf``/``amc_fps`` go to the reader (:func:`~auglift.datasets.mocap.load_bvh`,
    :func:`~auglift.datasets.mocap.load_amc`).
    """
    from auglift.datasets.mocap.asf_amc import load_amc
    from auglift.datasets.mocap.bvh import load_bvh

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".bvh":
        motion = load_bvh(p, units=units)
    elif suffix == ".amc":
        motion = load_amc(p, asf, fps=amc_fps, units=units)
    else:
        raise DataError(p, None, f"not a motion file: expected {' or '.join(MOTION_SUFFIXES)}")
    return retarget(motion, fps=fps, mapping=mapping, up=up, height=height, center=center, head=head)


def load_motions(path: str | os.PathLike[str], **kwargs) -> list[MocapClip]:
    """:func:`load_motion` for every motion file at ``path`` (a file or a directory)."""
    return [load_motion(f, **kwargs) for f in find_motion_files(path)]
