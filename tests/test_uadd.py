"""The UADD sampler: exact statistics on hand-built maps, fast mode within tolerance, radius rules,
validity, resolution independence, and a property test against a naive per-keypoint reference."""

from __future__ import annotations

import math
import multiprocessing as mp

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _depth_fixtures import lattice_max_radius, radial_map
from auglift import jit
from auglift.depth import kernels, uadd
from auglift.depth.uadd import (
    PAPER_STATS,
    RESEARCH_STATS,
    LinearRadius,
    ScaleAdaptiveRadius,
    Stats,
    descriptor_config,
    disk_pattern,
    radius_from_config,
    sample_uadd,
    to_map_pixels,
)
from auglift.errors import ConfigError, DataError

# Documented fast-vs-exact tolerance on smooth surfaces (planes, a sphere): every statistic within
# 20 % of the disk's exact depth spread (d_max - d_min) plus 1e-4 of the depth (float32 rounding).
# The worst cases are small radii, where exact mode itself is quantised to pixel centres.
FAST_TOL_SPREAD = 0.2


def naive_uadd(depth, kp, conf, radius, stats, scale=1.0):
    """Per-keypoint reference of exact mode: a Python loop over keypoints, a mask of pixel centres.

    Radii and squared distances use float32 like the implementation, so pixels exactly on the rim
    are decided the same way. A NaN keypoint-centre value makes the whole descriptor NaN.
    """
    b, j = conf.shape
    _, h, w = depth.shape
    out = np.full((b, j, 3), np.nan)
    sc = torch.tensor(scale, dtype=torch.float32)
    r_all = (radius.radii(torch.as_tensor(conf, dtype=torch.float32),
                          torch.as_tensor(kp, dtype=torch.float32) / sc) * sc).numpy()
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float32)
    for bi in range(b):
        for ji in range(j):
            x, y = kp[bi, ji]
            if not (np.isfinite(x) and np.isfinite(y) and -0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5):
                continue
            r = r_all[bi, ji]
            m = (uu - x) ** 2 + (vv - y) ** 2 <= r * r
            cy, cx = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
            m[cy, cx] = True
            v = depth[bi][m].astype(np.float64)
            v = v[~np.isnan(v)]
            if v.size == 0:
                continue
            centre = np.median(v) if stats.center == "median" else depth[bi, cy, cx]
            out[bi, ji] = [centre, np.quantile(v, stats.low), np.quantile(v, stats.high)]
    out[~np.isfinite(out).all(-1)] = np.nan
    return out


# ----------------------------------------------------------------------------- hand-built maps
def test_constant_map_gives_the_constant_in_both_modes():
    d = np.full((2, 40, 50), 3.25, np.float32)
    kp = np.array([[[10, 10], [0, 0], [49.4, 39.4], [25, 20]]] * 2, np.float32)
    conf = np.array([[1.0, 0.0, 0.5, 0.2]] * 2, np.float32)
    for mode in ("exact", "fast"):
        res = sample_uadd(d, kp, conf, mode=mode)
        assert res.valid.all()
        np.testing.assert_allclose(res.uadd, 3.25, rtol=1e-6)  # fast: bilinear weights round in float32
    np.testing.assert_array_equal(sample_uadd(d, kp, conf).uadd, 3.25)


def test_step_edge_exact_statistics():
    h, w = 60, 100
    d = np.broadcast_to(np.where(np.arange(w) < 50, 2.0, 5.0).astype(np.float32), (4, h, w)).copy()
    # keypoint halfway between the two columns at the edge: as many pixels each side -> median 3.5
    kp = np.array([[[49.5, 30]], [[52, 30]], [[20, 30]], [[80, 30]]], np.float32)
    conf = np.full((4, 1), 0.5, np.float32)  # r = 16.5 px
    res = sample_uadd(d, kp, conf, radius=LinearRadius(3, 30))
    np.testing.assert_allclose(res.uadd[0, 0], [3.5, 2.0, 5.0])
    np.testing.assert_allclose(res.uadd[1, 0], [5.0, 2.0, 5.0])  # more of the disk on the far side
    np.testing.assert_allclose(res.uadd[2, 0], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(res.uadd[3, 0], [5.0, 5.0, 5.0])
    # research statistics: the keypoint pixel (x = 49.5 rounds to column 50) and q10/q90
    q = sample_uadd(d, kp, conf, stats=Stats("keypoint", 0.1, 0.9)).uadd
    np.testing.assert_allclose(q[0, 0], [5.0, 2.0, 5.0])
    np.testing.assert_allclose(q[1, 0], [5.0, 2.0, 5.0])  # > 10 % of the disk lies left of the edge


def test_step_edge_keypoint_centre_is_the_nearest_pixel():
    d = np.where(np.arange(40)[None, :] < 20, 1.0, 9.0).astype(np.float32)[None, :, :].repeat(1, 0)
    d = np.broadcast_to(d, (1, 30, 40)).copy()
    kp = np.array([[[19.4, 10], [19.6, 10], [19.5, 10]]], np.float32)
    res = sample_uadd(d, kp, np.ones((1, 3), np.float32), stats=Stats("keypoint"))
    np.testing.assert_array_equal(res.uadd[0, :, 0], [1.0, 9.0, 9.0])  # x=19.5 rounds half up to column 20


def test_plane_exact_statistics():
    """On a plane through integer keypoints the pixel set is symmetric: median = value at the keypoint,
    min/max = value -/+ slope * (largest lattice offset along the slope)."""
    h, w = 80, 90
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
    gx, gy = 0.02, 0.0
    d = (4.0 + gx * uu + gy * vv).astype(np.float32)[None].repeat(3, 0)
    kp = np.array([[[40, 40]], [[45, 30]], [[50, 40]]], np.float32)  # disks inside the image
    conf = np.array([[1.0], [0.5], [0.0]], np.float32)
    rad = LinearRadius(3, 30)
    res = sample_uadd(d, kp, conf, radius=rad)
    for i in range(3):
        r = 3 + (1 - conf[i, 0]) * 27
        x, y = kp[i, 0]
        centre = 4.0 + gx * x + gy * y
        reach = math.floor(r)  # largest |dx| with dx^2 <= r^2 (dy = 0)
        np.testing.assert_allclose(res.uadd[i, 0], [centre, centre - gx * reach, centre + gx * reach], rtol=1e-6)


def test_sphere_exact_statistics():
    """A sphere of radius R seen orthographically: depth z0 - sqrt(R^2 - rho^2). At its centre the
    minimum is z0 - R, the maximum is reached at the farthest pixel of the disk, and the median at the
    median distance (a monotone function of rho)."""
    h = w = 121
    cx = cy = 60
    big_r, z0 = 50.0, 6.0
    rho = radial_map(h, w, cx, cy).astype(np.float64)
    d = np.where(rho < big_r, z0 - np.sqrt(np.clip(big_r**2 - rho**2, 0, None)), z0).astype(np.float32)[None]
    for r in (3.0, 7.5, 30.0):
        rad = LinearRadius(r, r)
        res = sample_uadd(d, np.array([[[cx, cy]]], np.float32), np.ones((1, 1), np.float32), radius=rad)
        i, j = np.mgrid[-31:32, -31:32]
        dist = np.sqrt(i * i + j * j)
        inside = np.sort(dist[dist <= r])
        assert inside.size % 2 == 1
        med_rho = inside[inside.size // 2]
        rho_max = lattice_max_radius(r)
        expect = [z0 - math.sqrt(big_r**2 - med_rho**2), z0 - big_r, z0 - math.sqrt(big_r**2 - rho_max**2)]
        np.testing.assert_allclose(res.uadd[0, 0], expect, rtol=1e-6)


# ----------------------------------------------------------------------------- fast mode
def smooth_scene(h: int, w: int) -> np.ndarray:
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
    plane = 6.0 + 0.01 * uu - 0.004 * vv
    rho = np.hypot(uu - w * 0.5, vv - h * 0.55)
    sphere = 4.0 - np.sqrt(np.clip(70.0**2 - rho**2, 0, None)) / 70.0
    return np.where(rho < 70, np.minimum(plane, sphere), plane).astype(np.float32)


@pytest.mark.parametrize("stats", [Stats(), RESEARCH_STATS, Stats("median", 0.25, 0.75)])
def test_fast_within_documented_tolerance_of_exact_on_smooth_surfaces(stats):
    rng = np.random.default_rng(3)
    h, w = 200, 240
    d = np.stack([smooth_scene(h, w)] * 4)
    # keypoints inside the sphere or on the plane, away from the sphere's rim (a crease)
    kp = np.stack([rng.uniform(100, 140, (4, 40)), rng.uniform(90, 130, (4, 40))], -1).astype(np.float32)
    kp[:, 20:] = np.stack([rng.uniform(0, 15, (4, 20)), rng.uniform(0, 199, (4, 20))], -1)
    conf = rng.uniform(0, 1, (4, 40)).astype(np.float32)
    ex = sample_uadd(d, kp, conf, stats=stats)
    fa = sample_uadd(d, kp, conf, stats=stats, mode="fast")
    np.testing.assert_array_equal(ex.valid, fa.valid)
    spread = (ex.uadd[..., 2] - ex.uadd[..., 1])[..., None]
    tol = FAST_TOL_SPREAD * np.maximum(spread, 0) + 1e-4 * np.abs(ex.uadd)
    assert (np.abs(fa.uadd - ex.uadd) <= tol).all(), np.abs(fa.uadd - ex.uadd).max()


def test_fast_uses_the_pattern_radius_and_stays_near_the_disk():
    # depth = distance from the keypoint: fast mode reads the pixel nearest to each pattern point,
    # so a sample lies at most sqrt(2)/2 px beyond the rim, and the spiral's last point reaches it
    h, w = 101, 101
    d = radial_map(h, w, 50, 50)[None]
    for c, r in ((1.0, 3.0), (0.5, 16.5), (0.0, 30.0)):
        res = sample_uadd(d, np.array([[[50, 50]]], np.float32), np.array([[c]], np.float32), mode="fast")
        dd, lo, hi = res.uadd[0, 0]
        assert lo == pytest.approx(0.0, abs=1e-6)  # the centre sample
        assert r - 0.71 <= hi <= r + 0.71
        assert 0.55 * r <= dd <= 0.8 * r  # median of rho over an equal-area disk = r / sqrt(2)


@pytest.mark.parametrize("r", [6.0, 15.0, 30.0])
def test_fast_rim_points_find_extremes_where_an_edge_grazes_the_disk(r):
    # a near surface (2 m) whose edge cuts 1 px into the disk from either side: the sparse area
    # spiral misses the sliver (bilinear sampling of it gave 2.39 m at r = 30), the rim points (at
    # r - 0.71 px) catch it, as exact mode does
    h, w = 80, 120
    d = np.full((2, h, w), 5.0, np.float32)
    d[0, :, 60:] = 2.0  # edge to the right of the keypoint
    d[1, :, :60] = 8.0  # a far surface to the left: the maximum
    kp = np.array([[[60 - r + 1.0, 40.0]], [[59 + r - 1.0, 40.0]]], np.float32)
    rad = LinearRadius(r, r)
    ex = sample_uadd(d, kp, np.ones((2, 1), np.float32), radius=rad)
    fa = sample_uadd(d, kp, np.ones((2, 1), np.float32), radius=rad, mode="fast")
    assert ex.uadd[0, 0, 1] == 2.0 and ex.uadd[1, 0, 2] == 8.0
    np.testing.assert_array_equal(fa.uadd[:, 0, 1:], ex.uadd[:, 0, 1:])  # min and max exact
    np.testing.assert_array_equal(fa.uadd[:, 0, 0], ex.uadd[:, 0, 0])  # the median: the far side


def test_disk_pattern_is_deterministic_equal_area_and_centred():
    p = disk_pattern(97)
    assert p.shape == (97, 2)
    np.testing.assert_array_equal(p[0], [0, 0])
    np.testing.assert_array_equal(p, disk_pattern(97))
    rho = np.hypot(p[:, 0], p[:, 1])
    assert rho.max() == pytest.approx(1.0)
    assert (rho <= 1 + 1e-12).all()
    # equal area: the fraction of points within radius s is about s^2
    for s in (0.3, 0.5, 0.8):
        assert abs((rho <= s).mean() - s * s) < 0.03
    with pytest.raises(ConfigError):
        disk_pattern(0)


# ----------------------------------------------------------------------------- radius rules
def test_linear_radius_formula():
    rad = LinearRadius(2.0, 20.0)
    c = torch.tensor([[0.0, 0.25, 1.0, 1.5, -0.5, math.nan]])
    r = rad.radii(c, torch.zeros(1, 6, 2))
    np.testing.assert_allclose(r.numpy()[0], [20.0, 15.5, 2.0, 2.0, 20.0, 20.0])
    with pytest.raises(ConfigError):
        LinearRadius(5, 2)


def test_scale_adaptive_radius_formula():
    rad = ScaleAdaptiveRadius()
    kp = torch.zeros(3, 17, 2)
    kp[:, 8, 1] = torch.tensor([-100.0, -400.0, -10.0])  # thorax above the pelvis: S = 100, 400, 10 px
    c = torch.tensor([0.9, 0.2, 0.5])[:, None].expand(3, 17)
    r = rad.radii(c, kp).numpy()
    for i, (s, ci) in enumerate(((100, 0.9), (400, 0.2), (10, 0.5))):
        expect = min(30.0, max(3.0, 0.04 * s * (1 + 3 * (1 - ci)) ** 1.5))
        np.testing.assert_allclose(r[i], expect, rtol=1e-6)
    assert r[1, 0] == 30.0 and r[2, 0] == 3.0  # both clip ends are reached
    kp[0, 0] = math.nan  # missing pelvis -> r_max for the frame
    np.testing.assert_allclose(rad.radii(c, kp).numpy()[0], 30.0)
    with pytest.raises(ConfigError, match="joints"):
        rad.radii(c[:, :5], kp[:, :5])


def test_radius_is_applied_in_original_pixels_with_scale():
    """d = distance to the keypoint in *image* px, on maps at 1x and 2.5x: d_max is the radius."""
    conf = np.array([[0.0, 0.5, 1.0]], np.float32)
    for s in (1.0, 2.5):
        size = 2 * int(60 * s) + 1
        c = (size - 1) / 2  # an integer: the keypoint sits on a pixel centre
        d = radial_map(size, size, c, c, scale=s)[None]
        kp = np.full((1, 3, 2), c, np.float32)
        res = sample_uadd(d, kp, conf, scale=s)
        for j, cj in enumerate(conf[0]):
            r = 3 + (1 - cj) * 27
            assert res.uadd[0, j, 2] == pytest.approx(lattice_max_radius(r * s) / s, rel=1e-5)
            assert res.uadd[0, j, 2] > r - 1.0 / s - 1e-5


def test_descriptors_do_not_depend_on_map_resolution():
    """The same scene rendered at three resolutions (pixel-centre aligned) gives the same descriptors,
    up to the pixel grid: fast mode reads each sample's nearest pixel, at most 0.71 map px away from
    the sample point (plus 0.71 px for the points pulled inside the rim), so a value may move by the
    scene's steepest slope (0.036 per image px) times that distance."""
    width, height = 160, 120

    def render(w, h):
        sx, sy = w / width, h / height
        vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
        u, v = (uu + 0.5) / sx - 0.5, (vv + 0.5) / sy - 0.5  # image px of each map pixel centre
        return (5 + 0.01 * u + 0.02 * v + 0.3 * np.sin(u / 15.0)).astype(np.float32)

    rng = np.random.default_rng(0)
    kp = np.stack([rng.uniform(20, 140, (2, 17)), rng.uniform(20, 100, (2, 17))], -1).astype(np.float32)
    conf = rng.uniform(0, 1, (2, 17)).astype(np.float32)
    ref = sample_uadd(np.stack([render(width, height)] * 2), kp, conf, mode="fast").uadd
    for w, h in ((320, 240), (80, 60)):
        kpm, scale = to_map_pixels(kp, (width, height), (w, h))
        np.testing.assert_allclose(scale, w / width)
        got = sample_uadd(np.stack([render(w, h)] * 2), kpm, conf, mode="fast", scale=scale).uadd
        bound = 0.036 * 1.42 * (1.0 + 1.0 / scale[0])  # both maps' pixel grids
        assert np.abs(got - ref).max() <= bound
        assert np.abs(got - ref).mean() < 0.015  # typically far below the bound (0.005-0.009 here)


def test_to_map_pixels_aligns_pixel_centres():
    kp = np.array([[[-0.5, -0.5], [99.5, 49.5], [0, 0]]], np.float32)
    out, scale = to_map_pixels(kp, (100, 50), (50, 25))
    np.testing.assert_allclose(out[0, 0], [-0.5, -0.5])
    np.testing.assert_allclose(out[0, 1], [49.5, 24.5])
    np.testing.assert_allclose(out[0, 2], [-0.25, -0.25])
    assert scale.shape == (1,) and scale[0] == pytest.approx(0.5)
    t_out, t_scale = to_map_pixels(torch.from_numpy(kp), (100, 50), (50, 25))
    assert torch.is_tensor(t_scale) and float(t_scale[0]) == pytest.approx(0.5)
    np.testing.assert_allclose(t_out.numpy(), out)


# ----------------------------------------------------------------------------- validity, sharing, errors
def test_invalid_keypoints_get_nan_and_a_flag():
    d = np.ones((1, 20, 30), np.float32)
    kp = np.array([[[np.nan, 5], [5, np.nan], [-0.6, 5], [29.5, 5], [5, 19.5], [-0.5, -0.5], [29.49, 19.49]]],
                  np.float32)
    for mode in ("exact", "fast"):
        res = sample_uadd(d, kp, np.ones((1, 7), np.float32), mode=mode)
        np.testing.assert_array_equal(res.valid[0], [False, False, False, False, False, True, True])
        assert np.isnan(res.uadd[0, :5]).all() and np.isfinite(res.uadd[0, 5:]).all()


def test_nan_depth_pixels_are_holes():
    d = np.full((1, 30, 30), 2.0, np.float32)
    d[0, :, :15] = np.nan
    kp = np.array([[[20, 15], [5, 15], [14.6, 15]]], np.float32)
    res = sample_uadd(d, kp, np.zeros((1, 3), np.float32))  # r = 30 px: every disk reaches the valid half
    assert res.valid.all()
    np.testing.assert_allclose(res.uadd[0], 2.0)
    kp2 = np.array([[[5, 15]]], np.float32)
    small = sample_uadd(d, kp2, np.ones((1, 1), np.float32))  # r = 3: only NaN pixels
    assert not small.valid[0, 0] and np.isnan(small.uadd).all()
    d[0, 15, 21] = np.inf  # infinite depth is not a hole: the maximum reaches it, the descriptor is invalid
    for mode in ("exact", "fast"):
        res = sample_uadd(d, np.array([[[20, 15], [27, 5]]], np.float32), np.ones((1, 2), np.float32), mode=mode)
        np.testing.assert_array_equal(res.valid[0], [False, True])


def test_map_index_shares_maps_and_equals_repeated_maps():
    rng = np.random.default_rng(0)
    maps = rng.uniform(1, 5, (3, 40, 50)).astype(np.float32)
    mi = np.array([0, 0, 2, 1, 2, 2])
    kp = np.stack([rng.uniform(0, 49, (6, 17)), rng.uniform(0, 39, (6, 17))], -1).astype(np.float32)
    conf = rng.uniform(0, 1, (6, 17)).astype(np.float32)
    for mode in ("exact", "fast"):
        shared = sample_uadd(maps, kp, conf, map_index=mi, mode=mode)
        repeated = sample_uadd(maps[mi], kp, conf, mode=mode)
        np.testing.assert_array_equal(shared.uadd, repeated.uadd)


@pytest.mark.parametrize("stats", [Stats(), RESEARCH_STATS, Stats("median", 0.25, 0.8)])
@pytest.mark.parametrize("holes", [False, True])
def test_fast_one_frame_per_map_layout_equals_the_general_layout(stats, holes):
    # map_index=None (or arange, as the extraction passes it) takes the sliced per-map path, maps
    # read out of order the general (padded, per-map gathered) path; disks cross the border, some
    # keypoints are NaN or outside
    rng = np.random.default_rng(7)
    maps = rng.uniform(1, 5, (5, 30, 45)).astype(np.float32)
    if holes:
        maps[rng.uniform(size=maps.shape) < 0.2] = np.nan
    kp = np.stack([rng.uniform(-3, 48, (5, 17)), rng.uniform(-3, 33, (5, 17))], -1).astype(np.float32)
    kp[0, 3] = np.nan
    conf = rng.uniform(0, 1, (5, 17)).astype(np.float32)
    a = sample_uadd(maps, kp, conf, mode="fast", stats=stats)
    perm = np.array([3, 0, 4, 1, 2])
    for mi, m in ((np.arange(5), maps), (np.argsort(perm), maps[perm])):
        b = sample_uadd(m, kp, conf, mode="fast", stats=stats, map_index=mi)
        np.testing.assert_array_equal(a.uadd, b.uadd)
        np.testing.assert_array_equal(a.valid, b.valid)
    # two consecutive keypoint sets per map (the per-map path with 34 keypoints a map) = the maps repeated
    kp2, conf2 = np.repeat(kp, 2, 0), np.repeat(conf, 2, 0)
    c = sample_uadd(maps, kp2, conf2, mode="fast", stats=stats, map_index=np.repeat(np.arange(5), 2))
    np.testing.assert_array_equal(c.uadd, np.repeat(a.uadd, 2, 0))
    assert a.valid.any() and not a.valid.all()


def test_fast_mode_ignores_reduced_matmul_precision():
    rng = np.random.default_rng(2)
    d = rng.uniform(1, 5, (3, 60, 70)).astype(np.float32)
    kp = np.stack([rng.uniform(0, 69, (3, 17)), rng.uniform(0, 59, (3, 17))], -1).astype(np.float32)
    conf = rng.uniform(0, 1, (3, 17)).astype(np.float32)
    ref = sample_uadd(d, kp, conf, mode="fast").uadd
    old = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")  # may use bf16 inside float32 matmuls
        got = sample_uadd(d, kp, conf, mode="fast").uadd
    finally:
        torch.set_float32_matmul_precision(old)
    np.testing.assert_allclose(got, ref, rtol=1e-6)


@pytest.mark.parametrize("stats", [PAPER_STATS, RESEARCH_STATS, Stats("median", 0.25, 0.75),
                                   Stats("keypoint", 0.0, 1.0)])
def test_fast_cpu_kernel_reads_the_pixels_of_the_grid_sample_path(stats, monkeypatch):
    """The fused CPU kernel and the grid_sample path (the one CUDA runs) read the same pixels: on maps of
    random values (any other pixel shows) with holes, disks across the border and keypoints outside,
    their statistics agree except where a point falls on a half-pixel tie (rounded differently)."""
    rng = np.random.default_rng(11)
    maps = rng.uniform(1, 9, (40, 90, 120)).astype(np.float32)
    maps[:, 20:35, 30:60] = np.nan  # holes
    maps[:3] = np.nan  # maps without any depth
    kp = np.stack([rng.uniform(-8, 127, (40, 17)), rng.uniform(-8, 97, (40, 17))], -1).astype(np.float32)
    conf = rng.uniform(0, 1, (40, 17)).astype(np.float32)
    got = sample_uadd(maps, kp, conf, mode="fast", stats=stats)
    monkeypatch.setattr(uadd, "_CPU_KERNEL", False)
    ref = sample_uadd(maps, kp, conf, mode="fast", stats=stats)
    assert ref.valid.sum() > 400 and (~ref.valid).sum() > 100  # both kinds of keypoint occur
    same = (got.uadd == ref.uadd) | (np.isnan(got.uadd) & np.isnan(ref.uadd))
    assert same.mean() > 0.99 and (got.valid == ref.valid).mean() > 0.99


def test_fast_cpu_kernel_does_not_depend_on_threads_or_batch():
    rng = np.random.default_rng(12)
    maps = rng.uniform(1, 9, (6, 200, 300)).astype(np.float32)
    n = 3 * kernels._MIN_PER_THREAD + 5  # split over up to 3 threads
    kmap = rng.integers(0, 6, n)
    kxy = np.stack([rng.uniform(-3, 302, n), rng.uniform(-3, 202, n)], -1).astype(np.float32)
    kr = rng.uniform(0, 30, n).astype(np.float32)
    area, rim = uadd._pattern(97, uadd.RIM_POINTS)
    one = kernels.gather(maps, kmap, kxy, kr, area, rim, 0.71, threads=1)
    for threads in (2, 3):
        many = kernels.gather(maps, kmap, kxy, kr, area, rim, 0.71, threads=threads)
        for a, b in zip(one, many, strict=True):
            np.testing.assert_array_equal(a, b)
    part = kernels.gather(maps, kmap[100:200], kxy[100:200], kr[100:200], area, rim, 0.71)
    np.testing.assert_array_equal(part[0], one[0][100:200])
    # an area sample is the nearest pixel of its pattern point, NaN outside the image
    k = int(np.argmax((kxy[:, 0] > 40) & (kxy[:, 0] < 250) & (kxy[:, 1] > 40) & (kxy[:, 1] < 150)))
    u = np.floor(kxy[k, 0] + kr[k] * area[:, 0].astype(np.float32) + 0.5).astype(int)
    v = np.floor(kxy[k, 1] + kr[k] * area[:, 1].astype(np.float32) + 0.5).astype(int)
    np.testing.assert_array_equal(one[0][k], maps[kmap[k], v, u])


def test_row_quantiles_kernel_equals_the_torch_path_and_a_hand_computation():
    """The CPU's quantiles of sorted rows (numba) are the torch path's (which CUDA runs) bit for bit, on
    rows with NaN tails, infinities and no value at all, and NumPy's linear quantiles up to rounding."""
    rng = np.random.default_rng(13)
    rows = rng.uniform(1, 9, (400, 97)).astype(np.float32)
    rows[rng.uniform(size=rows.shape) < 0.1] = np.nan
    rows[:40, rng.integers(0, 97, 40)] = np.inf
    rows[40:50, :] = np.nan  # no value
    rows[50:60, 1:] = np.nan  # one value
    rows.sort(axis=1)
    qs = [0.0, 0.1, 0.25, 0.5, 0.9, 1.0]
    got = np.full((400, len(qs) + 2), -1.0, np.float32)
    kernels.row_quantiles(rows, np.asarray(qs), got, 0, np.arange(1, len(qs) + 1))  # columns 1..6
    assert (got[:, 0] == -1).all() and (got[:, -1] == -1).all()  # other columns untouched
    ref = uadd._sorted_quantiles_torch(torch.from_numpy(rows), qs).numpy()
    np.testing.assert_array_equal(got[:, 1:-1], ref)
    assert np.isnan(got[40:50, 1:-1]).all()
    np.testing.assert_array_equal(got[50:60, 1:-1], np.repeat(rows[50:60, :1], len(qs), 1))
    # the median of an odd count is its middle value; of an even count the mean of the two middle ones
    row = rows[100][~np.isnan(rows[100])]
    n = row.size
    mid = row[n // 2] if n % 2 else row[n // 2 - 1] + (row[n // 2] - row[n // 2 - 1]) * np.float32(0.5)
    assert got[100, 4] == mid
    finite = np.isfinite(rows).sum(1) == (~np.isnan(rows)).sum(1)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(got[60:][finite[60:], 1:-1], np.nanquantile(rows[60:][finite[60:]], qs, axis=1).T,
                                   rtol=1e-6)


def test_fast_cpu_gather_hands_over_sorted_blocks_and_reads_nothing_off_the_image():
    rng = np.random.default_rng(14)
    h, w = 120, 160
    maps = rng.uniform(1, 9, (4, h, w)).astype(np.float32)
    n = 2 * kernels.BLOCK + 2 * kernels._MIN_PER_THREAD + 37  # several blocks in each of 2 threads
    kmap = rng.integers(0, 4, n)
    kxy = np.stack([rng.uniform(-6, w + 5, n), rng.uniform(-6, h + 5, n)], -1).astype(np.float32)
    kxy[::97] = np.nan
    kr = rng.uniform(0, 30, n).astype(np.float32)
    area, rim = uadd._pattern(97, uadd.RIM_POINTS)
    ref_vals, ref_ext = kernels.gather(maps, kmap, kxy, kr, area, rim, 0.71, sort=True)
    for threads in (1, 2):
        got, sizes = np.full_like(ref_vals, -1.0), []

        def take(k0: int, rows: np.ndarray, got=got, sizes=sizes) -> None:
            got[k0:k0 + rows.shape[0]] = rows
            sizes.append(rows.shape[0])

        vals, ext = kernels.gather(maps, kmap, kxy, kr, area, rim, 0.71, threads=threads, sort=True, each_block=take)
        assert vals is None and sum(sizes) == n and max(sizes) <= kernels.BLOCK
        np.testing.assert_array_equal(got, ref_vals)
        np.testing.assert_array_equal(ext, ref_ext)
    with np.errstate(invalid="ignore"):
        on = (kxy[:, 0] >= -0.5) & (kxy[:, 0] < w - 0.5) & (kxy[:, 1] >= -0.5) & (kxy[:, 1] < h - 0.5)
    assert (~on).sum() > 100 and np.isnan(ref_vals[~on]).all() and np.isnan(ref_ext[~on]).all()
    # the third column is the keypoint's nearest pixel; minimum and maximum bracket the area samples
    cx, cy = (np.floor(kxy[on, i] + 0.5).astype(int) for i in (0, 1))
    np.testing.assert_array_equal(ref_ext[on, 2], maps[kmap[on], cy, cx])
    assert (ref_ext[on, 0] <= np.nanmin(ref_vals[on], 1)).all() and (ref_ext[on, 1] >= np.nanmax(ref_vals[on], 1)).all()
    # rows are sorted as floats, NaN last, also with negative depths and NaN holes whose sign bit is set
    # (blocks without a sign bit set are sorted by their bit patterns, others as floats)
    for shift in (0.0, 5.0):
        m = maps - np.float32(shift)
        m[:, 30:50, 40:90] = np.copysign(np.float32(np.nan), -1)
        plain, _ = kernels.gather(m, kmap, kxy, kr, area, rim, 0.71)
        srt, _ = kernels.gather(m, kmap, kxy, kr, area, rim, 0.71, sort=True)
        np.testing.assert_array_equal(srt, np.sort(plain, axis=1))
        assert (np.diff(np.isnan(srt).astype(int), axis=1) >= 0).all()  # NaN last in every row
        assert (m < 0).any() == (shift > 0) and np.isnan(plain).any()


def test_scale_one_as_a_number_or_a_tensor_gives_the_same_descriptors():
    rng = np.random.default_rng(15)
    maps = rng.uniform(1, 9, (3, 50, 70)).astype(np.float32)
    kp = np.stack([rng.uniform(0, 69, (3, 17)), rng.uniform(0, 49, (3, 17))], -1).astype(np.float32)
    conf = rng.uniform(0, 1, (3, 17)).astype(np.float32)
    for mode in ("fast", "exact"):
        a = sample_uadd(maps, kp, conf, mode=mode, scale=1.0)
        b = sample_uadd(maps, kp, conf, mode=mode, scale=torch.ones(3))
        np.testing.assert_array_equal(a.uadd, b.uadd)


def test_torch_in_torch_out_and_numpy_in_numpy_out():
    d = torch.rand(2, 20, 20) + 1
    kp = torch.full((2, 17, 2), 10.0)
    conf = torch.ones(2, 17)
    res = sample_uadd(d, kp, conf, mode="fast")
    assert torch.is_tensor(res.uadd) and res.uadd.dtype == torch.float32 and res.valid.dtype == torch.bool
    res2 = sample_uadd(d.numpy(), kp.numpy(), conf.numpy(), mode="fast")
    assert isinstance(res2.uadd, np.ndarray) and res2.uadd.shape == (2, 17, 3)
    np.testing.assert_array_equal(res.uadd.numpy(), res2.uadd)


def test_bad_inputs_raise_clear_errors():
    d = np.ones((2, 10, 10), np.float32)
    kp = np.ones((2, 17, 2), np.float32)
    c = np.ones((2, 17), np.float32)
    with pytest.raises(DataError, match="depth"):
        sample_uadd(d[0], kp, c)
    with pytest.raises(DataError, match="kp2d"):
        sample_uadd(d, kp[..., 0], c)
    with pytest.raises(DataError, match="conf"):
        sample_uadd(d, kp, c[:, :3])
    with pytest.raises(DataError, match="map_index"):
        sample_uadd(d, kp, c, map_index=[0, 5])
    with pytest.raises(DataError, match="depth maps"):
        sample_uadd(d[:1], kp, c)
    with pytest.raises(DataError, match="scale"):
        sample_uadd(d, kp, c, scale=-1.0)
    with pytest.raises(ConfigError):
        sample_uadd(d, kp, c, mode="approx")
    with pytest.raises(ConfigError):
        Stats("mean")
    with pytest.raises(ConfigError):
        Stats("median", 0.9, 0.1)


def test_descriptor_config_round_trips_the_radius():
    for rad in (LinearRadius(2, 25), ScaleAdaptiveRadius(k=0.05)):
        cfg = descriptor_config(rad, Stats(), "fast")
        assert radius_from_config(cfg["radius"]) == rad
        assert cfg["pattern"] == {"kind": "sunflower", "points": 97, "read": "nearest pixel", "rim_points": 32}
    with pytest.raises(ConfigError):
        radius_from_config({"rule": "cubic"})


# ----------------------------------------------------------------------------- property test
@st.composite
def sampler_cases(draw):
    rad = draw(st.sampled_from([LinearRadius(), LinearRadius(0.0, 4.0), ScaleAdaptiveRadius(r_min=1.0, r_max=6.0)]))
    b = draw(st.integers(1, 3))
    j = draw(st.integers(9, 10)) if isinstance(rad, ScaleAdaptiveRadius) else draw(st.integers(1, 5))
    h = draw(st.integers(1, 24))
    w = draw(st.integers(1, 24))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 8.0, (b, h, w)).astype(np.float32)
    if draw(st.booleans()):
        depth[rng.uniform(size=depth.shape) < 0.2] = np.nan
    coord = st.one_of(st.floats(-6, 30, allow_nan=False, width=32), st.just(float("nan")),
                      st.sampled_from([-0.5, -0.50001, 0.0, w - 0.5, w - 0.50001, h - 0.5]))
    kp = np.array(draw(st.lists(coord, min_size=b * j * 2, max_size=b * j * 2)), np.float32).reshape(b, j, 2)
    conf = np.array(draw(st.lists(st.one_of(st.floats(0, 1, width=32), st.just(float("nan"))),
                                  min_size=b * j, max_size=b * j)), np.float32).reshape(b, j)
    stats = draw(st.sampled_from([Stats(), RESEARCH_STATS, Stats("median", 0.3, 0.6)]))
    scale = draw(st.sampled_from([1.0, 0.5, 2.0]))
    return depth, kp, conf, rad, stats, scale


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sampler_cases())
def test_exact_matches_the_naive_reference_and_fast_is_consistent(case):
    depth, kp, conf, rad, stats, scale = case
    ex = sample_uadd(depth, kp, conf, radius=rad, stats=stats, scale=scale)
    ref = naive_uadd(depth, kp, conf, rad, stats, scale)
    np.testing.assert_array_equal(ex.valid, np.isfinite(ref).all(-1))
    np.testing.assert_allclose(ex.uadd, ref.astype(np.float32), rtol=1e-6, equal_nan=True)
    fa = sample_uadd(depth, kp, conf, radius=rad, stats=stats, scale=scale, mode="fast")
    assert fa.uadd.shape == ex.uadd.shape and fa.uadd.dtype == np.float32
    inside = np.isfinite(kp).all(-1) & (kp[..., 0] >= -0.5) & (kp[..., 0] < depth.shape[2] - 0.5) \
        & (kp[..., 1] >= -0.5) & (kp[..., 1] < depth.shape[1] - 0.5)
    assert not (fa.valid & ~inside).any()
    assert np.isnan(fa.uadd[~fa.valid]).all() and np.isfinite(fa.uadd[fa.valid]).all()
    if np.isfinite(depth).all():
        np.testing.assert_array_equal(fa.valid, inside)
        lo, hi = depth.min(), depth.max()
        v = fa.uadd[fa.valid]
        assert ((v >= lo - 1e-5) & (v <= hi + 1e-5)).all()
        assert (v[:, 1] <= v[:, 2] + 1e-6).all()
        if stats.center == "median":
            assert ((v[:, 1] <= v[:, 0] + 1e-6) & (v[:, 0] <= v[:, 2] + 1e-6)).all()


# Fast-vs-exact tolerance on planes, per statistic, in pixels of the plane's slope (nearest-pixel
# samples lie within 0.71 px of their pattern points). Disks inside the image: every statistic
# within 1.2 px (measured worst over 1,500 random cases: median 0.7, min/max and q10/q90 1.0).
# Disks cut by the border: within 1.2 (1 + r / 5) px (measured 0.95 (1 + r / 5)): the clipped
# disk's extremes lie where the circle meets the border, between rim points 2 pi r / 32 apart.
PLANE_TOL_PX = 1.2


@st.composite
def plane_cases(draw):
    h, w = draw(st.integers(4, 40)), draw(st.integers(4, 40))
    gx, gy = draw(st.floats(-0.05, 0.05)), draw(st.floats(-0.05, 0.05))
    j = draw(st.integers(1, 8))
    xs = draw(st.lists(st.floats(-0.5, w - 0.51), min_size=j, max_size=j))
    ys = draw(st.lists(st.floats(-0.5, h - 0.51), min_size=j, max_size=j))
    conf = draw(st.lists(st.one_of(st.floats(0, 1), st.just(0.0), st.just(float("nan"))), min_size=j, max_size=j))
    r_max = draw(st.floats(3.0, 30.0))
    stats = draw(st.sampled_from([Stats(), RESEARCH_STATS, Stats("median", 0.25, 0.75)]))
    return h, w, gx, gy, np.array([list(zip(xs, ys))], np.float32), np.array([conf], np.float32), r_max, stats


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plane_cases())
def test_fast_agrees_with_exact_on_planes_within_the_stated_tolerance_per_statistic(case):
    h, w, gx, gy, kp, conf, r_max, stats = case
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
    d = (4.0 + gx * uu + gy * vv).astype(np.float32)[None]
    rad = LinearRadius(3.0, r_max)
    ex = sample_uadd(d, kp, conf, radius=rad, stats=stats)
    fa = sample_uadd(d, kp, conf, radius=rad, stats=stats, mode="fast")
    np.testing.assert_array_equal(fa.valid, ex.valid)
    assert fa.valid.all()
    r = rad.radii(torch.from_numpy(conf), torch.from_numpy(kp)).numpy()
    x, y = kp[..., 0], kp[..., 1]
    cut = (x - r < -0.5) | (x + r > w - 0.5) | (y - r < -0.5) | (y + r > h - 0.5)
    tol_px = PLANE_TOL_PX * np.where(cut, 1.0 + r / 5.0, 1.0)
    tol = tol_px[..., None] * math.hypot(gx, gy) + 1e-5 * np.abs(ex.uadd)
    assert (np.abs(fa.uadd - ex.uadd) <= tol).all(), (np.abs(fa.uadd - ex.uadd) / np.maximum(tol, 1e-12)).max()


def test_kernels_compile_without_a_writable_cache(monkeypatch):
    """Where numba finds no writable cache location it refuses cache=True at decoration; the kernels'
    decorator then compiles without the on-disk cache and the function still runs."""
    real = jit.numba.njit

    def refusing(*args, **kw):
        if kw.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x.py'")
        return real(*args, **kw)

    monkeypatch.setattr(jit.numba, "njit", refusing)

    def add_one(x):
        return x + 1

    assert jit.njit_cached()(add_one)(41) == 42


def test_kernel_thread_pool_works_in_a_forked_child():
    """A process forked after the kernel's threads started gets pools of its own (the parent's threads do
    not exist in the child: using its pool would hang)."""
    rng = np.random.default_rng(13)
    maps = rng.uniform(1, 9, (2, 80, 80)).astype(np.float32)
    n = 2 * kernels._MIN_PER_THREAD
    args = (maps, rng.integers(0, 2, n), rng.uniform(5, 75, (n, 2)).astype(np.float32),
            np.full(n, 4, np.float32), *uadd._pattern(97, uadd.RIM_POINTS), 0.71)
    ref = kernels.gather(*args, threads=2)[0]  # the parent's pool exists now
    with mp.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(kernels.gather, args, {"threads": 2}).get(timeout=120)[0]
    np.testing.assert_array_equal(got, ref)
