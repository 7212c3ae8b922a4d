"""Motion of the synthetic world: procedural clips and the hook for external motion sources.

A **motion source** yields :class:`MotionClip` objects: world-frame H36M-17 joint trajectories
``(T, 17, 3)`` in metres (z up, floor at ``z = 0``) at a given fps, with a subject id, an
action label and optionally the subject's :class:`~auglift.datasets.synthetic.bodies.Body`
and static props. :func:`procedural_clip` is the built-in source (joint-angle activity
generators + forward kinematics); real motion capture (BVH/ASF) converted to H36M-17 plugs
in next to it: pass its clips to :func:`auglift.datasets.synthetic.world.film` to render
them with a domain's cameras, depth-error model and detection noise.

The procedural pipeline for one clip:

1. the activity generators give joint angles (``activities.ACTIVITIES``); a clip of several
   activities generates each for its segment and cross-fades them at the hand-overs;
2. the subject's posture offsets and smooth motion noise are added, then angles are clipped
   to :data:`~auglift.datasets.synthetic.kinematics.LIMITS` (knees/elbows never bend back);
3. forward kinematics with the subject's fixed bone lengths;
4. floor poses level the root pitch so both supports (hands/pelvis and feet) touch the floor;
5. stance-foot locking: the root moves so that the lower foot does not slide (walking speed
   emerges from the leg motion, no foot skating);
6. floor contact: each frame is lifted so that its lowest body surface touches ``z = 0``;
   jumps add a ballistic flight height on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from auglift.datasets.synthetic.activities import ACTIVITIES, ActivityContext, Style, smooth_noise
from auglift.datasets.synthetic.bodies import Body, head_centre
from auglift.datasets.synthetic.kinematics import DOF, NUM_DOF, clip_to_limits, forward_kinematics

__all__ = ["MOTION_NOISE_DEG", "MotionClip", "floor_contact_offset", "heading_of", "procedural_clip"]

# Standard deviation (degrees) of the smooth motion noise per DOF (scaled by the subject's style).
MOTION_NOISE_DEG = np.array([
    2.0, 1.2, 1.0,         # root yaw, pitch, roll
    2.0, 1.5, 2.0,         # spine
    1.5, 1.5, 2.0,         # chest
    4.0, 3.0, 6.0,         # neck
    5.0, 4.0, 6.0, 5.0,    # left shoulder, elbow
    5.0, 4.0, 6.0, 5.0,    # right shoulder, elbow
    2.5, 1.5, 3.0, 3.0,    # left hip, knee
    2.5, 1.5, 3.0, 3.0,    # right hip, knee
])


@dataclass
class MotionClip:
    """World-frame motion of one subject: the unit a motion source produces.

    Attributes:
        joints: ``(T, 17, 3)`` float64 H36M-17 joints, metres, world frame (z up, floor ``z = 0``).
        fps: frames per second.
        subject: subject id (decides the train/test split through the domain).
        action: action label.
        body: the subject's volume model; ``None``: fitted to the joints (``body_from_joints``).
        props: ``(K, 7)`` float64 static world capsules ``[x1, y1, z1, x2, y2, z2, radius]``
            (e.g. a bench), rendered and occluding like the body; ``None``: no props.
        airborne: ``(T,)`` bool frames in flight (jumps); ``None``: unknown.
        angles: ``(T, NUM_DOF)`` radians for procedural clips (``None`` for external motion).
    """

    joints: np.ndarray
    fps: float
    subject: str
    action: str
    body: Body | None = None
    props: np.ndarray | None = None
    airborne: np.ndarray | None = None
    angles: np.ndarray | None = None

    def __post_init__(self) -> None:
        j = np.asarray(self.joints, dtype=np.float64)
        if j.ndim != 3 or j.shape[1:] != (17, 3):
            raise ValueError(f"MotionClip.joints: expected (T, 17, 3) metres, got {j.shape}")
        if not np.isfinite(j).all():
            raise ValueError("MotionClip.joints: expected finite values")
        self.joints = j

    @property
    def frames(self) -> int:
        return int(self.joints.shape[0])


def heading_of(joints: np.ndarray) -> np.ndarray:
    """Facing direction (yaw, radians) ``(T,)`` of world joints ``(T, 17, 3)``: the normal of the hip line."""
    left = joints[:, 4, :2] - joints[:, 1, :2]
    return np.arctan2(-left[:, 0], left[:, 1])  # forward = left x up


def floor_contact_offset(joints: np.ndarray, body: Body) -> np.ndarray:
    """Per-frame height ``(T,)`` to add so the lowest body surface (capsules, head, ankles) touches ``z = 0``."""
    low = (joints[..., 2] - body.contact_radii).min(axis=-1)
    head = head_centre(joints)[..., 2] - body.head_radius
    return -np.minimum(low, head)


def _level(angles: np.ndarray, body: Body, groups: tuple[tuple[int, ...], tuple[int, ...]]) -> np.ndarray:
    """Adjust root pitch so the lowest surfaces of the two joint groups are at equal height."""
    a = angles.copy()
    rows = np.arange(len(a))
    for _ in range(3):
        j = forward_kinematics(a, body)
        (pf, hf), (pb, hb) = (_lowest(j, rows, np.array(g), body) for g in groups)
        fwd = np.stack([np.cos(a[:, DOF["yaw"]]), np.sin(a[:, DOF["yaw"]])], axis=-1)
        dist = ((pf[:, :2] - pb[:, :2]) * fwd).sum(-1)
        a[:, DOF["pitch"]] += np.arctan((hf - hb) / np.where(np.abs(dist) < 1e-3, 1e-3, dist))
    return a


def _lowest(j: np.ndarray, rows: np.ndarray, group: np.ndarray, body: Body) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the joint of ``group`` with the lowest surface: its position ``(T, 3)``, surface height ``(T,)``."""
    low = group[np.argmin(j[:, group, 2] - body.contact_radii[group], axis=1)]
    return j[rows, low], j[rows, low, 2] - body.contact_radii[low]


def _stance_weights(joints: np.ndarray) -> np.ndarray:
    """``(T, 2)`` weights of the (right, left) foot: the lower foot carries the body (soft)."""
    dz = joints[:, 3, 2] - joints[:, 6, 2]
    w_right = 1.0 / (1.0 + np.exp(np.clip(dz / 0.012, -50, 50)))
    return np.stack([w_right, 1.0 - w_right], axis=1)


def _foot_lock(joints: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Root xy ``(T, 2)`` that keeps the stance foot (weights ``w`` (T, 2): right, left) still."""
    feet = joints[:, [3, 6]]  # relative to the root
    dfeet = np.diff(feet[:, :, :2], axis=0)  # (T-1, 2, 2)
    wm = 0.5 * (w[1:] + w[:-1])
    v = -(wm[..., None] * dfeet).sum(axis=1)
    return np.concatenate([np.zeros((1, 2)), np.cumsum(v, axis=0)])


@dataclass
class _Composed:
    """Activity segments blended into one clip (see :func:`_compose`): raw angles ``(T, NUM_DOF)``,
    flight ``(T,)``, the gait stance mixture ``(T, 2)`` with its weight ``gait (T,)``, the weight
    of floor poses whose pitch is free of noise ``free (T,)``, leveling groups with their weights,
    the seated frames (single ``sit`` segment only) and the segment lengths."""

    angles: np.ndarray
    flight: np.ndarray
    stance: np.ndarray
    gait: np.ndarray
    free: np.ndarray
    levels: list[tuple[tuple[tuple[int, ...], tuple[int, ...]], np.ndarray]]
    seated: np.ndarray | None
    lengths: list[int]


def _segment_lengths(frames: int, count: int, overlap: int, rng: np.random.Generator) -> list[int]:
    """Split ``frames`` into ``count`` segments of at least ``overlap`` frames (Dirichlet shares)."""
    if count == 1:
        return [frames]
    share = rng.dirichlet(np.full(count, 3.0))
    n = np.maximum(overlap, np.round(share * frames).astype(np.int64))
    n[-1] = frames - n[:-1].sum()
    while n[-1] < overlap:  # give the last segment frames from the longest others
        k = int(np.argmax(n[:-1]))
        n[k] -= overlap - n[-1]
        n[-1] = frames - n[:-1].sum()
    return n.tolist()


def _ramps(lengths: list[int], overlap: int, frames: int) -> tuple[list[int], np.ndarray]:
    """Segment starts and their blend weights ``(S, T)`` (smoothstep over ``overlap`` frames at each boundary)."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    t = np.arange(frames)
    w = np.zeros((len(lengths), frames))
    for i, s in enumerate(starts.tolist()):
        up = np.clip((t - s) / max(overlap, 1), 0.0, 1.0) if i else np.ones(frames)
        nxt = starts[i + 1] if i + 1 < len(starts) else frames + overlap
        down = 1.0 - np.clip((t - nxt) / max(overlap, 1), 0.0, 1.0)
        w[i] = np.where(t < s, 0.0, np.minimum(up * up * (3 - 2 * up), down * down * (3 - 2 * down)))
    return starts.tolist(), w / np.maximum(w.sum(axis=0), 1e-12)


def _compose(acts: list[str], frames: int, ctx: ActivityContext, overlap: int) -> _Composed:
    """Generate each activity for its segment (plus the overlap) and cross-fade them; each segment's
    heading continues where the previous one was at the hand-over."""
    lengths = _segment_lengths(frames, len(acts), overlap, ctx.rng)
    starts, w = _ramps(lengths, overlap, frames)
    comp = _Composed(np.zeros((frames, NUM_DOF)), np.zeros(frames), np.zeros((frames, 2)), np.zeros(frames),
                     np.zeros(frames), [], None, lengths)
    yaw_at = np.zeros(frames)
    for i, (act, s, n) in enumerate(zip(acts, starts, lengths)):
        L = min(n + overlap, frames - s)
        m = ACTIVITIES[act](ActivityContext(L, ctx.fps, ctx.style, ctx.rng, ctx.path, ctx.loop_radius))
        ang = m.angles.copy()
        if i:
            ang[:, DOF["yaw"]] += yaw_at[s] - ang[0, DOF["yaw"]]
        yaw_at[s: s + L] = ang[:, DOF["yaw"]]
        wi = w[i, s: s + L, None]
        comp.angles[s: s + L] += wi * ang
        if m.flight is not None:
            comp.flight[s: s + L] += wi[:, 0] * m.flight
        if m.stance is not None:
            comp.stance[s: s + L] += wi * m.stance
            comp.gait[s: s + L] += wi[:, 0]
        if m.free_pitch:
            comp.free[s: s + L] += wi[:, 0]
        if m.level is not None:
            comp.levels.append((m.level, w[i]))
        if len(acts) == 1:
            comp.seated = m.seated
    return comp


def procedural_clip(activity: str | Sequence[str], body: Body, style: Style, frames: int, fps: float,
                    rng: np.random.Generator, *, path: str = "loop", heading: float = 0.0,
                    start_xy: tuple[float, float] = (0.0, 0.0), loop_radius: tuple[float, float] = (1.0, 1.8),
                    action: str | None = None, blend_seconds: float = 0.9) -> MotionClip:
    """One procedural clip by ``body`` with ``style``: world joints, props, flight flags.

    ``activity``: an activity name, or several performed one after the other in segments of
    random length (at least ``blend_seconds``), cross-faded over ``blend_seconds`` (the
    ``sit`` bench is placed only for a single ``sit``); the action label is then the longest
    segment's activity unless ``action`` is given.
    ``path``: ``"loop"`` (locomotion circles of ``loop_radius`` metres within a capture volume) or
    ``"wander"``; ``heading``: initial yaw (radians); ``start_xy``: where the clip's root path is
    centred (loop) or starts (wander), metres.
    """
    acts = [activity] if isinstance(activity, str) else list(activity)
    for a in acts:
        if a not in ACTIVITIES:
            raise KeyError(f"unknown activity {a!r}; known: {', '.join(ACTIVITIES)}")
    ctx = ActivityContext(frames, fps, style, rng, path, loop_radius)
    overlap = max(1, round(blend_seconds * fps))
    if len(acts) > 1 and frames < len(acts) * overlap:
        acts = acts[:1]
    comp = _compose(acts, frames, ctx, overlap)
    angles = _posed(comp, style, frames, fps, rng, heading)
    for groups, weight in comp.levels:
        leveled = _level(angles, body, groups)
        angles[:, DOF["pitch"]] += weight * (leveled[:, DOF["pitch"]] - angles[:, DOF["pitch"]])
    joints = _place(forward_kinematics(angles, body), body, comp, fps)
    if path == "loop":
        lo, hi = joints[:, 0, :2].min(0), joints[:, 0, :2].max(0)
        joints[..., :2] += np.asarray(start_xy) - 0.5 * (lo + hi)
    else:
        joints[..., :2] += np.asarray(start_xy) - joints[0, 0, :2]
    props = None
    if comp.seated is not None and comp.seated.any():
        props = _bench(joints, body, comp.seated)[None]
    label = action or acts[int(np.argmax(comp.lengths))]
    return MotionClip(joints, fps, body.subject, label, body, props, comp.flight > 0, angles)


def _posed(comp: _Composed, style: Style, frames: int, fps: float, rng: np.random.Generator,
           heading: float) -> np.ndarray:
    """Raw angles + the subject's posture + smooth motion noise (none on a floor pose's pitch and
    roll), turned to ``heading`` and clipped to the joint limits."""
    noise = smooth_noise(rng, frames, NUM_DOF, fps * 0.25) + smooth_noise(rng, frames, NUM_DOF, fps * 1.5)
    sd = np.broadcast_to(np.radians(MOTION_NOISE_DEG) * style.noise / np.sqrt(2.0), (frames, NUM_DOF)).copy()
    sd[:, [DOF["pitch"], DOF["roll"]]] *= (1.0 - comp.free)[:, None]
    angles = comp.angles + style.posture + noise * sd
    angles[:, DOF["yaw"]] += heading
    return clip_to_limits(angles)


def _place(rel: np.ndarray, body: Body, comp: _Composed, fps: float) -> np.ndarray:
    """World joints from root-relative ones: stance-foot locking for the root's path, floor contact
    (gait: half the compass-gait bob), jump flight on top."""
    gait = comp.gait[:, None]
    w = comp.stance + (1.0 - gait) * _stance_weights(rel)
    xy = _foot_lock(rel, w)
    z = floor_contact_offset(rel, body)
    if comp.gait.any():
        # the stance foot carries the body. Without modelled feet (heel strike, toe-off) a compass
        # gait bobs about twice as much as a real one, so the bob is halved around its 1 s running
        # mean; nothing ever goes below the floor.
        stance_z = -(w * (rel[:, [3, 6], 2] - body.contact_radii[[3, 6]])).sum(axis=1)
        mean = gaussian_filter1d(stance_z, fps * 0.5, mode="nearest")
        z = z + comp.gait * (np.maximum(z, mean + 0.5 * (stance_z - mean)) - z)
    z = z + comp.flight
    return rel + np.concatenate([xy, z[:, None]], axis=1)[:, None, :]


def _bench(joints: np.ndarray, body: Body, seated: np.ndarray) -> np.ndarray:
    """A padded bench (a horizontal capsule lying on the floor) under the seated pelvis."""
    pel = joints[seated, 0].mean(axis=0)
    yaw = float(np.median(heading_of(joints[seated])))
    fwd = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    lat = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
    top = pel[2] - 0.9 * body.contact_radii[0]
    r = max(top / 2.0, 0.1)
    c = pel - 0.03 * fwd
    c[2] = r
    half = 0.35 * body.scale
    return np.concatenate([c - half * lat, c + half * lat, [r]])
