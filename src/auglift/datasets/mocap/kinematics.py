"""Skeletons, motions and forward kinematics shared by the BVH and ASF/AMC readers.

A motion-capture file becomes a :class:`Motion`: a :class:`Skeleton` (joint names, parents,
rest offsets) plus per-frame *local* joint rotations and translations. Forward kinematics
composes them down the tree::

    R_world[k] = R_world[parent[k]] @ R_local[k]
    p_world[k] = p_world[parent[k]] + R_world[parent[k]] @ t_local[k]

``t_local[k]`` is the joint's rest offset in its parent's frame, or the value of its position
channels where the file animates them. The work is vectorised over frames and over all joints
at the same depth of the tree, so a skeleton of depth D costs D batched matrix products,
whatever the number of frames or joints.

Lengths inside a :class:`Motion` stay in the file's units; ``Motion.unit_scale`` (metres per
file unit) turns them into metres, and :func:`forward_kinematics` returns metres.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from scipy.spatial.transform import Rotation

from auglift.errors import DataError

__all__ = [
    "UNITS",
    "Motion",
    "Skeleton",
    "detect_unit_scale",
    "euler_matrices",
    "forward_kinematics",
    "line_error",
    "parse_floats",
    "resample",
    "slerp_matrices",
]

# Metres per file unit for the length units motion-capture files use. "cmu" is the CMU
# motion-capture database's ASF unit (and of the BVH conversions of it): lengths are written
# as inches * 0.45, so one unit is (1 / 0.45) * 2.54 cm = 0.056444 m (CMU mocap FAQ).
UNITS: dict[str, float] = {
    "m": 1.0,
    "cm": 0.01,
    "mm": 0.001,
    "inch": 0.0254,
    "cmu": 0.0254 / 0.45,
}

# Unit detection: the unit that makes the rest pose's largest extent closest to this (metres),
# accepted only inside DETECT_RANGE. The candidates are >= 2.2x apart, so at most one fits.
TYPICAL_EXTENT_M = 1.7
DETECT_RANGE_M = (1.2, 2.4)


def line_error(path: str | None, line: int, msg: str) -> DataError:
    """A :class:`DataError` ``"<file>: line N: <msg>"`` for the motion-file readers."""
    return DataError(path, f"line {line}", msg)


def parse_floats(parts: Sequence[str], path: str | None, line: int, what: str) -> list[float]:
    """The finite numbers written as ``parts`` on ``line``; a :func:`line_error` naming ``what`` otherwise."""
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise line_error(path, line, f"{what}: expected numbers, got {' '.join(parts)!r}") from None
    if not all(np.isfinite(vals)):
        raise line_error(path, line, f"{what}: expected finite numbers, got {' '.join(parts)!r}")
    return vals


@dataclass(frozen=True)
class Skeleton:
    """A joint tree read from a file.

    Attributes:
        names: ``K`` joint names; end sites are named ``<parent>_end`` (BVH ``End Site``,
            ASF leaf-bone tips).
        parents: ``(K,)`` int64 parent index, ``-1`` for the root; every parent precedes its children.
        offsets: ``(K, 3)`` float64 rest offset of each joint from its parent, in the parent's
            frame, file units.
        end_site: ``(K,)`` bool, the joint is an end site (no channels of its own).
        lines: ``K`` 1-based line numbers where each joint is declared (for error messages).
        path: the file the skeleton was read from (or ``None``).
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    end_site: np.ndarray
    lines: tuple[int, ...]
    path: str | None = None

    def __post_init__(self) -> None:
        k = len(self.names)
        if self.parents.shape != (k,) or self.offsets.shape != (k, 3) or self.end_site.shape != (k,):
            raise ValueError("skeleton arrays disagree on the number of joints")
        if k == 0 or self.parents[0] != -1 or np.any(self.parents[1:] >= np.arange(1, k)) or np.any(
                self.parents[1:] < 0):
            raise ValueError("skeleton parents must form one tree rooted at joint 0, parents before children")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Index of joint ``name`` (KeyError listing the joints otherwise)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint {name!r}; joints: {', '.join(self.names)}") from None

    @cached_property
    def depth(self) -> np.ndarray:
        """``(K,)`` int64 depth of each joint in the tree (root 0)."""
        d = np.zeros(self.num_joints, np.int64)
        for k in range(1, self.num_joints):  # parents precede children: one pass, once per skeleton
            d[k] = d[self.parents[k]] + 1
        return d

    @cached_property
    def levels(self) -> tuple[np.ndarray, ...]:
        """Joint indices grouped by depth: FK processes each group in one batched product."""
        return tuple(np.flatnonzero(self.depth == lv) for lv in range(int(self.depth.max()) + 1))

    def descendants(self, k: int) -> np.ndarray:
        """Indices of joint ``k`` and every joint below it."""
        mask = np.zeros(self.num_joints, bool)
        mask[k] = True
        for j in range(k + 1, self.num_joints):
            mask[j] = mask[self.parents[j]]
        return np.flatnonzero(mask)

    def rest_positions(self) -> np.ndarray:
        """``(K, 3)`` rest-pose joint positions (all rotations identity), file units."""
        pos = np.zeros((self.num_joints, 3))
        for lv in self.levels[1:]:
            pos[lv] = pos[self.parents[lv]] + self.offsets[lv]
        return pos


@dataclass
class Motion:
    """A skeleton animated over ``F`` frames (local transforms, file units).

    Attributes:
        skeleton: the joint tree.
        rotations: ``(F, K, 3, 3)`` float64 local rotation of each joint relative to its parent
            (identity for end sites and joints without rotation channels).
        translations: ``(F, K, 3)`` float64 local translation of each joint in its parent's frame,
            file units (the rest offset unless the file animates the joint's position).
        fps: frames per second.
        unit_scale: metres per file unit.
        kind: ``"bvh"`` or ``"asf"``.
        path: the motion file.
        info: free-form facts about the read (detected unit, angle unit, ...), JSON-friendly.
    """

    skeleton: Skeleton
    rotations: np.ndarray
    translations: np.ndarray
    fps: float
    unit_scale: float
    kind: str
    path: str | None = None
    info: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])

    def positions(self) -> np.ndarray:
        """``(F, K, 3)`` float64 world joint positions in metres (the file's own axes)."""
        return forward_kinematics(self.rotations, self.translations, self.skeleton) * self.unit_scale

    def rest_positions(self) -> np.ndarray:
        """``(K, 3)`` rest-pose positions in metres."""
        return self.skeleton.rest_positions() * self.unit_scale


def forward_kinematics(rotations: np.ndarray, translations: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """World joint positions from local transforms.

    Args:
        rotations: ``(F, K, 3, 3)`` local rotations.
        translations: ``(F, K, 3)`` local translations (any length unit; the output is in the same).
        skeleton: the tree (``parents``, ``levels``).

    Returns:
        ``(F, K, 3)`` float64 world positions.
    """
    R = np.asarray(rotations, dtype=np.float64)
    T = np.asarray(translations, dtype=np.float64)
    F, K = R.shape[:2]
    if R.shape != (F, K, 3, 3) or T.shape != (F, K, 3) or K != skeleton.num_joints:
        raise DataError(skeleton.path, "motion",
                        f"expected rotations (F, {skeleton.num_joints}, 3, 3) and translations (F, "
                        f"{skeleton.num_joints}, 3), got {R.shape} and {T.shape}")
    Rw = np.empty_like(R)
    Pw = np.empty_like(T)
    root = skeleton.levels[0]
    Rw[:, root] = R[:, root]
    Pw[:, root] = T[:, root]
    parents = skeleton.parents
    for lv in skeleton.levels[1:]:
        par = parents[lv]
        Rp = Rw[:, par]                                     # (F, n, 3, 3)
        Pw[:, lv] = Pw[:, par] + np.matmul(Rp, T[:, lv, :, None])[..., 0]
        Rw[:, lv] = np.matmul(Rp, R[:, lv])
    return Pw


def euler_matrices(angles: np.ndarray, seq: str, *, degrees: bool = True) -> np.ndarray:
    """Rotation matrices from Euler angles with scipy.

    Args:
        angles: ``(..., n)`` angles, ``n = len(seq)`` (1 to 3).
        seq: axis sequence in scipy's convention: upper case (``"ZXY"``) = intrinsic, rotations
            about the moving axes, ``R = R_Z @ R_X @ R_Y``; lower case (``"xyz"``) = extrinsic,
            about the fixed axes, applied in the order written, ``R = R_z @ R_y @ R_x``.
        degrees: angles in degrees (else radians).

    Returns:
        ``(..., 3, 3)`` float64.
    """
    a = np.asarray(angles, dtype=np.float64)
    lead = a.shape[:-1]
    if not seq:
        return np.broadcast_to(np.eye(3), (*lead, 3, 3)).copy()
    flat = a.reshape(-1, len(seq))
    if flat.shape[0] == 0:
        return np.zeros((*lead, 3, 3))
    return Rotation.from_euler(seq, flat, degrees=degrees).as_matrix().reshape(*lead, 3, 3)


def slerp_matrices(R0: np.ndarray, R1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Spherical interpolation between rotation matrices, element-wise (shortest arc).

    ``R0``, ``R1``: ``(..., 3, 3)``; ``w``: weights broadcastable to ``R0.shape[:-2]`` (0 gives
    ``R0``, 1 gives ``R1``). ``R(w) = R0 exp(w log(R0^T R1))``: scipy's ``Rotation`` gives the
    rotation vector of the relative rotation (angle in [0, pi], so the arc is the short one) and
    its scaled exponential; the products are batched matmuls.
    """
    lead = np.broadcast_shapes(R0.shape[:-2], R1.shape[:-2])
    a = np.broadcast_to(R0, (*lead, 3, 3)).reshape(-1, 3, 3)
    b = np.broadcast_to(R1, (*lead, 3, 3)).reshape(-1, 3, 3)
    t = np.broadcast_to(np.asarray(w, dtype=np.float64), lead).reshape(-1, 1)
    rel = Rotation.from_matrix(np.swapaxes(a, -1, -2) @ b).as_rotvec()
    return (a @ Rotation.from_rotvec(rel * t).as_matrix()).reshape(*lead, 3, 3)


def resample(motion: Motion, fps: float) -> Motion:
    """Resample a motion to ``fps`` frames per second.

    Output frame ``i`` is at time ``i / fps`` (the first input frame is at 0) and the output
    stops at the last input frame. Local rotations are interpolated by slerp and translations
    linearly, then forward kinematics runs on the result, so bone lengths stay exact (linear
    interpolation of joint positions would shorten bones that turn between frames). An integer
    ratio (120 -> 30 fps) picks every 4th frame exactly.
    """
    if not (np.isfinite(fps) and fps > 0):
        raise DataError(motion.path, "fps", f"expected a positive frame rate, got {fps}")
    if motion.num_frames == 0 or abs(fps - motion.fps) < 1e-9:
        return replace(motion, fps=float(motion.fps))
    duration = (motion.num_frames - 1) / motion.fps
    n_out = int(np.floor(duration * fps + 1e-6)) + 1
    pos = np.arange(n_out) * (motion.fps / fps)           # fractional input frame of each output frame
    i0 = np.minimum(np.floor(pos + 1e-9).astype(np.int64), motion.num_frames - 1)
    w = np.clip(pos - i0, 0.0, 1.0)
    w[w < 1e-9] = 0.0
    i1 = np.minimum(i0 + 1, motion.num_frames - 1)
    R0, R1 = motion.rotations[i0], motion.rotations[i1]
    K = motion.skeleton.num_joints
    wk = np.broadcast_to(w[:, None], (n_out, K))
    interp = wk > 0
    rot = R0.copy()
    if np.any(interp):
        rot[interp] = slerp_matrices(R0[interp], R1[interp], wk[interp])
    tr = motion.translations[i0] * (1.0 - w)[:, None, None] + motion.translations[i1] * w[:, None, None]
    info = dict(motion.info, resampled_from_fps=motion.fps)
    return replace(motion, rotations=rot, translations=tr, fps=float(fps), info=info)


def detect_unit_scale(rest: np.ndarray, path: str | os.PathLike[str] | None, units: str | float = "auto"
                      ) -> tuple[float, str]:
    """Metres per file unit for a skeleton whose rest pose is ``rest (K, 3)`` in file units.

    ``units`` is a name from :data:`UNITS`, a positive number (metres per unit) or ``"auto"``:
    the unit that makes the rest pose's largest extent (height, or arm span of a T-pose)
    closest to 1.7 m, accepted only between 1.2 and 2.4 m. Returns ``(scale, unit name)``.
    """
    if isinstance(units, (int, float)) and not isinstance(units, bool):
        if not (np.isfinite(units) and units > 0):
            raise DataError(path, "units", f"expected a positive number of metres per unit, got {units}")
        return float(units), f"{units} m"
    if units != "auto":
        if units not in UNITS:
            raise DataError(path, "units", f"expected one of auto, {', '.join(UNITS)} or metres per unit; "
                                           f"got {units!r}")
        return UNITS[units], str(units)
    extent = float(np.max(np.ptp(rest, axis=0))) if len(rest) else 0.0
    if not (np.isfinite(extent) and extent > 0):
        raise DataError(path, "units", "cannot detect the length unit: the rest pose has zero size; "
                                       "pass units= (m, cm, mm, inch, cmu)")
    name = min(UNITS, key=lambda n: abs(np.log(extent * UNITS[n] / TYPICAL_EXTENT_M)))
    metres = extent * UNITS[name]
    if not DETECT_RANGE_M[0] <= metres <= DETECT_RANGE_M[1]:
        raise DataError(path, "units", f"cannot detect the length unit: the rest pose spans {extent:g} file "
                                       f"units, which is no human size in m, cm, mm, inch or CMU units; "
                                       f"pass units= (a unit name or metres per unit)")
    return UNITS[name], name
