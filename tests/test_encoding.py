"""Input encodings: channel sets, normalisations, missing values, scale normalisation, flips."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _train_fixtures import add_uadd, moving_poseset
from auglift.encoding import (
    CHANNEL_SETS,
    check_compatible,
    encode,
    encode_arrays,
    fit,
    flip_input,
    flip_pose,
    make_state,
    parse_channels,
    required_fields,
    target,
)
from auglift.errors import ConfigError, DataError
from auglift.geometry import normalize_screen, project
from auglift.poseset import ClipTable, PoseSet
from auglift.skeleton import get_joint_set

H36M = get_joint_set("h36m17")


def _state(**opts):
    s = make_state(opts)
    if s["depth_kind"] == "auto":
        s = dataclasses.replace(s, depth_kind="metric")
    return s


def test_channel_sets_and_subsets():
    assert {k: len(v) for k, v in CHANNEL_SETS.items()} == {"xy": 2, "xyc": 3, "xycd": 4, "uadd": 6}
    assert parse_channels("uadd") == ("x", "y", "c", "d", "d_min", "d_max")
    assert parse_channels("x,y,d") == ("x", "y", "d")
    assert parse_channels(["d", "x"]) == ("d", "x")
    for bad in ("x,z", "x,x", "", []):
        with pytest.raises(ConfigError, match="input.channels"):
            parse_channels(bad)
    assert required_fields(_state(channels="xy")) == ("kp2d", "conf")
    assert required_fields(_state(channels="xycd")) == ("kp2d", "conf", "uadd")
    assert required_fields(_state(channels="xy", keypoints="kp2d_gt", scale_norm="dscale2d",
                                  dscale_source="kp3d")) == ("kp2d_gt", "conf", "kp3d")
    with pytest.raises(ConfigError, match="input.depth_ref"):
        make_state({"depth_ref": "feet"})
    with pytest.raises(ConfigError, match="input.colour"):
        make_state({"colour": 1})


def test_screen_confidence_and_depth_channels_by_formula():
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 1000, (4, 17, 2)).astype(np.float32)
    conf = rng.uniform(0, 1, (4, 17)).astype(np.float32)
    w = np.array([1920, 1080, 1000, 640], np.float32)
    h = np.array([1080, 1920, 1000, 480], np.float32)
    d = rng.uniform(3, 7, (4, 17))
    uadd = np.stack([d, d - rng.uniform(0, 2, d.shape), d + rng.uniform(0, 2, d.shape)], -1).astype(np.float32)
    s = _state(channels="uadd", depth_clip=1.5, spread_clip=0.5)
    x = encode_arrays(kp, conf, w, h, uadd, state=s)
    assert x.shape == (4, 17, 6) and x.dtype == np.float32
    np.testing.assert_allclose(x[..., :2], normalize_screen(kp, w, h), atol=1e-5)
    np.testing.assert_allclose(x[..., 0], 2 * kp[..., 0] / w[:, None] - 1, atol=1e-5)
    np.testing.assert_allclose(x[..., 1], 2 * kp[..., 1] / w[:, None] - h[:, None] / w[:, None], atol=1e-5)
    np.testing.assert_allclose(x[..., 2], 2 * conf - 1, atol=1e-6)
    np.testing.assert_allclose(x[..., 3], np.clip(uadd[..., 0] - uadd[:, :1, 0], -1.5, 1.5), atol=1e-5)
    np.testing.assert_allclose(x[..., 4], np.clip(uadd[..., 1] - uadd[..., 0], -0.5, 0.5), atol=1e-5)
    np.testing.assert_allclose(x[..., 5], np.clip(uadd[..., 2] - uadd[..., 0], -0.5, 0.5), atol=1e-5)
    assert x[..., 0, 3].max() == 0 and np.abs(x[..., 3]).max() == pytest.approx(1.5)
    # research-code option: relative to the frame's minimum joint depth
    xm = encode_arrays(kp, conf, w, h, uadd, state=_state(channels="xycd", depth_ref="min", depth_clip=10.0))
    np.testing.assert_allclose(xm[..., 3], uadd[..., 0] - uadd[..., 0].min(-1, keepdims=True), atol=1e-5)
    assert xm[..., 3].min() == 0
    # any subset, in the order asked
    xs = encode_arrays(kp, conf, w, h, uadd, state=_state(channels=["d_max", "y"], spread_clip=0.5))
    np.testing.assert_array_equal(xs, x[..., [5, 1]])


def test_missing_values_never_reach_the_model():
    rng = np.random.default_rng(1)
    kp = rng.uniform(100, 900, (3, 17, 2)).astype(np.float32)
    kp[0, 5] = np.nan  # one missing joint
    kp[1] = np.nan  # a frame without detection
    conf = rng.uniform(0.2, 1, (3, 17)).astype(np.float32)
    d = rng.uniform(4, 5, (3, 17))
    uadd = np.stack([d, d - 0.1, d + 0.1], -1).astype(np.float32)
    valid = np.ones((3, 17), bool)
    valid[0, 3] = False  # flagged invalid (value present)
    uadd[0, 7] = np.nan  # NaN without flag
    valid[2, 0] = False  # root invalid: reference becomes the median of valid joints
    x = encode_arrays(kp, conf, 1000, 1000, uadd, valid, state=_state(channels="uadd"))
    assert np.isfinite(x).all()
    scr = normalize_screen(kp[0], 1000, 1000)
    ok = np.isfinite(scr).all(-1)
    np.testing.assert_allclose(x[0, 5, :2], scr[ok].mean(0), atol=1e-5)  # centroid of valid joints
    assert x[0, 5, 2] == -1.0 and (x[1, :, 2] == -1).all() and (x[1, :, :2] == 0).all()
    np.testing.assert_array_equal(x[0, 3, 3:], 0.0)
    np.testing.assert_array_equal(x[0, 7, 3:], 0.0)
    np.testing.assert_array_equal(x[2, 0, 3:], 0.0)
    np.testing.assert_allclose(x[2, 1:, 3], d[2, 1:] - np.median(d[2, 1:]), atol=1e-5)
    allbad = encode_arrays(kp, conf, 1000, 1000, np.full_like(uadd, np.nan), state=_state(channels="uadd"))
    np.testing.assert_array_equal(allbad[..., 3:], 0.0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), nan_frac=st.floats(0, 1), rel=st.booleans(),
       scale=st.sampled_from(["none", "bbox", "dscale2d"]), ref=st.sampled_from(["root", "min"]))
def test_encoding_is_finite_for_any_missing_pattern(seed, nan_frac, rel, scale, ref):
    rng = np.random.default_rng(seed)
    shape = (2, 3, 17)
    kp = rng.uniform(-200, 1200, (*shape, 2)).astype(np.float32)
    kp[rng.uniform(size=shape) < nan_frac] = np.nan
    uadd = rng.uniform(0.5, 9, (*shape, 3)).astype(np.float32)
    uadd[rng.uniform(size=shape) < nan_frac] = np.nan
    valid = rng.uniform(size=shape) > nan_frac / 2
    s = _state(channels="uadd", scale_norm=scale, depth_ref=ref, depth_kind="relative" if rel else "metric")
    s = dataclasses.replace(s, bbox_mean=0.3)
    if rel and scale == "dscale2d":
        s = dataclasses.replace(s, scale_norm="none")
    x = encode_arrays(kp, rng.uniform(0, 1, shape).astype(np.float32), 1000, 800, uadd, valid, state=s)
    assert x.shape == (*shape, 6) and np.isfinite(x).all()


def test_relative_depth_is_affine_invariant_per_frame():
    rng = np.random.default_rng(2)
    d = rng.uniform(0.2, 1.0, (5, 17))
    uadd = np.stack([d, d - rng.uniform(0, 0.05, d.shape), d + rng.uniform(0, 0.05, d.shape)], -1)
    kp = rng.uniform(0, 1000, (5, 17, 2))
    conf = np.ones((5, 17))
    s = _state(channels="uadd", depth_kind="relative", relative_clip=100.0)
    a = rng.uniform(0.1, 20, (5, 1, 1))
    b = rng.uniform(-5, 5, (5, 1, 1))
    x1 = encode_arrays(kp, conf, 1000, 1000, uadd, state=s)
    x2 = encode_arrays(kp, conf, 1000, 1000, a * uadd + b, state=s)
    np.testing.assert_allclose(x1, x2, atol=2e-4)
    dd = x1[..., 3]
    np.testing.assert_allclose(np.abs(dd - dd.mean(-1, keepdims=True)).mean(-1), 1.0, atol=1e-5)


def _ps_from_kp(kp2d, width=1000, height=1000, uadd=None):
    n = len(kp2d)
    fields = {"clip": np.zeros(n, np.int32), "frame": np.arange(n, dtype=np.int32),
              "kp2d": kp2d.astype(np.float32), "conf": np.ones((n, 17), np.float32)}
    if uadd is not None:
        fields["uadd"] = uadd.astype(np.float32)
    ct = ClipTable(subject=["S1"], action=["a"], camera=["0"], split=["train"], width=[width], height=[height],
                   intrinsics=[[1000.0, 1000.0, width / 2, height / 2]])
    return PoseSet(fields, ct)


def test_bbox_scale_normalisation():
    rng = np.random.default_rng(3)
    base = rng.uniform(-60, 60, (1, 17, 2))
    scales = rng.uniform(0.5, 3.0, (40, 1, 1))
    centres = rng.uniform(300, 700, (40, 1, 2))
    kp = base * scales + centres
    ps = _ps_from_kp(kp)
    st_ = fit(ps, {"channels": "xy", "scale_norm": "bbox"})
    scr = normalize_screen(kp, 1000, 1000)
    box = ((scr.max(1) - scr.min(1)).sum(-1) / 2)
    assert st_["bbox_mean"] == pytest.approx(box.mean(), rel=1e-5)
    x = encode(ps, np.arange(40), st_)
    got = (x.max(1) - x.min(1)).sum(-1) / 2
    np.testing.assert_allclose(got, st_["bbox_mean"], rtol=1e-4)  # every frame rescaled to the mean box
    np.testing.assert_allclose(x.mean(1), scr.mean(1), atol=1e-5)  # centroid kept
    rel = x - x.mean(1, keepdims=True)  # the same body at any size and place encodes the same
    np.testing.assert_allclose(rel, np.broadcast_to(rel[:1], rel.shape), atol=1e-4)


def test_dscale2d_scales_by_root_depth():
    rng = np.random.default_rng(4)
    kp = rng.uniform(0, 1000, (6, 17, 2))
    zr = rng.uniform(2, 8, 6)
    uadd = np.repeat(zr[:, None, None], 17, 1).repeat(3, 2)
    ps = _ps_from_kp(kp, uadd=uadd)
    s = fit(ps, {"channels": "xy", "scale_norm": "dscale2d"})
    x = encode(ps, np.arange(6), s)
    np.testing.assert_allclose(x, normalize_screen(kp, 1000, 1000) * (zr / 4.5)[:, None, None], atol=1e-6)
    plain = _ps_from_kp(kp)
    with pytest.raises(DataError, match="uadd: field is missing.*dscale2d"):
        fit(plain, {"channels": "xy", "scale_norm": "dscale2d"})
    kp3 = np.zeros((6, 17, 3))
    kp3[:, :, 2] = zr[:, None] * 2
    gt = PoseSet(plain.fields | {"kp3d": kp3.astype(np.float32)}, plain.clips)
    s2 = fit(gt, {"channels": "xy", "scale_norm": "dscale2d", "dscale_source": "kp3d"})
    np.testing.assert_allclose(encode(gt, np.arange(6), s2), 2 * x, atol=1e-6)


def test_windows_batch_equals_per_frame_encoding():
    ps = add_uadd(moving_poseset(3, [9, 14, 5], seed=5))
    s = fit(ps, {"channels": "uadd", "scale_norm": "bbox"})
    w = ps.windows(7)
    rows = w.rows(np.arange(len(w)))
    xb = encode(ps, rows, s)
    assert xb.shape == (len(w), 7, 17, 6)
    xf = encode(ps, np.arange(len(ps)), s)
    np.testing.assert_array_equal(xb, xf[rows])


def test_state_is_plain_and_checkpointable(tmp_path):
    ps = add_uadd(moving_poseset(2, 10, seed=6), depth_model={"name": "da2-small", "kind": "relative"})
    s = fit(ps, {"channels": "uadd", "scale_norm": "bbox"})
    assert s["depth_kind"] == "relative" and s["label"] == "uadd" and isinstance(s["bbox_mean"], float)
    buf = io.BytesIO()
    torch.save({"encoder": s}, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=True)["encoder"]
    assert back == s
    np.testing.assert_array_equal(encode(ps, np.arange(10), back), encode(ps, np.arange(10), s))


def test_missing_field_and_depth_kind_mismatch_are_clear(tmp_path):
    ps = moving_poseset(2, 6, seed=7)
    ps.save(tmp_path / "no_uadd")
    saved = PoseSet.load(tmp_path / "no_uadd")
    with pytest.raises(DataError) as e:
        fit(saved, {"channels": "xycd"})
    assert e.value.field == "uadd" and str(tmp_path / "no_uadd") in str(e.value) and "'xycd'" in str(e.value)
    metric = fit(add_uadd(ps, depth_model="oracle-metric"), {"channels": "uadd"})
    assert metric["depth_kind"] == "metric"
    rel = add_uadd(ps, depth_model="depth-anything-v2-small-relative")
    with pytest.raises(DataError, match="relative depth.*fitted on metric"):
        check_compatible(metric, rel)
    check_compatible(fit(ps, {"channels": "xy"}), rel)  # no depth channel: depth kind irrelevant
    # a relative (affine-invariant) encoder reads metric depth too: the scale and shift it removes are known
    check_compatible(fit(add_uadd(ps, depth_model="oracle-metric"), {"channels": "uadd", "depth_kind": "relative"}),
                     add_uadd(ps, depth_model="oracle-metric"))


def test_target_is_root_relative():
    ps = moving_poseset(1, 4, seed=8)
    t = target(ps.kp3d)
    np.testing.assert_array_equal(t[:, 0], 0.0)
    np.testing.assert_allclose(t + ps.kp3d[:, :1], ps.kp3d, atol=1e-6)


def test_flip_maps_left_and_right_joints():
    rng = np.random.default_rng(9)
    perm = torch.as_tensor(H36M.flip_permutation)
    lw, rw, lk, rk = (H36M.index(n) for n in ("left_wrist", "right_wrist", "left_knee", "right_knee"))
    x = torch.as_tensor(rng.normal(size=(2, 3, 17, 6)), dtype=torch.float32)
    ch = CHANNEL_SETS["uadd"]
    f = flip_input(x, perm, ch)
    root_x = x[..., 0, 0]
    torch.testing.assert_close(f[..., lw, 0], 2 * root_x - x[..., rw, 0])  # mirrored around the root
    torch.testing.assert_close(f[..., rk, 1:], x[..., lk, 1:])  # y, c, d, d_min, d_max move with the joint
    torch.testing.assert_close(f[..., 0, :], x[..., 0, :])  # the root stays
    torch.testing.assert_close(flip_input(f, perm, ch), x)
    fi = flip_input(x, perm, ch, center="image")
    torch.testing.assert_close(fi[..., lw, 0], -x[..., rw, 0])
    y = torch.as_tensor(rng.normal(size=(4, 1, 17, 3)), dtype=torch.float32)
    fy = flip_pose(y, perm)
    torch.testing.assert_close(fy[..., lw, :], y[..., rw, :] * torch.tensor([-1.0, 1.0, 1.0]))
    torch.testing.assert_close(flip_pose(fy, perm), y)
    # without an x channel only the joints move
    torch.testing.assert_close(flip_input(x[..., 2:], perm, ch[2:]), x[..., perm, 2:])


def test_flip_input_matches_projection_of_the_mirrored_body():
    """Image-centre flip of the encoded 2D == encoding the projection of the 3D body mirrored in x."""
    ps = moving_poseset(1, 8, seed=10)
    perm = H36M.flip_permutation
    intr = ps.clips.intrinsics[0]  # principal point at the image centre
    kp3 = np.asarray(ps.kp3d, dtype=np.float64)
    mirrored = kp3[:, perm].copy()
    mirrored[..., 0] *= -1
    s = _state(channels="xy")
    a = encode_arrays(project(kp3, intr), np.ones((8, 17)), 1000, 1000, state=s)
    b = encode_arrays(project(mirrored, intr), np.ones((8, 17)), 1000, 1000, state=s)
    got = flip_input(torch.as_tensor(a), torch.as_tensor(perm), ["x", "y"], center="image")
    np.testing.assert_allclose(got.numpy(), b, atol=1e-5)
    t = torch.as_tensor(target(kp3))
    np.testing.assert_allclose(flip_pose(t, torch.as_tensor(perm)).numpy(), target(mirrored), atol=1e-6)
