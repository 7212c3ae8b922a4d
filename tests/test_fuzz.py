"""Property-based fuzzing (hypothesis): PoseSet save/load round trips, the UADD sampler on arbitrary
keypoints/confidences/maps, the input encoders on hostile values, metric invariances and flips.

Example counts are fixed per test (``max_examples``) and summed in :data:`EXAMPLES`, the number
docs/reliability.md reports.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from unittest import mock

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from auglift.depth.uadd import RESEARCH_STATS, LinearRadius, ScaleAdaptiveRadius, Stats, sample_uadd
from auglift.encoding import CHANNELS, encode_arrays, flip_input, flip_pose, make_state
from auglift.geometry import flip_lr
from auglift.metrics import auc, mpjpe, mpjve, n_mpjpe, p_mpjpe, pck
from auglift.poseset import FIELDS, ClipTable, PoseSet
from auglift.skeleton import H36M17

EXAMPLES = {"poseset_roundtrip": 40, "write_field": 20, "uadd_arbitrary": 120, "uadd_constant": 40,
            "uadd_independent": 30, "encode": 150, "mpjpe_zero": 60, "p_mpjpe_similarity": 80,
            "n_mpjpe_scale": 60, "flip_2d_3d": 80}
_FAST = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
J = 17
PERM = H36M17.flip_permutation


def f32(lo: float, hi: float, *, nan: bool = False, inf: bool = False) -> st.SearchStrategy[float]:
    s = st.floats(lo, hi, width=32, allow_nan=False, allow_infinity=False)
    extra = ([st.just(float("nan"))] if nan else []) + ([st.sampled_from([float("inf"), -float("inf")])]
                                                         if inf else [])
    return st.one_of(s, *extra) if extra else s


# ----------------------------------------------------------------------------- PoseSet round trips
names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9), st.floats(allow_nan=False,
                      allow_infinity=False), names)
json_value = st.recursive(json_leaf, lambda c: st.one_of(st.lists(c, max_size=3),
                                                         st.dictionaries(names, c, max_size=3)), max_leaves=8)


@st.composite
def posesets(draw: st.DrawFn) -> PoseSet:
    counts = draw(st.lists(st.integers(0, 6), min_size=0, max_size=4))
    c, n = len(counts), sum(counts)
    frames = [np.sort(draw(hnp.arrays(np.int32, k, elements=st.integers(0, 10**6), unique=True))) for k in counts]
    fields = {"clip": np.repeat(np.arange(c), counts).astype(np.int32),
              "frame": np.concatenate(frames).astype(np.int32) if c else np.zeros(0, np.int32),
              "kp2d": draw(hnp.arrays(np.float32, (n, J, 2), elements=f32(-1e5, 1e5, nan=True))),
              "conf": draw(hnp.arrays(np.float32, (n, J), elements=f32(0, 1)))}
    for name in draw(st.sets(st.sampled_from(["kp3d", "kp2d_gt", "visible", "kp2d_valid", "uadd", "uadd_valid"]))):
        spec = FIELDS[name]
        shape = spec.shape_for(n, J)
        if spec.kind == "b":
            fields[name] = draw(hnp.arrays(np.bool_, shape))
        else:
            fields[name] = draw(hnp.arrays(np.float32, shape, elements=f32(-1e4, 1e4, nan=spec.allow_nan)))
    missing = ~np.isfinite(fields["kp2d"]).all(axis=-1)  # NaN only where nothing marks it valid (validate)
    fields["conf"] = np.where(missing, np.float32(0), fields["conf"])
    if "kp2d_valid" in fields:
        fields["kp2d_valid"] = fields["kp2d_valid"] & ~missing.all(axis=1)
    if "uadd" in fields and "uadd_valid" in fields:
        fields["uadd_valid"] = fields["uadd_valid"] & np.isfinite(fields["uadd"]).all(axis=-1)
    clips = ClipTable(
        subject=np.array(draw(st.lists(names, min_size=c, max_size=c)), dtype=str),
        action=np.array(draw(st.lists(names, min_size=c, max_size=c)), dtype=str),
        camera=np.array(draw(st.lists(names, min_size=c, max_size=c)), dtype=str),
        split=np.array(draw(st.lists(st.sampled_from(["train", "test", "validation"]), min_size=c, max_size=c)),
                       dtype=str),
        width=np.array(draw(st.lists(st.integers(1, 10**5), min_size=c, max_size=c)), dtype=np.int64),
        height=np.array(draw(st.lists(st.integers(1, 10**5), min_size=c, max_size=c)), dtype=np.int64),
        intrinsics=draw(hnp.arrays(np.float64, (c, 4), elements=st.floats(-1e6, 1e6))),
        source=np.array(draw(st.lists(names, min_size=c, max_size=c)), dtype=str),
        fps=np.array(draw(st.lists(st.floats(0.1, 1000), min_size=c, max_size=c)), dtype=np.float64),
    )
    meta = {"source": draw(names), "frame_root": draw(names), "extra": draw(st.dictionaries(names, json_value,
                                                                                         max_size=3))}
    return PoseSet(fields, clips, meta)


def _no_fsync():
    """fsync is a no-op here: these tests check content, not durability (the fault tests do), and a
    few hundred fsyncs per example would dominate the run time."""
    return mock.patch("os.fsync", lambda fd: None)


def _same(a: PoseSet, b: PoseSet) -> None:
    assert sorted(a.fields) == sorted(b.fields)
    for k, v in a.fields.items():
        w = np.asarray(b.fields[k])
        assert w.dtype == FIELDS[k].dtype and w.shape == v.shape, k
        np.testing.assert_array_equal(w, v, err_msg=k)  # NaN == NaN here
    for k, v in a.clips.columns.items():
        np.testing.assert_array_equal(b.clips.columns[k], v, err_msg=f"clips.{k}")
    for k in ("source", "frame_root", "extra", "joint_set"):
        assert b.meta[k] == a.meta[k], k


@settings(max_examples=EXAMPLES["poseset_roundtrip"], **_FAST)
@given(ps=posesets(), mmap=st.booleans())
def test_poseset_save_load_round_trip(ps, mmap):
    with tempfile.TemporaryDirectory() as d, _no_fsync():
        ps.save(Path(d) / "ps")
        back = PoseSet.load(Path(d) / "ps", mmap=mmap)
        back.validate(checksums=True)
        _same(ps, back)
        assert back.clip_ranges.tolist() == ps.clip_ranges.tolist()
        ps.save(Path(d) / "ps")  # overwrite in place: same content again
        _same(ps, PoseSet.load(Path(d) / "ps"))


@settings(max_examples=EXAMPLES["write_field"], **_FAST)
@given(ps=posesets(), data=st.data())
def test_write_field_round_trip_keeps_the_other_fields(ps, data):
    n = len(ps)
    uadd = data.draw(hnp.arrays(np.float32, (n, J, 3), elements=f32(-100, 100, nan=True)))
    # NaN marked valid is refused by validation: valid only where the descriptor is finite
    valid = data.draw(hnp.arrays(np.bool_, (n, J))) & np.isfinite(uadd).all(axis=-1)
    with tempfile.TemporaryDirectory() as d, _no_fsync():
        root = ps.save(Path(d) / "ps")
        PoseSet.write_field(root, "uadd", uadd, {"depth_model": {"name": "fuzz"}})
        PoseSet.write_field(root, "uadd_valid", valid)
        back = PoseSet.load(root).validate(checksums=True)
        np.testing.assert_array_equal(np.asarray(back.uadd), uadd)
        np.testing.assert_array_equal(np.asarray(back.uadd_valid), valid)
        assert back.meta["depth_model"] == {"name": "fuzz"}
        _same(ps.with_fields(uadd=uadd, uadd_valid=valid), back)


# ----------------------------------------------------------------------------- UADD sampler
@st.composite
def uadd_inputs(draw: st.DrawFn):
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    b = draw(st.integers(1, 3))
    jj = draw(st.integers(1, 10))
    maps = draw(hnp.arrays(np.float32, (b, h, w), elements=st.one_of(
        st.floats(2.0**-7, 80, width=32), st.just(float("nan")), st.just(float("inf")))))
    kp = draw(hnp.arrays(np.float32, (b, jj, 2), elements=st.one_of(
        st.floats(-3, max(h, w) + 2, width=32), st.just(float("nan")), st.just(float("inf")),
        st.just(-float("inf")), st.floats(-(2.0**100), 2.0**100, width=32))))
    conf = draw(hnp.arrays(np.float32, (b, jj), elements=f32(-2, 3, nan=True, inf=True)))
    return maps, kp, conf


radii = st.one_of(st.builds(LinearRadius, st.floats(0, 5), st.floats(5, 40)),
                  st.builds(ScaleAdaptiveRadius, r_min=st.floats(0, 4), r_max=st.floats(4, 30)))
stats_ = st.sampled_from([Stats(), RESEARCH_STATS, Stats("median", 0.25, 0.75)])


@settings(max_examples=EXAMPLES["uadd_arbitrary"], **_FAST)
@given(inp=uadd_inputs(), mode=st.sampled_from(["exact", "fast"]), radius=radii, stats=stats_,
       scale=st.floats(0.05, 4))
def test_uadd_sampler_on_arbitrary_inputs(inp, mode, radius, stats, scale):
    maps, kp, conf = inp
    b, jj = kp.shape[:2]
    if isinstance(radius, ScaleAdaptiveRadius) and jj <= 8:
        radius = LinearRadius(radius.r_min, radius.r_max)  # the research rule reads pelvis and thorax
    res = sample_uadd(maps, kp, conf, radius=radius, stats=stats, mode=mode, scale=scale)
    u, v = res.uadd, res.valid
    assert u.shape == (b, jj, 3) and u.dtype == np.float32 and v.shape == (b, jj) and v.dtype == bool
    assert np.isfinite(u[v]).all() and np.isnan(u[~v]).all()
    h, w = maps.shape[1:]
    x, y = kp[..., 0], kp[..., 1]
    outside = ~(np.isfinite(x) & np.isfinite(y) & (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5))
    assert not v[outside].any()
    for i in range(b):
        m = maps[i][np.isfinite(maps[i])]
        if v[i].any():
            lo, hi = float(m.min()), float(m.max())
            assert (u[i][v[i]] >= lo - 1e-4 * abs(lo)).all() and (u[i][v[i]] <= hi + 1e-4 * abs(hi)).all()
    assert (u[..., 1][v] <= u[..., 2][v] + 1e-5).all()  # d_min <= d_max
    if stats.center == "median":
        assert (u[..., 1][v] <= u[..., 0][v] + 1e-5).all() and (u[..., 0][v] <= u[..., 2][v] + 1e-5).all()
    again = sample_uadd(torch.from_numpy(maps), torch.from_numpy(kp), torch.from_numpy(conf), radius=radius,
                        stats=stats, mode=mode, scale=scale)
    np.testing.assert_array_equal(again.uadd.numpy(), u)  # deterministic, same result from tensors


@settings(max_examples=EXAMPLES["uadd_constant"], **_FAST)
@given(h=st.integers(1, 20), w=st.integers(1, 20), value=st.floats(2.0**-7, 100, width=32),
       mode=st.sampled_from(["exact", "fast"]), data=st.data())
def test_uadd_of_a_constant_map_is_that_constant(h, w, value, mode, data):
    kp = data.draw(hnp.arrays(np.float32, (2, 5, 2), elements=st.floats(-0.5, float(np.float32(min(h, w) - 0.51)),
                                                                       width=32)))
    conf = data.draw(hnp.arrays(np.float32, (2, 5), elements=f32(0, 1, nan=True)))
    res = sample_uadd(np.full((2, h, w), value, np.float32), kp, conf, mode=mode)
    assert res.valid.all()
    np.testing.assert_allclose(res.uadd, value, rtol=1e-6)


@settings(max_examples=EXAMPLES["uadd_independent"], **_FAST)
@given(inp=uadd_inputs(), stats=stats_)
def test_uadd_exact_keypoints_are_independent(inp, stats):
    """Exact mode: a keypoint's descriptor does not depend on the other keypoints of the batch."""
    maps, kp, conf = inp
    full = sample_uadd(maps, kp, conf, stats=stats)
    for i in range(kp.shape[0]):
        for j in range(kp.shape[1]):
            one = sample_uadd(maps[i:i + 1], kp[i:i + 1, j:j + 1], conf[i:i + 1, j:j + 1], stats=stats)
            np.testing.assert_array_equal(one.uadd[0, 0], full.uadd[i, j])


# ----------------------------------------------------------------------------- encoders
@st.composite
def encoder_states(draw: st.DrawFn) -> dict:
    chans = [c for c in CHANNELS if draw(st.booleans())] or [draw(st.sampled_from(CHANNELS))]
    opts = {"channels": chans, "depth_ref": draw(st.sampled_from(["root", "min"])),
            "depth_kind": draw(st.sampled_from(["metric", "relative"])),
            "scale_norm": draw(st.sampled_from(["none", "bbox", "dscale2d"])),
            "dscale_source": draw(st.sampled_from(["uadd", "kp3d"])),
            "depth_clip": draw(st.floats(0.1, 5)), "spread_clip": draw(st.floats(0.1, 2)),
            "relative_clip": draw(st.floats(0.5, 5)), "d_ref": draw(st.floats(0.5, 10))}
    return make_state(opts, bbox_mean=draw(st.floats(0.01, 2)))


@settings(max_examples=EXAMPLES["encode"], **_FAST)
@given(state=encoder_states(), data=st.data(), lead=st.sampled_from([(1,), (3,), (2, 4)]))
def test_encoders_turn_any_input_into_finite_values(state, data, lead):
    """Any channel subset and options; NaN/inf keypoints, confidences, descriptors and root depths
    (and descriptors flagged invalid) give finite outputs of the right shape."""
    kp = data.draw(hnp.arrays(np.float32, (*lead, J, 2), elements=f32(-1e6, 1e6, nan=True, inf=True)))
    conf = data.draw(hnp.arrays(np.float32, (*lead, J), elements=f32(-1, 2, nan=True, inf=True)))
    uadd = data.draw(hnp.arrays(np.float32, (*lead, J, 3), elements=f32(-1e4, 1e4, nan=True, inf=True)))
    valid = data.draw(hnp.arrays(np.bool_, (*lead, J)))
    root_depth = data.draw(hnp.arrays(np.float32, lead, elements=f32(-100, 100, nan=True, inf=True)))
    width = data.draw(hnp.arrays(np.float32, lead, elements=st.floats(1, 8000, width=32)))
    height = data.draw(hnp.arrays(np.float32, lead, elements=st.floats(1, 8000, width=32)))
    with np.errstate(all="ignore"):  # inf - inf in masked-out entries is harmless: only the output counts
        x = encode_arrays(kp, conf, width, height, uadd, valid, root_depth, state=state)
    assert x.shape == (*lead, J, len(state["channels"])) and x.dtype == np.float32
    assert np.isfinite(x).all()
    if "c" in state["channels"]:
        c = x[..., state["channels"].index("c")]
        assert ((c >= -1) & (c <= 1)).all()


# ----------------------------------------------------------------------------- metrics and flips
@st.composite
def poses(draw: st.DrawFn, n: int | None = None) -> np.ndarray:
    n = n or draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    root = rng.uniform(-2, 2, (n, 1, 3)) + np.array([0, 0, 5.0])
    return root + rng.normal(0, draw(st.floats(0.05, 1.0)), (n, J, 3))


def _rotation(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


@settings(max_examples=EXAMPLES["mpjpe_zero"], **_FAST)
@given(x=poses(), mask=st.booleans())
def test_identical_poses_have_zero_error(x, mask):
    m = np.ones(x.shape[:2], bool) if mask else None
    assert mpjpe(x, x, m) == 0.0 and n_mpjpe(x, x, m) == pytest.approx(0.0, abs=1e-9)
    assert p_mpjpe(x, x, m) == pytest.approx(0.0, abs=1e-6)
    assert pck(x, x) == 100.0 and auc(x, x) == 100.0
    if len(x) > 1:
        assert mpjve(x, x) == 0.0


@settings(max_examples=EXAMPLES["p_mpjpe_similarity"], **_FAST)
@given(data=st.data(), s=st.floats(0.05, 20), q=hnp.arrays(np.float64, 4, elements=st.floats(-1, 1)),
       t=hnp.arrays(np.float64, 3, elements=st.floats(-10, 10)))
def test_p_mpjpe_is_invariant_to_similarity_transforms_of_the_prediction(data, s, q, t):
    assume(np.linalg.norm(q) > 0.1)
    gt = data.draw(poses())
    pred = data.draw(poses(len(gt)))
    R = _rotation(q)
    moved = s * pred @ R.T + t
    a, b = p_mpjpe(pred, gt), p_mpjpe(moved, gt)
    assert b == pytest.approx(a, rel=1e-6, abs=1e-6)


@settings(max_examples=EXAMPLES["n_mpjpe_scale"], **_FAST)
@given(data=st.data(), s=st.floats(0.01, 100))
def test_n_mpjpe_is_invariant_to_scaling_the_prediction(data, s):
    gt = data.draw(poses())
    pred = data.draw(poses(len(gt)))
    assert n_mpjpe(s * pred, gt) == pytest.approx(n_mpjpe(pred, gt), rel=1e-6, abs=1e-6)
    # and MPJPE itself is not (the property above is not vacuous)
    if abs(s - 1) > 0.1:
        assert mpjpe(s * pred, gt) != pytest.approx(mpjpe(pred, gt), rel=1e-9)


@settings(max_examples=EXAMPLES["flip_2d_3d"], **_FAST)
@given(data=st.data(), center=st.sampled_from(["root", "image"]), lead=st.sampled_from([(1,), (4,), (2, 3)]))
def test_flipping_twice_is_the_identity(data, center, lead):
    """2D keypoints (geometry.flip_lr around any centre; encoded inputs with any channels through
    encoding.flip_input) and 3D poses (geometry.flip_lr, encoding.flip_pose)."""
    assert (PERM[PERM] == np.arange(J)).all() and (PERM != np.arange(J)).any()
    kp = data.draw(hnp.arrays(np.float64, (*lead, J, 2), elements=st.floats(-5000, 5000)))
    c = data.draw(st.floats(-5000, 5000))
    twice = flip_lr(flip_lr(kp, PERM, c), PERM, c)
    np.testing.assert_allclose(twice, kp, rtol=0, atol=1e-9 * (1 + abs(c)) * 1e3)
    np.testing.assert_array_equal(flip_lr(flip_lr(kp, PERM), PERM), kp)  # centre 0: exact
    X = data.draw(hnp.arrays(np.float64, (*lead, J, 3), elements=st.floats(-10, 10)))
    np.testing.assert_array_equal(flip_lr(flip_lr(X, PERM), PERM), X)
    y = torch.from_numpy(X.astype(np.float32))
    np.testing.assert_array_equal(flip_pose(flip_pose(y, PERM), PERM).numpy(), y.numpy())
    chans = [ch for ch in CHANNELS if data.draw(st.booleans())] or ["x"]
    x = torch.from_numpy(data.draw(hnp.arrays(np.float32, (*lead, J, len(chans)),
                                              elements=st.floats(-3, 3, width=32))))
    back = flip_input(flip_input(x, PERM, chans, center=center), PERM, chans, center=center)
    if center == "image" or "x" not in chans:
        assert torch.equal(back, x)
    else:
        assert torch.allclose(back, x, rtol=0, atol=1e-5)
    if "x" in chans and center == "root":
        i = chans.index("x")  # the root stays where it is; other joints mirror around it
        once = flip_input(x, PERM, chans, center=center)
        assert torch.equal(once[..., 0, i], x[..., 0, i])


def test_example_total():
    """The number of fuzz examples reported in docs/reliability.md."""
    assert sum(EXAMPLES.values()) == 680
    assert math.isclose(sum(EXAMPLES.values()), 680)
