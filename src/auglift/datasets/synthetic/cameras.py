"""Cameras of the synthetic world: intrinsics, static rings and handheld following cameras.

A camera pose is ``(cx, cy, cz, yaw, pitch, roll)``: centre in world metres (z up), the
heading of the optical axis about world z, pitch (+ looks down) and roll about the optical
axis, radians. :func:`rotation` turns it into the world-to-camera rotation ``R`` (rows: image
right, image down, optical axis), so ``X_cam = (X - C) @ R.T`` (``auglift.geometry`` uses
``t = -R C``).

A :class:`CameraTrack` is a list of key poses every ``key_dt`` seconds (one key: static),
interpolated with a Catmull-Rom spline, plus hand shake: a sum of sinusoids on yaw, pitch and
roll. It is stored as plain numbers in the clip's ``source`` so any frame's pose can be
recomputed exactly from the PoseSet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from auglift.datasets.synthetic.activities import smooth_noise

__all__ = ["CameraTrack", "follow_track", "look_at", "rotation"]


# Camera axes (right, down, forward) as columns, in world coordinates, for yaw = pitch = roll = 0:
# the camera looks along +x.
_LEVEL_CAMERA = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """World-to-camera rotations ``(..., 3, 3)`` (rows: right, down, forward) from angles in radians.

    Camera-to-world is ``R_z(yaw) @ R_y(pitch) @ level @ R_z(roll)``: the level camera looking
    along +x, rolled about its optical axis, tipped down by ``pitch`` and turned by ``yaw``
    (elementary rotations from scipy, products as batched matmuls).
    """
    yaw, pitch, roll = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (yaw, pitch, roll)))
    shape = yaw.shape

    def about(axis: str, a: np.ndarray) -> np.ndarray:
        return Rotation.from_euler(axis, a.reshape(-1, 1)).as_matrix()

    cam_to_world = about("z", yaw) @ about("y", pitch) @ _LEVEL_CAMERA @ about("z", roll)
    return np.swapaxes(cam_to_world, -1, -2).reshape(*shape, 3, 3)


def look_at(centre: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(yaw, pitch) radians of a camera at ``centre (..., 3)`` looking at ``target (..., 3)``."""
    d = np.asarray(target, dtype=np.float64) - np.asarray(centre, dtype=np.float64)
    yaw = np.arctan2(d[..., 1], d[..., 0])
    pitch = np.arctan2(-d[..., 2], np.hypot(d[..., 0], d[..., 1]))
    return yaw, pitch


def round_stored(a: np.ndarray | float, decimals: int = 5) -> np.ndarray:
    """``a`` rounded as the values stored in a clip source are (and -0.0 made 0.0)."""
    return np.round(np.asarray(a, dtype=np.float64), decimals) + 0.0


@dataclass(frozen=True)
class CameraTrack:
    """Camera poses over time: Catmull-Rom keys plus sinusoidal hand shake.

    Attributes:
        keys: ``(K, 6)`` float64 ``[cx, cy, cz, yaw, pitch, roll]`` (metres, radians); yaw unwrapped.
        key_dt: seconds between keys (ignored for one key).
        shake: ``(S, 4)`` float64 rows ``[axis (0 yaw, 1 pitch, 2 roll), amplitude rad, frequency Hz, phase rad]``.
    """

    keys: np.ndarray
    key_dt: float = 1.0
    shake: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))

    @staticmethod
    def static(pose: np.ndarray) -> CameraTrack:
        return CameraTrack(round_stored(np.asarray(pose, dtype=np.float64).reshape(1, 6)))

    def to_json(self) -> dict:
        out: dict = {"keys": self.keys.tolist()}
        if len(self.keys) > 1:
            out["key_dt"] = self.key_dt
        if len(self.shake):
            out["shake"] = self.shake.tolist()
        return out

    @staticmethod
    def from_json(d: dict) -> CameraTrack:
        keys = np.asarray(d["keys"], dtype=np.float64).reshape(-1, 6)
        shake = np.asarray(d.get("shake", []), dtype=np.float64).reshape(-1, 4)
        return CameraTrack(keys, float(d.get("key_dt", 1.0)), shake)

    def rounded(self) -> CameraTrack:
        """The track with values rounded as stored in a clip source (generation uses this copy)."""
        return CameraTrack(round_stored(self.keys), float(np.round(self.key_dt, 6)), round_stored(self.shake))

    def pose(self, t: np.ndarray) -> np.ndarray:
        """Camera poses ``(T, 6)`` at times ``t (T,)`` seconds."""
        t = np.asarray(t, dtype=np.float64)
        k = self.keys
        if len(k) == 1:
            out = np.repeat(k, len(t), axis=0)
        else:
            x = np.clip(t / self.key_dt, 0.0, len(k) - 1.0)
            i = np.minimum(np.floor(x).astype(np.int64), len(k) - 2)
            s = (x - i)[:, None]
            p0, p1 = k[np.maximum(i - 1, 0)], k[i]
            p2, p3 = k[i + 1], k[np.minimum(i + 2, len(k) - 1)]
            m1, m2 = 0.5 * (p2 - p0), 0.5 * (p3 - p1)
            s2, s3 = s * s, s * s * s
            out = ((2 * s3 - 3 * s2 + 1) * p1 + (s3 - 2 * s2 + s) * m1 + (-2 * s3 + 3 * s2) * p2 + (s3 - s2) * m2)
        if len(self.shake):
            ax = self.shake[:, 0].astype(np.int64)
            waves = self.shake[:, 1] * np.sin(2 * np.pi * self.shake[:, 2] * t[:, None] + self.shake[:, 3])
            for a in range(3):
                out[:, 3 + a] += waves[:, ax == a].sum(axis=1)
        return out

    def extrinsics(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(R (T, 3, 3), tvec (T, 3), centre (T, 3))`` at times ``t``: ``X_cam = X @ R.T + tvec``."""
        p = self.pose(t)
        R = rotation(p[:, 3], p[:, 4], p[:, 5])
        C = p[:, :3]
        return R, -np.einsum("tij,tj->ti", R, C), C


def follow_track(root: np.ndarray, heading: np.ndarray, fps: float, rng: np.random.Generator, *,
                 distance: float, height: float, bearing: float, key_dt: float = 0.5,
                 shake_deg: tuple[float, float] = (0.15, 0.6)) -> CameraTrack:
    """A handheld camera that follows a subject, like a person filming with a phone.

    Args:
        root: ``(T, 3)`` subject pelvis positions, world metres.
        heading: ``(T,)`` subject facing yaw, radians.
        distance: mean camera-to-subject distance, metres; varies +-10% slowly.
        height: mean camera height, metres.
        bearing: camera direction seen from the subject relative to its heading (0: in front).
        key_dt: seconds between stored keys.
        shake_deg: range of hand-shake amplitudes, degrees.
    """
    T = len(root)
    n = max(T, 2)
    slow = smooth_noise(rng, n, 4, fps * 2.0)
    # the operator keeps the distance and lets the viewing angle around the subject follow its
    # heading with a lag (angles are smoothed, not positions, so the camera never cuts through)
    head = gaussian_filter1d(np.unwrap(heading), fps * 2.0, mode="nearest")
    phi = head + bearing + np.radians(20.0) * slow[:T, 0]
    dist = distance * (1.0 + 0.08 * slow[:T, 1])
    centre = gaussian_filter1d(root[:, :2], fps * 0.6, axis=0, mode="nearest")
    cam_xy = centre + dist[:, None] * np.stack([np.cos(phi), np.sin(phi)], axis=1)
    cam_z = height + 0.04 * slow[:T, 2]
    target = gaussian_filter1d(root + np.array([0.0, 0.0, 0.25]), fps * 0.3, axis=0, mode="nearest")
    C = np.concatenate([cam_xy, cam_z[:, None]], axis=1)
    yaw, pitch = look_at(C, target)
    yaw = np.unwrap(yaw)
    roll = np.radians(rng.normal(0.0, 1.5)) + np.radians(1.5) * slow[:T, 3]
    poses = np.concatenate([C, yaw[:, None], pitch[:, None], roll[:, None]], axis=1)
    step = max(1, round(key_dt * fps))
    idx = np.arange(0, T + step, step)
    keys = poses[np.minimum(idx, T - 1)]
    shake = [[axis, np.radians(rng.uniform(*shake_deg)) * (0.5 if axis == 2 else 1.0), rng.uniform(1.0, 4.5),
              rng.uniform(0, 2 * np.pi)] for axis in range(3) for _ in range(2)]
    return CameraTrack(keys, step / fps, np.array(shake)).rounded()
