"""Procedural activity generators: joint-angle trajectories for 25 everyday and exercise activities.

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

__all__ = ["ACTIVITIES", "ActivityContext", "ActivityMotion", "Style", "sample_style", "smooth_noise", "vary_style"]


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


def vary_style(style: Style, rng: np.random.Generator) -> Style:
    """A sequence's variation of a subject's style: people move a little differently each time
    (tempo +-6%, amplitude +-12%, arm swing +-20%, posture +-4 deg, motion noise +-15%)."""
    posture = style.posture.copy()
    for name in ("spine_flex", "chest_flex", "neck_flex", "neck_twist", "l_sh_abd", "r_sh_abd", "l_elbow",
                 "r_elbow", "l_hip_rot", "r_hip_rot", "l_hip_abd", "r_hip_abd"):
        posture[DOF[name]] += np.radians(rng.normal(0.0, 4.0))
    return Style(
        tempo=float(np.clip(style.tempo * rng.normal(1.0, 0.06), 0.7, 1.3)),
        amplitude=float(np.clip(style.amplitude * rng.normal(1.0, 0.12), 0.65, 1.35)),
        arm_swing=float(np.clip(style.arm_swing * rng.normal(1.0, 0.2), 0.3, 1.8)),
        side=style.side,
        posture=posture,
        noise=float(np.clip(style.noise * rng.normal(1.0, 0.15), 0.5, 1.7)),
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
    ``flight``: ``(T,)`` metres of ballistic height added above floor contact (jumps; ``None``: none);
    ``level``: joint groups ``(front, back)`` whose lowest surfaces are brought to equal height
    by adjusting the root pitch (floor poses: hands and feet, pelvis and feet);
    ``seated``: ``(T,)`` bool frames resting on a seat (a bench prop is placed there);
    ``free_pitch``: keep the root pitch free of posture noise (floor poses);
    ``stance``: ``(T, 2)`` weights of the (right, left) foot carrying the body (gait phase), or
    ``None`` to use the lower foot.
    """

    angles: np.ndarray
    flight: np.ndarray | None = None
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


def _key_segments(ctx: ActivityContext, keys: list[tuple[float, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the key ``i`` it moves towards from key ``i - 1``, and how far (0..1, smoothstep), for
    ``keys[i] = (duration_s, pose)`` reached at the end of its segment."""
    durs = np.array([max(d, 1e-3) for d, _ in keys])
    ends = np.cumsum(durs) - durs[0]
    t = np.minimum(ctx.t, ends[-1])
    i = np.clip(np.searchsorted(ends, t, side="right"), 1, len(keys) - 1)
    s = np.clip((t - ends[i - 1]) / (ends[i] - ends[i - 1]), 0.0, 1.0)
    return i, s * s * (3 - 2 * s)


def _keyframes(ctx: ActivityContext, keys: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """Blend key poses (:func:`_key_segments`)."""
    poses = np.stack([p for _, p in keys])
    i, s = _key_segments(ctx, keys)
    return poses[i - 1] + s[:, None] * (poses[i] - poses[i - 1])


def _repeat(ctx: ActivityContext, make_rep: Callable[[int], list[tuple[float, np.ndarray]]],
            start: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """Keys from ``start`` through repetitions ``make_rep(0), make_rep(1), ...`` until the clip is covered."""
    keys: list[tuple[float, np.ndarray]] = [(0.0, start)]
    total, rep = 0.0, 0
    while total < ctx.duration + 1.0:
        seg = make_rep(rep)
        keys += seg
        total += sum(d for d, _ in seg)
        rep += 1
    return keys


def _repeat_keys(ctx: ActivityContext, make_rep: Callable[[int], list[tuple[float, np.ndarray]]],
                 start: np.ndarray) -> np.ndarray:
    return _keyframes(ctx, _repeat(ctx, make_rep, start))


def _tempo(ctx: ActivityContext, seconds: float) -> float:
    return seconds / ctx.style.tempo * ctx.rng.uniform(0.85, 1.15)


def _visit(ctx: ActivityContext, rest: np.ndarray, pose: np.ndarray, wait: tuple[float, float], go: float,
           hold: tuple[float, float], back: float) -> list[tuple[float, np.ndarray]]:
    """Keys of one repetition: stay at ``rest`` (``wait`` seconds, uniform), move to ``pose`` (``go`` s at the
    subject's tempo, :func:`_tempo`), hold it, move back (``back`` s); drawn in that order."""
    return [(ctx.rng.uniform(*wait), rest), (_tempo(ctx, go), pose), (ctx.rng.uniform(*hold), pose),
            (_tempo(ctx, back), rest)]


def _dom(ctx: ActivityContext) -> tuple[str, str]:
    """(dominant, other) side prefixes, swapped on ~30% of calls for variety."""
    d = ctx.style.side if ctx.rng.random() < 0.7 else ("l" if ctx.style.side == "r" else "r")
    return d, "l" if d == "r" else "r"


# ----------------------------------------------------------------------------- locomotion
def _gait(ctx: ActivityContext, *, freq: float, hip: tuple[float, float], knee: tuple[float, float, float],
          arm: float, elbow: tuple[float, float], lean: float, speed: float, neck: float = 0.0,
          stance: float = 0.6) -> ActivityMotion:
    """A gait cycle; each call varies the manner of walking (step length +-20%, knee lift, elbow
    bend, arms held out, lean, head carriage), as people's gaits differ from walk to walk."""
    rng = ctx.rng
    A = ctx.style.amplitude
    step, lift = rng.uniform(0.8, 1.25), rng.uniform(0.85, 1.2)
    elbow_bend, arms_out = rng.uniform(-5.0, 25.0), rng.uniform(-4.0, 8.0)
    base_width = rng.normal(-2.0, 1.5)  # degrees of hip abduction: walking feet ~10 cm apart, not hip-wide
    lean, neck = lean + rng.normal(0.0, 4.0), neck + rng.normal(0.0, 6.0)
    phi = _phase(ctx, freq)
    ang = np.tile(pose_vector(), (ctx.frames, 1))
    r = np.radians
    for side, ph in (("l", phi), ("r", phi + np.pi)):
        ang[:, DOF[f"{side}_hip_flex"]] = r(hip[0] + A * step * hip[1] * np.cos(ph))
        ang[:, DOF[f"{side}_knee"]] = r(knee[0] + knee[1] * _vm(ph, 0.13, 6.0)
                                        + A * lift * knee[2] * (_vm(ph, 0.72, 4.5) + 0.4 * _vm(ph, 0.55, 6.0)))
        ang[:, DOF[f"{side}_sh_flex"]] = r(-A * arm * ctx.style.arm_swing * np.cos(ph))
        ang[:, DOF[f"{side}_sh_abd"]] += r(arms_out)
        ang[:, DOF[f"{side}_hip_abd"]] = r(base_width)
        ang[:, DOF[f"{side}_elbow"]] = r(max(0.0, elbow[0] + elbow_bend) + elbow[1] * (0.5 - 0.5 * np.cos(ph)))
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
    return ActivityMotion(ang, stance=st)


def walk(ctx: ActivityContext) -> ActivityMotion:
    """Walking; now and then backwards (10%), and with what the arms do while walking varied
    (40%: carrying something, hands in pockets, looking at a phone, hands behind the back)."""
    backwards = ctx.rng.random() < 0.1
    m = _gait(ctx, freq=-0.8 if backwards else 0.93, hip=(7.0, 19.0), knee=(4.0, 13.0, 52.0), arm=16.0,
              elbow=(14.0, 10.0), lean=-2.0 if backwards else 3.0, speed=1.25)
    if ctx.rng.random() < 0.4:
        _carriage(ctx, m.angles)
    return m


# Arm poses (degrees) held while waiting (both arms), walking (pockets, behind) and gesturing (crossed, hips).
_WAIT_ARMS = {
    "crossed": {"sh_flex": 30, "elbow": 115, "sh_abd": 5, "sh_rot": -60},
    "pockets": {"sh_flex": -5, "sh_abd": 10, "elbow": 60, "sh_rot": 25},
    "behind": {"sh_flex": -35, "sh_abd": 5, "elbow": 40, "sh_rot": -40},
    "hips": {"sh_abd": 40, "elbow": 110, "sh_rot": -50, "sh_flex": -10},
    "hanging": {"sh_abd": 6, "elbow": 10},
    "watch": {"l_sh_flex": 40, "l_elbow": 110, "l_sh_rot": -40, "neck_flex": 30, "r_sh_flex": 30, "r_elbow": 90},
}


_CARRIAGE = {  # arm poses held while walking (degrees): (dominant arm, other arm or None = swings on)
    "carry": ({"sh_flex": 15, "sh_abd": 8, "elbow": 90}, {"sh_flex": 12, "sh_abd": 8, "elbow": 85}),
    "bag": ({"sh_flex": 0, "sh_abd": 12, "elbow": 5}, None),
    "pockets": (_WAIT_ARMS["pockets"],) * 2,
    "phone": ({"sh_flex": 45, "sh_abd": 10, "elbow": 105, "sh_rot": -20, "neck_flex": 25}, None),
    "behind": (_WAIT_ARMS["behind"],) * 2,
}


def _carriage(ctx: ActivityContext, ang: np.ndarray) -> None:
    """Hold the arms (one or both) in a carrying pose, keeping a fifth of the swing, in place."""
    d, o = _dom(ctx)
    mode = _CARRIAGE[str(ctx.rng.choice(list(_CARRIAGE)))]
    for side, held in ((d, mode[0]), (o, mode[1])):
        if held is None:
            continue
        for name, deg in held.items():
            col = DOF[name] if name in DOF else DOF[f"{side}_{name}"]
            swing = ang[:, col] - ang[:, col].mean() if name == "sh_flex" else 0.0
            ang[:, col] = np.radians(deg + ctx.rng.normal(0.0, 6.0)) + 0.2 * swing


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
    return ActivityMotion(ang)


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
        seat |= {"thighs": {"sh_flex": 35, "elbow": 45, "sh_abd": 12},
                 "lap": {"sh_flex": 25, "elbow": 80, "sh_abd": 8, "sh_rot": -25},
                 "gesture": {"l_sh_flex": 40, "l_elbow": 90, "r_sh_flex": 25, "r_elbow": 60},
                 "lean_back": {"pitch": -10, "spine_flex": -5, "sh_flex": -15, "elbow": 20}}[str(arms)]
        seated = pose_vector(seat)
        seated2 = pose_vector(seat | {"neck_twist": rng.uniform(-35, 35), "chest_twist": rng.uniform(-12, 12),
                                      "spine_flex": seat["spine_flex"] + rng.uniform(-6, 10)})
        out = [(rng.uniform(0.8, 2.5), stand), (_tempo(ctx, 0.8), lean), (_tempo(ctx, 0.7), seated),
               (rng.uniform(1.0, 2.5), seated2), (rng.uniform(1.0, 2.5), seated), (_tempo(ctx, 0.6), lean),
               (_tempo(ctx, 0.7), stand)]
        seated_key.extend([False, False, True, True, True, False, False])
        return out

    keys = _repeat(ctx, rep, stand)
    # seated frames: the segments ending at seated keys (and the hold between them)
    flags = np.array(seated_key[: len(keys)])
    i, _s = _key_segments(ctx, keys)
    return ActivityMotion(_keyframes(ctx, keys), seated=flags[i] & flags[i - 1])


def wave(ctx: ActivityContext) -> ActivityMotion:
    rng = ctx.rng
    d, o = _dom(ctx)
    rest = pose_vector()

    def rep(_i: int) -> list[tuple[float, np.ndarray]]:
        both = rng.random() < 0.2
        up = {f"{d}_sh_abd": rng.uniform(95, 140), f"{d}_sh_flex": rng.uniform(5, 35),
              f"{d}_elbow": rng.uniform(60, 95), f"{d}_sh_rot": rng.uniform(10, 40), "neck_flex": -3}
        if both:
            up |= {f"{o}_sh_abd": up[f"{d}_sh_abd"], f"{o}_sh_flex": up[f"{d}_sh_flex"],
                   f"{o}_elbow": up[f"{d}_elbow"], f"{o}_sh_rot": up[f"{d}_sh_rot"]}
        p = pose_vector(up)
        return _visit(ctx, rest, p, (0.8, 2.5), 0.5, (1.5, 4.0), 0.5)

    ang = _repeat_keys(ctx, rep, rest)
    phi = _phase(ctx, 2.2, 0.1)
    for s in ("l", "r"):  # on: how far each arm is raised (shoulder abduction 30 -> 90 deg)
        on = np.clip((ang[:, DOF[f"{s}_sh_abd"]] - np.radians(30)) / np.radians(60), 0, 1)
        ang[:, DOF[f"{s}_elbow"]] += np.radians(24.0) * ctx.style.amplitude * on * np.sin(phi)
        ang[:, DOF[f"{s}_sh_rot"]] += np.radians(12.0) * on * np.sin(phi + 0.6)
    ang[:, DOF["neck_twist"]] += np.radians(10.0) * smooth_noise(rng, ctx.frames, 1, ctx.fps)[:, 0]
    return ActivityMotion(ang)


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
            p = pose_vector(_WAIT_ARMS["crossed"])
        elif kind == "hands_hips":
            p = pose_vector(_WAIT_ARMS["hips"])
        else:
            p = rest
        return [(_tempo(ctx, 0.6), p), (rng.uniform(1.0, 3.0), p), (_tempo(ctx, 0.6), rest),
                (rng.uniform(0.5, 2.0), rest)]

    ang = _repeat_keys(ctx, rep, rest)
    talk = smooth_noise(rng, n, 8, ctx.fps * 0.35)
    amp = ctx.style.amplitude * np.radians(np.array([14, 8, 14, 18, 14, 8, 14, 18]))
    cols = [DOF[f"{side}_{k}"] for side in "lr" for k in ("sh_flex", "sh_abd", "sh_rot", "elbow")]
    ang[:, cols] += talk * amp
    shift = smooth_noise(rng, n, 3, ctx.fps * 1.2)
    ang[:, DOF["roll"]] += np.radians(3.0) * shift[:, 0]
    ang[:, DOF["l_hip_abd"]] += np.radians(3.0) * shift[:, 0]
    ang[:, DOF["r_hip_abd"]] -= np.radians(3.0) * shift[:, 0]
    ang[:, DOF["neck_twist"]] += np.radians(20.0) * shift[:, 1]
    ang[:, DOF["yaw"]] += np.radians(15.0) * shift[:, 2]
    return ActivityMotion(ang)


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
        return _visit(ctx, stand, p, (0.6, 2.0), 1.0, (0.3, 1.2), 0.9)

    return ActivityMotion(_repeat_keys(ctx, rep, stand))


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
        return _visit(ctx, stand, p, (0.4, 1.5), 1.1, (0.3, 1.0), 1.0)

    return ActivityMotion(_repeat_keys(ctx, rep, stand))


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
        c2 = pose_vector({"neck_twist": rng.uniform(-45, 45), "chest_twist": rng.uniform(-15, 15)}, c)
        return [(rng.uniform(0.8, 2.0), stand), (_tempo(ctx, 1.1), c), (rng.uniform(0.8, 2.0), c2),
                (rng.uniform(0.8, 2.0), c), (_tempo(ctx, 1.0), stand)]

    return ActivityMotion(_repeat_keys(ctx, rep, stand))


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
        return _visit(ctx, top, bottom, (0.2, 0.8), 1.1, (0.05, 0.4), 0.9)

    return ActivityMotion(_repeat_keys(ctx, rep, stand))


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

    return ActivityMotion(_repeat_keys(ctx, rep, stand))


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
        return _visit(ctx, up, down, (0.1, 0.8), 0.9, (0.05, 0.3), 0.8)

    ang = _repeat_keys(ctx, rep, up)
    return ActivityMotion(ang, level=((13, 16), (3, 6)), free_pitch=True)


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
        return _visit(ctx, lie, curl, (0.2, 1.0), 0.9, (0.05, 0.4), 0.9)

    ang = _repeat_keys(ctx, rep, lie)
    return ActivityMotion(ang, level=((0,), (3, 6)), free_pitch=True)


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
        starts.append(total + hold + seg[1][0] + seg[2][0])
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

    return ActivityMotion(_repeat_keys(ctx, rep, stand))


# ----------------------------------------------------------------------------- everyday (Human3.6M-like)
def _idle(ctx: ActivityContext, ang: np.ndarray, turn_deg: float = 25.0) -> np.ndarray:
    """Standing life on top of ``ang`` (in place): weight shifts, a knee giving, slow turns, head turns."""
    rng, n = ctx.rng, ctx.frames
    shift = smooth_noise(rng, n, 3, ctx.fps * 1.5)
    ang[:, DOF["roll"]] += np.radians(3.0) * shift[:, 0]
    ang[:, DOF["l_hip_abd"]] += np.radians(3.0) * shift[:, 0]
    ang[:, DOF["r_hip_abd"]] -= np.radians(3.0) * shift[:, 0]
    ang[:, DOF["l_knee"]] += np.radians(6.0) * np.abs(shift[:, 1])
    ang[:, DOF["r_knee"]] += np.radians(6.0) * np.abs(shift[:, 2])
    look = smooth_noise(rng, n, 2, ctx.fps * 0.9)
    ang[:, DOF["neck_twist"]] += np.radians(22.0) * look[:, 0]
    ang[:, DOF["neck_flex"]] += np.radians(8.0) * look[:, 1]
    ang[:, DOF["yaw"]] += np.radians(turn_deg) * smooth_noise(rng, n, 1, ctx.fps * 3.0)[:, 0]
    return ang


def _held(ctx: ActivityContext, rest: np.ndarray, make_pose: Callable[[int], np.ndarray],
          hold: tuple[float, float] = (0.8, 2.5), move: float = 0.6) -> np.ndarray:
    """Repeatedly move from ``rest`` to a pose, hold it, return; with standing life (:func:`_idle`)."""
    return _idle(ctx, _repeat_keys(ctx, lambda i: _visit(ctx, rest, make_pose(i), (0.5, 2.0), move, hold, move), rest))


def _relaxed(ctx: ActivityContext) -> np.ndarray:
    return pose_vector({"sh_flex": ctx.rng.uniform(0, 15), "elbow": ctx.rng.uniform(10, 40), "sh_abd": 8})


def phone(ctx: ActivityContext) -> ActivityMotion:
    """On the phone: one hand at the ear, the other gesturing or hanging; standing (60%) or strolling."""
    rng = ctx.rng
    d, o = _dom(ctx)
    if rng.random() < 0.4:
        m = _gait(ctx, freq=0.75, hip=(5.0, 14.0), knee=(4.0, 10.0, 45.0), arm=8.0, elbow=(14.0, 8.0), lean=2.0,
                  speed=0.8)
    else:
        m = ActivityMotion(_idle(ctx, np.tile(_relaxed(ctx), (ctx.frames, 1))))
    ear = {"sh_flex": rng.uniform(25, 50), "sh_abd": rng.uniform(20, 45), "sh_rot": rng.uniform(-10, 30),
           "elbow": rng.uniform(125, 145)}
    for name, deg in ear.items():
        m.angles[:, DOF[f"{d}_{name}"]] = np.radians(deg)
    talk = smooth_noise(rng, ctx.frames, 2, ctx.fps * 0.5)
    m.angles[:, DOF[f"{o}_sh_flex"]] += np.radians(20.0) * talk[:, 0] * ctx.style.amplitude
    m.angles[:, DOF[f"{o}_elbow"]] += np.radians(25.0) * np.abs(talk[:, 1])
    m.angles[:, DOF["neck_lat"]] += np.radians(8.0 if d == "l" else -8.0)
    return m


def eat(ctx: ActivityContext) -> ActivityMotion:
    """Eating or drinking standing: the dominant hand to the mouth and back, the other holding a
    plate or cup in front of the body."""
    rng = ctx.rng
    d, o = _dom(ctx)
    rest = pose_vector({f"{o}_sh_flex": rng.uniform(20, 40), f"{o}_elbow": rng.uniform(80, 105),
                        f"{d}_sh_flex": 15, f"{d}_elbow": rng.uniform(50, 80), "neck_flex": 10})

    def mouth(_i: int) -> np.ndarray:
        return pose_vector({f"{d}_sh_flex": rng.uniform(40, 65), f"{d}_sh_abd": rng.uniform(5, 30),
                            f"{d}_elbow": rng.uniform(125, 145), f"{d}_sh_rot": rng.uniform(-25, 10),
                            "neck_flex": rng.uniform(-10, 10)}, rest)

    return ActivityMotion(_held(ctx, rest, mouth, hold=(0.3, 1.2)))


def photo(ctx: ActivityContext) -> ActivityMotion:
    """Taking photos: both hands in front of the face, turning to frame a shot, sometimes crouching
    low or aiming high."""
    rng = ctx.rng
    rest = _relaxed(ctx)

    def aim(_i: int) -> np.ndarray:
        tw = rng.uniform(-20, 20)
        p = {"sh_flex": rng.uniform(55, 80), "sh_abd": rng.uniform(15, 35), "elbow": rng.uniform(100, 125),
             "sh_rot": rng.uniform(-20, 5), "neck_flex": rng.uniform(-5, 10), "chest_twist": tw, "neck_twist": tw}
        kind = rng.random()
        if kind < 0.3:   # crouch for a low shot
            p |= {"pitch": rng.uniform(15, 25), "hip_flex": rng.uniform(70, 100), "knee": rng.uniform(85, 120),
                  "spine_flex": 10}
        elif kind < 0.5:  # aim high
            p |= {"sh_flex": rng.uniform(100, 125), "spine_flex": -10, "neck_flex": -25, "elbow": rng.uniform(70, 100)}
        return pose_vector(p)

    return ActivityMotion(_held(ctx, rest, aim, hold=(1.0, 2.5), move=0.8))


def wait(ctx: ActivityContext) -> ActivityMotion:
    """Waiting: standing with weight shifts and a look around, arms crossed, in the pockets, behind
    the back, on the hips, hanging, or checking a watch; changing every few seconds."""
    rng = ctx.rng

    def arms(_i: int) -> np.ndarray:
        return pose_vector(_WAIT_ARMS[str(rng.choice(list(_WAIT_ARMS)))])

    return ActivityMotion(_held(ctx, arms(0), arms, hold=(1.5, 4.0), move=0.8))


def greet(ctx: ActivityContext) -> ActivityMotion:
    """Greeting: a handshake, a bow, opening the arms for an embrace, a nod."""
    rng = ctx.rng
    rest = _relaxed(ctx)

    def greeting(_i: int) -> np.ndarray:
        d, _o = _dom(ctx)
        kind = rng.choice(["handshake", "bow", "embrace", "nod"])
        if kind == "handshake":
            return pose_vector({f"{d}_sh_flex": rng.uniform(40, 60), f"{d}_elbow": rng.uniform(30, 55),
                                f"{d}_sh_abd": rng.uniform(0, 15), "spine_flex": 6, "neck_flex": 5}, rest)
        if kind == "bow":
            dp = rng.uniform(0.5, 1.0) * ctx.style.amplitude
            return pose_vector({"pitch": 18 * dp, "spine_flex": 30 * dp, "chest_flex": 12 * dp, "hip_flex": 25 * dp,
                                "neck_flex": 15, "sh_flex": 5, "elbow": 10})
        if kind == "embrace":
            return pose_vector({"sh_flex": rng.uniform(40, 75), "sh_abd": rng.uniform(35, 70),
                                "elbow": rng.uniform(10, 40), "spine_flex": -3})
        return pose_vector({"neck_flex": rng.uniform(15, 25)}, rest)

    return ActivityMotion(_held(ctx, rest, greeting, hold=(0.5, 1.5)))


def _random_arm(rng: np.random.Generator, side: str) -> dict[str, float]:
    """Any arm pose within the joint limits (slightly favouring lowered arms)."""
    return {f"{side}_sh_flex": rng.uniform(-40, 175) * rng.uniform(0.6, 1.0), f"{side}_sh_abd": rng.uniform(-15, 165),
            f"{side}_sh_rot": rng.uniform(-60, 85), f"{side}_elbow": rng.uniform(0, 145)}


def _random_legs(rng: np.random.Generator) -> dict[str, float]:
    kind = rng.choice(["stand", "wide", "lift", "step"], p=[0.45, 0.2, 0.2, 0.15])
    if kind == "wide":
        return {"hip_abd": rng.uniform(15, 35), "knee": rng.uniform(0, 35), "hip_flex": rng.uniform(0, 25)}
    f, b = ("l", "r") if rng.random() < 0.5 else ("r", "l")
    if kind == "lift":
        return {f"{f}_hip_flex": rng.uniform(40, 100), f"{f}_knee": rng.uniform(20, 120),
                f"{f}_hip_abd": rng.uniform(-5, 30), f"{f}_hip_rot": rng.uniform(-20, 35)}
    if kind == "step":
        return {f"{f}_hip_flex": rng.uniform(30, 70), f"{f}_knee": rng.uniform(30, 80),
                f"{b}_hip_flex": rng.uniform(-20, -5), f"{b}_knee": rng.uniform(5, 35)}
    return {"knee": rng.uniform(0, 10), "hip_abd": rng.uniform(0, 10)}


def pose(ctx: ActivityContext) -> ActivityMotion:
    """Posing: held poses drawn across the joints' ranges (either arm anywhere within its limits,
    trunk bends and twists, a knee lifted, a wide or a split stance), like Human3.6M's Posing."""
    rng = ctx.rng

    def rep(_i: int) -> list[tuple[float, np.ndarray]]:
        p = _random_arm(rng, "l") | _random_arm(rng, "r") | _random_legs(rng)
        p |= {"spine_flex": rng.uniform(-15, 30), "spine_lat": rng.uniform(-20, 20),
              "chest_twist": rng.uniform(-25, 25), "chest_flex": rng.uniform(-10, 20),
              "neck_flex": rng.uniform(-30, 40), "neck_twist": rng.uniform(-50, 50), "pitch": rng.uniform(-5, 12)}
        key = pose_vector(p)
        return [(_tempo(ctx, rng.uniform(0.6, 1.4)), key), (rng.uniform(0.4, 2.0), key)]

    ang = _repeat_keys(ctx, rep, pose_vector())
    return ActivityMotion(_idle(ctx, ang, turn_deg=15.0))


# ----------------------------------------------------------------------------- more exercise and play
def stretch(ctx: ActivityContext) -> ActivityMotion:
    """Warm-up and stretching: overhead side bends, toe touches, a quadriceps stretch on one leg,
    side lunges, trunk rotations, an arm pulled across the chest."""
    rng = ctx.rng
    stand = pose_vector()

    def rep(i: int) -> list[tuple[float, np.ndarray]]:
        d, o = _dom(ctx)
        kind = rng.choice(["side_bend", "toe_touch", "quad", "side_lunge", "rotation", "arm_across"])
        s = 1.0 if d == "r" else -1.0  # bend away from the raised arm
        p = {
            "side_bend": {"spine_lat": s * 22, "chest_lat": s * 18, f"{o}_sh_abd": rng.uniform(150, 170),
                          f"{o}_elbow": 20, "neck_lat": s * 10},
            "toe_touch": {"pitch": rng.uniform(50, 65), "spine_flex": 40, "chest_flex": 20, "hip_flex": 70,
                          "knee": rng.uniform(0, 10), "sh_flex": rng.uniform(100, 140), "neck_flex": 20},
            "quad": {f"{d}_knee": rng.uniform(130, 148), f"{d}_hip_flex": rng.uniform(-15, 5), f"{d}_sh_flex": -30,
                     f"{d}_elbow": 70, f"{o}_sh_abd": rng.uniform(50, 90), f"{o}_elbow": 10},
            "side_lunge": {f"{d}_hip_abd": 40, f"{d}_hip_flex": 50, f"{d}_knee": rng.uniform(70, 100),
                           f"{o}_hip_abd": 30, "pitch": 20, "spine_flex": 10, "sh_flex": 40, "elbow": 60},
            "rotation": {"chest_twist": s * 28, "spine_twist": s * 22, "sh_abd": 85, "elbow": rng.uniform(60, 100),
                         "sh_flex": 10, "neck_twist": s * 30},
            "arm_across": {f"{d}_sh_flex": 90, f"{d}_sh_abd": -15, f"{d}_sh_rot": -40, f"{d}_elbow": 5,
                           f"{o}_sh_flex": 85, f"{o}_elbow": 100, f"{o}_sh_abd": -10},
        }[str(kind)]
        key = pose_vector({k: v * ctx.style.amplitude if k != "pitch" else v for k, v in p.items()})
        return _visit(ctx, stand, key, (0.4, 1.2), 1.0, (1.0, 3.0), 0.9)

    return ActivityMotion(_repeat_keys(ctx, rep, stand))


def dance(ctx: ActivityContext) -> ActivityMotion:
    """Free dancing: stepping to a beat with bouncing knees and hip sway, arms moving through wide,
    smooth random trajectories, the trunk twisting, slow turns."""
    rng, n = ctx.rng, ctx.frames
    phi = _phase(ctx, rng.uniform(0.8, 1.1), 0.03)
    ang = np.tile(pose_vector(), (n, 1))
    A = ctx.style.amplitude
    for side, ph in (("l", phi), ("r", phi + np.pi)):
        lift = _vm(ph, 0.25, 3.0)
        ang[:, DOF[f"{side}_hip_flex"]] = np.radians(5.0 + 25.0 * A * lift)
        ang[:, DOF[f"{side}_knee"]] = np.radians(8.0 + 35.0 * A * lift + 10.0 * (0.5 - 0.5 * np.cos(2 * phi)))
    centre = np.array([rng.uniform(10, 80), rng.uniform(20, 80), rng.uniform(30, 100), rng.uniform(-20, 40)])
    for side in ("l", "r"):
        wander = smooth_noise(rng, n, 4, ctx.fps * 0.45)
        for k, (name, sd) in enumerate((("sh_flex", 45.0), ("sh_abd", 40.0), ("elbow", 35.0), ("sh_rot", 30.0))):
            ang[:, DOF[f"{side}_{name}"]] = np.radians(centre[k] + sd * A * wander[:, k])
    ang[:, DOF["roll"]] = np.radians(5.0 * A * np.sin(phi))
    ang[:, DOF["chest_twist"]] = np.radians(15.0) * smooth_noise(rng, n, 1, ctx.fps * 0.6)[:, 0]
    ang[:, DOF["spine_flex"]] = np.radians(5.0 + 8.0 * smooth_noise(rng, n, 1, ctx.fps * 0.8)[:, 0])
    ang[:, DOF["neck_flex"]] = np.radians(5.0 * np.sin(2 * phi))
    ang[:, DOF["yaw"]] = np.radians(60.0) * smooth_noise(rng, n, 1, ctx.fps * 2.0)[:, 0]
    return ActivityMotion(ang)


ACTIVITIES: dict[str, Callable[[ActivityContext], ActivityMotion]] = {
    "walk": walk, "run": run, "stairs": stairs, "turn": turn,
    "sit": sit, "wave": wave, "gesture": gesture, "reach": reach, "bend": bend, "crouch": crouch,
    "phone": phone, "eat": eat, "photo": photo, "wait": wait, "greet": greet, "pose": pose,
    "squat": squat, "lunge": lunge, "push_up": push_up, "situp": situp, "jump": jump,
    "jumping_jack": jumping_jack, "kick": kick, "stretch": stretch, "dance": dance,
}
