"""Procedural activity generators: joint-angle trajectories for 17 everyday and exercise activities.

Every generator is ``fn(ctx) -> ActivityMotion`` and is vectorised over frames: periodic
activities (walk, run, stairs, turn) are closed-form functions of a gait phase; the others
are sequences of key poses (degrees, see :mod:`~auglift.datasets.synthetic.kinematics`)
blended with smoothstep easing, with per-repetition variation in depth, tempo and side.
Per-subject style (tempo, amplitude, arm swing, handedness) comes in through ``ctx.style``;
posture offsets, smooth motion noise and joint-limit clipping are applied afterwards by
:mod:`~auglift.datasets.synthetic.motion`, as are root translation (stance-foot locking),
floor contact and jump flight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from auglift.datasets.synthetic.kinematics import DOF, NUM_DOF, pose_vector

__all__ = ["ACTIVITIES", "ActivityContext", "ActivityMotion", "Style", "sample_style", "smooth_noise"]


@dataclass(frozen=True)
class Style:
    """Per-subject movement style.

    ``tempo`` multiplies cycle frequencies, ``amplitude`` joint excursions, ``arm_swing`` the
    gait arm swing; ``side`` is the dominant hand (``"l"``/``"r"``); ``posture`` a ``(NUM_DOF,)``
    radians offset added to every pose (slouch, head carriage, arm carriage); ``noise`` scales
    the smooth motion noise.
    """

    tempo: float
    amplitude: float
    arm_swing: float
    side: str
    posture: np.ndarray
    noise: float


def sample_style(rng: np.random.Generator) -> Style:
    """Draw a subject's style."""
    posture = np.zeros(NUM_DOF)
    for name, mu, sd in (("spine_flex", 2.0, 3.0), ("chest_flex", 1.0, 3.0), ("neck_flex", 3.0, 5.0),
                         ("l_sh_abd", 2.0, 3.0), ("r_sh_abd", 2.0, 3.0), ("l_elbow", 4.0, 4.0),
                         ("r_elbow", 4.0, 4.0), ("l_hip_rot", 4.0, 4.0), ("r_hip_rot", 4.0, 4.0)):
        posture[DOF[name]] = np.radians(rng.normal(mu, sd))
    return Style(
        tempo=float(np.clip(rng.normal(1.0, 0.08), 0.8, 1.2)),
        amplitude=float(np.clip(rng.normal(1.0, 0.1), 0.75, 1.25)),
        arm_swing=float(np.clip(rng.normal(1.0, 0.25), 0.4, 1.6)),
        side="r" if rng.random() < 0.85 else "l",
        posture=posture,
        noise=float(np.clip(rng.normal(1.0, 0.2), 0.6, 1.5)),
    )


@dataclass
class ActivityContext:
    """Inputs of a generator: ``frames`` at ``fps``, the subject ``style``, a ``rng``, ``path`` mode
    (``"loop"``: walk in circles inside a capture volume; ``"wander"``: free paths)."""

    frames: int
    fps: float
    style: Style
    rng: np.random.Generator
    path: str = "loop"
    loop_radius: tuple[float, float] = (1.0, 1.8)

    @property
    def t(self) -> np.ndarray:
        return np.arange(self.frames) / self.fps

    @property
    def duration(self) -> float:
        return self.frames / self.fps


@dataclass
class ActivityMotion:
    """Output of a generator.

    ``angles``: ``(T, NUM_DOF)`` radians (yaw relative to the clip heading);
    ``flight``: ``(T,)`` metres of ballistic height added above floor contact (jumps);
    ``level``: joint groups ``(front, back)`` whose lowest surfaces are brought to equal height
    by adjusting the root pitch (floor poses: hands and feet, pelvis and feet);
    ``seated``: ``(T,)`` bool frames resting on a seat (a bench prop is placed there);
    ``free_pitch``: keep the root pitch free of posture noise (floor poses);
    ``stance``: ``(T, 2)`` weights of the (right, left) foot carrying the body (gait phase), or
    ``None`` to use the lower foot.
    """

    angles: np.ndarray
    flight: np.ndarray
    level: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    seated: np.ndarray | None = None
    free_pitch: bool = False
    stance: np.ndarray | None = None


def smooth_noise(rng: np.random.Generator, n: int, dims: int, sigma_frames: float) -> np.ndarray:
    """``(n, dims)`` Gaussian noise low-pass filtered over time, unit standard deviation."""
    sigma_frames = max(float(sigma_frames), 0.5)
    pad = int(4 * sigma_frames)
    raw = rng.standard_normal((n + 2 * pad, dims))
    out = gaussian_filter1d(raw, sigma_frames, axis=0, mode="nearest")[pad: pad + n]
    return out * np.sqrt(2.0 * np.sqrt(np.pi) * sigma_frames)


def _vm(phi: np.ndarray, centre: float, kappa: float) -> np.ndarray:
    """Von Mises bump on a cycle phase (radians), peak 1 at ``centre`` (fraction of the cycle)."""
    return np.exp(kappa * (np.cos(phi - 2 * np.pi * centre) - 1.0))


def _phase(ctx: ActivityContext, freq: float, jitter: float = 0.05) -> np.ndarray:
    f = freq * ctx.style.tempo * (1.0 + jitter * smooth_noise(ctx.rng, ctx.frames, 1, ctx.fps * 2)[:, 0])
    return 2 * np.pi * np.cumsum(f) / ctx.fps + ctx.rng.uniform(0, 2 * np.pi)


def _heading(ctx: ActivityContext, speed: float) -> np.ndarray:
    """Yaw over time for locomotion: circles (``loop``) or a smooth random path (``wander``)."""
    rng = ctx.rng
    wander = smooth_noise(rng, ctx.frames, 1, ctx.fps * 2.5)[:, 0]
    if ctx.path == "loop":
        omega = rng.choice([-1.0, 1.0]) * speed / rng.uniform(*ctx.loop_radius)
        return omega * ctx.t + np.radians(12.0) * wander
    return np.radians(28.0) * wander + np.radians(8.0) * smooth_noise(rng, ctx.frames, 1, ctx.fps * 0.8)[:, 0]


def _keyframes(ctx: ActivityContext, keys: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """Blend key poses: ``keys[i] = (duration_s, pose)`` reached at the end of its segment (smoothstep)."""
    durs = np.array([max(d, 1e-3) for d, _ in keys])
    poses = np.stack([p for _, p in keys])
    ends = np.cumsum(durs) - durs[0]
    t = np.minimum(ctx.t, ends[-1])
    i = np.clip(np.searchsorted(ends, t, side="right"), 1, len(keys) - 1)
    s = np.clip((t - ends[i - 1]) / (ends[i] - ends[i - 1]), 0.0, 1.0)
    s = s * s * (3 - 2 * s)
    return poses[i - 1] + s[:, None] * (poses[i] - poses[i - 1])


def _repeat_keys(ctx: ActivityContext, make_rep: Callable[[int], list[tuple[float, np.ndarray]]],
                 start: np.ndarray) -> np.ndarray:
    keys: list[tuple[float, np.ndarray]] = [(0.0, start)]
    total, rep = 0.0, 0
    while total < ctx.duration + 1.0:
        seg = make_rep(rep)
        keys += seg
        total += sum(d for d, _ in seg)
        rep += 1
    return _keyframes(ctx, keys)


def _tempo(ctx: ActivityContext, seconds: float) -> float:
    return seconds / ctx.style.tempo * ctx.rng.uniform(0.85, 1.15)


def _dom(ctx: ActivityContext) -> tuple[str, str]:
    """(dominant, other) side prefixes, swapped on ~30% of calls for variety."""
    d = ctx.style.side if ctx.rng.random() < 0.7 else ("l" if ctx.style.side == "r" else "r")
    return d, "l" if d == "r" else "r"


def _zeros_flight(ctx: ActivityContext) -> np.ndarray:
    return np.zeros(ctx.frames)


# ----------------------------------------------------------------------------- locomotion
def _gait(ctx: ActivityContext, *, freq: float, hip: tuple[float, float], knee: tuple[float, float, float],
          arm: float, elbow: tuple[float, float], lean: float, speed: float, neck: float = 0.0,
          stance: float = 0.6) -> ActivityMotion:
    A = ctx.style.amplitude
    phi = _phase(ctx, freq)
    ang = np.tile(pose_vector(), (ctx.frames, 1))
    r = np.radians
    for side, ph in (("l", phi), ("r", phi + np.pi)):
        ang[:, DOF[f"{side}_hip_flex"]] = r(hip[0] + A * hip[1] * np.cos(ph))
        ang[:, DOF[f"{side}_knee"]] = r(knee[0] + knee[1] * _vm(ph, 0.13, 6.0) + A * knee[2] * _vm(ph, 0.72, 4.5)
                                        + A * 0.4 * knee[2] * _vm(ph, 0.55, 6.0))
        ang[:, DOF[f"{side}_sh_flex"]] = r(4.0 - A * arm * ctx.style.arm_swing * np.cos(ph))
        ang[:, DOF[f"{side}_elbow"]] = r(elbow[0] + elbow[1] * (0.5 - 0.5 * np.cos(ph)))
    ang[:, DOF["spine_flex"]] = r(lean)
    ang[:, DOF["neck_flex"]] = r(4.0 + neck)
    ang[:, DOF["spine_twist"]] = r(-3.0 * A * np.cos(phi))
    ang[:, DOF["chest_twist"]] = r(5.0 * A * np.cos(phi))
    ang[:, DOF["roll"]] = r(2.5 * np.sin(phi))
    ang[:, DOF["yaw"]] = _heading(ctx, speed)
    # stance: cycle fraction [0, stance) of each leg (foot strike at 0), soft edges
    st = np.stack([0.5 + 0.5 * np.tanh((np.cos(ph - stance * np.pi) - np.cos(stance * np.pi)) / 0.08)
                   for ph in (phi + np.pi, phi)], axis=1)
    st = (st + 1e-3) / (st.sum(axis=1, keepdims=True) + 2e-3)
    return ActivityMotion(ang, _zeros_flight(ctx), stance=st)


def walk(ctx: ActivityContext) -> ActivityMotion:
    return _gait(ctx, freq=0.93, hip=(7.0, 19.0), knee=(4.0, 13.0, 52.0), arm=16.0, elbow=(14.0, 10.0),
                 lean=3.0, speed=1.25)


def run(ctx: ActivityContext) -> ActivityMotion:
    return _gait(ctx, freq=1.35, hip=(15.0, 25.0), knee=(20.0, 18.0, 80.0), arm=30.0, elbow=(78.0, 18.0),
                 lean=9.0, speed=2.5, stance=0.4)


def stairs(ctx: ActivityContext) -> ActivityMotion:
    """Stair-like high-step walking (on flat ground): large hip/knee lift, forward lean, eyes down."""
    return _gait(ctx, freq=0.72, hip=(20.0, 26.0), knee=(10.0, 12.0, 78.0), arm=12.0, elbow=(20.0, 10.0),
                 lean=10.0, speed=0.9, neck=14.0)


def turn(ctx: ActivityContext) -> ActivityMotion:
    """Stepping on the spot while turning by 60-180 degree increments with pauses."""
    rng = ctx.rng
    phi = _phase(ctx, 1.0)
    ang = np.tile(pose_vector(), (ctx.frames, 1))
    lift = np.clip(smooth_noise(rng, ctx.frames, 1, ctx.fps * 1.0)[:, 0] + 0.8, 0.0, 1.5)
    for side, ph in (("l", phi), ("r", phi + np.pi)):
        b = _vm(ph, 0.72, 4.0) * lift
        ang[:, DOF[f"{side}_hip_flex"]] = np.radians(3.0 + 16.0 * b)
        ang[:, DOF[f"{side}_knee"]] = np.radians(4.0 + 32.0 * b)
        ang[:, DOF[f"{side}_sh_flex"]] = np.radians(5.0 - 8.0 * np.cos(ph))
    keys: list[tuple[float, np.ndarray]] = [(0.0, np.zeros(1))]
    yaw, total = 0.0, 0.0
    while total < ctx.duration + 1:
        yaw += rng.choice([-1.0, 1.0]) * np.radians(rng.uniform(60, 180))
        d1, d2 = _tempo(ctx, rng.uniform(1.5, 3.0)), rng.uniform(0.5, 1.8)
        keys += [(d1, np.array([yaw])), (d2, np.array([yaw]))]
        total += d1 + d2
    ang[:, DOF["yaw"]] = _keyframes(ctx, keys)[:, 0]
    ang[:, DOF["neck_twist"]] = np.radians(12.0) * smooth_noise(rng, ctx.frames, 1, ctx.fps * 0.7)[:, 0]
    return ActivityMotion(ang, _zeros_flight(ctx))


# ----------------------------------------------------------------------------- everyday (key poses)
def sit(ctx: ActivityContext) -> ActivityMotion:
    """Sit down on a bench, stay seated (shifting, arms moving), stand up; repeated."""
    rng = ctx.rng
    stand = pose_vector()
    A = ctx.style.amplitude
    seated_key: list[bool] = [False]

    def rep(_i: int) -> list[tuple[float, np.ndarray]]:
        lean = pose_vector({"pitch": 28 * A, "spine_flex": 12, "hip_flex": 75, "knee": 60, "sh_flex": 25,
                            "elbow": 30, "neck_flex": -5})
        arms = rng.choice(["thighs", "lap", "gesture", "lean_back"])
        seat = {"hip_flex": rng.uniform(80, 95), "knee": rng.uniform(80, 100), "spine_flex": rng.uniform(-2, 12),
                "hip_abd": rng.uniform(4, 14)}
        if arms == "thighs":
            seat |= {"sh_flex": 35, "elbow": 45, "sh_abd": 12}
        elif arms == "lap":
            seat |= {"sh_flex": 25, "elbow": 80, "sh_abd": 8, "sh_rot": -25}
        elif arms == "gesture":
            seat |= {"l_sh_flex": 40, "l_elbow": 90, "r_sh_flex": 25, "r_elbow": 60}
        else:
            seat |= {"pitch": -10, "spine_flex": -5, "sh_flex": -15, "elbow": 20}
        seated = pose_vector(seat)
        seated2 = pose_vector(seat | {"neck_twist": rng.uniform(-35, 35), "chest_twist": rng.uniform(-12, 12),
                                      "spine_flex": seat["spine_flex"] + rng.uniform(-6, 10)})
        out = [(rng.uniform(0.8, 2.5), stand), (_tempo(ctx, 0.8), lean), (_tempo(ctx, 0.7), seated),
               (rng.uniform(1.0, 2.5), seated2), (rng.uniform(1.0, 2.5), seated), (_tempo(ctx, 0.6), lean),
               (_tempo(ctx, 0.7), stand)]
        seated_key.extend([False, False, True, True, True, False, False])
        return out

    keys: list[tuple[float, np.ndarray]] = [(0.0, stand)]
    total = 0.0
    while total < ctx.duration + 1:
        seg = rep(0)
        keys += seg
        total += sum(d for d, _ in seg)
    ang = _keyframes(ctx, keys)
    # seated frames: the segments ending at seated keys (and the hold between them)
    durs = np.array([max(d, 1e-3) for d, _ in keys])
    ends = np.cumsum(durs) - durs[0]
    flags = np.array(seated_key[: len(keys)])
    t = np.minimum(ctx.t, ends[-1])
    i = np.clip(np.searchsorted(ends, t, side="right"), 1, len(keys) - 1)
    seated = flags[i] & flags[i - 1]
    return ActivityMotion(ang, _zeros_flight(ctx), seated=seated)


def wave(ctx: ActivityContext) -> ActivityMotion:
    rng = ctx.rng
    d, _o = _dom(ctx)
    rest = pose_vector()

    def rep(_i: int) -> list[tuple[float, np.ndarray]]:
        both = rng.random() < 0.2
        up = {f"{d}_sh_abd": rng.uniform(95, 140), f"{d}_sh_flex": rng.uniform(5, 35),
              f"{d}_elbow": rng.uniform(60, 95), f"{d}_sh_rot": rng.uniform(10, 40), "neck_flex": -3}
        if both:
            o = "l" if d == "r" else "r"
            up |= {f"{o}_sh_abd": up[f"{d}_sh_abd"], f"{o}_sh_flex": up[f"{d}_sh_flex"],
                   f"{o}_elbow": up[f"{d}_elbow"], f"{o}_sh_rot": up[f"{d}_sh_rot"]}
        p = pose_vector(up)
        return [(rng.uniform(0.8, 2.5), rest), (_tempo(ctx, 0.5), p), (rng.uniform(1.5, 4.0), p),
                (_tempo(ctx, 0.5), rest)]

    ang = _repeat_keys(ctx, rep, rest)
    raised = np.clip((ang[:, DOF[f"{d}_sh_abd"]] - np.radians(30)) / np.radians(60), 0, 1)
    phi = _phase(ctx, 2.2, 0.1)
    for s in ("l", "r"):
        on = np.clip((ang[:, DOF[f"{s}_sh_abd"]] - np.radians(30)) / np.radians(60), 0, 1) if s != d else raised
        ang[:, DOF[f"{s}_elbow"]] += np.radians(24.0) * ctx.style.amplitude * on * np.sin(phi)
        ang[:, DOF[f"{s}_sh_rot"]] += np.radians(12.0) * on * np.sin(phi + 0.6)
    ang[:, DOF["neck_twist"]] += np.radians(10.0) * smooth_noise(rng, ctx.frames, 1, ctx.fps)[:, 0]
    return ActivityMotion(ang, _zeros_flight(ctx))


def gesture(ctx: ActivityContext) -> ActivityMotion:
    """Talking / giving directions: expressive arm motion, pointing, weight shifts, head turns."""
    rng = ctx.rng
    n = ctx.frames
    d, _o = _dom(ctx)
    rest = pose_vector({"sh_flex": 18, "elbow": 65, "sh_abd": 10})

    def rep(_i: int) -> list[tuple[float, np.ndarray]]:
        kind = rng.choice(["talk", "point", "arms_crossed", "hands_hips"])
        if kind == "point":
            tw = rng.uniform(-25, 25)
            p = pose_vector({f"{d}_sh_flex": rng.uniform(70, 100), f"{d}_sh_abd": rng.uniform(10, 45),
                             f"{d}_elbow": rng.uniform(0, 15), "chest_twist": tw, "neck_twist": 1.5 * tw,
                             "sh_flex": 15, "elbow": 40}, rest)
        elif kind == "arms_crossed":
            p = pose_vector({"sh_flex": 30, "elbow": 115, "sh_abd": 5, "sh_rot": -60})
        elif kind == "hands_hips":
            p = pose_vector({"sh_abd": 40, "elbow": 110, "sh_rot": -50, "sh_flex": -10})
        else:
            p = rest
        return [(_tempo(ctx, 0.6), p), (rng.uniform(1.0, 3.0), p), (_tempo(ctx, 0.6), rest),
                (rng.uniform(0.5, 2.0), rest)]

    ang = _repeat_keys(ctx, rep, rest)
    talk = smooth_noise(rng, n, 8, ctx.fps * 0.35)
    amp = ctx.style.amplitude * np.radians(np.array([14, 8, 14, 18, 14, 8, 14, 18]))
    cols = [DOF[k] for k in ("l_sh_flex", "l_sh_abd", "l_sh_rot", "l_elbow", "r_sh_flex", "r_sh_abd",
                             "r_sh_rot", "r_elbow")]
    ang[:, cols] += talk * amp
    shift = smooth_noise(rng, n, 3, ctx.fps * 1.2)
    ang[:, DOF["roll"]] += np.radians(3.0) * shift[:, 0]
    ang[:, DOF["l_hip_abd"]] += np.radians(3.0) * shift[:, 0]
    ang[:, DOF["r_hip_abd"]] -= np.radians(3.0) * shift[:, 0]
    ang[:, DOF["neck_twist"]] += np.radians(20.0) * shift[:, 1]
    ang[:, DOF["yaw"]] += np.radians(15.0) * shift[:, 2]
    return ActivityMotion(ang, _zeros_flight(ctx))


def reach(ctx: ActivityContext) -> ActivityMotion:
    """Reach / pick up: pick things up from the floor, reach high, reach forward to a shelf."""
    rng = ctx.rng
    stand = pose_vector()
    A = ctx.style.amplitude

    def rep(_i: int) -> list[tuple[float, np.ndarray]]:
        d, o = _dom(ctx)
        kind = rng.choice(["pick_up", "reach_high", "reach_forward"], p=[0.45, 0.3, 0.25])
        if kind == "pick_up":
            squat = rng.random() < 0.4
            p = pose_vector({"pitch": (30 if squat else 45) * A, "spine_flex": 30 * A, "chest_flex": 12,
                             "hip_flex": (95 if squat else 60) * A, "knee": (95 if squat else 30) * A,
                             f"{d}_sh_flex": 90 * A, f"{d}_elbow": 10, f"{o}_sh_flex": 50, f"{o}_elbow": 40,
                             "neck_flex": 10})
        elif kind == "reach_high":
            p = pose_vector({f"{d}_sh_flex": rng.uniform(150, 175), f"{d}_elbow": rng.uniform(0, 15),
                             f"{d}_sh_abd": rng.uniform(0, 25), "spine_flex": -8, "neck_flex": -25,
                             "spine_lat": 5 if d == "l" else -5})
        else:
            tw = rng.uniform(-25, 25)
            p = pose_vector({f"{d}_sh_flex": rng.uniform(70, 110), f"{d}_elbow": rng.uniform(5, 30),
                             f"{d}_sh_abd": rng.uniform(0, 40), "chest_twist": tw, "spine_flex": 12,
                             "neck_twist": tw})
        return [(rng.uniform(0.6, 2.0), stand), (_tempo(ctx, 1.0), p), (rng.uniform(0.3, 1.2), p),
                (_tempo(ctx, 0.9), stand)]

    return ActivityMotion(_repeat_keys(ctx, rep, stand), _zeros_flight(ctx))


def bend(ctx: ActivityContext) -> ActivityMotion:
    """Forward folds (toe touches, deadlift-like hinges) and side bends."""
    rng = ctx.rng
    stand = pose_vector()
    A = ctx.style.amplitude

    def rep(i: int) -> list[tuple[float, np.ndarray]]:
        kind = rng.choice(["fold", "hinge", "side"])
        if kind == "fold":
            dpt = rng.uniform(0.7, 1.0) * A
            tilt = 50 * dpt + 38 * dpt + 22 * dpt
            p = pose_vector({"pitch": 50 * dpt, "spine_flex": 38 * dpt, "chest_flex": 22 * dpt,
                             "hip_flex": 50 * dpt + 5, "knee": rng.uniform(3, 20), "sh_flex": 0.85 * tilt,
                             "elbow": 10, "neck_flex": 15})
        elif kind == "hinge":
            dpt = rng.uniform(0.6, 1.0) * A
            p = pose_vector({"pitch": 60 * dpt, "spine_flex": 5, "hip_flex": 60 * dpt + 10, "knee": 22 * dpt,
                             "sh_flex": 60 * dpt, "elbow": 5, "neck_flex": -10})
        else:
            s = 1.0 if (i % 2 == 0) else -1.0
            o = "r" if s > 0 else "l"
            p = pose_vector({"spine_lat": s * 20 * A, "chest_lat": s * 16 * A, "roll": s * 4,
                             f"{o}_sh_abd": rng.uniform(140, 170), f"{o}_elbow": 20, "neck_lat": s * 10})
        return [(rng.uniform(0.4, 1.5), stand), (_tempo(ctx, 1.1), p), (rng.uniform(0.3, 1.0), p),
                (_tempo(ctx, 1.0), stand)]

    return ActivityMotion(_repeat_keys(ctx, rep, stand), _zeros_flight(ctx))


def crouch(ctx: ActivityContext) -> ActivityMotion:
    """Deep crouch, hold while looking around and touching the floor, stand up."""
    rng = ctx.rng
    stand = pose_vector()

    def rep(_i: int) -> list[tuple[float, np.ndarray]]:
        d, _o = _dom(ctx)
        c = pose_vector({"pitch": rng.uniform(15, 30), "spine_flex": rng.uniform(15, 30), "hip_flex": 120,
                         "knee": rng.uniform(125, 145), "neck_flex": -12, "sh_flex": 45, "elbow": 60,
                         f"{d}_sh_flex": rng.uniform(50, 80), f"{d}_elbow": rng.uniform(5, 30),
                         "hip_abd": rng.uniform(8, 20)})
        c2 = c.copy()
        c2[DOF["neck_twist"]] = np.radians(rng.uniform(-45, 45))
        c2[DOF["chest_twist"]] = np.radians(rng.uniform(-15, 15))
        return [(rng.uniform(0.8, 2.0), stand), (_tempo(ctx, 1.1), c), (rng.uniform(0.8, 2.0), c2),
                (rng.uniform(0.8, 2.0), c), (_tempo(ctx, 1.0), stand)]

    return ActivityMotion(_repeat_keys(ctx, rep, stand), _zeros_flight(ctx))


# ----------------------------------------------------------------------------- exercises
def squat(ctx: ActivityContext) -> ActivityMotion:
    rng = ctx.rng
    stand = pose_vector({"hip_abd": 9, "hip_rot": 12})
    A = ctx.style.amplitude

    def rep(_i: int) -> list[tuple[float, np.ndarray]]:
        dp = np.clip(rng.uniform(0.7, 1.0) * A, 0.5, 1.05)
        arms = rng.choice(["forward", "hands_head", "crossed"])
        a = {"forward": {"sh_flex": 55 * dp, "elbow": 10}, "hands_head": {"sh_abd": 100, "elbow": 140,
             "sh_flex": 20, "sh_rot": 60}, "crossed": {"sh_flex": 60, "elbow": 110, "sh_rot": -55}}[arms]
        bottom = pose_vector({"pitch": 35 * dp, "spine_flex": 6, "hip_flex": 115 * dp, "knee": 120 * dp,
                              "hip_abd": 14, "hip_rot": 15, "neck_flex": -15} | a, stand)
        top = pose_vector({"hip_abd": 9, "hip_rot": 12} | {k: v * 0.3 for k, v in a.items()})
        return [(rng.uniform(0.2, 0.8), top), (_tempo(ctx, 1.1), bottom), (rng.uniform(0.05, 0.4), bottom),
                (_tempo(ctx, 0.9), top)]

    return ActivityMotion(_repeat_keys(ctx, rep, stand), _zeros_flight(ctx))


def lunge(ctx: ActivityContext) -> ActivityMotion:
    rng = ctx.rng
    stand = pose_vector()

    def rep(i: int) -> list[tuple[float, np.ndarray]]:
        f, b = ("l", "r") if i % 2 == 0 else ("r", "l")
        arms = {"sh_abd": 35, "elbow": 110, "sh_rot": -50} if rng.random() < 0.5 else {"sh_flex": 10}
        lift = pose_vector({f"{f}_hip_flex": 45, f"{f}_knee": 60} | arms)
        dp = rng.uniform(0.8, 1.0)
        low = pose_vector({f"{f}_hip_flex": 85 * dp, f"{f}_knee": 95 * dp, f"{b}_hip_flex": -12 * dp,
                           f"{b}_knee": 100 * dp, "spine_flex": -3, "pitch": 4} | arms)
        return [(rng.uniform(0.2, 0.8), stand), (_tempo(ctx, 0.45), lift), (_tempo(ctx, 0.55), low),
                (rng.uniform(0.2, 0.6), low), (_tempo(ctx, 0.5), lift), (_tempo(ctx, 0.4), stand)]

    return ActivityMotion(_repeat_keys(ctx, rep, stand), _zeros_flight(ctx))


def push_up(ctx: ActivityContext) -> ActivityMotion:
    rng = ctx.rng
    base = {"pitch": 78, "hip_flex": 0, "knee": 3, "sh_flex": 88, "sh_abd": 12, "elbow": 3, "neck_flex": 10,
            "hip_abd": 4}
    up = pose_vector(base)

    def rep(_i: int) -> list[tuple[float, np.ndarray]]:
        dp = rng.uniform(0.6, 1.0) * ctx.style.amplitude
        e = 95 * dp
        down = pose_vector(base | {"elbow": e, "sh_flex": 88 - 0.55 * e, "sh_abd": 12 + 0.3 * e,
                                   "spine_flex": rng.uniform(-8, 6), "hip_flex": rng.uniform(-5, 12)})
        return [(rng.uniform(0.1, 0.8), up), (_tempo(ctx, 0.9), down), (rng.uniform(0.05, 0.3), down),
                (_tempo(ctx, 0.8), up)]

    ang = _repeat_keys(ctx, rep, up)
    return ActivityMotion(ang, _zeros_flight(ctx), level=((13, 16), (3, 6)), free_pitch=True)


def situp(ctx: ActivityContext) -> ActivityMotion:
    rng = ctx.rng
    arms = rng.choice(["head", "chest", "reach"])
    a = {"head": {"sh_flex": 150, "sh_abd": 55, "elbow": 135}, "chest": {"sh_flex": 40, "elbow": 120,
         "sh_rot": -60}, "reach": {"sh_flex": 25, "elbow": 5}}[arms]
    base = {"pitch": -90, "hip_flex": 50, "knee": 100, "hip_abd": 8} | a
    lie = pose_vector(base)

    def rep(_i: int) -> list[tuple[float, np.ndarray]]:
        dp = rng.uniform(0.6, 1.0) * ctx.style.amplitude
        curl = pose_vector(base | {"spine_flex": 45 * dp, "chest_flex": 35 * dp, "neck_flex": 30,
                                   "sh_flex": base["sh_flex"] + (35 * dp if arms == "reach" else 0)})
        return [(rng.uniform(0.2, 1.0), lie), (_tempo(ctx, 0.9), curl), (rng.uniform(0.05, 0.4), curl),
                (_tempo(ctx, 0.9), lie)]

    ang = _repeat_keys(ctx, rep, lie)
    return ActivityMotion(ang, _zeros_flight(ctx), level=((0,), (3, 6)), free_pitch=True)


def _flight_profile(ctx: ActivityContext, starts: list[float], durations: list[float]) -> np.ndarray:
    """Ballistic height ``g tau (T_f - tau) / 2`` during each flight window."""
    t = ctx.t
    h = np.zeros(ctx.frames)
    for s, d in zip(starts, durations):
        tau = t - s
        m = (tau > 0) & (tau < d)
        h[m] = 0.5 * 9.81 * tau[m] * (d - tau[m])
    return h


def jump(ctx: ActivityContext) -> ActivityMotion:
    """Counter-movement and tuck jumps: dip, take off, ballistic flight, land, absorb."""
    rng = ctx.rng
    stand = pose_vector()
    keys: list[tuple[float, np.ndarray]] = [(0.0, stand)]
    starts, durs = [], []
    total = 0.0
    while total < ctx.duration + 1:
        dp = rng.uniform(0.7, 1.0) * ctx.style.amplitude
        tf = rng.uniform(0.38, 0.52) * dp
        tuck = rng.random() < 0.3
        dip = pose_vector({"pitch": 25 * dp, "hip_flex": 75 * dp, "knee": 85 * dp, "sh_flex": -35, "elbow": 20})
        push = pose_vector({"sh_flex": 150, "elbow": 10, "knee": 2, "hip_flex": 0})
        air = pose_vector({"sh_flex": 120, "elbow": 20, "hip_flex": 80 if tuck else 12, "knee": 100 if tuck else 12,
                           "pitch": 10 if tuck else 0})
        land = pose_vector({"hip_flex": 15, "knee": 18, "sh_flex": 60})
        absorb = pose_vector({"pitch": 20 * dp, "hip_flex": 55 * dp, "knee": 65 * dp, "sh_flex": 30, "elbow": 20})
        hold = rng.uniform(0.4, 1.2)
        seg = [(hold, stand), (_tempo(ctx, 0.45), dip), (0.16, push), (tf / 2, air), (tf / 2, land),
               (_tempo(ctx, 0.25), absorb), (_tempo(ctx, 0.5), stand)]
        t0 = total + hold + seg[1][0] + seg[2][0]
        starts.append(t0)
        durs.append(tf)
        keys += seg
        total += sum(d for d, _ in seg)
    ang = _keyframes(ctx, keys)
    return ActivityMotion(ang, _flight_profile(ctx, starts, durs))


def jumping_jack(ctx: ActivityContext) -> ActivityMotion:
    rng = ctx.rng
    closed = pose_vector({"sh_abd": 8, "hip_abd": 2})
    keys: list[tuple[float, np.ndarray]] = [(0.0, closed)]
    starts, durs = [], []
    total = 0.0
    while total < ctx.duration + 1:
        half = _tempo(ctx, 0.55)
        opened = pose_vector({"sh_abd": rng.uniform(140, 170), "hip_abd": rng.uniform(18, 26), "elbow": 10,
                              "knee": 8})
        tf = 0.24 * half / 0.55
        for target in (opened, closed):
            starts.append(total + 0.5 * half - tf / 2)
            durs.append(tf)
            keys.append((half, target))
            total += half
        if rng.random() < 0.15:
            pause = rng.uniform(0.5, 1.5)
            keys.append((pause, closed))
            total += pause
    ang = _keyframes(ctx, keys)
    return ActivityMotion(ang, _flight_profile(ctx, starts, durs))


def kick(ctx: ActivityContext) -> ActivityMotion:
    rng = ctx.rng
    guard = {"sh_flex": 45, "elbow": 100, "sh_abd": 15}
    stand = pose_vector(guard)

    def rep(i: int) -> list[tuple[float, np.ndarray]]:
        k = "r" if (i // 3) % 2 == 0 else "l"
        o = "l" if k == "r" else "r"
        A = ctx.style.amplitude
        if rng.random() < 0.7:  # front kick
            chamber = pose_vector(guard | {f"{k}_hip_flex": 70 * A, f"{k}_knee": 100, "pitch": -5})
            ext = pose_vector(guard | {f"{k}_hip_flex": rng.uniform(70, 95) * A, f"{k}_knee": rng.uniform(5, 20),
                                       "pitch": -10, f"{o}_knee": 10})
        else:  # side kick
            s = 1.0 if k == "l" else -1.0
            chamber = pose_vector(guard | {f"{k}_hip_flex": 60, f"{k}_knee": 110, f"{k}_hip_rot": -20,
                                           "spine_lat": -s * 10})
            ext = pose_vector(guard | {f"{k}_hip_abd": rng.uniform(40, 50) * A, f"{k}_hip_flex": 20,
                                       f"{k}_knee": 10, "spine_lat": -s * 22, "roll": -s * 12, "chest_lat": -s * 10})
        return [(rng.uniform(0.3, 1.0), stand), (_tempo(ctx, 0.3), chamber), (_tempo(ctx, 0.15), ext),
                (0.1, ext), (_tempo(ctx, 0.2), chamber), (_tempo(ctx, 0.3), stand)]

    return ActivityMotion(_repeat_keys(ctx, rep, stand), _zeros_flight(ctx))


ACTIVITIES: dict[str, Callable[[ActivityContext], ActivityMotion]] = {
    "walk": walk, "run": run, "stairs": stairs, "turn": turn,
    "sit": sit, "wave": wave, "gesture": gesture, "reach": reach, "bend": bend, "crouch": crouch,
    "squat": squat, "lunge": lunge, "push_up": push_up, "situp": situp, "jump": jump,
    "jumping_jack": jumping_jack, "kick": kick,
}
