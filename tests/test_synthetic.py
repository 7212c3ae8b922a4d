"""The embedded synthetic world: determinism, physical plausibility, occlusion, detections, domains."""

from __future__ import annotations

import numpy as np
import pytest

from auglift.datasets.synthetic import DOMAINS, calibration, generate, render_depth
from auglift.datasets.synthetic.activities import ACTIVITIES, sample_style
from auglift.datasets.synthetic.bodies import (
    body_from_joints,
    joint_radii_from_volume,
    joint_surface_radius,
    sample_body,
)
from auglift.datasets.synthetic.kinematics import DOF, LIMITS
from auglift.datasets.synthetic.motion import MotionClip, procedural_clip
from auglift.datasets.synthetic.world import VISIBILITY_TOLERANCE, decode_source, film
from auglift.geometry import project
from auglift.poseset import PoseSet
from auglift.skeleton import H36M17

SEQ = (2.0, 3.5)  # short sequences: every subject and both splits appear in small sets


@pytest.fixture(scope="module")
def worlds() -> dict[str, PoseSet]:
    return {d: generate(d, 2400, seed=11, seq_seconds=SEQ) for d in DOMAINS}


@pytest.fixture(scope="module")
def clips() -> dict[str, MotionClip]:
    """One procedural clip per activity (the same subject)."""
    rng = np.random.default_rng(5)
    body, style = sample_body(rng, "S1"), sample_style(rng)
    return {a: procedural_clip(a, body, style, 400, 50.0, np.random.default_rng(i), path="wander")
            for i, a in enumerate(ACTIVITIES)}


# ----------------------------------------------------------------------------- determinism and format
def test_same_seed_gives_byte_identical_output(tmp_path):
    a = generate("outdoor", 500, seed=3, seq_seconds=SEQ)
    b = generate("outdoor", 500, seed=3, seq_seconds=SEQ)
    c = generate("outdoor", 500, seed=4, seq_seconds=SEQ)
    assert sorted(a.fields) == sorted(b.fields)
    for name, arr in a.fields.items():
        assert arr.tobytes() == b.fields[name].tobytes(), name
    for name, col in a.clips.columns.items():
        assert np.array_equal(col, b.clips.columns[name]), name
    assert a.kp3d.tobytes() != c.kp3d.tobytes()
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    for f in sorted(p.name for p in (tmp_path / "a").glob("*.npy")):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    da = render_depth(a, [0, 250, 499], flavour="metric")
    db = render_depth(b, [0, 250, 499], flavour="metric")
    assert da.tobytes() == db.tobytes()


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_generated_poseset_is_a_valid_canonical_set(worlds, domain):
    ps = worlds[domain]
    assert len(ps) == 2400
    ps.validate()
    assert {"clip", "frame", "kp2d", "conf", "kp3d", "kp2d_gt", "visible", "kp2d_valid"} <= set(ps.fields)
    assert ps.kp3d.dtype == np.float32 and ps.kp3d.shape == (2400, 17, 3)
    assert (ps.kp3d[..., 2] > 0.5).all()  # absolute camera frame, in front of the camera
    c = ps.clips
    W, H = DOMAINS[domain].rig.image
    assert (c.width == W).all() and (c.height == H).all()
    gt = project(ps.kp3d.astype(np.float64), c.intrinsics[ps.clip])
    np.testing.assert_allclose(ps.kp2d_gt, gt, atol=1e-2)
    assert all(s.startswith("synthetic:") for s in c.source.tolist())
    assert (c.fps == DOMAINS[domain].fps).all()
    # split by subject: every subject in exactly one split, both splits present
    for s in set(c.subject.tolist()):
        assert len(set(c.split[c.subject == s].tolist())) == 1
        assert c.split[c.subject == s][0] == DOMAINS[domain].split_of(s)
    assert set(c.split.tolist()) == {"train", "test"}
    assert ps.meta["extra"]["synthetic"]["calibration"] == calibration(domain)


def test_frames_count_and_selection_render_the_same(worlds):
    ps = worlds["lab"]
    rows = np.array([5, 700, 1900])
    full = render_depth(ps, rows, flavour="relative")
    sub = ps.select(rows=rows)
    assert np.array_equal(render_depth(sub, np.arange(3), flavour="relative"), full)
    one = np.concatenate([render_depth(ps, [r], flavour="relative") for r in rows])
    assert np.array_equal(one, full)  # batch composition does not change a frame's map


# ----------------------------------------------------------------------------- bodies and motion
@pytest.mark.parametrize("domain", list(DOMAINS))
def test_bone_lengths_are_constant_per_subject(worlds, domain):
    ps = worlds[domain]
    kp = ps.kp3d.astype(np.float64)
    subj = ps.clips.subject[ps.clip]
    for s in np.unique(subj):
        k = kp[subj == s]
        for j, p in H36M17.bones:
            length = np.linalg.norm(k[:, j] - k[:, p], axis=-1)
            assert length.std() < 2e-4, (s, H36M17.joints[j])
    heights = [sample_body(np.random.default_rng(i), "x").height for i in range(300)]
    assert 1.45 <= min(heights) and max(heights) <= 2.0 and np.std(heights) > 0.05


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_joint_angles_stay_within_limits_and_knees_never_bend_backwards(clips):
    assert len(ACTIVITIES) >= 12
    for name, c in clips.items():
        a = c.angles
        inner = np.ones(a.shape[1], dtype=bool)
        inner[[DOF["yaw"], DOF["pitch"], DOF["roll"]]] = False
        assert (a[:, inner] >= LIMITS[inner, 0] - 1e-9).all() and (a[:, inner] <= LIMITS[inner, 1] + 1e-9).all(), name
        assert np.abs(np.degrees(a[:, DOF["pitch"]])).max() < 105, name
        j = c.joints
        lateral = j[:, 4] - j[:, 1]  # pelvis left axis
        for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
            thigh, shin = j[:, knee] - j[:, hip], j[:, ankle] - j[:, knee]
            flex = _angle(thigh, shin)
            assert flex.max() <= 150.5, name
            bent = flex > 8
            hinge = (np.cross(thigh, shin) * lateral).sum(-1)
            assert (hinge[bent] > 0).all(), f"{name}: knee bends backwards"
        for sh, el, wr in ((11, 12, 13), (14, 15, 16)):
            assert _angle(j[:, el] - j[:, sh], j[:, wr] - j[:, el]).max() <= 150.5, name


def test_feet_on_the_floor_unless_jumping(clips):
    for name, c in clips.items():
        body = c.body
        j = c.joints
        lowest = (j[..., 2] - body.contact_radii).min(axis=1)
        assert lowest.min() > -1e-6, f"{name}: body below the floor"
        foot = (j[:, [3, 6], 2] - body.contact_radii[[3, 6]]).min(axis=1)
        ground = ~c.airborne
        assert foot[ground].max() < 0.1, f"{name}: feet {foot[ground].max():.2f} m above the floor"
        if name in ("jump", "jumping_jack"):
            assert c.airborne.any() and foot[c.airborne].max() > 0.04
        else:
            assert not c.airborne.any()
    assert clips["sit"].props is not None  # the bench


def test_motions_move_plausibly(clips):
    speed = {n: np.linalg.norm(np.diff(c.joints[:, 0, :2], axis=0), axis=1).mean() * c.fps for n, c in clips.items()}
    assert 0.6 < speed["walk"] < 2.0 and speed["run"] > 1.3 * speed["walk"]
    assert speed["wave"] < 0.3 and speed["squat"] < 0.4
    step = np.linalg.norm(np.diff(clips["walk"].joints, axis=0), axis=-1).max()
    assert step < 0.25  # smooth: no joint jumps more than 25 cm in 20 ms
    trunk = clips["push_up"].joints[:, 8] - clips["push_up"].joints[:, 0]
    assert np.median(np.abs(trunk[:, 2]) / np.linalg.norm(trunk, axis=1)) < 0.5  # floor pose: trunk near horizontal


# ----------------------------------------------------------------------------- occlusion and detections
@pytest.mark.parametrize("domain", list(DOMAINS))
def test_visibility_agrees_with_the_zbuffer(worlds, domain):
    ps = worlds[domain]
    W, H = DOMAINS[domain].rig.image
    rows = np.linspace(0, len(ps) - 1, 24 if H < 1500 else 12).astype(np.int64)
    z = render_depth(ps, rows, size=(H, W), flavour="true")  # full resolution: map pixel = image pixel
    kp = ps.kp3d[rows].astype(np.float64)
    uv = ps.kp2d_gt[rows]
    inside = (uv[..., 0] >= 0) & (uv[..., 0] <= W - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= H - 1)
    ui = np.clip(np.round(uv[..., 0]).astype(int), 0, W - 1)
    vi = np.clip(np.round(uv[..., 1]).astype(int), 0, H - 1)
    zb = z[np.arange(len(rows))[:, None], vi, ui]
    radii = np.stack([joint_surface_radius(kp[i: i + 1], joint_radii_from_volume(sc.capsule_radii, sc.head_radius),
                                           sc.capsule_radii)[0]
                      for i, sc in enumerate(decode_source(str(ps.clips.source[ps.clip[r]])) for r in rows)])
    surface = kp[..., 2] - radii - VISIBILITY_TOLERANCE
    vis = ps.visible[rows]
    assert vis.mean() > 0.6 and (~vis & inside).sum() > 10
    # a visible joint: nothing rendered more than (radius + tolerance) in front of it
    assert np.mean(zb[vis] >= surface[vis] - 0.01) > 0.98
    # the rendered body is at the joint: within its radius + a few cm behind the front surface
    assert np.mean(zb[vis] <= kp[..., 2][vis] + 0.05) > 0.95
    occ = ~vis & inside
    assert np.mean(zb[occ] < surface[occ] + 0.01) > 0.95


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_detection_noise_is_larger_and_confidence_lower_on_occluded_joints(worlds, domain):
    ps = worlds[domain]
    W, H = DOMAINS[domain].rig.image
    ok = ps.kp2d_valid
    gt = ps.kp2d_gt
    inside = (gt[..., 0] >= 0) & (gt[..., 0] <= W - 1) & (gt[..., 1] >= 0) & (gt[..., 1] <= H - 1)
    err = np.linalg.norm(ps.kp2d - gt, axis=-1)
    vis = ps.visible & ok[:, None]
    occ = ~ps.visible & inside & ok[:, None]
    assert occ.sum() > 200
    assert np.median(err[occ]) > 1.6 * np.median(err[vis])
    assert ps.conf[occ].mean() < ps.conf[vis].mean() - 0.3
    person = np.ptp(gt[..., 1], axis=1)
    rel = err / person[:, None]
    assert 0.01 < np.median(rel[vis]) < 0.04  # ~5-10 px on a ~330 px person at 1000 px
    assert 0.005 < np.mean(rel[vis] > 0.1) < 0.08  # a heavy tail of outliers
    # confidence is informative but not perfectly calibrated
    c = np.corrcoef(ps.conf[ok].ravel(), -np.log1p(err[ok].ravel()))[0, 1]
    assert 0.3 < c < 0.9


def test_detections_swap_left_and_right_sometimes():
    from auglift.datasets.synthetic.detections import simulate_detections

    rng = np.random.default_rng(0)
    n = 20000
    gt = np.zeros((n, 17, 2))
    gt[:, :, 0] = 500 + 200 * np.linspace(-1, 1, 17)  # joints spread left to right
    gt[:, :, 1] = 500 + 300 * np.sin(np.arange(17))
    gt[:, 4, 0], gt[:, 1, 0] = 560.0, 440.0  # facing the camera
    res = simulate_detections(gt, np.ones((n, 17), bool), np.full(n, 1000), np.full(n, 1000),
                              np.repeat(np.arange(20), 1000), DOMAINS["lab"].detector, rng)
    assert 0.005 < res.swapped.mean() < 0.05
    wrist_flip = np.abs(res.kp2d[:, 13, 0] - gt[:, 16, 0]) < np.abs(res.kp2d[:, 13, 0] - gt[:, 13, 0])
    assert wrist_flip[res.swapped].mean() > 0.4 and wrist_flip[~res.swapped].mean() < 0.05


# ----------------------------------------------------------------------------- domains
def test_domains_differ_measurably(worlds):
    root = {d: worlds[d].kp3d[:, 0, 2] for d in DOMAINS}
    assert root["lab"].mean() > 4.5 and 3.2 < root["outdoor"].mean() < 4.2
    assert root["lab"].mean() - root["outdoor"].mean() > 0.8
    assert root["lab"].mean() - root["fitness"].mean() > 0.4
    sizes = {d: (int(worlds[d].clips.width[0]), int(worlds[d].clips.height[0])) for d in DOMAINS}
    assert len(set(sizes.values())) == 3
    assert sizes["outdoor"][1] > sizes["outdoor"][0]  # portrait phone video
    # poses: fitness has floor poses and deep squats, the lab does not

    def horizontal_trunk(ps: PoseSet) -> float:
        kp = ps.kp3d.astype(np.float64)
        ok = ps.clips.camera[ps.clip] != "handheld"
        if not ok.any():
            return 0.0
        sc = [decode_source(str(ps.clips.source[c])) for c in range(len(ps.clips))]
        up = np.stack([sc[c].camera.extrinsics(np.zeros(1))[0][0][:, 2] for c in ps.clip])  # world up in camera
        trunk = kp[:, 8] - kp[:, 0]
        cos = (trunk * up).sum(-1) / np.linalg.norm(trunk, axis=-1)
        return float(np.mean(cos < 0.5))

    assert horizontal_trunk(worlds["fitness"]) > 0.04
    assert horizontal_trunk(worlds["lab"]) < 0.02
    # cameras: the fitness ring spans low and high viewpoints, the lab ring sits at chest height
    heights = {d: [decode_source(s).camera.keys[0, 2] for s in set(worlds[d].clips.source.tolist())]
               for d in ("lab", "fitness")}
    assert np.ptp(heights["fitness"]) > 1.5 and np.ptp(heights["lab"]) < 0.4
    assert worlds["outdoor"].clips.fps[0] == 30 and worlds["lab"].clips.fps[0] == 50


# ----------------------------------------------------------------------------- the motion-source hook
def test_film_renders_external_world_trajectories():
    rng = np.random.default_rng(2)
    body, style = sample_body(rng, "ext"), sample_style(rng)
    proc = procedural_clip("walk", body, style, 120, 30.0, rng, path="wander")
    ext = MotionClip(proc.joints, 30.0, "O6", "mocap_walk")  # no body: fitted to the joints
    ps = film("outdoor", [ext], seed=1)
    assert len(ps) == 120 and ps.clips.split[0] == "test" and ps.clips.action[0] == "mocap_walk"
    sc = decode_source(str(ps.clips.source[0]))
    R, t, _ = sc.camera.extrinsics(np.arange(120) / 30.0)
    np.testing.assert_allclose(ps.kp3d, np.einsum("tij,tkj->tki", R, proc.joints) + t[:, None], atol=1e-4)
    fitted = body_from_joints(proc.joints, "x")
    np.testing.assert_allclose(fitted.lengths["thigh"], body.lengths["thigh"], rtol=1e-6)
    assert abs(fitted.height - body.height) < 0.1
    far_away = MotionClip(proc.joints + np.array([40.0, -25.0, 0.0]), 30.0, "L1", "mocap_walk")
    lab = film("lab", [far_away], seed=1, recentre=True)
    assert 3.0 < lab.kp3d[:, 0, 2].mean() < 8.0
    assert len(lab) == 4 * 120 and sorted(set(lab.clips.camera.tolist())) == ["cam0", "cam1", "cam2", "cam3"]
    assert render_depth(lab, [0, 479]).shape == (2, 256, 256)
    from auglift.errors import ConfigError

    with pytest.raises(ConfigError, match="behind camera"):
        film("lab", [MotionClip(proc.joints + np.array([30.0, 0.0, 0.0]), 30.0, "L1", "far")], seed=1)
    with pytest.raises(ValueError, match=r"\(T, 17, 3\)"):
        MotionClip(np.zeros((5, 16, 3)), 30.0, "x", "y")


# ----------------------------------------------------------------------------- wider motion
def test_sequences_chain_activities_smoothly_within_the_limits():
    rng = np.random.default_rng(8)
    body, style = sample_body(rng, "S2"), sample_style(rng)
    c = procedural_clip(["walk", "pose", "push_up"], body, style, 600, 50.0, rng, path="wander")
    assert c.action in ("walk", "pose", "push_up") and c.joints.shape == (600, 17, 3)
    inner = np.ones(c.angles.shape[1], dtype=bool)
    inner[[DOF["yaw"], DOF["pitch"], DOF["roll"]]] = False
    assert (c.angles[:, inner] >= LIMITS[inner, 0] - 1e-9).all()
    assert (c.angles[:, inner] <= LIMITS[inner, 1] + 1e-9).all()
    assert np.linalg.norm(np.diff(c.joints, axis=0), axis=-1).max() < 0.25  # no jumps at the hand-overs
    lowest = (c.joints[..., 2] - body.contact_radii).min(axis=1)
    assert lowest.min() > -1e-6 and np.median(lowest) < 0.05  # on the floor, also while getting down
    trunk = c.joints[:, 8] - c.joints[:, 0]
    upright = trunk[:, 2] / np.linalg.norm(trunk, axis=1)
    assert upright[:100].min() > 0.8 and upright[-100:].max() < 0.6  # walking upright, ending in a push-up


def test_procedural_motion_is_varied():
    from auglift.datasets.synthetic.world import procedural_clips

    clips = procedural_clips("lab", 6000, seed=3, seq_seconds=(3.0, 6.0))
    assert len({c.action for c in clips}) >= 10
    lab_only = set(DOMAINS["lab"].actions)
    assert {c.action for c in clips} <= lab_only
    j = np.concatenate([c.joints for c in clips])
    elbow = _angle(j[:, 12] - j[:, 11], j[:, 13] - j[:, 12])
    shoulder = _angle(j[:, 0] - j[:, 8], j[:, 12] - j[:, 11])
    assert np.percentile(elbow, 95) > 110 and np.percentile(shoulder, 95) > 60  # arms bent and raised
    # the same subject moves differently from sequence to sequence (per-sequence style)
    walks = [c for c in clips if c.action == "walk"]
    assert len(walks) >= 2
    speeds = [np.linalg.norm(np.diff(c.joints[:, 0, :2], axis=0), axis=1).mean() * c.fps for c in walks]
    assert np.ptp(speeds) > 0.02
