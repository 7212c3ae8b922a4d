"""The synthetic world's monocular-depth error model: each failure mode moves the statistic it should,
by about its stated magnitude; quality presets and the continuous severity; hands and feet."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np
import pytest

from auglift.datasets.synthetic import bodies, generate, render_depth
from auglift.datasets.synthetic.depth_error import (
    DEPTH_QUALITY,
    SequenceError,
    apply_depth_error,
    depth_severity,
    draw_sequence_error,
)
from auglift.datasets.synthetic.depth_failures import (
    BEHIND,
    LIMB_UNITS,
    SWAP_PAIRS,
    TORSO,
    BodyFailures,
    apply_body_failures,
    draw_body_failures,
    view_of,
)
from auglift.datasets.synthetic.domains import DOMAINS, DepthErrorSpec
from auglift.datasets.synthetic.render import body_primitives
from auglift.datasets.synthetic.world import decode_source
from auglift.errors import ConfigError
from auglift.poseset import ClipTable, PoseSet

SEQ = (0.5, 1.0)  # many short sequences: per-sequence draws average out in small sets
# Every magnitude off: tests switch on one failure mode at a time.
OFF = DepthErrorSpec(log_scale_sd=0.0, shift_sd=0.0, flicker_sd=0.0, field_sd=0.0, frame_field_sd=0.0,
                     white_sd=0.0, blur_frac=0.0, relief=1.0, relief_seq_sd=0.0, relief_frame_sd=0.0,
                     limb_fail_p=(0.0, 0.0), order_swap_p=0.0)


@pytest.fixture(scope="module")
def lab() -> PoseSet:
    return generate("lab", 1200, seed=4, seq_seconds=SEQ)


def _errors(spec: DepthErrorSpec, n: int, severity: float = 1.0, seed: int = 0) -> list[SequenceError]:
    """``n`` sequences' draws (different seeds) of ``spec``."""
    rng = np.random.default_rng(seed)
    return [draw_sequence_error(spec, rng, severity) for _ in range(n)]


# ----------------------------------------------------------------------------- quality presets
def test_ideal_is_exact_and_severity_scales_the_error(lab):
    rows = np.arange(0, len(lab), 50)
    true = render_depth(lab, rows, flavour="true")
    assert np.array_equal(render_depth(lab, rows, depth_quality="ideal"), true)
    absrel = [float(np.mean(np.abs(render_depth(lab, rows, depth_quality=s) - true)[true < 15] / true[true < 15]))
              for s in (0.0, 0.5, 1.0, 2.0)]
    assert absrel[0] == 0.0 and absrel[1] < absrel[2] < absrel[3]
    assert abs(absrel[3] / absrel[2] - 2.0) < 0.6  # magnitudes scale with the severity (about linearly)
    assert lab.meta["extra"]["synthetic"]["depth_quality"] == {"preset": "default", "severity": 1.0}
    assert DEPTH_QUALITY == {"ideal": 0.0, "default": 1.0, "poor": 2.0}
    assert depth_severity("poor") == 2.0 and depth_severity("0.5") == 0.5
    for bad in ("awful", -1.0, 9.0):
        with pytest.raises(ConfigError, match="depth quality"):
            depth_severity(bad)


def test_quality_is_stored_per_clip_and_old_sources_still_render():
    ps = generate("outdoor", 90, seed=2, seq_seconds=(1.0, 1.5), depth_quality="ideal")
    assert ps.meta["extra"]["synthetic"]["depth_quality"] == {"preset": "ideal", "severity": 0.0}
    assert decode_source(str(ps.clips.source[0])).error.severity == 0.0
    rows = np.arange(0, 90, 30)
    assert np.array_equal(render_depth(ps, rows), render_depth(ps, rows, flavour="true"))
    # a version-1 source (flat error fields, no severity) renders with the domain's calibration at severity 1
    d = json.loads(str(ps.clips.source[0])[len("synthetic:"):])
    spec = d["error"].pop("spec")
    d["error"] = d["error"] | {k: spec[k] for k in ("field_sd", "frame_field_sd", "white_sd", "blur_frac",
                                                     "max_depth", "rel_scale_sd", "rel_shift_max")}
    del d["error"]["severity"]
    d["v"] = 1
    old = decode_source("synthetic:" + json.dumps(d))
    assert old.error.severity == 1.0 and old.error.spec == DOMAINS["outdoor"].depth


# ----------------------------------------------------------------------------- map-level failure modes
def test_scale_bias_shifts_the_median_depth_ratio_by_the_bias():
    z = np.full((400, 8, 8), 5.0, dtype=np.float32)
    frame, fps = np.zeros(400, np.int64), np.full(400, 50.0)
    only_bias = replace(OFF, scale_bias=0.1)
    out = apply_depth_error(z.copy(), _errors(only_bias, 400), frame, fps, "metric")
    np.testing.assert_allclose(out / 5.0, np.exp(0.1), rtol=1e-6)
    for name, dom in DOMAINS.items():  # with every other error on, over many sequences
        out = apply_depth_error(z.copy(), _errors(dom.depth, 400, seed=1), frame, fps, "metric")
        ratio = np.median(out.reshape(400, -1), axis=1) / 5.0
        assert abs(np.log(np.median(ratio)) - dom.depth.scale_bias) < 0.02, name
    poor = apply_depth_error(z[:10].copy(), _errors(only_bias, 10, severity=2.0), frame[:10], fps[:10], "metric")
    np.testing.assert_allclose(poor / 5.0, np.exp(0.2), rtol=1e-6)


def test_relief_compression_shrinks_the_body_depth_spread_by_the_factor():
    B = 300
    ramp = np.linspace(-0.25, 0.25, 16, dtype=np.float32)
    z = np.full((B, 16, 16), 9.0, dtype=np.float32)
    z[:, 4:12, :] = 5.0 + ramp[None, None, :]  # a body whose depth spans 50 cm about the pelvis at 5 m
    body = np.zeros(z.shape, bool)
    body[:, 4:12, :] = True
    frame, fps = np.arange(B), np.full(B, 50.0)

    def spread(maps: np.ndarray) -> np.ndarray:
        return maps[:, 4:12, :].std(axis=(1, 2)) / z[:, 4:12, :].std(axis=(1, 2))

    fixed = replace(OFF, relief=0.6)
    out = apply_depth_error(z.copy(), _errors(fixed, B), frame, fps, "metric", body=body, z_ref=np.full(B, 5.0))
    np.testing.assert_allclose(spread(out), 0.6, rtol=1e-5)
    assert np.all(out[:, :4] == 9.0)  # the background keeps its depth
    out = apply_depth_error(z.copy(), _errors(fixed, B, severity=2.0), frame, fps, "metric", body=body,
                            z_ref=np.full(B, 5.0))
    np.testing.assert_allclose(spread(out), 0.36, rtol=1e-5)
    varying = replace(OFF, relief=0.75, relief_seq_sd=0.1, relief_frame_sd=0.1)
    out = apply_depth_error(z.copy(), _errors(varying, B), frame, fps, "metric", body=body, z_ref=np.full(B, 5.0))
    k = spread(out)
    assert abs(np.log(np.median(k)) - np.log(0.75)) < 0.04 and 0.1 < np.log(k).std() < 0.2


def test_relief_is_flattened_in_the_rendered_world(lab):
    rows = np.arange(0, len(lab), 12)
    h, w = 128, 128
    body = np.zeros((len(rows), h, w), bool)
    true = render_depth(lab, rows, size=(h, w), flavour="true", body_out=body)
    relief_only = replace(DOMAINS["lab"].depth, **{k: getattr(OFF, k) for k in (
        "log_scale_sd", "shift_sd", "flicker_sd", "field_sd", "frame_field_sd", "white_sd", "blur_frac",
        "limb_fail_p", "order_swap_p")}, scale_bias=0.0, relief_seq_sd=0.0, relief_frame_sd=0.0, relief=0.7)
    ps = _with_spec(lab, relief_only)
    est = render_depth(ps, rows, size=(h, w))
    zr = lab.kp3d[rows, 0, 2][:, None, None]
    ratio = [np.std(est[i][body[i]] - zr[i, 0, 0]) / np.std(true[i][body[i]] - zr[i, 0, 0])
             for i in range(len(rows)) if body[i].sum() > 20]
    assert abs(np.median(ratio) - 0.7) < 0.02


def _with_spec(ps: PoseSet, spec: DepthErrorSpec) -> PoseSet:
    """``ps`` with every clip's depth-error calibration replaced by ``spec`` (same draws)."""
    sources = []
    for src in ps.clips.source.tolist():
        d = json.loads(src[len("synthetic:"):])
        d["error"]["spec"] = json.loads(json.dumps(asdict(spec)))
        sources.append("synthetic:" + json.dumps(d))
    out = ps.select(rows=np.arange(len(ps)))
    out.clips = ClipTable(dict(out.clips.columns, source=np.array(sources)))
    return out


# ----------------------------------------------------------------------------- body-level failure modes
def _replicated(lab: PoseSet, spec: DepthErrorSpec, copies: int, severity: float = 1.0):
    """Every frame of ``lab`` under ``copies`` independent sequence draws: kp, radii, errors, t."""
    kp = np.tile(lab.kp3d.astype(np.float64), (copies, 1, 1))
    scenes = [decode_source(str(s)) for s in lab.clips.source.tolist()]
    radii = np.tile(np.stack([scenes[c].capsule_radii for c in lab.clip]), (copies, 1))
    errors = [e for k in range(copies)
              for e in (replace(scenes[c].error, seed=scenes[c].error.seed * 7919 + k, spec=spec, severity=severity)
                        for c in lab.clip)]
    t = np.tile(lab.frame / 50.0, copies)
    focal = np.tile(lab.clips.intrinsics[lab.clip, 0], copies)
    return kp, radii, errors, t, focal


def test_thin_limb_failure_rate_matches_its_probability(lab):
    spec = DOMAINS["lab"].depth
    kp, radii, errors, t, focal = _replicated(lab, spec, 12)
    f = draw_body_failures(kp, radii, errors, t, focal, 1000.0)
    failed = f.limb != 0
    for k in range(4):
        p = f.limb_p[:, k].mean()
        n = len(failed) / (spec.event_seconds * 50.0)  # independent events: one draw per block of ~15 frames
        assert abs(failed[:, k].mean() - p) < 4 * np.sqrt(p * (1 - p) / n) + 0.005, k
    arms = f.limb[:, :2][failed[:, :2]]
    assert abs(np.mean(arms == TORSO) - spec.limb_torso_share) < 0.15 and np.all(f.limb[:, 2:][failed[:, 2:]] == BEHIND)
    # thinner limbs (farther away or seen smaller) fail more often: p falls with the image width
    width = 2 * radii[:, LIMB_UNITS[0][2]] * focal / kp[:, [12, 13], 2].mean(1) / 1000.0
    assert np.corrcoef(width, f.limb_p[:, 0])[0, 1] < -0.5
    assert np.all(draw_body_failures(kp, radii, [e.with_severity(0.0) for e in errors], t, focal, 1000.0).limb == 0)


def test_lost_limbs_move_along_their_rays_or_vanish(lab):
    rows = np.arange(0, len(lab), 97)
    kp = lab.kp3d[rows].astype(np.float64)
    scenes = [decode_source(str(lab.clips.source[c])) for c in lab.clip[rows]]
    radii = np.stack([s.capsule_radii for s in scenes])
    prims = body_primitives(kp, radii, np.array([s.head_radius for s in scenes]),
                            up=np.tile([0.0, -1.0, 0.0], (len(rows), 1)))
    before = tuple(x.copy() for x in prims)
    fail = np.zeros((len(rows), 4), np.int8)
    fail[:, 0], fail[:, 3] = TORSO, BEHIND
    apply_body_failures(prims, kp, BodyFailures(fail, np.zeros((len(rows), 2), bool), np.zeros((len(rows), 4)),
                                                np.zeros((len(rows), 2))))
    a, b, r = prims
    arm = list(LIMB_UNITS[0][0])
    np.testing.assert_allclose(a[:, arm, :2] / a[:, arm, 2:], before[0][:, arm, :2] / before[0][:, arm, 2:], atol=1e-12)
    centre = 0.5 * (a[:, arm, 2] + b[:, arm, 2]).mean(1)
    np.testing.assert_allclose(centre, kp[:, [0, 7, 8], 2].mean(1), atol=1e-9)  # at the trunk's depth
    assert np.all(r[:, list(LIMB_UNITS[3][0])] == 0.0)  # the right lower leg is gone
    untouched = [i for i in range(a.shape[1]) if i not in arm + list(LIMB_UNITS[3][0])]
    assert np.array_equal(a[:, untouched], before[0][:, untouched])


def test_order_swaps_happen_more_in_side_and_back_views(lab):
    spec = DOMAINS["lab"].depth
    kp, radii, errors, t, focal = _replicated(lab, spec, 4)
    f = draw_body_failures(kp, radii, errors, t, focal, 1000.0)
    view = view_of(kp)
    assert {0, 1, 2} <= set(view.tolist())
    rate = {v: f.swap[view == v].mean() for v in (0, 1, 2)}
    assert rate[1] > 1.5 * rate[0] and rate[2] > 1.5 * rate[0]
    assert abs(f.swap.mean() - f.swap_p.mean()) < 0.02  # realised at the drawn probability
    # a swap exchanges the two arms' depths and keeps their outlines in the image
    rows = np.flatnonzero(f.swap[:, 0])[:20]
    heads = np.array([decode_source(str(lab.clips.source[c])).head_radius for c in lab.clip[rows % len(lab)]])
    prims = body_primitives(kp[rows], radii[rows], heads, up=np.tile([0.0, -1.0, 0.0], (len(rows), 1)))
    a0, b0 = prims[0].copy(), prims[1].copy()
    swap = np.zeros((len(rows), 2), bool)
    swap[:, 0] = True
    apply_body_failures(prims, kp[rows], BodyFailures(np.zeros((len(rows), 4), np.int8), swap,
                                                      np.zeros((len(rows), 4)), np.zeros((len(rows), 2))))
    left, right = list(SWAP_PAIRS[0][0]), list(SWAP_PAIRS[0][1])

    def depth(a: np.ndarray, b: np.ndarray, idx: list[int]) -> np.ndarray:
        return 0.5 * (a[:, idx, 2] + b[:, idx, 2]).mean(1)

    np.testing.assert_allclose(depth(prims[0], prims[1], left), depth(a0, b0, right), rtol=1e-9)
    np.testing.assert_allclose(depth(prims[0], prims[1], right), depth(a0, b0, left), rtol=1e-9)
    np.testing.assert_allclose(prims[0][:, left, :2] / prims[0][:, left, 2:], a0[:, left, :2] / a0[:, left, 2:],
                               atol=1e-12)


# ----------------------------------------------------------------------------- hands and feet
def _disk_on_body(ps: PoseSet, rows: np.ndarray, joints: list[int], radius_px: float) -> float:
    h = w = 128
    body = np.zeros((len(rows), h, w), bool)
    render_depth(ps, rows, size=(h, w), flavour="true", body_out=body)
    vv, uu = np.mgrid[0:h, 0:w]
    s = w / 1000.0
    out = []
    for i, r in enumerate(rows):
        for j in joints:
            if ps.visible[r, j]:
                u, v = (ps.kp2d_gt[r, j] + 0.5) * s - 0.5
                out.append(body[i][(uu - u) ** 2 + (vv - v) ** 2 <= (radius_px * s) ** 2].mean())
    return float(np.mean(out))


def test_hands_and_feet_put_wrist_and_ankle_disks_on_the_body(lab, monkeypatch):
    rows = np.arange(0, len(lab), 10)
    with_ext = [_disk_on_body(lab, rows, j, 16.0) for j in ([13, 16], [3, 6])]
    monkeypatch.setattr(bodies, "_HAND_RADIUS", 0.0)
    monkeypatch.setattr(bodies, "_FOOT_RADIUS", 0.0)
    without = [_disk_on_body(lab, rows, j, 16.0) for j in ([13, 16], [3, 6])]
    assert with_ext[0] > without[0] + 0.08 and with_ext[1] > without[1] + 0.08
    assert with_ext[0] > 0.7 and with_ext[1] > 0.7


def test_feet_rest_flat_near_the_floor_when_standing():
    from auglift.datasets.synthetic.activities import sample_style
    from auglift.datasets.synthetic.motion import procedural_clip

    rng = np.random.default_rng(3)
    body, style = bodies.sample_body(rng, "S1"), sample_style(rng)
    clip = procedural_clip("gesture", body, style, 100, 50.0, rng)
    a, b, r = bodies.extremity_capsules(clip.joints, np.tile(body.capsule_radii, (100, 1)),
                                        np.tile([0.0, 0.0, 1.0], (100, 1)))
    sole = np.minimum(a[:, 2:, 2], b[:, 2:, 2]) - r[:, 2:]  # lowest point of each foot, metres above the floor
    assert np.all(np.abs(np.median(sole, axis=0)) < 0.03)
    assert np.all(np.abs(a[:, 2:, 2] - b[:, 2:, 2]).mean(0) < 0.05)  # about level
    hand_len = np.linalg.norm(b[:, :2] - clip.joints[:, [13, 16]], axis=-1) + r[:, :2]
    assert np.all((0.12 < hand_len) & (hand_len < 0.2))
