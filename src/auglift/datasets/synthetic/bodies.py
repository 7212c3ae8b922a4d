"""Bodies of the synthetic world: H36M-17 skeletons with sampled anthropometry and a capsule volume model.

A :class:`Body` holds one subject's segment lengths (metres, constant for the subject), the radii
of the capsules that give the skeleton volume, the head-sphere radius and the ankle height.
The same primitive list is used by the depth renderer, the occlusion test and the floor-contact
rule, so "visible", the depth map and "feet on the floor" all agree.

Volume model (radii in metres for a 1.75 m subject of average girth, scaled by height/1.75 and
by a per-subject girth factor):

============  ======================  ======
primitive     between joints          radius
============  ======================  ======
hips          right hip - left hip    0.095
thighs        hip - knee              0.075
shanks        knee - ankle            0.052
abdomen       pelvis - spine          0.115
chest         spine - thorax          0.120
flanks        hip - same-side         0.065
              shoulder
shoulders     left - right shoulder   0.060
upper arms    shoulder - elbow        0.046
forearms      elbow - wrist           0.038
neck          thorax - head centre    0.050
head sphere   head centre             0.100
hands         beyond the wrist along  0.9 x forearm
              the forearm
feet          heel to toe below the   0.7 x shank
              ankle
============  ======================  ======

Hands and feet (:func:`extremity_capsules`) are placed from the joints of each frame, so they
also dress external motion: a hand runs from 0.12 to 0.5 forearm lengths beyond the wrist along
the forearm; a foot from the heel (0.11 shank lengths behind the ankle) to the toes (0.34 ahead),
perpendicular to the shank towards the front of the leg and turned towards horizontal (at most
35 deg up, 45 deg down, more so the more upright the shank), as a flat-footed stance has it.

The head centre is not an H36M joint; it is the fixed affine combination
``HEAD_CENTRE_WEIGHTS`` of thorax, neck/nose and head that the kinematic model makes exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "CAPSULES",
    "EXTREMITIES",
    "HEAD_CENTRE_WEIGHTS",
    "HEAD_RADIUS",
    "REFERENCE_HEIGHT",
    "SEGMENT_RATIOS",
    "Body",
    "body_from_joints",
    "contact_radii_from_volume",
    "extremity_capsules",
    "head_centre",
    "joint_radii_from_volume",
    "joint_surface_radius",
    "sample_body",
]

REFERENCE_HEIGHT = 1.75  # metres; all base lengths and radii below are for this height

# Segment lengths as fractions of body height (close to Human3.6M subject S1's bone lengths).
SEGMENT_RATIOS: dict[str, float] = {
    "hip": 0.076,        # pelvis -> hip (lateral)
    "thigh": 0.259,      # hip -> knee
    "shank": 0.254,      # knee -> ankle ("foot" joint)
    "spine": 0.138,      # pelvis -> spine
    "chest": 0.152,      # spine -> thorax
    "shoulder": 0.094,   # thorax -> shoulder
    "upper_arm": 0.159,  # shoulder -> elbow
    "forearm": 0.143,    # elbow -> wrist
    "ankle": 0.043,      # ankle joint height above the floor when standing
}
# Sampled per subject: relative standard deviation of each ratio (limb proportions vary ~3%).
SEGMENT_RATIO_SD: dict[str, float] = {
    "hip": 0.06, "thigh": 0.03, "shank": 0.03, "spine": 0.04, "chest": 0.04, "shoulder": 0.05,
    "upper_arm": 0.03, "forearm": 0.03, "ankle": 0.05,
}

# Head geometry in the head frame (forward, left, up), metres at the reference height, relative
# to the thorax: centre of the head sphere, neck/nose joint, head (top-front) joint.
HEAD_OFFSETS = {
    "centre": np.array([0.0, 0.0, 0.13]),
    "nose": np.array([0.088, 0.0, 0.11]),
    "head": np.array([0.04, 0.0, 0.215]),
}
HEAD_RADIUS = 0.10


# centre = a * thorax + b * nose + c * head, exact for any head rotation (solved from HEAD_OFFSETS' sagittal plane).
_B, _C = np.linalg.solve(np.stack([HEAD_OFFSETS["nose"][[0, 2]], HEAD_OFFSETS["head"][[0, 2]]], axis=1),
                         HEAD_OFFSETS["centre"][[0, 2]])
HEAD_CENTRE_WEIGHTS = (float(1.0 - _B - _C), float(_B), float(_C))

# Capsules: (name, joint a, joint b, base radius). Joint -1 means the head centre.
CAPSULES: tuple[tuple[str, int, int, float], ...] = (
    ("hips", 1, 4, 0.095),
    ("right_thigh", 1, 2, 0.075),
    ("right_shank", 2, 3, 0.052),
    ("left_thigh", 4, 5, 0.075),
    ("left_shank", 5, 6, 0.052),
    ("abdomen", 0, 7, 0.115),
    ("chest", 7, 8, 0.120),
    ("right_flank", 1, 14, 0.065),
    ("left_flank", 4, 11, 0.065),
    ("shoulders", 11, 14, 0.060),
    ("left_upper_arm", 11, 12, 0.046),
    ("left_forearm", 12, 13, 0.038),
    ("right_upper_arm", 14, 15, 0.046),
    ("right_forearm", 15, 16, 0.038),
    ("neck", 8, -1, 0.050),
)

# A joint is visible when nothing lies more than (its surface radius + a tolerance) in front of
# its centre. The surface radius is the largest radius of the capsules meeting at the joint;
# neck/nose and head lie near the head sphere's surface (0.3 x head radius). The trunk joints
# (pelvis, spine, thorax) sit inside a body that is wider than deep, and
# :func:`joint_surface_radius` widens their radius with the viewing direction.
HEAD_JOINT_FRACTION = 0.3

# Hands and feet, appended after the capsules and the head sphere (:func:`extremity_capsules`).
EXTREMITIES: tuple[str, ...] = ("left_hand", "right_hand", "left_foot", "right_foot")
_HAND_SPAN = (0.12, 0.5)                 # forearm lengths beyond the wrist
_HEEL, _TOE = (0.07, -0.11), (0.09, 0.34)  # (along the shank, along the foot) in shank lengths
_FOOT_TILT_DEG = (-35.0, 45.0)           # dorsiflexion, plantarflexion limits towards horizontal
_HAND_RADIUS, _FOOT_RADIUS = 0.9, 0.7    # x forearm / shank capsule radius


def joint_radii_from_volume(capsule_radii: np.ndarray, head_radius: float) -> np.ndarray:
    """Surface radius per joint ``(17,)`` metres from the capsule radii ``(15,)`` and head radius."""
    out = np.zeros(17)
    for (_name, a, b, _base), r in zip(CAPSULES, np.asarray(capsule_radii, dtype=np.float64)):
        for j in (a, b):
            if j >= 0:
                out[j] = max(out[j], r)
    out[[9, 10]] = HEAD_JOINT_FRACTION * head_radius
    return out


def contact_radii_from_volume(joint_radii: np.ndarray, ankle_height: float) -> np.ndarray:
    """Lowest body surface below each joint ``(17,)`` for the floor-contact rule (ankles: ankle height;
    the head is handled by its sphere)."""
    out = np.asarray(joint_radii, dtype=np.float64).copy()
    out[[3, 6]] = ankle_height
    out[[9, 10]] = 0.0
    return out


@dataclass(frozen=True)
class Body:
    """One subject's fixed body: segment lengths and volume.

    Attributes:
        subject: subject id (e.g. ``"L3"``).
        height: nominal standing height, metres.
        girth: volume factor (1 = average); radii scale with ``height / 1.75 * girth``.
        lengths: segment name -> ``(2,)`` float64 ``[left, right]`` lengths in metres (central
            segments have equal entries); names as in :data:`SEGMENT_RATIOS`.
        capsule_radii: ``(len(CAPSULES),)`` float64 metres.
        head_radius: metres.
        joint_radii: ``(17,)`` float64 surface radius per joint, metres (:func:`joint_radii_from_volume`).
        contact_radii: ``(17,)`` float64 lowest surface below each joint, metres.
    """

    subject: str
    height: float
    girth: float
    lengths: dict[str, np.ndarray]
    capsule_radii: np.ndarray
    head_radius: float
    joint_radii: np.ndarray
    contact_radii: np.ndarray

    @property
    def scale(self) -> float:
        """Height relative to the 1.75 m reference body."""
        return self.height / REFERENCE_HEIGHT


def _volume(height: float, girth: float, ankle: float) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    s = height / REFERENCE_HEIGHT
    caps = np.array([c[3] for c in CAPSULES]) * s * girth
    head = HEAD_RADIUS * s * (0.5 + 0.5 * girth)  # heads vary less than limbs
    jr = joint_radii_from_volume(caps, head)
    return caps, float(head), jr, contact_radii_from_volume(jr, ankle)


def sample_body(rng: np.random.Generator, subject: str) -> Body:
    """Draw a subject: height 1.45-2.0 m (mixed sexes), limb ratios with ~3% spread, girth +-12%."""
    male = rng.random() < 0.5
    height = float(np.clip(rng.normal(1.77 if male else 1.64, 0.07), 1.45, 2.0))
    girth = float(np.clip(np.exp(rng.normal(0.04 if male else -0.04, 0.12)), 0.75, 1.45))
    lengths: dict[str, np.ndarray] = {}
    for name, ratio in SEGMENT_RATIOS.items():
        base = ratio * height * (1.0 + SEGMENT_RATIO_SD[name] * rng.normal())
        asym = 0.008 * rng.normal() if name in ("thigh", "shank", "upper_arm", "forearm") else 0.0
        lengths[name] = np.array([base * (1 + asym), base * (1 - asym)])
    caps, head, jr, cr = _volume(height, girth, float(lengths["ankle"].mean()))
    return Body(subject, height, girth, lengths, caps, head, jr, cr)


# Measured segments: (name, [left joints], [right joints]); central segments list the same bone twice.
_BONES = (("hip", (0, 4), (0, 1)), ("thigh", (4, 5), (1, 2)), ("shank", (5, 6), (2, 3)), ("spine", (0, 7), (0, 7)),
          ("chest", (7, 8), (7, 8)), ("shoulder", (8, 11), (8, 14)), ("upper_arm", (11, 12), (14, 15)),
          ("forearm", (12, 13), (15, 16)))


def body_from_joints(joints: np.ndarray, subject: str, girth: float = 1.0) -> Body:
    """A :class:`Body` whose volume fits given world joints ``(T, 17, 3)`` metres (for external motion).

    The height is estimated from the median bone lengths (legs + trunk + head), the segment
    lengths are the measured medians.
    """
    j = np.asarray(joints, dtype=np.float64)

    def bone(a: int, b: int) -> float:
        return float(np.nanmedian(np.linalg.norm(j[:, a] - j[:, b], axis=-1)))

    lengths = {name: np.array([bone(*left), bone(*right)]) for name, left, right in _BONES}
    leg = 0.5 * (lengths["thigh"].sum() + lengths["shank"].sum())
    trunk = lengths["spine"][0] + lengths["chest"][0]
    est = (leg + trunk) / sum(SEGMENT_RATIOS[k] for k in ("thigh", "shank", "spine", "chest"))
    height = float(np.clip(est, 1.2, 2.2))
    lengths["ankle"] = np.full(2, SEGMENT_RATIOS["ankle"] * height)
    caps, head, jr, cr = _volume(height, girth, float(lengths["ankle"][0]))
    return Body(subject, height, girth, lengths, caps, head, jr, cr)


def head_centre(joints: np.ndarray) -> np.ndarray:
    """Centre of the head sphere ``(..., 3)`` from H36M-17 joints ``(..., 17, 3)`` (any frame)."""
    a, b, c = HEAD_CENTRE_WEIGHTS
    return a * joints[..., 8, :] + b * joints[..., 9, :] + c * joints[..., 10, :]


def joint_surface_radius(kp3d: np.ndarray, body_radii: np.ndarray, capsule_radii: np.ndarray) -> np.ndarray:
    """View-dependent surface radius per joint ``(N, 17)`` metres for camera-frame joints ``(N, 17, 3)``.

    Limb and head joints use ``body_radii (17,)`` (:attr:`Body.joint_radii`, or
    :func:`joint_radii_from_volume` of a clip's stored radii). Pelvis, spine and
    thorax lie inside the trunk, an ellipse in cross-section: half-width ``a`` (half the hip /
    mid-trunk / shoulder span plus the side capsule radius) and half-depth ``b`` (abdomen or chest
    radius); seen along a ray at angle ``theta`` to the body's left-right axis the surface lies
    ``sqrt((a cos theta)^2 + (b sin theta)^2)`` in front of the joint.
    """
    kp = np.asarray(kp3d, dtype=np.float64)
    cr = np.asarray(capsule_radii, dtype=np.float64)
    out = np.broadcast_to(np.asarray(body_radii, dtype=np.float64), kp.shape[:2]).copy()
    ray = kp / np.linalg.norm(kp, axis=-1, keepdims=True)
    mid_l = 0.5 * (kp[:, 4] + kp[:, 11])
    mid_r = 0.5 * (kp[:, 1] + kp[:, 14])
    for j, left, right, side_r, depth_r in ((0, kp[:, 4], kp[:, 1], cr[0], cr[5]),
                                            (7, mid_l, mid_r, cr[7], cr[6]),
                                            (8, kp[:, 11], kp[:, 14], cr[9], cr[6])):
        lat = left - right
        span = np.linalg.norm(lat, axis=-1)
        a = 0.5 * span + side_r
        c = np.abs((ray[:, j] * lat).sum(-1)) / np.maximum(span, 1e-9)
        out[:, j] = np.sqrt((a * c) ** 2 + (depth_r ** 2) * np.maximum(0.0, 1.0 - c * c))
    return out


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-9), n


def _foot_axis(kp: np.ndarray, up: np.ndarray, shank: np.ndarray) -> np.ndarray:
    """Unit heel-to-toe direction ``(B, 2, 3)`` of the (left, right) feet (see the module docstring)."""
    left, _ = _unit(kp[:, 4] - kp[:, 1])
    facing, _ = _unit(np.cross(left, kp[:, 8] - kp[:, 0]))                   # the pelvis faces forward
    bend, size = _unit(kp[:, [5, 2]] - 0.5 * (kp[:, [4, 1]] + kp[:, [6, 3]]))  # knees point forward when bent
    w = np.clip(size / 0.05, 0.0, 1.0)
    ahead = w * bend + (1.0 - w) * facing[:, None]
    flat, _ = _unit(ahead - (ahead * shank).sum(-1, keepdims=True) * shank)
    s_up = (shank * up[:, None]).sum(-1, keepdims=True)
    f_up = (flat * up[:, None]).sum(-1, keepdims=True)
    tilt = np.arctan2(f_up * np.where(s_up > 0, -1.0, 1.0), np.abs(s_up))  # nearest angle that levels the foot
    tilt = np.clip(tilt, *np.radians(_FOOT_TILT_DEG)) * np.abs(s_up)
    return np.cos(tilt) * flat + np.sin(tilt) * shank


def extremity_capsules(kp3d: np.ndarray, capsule_radii: np.ndarray, up: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hands and feet of frames ``kp3d (B, 17, 3)`` metres, in :data:`EXTREMITIES` order.

    Args:
        capsule_radii: ``(B, 15)`` metres (order of :data:`CAPSULES`).
        up: ``(B, 3)`` unit world-up direction in the frame of ``kp3d``.

    Returns:
        ``(a (B, 4, 3), b (B, 4, 3), r (B, 4))`` capsule ends and radii, metres.
    """
    kp = np.asarray(kp3d, dtype=np.float64)
    cr = np.asarray(capsule_radii, dtype=np.float64)
    wrist = kp[:, [13, 16]]
    fore, fore_len = _unit(wrist - kp[:, [12, 15]])
    ankle = kp[:, [6, 3]]
    shank, shank_len = _unit(ankle - kp[:, [5, 2]])
    foot = _foot_axis(kp, np.asarray(up, dtype=np.float64), shank)
    a = np.concatenate([wrist + _HAND_SPAN[0] * fore_len * fore,
                        ankle + shank_len * (_HEEL[0] * shank + _HEEL[1] * foot)], axis=1)
    b = np.concatenate([wrist + _HAND_SPAN[1] * fore_len * fore,
                        ankle + shank_len * (_TOE[0] * shank + _TOE[1] * foot)], axis=1)
    r = np.concatenate([_HAND_RADIUS * cr[:, [11, 13]], _FOOT_RADIUS * cr[:, [4, 2]]], axis=1)
    return a, b, r
