"""Joint sets and their conversion to the canonical H36M-17 skeleton.

Every joint set is a :class:`JointSet` with joint names, a parent per joint (a tree used for
bones and drawing) and left/right pairs for flipping (derived from the ``left_``/``right_``
name prefixes). Conversion to H36M-17 is a fixed linear map ``W`` of shape ``(17, J)``
(rows sum to one): ``kp_h36m = W @ kp``, and confidences are combined with the same weights,
so a joint defined as the mean of two source joints gets the mean of their confidences.

The canonical H36M-17 order is MMPose's::

    0 pelvis, 1-3 right hip/knee/foot, 4-6 left hip/knee/foot, 7 spine, 8 thorax,
    9 neck/nose, 10 head, 11-13 left shoulder/elbow/wrist, 14-16 right shoulder/elbow/wrist
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from auglift.errors import DataError

__all__ = [
    "H36M17",
    "JOINT_SETS",
    "JointSet",
    "conversion_matrix",
    "get_joint_set",
    "to_h36m",
]


@dataclass(frozen=True)
class JointSet:
    """A named joint set: ``joints[i]`` is the name of joint ``i``, ``parents[i]`` its parent (-1: root)."""

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]
    description: str = ""
    # H36M-17 definition: for each H36M joint, the source joints averaged to form it.
    h36m: tuple[tuple[str, ...], ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if len(self.joints) != len(self.parents):
            raise ValueError(f"{self.name}: {len(self.joints)} joints but {len(self.parents)} parents")
        if len(set(self.joints)) != len(self.joints):
            raise ValueError(f"{self.name}: duplicate joint names")
        for i, p in enumerate(self.parents):
            if not -1 <= p < len(self.joints) or p == i:
                raise ValueError(f"{self.name}: bad parent {p} for joint {i}")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, name: str) -> int:
        """Index of the joint called ``name`` (KeyError with the valid names otherwise)."""
        try:
            return self.joints.index(name)
        except ValueError:
            raise KeyError(f"{self.name} has no joint {name!r}; joints: {', '.join(self.joints)}") from None

    @cached_property
    def flip_permutation(self) -> np.ndarray:
        """``(J,)`` int64: index of each joint's mirror (``left_x`` <-> ``right_x``; centre joints stay)."""
        perm = np.arange(self.num_joints)
        for i, n in enumerate(self.joints):
            for a, b in (("left_", "right_"), ("right_", "left_")):
                if n.startswith(a):
                    perm[i] = self.index(b + n[len(a):])
        return perm

    @property
    def flip_pairs(self) -> list[tuple[int, int]]:
        """Left/right pairs ``(left_index, right_index)``."""
        return [(i, int(j)) for i, j in enumerate(self.flip_permutation) if self.joints[i].startswith("left_")]

    @property
    def left(self) -> list[int]:
        return [i for i, n in enumerate(self.joints) if n.startswith("left_")]

    @property
    def right(self) -> list[int]:
        return [i for i, n in enumerate(self.joints) if n.startswith("right_")]

    @property
    def bones(self) -> list[tuple[int, int]]:
        """``(child, parent)`` pairs of the tree."""
        return [(i, p) for i, p in enumerate(self.parents) if p >= 0]


def _parents(joints: tuple[str, ...], edges: dict[str, str | None]) -> tuple[int, ...]:
    return tuple(-1 if edges[j] is None else joints.index(edges[j]) for j in joints)  # type: ignore[arg-type]


_H36M_NAMES = (
    "pelvis", "right_hip", "right_knee", "right_foot", "left_hip", "left_knee", "left_foot",
    "spine", "thorax", "neck_nose", "head",
    "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
)
_IDENTITY_H36M = tuple((n,) for n in _H36M_NAMES)
H36M17 = JointSet(
    "h36m17",
    _H36M_NAMES,
    (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    "Human3.6M 17 joints in MMPose/VideoPose3D order (the canonical set)",
    _IDENTITY_H36M,
)

_H32_NAMES = (
    "pelvis", "right_hip", "right_knee", "right_foot", "right_toe", "right_toe_end",
    "left_hip", "left_knee", "left_foot", "left_toe", "left_toe_end",
    "spine_low", "spine", "thorax", "neck_nose", "head",
    "left_shoulder_anchor", "left_shoulder", "left_elbow", "left_wrist", "left_thumb",
    "left_thumb_end", "left_hand", "left_hand_end",
    "right_shoulder_anchor", "right_shoulder", "right_elbow", "right_wrist", "right_thumb",
    "right_thumb_end", "right_hand", "right_hand_end",
)
H36M32 = JointSet(
    "h36m32",
    _H32_NAMES,
    (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12, 16, 17, 18, 19, 20, 19, 22,
     12, 24, 25, 26, 27, 28, 27, 30),
    "Human3.6M full 32-joint motion-capture skeleton (VideoPose3D data_3d_h36m.npz)",
    _IDENTITY_H36M,
)

_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
_COCO_EDGES: dict[str, str | None] = {
    "nose": None, "left_eye": "nose", "right_eye": "nose", "left_ear": "left_eye",
    "right_ear": "right_eye", "left_shoulder": "nose", "right_shoulder": "nose",
    "left_elbow": "left_shoulder", "right_elbow": "right_shoulder", "left_wrist": "left_elbow",
    "right_wrist": "right_elbow", "left_hip": "left_shoulder", "right_hip": "right_shoulder",
    "left_knee": "left_hip", "right_knee": "right_hip", "left_ankle": "left_knee",
    "right_ankle": "right_knee",
}
# The COCO rule (METHOD.md): pelvis = mean hips, thorax = mean shoulders,
# spine = mean(pelvis, thorax), head = mean eyes, neck/nose = nose.
_COCO_TO_H36M: tuple[tuple[str, ...], ...] = (
    ("left_hip", "right_hip"), ("right_hip",), ("right_knee",), ("right_ankle",),
    ("left_hip",), ("left_knee",), ("left_ankle",),
    ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
    ("left_shoulder", "right_shoulder"), ("nose",), ("left_eye", "right_eye"),
    ("left_shoulder",), ("left_elbow",), ("left_wrist",),
    ("right_shoulder",), ("right_elbow",), ("right_wrist",),
)
COCO17 = JointSet("coco17", _COCO_NAMES, _parents(_COCO_NAMES, _COCO_EDGES),
                  "COCO-17 keypoints (RTMPose, ViTPose, HRNet, ...)", _COCO_TO_H36M)

_HALPE_NAMES = (*_COCO_NAMES, "head_top", "neck", "hip", "left_big_toe", "right_big_toe",
                "left_small_toe", "right_small_toe", "left_heel", "right_heel")
_HALPE_EDGES = {**_COCO_EDGES, "head_top": "neck", "neck": "hip", "hip": None, "nose": "neck",
                "left_shoulder": "neck", "right_shoulder": "neck", "left_hip": "hip",
                "right_hip": "hip", "left_big_toe": "left_ankle", "right_big_toe": "right_ankle",
                "left_small_toe": "left_ankle", "right_small_toe": "right_ankle",
                "left_heel": "left_ankle", "right_heel": "right_ankle"}
HALPE26 = JointSet("halpe26", _HALPE_NAMES, _parents(_HALPE_NAMES, _HALPE_EDGES),
                   "Halpe-26 (AlphaPose, RTMPose body8-halpe26); converted with the COCO rule",
                   _COCO_TO_H36M)

_MP_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "left_mouth", "right_mouth",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
_MP_EDGES: dict[str, str | None] = {
    "nose": None, "left_eye_inner": "nose", "left_eye": "left_eye_inner",
    "left_eye_outer": "left_eye", "right_eye_inner": "nose", "right_eye": "right_eye_inner",
    "right_eye_outer": "right_eye", "left_ear": "left_eye_outer", "right_ear": "right_eye_outer",
    "left_mouth": "nose", "right_mouth": "nose", "left_shoulder": "nose",
    "right_shoulder": "nose", "left_elbow": "left_shoulder", "right_elbow": "right_shoulder",
    "left_wrist": "left_elbow", "right_wrist": "right_elbow", "left_pinky": "left_wrist",
    "right_pinky": "right_wrist", "left_index": "left_wrist", "right_index": "right_wrist",
    "left_thumb": "left_wrist", "right_thumb": "right_wrist", "left_hip": "left_shoulder",
    "right_hip": "right_shoulder", "left_knee": "left_hip", "right_knee": "right_hip",
    "left_ankle": "left_knee", "right_ankle": "right_knee", "left_heel": "left_ankle",
    "right_heel": "right_ankle", "left_foot_index": "left_ankle",
    "right_foot_index": "right_ankle",
}
MEDIAPIPE33 = JointSet("mediapipe33", _MP_NAMES, _parents(_MP_NAMES, _MP_EDGES),
                       "MediaPipe Pose (BlazePose) 33 landmarks; converted with the COCO rule",
                       _COCO_TO_H36M)

_OP18_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
    "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
)
_OP18_EDGES: dict[str, str | None] = {
    "neck": None, "nose": "neck", "right_shoulder": "neck", "right_elbow": "right_shoulder",
    "right_wrist": "right_elbow", "left_shoulder": "neck", "left_elbow": "left_shoulder",
    "left_wrist": "left_elbow", "right_hip": "neck", "right_knee": "right_hip",
    "right_ankle": "right_knee", "left_hip": "neck", "left_knee": "left_hip",
    "left_ankle": "left_knee", "right_eye": "nose", "left_eye": "nose",
    "right_ear": "right_eye", "left_ear": "left_eye",
}
OPENPOSE18 = JointSet("openpose18", _OP18_NAMES, _parents(_OP18_NAMES, _OP18_EDGES),
                      "OpenPose COCO-18 (3DPW poses2d); converted with the COCO rule",
                      _COCO_TO_H36M)

_SMPL_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)
SMPL24 = JointSet(
    "smpl24",
    _SMPL_NAMES,
    (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21),
    "SMPL 24 kinematic joints (3DPW jointPositions). Without the mesh regressor the H36M "
    "joints are approximated: spine = spine2, thorax = neck, neck/nose = mean(neck, head), "
    "head = head",
    (
        ("pelvis",), ("right_hip",), ("right_knee",), ("right_ankle",),
        ("left_hip",), ("left_knee",), ("left_ankle",), ("spine2",), ("neck",),
        ("neck", "head"), ("head",),
        ("left_shoulder",), ("left_elbow",), ("left_wrist",),
        ("right_shoulder",), ("right_elbow",), ("right_wrist",),
    ),
)

_HP28_NAMES = (
    "spine3", "spine4", "spine2", "spine", "pelvis", "neck", "head", "head_top",
    "left_clavicle", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_clavicle", "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot", "left_toe",
    "right_hip", "right_knee", "right_ankle", "right_foot", "right_toe",
)
_HP28_EDGES: dict[str, str | None] = {
    "pelvis": None, "spine": "pelvis", "spine2": "spine", "spine3": "spine2",
    "spine4": "spine3", "neck": "spine4", "head": "neck", "head_top": "head",
    "left_clavicle": "spine4", "left_shoulder": "left_clavicle", "left_elbow": "left_shoulder",
    "left_wrist": "left_elbow", "left_hand": "left_wrist", "right_clavicle": "spine4",
    "right_shoulder": "right_clavicle", "right_elbow": "right_shoulder",
    "right_wrist": "right_elbow", "right_hand": "right_wrist", "left_hip": "pelvis",
    "left_knee": "left_hip", "left_ankle": "left_knee", "left_foot": "left_ankle",
    "left_toe": "left_foot", "right_hip": "pelvis", "right_knee": "right_hip",
    "right_ankle": "right_knee", "right_foot": "right_ankle", "right_toe": "right_foot",
}
_HP_TO_H36M: tuple[tuple[str, ...], ...] = (
    ("pelvis",), ("right_hip",), ("right_knee",), ("right_ankle",),
    ("left_hip",), ("left_knee",), ("left_ankle",), ("spine",), ("neck",), ("head",),
    ("head_top",), ("left_shoulder",), ("left_elbow",), ("left_wrist",),
    ("right_shoulder",), ("right_elbow",), ("right_wrist",),
)
MPI_INF_3DHP28 = JointSet("mpi_inf_3dhp28", _HP28_NAMES, _parents(_HP28_NAMES, _HP28_EDGES),
                          "MPI-INF-3DHP 28 joints (training annot.mat)", _HP_TO_H36M)

_HP17_NAMES = (
    "head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
    "left_knee", "left_ankle", "pelvis", "spine", "head",
)
MPI_INF_3DHP17 = JointSet(
    "mpi_inf_3dhp17", _HP17_NAMES, _parents(_HP17_NAMES, _HP28_EDGES | {"head": "neck", "neck": "spine",
                                                                    "right_shoulder": "neck",
                                                                    "left_shoulder": "neck"}),
    "MPI-INF-3DHP 17 joints (test set annot_data.mat)", _HP_TO_H36M,
)
# The 17 test-set joints as indices into the 28 training joints.
MPI_INF_3DHP_28_TO_17 = tuple(MPI_INF_3DHP28.index(n) for n in _HP17_NAMES)

_FIT3D_EXTRA = (
    "right_foot_a", "right_foot_b", "left_foot_a", "left_foot_b",
    "left_hand_a", "left_hand_b", "right_hand_a", "right_hand_b",
)
FIT3D25 = JointSet(
    "fit3d25",
    (*H36M17.joints, *_FIT3D_EXTRA),
    (*H36M17.parents, 3, 3, 6, 6, 13, 13, 16, 16),
    "Fit3D/CHI3D/HumanSC3D joints3d_25: the H36M-17 joints in H36M order followed by two "
    "extra points per foot and per hand (IMAR's plot_over_image limbs: 17,18 on joint 3, "
    "19,20 on joint 6, 21,22 on joint 13, 23,24 on joint 16)",
    _IDENTITY_H36M,
)

JOINT_SETS: dict[str, JointSet] = {
    js.name: js
    for js in (H36M17, H36M32, COCO17, HALPE26, MEDIAPIPE33, OPENPOSE18, SMPL24,
               MPI_INF_3DHP17, MPI_INF_3DHP28, FIT3D25)
}


def get_joint_set(name: str | JointSet) -> JointSet:
    """Look up a joint set by name (``h36m17``, ``coco17``, ``halpe26``, ...)."""
    if isinstance(name, JointSet):
        return name
    try:
        return JOINT_SETS[name]
    except KeyError:
        raise KeyError(f"unknown joint set {name!r}; known: {', '.join(JOINT_SETS)}") from None


def conversion_matrix(src: str | JointSet) -> np.ndarray:
    """``(17, J)`` float64 matrix mapping joint set ``src`` to H36M-17 (rows sum to 1)."""
    js = get_joint_set(src)
    if js.h36m is None:  # pragma: no cover - every registered set defines it
        raise KeyError(f"{js.name} has no H36M-17 conversion")
    W = np.zeros((H36M17.num_joints, js.num_joints))
    for k, names in enumerate(js.h36m):
        for n in names:
            W[k, js.index(n)] += 1.0 / len(names)
    return W


def to_h36m(
    kp: np.ndarray, src: str | JointSet, conf: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert keypoints of joint set ``src`` to H36M-17.

    Args:
        kp: ``(..., J, D)`` coordinates (pixels or metres; any D).
        src: source joint set (name or :class:`JointSet`).
        conf: optional ``(..., J)`` confidences, combined with the same weights.

    Returns:
        ``(kp17 (..., 17, D), conf17 (..., 17) or None)`` in the input's float dtype.
    """
    js = get_joint_set(src)
    kp = np.asarray(kp)
    if kp.ndim < 2 or kp.shape[-2] != js.num_joints:
        raise DataError(None, "keypoints", f"expected (..., {js.num_joints}, D) for {js.name}, got {kp.shape}")
    dtype = kp.dtype if np.issubdtype(kp.dtype, np.floating) else np.float64
    W = conversion_matrix(js).astype(dtype)
    out = np.matmul(W, kp.astype(dtype, copy=False))  # (17, J) @ (..., J, D): one BLAS call
    c17 = None
    if conf is not None:
        conf = np.asarray(conf)
        if conf.shape != kp.shape[:-1]:
            raise DataError(None, "conf", f"expected shape {kp.shape[:-1]}, got {conf.shape}")
        cd = conf.dtype if np.issubdtype(conf.dtype, np.floating) else np.float64
        c17 = conf.astype(cd, copy=False) @ W.T.astype(cd)
    return out, c17
