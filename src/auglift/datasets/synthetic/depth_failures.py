"""Body-level failures of the monocular-depth model: thin limbs lost, arms or legs in the wrong order.

A monocular depth model sees a person as image regions. Two of its typical failures act on whole
body parts rather than on pixels, so they are applied to the body's capsules before the z-buffer
is rendered (steps 1-2 of :class:`~auglift.datasets.synthetic.domains.DepthErrorSpec`):

* **thin limbs**: a forearm + hand (or a shank + foot) is merged into the torso (moved along the
  camera rays to the trunk's depth, so its outline in the image is unchanged) or into whatever
  lies behind it (removed: the map shows the torso, the other limb or the background there);
* **order swaps**: where the two arms (or legs) overlap in the image, the model may put the far
  one in front: each is moved along the camera rays to the other's depth.

Failures come in events of ``event_seconds``: a sequence's time line is cut into blocks (with a
random phase per sequence) and one set of uniforms is drawn per block from
``np.random.default_rng([seed, block, 0xFA11])``; a frame's failures depend only on its
sequence, its time and its own geometry, never on the batch it is rendered in. Probabilities
scale with the sequence's severity (0: none).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from auglift.datasets.synthetic.bodies import CAPSULES, EXTREMITIES
from auglift.datasets.synthetic.depth_error import SequenceError

__all__ = ["LIMB_UNITS", "SWAP_PAIRS", "BodyFailures", "apply_body_failures", "draw_body_failures", "view_of"]

_PRIM = {name: i for i, (name, *_rest) in enumerate(CAPSULES)} | {
    name: len(CAPSULES) + 1 + i for i, name in enumerate(EXTREMITIES)}

# Thin-limb units (left arm, right arm, left leg, right leg): primitives, joints, capsule giving the width.
LIMB_UNITS: tuple[tuple[tuple[int, ...], tuple[int, int], int], ...] = (
    ((_PRIM["left_forearm"], _PRIM["left_hand"]), (12, 13), _PRIM["left_forearm"]),
    ((_PRIM["right_forearm"], _PRIM["right_hand"]), (15, 16), _PRIM["right_forearm"]),
    ((_PRIM["left_shank"], _PRIM["left_foot"]), (5, 6), _PRIM["left_shank"]),
    ((_PRIM["right_shank"], _PRIM["right_foot"]), (2, 3), _PRIM["right_shank"]),
)
# Order-swap pairs (arms, legs): the primitives of each side and the joints drawn in the overlap test.
SWAP_PAIRS: tuple[tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...] = (
    ((_PRIM["left_upper_arm"], _PRIM["left_forearm"], _PRIM["left_hand"]),
     (_PRIM["right_upper_arm"], _PRIM["right_forearm"], _PRIM["right_hand"]), (11, 12, 13), (14, 15, 16)),
    ((_PRIM["left_thigh"], _PRIM["left_shank"], _PRIM["left_foot"]),
     (_PRIM["right_thigh"], _PRIM["right_shank"], _PRIM["right_foot"]), (4, 5, 6), (1, 2, 3)),
)
INTACT, TORSO, BEHIND = 0, 1, 2
_MAX_THIN_FACTOR = 3.0  # a limb much thinner than the reference width fails at most 3x as often
_COS_45 = float(np.cos(np.pi / 4))


@dataclass(frozen=True)
class BodyFailures:
    """Failures of ``B`` frames: ``limb (B, 4)`` int8 per :data:`LIMB_UNITS` (0 intact, 1 merged into
    the torso, 2 merged into what lies behind); ``swap (B, 2)`` bool per :data:`SWAP_PAIRS`;
    and the per-frame probabilities they were drawn with, ``limb_p (B, 4)``, ``swap_p (B, 2)``."""

    limb: np.ndarray
    swap: np.ndarray
    limb_p: np.ndarray
    swap_p: np.ndarray


def view_of(kp3d: np.ndarray) -> np.ndarray:
    """``(B,)`` int: 0 front, 1 side, 2 back view of camera-frame joints ``(B, 17, 3)``.

    The trunk faces ``left x up`` (hip line, pelvis-to-thorax); the view is front when that
    direction is within 45 deg of the direction to the camera, back beyond 135 deg.
    """
    kp = np.asarray(kp3d, dtype=np.float64)
    facing = np.cross(kp[:, 4] - kp[:, 1], kp[:, 8] - kp[:, 0])
    to_cam = -kp[:, 0]
    c = (facing * to_cam).sum(-1) / np.maximum(np.linalg.norm(facing, axis=-1) * np.linalg.norm(to_cam, axis=-1),
                                               1e-12)
    return np.where(c > _COS_45, 0, np.where(c < -_COS_45, 2, 1))


def _overlap(kp: np.ndarray, ja: tuple[int, ...], jb: tuple[int, ...], radius: np.ndarray) -> np.ndarray:
    """``(B,)`` bool: the two joint chains come closer in the image than ``radius (B,)`` (normalised coords).

    Each chain is sampled at its joints and the midpoints between them.
    """
    def samples(j: tuple[int, ...]) -> np.ndarray:
        p = kp[:, list(j)]
        p = np.concatenate([p, 0.5 * (p[:, 1:] + p[:, :-1])], axis=1)
        return p[..., :2] / p[..., 2:3]

    d = np.linalg.norm(samples(ja)[:, :, None] - samples(jb)[:, None], axis=-1)
    return d.min(axis=(1, 2)) < radius


@functools.lru_cache(maxsize=4096)
def _phase(seed: int) -> float:
    return float(np.random.default_rng([seed, 0xB10C]).random())


@functools.lru_cache(maxsize=8192)
def _event_uniforms(seed: int, block: int) -> np.ndarray:
    """``(10,)`` uniforms of one event block: limb failure (4), torso-or-behind (4), swap (2)."""
    return np.random.default_rng([seed, block, 0xFA11]).random(10)


def draw_body_failures(kp3d: np.ndarray, capsule_radii: np.ndarray, errors: list[SequenceError], t: np.ndarray,
                       focal: np.ndarray, long_side: float) -> BodyFailures:
    """Which body parts fail in each of ``B`` frames.

    Args:
        kp3d: ``(B, 17, 3)`` camera-frame joints, metres.
        capsule_radii: ``(B, 15)`` metres.
        errors: per frame, its sequence's :class:`SequenceError` (severity and calibration).
        t: ``(B,)`` seconds since the sequence start.
        focal: ``(B,)`` focal length in pixels of an image (or map) whose long side is ``long_side`` px.
    """
    kp = np.asarray(kp3d, dtype=np.float64)
    cr = np.asarray(capsule_radii, dtype=np.float64)
    B = len(kp)
    sev = np.array([e.severity for e in errors])
    u = np.empty((B, 10))
    for i, e in enumerate(errors):
        u[i] = _event_uniforms(e.seed, int(np.floor(t[i] / e.spec.event_seconds + _phase(e.seed))))
    base = np.array([[e.spec.limb_fail_p[0]] * 2 + [e.spec.limb_fail_p[1]] * 2 for e in errors]).reshape(B, 4)
    ref_width = np.array([e.spec.limb_fail_width for e in errors])
    limb_p = np.empty((B, 4))
    for k, (_prims, joints, cap) in enumerate(LIMB_UNITS):
        width = 2.0 * cr[:, cap] * focal / kp[:, list(joints), 2].mean(axis=1) / long_side
        limb_p[:, k] = np.minimum(1.0, sev * base[:, k] * np.minimum(ref_width / width, _MAX_THIN_FACTOR))
    torso_share = np.array([e.spec.limb_torso_share for e in errors])
    kind = np.where(u[:, 4:8] < torso_share[:, None], TORSO, BEHIND)
    kind[:, 2:] = BEHIND  # legs have no torso in front to merge into
    limb = np.where(u[:, :4] < limb_p, kind, INTACT).astype(np.int8)
    view = view_of(kp)
    factor = np.array([[1.0, *e.spec.swap_view_factor] for e in errors])[np.arange(B), view]
    p_pair = np.minimum(1.0, sev * np.array([e.spec.order_swap_p for e in errors]) * factor)
    swap_p = np.zeros((B, 2))
    for j, (prims_a, prims_b, ja, jb) in enumerate(SWAP_PAIRS):
        reach = (cr[:, prims_a[0]] + cr[:, prims_b[0]]) / kp[:, 0, 2]
        swap_p[:, j] = np.where(_overlap(kp, ja, jb, reach), p_pair, 0.0)
    return BodyFailures(limb, u[:, 8:10] < swap_p, limb_p, swap_p)


def _centre_depth(a: np.ndarray, b: np.ndarray, prims: tuple[int, ...], rows: np.ndarray) -> np.ndarray:
    idx = list(prims)
    return 0.5 * (a[rows][:, idx, 2] + b[rows][:, idx, 2]).mean(axis=1)


def _slide(prims3: tuple[np.ndarray, np.ndarray, np.ndarray], rows: np.ndarray, idx: tuple[int, ...],
           factor: np.ndarray) -> None:
    """Move primitives along their camera rays by ``factor`` (B',) in place: the image outline stays."""
    a, b, r = prims3
    f = factor[:, None]
    sel = (rows[:, None], np.array(idx)[None, :])
    a[sel] *= f[..., None]
    b[sel] *= f[..., None]
    r[sel] *= f


def apply_body_failures(prims: tuple[np.ndarray, np.ndarray, np.ndarray], kp3d: np.ndarray,
                        failures: BodyFailures) -> None:
    """Apply :func:`draw_body_failures`'s draw to the primitives ``(a, b, r)`` of ``render.body_primitives``
    in place: swaps first, then thin limbs (a lost limb wins over a swapped one)."""
    a, b, r = prims
    kp = np.asarray(kp3d, dtype=np.float64)
    for j, (prims_a, prims_b, _ja, _jb) in enumerate(SWAP_PAIRS):
        rows = np.flatnonzero(failures.swap[:, j])
        if len(rows):
            za, zb = _centre_depth(a, b, prims_a, rows), _centre_depth(a, b, prims_b, rows)
            _slide(prims, rows, prims_a, zb / za)
            _slide(prims, rows, prims_b, za / zb)
    trunk = kp[:, [0, 7, 8], 2].mean(axis=1)
    for k, (unit, _joints, _cap) in enumerate(LIMB_UNITS):
        rows = np.flatnonzero(failures.limb[:, k] == TORSO)
        if len(rows):
            _slide(prims, rows, unit, trunk[rows] / _centre_depth(a, b, unit, rows))
        rows = np.flatnonzero(failures.limb[:, k] == BEHIND)
        r[rows[:, None], np.array(unit)[None, :]] = 0.0
