"""The domains of the synthetic world and every calibration value they use.

Three domains differ the way the real benchmarks do (``shared/DESIGN.md``, "Calibrating the
embedded world's error models"):

* ``lab`` (Human3.6M-like): a fixed ring of 4 cameras at chest height 4.6-5.8 m from the
  capture centre, ~1145 px focal length, 1000x1000 frames, 50 fps, everyday actions;
* ``fitness`` (Fit3D-like): 4 cameras at several heights (0.3-0.6 m up to 2.6-3.0 m), 900x900,
  ~1000 px, 3.2-4.5 m, exercise and floor poses (push-ups, sit-ups, lunges, jumps);
* ``outdoor`` (3DPW-like): one handheld phone following the subject, 1080x1920 portrait,
  ~1960 px, subject ~2.6-4.8 m away (mean ~3.7 m), 30 fps, walking/stairs-like motion,
  an open plaza whose distant walls and sky saturate the depth model's range.

Each domain has train/test subjects (split by subject). :func:`calibration` returns all values
as a plain dict (stored in the PoseSet's ``meta["extra"]["synthetic"]`` and in the README).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace

__all__ = ["DOMAINS", "MIN_SEGMENT_SECONDS", "DepthErrorSpec", "DetectorSpec", "Domain", "RigSpec", "SceneSpec",
           "calibration", "detector_replaced", "get_domain"]


@dataclass(frozen=True)
class RigSpec:
    """Camera set-up.

    ``kind``: ``"ring"`` (static cameras around the capture centre, every sequence filmed by all
    ``views``) or ``"handheld"`` (one moving camera per sequence that follows the subject).
    ``image``: ``(width, height)`` px. ``focal``: ``(mean px, relative sd)``. ``principal_sd``: px
    offset of the principal point from the image centre. ``distance``: metres, ring radius or
    follow distance. ``heights``: camera height ranges (metres), one per view for rings.
    ``target_height``: height the ring cameras aim at (metres). ``bearings``: follow directions
    (degrees from the subject's facing direction) with probabilities. ``shake_deg``: hand-shake
    amplitude range (degrees).
    """

    kind: str
    views: int
    image: tuple[int, int]
    focal: tuple[float, float]
    principal_sd: float
    distance: tuple[float, float]
    heights: tuple[tuple[float, float], ...]
    target_height: tuple[float, float] = (1.0, 1.0)
    azimuth_jitter_deg: float = 10.0
    roll_sd_deg: float = 0.5
    bearings: tuple[tuple[float, float], ...] = ()
    shake_deg: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class SceneSpec:
    """Background: ``"room"`` (box around the camera ring: half extents and ceiling height ranges,
    metres) or ``"plaza"`` (open ground with walls ``margin`` metres beyond the walked area and
    cameras, wall tops at ``wall_top`` metres, sky at ``far`` metres)."""

    kind: str
    half_extent: tuple[float, float] = (6.0, 8.0)
    ceiling: tuple[float, float] = (3.2, 4.0)
    margin: tuple[float, float] = (5.0, 20.0)
    wall_top: tuple[float, float] = (6.0, 25.0)
    far: float = 100.0


@dataclass(frozen=True)
class DepthErrorSpec:
    """Monocular-depth error model (imitates Depth Anything V2 metric, Hypersim ViT-L, on people).

    Every magnitude below is the ``default`` quality; a sequence's ``severity`` (0 = exact depth,
    1 = default, 2 = ``poor``; :data:`~auglift.datasets.synthetic.depth_error.DEPTH_QUALITY`)
    multiplies all of them (log-scale terms, metres, pixels and probabilities alike).

    Steps, in order, for a frame:

    1. **Thin limbs** (per event of ``event_seconds``): a forearm + hand (or shank + foot) is
       lost with probability ``limb_fail_p[arm, leg] x (limb_fail_width / width)`` (``width``:
       the limb's image width as a fraction of the long side; thinner limbs fail more often,
       at most 3x). A lost arm is merged into the torso (placed at the trunk's depth, share
       ``limb_torso_share``) or into what lies behind it (removed); a lost leg into what lies
       behind it.
    2. **Order swaps** (per event): when the two arms (or legs) overlap in the image, their
       depths are exchanged with probability ``order_swap_p``, times ``swap_view_factor[0]`` in
       side views and ``[1]`` in back views (the viewer-facing angle of the trunk > 45 deg /
       > 135 deg).
    3. **Relief**: body pixels ``z -> z_pelvis + k (z - z_pelvis)``, ``log k ~ N(log relief,
       relief_seq_sd)`` per sequence plus ``N(0, relief_frame_sd)`` per frame.
    4. **Scale, fields, noise, blur** (after an edge blur of ``blur_frac`` x image long side)::

        z_est = clip(blur(z) * exp(scale_bias + s_seq + s_t + F_clip + F_t + e) + shift, 0.05, max_depth)

       ``scale_bias``: the domain's systematic log-scale bias; ``s_seq ~ N(0, log_scale_sd)`` per
       sequence; ``s_t`` a slow flicker (three sinusoids, total sd ``flicker_sd``);
       ``F_clip``/``F_t`` smooth multiplicative fields (sd ``field_sd`` per sequence,
       ``frame_field_sd`` per frame); ``e`` per-pixel noise (sd ``white_sd``); ``shift ~ N(0,
       shift_sd)`` metres per sequence.

    The relative flavour is the disparity ``1 / z_est`` under an unknown per-frame affine map
    ``a / z_est + c`` (``log a ~ N(0.5, rel_scale_sd)``, ``c = a * U(0, rel_shift_max)``): that is
    what a relative model is, not an error, so it does not scale with severity.

    Sources of the values (README, "The embedded synthetic world", has the table): the scale and
    field magnitudes follow ``shared/DESIGN.md`` (AbsRel ~0.05 in domain, 5-20% per-image scale
    error out of domain); a constant metric offset of this model on people was reported in the
    model's issue tracker (Depth-Anything-V2 issue #127: Hypersim ViT-L on Azure Kinect footage,
    estimates a median 0.87 m too far, the same offset across scenes), which motivates a
    per-domain ``scale_bias``, but its per-domain signs and sizes are guesses inside the 5-20%
    band. ``relief``, the thin-limb and order-swap rates and ``event_seconds`` are guesses: no
    published per-body-part evaluation of this model on people was found.
    """

    log_scale_sd: float
    shift_sd: float
    flicker_sd: float
    field_sd: float
    frame_field_sd: float
    white_sd: float
    blur_frac: float
    max_depth: float = 20.0
    rel_scale_sd: float = 0.5
    rel_shift_max: float = 0.1
    scale_bias: float = 0.0
    relief: float = 0.8
    relief_seq_sd: float = 0.1
    relief_frame_sd: float = 0.1
    limb_fail_p: tuple[float, float] = (0.05, 0.02)
    limb_fail_width: float = 0.015
    limb_torso_share: float = 0.5
    order_swap_p: float = 0.08
    swap_view_factor: tuple[float, float] = (2.0, 3.0)
    event_seconds: float = 0.3


@dataclass(frozen=True)
class DetectorSpec:
    """2D detector error model (imitates RTMPose-class detectors, COCO joints converted to H36M-17).

    Noise sd per joint = ``sigma_frac`` x person height in px x ``joint_factor[j]``, times
    ``occluded_factor`` for self-occluded joints, ``truncated_factor`` outside the image and up
    to ``1 + border_gain`` near the image border; a share ``white_share`` of its variance is white
    (new every frame), the rest temporally smooth (Gaussian over 1.5 frames). Outliers
    (displaced by ``outlier_range`` x person height) with probability ``outlier_p`` (visible) /
    ``outlier_p_occluded``. Left/right swaps start with probability ``swap_p`` per frame (x
    ``back_view_factor`` when the subject faces away), lasting ``swap_len`` frames.
    Confidence = sigmoid(base logit [visible, occluded, truncated] - ``conf_err_slope`` x error /
    nominal sd + ``conf_noise`` x unit noise with the positions' temporal model); a fraction
    ``overconfident_p`` of outliers keep a visible-joint confidence. Pelvis, spine and thorax follow
    the COCO rule (mean of hips, mean of shoulders, mean of both). Frames with fewer than
    ``min_joints`` joints inside the image have no detection (``kp2d`` NaN, ``kp2d_valid`` False).
    """

    sigma_frac: float
    outlier_p: float
    outlier_p_occluded: float
    swap_p: float
    occluded_factor: float = 2.5
    truncated_factor: float = 3.0
    border_gain: float = 1.0
    outlier_range: tuple[float, float] = (0.08, 0.35)
    swap_len: tuple[int, int] = (2, 8)
    back_view_factor: float = 3.0
    conf_logits: tuple[float, float, float] = (2.6, 0.0, -2.0)
    conf_err_slope: float = 0.45
    conf_noise: float = 0.6
    # Measured: MediaPipe Pose run on every frame of real 60 fps lab video (4 views, 100 frames each)
    # jitters by a median second difference of 0.40-0.59 % of the person's height a frame (true motion
    # included); 0.01 gives the world's lab 0.44 %, the views' median (0.5 gave 1.78 %). README, "The
    # detector's jitter".
    white_share: float = 0.01
    overconfident_p: float = 0.3
    min_joints: int = 6
    joint_factor: tuple[float, ...] = (1.0, 1.4, 1.0, 1.1, 1.4, 1.0, 1.1, 1.0, 1.0, 0.7, 0.8,
                                       0.9, 1.0, 1.25, 0.9, 1.0, 1.25)


MIN_SEGMENT_SECONDS = 2.0  # a sequence has as many activities as fit (at most its draw from ``segments``)


@dataclass(frozen=True)
class Domain:
    """A domain: who moves how, filmed by which cameras, seen by which depth model and detector.

    ``segments``: probabilities that a sequence performs 1, 2, 3, ... activities one after the
    other (cross-faded; a ``sit`` sequence has one; at least ``MIN_SEGMENT_SECONDS`` each).
    """

    name: str
    like: str
    description: str
    fps: float
    actions: tuple[str, ...]
    action_weights: tuple[float, ...]
    train_subjects: tuple[str, ...]
    test_subjects: tuple[str, ...]
    seq_seconds: tuple[float, float]
    path: str
    area: float
    rig: RigSpec
    scene: SceneSpec
    depth: DepthErrorSpec
    detector: DetectorSpec
    loop_radius: tuple[float, float] = (1.0, 1.8)
    segments: tuple[float, ...] = (0.45, 0.35, 0.2)

    @property
    def subjects(self) -> tuple[str, ...]:
        return self.train_subjects + self.test_subjects

    def split_of(self, subject: str) -> str:
        return "test" if subject in self.test_subjects else "train"

    def subject_order(self) -> list[str]:
        """Subjects in the order sequences cycle through them (test subjects spread out, the first second)."""
        n, nt = len(self.subjects), len(self.test_subjects)
        test_pos = {1 + round(i * (n - 1) / nt) for i in range(nt)} if nt else set()
        tr, te = list(self.train_subjects), list(self.test_subjects)
        return [te.pop(0) if (i in test_pos and te) or not tr else tr.pop(0) for i in range(n)]


DOMAINS: dict[str, Domain] = {
    "lab": Domain(
        name="lab", like="Human3.6M",
        description="fixed 4-camera ring at chest height, 1000x1000, f~1145 px, everyday actions",
        fps=50.0,
        actions=("walk", "gesture", "sit", "wave", "reach", "bend", "crouch", "turn", "phone", "eat", "photo", "wait",
                 "greet", "pose"),
        action_weights=(0.14, 0.09, 0.10, 0.05, 0.08, 0.06, 0.05, 0.05, 0.08, 0.06, 0.06, 0.07, 0.05, 0.06),
        train_subjects=("L1", "L2", "L3", "L4", "L5"), test_subjects=("L6", "L7"),
        seq_seconds=(8.0, 20.0), path="loop", area=0.4, loop_radius=(0.8, 1.4),
        rig=RigSpec(kind="ring", views=4, image=(1000, 1000), focal=(1145.0, 0.004), principal_sd=4.0,
                    distance=(4.6, 5.8), heights=((1.4, 1.7),) * 4, target_height=(0.9, 1.1),
                    azimuth_jitter_deg=10.0, roll_sd_deg=0.5),
        scene=SceneSpec(kind="room", half_extent=(6.5, 8.0), ceiling=(3.2, 4.0), far=100.0),
        depth=DepthErrorSpec(log_scale_sd=0.06, shift_sd=0.03, flicker_sd=0.015, field_sd=0.015,
                             frame_field_sd=0.008, white_sd=0.005, blur_frac=0.003, scale_bias=0.03, relief=0.8),
        detector=DetectorSpec(sigma_frac=0.012, outlier_p=0.015, outlier_p_occluded=0.06, swap_p=0.003),
    ),
    "fitness": Domain(
        name="fitness", like="Fit3D",
        description="4 cameras at low to high viewpoints, 900x900, f~1000 px, exercises and floor poses",
        fps=50.0,
        actions=("squat", "lunge", "push_up", "situp", "jump", "jumping_jack", "kick", "bend", "stretch", "pose"),
        action_weights=(0.12, 0.11, 0.10, 0.09, 0.09, 0.09, 0.10, 0.08, 0.12, 0.10),
        train_subjects=("F1", "F2", "F3", "F4", "F5", "F6"), test_subjects=("F7", "F8"),
        seq_seconds=(6.0, 16.0), path="loop", area=0.4,
        rig=RigSpec(kind="ring", views=4, image=(900, 900), focal=(1000.0, 0.01), principal_sd=5.0,
                    distance=(3.2, 4.5), heights=((0.3, 0.6), (1.0, 1.4), (1.9, 2.3), (2.6, 3.0)),
                    target_height=(0.5, 0.8), azimuth_jitter_deg=15.0, roll_sd_deg=0.8),
        scene=SceneSpec(kind="room", half_extent=(4.8, 6.0), ceiling=(3.0, 3.5), far=100.0),
        depth=DepthErrorSpec(log_scale_sd=0.09, shift_sd=0.05, flicker_sd=0.02, field_sd=0.025,
                             frame_field_sd=0.012, white_sd=0.006, blur_frac=0.004, scale_bias=-0.05, relief=0.75),
        detector=DetectorSpec(sigma_frac=0.014, outlier_p=0.025, outlier_p_occluded=0.08, swap_p=0.005),
    ),
    "outdoor": Domain(
        name="outdoor", like="3DPW",
        description="handheld moving phone, 1080x1920 portrait, f~1960 px, subject ~3.7 m, walking/stairs-like",
        fps=30.0,
        actions=("walk", "run", "stairs", "turn", "wave", "reach", "sit", "gesture", "phone", "photo", "wait", "dance"),
        action_weights=(0.20, 0.08, 0.10, 0.06, 0.07, 0.06, 0.08, 0.10, 0.08, 0.06, 0.06, 0.05),
        train_subjects=("O1", "O2", "O3", "O4", "O5"), test_subjects=("O6", "O7"),
        seq_seconds=(10.0, 30.0), path="wander", area=0.0,
        rig=RigSpec(kind="handheld", views=1, image=(1080, 1920), focal=(1960.0, 0.02), principal_sd=8.0,
                    distance=(2.6, 4.8), heights=((1.25, 1.7),),
                    bearings=((0.0, 0.35), (45.0, 0.15), (-45.0, 0.15), (90.0, 0.1), (-90.0, 0.1),
                              (180.0, 0.15)),
                    shake_deg=(0.15, 0.6)),
        scene=SceneSpec(kind="plaza", margin=(4.0, 20.0), wall_top=(5.0, 25.0), far=100.0),
        depth=DepthErrorSpec(log_scale_sd=0.12, shift_sd=0.08, flicker_sd=0.03, field_sd=0.035,
                             frame_field_sd=0.015, white_sd=0.008, blur_frac=0.004, scale_bias=0.10, relief=0.7),
        detector=DetectorSpec(sigma_frac=0.013, outlier_p=0.02, outlier_p_occluded=0.07, swap_p=0.004),
    ),
}


def get_domain(name: str) -> Domain:
    """The :class:`Domain` called ``name`` (``KeyError`` listing the known ones otherwise)."""
    try:
        return DOMAINS[name]
    except KeyError:
        raise KeyError(f"unknown synthetic domain {name!r}; known: {', '.join(DOMAINS)}") from None


def calibration(name: str) -> dict:
    """All calibration values of a domain as a JSON-serialisable dict (tuples become lists)."""
    return json.loads(json.dumps(asdict(get_domain(name))))


@contextlib.contextmanager
def detector_replaced(names: Iterable[str], **fields: float) -> Iterator[None]:
    """Within the block, the domains ``names`` have their :class:`DetectorSpec` ``fields`` replaced (worlds
    generated in this process see them, e.g. an experiment without the confidence's noise); restored after."""
    saved = {n: get_domain(n) for n in names}
    try:
        for n, dom in saved.items():
            DOMAINS[n] = replace(dom, detector=replace(dom.detector, **fields))
        yield
    finally:
        DOMAINS.update(saved)
