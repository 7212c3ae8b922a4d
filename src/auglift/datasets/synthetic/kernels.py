"""The world's per-pixel depth-map loops as numba kernels: one pass over a map where NumPy makes several.

Each kernel does, pixel by pixel, the float32 operations of the NumPy formulation it replaces, in the same
order and precision (no fused multiply-adds, no reassociation), so the maps are bit-identical to it
(``tests/test_synthetic_kernels.py`` checks the kernels against those NumPy formulations). Rendering a
demo's depth maps spent most of its time in temporaries the size of a whole batch of maps.
"""

from __future__ import annotations

import numpy as np

from auglift.jit import njit_cached

__all__ = ["error_factor"]


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
    for b in range(B):
        t = tex[tex_of[b]]
        dy, dx = shift[b, 0], shift[b, 1]
        for y in range(h):
            ty = y - dy if y >= dy else y - dy + h
            for x in range(w):
                f = rows[b, y, 0] * ux[x, 0]
                for j in range(1, G):
                    f = f + rows[b, y, j] * ux[x, j]
                tx = x - dx if x >= dx else x - dx + w
                out[b, y, x] = (t[ty, tx] * white[b] + f) + offset[b]


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
        for y in range(h):
            for x in range(w):
                inv = inv_far[b]
                for p in range(P):
                    inv = max(inv, k[b, p, 0] * dx[b, x] + (k[b, p, 1] * dy[b, y] + k[b, p, 2]))
                d = one / inv
                if sky:
                    upd = up[b, 0] * np.float64(dx[b, x]) + (up[b, 1] * np.float64(dy[b, y]) + up[b, 2])
                    if cam_height[b] + np.float64(d) * upd > top[b] + 1e-3:
                        d = far[b]
                z[b, y, x] = d


@njit_cached(error_model="numpy")
def capsule_min(z: np.ndarray, frame: np.ndarray, u0: np.ndarray, v0: np.ndarray, wk: int, hk: int,
                dx: np.ndarray, dy: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray) -> None:
    """``z`` (``(B, h, w)`` float32 metres) becomes the nearer of itself and one capsule per listed frame,
    in the ``hk x wk`` window at ``(v0, u0)`` of ``frame`` (``(n,)`` each); NaN depths (no hit) leave ``z``.

    The capsule of row ``i``: ends ``a[i]``, ``b[i]`` ``(n, 3)`` and radius ``r[i]`` float32, camera frame;
    rays ``(dx, dy, 1)`` from ``dx (B, w)``, ``dy (B, h)`` float32. The first hit of the spheres at both ends
    and of the cylinder between them (not for a sphere, ``a = b``), as
    the ray casting of :mod:`~auglift.datasets.synthetic.render` computes it.
    """
    one = np.float32(1.0)
    for i in range(len(frame)):
        f = frame[i]
        ax, ay, az = a[i, 0], a[i, 1], a[i, 2]
        bax, bay, baz = b[i, 0] - ax, b[i, 1] - ay, b[i, 2] - az
        L = np.sqrt(bax * bax + bay * bay + baz * baz)
        Ln = L if L > 0 else one
        kx, ky, kz = bax / Ln, bay / Ln, baz / Ln
        aa = ax * ax + ay * ay + az * az
        ak = ax * kx + ay * ky + az * kz
        bb = b[i, 0] * b[i, 0] + b[i, 1] * b[i, 1] + b[i, 2] * b[i, 2]
        rr = r[i] * r[i]
        for yy in range(hk):
            y = v0[i] + yy
            ry = dy[f, y]
            for xx in range(wk):
                x = u0[i] + xx
                rx = dx[f, x]
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
                z[f, y, x] = _fmin(z[f, y, x], t)


@njit_cached()
def _fmin(p: float, q: float) -> float:
    """``np.fmin`` of two scalars: the smaller, ignoring a NaN."""
    return p if (p <= q or q != q) else q
