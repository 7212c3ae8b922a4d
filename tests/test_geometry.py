import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from auglift.geometry import (
    backproject,
    camera_to_world,
    denormalize_screen,
    flip_lr,
    normalize_screen,
    procrustes,
    project,
    root_relative,
    world_to_camera,
)
from auglift.skeleton import H36M17


def test_world_camera_round_trip():
    rng = np.random.default_rng(0)
    R = Rotation.random(random_state=1).as_matrix()
    t = rng.normal(size=3)
    X = rng.normal(size=(10, 17, 3))
    Xc = world_to_camera(X, R, t)
    np.testing.assert_allclose(Xc[3, 4], R @ X[3, 4] + t)
    np.testing.assert_allclose(camera_to_world(Xc, R, t), X, atol=1e-12)


def test_projection_and_backprojection():
    X = np.array([[[0.0, 0.0, 5.0], [1.0, -0.5, 4.0]]])
    uv = project(X, np.array([1000.0, 1100.0, 500.0, 400.0]))
    np.testing.assert_allclose(uv[0, 0], [500, 400])
    np.testing.assert_allclose(uv[0, 1], [500 + 1000 * 0.25, 400 - 1100 * 0.125])
    np.testing.assert_allclose(backproject(uv, X[..., 2], np.array([1000.0, 1100.0, 500.0, 400.0])), X)
    # per-frame intrinsics broadcast over joints
    intr = np.array([[1000.0, 1000, 0, 0], [500.0, 500, 0, 0]])
    uv2 = project(np.concatenate([X, X]), intr)
    np.testing.assert_allclose(uv2[1], uv2[0] / 2)


def test_distortion_matches_opencv_formula():
    X = np.array([[0.3, -0.2, 2.0]])
    k1, k2, p1, p2, k3 = 0.1, -0.05, 0.001, -0.002, 0.01
    uv = project(X, np.array([1000.0, 1000.0, 0.0, 0.0]), np.array([k1, k2, p1, p2, k3]))
    x, y = 0.15, -0.1
    r2 = x * x + y * y
    rad = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * rad + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * rad + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    np.testing.assert_allclose(uv[0], [1000 * xd, 1000 * yd])


@given(st.floats(1, 4000), st.floats(1, 4000), st.floats(-5000, 5000), st.floats(-5000, 5000))
def test_screen_normalisation_inverse(w, h, x, y):
    xy = np.array([[x, y]])
    n = normalize_screen(xy, w, h)
    np.testing.assert_allclose(n, [[2 * x / w - 1, 2 * y / w - h / w]], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(denormalize_screen(n, w, h), xy, rtol=1e-9, atol=1e-6)


def test_screen_normalisation_maps_image_to_unit_width():
    n = normalize_screen(np.array([[0.0, 0.0], [1000.0, 500.0]]), 1000, 500)
    np.testing.assert_allclose(n, [[-1, -0.5], [1, 0.5]])


def test_root_relative_and_flip():
    X = np.random.default_rng(0).normal(size=(4, 17, 3))
    R = root_relative(X)
    assert np.all(R[:, 0] == 0)
    F = flip_lr(X, H36M17.flip_permutation)
    np.testing.assert_allclose(F[:, 1, 0], -X[:, 4, 0])  # right hip <- mirrored left hip
    np.testing.assert_allclose(F[:, 1, 1:], X[:, 4, 1:])
    np.testing.assert_allclose(flip_lr(F, H36M17.flip_permutation), X)


def test_procrustes_recovers_known_similarity():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(8, 17, 3))
    R = Rotation.random(8, random_state=3).as_matrix()
    s = rng.uniform(0.5, 2.0, 8)
    t = rng.normal(size=(8, 3))
    pred = (np.einsum("bij,bkj->bki", R, gt) * s[:, None, None]) + t[:, None]
    aligned, s_hat, R_hat, _ = procrustes(pred, gt)
    np.testing.assert_allclose(aligned, gt, atol=1e-9)
    np.testing.assert_allclose(s_hat, 1 / s, rtol=1e-9)
    np.testing.assert_allclose(np.linalg.det(R_hat), 1.0)


def test_procrustes_excludes_reflection():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(17, 3))
    mirrored = gt * np.array([-1.0, 1.0, 1.0])
    aligned, _, R, _ = procrustes(mirrored, gt)
    assert np.linalg.det(R) == pytest.approx(1.0)
    assert np.abs(aligned - gt).max() > 1e-3  # a reflection cannot be undone by a rotation


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000))
def test_procrustes_never_increases_error(seed):
    rng = np.random.default_rng(seed)
    gt = rng.normal(size=(17, 3))
    pred = gt + rng.normal(scale=0.3, size=(17, 3))
    aligned = procrustes(pred, gt)[0]
    assert np.sum((aligned - gt) ** 2) <= np.sum((pred - pred.mean(0) + gt.mean(0) - gt) ** 2) + 1e-9
