"""The world's numba kernels equal the NumPy formulations they replace, bit for bit."""

import numpy as np

from auglift.datasets.synthetic import kernels
from auglift.datasets.synthetic.render import _capsule_depth


def test_error_factor_equals_roll_and_broadcast_sums():
    rng = np.random.default_rng(3)
    B, h, w, G = 3, 7, 9, 4
    tex = rng.standard_normal((2, h, w), dtype=np.float32)
    tex_of, roll = np.array([1, 0, 1]), np.array([[0, 0], [3, 8], [6, 2]])
    white, off = rng.uniform(0, 1, B).astype(np.float32), rng.normal(size=B).astype(np.float32)
    rows, ux = rng.normal(size=(B, h, G)).astype(np.float32), rng.uniform(0, 1, (w, G)).astype(np.float32)
    out = np.empty((B, h, w), dtype=np.float32)
    kernels.error_factor(out, tex, tex_of, roll, white, rows, ux, off)
    for b in range(B):
        want = np.roll(tex[tex_of[b]], tuple(roll[b]), axis=(0, 1)) * white[b]
        field = rows[b, :, 0, None] * ux[None, :, 0]
        for j in range(1, G):
            field += rows[b, :, j, None] * ux[None, :, j]
        want += field
        want += off[b]
        assert np.array_equal(out[b], want)


def test_background_depth_equals_plane_maximum_and_sky():
    rng = np.random.default_rng(4)
    B, h, w, P = 2, 6, 8, 3
    dx, dy = rng.uniform(-1, 1, (B, w)).astype(np.float32), rng.uniform(-1, 1, (B, h)).astype(np.float32)
    k = rng.uniform(-0.5, 0.5, (B, P, 3)).astype(np.float32)
    far = np.array([20.0, 30.0])
    up, cz, top = rng.normal(size=(B, 3)), np.array([1.5, 1.2]), np.array([2.0, np.inf])
    z = np.empty((B, h, w), dtype=np.float32)
    kernels.background_depth(z, (1.0 / far).astype(np.float32), k, dx, dy, True, up, cz, top, far.astype(np.float32))
    inv = np.broadcast_to((1.0 / far).astype(np.float32)[:, None, None], (B, h, w)).copy()
    for p in range(P):
        row, col = (k[:, p, 0, None] * dx)[:, None, :], (k[:, p, 1, None] * dy + k[:, p, 2, None])[:, :, None]
        inv = np.maximum(inv, row + col)
    want = np.divide(1.0, inv)
    upd = (up[:, 0, None] * dx)[:, None, :] + (up[:, 1, None] * dy + up[:, 2, None])[:, :, None]
    want = np.where((cz[:, None, None] + want * upd) > top[:, None, None] + 1e-3, far.astype(np.float32)[:, None, None],
                    want)
    assert np.array_equal(z, want)


def test_capsule_min_equals_capsule_depth_and_fmin():
    rng = np.random.default_rng(5)
    B, h, w = 3, 20, 24
    dx, dy = rng.uniform(-0.4, 0.4, (B, w)).astype(np.float32), rng.uniform(-0.4, 0.4, (B, h)).astype(np.float32)
    z = rng.uniform(2, 6, (B, h, w)).astype(np.float32)
    sel = np.array([0, 2])
    a = np.array([[0.0, 0.0, 3.0], [0.1, -0.2, 4.0]], dtype=np.float32)
    b = np.array([[0.3, 0.4, 3.5], [0.1, -0.2, 4.0]], dtype=np.float32)  # the second is a sphere
    r = np.array([0.3, 0.5], dtype=np.float32)
    u0, v0, wk, hk = np.array([2, 5]), np.array([1, 0]), 18, 19
    z0, want = z.copy(), z.copy()
    for i, f in enumerate(sel):
        ui, vi = u0[i] + np.arange(wk), v0[i] + np.arange(hk)
        t = _capsule_depth(dx[f, ui][None, :], dy[f, vi][:, None], a[i], b[i], r[i])
        want[f, vi[:, None], ui[None, :]] = np.fmin(want[f, vi[:, None], ui[None, :]], t)
    kernels.capsule_min(z, sel, u0, v0, wk, hk, dx, dy, a, b, r)
    assert np.array_equal(z, want) and (z < z0).any()  # the capsules are hit
