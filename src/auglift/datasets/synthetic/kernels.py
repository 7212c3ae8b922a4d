"""The world's per-pixel depth-map loops as numba kernels: one pass over a map where NumPy makes several.

Each kernel does, pixel by pixel, the float32 operations of the NumPy formulation it replaces, in the same
order and precision (no fused multiply-adds, no reassociation), so the maps are bit-identical to it
(``tests/test_synthetic_kernels.py`` checks the kernels against those NumPy formulations). Rendering a
demo's depth maps spent most of its time in temporaries the size of a whole batch of maps.
"""

from __future__ import annotations

import numpy as np

from auglift.jit import njit_cached

__all__ = ["background_depth", "capsule_axis", "capsule_min", "capsule_ray", "error_factor", "first_hit"]


@njit_cached()
def error_factor(out: np.ndarray, tex: np.ndarray, tex_of: np.ndarray, shift: np.ndarray, white: np.ndarray,
                 rows: np.ndarray, ux: np.ndarray, offset: np.ndarray) -> None:
    """The log depth factor of the error model, into ``out (B, h, w)`` float32: the frame's circularly shifted
    white-noise texture times its sd, plus the smooth field, plus the frame's log scale.

    ``tex (T, h, w)`` float32 textures, ``tex_of (B,)`` each frame's texture, ``shift (B, 2)`` its shift
    ``(dy, dx)`` in ``[0, h) x [0, w)`` (as ``np.roll``); ``white (B,)`` float32 sd; the field is
    ``sum_j rows[b, y, j] * ux[x, j]`` over ``rows (B, h, G)`` and ``ux (w, G)`` float32 (summed from
    ``j = 0`` up); ``offset (B,)`` float32 log scale.
    """
    B, h, w = out.shape
    G = rows.shape[2]
    uxt = np.ascontiguousarray(ux.T)  # (G, w): the loops below run along x, which vectorises
    f = np.empty(w, np.float32)
    for b in range(B):
        t = tex[tex_of[b]]
        dy, dx = shift[b, 0], shift[b, 1]
        for y in range(h):
            ty = y - dy if y >= dy else y - dy + h
            r0 = rows[b, y, 0]
            for x in range(w):
                f[x] = r0 * uxt[0, x]
            for j in range(1, G):
                rj = rows[b, y, j]
                for x in range(w):
                    f[x] = f[x] + rj * uxt[j, x]
            trow, orow, wb, ob = t[ty], out[b, y], white[b], offset[b]
            for x in range(dx, w):  # tx = x - dx
                orow[x] = (trow[x - dx] * wb + f[x]) + ob
            for x in range(dx):  # tx = x - dx + w
                orow[x] = (trow[x - dx + w] * wb + f[x]) + ob


@njit_cached()
def background_depth(z: np.ndarray, inv_far: np.ndarray, k: np.ndarray, dx: np.ndarray, dy: np.ndarray,
                     sky: bool, up: np.ndarray, cam_height: np.ndarray, top: np.ndarray, far: np.ndarray) -> None:
    """The planes' z-buffer into ``z (B, h, w)`` float32 metres: ``1 / max(inv_far, k_p . (dx, dy, 1))`` over the
    planes (``k (B, P, 3)`` and ``inv_far (B,)`` float32, ray slopes ``dx (B, w)``, ``dy (B, h)`` float32).

    With ``sky``, a point above the wall tops (``cam_height + z (up . ray) > top + 1 mm`` in float64, ``up
    (B, 3)``, ``cam_height``, ``top (B,)`` metres) becomes ``far (B,)`` float32.
    """
    B, h, w = z.shape
    P = k.shape[1]
    one = np.float32(1.0)
    for b in range(B):
        dxb = dx[b]
        for y in range(h):
            row = z[b, y]  # the inverse depth first, then the depth: loops along x, which vectorise
            for x in range(w):
                row[x] = inv_far[b]
            for p in range(P):
                k0, c = k[b, p, 0], k[b, p, 1] * dy[b, y] + k[b, p, 2]
                for x in range(w):
                    row[x] = max(row[x], k0 * dxb[x] + c)
            for x in range(w):
                row[x] = one / row[x]
            if sky:
                u0, u12 = up[b, 0], up[b, 1] * np.float64(dy[b, y]) + up[b, 2]
                for x in range(w):
                    if cam_height[b] + np.float64(row[x]) * (u0 * np.float64(dxb[x]) + u12) > top[b] + 1e-3:
                        row[x] = far[b]


@njit_cached(inline="always")
def capsule_axis(ax: float, ay: float, az: float, bx: float, by: float, bz: float, r: float,
                 one: float) -> tuple[float, float, float, float, float, float, float, float]:
    """The quantities of the capsule with ends ``a``, ``b`` and radius ``r`` (camera frame, metres) that
    every ray through it uses: ``(L, kx, ky, kz, aa, ak, bb, rr)``, the axis length and unit direction,
    ``|a|^2``, ``a . k``, ``|b|^2`` and ``r^2``, in the precision of ``one`` (1 as float32 or float64)."""
    bax, bay, baz = bx - ax, by - ay, bz - az
    L = np.sqrt(bax * bax + bay * bay + baz * baz)
    Ln = L if L > 0 else one
    kx, ky, kz = bax / Ln, bay / Ln, baz / Ln
    return (L, kx, ky, kz, ax * ax + ay * ay + az * az, ax * kx + ay * ky + az * kz, bx * bx + by * by + bz * bz,
            r * r)


@njit_cached(inline="always")
def capsule_ray(ax: float, ay: float, az: float, L: float, kx: float, ky: float, kz: float, aa: float, ak: float,
                bb: float, rr: float, rx: float, ry: float, one: float) -> float:
    """Depth ``z`` of the first hit of the ray ``(rx, ry, 1)`` with a capsule (end ``a`` and the quantities of
    :func:`capsule_axis`): the nearest of the spheres at both ends and of the cylinder between them (not for
    a sphere, ``L = 0``); NaN where the ray misses."""
    rdrd = rx * rx + ry * ry + one
    rda = ax * rx + ay * ry + az
    t = (rda - np.sqrt(rda * rda - rdrd * (aa - rr))) / rdrd
    rdb = rda + L * (kx * rx + ky * ry + kz)
    t = _fmin(t, (rdb - np.sqrt(rdb * rdb - rdrd * (bb - rr))) / rdrd)
    rdk = kx * rx + ky * ry + kz
    A = rdrd - rdk * rdk
    Bp = rdk * ak - rda
    C = aa - ak * ak - rr
    tc = (-Bp - np.sqrt(Bp * Bp - A * C)) / A
    s = tc * rdk - ak
    if s >= 0 and s <= L and L > 0:
        t = _fmin(t, tc)
    return t


@njit_cached(error_model="numpy")
def capsule_min(z: np.ndarray, frame: np.ndarray, u0: np.ndarray, v0: np.ndarray, wk: int, hk: int,
                dx: np.ndarray, dy: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray, nearer: np.ndarray,
                mark: bool) -> None:
    """``z`` (``(B, h, w)`` float32 metres) becomes the nearer of itself and one capsule per listed frame,
    in the ``hk x wk`` window at ``(v0, u0)`` of ``frame`` (``(n,)`` each); NaN depths (no hit) leave ``z``.
    With ``mark``, ``nearer`` (``(B, h, w)`` bool) becomes True where the capsule is strictly nearer than ``z``.

    The capsule of row ``i``: ends ``a[i]``, ``b[i]`` ``(n, 3)`` and radius ``r[i]`` float32, camera frame;
    rays ``(dx, dy, 1)`` from ``dx (B, w)``, ``dy (B, h)`` float32; hits as :func:`capsule_ray`, in float32.
    """
    one = np.float32(1.0)
    for i in range(len(frame)):
        f = frame[i]
        ax, ay, az = a[i, 0], a[i, 1], a[i, 2]
        L, kx, ky, kz, aa, ak, bb, rr = capsule_axis(ax, ay, az, b[i, 0], b[i, 1], b[i, 2], r[i], one)
        for yy in range(hk):
            y = v0[i] + yy
            for xx in range(wk):
                x = u0[i] + xx
                t = capsule_ray(ax, ay, az, L, kx, ky, kz, aa, ak, bb, rr, dx[f, x], dy[f, y], one)
                if mark and t < z[f, y, x]:
                    nearer[f, y, x] = True
                z[f, y, x] = _fmin(z[f, y, x], t)


@njit_cached(error_model="numpy")
def first_hit(out: np.ndarray, pts: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray) -> None:
    """``out (N, J)`` float64 metres: the depth of the first capsule hit along the ray from the camera to each
    point ``pts (N, J, 3)`` (camera frame), over the capsules ``a, b (N, P, 3)``, ``r (N, P)`` of its frame
    with ``r > 0``; ``inf`` where none is hit. Hits as :func:`capsule_ray`, in float64."""
    N, J = out.shape
    one = 1.0
    rx, ry = np.empty(J), np.empty(J)  # the frame's rays to its points
    for n in range(N):
        out[n] = np.inf
        for j in range(J):
            rx[j], ry[j] = pts[n, j, 0] / pts[n, j, 2], pts[n, j, 1] / pts[n, j, 2]
        for p in range(r.shape[1]):
            if not r[n, p] > 0:
                continue
            ax, ay, az = a[n, p, 0], a[n, p, 1], a[n, p, 2]
            L, kx, ky, kz, aa, ak, bb, rr = capsule_axis(ax, ay, az, b[n, p, 0], b[n, p, 1], b[n, p, 2], r[n, p], one)
            for j in range(J):
                t = capsule_ray(ax, ay, az, L, kx, ky, kz, aa, ak, bb, rr, rx[j], ry[j], one)
                if t < out[n, j]:  # NaN (missed) compares false
                    out[n, j] = t


@njit_cached()
def _fmin(p: float, q: float) -> float:
    """``np.fmin`` of two scalars: the smaller, ignoring a NaN."""
    return p if (p <= q or q != q) else q
