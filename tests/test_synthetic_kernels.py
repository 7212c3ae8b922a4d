"""The world's numba kernels equal the NumPy formulations they replace, bit for bit."""

import numpy as np

from auglift.datasets.synthetic import kernels
from auglift.datasets.synthetic.render import ray_first_hit


def _capsule_depth(dx, dy, a, b, r):
    """The vectorised NumPy ray casting the kernels replaced: depth of the first hit of rays ``(dx, dy, 1)``
    with capsules (``a``, ``b`` ``(..., 3)``, ``r`` broadcasting with ``dx``); NaN where missed."""
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    ba = b - a
    L = np.sqrt((ba * ba).sum(-1))
    k = ba / np.where(L > 0, L, 1.0)[..., None]
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    aa, ak, bb, rr = ax * ax + ay * ay + az * az, ax * kx + ay * ky + az * kz, (b * b).sum(-1), r * r
    rdrd, rda = dx * dx + dy * dy + 1.0, ax * dx + ay * dy + az
    with np.errstate(invalid="ignore", divide="ignore"):
        t = (rda - np.sqrt(rda * rda - rdrd * (aa - rr))) / rdrd
        rdb = rda + L * (kx * dx + ky * dy + kz)
        np.fmin(t, (rdb - np.sqrt(rdb * rdb - rdrd * (bb - rr))) / rdrd, out=t)
        rdk = kx * dx + ky * dy + kz
        A, Bp, C = rdrd - rdk * rdk, rdk * ak - rda, aa - ak * ak - rr
        tc = (-Bp - np.sqrt(Bp * Bp - A * C)) / A
        y = tc * rdk - ak
        np.fmin(t, np.where((y >= 0) & (y <= L) & (L > 0), tc, np.nan), out=t)
    return t


def test_error_factor_equals_roll_and_broadcast_sums():
    rng = np.random.default_rng(3)
    B, h, w, G = 3, 7, 37, 4  # 37: the vectorised loops' body and their remainder
    tex = rng.standard_normal((2, h, w), dtype=np.float32)
    tex_of, roll = np.array([1, 0, 1]), np.array([[0, 0], [3, 36], [6, 2]])
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
    B, h, w, P = 2, 6, 37, 3
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
    nearer = np.zeros(z.shape, dtype=bool)
    kernels.capsule_min(z, sel, u0, v0, wk, hk, dx, dy, a, b, r, nearer, True)
    assert np.array_equal(z, want) and (z < z0).any()  # the capsules are hit
    assert np.array_equal(nearer, z < z0)  # marked: exactly the pixels a capsule made nearer
    z1 = z.copy()
    kernels.capsule_min(z, sel, u0, v0, wk, hk, dx, dy, a, b, r, np.zeros((1, 1, 1), bool), False)
    assert np.array_equal(z, z1)  # the same capsules again: nothing nearer, no mask needed


def test_ray_first_hit_equals_capsule_depth_and_fmin_in_float64():
    rng = np.random.default_rng(6)
    N, J, P = 40, 5, 6
    pts = rng.normal(size=(N, J, 3))
    pts[..., 2] = rng.uniform(-0.5, 6, (N, J))  # a few points behind the camera
    a = rng.normal(scale=0.5, size=(N, P, 3)) + np.array([0.0, 0.0, 3.5])
    b = a + rng.normal(scale=0.3, size=(N, P, 3))
    b[:, ::3] = a[:, ::3]  # spheres
    r = rng.uniform(-0.05, 0.4, (N, P))  # r <= 0: skipped
    got = ray_first_hit(pts, a, b, r)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx, dy = (pts[..., 0] / pts[..., 2])[..., None], (pts[..., 1] / pts[..., 2])[..., None]
    hit = np.where(r[:, None] > 0, _capsule_depth(dx, dy, a[:, None], b[:, None], r[:, None]), np.nan)
    with np.errstate(invalid="ignore"):
        m = np.fmin.reduce(hit, axis=-1)
    want = np.where(np.isnan(m), np.inf, m)
    assert np.array_equal(got, want) and np.isfinite(got).mean() > 0.1 and np.isinf(got).any()
