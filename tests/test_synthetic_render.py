"""Depth rendering of the synthetic world: geometry, pixel mapping, flavours, errors, storage, CLI."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auglift.cli import main
from auglift.datasets.synthetic import (
    generate,
    load_depth_maps,
    map_intrinsics,
    map_size,
    render_depth,
)
from auglift.datasets.synthetic.cameras import CameraTrack
from auglift.datasets.synthetic.kernels import capsule_axis, capsule_ray
from auglift.errors import ConfigError, DataError
from auglift.geometry import project
from auglift.poseset import PoseSet


@pytest.fixture(scope="module")
def lab() -> PoseSet:
    return generate("lab", 800, seed=21, seq_seconds=(2.0, 3.0))


@pytest.fixture(scope="module")
def outdoor() -> PoseSet:
    return generate("outdoor", 300, seed=21, seq_seconds=(3.0, 5.0))


def _seg_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    n2 = float(np.dot(ab, ab))
    t = 0.0 if n2 < 1e-18 else float(np.clip(np.dot(p - a, ab) / n2, 0, 1))
    return float(np.linalg.norm(p - (a + t * ab)))


coord = st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False)


@settings(max_examples=150, deadline=None)
@given(ax=coord, ay=coord, az=st.floats(2.0, 6.0), bx=coord, by=coord, bz=st.floats(2.0, 6.0),
       r=st.floats(0.02, 0.3), dx=st.floats(-0.3, 0.3), dy=st.floats(-0.3, 0.3), sphere=st.booleans())
def test_capsule_ray_hit_is_the_first_surface_point(ax, ay, az, bx, by, bz, r, dx, dy, sphere):
    a = np.array([ax, ay, az])
    b = a.copy() if sphere else np.array([bx, by, bz])
    t = capsule_ray(*a, *capsule_axis(*a, *b, r, 1.0), dx, dy, 1.0)
    d = np.array([dx, dy, 1.0])
    # brute force along the ray (z-depth parameterisation, points t * d)
    ts = np.linspace(0.5, 8.0, 20001)
    dist = np.array([_seg_dist(tt * d, a, b) for tt in ts[::20]])
    inside = dist <= r
    if np.isnan(t):
        assert not inside.any() or np.min(dist) > r - 2e-3
    else:
        assert abs(_seg_dist(t * d, a, b) - r) < 1e-6
        first = ts[::20][np.argmax(inside)] if inside.any() else np.inf
        assert t <= first + 1e-9


@given(W=st.integers(50, 2000), H=st.integers(50, 2000), long_side=st.integers(16, 512),
       fx=st.floats(300, 3000), u=st.floats(0.0, 1.0), v=st.floats(0.0, 1.0))
def test_map_intrinsics_follow_the_pixel_centre_rule(W, H, long_side, fx, u, v):
    h, w = map_size(W, H, long_side)
    assert max(h, w) == long_side or max(h, w) == round(long_side)
    intr = np.array([fx, fx * 1.01, W / 2 + 3, H / 2 - 2])
    X = np.array([[(u - 0.5) * 2.0, (v - 0.5) * 3.0, 5.0]])
    uv = project(X, intr)[0]
    m = project(X, map_intrinsics(intr, W, H, (h, w)))[0]
    np.testing.assert_allclose(m, [(uv[0] + 0.5) * w / W - 0.5, (uv[1] + 0.5) * h / H - 0.5], atol=1e-9)


def test_default_map_sizes_and_flavours(lab, outdoor):
    rows = np.arange(0, 800, 97)
    true = render_depth(lab, rows, flavour="true")
    metric = render_depth(lab, rows, flavour="metric")
    rel = render_depth(lab, rows, flavour="relative")
    assert true.shape == metric.shape == rel.shape == (len(rows), 256, 256) and true.dtype == np.float32
    assert render_depth(outdoor, [0, 299]).shape == (2, 256, 144)
    assert render_depth(lab, [3], size=(64, 48)).shape == (1, 64, 48)
    near = true < 19.0
    absrel = np.abs(metric - true)[near] / true[near]
    assert 0.01 < absrel.mean() < 0.1  # lab: Depth-Anything-like AbsRel ~0.05
    assert metric.max() <= 20.0 + 1e-4  # the metric model's range
    for i in range(len(rows)):
        c = np.corrcoef(1.0 / true[i][near[i]], rel[i][near[i]])[0, 1]
        assert c > 0.9  # relative flavour: affine in disparity, larger = nearer
    # floor below the subject, walls and ceiling of the room: all finite, positive
    assert np.isfinite(true).all() and true.min() > 0.3
    # the bottom row of a lab camera sees the floor closer than the top row sees the walls/ceiling
    assert np.median(true[:, -1]) < np.median(true[:, 0])


def test_depth_at_the_pelvis_pixel_matches_the_body(lab):
    rows = np.flatnonzero(lab.visible[:, 0])[::40]
    W, H = 1000, 1000
    h, w = 200, 200
    z = render_depth(lab, rows, size=(h, w), flavour="true")
    uv = lab.kp2d_gt[rows, 0]
    um = np.round((uv[:, 0] + 0.5) * w / W - 0.5).astype(int)
    vm = np.round((uv[:, 1] + 0.5) * h / H - 0.5).astype(int)
    d = z[np.arange(len(rows)), vm, um]
    gap = lab.kp3d[rows, 0, 2] - d
    assert np.median(gap) > 0.05 and np.quantile(gap, 0.9) < 0.3  # the front of the body, ~10-25 cm ahead


def test_outdoor_has_sky_and_the_metric_model_saturates():
    # several sequences: the plaza's walls (and whether the sky shows) depend on the walked path
    outdoor = generate("outdoor", 1200, seed=21, seq_seconds=(3.0, 5.0))
    rows = np.arange(0, 1200, 30)
    true = render_depth(outdoor, rows, flavour="true", size=(96, 54))
    metric = render_depth(outdoor, rows, flavour="metric", size=(96, 54))
    assert true.max() > 30.0  # distant walls / sky
    assert metric.max() <= 20.0 + 1e-4


def test_render_errors(lab, poseset):
    with pytest.raises(ConfigError, match="flavour"):
        render_depth(lab, [0], flavour="stereo")
    with pytest.raises(DataError, match="rows"):
        render_depth(lab, [800])
    with pytest.raises(DataError, match="not a synthetic-world clip"):
        render_depth(poseset, [0])


def test_camera_track_roundtrip_and_interpolation():
    keys = np.array([[0, 0, 1.5, 0, 0.1, 0], [1, 0, 1.5, 0.2, 0.1, 0.01], [2, 1, 1.4, 0.4, 0.12, 0]], float)
    tr = CameraTrack(keys, 0.5, np.array([[0, 0.01, 2.0, 0.3]]))
    back = CameraTrack.from_json(tr.to_json())
    t = np.linspace(0, 1.2, 13)
    np.testing.assert_allclose(back.pose(t), tr.pose(t))
    no_shake = CameraTrack(keys, 0.5)
    np.testing.assert_allclose(no_shake.pose(np.array([0.0, 0.5, 1.0])), keys)  # passes through the keys
    R, tvec, C = tr.extrinsics(t)
    np.testing.assert_allclose(np.einsum("tij,tkj->tik", R, R), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.einsum("tij,tj->ti", R, C) + tvec, 0.0, atol=1e-12)


def test_cli_writes_poseset_depth_maps_and_preview(tmp_path, capsys):
    out, png = tmp_path / "fit", tmp_path / "preview.png"
    rc = main(["synth", "--domain", "fitness", "--frames", "300", "--seed", "2", "--seq-seconds", "1.5", "2",
               "--out", str(out), "--depth-maps", "true", "--chunk", "128", "--map-size", "64",
               "--preview", str(png), "--preview-frames", "2", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "fitness: 300 frames" in text and "preview:" in text
    ps = PoseSet.load(out, validate=True)
    assert len(ps) == 300
    maps_dir = out / "depth_true_64x64"
    assert sorted(p.name for p in maps_dir.glob("*.npz")) == ["00000000.npz", "00000128.npz", "00000256.npz"]
    rows = np.array([0, 130, 299])
    np.testing.assert_allclose(load_depth_maps(maps_dir, rows), render_depth(ps, rows, size=(64, 64), flavour="true"),
                               rtol=2e-3)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a second run resumes: existing chunks are kept
    mtime = (maps_dir / "00000000.npz").stat().st_mtime_ns
    from auglift.datasets.synthetic import save_depth_maps
    save_depth_maps(ps, maps_dir, flavour="true", size=(64, 64), chunk=128)
    assert (maps_dir / "00000000.npz").stat().st_mtime_ns == mtime


def test_cli_errors(capsys):
    assert main(["synth", "--domain", "moon", "--out", "x"]) == 2
    assert "unknown domain 'moon'" in capsys.readouterr().err
    assert main(["synth", "--domain", "lab"]) == 2
    assert "nothing to do" in capsys.readouterr().err
    assert main(["synth", "--actions", "fly", "--preview", "x.png"]) == 2
    assert "unknown activity fly" in capsys.readouterr().err
