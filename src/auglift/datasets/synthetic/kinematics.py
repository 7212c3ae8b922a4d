"""Joint-angle kinematics of the synthetic bodies: degrees of freedom, limits, forward kinematics.

World frame: metres, x/y on the floor, **z up**, floor at ``z = 0``. A body frame has axes
(forward, left, up). A pose is a vector of :data:`NUM_DOF` angles in radians:

* root ``yaw`` (heading about world z), ``pitch`` (whole body tips forward, + = prone side),
  ``roll`` (tips to the left);
* ``spine`` (pelvis -> spine segment), ``chest`` (spine -> thorax), ``neck`` (head): each
  ``flex`` (forward bend), ``lat`` (bend to the left), ``twist`` (turn to the left);
* per side (``l_``, ``r_``) shoulder and hip ``flex`` (limb swings forward), ``abd`` (away
  from the midline), ``rot`` (external rotation about the limb axis), and the hinge joints
  ``elbow`` / ``knee`` (flexion >= 0: knees and elbows never bend backwards).

:data:`LIMITS` holds anatomical ranges (degrees); :func:`clip_to_limits` enforces them and
:func:`forward_kinematics` turns ``(T, NUM_DOF)`` angles into ``(T, 17, 3)`` H36M-17 joints
(pelvis at the origin, yaw applied), fully vectorised over frames.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from auglift.datasets.synthetic.bodies import HEAD_OFFSETS, Body

__all__ = [
    "DOF",
    "DOF_NAMES",
    "LIMITS",
    "NEUTRAL",
    "NUM_DOF",
    "clip_to_limits",
    "forward_kinematics",
    "pose_vector",
]

DOF_NAMES: tuple[str, ...] = (
    "yaw", "pitch", "roll",
    "spine_flex", "spine_lat", "spine_twist",
    "chest_flex", "chest_lat", "chest_twist",
    "neck_flex", "neck_lat", "neck_twist",
    "l_sh_flex", "l_sh_abd", "l_sh_rot", "l_elbow",
    "r_sh_flex", "r_sh_abd", "r_sh_rot", "r_elbow",
    "l_hip_flex", "l_hip_abd", "l_hip_rot", "l_knee",
    "r_hip_flex", "r_hip_abd", "r_hip_rot", "r_knee",
)
DOF: dict[str, int] = {n: i for i, n in enumerate(DOF_NAMES)}
NUM_DOF = len(DOF_NAMES)

# Anatomical ranges in degrees (root angles are global orientation, bounded only for sanity).
_LIMITS_DEG: dict[str, tuple[float, float]] = {
    "yaw": (-1e9, 1e9), "pitch": (-100.0, 100.0), "roll": (-90.0, 90.0),
    "spine_flex": (-25.0, 55.0), "spine_lat": (-25.0, 25.0), "spine_twist": (-30.0, 30.0),
    "chest_flex": (-20.0, 40.0), "chest_lat": (-20.0, 20.0), "chest_twist": (-30.0, 30.0),
    "neck_flex": (-50.0, 60.0), "neck_lat": (-35.0, 35.0), "neck_twist": (-70.0, 70.0),
    "sh_flex": (-50.0, 180.0), "sh_abd": (-20.0, 175.0), "sh_rot": (-70.0, 90.0), "elbow": (0.0, 150.0),
    "hip_flex": (-25.0, 130.0), "hip_abd": (-25.0, 50.0), "hip_rot": (-35.0, 45.0), "knee": (0.0, 150.0),
}
# (NUM_DOF, 2) radians [lo, hi]; a sided DOF (l_/r_) takes its joint's range
LIMITS = np.radians(np.array([_LIMITS_DEG[n[2:] if n[:2] in ("l_", "r_") else n] for n in DOF_NAMES]))

# Relaxed standing: arms hang slightly abducted with soft elbows, knees almost straight.
_NEUTRAL_DEG = {"l_sh_abd": 7.0, "r_sh_abd": 7.0, "l_elbow": 12.0, "r_elbow": 12.0,
                "l_knee": 3.0, "r_knee": 3.0, "l_hip_abd": 3.0, "r_hip_abd": 3.0,
                "spine_flex": 2.0, "neck_flex": 4.0}


def pose_vector(degrees: dict[str, float] | None = None, base: np.ndarray | None = None) -> np.ndarray:
    """A ``(NUM_DOF,)`` radians pose: ``base`` (default :data:`NEUTRAL`) with the named DOFs set (degrees).

    ``"sh_abd"``-style names without side prefix set both sides.
    """
    out = (NEUTRAL if base is None else base).copy()
    for name, val in (degrees or {}).items():
        names = [name] if name in DOF else [f"l_{name}", f"r_{name}"]
        for n in names:
            out[DOF[n]] = np.radians(val)
    return out


NEUTRAL = pose_vector(_NEUTRAL_DEG, np.zeros(NUM_DOF))


def clip_to_limits(angles: np.ndarray) -> np.ndarray:
    """Clip ``(..., NUM_DOF)`` radians to :data:`LIMITS` (a new array)."""
    return np.clip(angles, LIMITS[:, 0], LIMITS[:, 1])


def _euler(seq: str, *angles: np.ndarray) -> np.ndarray:
    """``(T, 3, 3)`` rotations from per-frame angles (radians) about the moving axes in ``seq``.

    scipy's intrinsic convention: ``_euler("YXZ", a, b, c) = R_y(a) @ R_x(b) @ R_z(c)``. Each
    elementary rotation comes from scipy and the product from a batched matmul: scipy composes
    multi-axis sequences about 50x slower (scipy 1.17, ``benchmarks/bench_synth.py``).
    """
    out = Rotation.from_euler(seq[0], angles[0].reshape(-1, 1)).as_matrix()
    for axis, a in zip(seq[1:], angles[1:]):
        out = out @ Rotation.from_euler(axis, a.reshape(-1, 1)).as_matrix()
    return out


def _trunk(flex: np.ndarray, lat: np.ndarray, twist: np.ndarray) -> np.ndarray:
    """Rotation of a trunk segment: forward flexion, left lateral bend, left twist."""
    return _euler("YXZ", flex, -lat, twist)


def _limb(flex: np.ndarray, abd: np.ndarray, rot: np.ndarray, side: float) -> np.ndarray:
    """Rotation of a limb hanging along -up: flexion forward, abduction outward, external rotation."""
    return _euler("YXZ", -flex, side * abd, side * rot)


def _apply(R: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("...ij,...j->...i", R, v)


def forward_kinematics(angles: np.ndarray, body: Body) -> np.ndarray:
    """Joint positions ``(T, 17, 3)`` metres (world axes, z up, pelvis at the origin) for ``(T, NUM_DOF)`` radians."""
    a = np.asarray(angles, dtype=np.float64)
    T = a.shape[0]
    L = body.lengths
    s = body.scale
    down = np.array([0.0, 0.0, -1.0])
    out = np.zeros((T, 17, 3))
    R_root = _euler("ZYX", a[:, DOF["yaw"]], a[:, DOF["pitch"]], -a[:, DOF["roll"]])
    R_spine = R_root @ _trunk(a[:, 3], a[:, 4], a[:, 5])
    R_chest = R_spine @ _trunk(a[:, 6], a[:, 7], a[:, 8])
    R_head = R_chest @ _trunk(a[:, 9], a[:, 10], a[:, 11])
    out[:, 7] = _apply(R_spine, np.array([0.0, 0.0, L["spine"][0]]))
    out[:, 8] = out[:, 7] + _apply(R_chest, np.array([0.0, 0.0, L["chest"][0]]))
    out[:, 9] = out[:, 8] + _apply(R_head, HEAD_OFFSETS["nose"] * s)
    out[:, 10] = out[:, 8] + _apply(R_head, HEAD_OFFSETS["head"] * s)
    drop = 0.012 * s
    for k, (side, hip_j, sh_j) in enumerate(((1.0, 4, 11), (-1.0, 1, 14))):
        p = "l_" if side > 0 else "r_"
        # legs
        out[:, hip_j] = _apply(R_root, np.array([0.0, side * L["hip"][k], -drop]))
        R_leg = R_root @ _limb(a[:, DOF[p + "hip_flex"]], a[:, DOF[p + "hip_abd"]], a[:, DOF[p + "hip_rot"]], side)
        out[:, hip_j + 1] = out[:, hip_j] + _apply(R_leg, down * L["thigh"][k])
        R_shank = R_leg @ _euler("Y", a[:, DOF[p + "knee"]])
        out[:, hip_j + 2] = out[:, hip_j + 1] + _apply(R_shank, down * L["shank"][k])
        # arms
        sw = L["shoulder"][k]
        out[:, sh_j] = out[:, 8] + _apply(R_chest, np.array([-0.12 * sw, side * 0.985 * sw, -0.12 * sw]))
        R_arm = R_chest @ _limb(a[:, DOF[p + "sh_flex"]], a[:, DOF[p + "sh_abd"]], a[:, DOF[p + "sh_rot"]], side)
        out[:, sh_j + 1] = out[:, sh_j] + _apply(R_arm, down * L["upper_arm"][k])
        R_fore = R_arm @ _euler("Y", -a[:, DOF[p + "elbow"]])
        out[:, sh_j + 2] = out[:, sh_j + 1] + _apply(R_fore, down * L["forearm"][k])
    return out
