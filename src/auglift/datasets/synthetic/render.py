"""Z-buffered depth rendering of the synthetic world, vectorised over frames.

Geometry (camera frame: x right, y down, z forward, metres):

* the body: capsules between joints, a head sphere, hands and feet
  (:mod:`~auglift.datasets.synthetic.bodies`),
  plus static props (e.g. a bench) given as capsules;
* the background: planes (floor, walls, ceiling) bounding a convex region that contains the
  camera; along a ray the background depth is the nearest exit through one of them, capped at a
  far distance; walls may end at a height (``top``) above which the ray sees the far "sky".

Rays go through map-pixel centres. A map of ``(h, w)`` pixels covers the whole image of
``width x height`` pixels with the pixel-centre mapping ``u_map = (u + 0.5) * w / width - 0.5``
(same for v), so rendering uses the image intrinsics rescaled by :func:`map_intrinsics`.
Depth values are z-depth (distance along the optical axis), like a depth camera or a metric
monocular depth model. Each capsule is ray-cast only inside its projected bounding box; the
planes are evaluated analytically (inverse depth is linear in the pixel coordinates).
"""

from __future__ import annotations

import numpy as np

from auglift.datasets.synthetic.bodies import CAPSULES, EXTREMITIES, extremity_capsules, head_centre
from auglift.datasets.synthetic.kernels import background_depth, capsule_min, first_hit

__all__ = [
    "NUM_BODY",
    "body_primitives",
    "map_intrinsics",
    "map_size",
    "plane_coefficients",
    "ray_first_hit",
    "render_true_depth",
]

_NEAR = 0.05  # metres: primitives closer than this to the camera plane cover the whole map
NUM_BODY = len(CAPSULES) + 1 + len(EXTREMITIES)  # body primitives: capsules, head sphere, hands, feet


def map_size(width: int, height: int, long_side: int = 256) -> tuple[int, int]:
    """Map ``(h, w)`` for an image ``width x height``: ``long_side`` pixels on the long side, aspect kept."""
    s = long_side / max(width, height)
    return max(1, round(height * s)), max(1, round(width * s))


def map_intrinsics(intrinsics: np.ndarray, width: np.ndarray, height: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Image intrinsics ``(..., 4)`` ``[fx, fy, cx, cy]`` -> map intrinsics for map ``size = (h, w)``.

    Follows ``u_map = (u + 0.5) * w / width - 0.5``.
    """
    intr = np.asarray(intrinsics, dtype=np.float64)
    sx = size[1] / np.asarray(width, dtype=np.float64)
    sy = size[0] / np.asarray(height, dtype=np.float64)
    return np.stack([intr[..., 0] * sx, intr[..., 1] * sy, (intr[..., 2] + 0.5) * sx - 0.5,
                     (intr[..., 3] + 0.5) * sy - 0.5], axis=-1)


def body_primitives(kp3d: np.ndarray, capsule_radii: np.ndarray, head_radius: np.ndarray,
                    props: np.ndarray | None = None, *, up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Capsules of the body (and props) for frames ``kp3d (B, 17, 3)`` metres.

    Args:
        capsule_radii: ``(B, 15)`` metres (order of ``bodies.CAPSULES``).
        head_radius: ``(B,)`` metres.
        props: optional ``(B, K, 7)`` capsules ``[a (3), b (3), radius]`` in the same frame as
            ``kp3d`` (radius 0: absent).
        up: ``(B, 3)`` unit world-up direction in the frame of ``kp3d`` (it levels the feet).

    Returns:
        ``(a (B, P, 3), b (B, P, 3), r (B, P))``: segment ends and radii; the first
        :data:`NUM_BODY` are the body (``bodies.CAPSULES``, the head as a zero-length capsule,
        then ``bodies.EXTREMITIES``), props follow. ``P = NUM_BODY + K``.
    """
    kp = np.asarray(kp3d, dtype=np.float64)
    hc = head_centre(kp)
    ext = np.concatenate([kp, hc[:, None]], axis=1)  # index 17 (-1) = head centre
    ia = np.array([c[1] for c in CAPSULES] + [17])
    ib = np.array([c[2] if c[2] >= 0 else 17 for c in CAPSULES] + [17])
    cr = np.asarray(capsule_radii, dtype=np.float64)
    ea, eb, er = extremity_capsules(kp, cr, up)
    a = np.concatenate([ext[:, ia], ea], axis=1)
    b = np.concatenate([ext[:, ib], eb], axis=1)
    r = np.concatenate([cr, np.asarray(head_radius, dtype=np.float64)[:, None], er], axis=1)
    if props is not None and props.shape[1]:
        a = np.concatenate([a, props[..., 0:3]], axis=1)
        b = np.concatenate([b, props[..., 3:6]], axis=1)
        r = np.concatenate([r, props[..., 6]], axis=1)
    return a, b, r


def ray_first_hit(points: np.ndarray, a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Depth of the first primitive hit along the ray to each point: ``(N, J)`` metres (inf: none).

    ``points (N, J, 3)`` camera frame; capsules ``a, b (N, P, 3)``, ``r (N, P)`` (those with ``r <= 0`` are
    skipped); float64 (:func:`~auglift.datasets.synthetic.kernels.first_hit`). Used for the occlusion
    test: a joint is hidden when this depth is well in front of its own surface.
    """
    pts = np.ascontiguousarray(points, dtype=np.float64)
    out = np.empty(pts.shape[:2])
    first_hit(out, pts, *(np.ascontiguousarray(x, dtype=np.float64) for x in (a, b, r)))
    return out


def plane_coefficients(planes: np.ndarray, R: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Inverse-depth coefficients ``(B, P, 3)`` of world planes seen from cameras ``R (B, 3, 3)``, ``C (B, 3)``.

    ``planes (P, 4)`` or ``(B, P, 4)``: ``[nx, ny, nz, h]``, region ``n . X >= h`` (world, n unit,
    pointing inwards). Along the ray ``(dx, dy, 1)`` the plane is hit at inverse depth
    ``k . (dx, dy, 1)`` when that is positive; planes the camera is outside of get zeros.
    """
    pl = np.asarray(planes, dtype=np.float64)
    if pl.ndim == 2:
        pl = np.broadcast_to(pl, (len(R), *pl.shape))
    n = pl[..., :3]
    nc = np.einsum("bij,bpj->bpi", R, n)
    hc = pl[..., 3] - np.einsum("bpj,bj->bp", n, C)
    ok = hc < -1e-9
    return np.where(ok[..., None], nc / np.where(ok, hc, -1.0)[..., None], 0.0)


def _bbox(a: np.ndarray, b: np.ndarray, r: np.ndarray, intr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Conservative map-pixel boxes ``(B, 4)`` int64 ``[u0, u1, v0, v1]`` (inclusive; u1 < u0: empty)."""
    h, w = size
    fx, fy, cx, cy = (intr[:, i] for i in range(4))
    lo = np.full((len(a), 2), np.inf)
    hi = np.full((len(a), 2), -np.inf)
    near = np.zeros(len(a), dtype=bool)
    for c in (a, b):
        zn, zf = c[:, 2] - r, np.maximum(c[:, 2] + r, _NEAR)
        near |= zn <= _NEAR
        zn = np.maximum(zn, _NEAR)
        for d, f, cc in ((0, fx, cx), (1, fy, cy)):
            q = np.stack([(c[:, d] - r) / zn, (c[:, d] - r) / zf, (c[:, d] + r) / zn, (c[:, d] + r) / zf])
            lo[:, d] = np.minimum(lo[:, d], cc + f * q.min(0))
            hi[:, d] = np.maximum(hi[:, d], cc + f * q.max(0))
    box = np.stack([np.ceil(lo[:, 0]), np.floor(hi[:, 0]), np.ceil(lo[:, 1]), np.floor(hi[:, 1])], axis=1)
    box = np.where(near[:, None], np.array([0, w - 1, 0, h - 1]), box)
    box[:, 0:2] = np.clip(box[:, 0:2], 0, w - 1)
    box[:, 2:4] = np.clip(box[:, 2:4], 0, h - 1)
    empty = (r <= 0) | (lo[:, 0] > w - 0.5) | (hi[:, 0] < -0.5) | (lo[:, 1] > h - 0.5) | (hi[:, 1] < -0.5)
    box[empty] = [0, -1, 0, -1]
    return box.astype(np.int64)


def render_true_depth(size: tuple[int, int], intr: np.ndarray, prims: tuple[np.ndarray, np.ndarray, np.ndarray],
                      plane_k: np.ndarray, far: np.ndarray,
                      sky: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                      boxes_out: np.ndarray | None = None, body_out: np.ndarray | None = None,
                      z_out: np.ndarray | None = None) -> np.ndarray:
    """Exact z-buffer ``(B, h, w)`` float32 metres.

    Args:
        size: map ``(h, w)``.
        intr: ``(B, 4)`` map intrinsics (:func:`map_intrinsics`).
        prims: ``(a, b, r)`` from :func:`body_primitives` (camera frame).
        plane_k: ``(B, P, 3)`` from :func:`plane_coefficients`.
        far: ``(B,)`` depth where no plane is hit (and above wall tops), metres.
        sky: optional ``(up (B, 3), cam_height (B,), top (B,))``: world-up direction in camera
            coordinates, camera height and wall-top height; background points above ``top``
            become ``far``.
        boxes_out: optional ``(B, 4)`` int64 array receiving each frame's union box
            ``[u0, u1, v0, v1]`` of all primitives (empty: ``u1 < u0``).
        body_out: optional ``(B, h, w)`` bool array receiving the pixels whose visible surface is
            one of the first :data:`NUM_BODY` primitives (the body, not props or background).
        z_out: optional ``(B, h, w)`` float32 C-contiguous array to render into (returned).
    """
    h, w = size
    B = len(intr)
    fx, fy, cx, cy = (intr[:, i, None] for i in range(4))
    dx = ((np.arange(w)[None, :] - cx) / fx).astype(np.float32)  # (B, w)
    dy = ((np.arange(h)[None, :] - cy) / fy).astype(np.float32)  # (B, h)
    z = np.empty((B, h, w), dtype=np.float32) if z_out is None else z_out
    up, cz, top = sky if sky is not None else (np.zeros((B, 3)), np.zeros(B), np.zeros(B))
    background_depth(z, (1.0 / far).astype(np.float32), plane_k.astype(np.float32), dx, dy, sky is not None,
                     np.asarray(up, dtype=np.float64), np.asarray(cz, dtype=np.float64),
                     np.asarray(top, dtype=np.float64), far.astype(np.float32))
    a, b, r = prims
    union = np.tile(np.array([w, -1, h, -1], dtype=np.int64), (B, 1))
    # props first, then the body: the body is what is nearer than the scene drawn before it
    order = list(range(NUM_BODY, a.shape[1])) + list(range(min(NUM_BODY, a.shape[1])))
    # a body pixel is one a body capsule made nearer (z only decreases and is never NaN: z < z before the body)
    nearer = np.zeros((1, 1, 1), dtype=bool) if body_out is None else body_out
    nearer[:] = False
    for p in order:
        box = _bbox(a[:, p], b[:, p], r[:, p], intr, size)
        nonempty = box[:, 1] >= box[:, 0]
        union[nonempty, 0::2] = np.minimum(union[nonempty, 0::2], box[nonempty, 0::2])
        union[nonempty, 1::2] = np.maximum(union[nonempty, 1::2], box[nonempty, 1::2])
        ww = box[:, 1] - box[:, 0] + 1
        hh = box[:, 3] - box[:, 2] + 1
        keep = (ww > 0) & (hh > 0)
        if not keep.any():
            continue
        sel = np.flatnonzero(keep)
        Wk, Hk = int(ww[sel].max()), int(hh[sel].max())
        u0 = np.minimum(box[sel, 0], w - Wk)
        v0 = np.minimum(box[sel, 2], h - Hk)
        capsule_min(z, sel, u0, v0, Wk, Hk, dx, dy, a[sel, p].astype(np.float32), b[sel, p].astype(np.float32),
                    r[sel, p].astype(np.float32), nearer, body_out is not None and p < NUM_BODY)
    if boxes_out is not None:
        boxes_out[:] = union
    return z
