"""The synthetic world end to end: motion -> cameras -> projection, occlusion, detections -> PoseSet;
and on-demand depth maps of any frame.

* :func:`generate` makes a domain's procedural PoseSet.
* :func:`film` is the hook for any motion source: it films given world-frame
  :class:`~auglift.datasets.synthetic.motion.MotionClip` objects with a domain's cameras,
  scene, depth-error model and detector (``generate`` = procedural clips + ``film``).
* :func:`render_depth` renders the depth maps of chosen PoseSet rows: exact (``"true"``),
  as an imperfect metric estimator would see them (``"metric"``) or as affine-invariant
  disparity (``"relative"``).

Everything a frame's depth map needs beyond the PoseSet's own ``kp3d``, intrinsics and image
size is stored as JSON in the clip's ``source`` (``"synthetic:{...}"``): the camera track,
background planes, props, body radii and the depth-error draw. Rendering reads nothing else,
so a PoseSet that was selected, subset or copied still renders the same maps.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from auglift.datasets.synthetic.activities import ACTIVITIES, sample_style, vary_style
from auglift.datasets.synthetic.bodies import (
    body_from_joints,
    joint_radii_from_volume,
    joint_surface_radius,
    sample_body,
)
from auglift.datasets.synthetic.cameras import CameraTrack, follow_track, look_at, round_stored
from auglift.datasets.synthetic.depth_error import (
    SequenceError,
    apply_depth_error,
    depth_severity,
    draw_sequence_error,
    quality_record,
)
from auglift.datasets.synthetic.depth_failures import apply_body_failures, draw_body_failures
from auglift.datasets.synthetic.detections import noise2d_scale, simulate_detections
from auglift.datasets.synthetic.domains import DOMAINS, MIN_SEGMENT_SECONDS, Domain, RigSpec, calibration, get_domain
from auglift.datasets.synthetic.motion import MotionClip, heading_of, procedural_clip
from auglift.datasets.synthetic.render import (
    body_primitives,
    map_intrinsics,
    map_size,
    plane_coefficients,
    ray_first_hit,
    render_true_depth,
)
from auglift.errors import ConfigError, DataError
from auglift.geometry import project
from auglift.poseset import ClipTable, PoseSet, clip_label

__all__ = [
    "FLAVOURS",
    "SOURCE_PREFIX",
    "VISIBILITY_TOLERANCE",
    "ClipScene",
    "decode_source",
    "default_size",
    "film",
    "generate",
    "load_depth_maps",
    "procedural_clips",
    "render_depth",
    "save_depth_maps",
]

SOURCE_PREFIX = "synthetic:"
SOURCE_VERSION = 2  # 2: the error draw holds its severity and calibration (1 is read with the domain's)
FLAVOURS = ("metric", "relative", "true")
VISIBILITY_TOLERANCE = 0.04  # metres: a joint is occluded when something lies > radius + 4 cm in front
_DOMAIN_ID = {name: i for i, name in enumerate(DOMAINS)}


@dataclass(frozen=True)
class ClipScene:
    """What a clip's ``source`` stores: everything besides ``kp3d`` needed to render its frames.

    ``camera``: the camera track (world frame, z up); ``planes``: ``(P, 4)`` background planes
    ``[nx, ny, nz, h]`` (region ``n . X >= h``); ``top``: wall-top height above which the sky
    is seen (``None``: closed room); ``far``: sky depth, metres; ``props``: ``(K, 7)`` world
    capsules; ``capsule_radii``: ``(15,)`` and ``head_radius``: the subject's volume;
    ``error``: the depth-error draw of the sequence.
    """

    domain: str
    seed: int
    seq: int
    view: int
    fps: float
    camera: CameraTrack
    planes: np.ndarray
    top: float | None
    far: float
    props: np.ndarray
    capsule_radii: np.ndarray
    head_radius: float
    error: SequenceError

    def encode(self) -> str:
        d = {"v": SOURCE_VERSION, "domain": self.domain, "seed": self.seed, "seq": self.seq, "view": self.view,
             "fps": self.fps, "camera": self.camera.to_json(), "planes": self.planes.tolist(), "top": self.top,
             "far": self.far, "props": self.props.tolist(), "radii": self.capsule_radii.tolist(),
             "head": self.head_radius, "error": self.error.to_json()}
        return SOURCE_PREFIX + json.dumps(d, separators=(",", ":"))


@functools.lru_cache(maxsize=4096)
def decode_source(source: str) -> ClipScene:
    """Parse a ``"synthetic:{...}"`` clip source (cached). Raises ``ValueError`` if it is not one."""
    if not source.startswith(SOURCE_PREFIX):
        raise ValueError("not a synthetic clip source")
    d = json.loads(source[len(SOURCE_PREFIX):])
    if d.get("v") not in (1, SOURCE_VERSION):
        raise ValueError(f"unsupported synthetic source version {d.get('v')!r}")
    domain = get_domain(str(d["domain"]))
    return ClipScene(str(d["domain"]), int(d["seed"]), int(d["seq"]), int(d["view"]), float(d["fps"]),
                     CameraTrack.from_json(d["camera"]), np.asarray(d["planes"], dtype=np.float64).reshape(-1, 4),
                     None if d["top"] is None else float(d["top"]), float(d["far"]),
                     np.asarray(d["props"], dtype=np.float64).reshape(-1, 7),
                     np.asarray(d["radii"], dtype=np.float64), float(d["head"]),
                     SequenceError.from_json(d["error"], domain.depth))


# ----------------------------------------------------------------------------- cameras and scenes
def _ring(dom: Domain, seed: int) -> list[tuple[CameraTrack, np.ndarray]]:
    """The domain's fixed camera ring: ``(track, [fx, fy, cx, cy])`` per view (one per seed)."""
    rig = dom.rig
    rng = np.random.default_rng([seed, _DOMAIN_ID[dom.name], 7])
    az0 = rng.uniform(0, 2 * np.pi)
    out = []
    for v in range(rig.views):
        az = az0 + 2 * np.pi * v / rig.views + np.radians(rng.normal(0, rig.azimuth_jitter_deg))
        dist = rng.uniform(*rig.distance)
        C = np.array([dist * np.cos(az), dist * np.sin(az), rng.uniform(*rig.heights[v % len(rig.heights)])])
        target = np.array([rng.normal(0, 0.2), rng.normal(0, 0.2), rng.uniform(*rig.target_height)])
        yaw, pitch = look_at(C, target)
        roll = np.radians(rng.normal(0, rig.roll_sd_deg))
        out.append((CameraTrack.static(np.array([*C, yaw, pitch, roll])), _intrinsics(rig, rng)))
    return out


def _intrinsics(rig: RigSpec, rng: np.random.Generator) -> np.ndarray:
    """A camera's drawn ``[fx, fy, cx, cy]`` px (rounded as stored): the rig's focal length and principal point."""
    W, H = rig.image
    f = rig.focal[0] * (1 + rig.focal[1] * rng.normal())
    return round_stored([f, f * (1 + 0.001 * rng.normal()), (W - 1) / 2 + rng.normal(0, rig.principal_sd),
                         (H - 1) / 2 + rng.normal(0, rig.principal_sd)], 3)


def _room(dom: Domain, seed: int) -> tuple[np.ndarray, float | None]:
    rng = np.random.default_rng([seed, _DOMAIN_ID[dom.name], 8])
    sc = dom.scene
    ax, ay = rng.uniform(*sc.half_extent, 2)
    hc = rng.uniform(*sc.ceiling)
    planes = np.array([[0, 0, 1, 0], [0, 0, -1, -hc], [1, 0, 0, -ax], [-1, 0, 0, -ax], [0, 1, 0, -ay],
                       [0, -1, 0, -ay]], dtype=np.float64)
    return round_stored(planes, 4), None


def _plaza(dom: Domain, rng: np.random.Generator, points: np.ndarray) -> tuple[np.ndarray, float]:
    sc = dom.scene
    lo, hi = points[:, :2].min(0), points[:, :2].max(0)
    m = rng.uniform(*sc.margin, 4)
    planes = np.array([[0, 0, 1, 0], [1, 0, 0, lo[0] - m[0]], [-1, 0, 0, -(hi[0] + m[1])],
                       [0, 1, 0, lo[1] - m[2]], [0, -1, 0, -(hi[1] + m[3])]], dtype=np.float64)
    return round_stored(planes, 4), float(round_stored(rng.uniform(*sc.wall_top), 3))


# ----------------------------------------------------------------------------- filming
def _clip_rng(seed: int, dom: Domain, seq: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, _DOMAIN_ID[dom.name], stream, seq])


def film(domain: str, clips: Sequence[MotionClip], seed: int = 0, *, recentre: bool = False,
         depth_quality: str | float = "default", noise2d: float = 1.0, progress: bool = False,
         generator: str = "external") -> PoseSet:
    """Film world-frame motion with a domain's cameras, depth-error model and detector.

    This is the hook for motion sources (the procedural generator, motion capture, ...): each
    :class:`MotionClip` is one sequence; ring domains film it with every camera of the ring
    (``views`` clips), handheld domains with one camera that follows the subject. The clip's
    subject decides the split (the domain's test subjects -> ``"test"``, any other -> ``"train"``).

    Args:
        domain: a name in :data:`DOMAINS`.
        clips: world-frame motion (metres, z up, floor at ``z = 0``); subjects should stand
            within a few metres of the world origin for ring domains (the capture centre).
        seed: seeds cameras, scenes, depth errors and detection noise (with the sequence index).
        recentre: shift each clip horizontally so the middle of its pelvis path is at the world
            origin (for motion capture recorded away from the origin).
        depth_quality: the monocular-depth model's quality, ``"ideal"`` (exact), ``"default"``,
            ``"poor"`` or a severity in [0, 5]; stored in every clip's source (what
            :func:`render_depth` renders by default) and in ``meta["extra"]["synthetic"]["depth_quality"]``.
        noise2d: the 2D detector's noise scale in [0, 5] (0 exact 2D, 1 the calibrated detector): it
            multiplies the noise sd and the outlier and swap rates, the same random draws at every
            scale (:mod:`~auglift.datasets.synthetic.detections`); stored in
            ``meta["extra"]["synthetic"]["noise2d"]``.
        progress: show a progress bar.
        generator: recorded in ``meta["extra"]["synthetic"]["generator"]``.

    Returns:
        A PoseSet with ``kp3d`` (camera frame, metres), ``kp2d`` (simulated detections, px),
        ``conf``, ``kp2d_gt``, ``visible``, ``kp2d_valid`` and a clip table whose ``source``
        re-renders every frame (:func:`render_depth`).
    """
    dom = get_domain(domain)
    if not len(clips):
        raise ConfigError("film: no motion clips given")
    severity = depth_severity(depth_quality)
    scale2d = noise2d_scale(noise2d)
    rig = dom.rig
    ring = _ring(dom, seed) if rig.kind == "ring" else None
    room = _room(dom, seed) if dom.scene.kind == "room" else None
    parts: list[dict[str, np.ndarray]] = []
    cols: dict[str, list] = {k: [] for k in ("subject", "action", "camera", "split", "width", "height",
                                             "intrinsics", "source", "fps")}
    for seq, mc in tqdm(enumerate(clips), total=len(clips), desc=f"synth {domain}", unit="seq", disable=not progress):
        if recentre:
            mid = 0.5 * (mc.joints[:, 0, :2].min(0) + mc.joints[:, 0, :2].max(0))
            shift = np.array([mid[0], mid[1], 0.0])
            props = None if mc.props is None else mc.props - np.concatenate([shift, shift, [0.0]])
            mc = replace(mc, joints=mc.joints - shift, props=props)
        body = mc.body if mc.body is not None else body_from_joints(mc.joints, mc.subject)
        rng = _clip_rng(seed, dom, seq, 2)
        t = np.arange(mc.frames) / mc.fps
        if ring is not None:
            views = [(tr, intr, f"cam{v}") for v, (tr, intr) in enumerate(ring)]
        else:
            intr = _intrinsics(rig, rng)
            bear = np.array([b for b, _ in rig.bearings])
            p = np.array([w for _, w in rig.bearings])
            track = follow_track(mc.joints[:, 0], heading_of(mc.joints), mc.fps, rng,
                                 distance=rng.uniform(*rig.distance), height=rng.uniform(*rig.heights[0]),
                                 bearing=np.radians(rng.choice(bear, p=p / p.sum())), shake_deg=rig.shake_deg)
            views = [(track, intr, "handheld")]
        if room is not None:
            planes, top = room
        else:
            cams = np.concatenate([tr.pose(t)[:, :3] for tr, _, _ in views])
            planes, top = _plaza(dom, rng, np.concatenate([mc.joints[:, 0], cams]))
        props = np.zeros((0, 7)) if mc.props is None else round_stored(mc.props, 4)
        radii = round_stored(body.capsule_radii, 4)
        for v, (track, intr, cam_name) in enumerate(views):
            err = draw_sequence_error(dom.depth, _clip_rng(seed, dom, seq * 16 + v, 3), severity)
            scene = ClipScene(dom.name, seed, seq, v, float(mc.fps), track, planes, top, dom.scene.far, props,
                              radii, float(round_stored(body.head_radius, 4)), err)
            R, tvec, _C = track.extrinsics(t)
            kp3d = (np.einsum("tij,tkj->tki", R, mc.joints) + tvec[:, None, :]).astype(np.float32)
            if (kp3d[..., 2] < 0.1).any():
                bad = int(np.argwhere(kp3d[..., 2] < 0.1)[0][0])
                raise ConfigError(f"film: sequence {seq} ({mc.subject}, {mc.action}) comes within 0.1 m of or "
                                  f"behind camera {cam_name} at frame {bad}; keep subjects near the capture "
                                  "centre (recentre=True) and the world z axis up")
            parts.append(_observe(kp3d, intr, rig.image, scene, R, _C, dom, seed, seq * 16 + v, scale2d))
            for name, value in zip(cols, (mc.subject, mc.action, cam_name, dom.split_of(mc.subject), *rig.image,
                                          intr, scene.encode(), mc.fps)):
                cols[name].append(value)
    n_per = [len(p["kp3d"]) for p in parts]
    fields = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    fields["clip"] = np.repeat(np.arange(len(parts)), n_per).astype(np.int32)
    fields["frame"] = np.concatenate([np.arange(n) for n in n_per]).astype(np.int32)
    clips_tab = ClipTable({**cols, "intrinsics": np.asarray(cols["intrinsics"], dtype=np.float64).reshape(-1, 4),
                           "fps": np.asarray(cols["fps"], dtype=np.float64)})
    meta = {"source": f"synthetic:{dom.name}",
            "extra": {"synthetic": {"domain": dom.name, "like": dom.like, "seed": seed, "version": SOURCE_VERSION,
                                    "generator": generator, "visibility_tolerance_m": VISIBILITY_TOLERANCE,
                                    "depth_quality": quality_record(depth_quality), "noise2d": scale2d,
                                    "calibration": calibration(dom.name)}}}
    return PoseSet(fields, clips_tab, meta)


def _observe(kp3d: np.ndarray, intr: np.ndarray, image: tuple[int, int], scene: ClipScene, R: np.ndarray,
             C: np.ndarray, dom: Domain, seed: int, stream: int, noise2d: float = 1.0) -> dict[str, np.ndarray]:
    """Projection, occlusion (ray casting against the body and props) and detections of one clip."""
    T = len(kp3d)
    W, H = image
    kp = kp3d.astype(np.float64)
    kp2d_gt = project(kp, intr).astype(np.float32)
    props = _props_in_camera(scene.props, R, C)
    prims = body_primitives(kp, np.broadcast_to(scene.capsule_radii, (T, len(scene.capsule_radii))),
                            np.full(T, scene.head_radius), props, up=R[:, :, 2])
    first = ray_first_hit(kp, *prims)
    radius = joint_surface_radius(kp, joint_radii_from_volume(scene.capsule_radii, scene.head_radius),
                                  scene.capsule_radii)
    hidden = first < kp[..., 2] - radius - VISIBILITY_TOLERANCE
    u, v = kp2d_gt[..., 0], kp2d_gt[..., 1]
    inside = (u >= -0.5) & (u <= W - 0.5) & (v >= -0.5) & (v <= H - 0.5) & (kp[..., 2] > 0)
    visible = inside & ~hidden
    det = simulate_detections(kp2d_gt, visible, np.full(T, W), np.full(T, H), np.zeros(T, np.int64),
                              dom.detector, _clip_rng(seed, dom, stream, 4), noise2d)
    return {"kp2d": det.kp2d, "conf": det.conf, "kp3d": kp3d, "kp2d_gt": kp2d_gt, "visible": visible,
            "kp2d_valid": det.valid}


def _props_in_camera(props: np.ndarray, R: np.ndarray, C: np.ndarray) -> np.ndarray | None:
    """World capsules ``(K, 7)`` -> camera frame ``(T, K, 7)`` for extrinsics ``R (T, 3, 3)``, ``C (T, 3)``."""
    if not len(props):
        return None
    ends = np.stack([props[:, 0:3], props[:, 3:6]], axis=1)  # (K, 2, 3)
    cam = np.einsum("tij,tkej->tkei", R, ends[None] - C[:, None, None, :])
    radius = np.broadcast_to(props[:, 6], (len(R), len(props)))[..., None]
    return np.concatenate([cam.reshape(len(R), len(props), 6), radius], axis=-1)


# ----------------------------------------------------------------------------- procedural generation
def generate(domain: str, frames: int, seed: int = 0, *, actions: Sequence[str] | None = None,
             seq_seconds: tuple[float, float] | None = None, depth_quality: str | float = "default",
             noise2d: float = 1.0, progress: bool = False) -> PoseSet:
    """A procedural PoseSet of ``frames`` rows from ``domain`` (``"lab"``, ``"fitness"``, ``"outdoor"``).

    Same arguments -> byte-identical arrays. Sequences cycle through the domain's subjects
    (train and test, split by subject); actions are drawn with the domain's weights.

    Args:
        domain: a name in :data:`DOMAINS`.
        frames: number of PoseSet rows (all views together).
        seed: the world seed.
        actions: restrict to these activities (any of ``activities.ACTIVITIES``); default the
            domain's list.
        seq_seconds: range of sequence durations, seconds (default the domain's).
        depth_quality: ``"ideal"``, ``"default"``, ``"poor"`` or a severity in [0, 5] (see :func:`film`).
        noise2d: the 2D detector's noise scale in [0, 5] (1 = calibrated; see :func:`film`).
        progress: show a progress bar.

    Returns:
        PoseSet: ``kp3d (N, 17, 3)`` float32 absolute camera-frame metres; ``kp2d (N, 17, 2)``
        simulated detections px (NaN on the rare frames without a detection); ``conf (N, 17)``;
        ``kp2d_gt (N, 17, 2)`` px; ``visible (N, 17)`` (inside the image and not occluded);
        ``kp2d_valid (N,)``; clips with intrinsics, image size, subject, action, camera,
        split, fps and a ``source`` that re-renders any frame (:func:`render_depth`).
    """
    clips = procedural_clips(domain, math.ceil(frames / get_domain(domain).rig.views), seed, actions=actions,
                             seq_seconds=seq_seconds)
    ps = film(domain, clips, seed, depth_quality=depth_quality, noise2d=noise2d, progress=progress,
              generator="procedural")
    if len(ps) > frames:
        ps = ps.select(rows=np.arange(frames))
    return ps


def _activity_weights(dom: Domain, actions: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
    if actions is None:
        acts, weights = list(dom.actions), np.array(dom.action_weights)
    else:
        acts = list(actions)
        unknown = [a for a in acts if a not in ACTIVITIES]
        if unknown or not acts:
            raise ConfigError(f"synthetic: unknown activity {unknown[0] if unknown else '(none)'}; "
                              f"known: {', '.join(ACTIVITIES)}")
        weights = np.ones(len(acts))
    return acts, weights / weights.sum()


def procedural_clips(domain: str, frames: int, seed: int = 0, *, actions: Sequence[str] | None = None,
                     seq_seconds: tuple[float, float] | None = None) -> list[MotionClip]:
    """The procedural motion of :func:`generate`: world-frame clips totalling ``frames`` motion frames.

    ``frames`` counts motion frames (a ring domain films each with every camera). Sequences cycle
    through the domain's subjects; ``actions`` and ``seq_seconds`` as in :func:`generate`.
    """
    dom = get_domain(domain)
    if frames < 1:
        raise ConfigError(f"synthetic: frames must be >= 1, got {frames}")
    acts, weights = _activity_weights(dom, actions)
    lo, hi = seq_seconds or dom.seq_seconds
    if not 0 < lo <= hi:
        raise ConfigError(f"synthetic: seq_seconds must satisfy 0 < lo <= hi, got {(lo, hi)}")
    order = dom.subject_order()
    did = _DOMAIN_ID[dom.name]
    bodies = {s: sample_body(np.random.default_rng([seed, did, 0, dom.subjects.index(s)]), s) for s in order}
    styles = {s: sample_style(np.random.default_rng([seed, did, 5, dom.subjects.index(s)])) for s in order}
    clips: list[MotionClip] = []
    total = 0
    while total < frames:
        k = len(clips)
        rng = _clip_rng(seed, dom, k, 1)
        subj = order[k % len(order)]
        n = max(2, round(rng.uniform(lo, hi) * dom.fps))
        n = min(n, frames - total) if frames - total >= 2 else 2
        plan = _activity_plan(dom, acts, weights, n, rng)
        start = rng.uniform(-dom.area, dom.area, 2) if dom.area > 0 else np.zeros(2)
        clips.append(procedural_clip(plan, bodies[subj], vary_style(styles[subj], rng), n, dom.fps, rng,
                                     path=dom.path, heading=rng.uniform(0, 2 * np.pi),
                                     start_xy=(float(start[0]), float(start[1])), loop_radius=dom.loop_radius))
        total += n
    return clips


def _activity_plan(dom: Domain, acts: list[str], weights: np.ndarray, frames: int, rng: np.random.Generator
                   ) -> list[str]:
    """The activities of one sequence: 1, 2, 3, ... (``dom.segments``, as many as fit), consecutive
    ones different; ``sit`` (which places a bench) only alone."""
    fit = max(1, int(frames / (MIN_SEGMENT_SECONDS * dom.fps)))
    count = min(fit, 1 + int(rng.choice(len(dom.segments), p=np.asarray(dom.segments) / sum(dom.segments))))
    plan = [acts[int(rng.choice(len(acts), p=weights))]]
    while len(plan) < count and plan[0] != "sit":
        w = np.array([0.0 if a in ("sit", plan[-1]) else wt for a, wt in zip(acts, weights)])
        if not w.any():
            break
        plan.append(acts[int(rng.choice(len(acts), p=w / w.sum()))])
    return plan


# ----------------------------------------------------------------------------- depth maps
def _scenes(ps: PoseSet, clip_ids: np.ndarray) -> dict[int, ClipScene]:
    out = {}
    for c in clip_ids.tolist():
        src = str(ps.clips.source[c])
        try:
            out[c] = decode_source(src)
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(ps.path, "clips.source",
                            f"clip {c} is not a synthetic-world clip that can be rendered ({exc})") from None
    return out


def default_size(ps: PoseSet, rows: np.ndarray, long_side: int = 256) -> tuple[int, int]:
    """The default map size of rows: ``long_side`` on the long side of their (common) image size."""
    clip = np.asarray(ps.clip[rows])
    sizes = {map_size(int(ps.clips.width[c]), int(ps.clips.height[c]), long_side) for c in np.unique(clip).tolist()}
    if len(sizes) > 1:
        raise DataError(ps.path, "size",
                        f"rows come from images of different shapes ({sorted(sizes)}); pass size=(h, w)")
    return sizes.pop() if sizes else (long_side, long_side)


def render_depth(ps: PoseSet, rows: np.ndarray | Sequence[int], *, size: tuple[int, int] | None = None,
                 flavour: str = "metric", depth_quality: str | float | None = None, batch: int = 128,
                 progress: bool = False, body_out: np.ndarray | None = None) -> np.ndarray:
    """Depth maps of PoseSet rows of the synthetic world, ``(B, h, w)`` float32.

    The map covers the whole image field of view at ``size = (h, w)`` (default: 256 px on the
    image's long side, aspect kept); map pixel ``(u_map, v_map)`` samples the image at
    ``u = (u_map + 0.5) * width / w - 0.5`` (likewise v). Body capsules, head sphere, props,
    floor, walls (and sky, outdoors) are z-buffered.

    Args:
        ps: a PoseSet made by :func:`generate` / :func:`film` (or a selection of one): needs
            ``kp3d`` and synthetic clip sources.
        rows: ``(B,)`` row indices.
        size: map ``(h, w)``; required when rows come from images of different shapes.
        flavour: ``"true"`` exact z-buffer (metres); ``"metric"`` after the monocular-depth error
            model (metres, capped at the model's 20 m range); ``"relative"`` affine-invariant
            disparity (unitless, larger = nearer). Deterministic per frame.
        depth_quality: render the error model at this quality instead of the one each clip was
            generated with: ``"ideal"`` (exact), ``"default"``, ``"poor"`` or a severity in [0, 5]
            (:data:`~auglift.datasets.synthetic.depth_error.DEPTH_QUALITY`); the same random draws
            at every quality, so a sweep varies magnitudes only.
        batch: frames rendered together.
        progress: show a progress bar.
        body_out: optional ``(B, h, w)`` bool array receiving the pixels whose visible surface is
            the body (not props, floor, walls or sky) in the rendered geometry (for ``"metric"`` and
            ``"relative"`` after the depth model's body failures: a lost limb is not body).
    """
    if flavour not in FLAVOURS:
        raise ConfigError(f"render_depth: flavour must be one of {', '.join(FLAVOURS)}, got {flavour!r}")
    ps.require("kp3d", why="depth maps are rendered from the 3D joints")
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if rows.size and (rows.min() < 0 or rows.max() >= len(ps)):
        raise DataError(ps.path, "rows", f"row indices must lie in [0, {len(ps)}), got {rows.min()}..{rows.max()}")
    bad = rows[~np.isfinite(np.asarray(ps.kp3d[rows])).all(axis=(1, 2))]
    if len(bad):
        raise DataError(ps.path, "kp3d", f"row {bad[0]} ({clip_label(ps, int(ps.clip[bad[0]]))}) and {len(bad) - 1} "
                                         "more of these rows are not finite; the maps are rendered from them")
    if size is None:
        size = default_size(ps, rows)
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ConfigError(f"render_depth: size must be positive, got {size}")
    out = np.empty((len(rows), h, w), dtype=np.float32)
    clip_all = np.asarray(ps.clip[rows]).astype(np.int64)
    scenes = _scenes(ps, np.unique(clip_all))
    severity = None if depth_quality is None else depth_severity(depth_quality)
    errors = {c: sc.error if severity is None else sc.error.with_severity(severity) for c, sc in scenes.items()}
    # each batch is rendered in place into its rows of out, with one work buffer for all batches (a fresh
    # buffer per batch cost more in first-touch page faults than the rendering itself)
    work = np.empty((min(len(rows), max(1, batch)), h, w), dtype=np.float32)
    body_work = np.empty(work.shape, dtype=bool) if body_out is None else None
    for s in tqdm(range(0, len(rows), max(1, batch)), desc=f"depth ({flavour})", unit="batch", disable=not progress):
        e = min(len(rows), s + batch)
        body = body_work[: e - s] if body_out is None else body_out[s:e]
        _render_batch(ps, rows[s:e], clip_all[s:e], scenes, errors, flavour, out[s:e], work[: e - s], body)
    return out


@dataclass
class _BatchScene:
    """Per-row scene arrays of a render batch (camera frame): see :func:`render_true_depth`."""

    plane_k: np.ndarray
    props: np.ndarray | None
    radii: np.ndarray
    head: np.ndarray
    far: np.ndarray
    fps: np.ndarray
    up: np.ndarray
    sky: tuple[np.ndarray, np.ndarray, np.ndarray] | None


def _batch_scene(clip: np.ndarray, frame: np.ndarray, scenes: dict[int, ClipScene]) -> _BatchScene:
    B = len(clip)
    ucl = np.unique(clip).tolist()
    P = max(len(scenes[c].planes) for c in ucl)
    K = max(len(scenes[c].props) for c in ucl)
    plane_k, props = np.zeros((B, P, 3)), np.zeros((B, K, 7))
    radii = np.empty((B, len(scenes[ucl[0]].capsule_radii)))
    head, far, fps, up = np.empty(B), np.empty(B), np.empty(B), np.empty((B, 3))
    sky_cz, sky_top = np.zeros(B), np.full(B, np.inf)
    for c in ucl:
        sc = scenes[c]
        m = np.flatnonzero(clip == c)
        R, _tv, C = sc.camera.extrinsics(frame[m] / sc.fps)
        plane_k[m, : len(sc.planes)] = plane_coefficients(sc.planes, R, C)
        if len(sc.props):
            props[m, : len(sc.props)] = _props_in_camera(sc.props, R, C)
        radii[m], head[m], far[m], fps[m], up[m] = sc.capsule_radii, sc.head_radius, sc.far, sc.fps, R[:, :, 2]
        if sc.top is not None:
            sky_cz[m], sky_top[m] = C[:, 2], sc.top
    sky = (up, sky_cz, sky_top) if np.isfinite(sky_top).any() else None
    return _BatchScene(plane_k, props if K else None, radii, head, far, fps, up, sky)


def _render_batch(ps: PoseSet, rows: np.ndarray, clip: np.ndarray, scenes: dict[int, ClipScene],
                  errors: dict[int, SequenceError], flavour: str, z: np.ndarray, work: np.ndarray,
                  body: np.ndarray) -> None:
    """Maps of one batch into ``z (B, h, w)`` float32: geometry, the depth model's body failures, z-buffer,
    map-level errors; ``work`` (float32) and ``body`` (bool, the body's pixels) are ``(B, h, w)`` buffers."""
    size = z.shape[1:]
    kp = np.asarray(ps.kp3d[rows], dtype=np.float64)
    frame = np.asarray(ps.frame[rows], dtype=np.int64)
    intr = map_intrinsics(ps.clips.intrinsics[clip], ps.clips.width[clip], ps.clips.height[clip], size)
    bs = _batch_scene(clip, frame, scenes)
    prims = body_primitives(kp, bs.radii, bs.head, bs.props, up=bs.up)
    boxes = np.empty((len(rows), 4), dtype=np.int64)
    if flavour == "true":
        render_true_depth(size, intr, prims, bs.plane_k, bs.far, bs.sky, boxes_out=boxes, body_out=body, z_out=z)
        return
    errs = [errors[c] for c in clip.tolist()]
    apply_body_failures(prims, kp, draw_body_failures(kp, bs.radii, errs, frame / bs.fps, intr[:, 0], max(size)))
    render_true_depth(size, intr, prims, bs.plane_k, bs.far, bs.sky, boxes_out=boxes, body_out=body, z_out=z)
    apply_depth_error(z, errs, frame, bs.fps, flavour, boxes, body, kp[:, 0, 2], work=work)


def save_depth_maps(ps: PoseSet, out_dir: str | Path, *, flavour: str = "metric", size: tuple[int, int] | None = None,
                    chunk: int = 1000, progress: bool = False) -> Path:
    """Render every row and store the maps as compressed float16 chunks ``out_dir/NNNNNNNN.npz``.

    Each chunk holds ``depth (n, h, w)`` float16 and ``rows (n,)`` int64 (the PoseSet rows).
    Existing chunks are kept, so an interrupted run resumes. Returns ``out_dir``.
    """
    from auglift.io import atomic_write

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    all_rows = np.arange(len(ps))
    size = size or default_size(ps, all_rows)
    for s in tqdm(range(0, len(ps), chunk), desc=f"depth maps ({flavour})", unit="chunk", disable=not progress):
        dest = out / f"{s:08d}.npz"
        if dest.exists():
            continue
        rows = all_rows[s: s + chunk]
        maps = render_depth(ps, rows, size=size, flavour=flavour).astype(np.float16)
        with atomic_write(dest) as fh:
            np.savez_compressed(fh, depth=maps, rows=rows)
    return out


def load_depth_maps(out_dir: str | Path, rows: np.ndarray | Sequence[int]) -> np.ndarray:
    """Read stored maps of ``rows`` back from :func:`save_depth_maps` chunks: ``(B, h, w)`` float32."""
    d = Path(out_dir)
    files = sorted(d.glob("*.npz"))
    if not files:
        raise DataError(d, "depth", "no depth-map chunks (*.npz) found")
    starts = np.array([int(f.stem) for f in files])
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    which = np.searchsorted(starts, rows, side="right") - 1
    result: np.ndarray | None = None
    for i in np.unique(which).tolist():
        if i < 0:
            raise DataError(d, "rows", "row before the first stored chunk")
        with np.load(files[i], allow_pickle=False) as z:
            maps, have = z["depth"], z["rows"]
        m = np.flatnonzero(which == i)
        pos = rows[m] - starts[i]
        if pos.max() >= len(have) or not np.array_equal(have[pos], rows[m]):
            raise DataError(files[i], "rows", "requested rows are not stored in this chunk")
        if result is None:
            result = np.empty((len(rows), *maps.shape[1:]), dtype=np.float32)
        result[m] = maps[pos]
    assert result is not None
    return result
