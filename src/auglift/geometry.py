"""Camera geometry: rigid transforms, pinhole projection, screen normalisation, Procrustes.

Conventions (used by every converter): camera frame x right, y down, z forward, metres.
``R`` is the world-to-camera rotation and ``t`` the translation in the camera frame, so a
world point ``X`` (row vector) maps to ``X_cam = X @ R.T + t``. Pixels follow OpenCV:
``u = fx x/z + cx`` with ``(0, 0)`` the centre of the top-left pixel.
All functions are batched over leading axes.
"""

from __future__ import annotations

import numpy as np

from auglift.errors import DataError

__all__ = [
    "backproject",
    "camera_to_world",
    "denormalize_screen",
    "distort",
    "flip_lr",
    "normalize_screen",
    "procrustes",
    "project",
    "root_relative",
    "world_to_camera",
]


def world_to_camera(X: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """World ``(..., 3)`` -> camera ``(..., 3)``: ``X @ R.T + t``; ``R (3, 3)``, ``t (3,)`` (metres)."""
    R = np.asarray(R)
    return np.asarray(X) @ np.swapaxes(R, -1, -2) + np.asarray(t)


def camera_to_world(Xc: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Inverse of :func:`world_to_camera`: ``(Xc - t) @ R``."""
    return (np.asarray(Xc) - np.asarray(t)) @ np.asarray(R)


def _split_intrinsics(intr: np.ndarray) -> tuple[np.ndarray, ...]:
    intr = np.asarray(intr, dtype=np.float64)
    if intr.shape[-2:] == (3, 3):
        return intr[..., 0, 0], intr[..., 1, 1], intr[..., 0, 2], intr[..., 1, 2]
    if intr.shape[-1] != 4:
        raise DataError(None, "intrinsics", f"expected (..., 4) [fx, fy, cx, cy] or (..., 3, 3), got {intr.shape}")
    return intr[..., 0], intr[..., 1], intr[..., 2], intr[..., 3]


def distort(xn: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Apply OpenCV lens distortion to normalised image coordinates ``(..., 2)``.

    ``dist`` is ``(..., 5)`` = ``(k1, k2, p1, p2, k3)`` (OpenCV order), broadcast against ``xn[..., 0]``.
    """
    d = np.asarray(dist, dtype=np.float64)
    k1, k2, p1, p2, k3 = (d[..., i, None] if d.ndim > 1 else d[i] for i in range(5))
    x, y = xn[..., 0], xn[..., 1]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([xd, yd], axis=-1)


def project(X: np.ndarray, intrinsics: np.ndarray, dist: np.ndarray | None = None) -> np.ndarray:
    """Project camera-frame points ``(..., J, 3)`` metres to pixels ``(..., J, 2)``.

    ``intrinsics`` is ``(..., 4)`` ``[fx, fy, cx, cy]`` or ``(..., 3, 3)``, broadcast over the
    joint axis (one camera per leading index: pass ``(N, 4)`` for ``X (N, J, 3)``, not
    ``(N, 1, 4)``). ``dist`` optional ``(5,)`` or ``(N, 5)`` OpenCV coefficients, likewise.
    Points at ``z <= 0`` give non-finite pixels.
    """
    X = np.asarray(X, dtype=np.float64)
    fx, fy, cx, cy = (a[..., None] for a in _split_intrinsics(intrinsics))
    with np.errstate(divide="ignore", invalid="ignore"):
        xn = X[..., :2] / X[..., 2:3]
    if dist is not None:
        xn = distort(xn, dist)
    return np.stack([fx * xn[..., 0] + cx, fy * xn[..., 1] + cy], axis=-1)


def backproject(uv: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pixels ``(..., J, 2)`` with depth ``z`` ``(..., J)`` metres -> camera points ``(..., J, 3)`` (no distortion)."""
    fx, fy, cx, cy = (a[..., None] for a in _split_intrinsics(intrinsics))
    uv = np.asarray(uv, dtype=np.float64)
    z = np.asarray(depth, dtype=np.float64)
    return np.stack([(uv[..., 0] - cx) / fx * z, (uv[..., 1] - cy) / fy * z, z], axis=-1)


def normalize_screen(xy: np.ndarray, w: np.ndarray | float, h: np.ndarray | float) -> np.ndarray:
    """Pixels -> screen coordinates: ``x' = 2x/w - 1``, ``y' = 2y/w - h/w`` (aspect kept).

    ``xy`` is ``(..., J, 2)``; ``w``, ``h`` scalars or arrays broadcastable to ``xy[..., 0, 0]``.
    """
    xy = np.asarray(xy)
    w = np.asarray(w, dtype=xy.dtype if np.issubdtype(xy.dtype, np.floating) else np.float64)[..., None]
    h = np.asarray(h, dtype=w.dtype)[..., None]
    return np.stack([2 * xy[..., 0] / w - 1, 2 * xy[..., 1] / w - h / w], axis=-1)


def denormalize_screen(xy: np.ndarray, w: np.ndarray | float, h: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`normalize_screen`."""
    xy = np.asarray(xy)
    w = np.asarray(w, dtype=xy.dtype if np.issubdtype(xy.dtype, np.floating) else np.float64)[..., None]
    h = np.asarray(h, dtype=w.dtype)[..., None]
    return np.stack([(xy[..., 0] + 1) * w / 2, (xy[..., 1] + h / w) * w / 2], axis=-1)


def root_relative(X: np.ndarray, root: int = 0) -> np.ndarray:
    """Subtract the root joint: ``(..., J, D) -> (..., J, D)`` with joint ``root`` at the origin."""
    X = np.asarray(X)
    return X - X[..., root : root + 1, :]


def flip_lr(X: np.ndarray, perm: np.ndarray, center: float | np.ndarray = 0.0) -> np.ndarray:
    """Mirror poses left/right: ``x -> 2*center - x`` and swap left/right joints.

    ``X`` is ``(..., J, D)``; ``perm`` the joint set's ``flip_permutation``. Only the first
    coordinate is mirrored (camera x axis or screen x); applying it twice is the identity.
    """
    X = np.asarray(X)
    out = X[..., perm, :].copy()
    c = np.asarray(center)
    out[..., 0] = 2 * (c[..., None] if c.ndim else c) - out[..., 0]
    return out


def procrustes(
    pred: np.ndarray,
    gt: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    scale: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Batched similarity Procrustes aligning ``pred`` to ``gt`` (reflections excluded).

    Args:
        pred, gt: ``(..., J, 3)``.
        weights: optional ``(..., J)`` non-negative joint weights (e.g. a validity mask).
        scale: fit a scale factor (similarity) or not (rigid).

    Returns:
        ``(aligned (..., J, 3), s (...,), R (..., 3, 3), t (..., 3))`` such that
        ``aligned = s * pred @ R + t`` minimises the weighted squared distance to ``gt``
        with ``det(R) = +1``.
    """
    P = np.asarray(pred, dtype=np.float64)
    G = np.asarray(gt, dtype=np.float64)
    if P.shape != G.shape or P.shape[-1] != 3:
        raise DataError(None, "pred", f"expected matching (..., J, 3) arrays, got {P.shape} and {G.shape}")
    w = np.ones(P.shape[:-1]) if weights is None else np.asarray(weights, dtype=np.float64)
    wsum = np.maximum(w.sum(-1, keepdims=True), 1e-12)[..., None]
    wn = (w[..., None] / wsum)
    mu_p = (wn * P).sum(-2, keepdims=True)
    mu_g = (wn * G).sum(-2, keepdims=True)
    P0, G0 = P - mu_p, G - mu_g
    H = np.swapaxes(P0 * wn, -1, -2) @ G0  # (..., 3, 3)
    U, S, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(U @ Vt))
    d = np.where(d == 0, 1.0, d)
    D = np.ones(S.shape)
    D[..., 2] = d
    R = (U * D[..., None, :]) @ Vt
    if scale:
        var_p = (wn[..., 0] * (P0**2).sum(-1)).sum(-1)
        s = (S * D).sum(-1) / np.maximum(var_p, 1e-12)
    else:
        s = np.ones(S.shape[:-1])
    t = (mu_g - s[..., None, None] * (mu_p @ R))[..., 0, :]
    aligned = s[..., None, None] * (P @ R) + t[..., None, :]
    return aligned, s, R, t
