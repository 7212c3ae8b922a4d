"""Skeleton drawing with OpenCV: the frame with its 2D skeleton side by side with the 3D skeleton.

* :func:`draw_skeleton_2d` draws H36M-17 keypoints on a frame (bones between joints whose
  confidence is at least ``min_conf``; left limbs blue, right limbs orange, the trunk green);
* :func:`draw_skeleton_3d` draws root-relative 3D poses ``(K, 17, 3)`` metres (camera frame:
  x right, y down, z forward) on a square panel: orthographic view turned ``azimuth`` degrees
  about the vertical axis and tilted ``elevation`` degrees down, 2.6 m across, far bones drawn
  first, a floor grid under the feet;
* :class:`VideoSink` writes ``.mp4`` (``mp4v``), ``.avi`` (MJPG) or ``.gif`` (Pillow) atomically.

Everything is plain OpenCV line drawing (about 1 ms per frame), so rendering is never the slow
stage of ``auglift infer``.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from auglift.errors import ConfigError, DataError, need_extra
from auglift.io import FILE_MODE
from auglift.skeleton import get_joint_set
from auglift.video import drop_utf8_link, opencv_safe_name, utf8_link

__all__ = ["RENDER_SUFFIXES", "VideoSink", "compose", "draw_skeleton_2d", "draw_skeleton_3d"]

RENDER_SUFFIXES = (".mp4", ".avi", ".gif")
_H36M = get_joint_set("h36m17")
BONES: list[tuple[int, int]] = _H36M.bones  # (child, parent)
# BGR colours: left limbs blue, right limbs orange, trunk/head green (as in most pose viewers)
COLOURS = {"left": (230, 140, 40), "right": (40, 140, 255), "centre": (90, 200, 90)}
# a bone's colour, by its child joint
_BONE_COLOUR = [COLOURS["left" if j in _H36M.left else "right" if j in _H36M.right else "centre"]
                for j in range(_H36M.num_joints)]


def _cv2() -> Any:
    """OpenCV, imported on first use (a ConfigError naming the ``video`` extra without it)."""
    return need_extra("cv2", "rendering needs", "video", "opencv-python-headless")


def draw_skeleton_2d(img: np.ndarray, kp: np.ndarray, conf: np.ndarray, *, min_conf: float = 0.2,
                     scale: float = 1.0, thickness: int = 2, label: str | None = None) -> np.ndarray:
    """Draw H36M-17 keypoints ``kp (17, 2)`` px (of the original frame; ``scale`` maps them onto ``img``)
    with confidences ``conf (17,)`` on the BGR image ``img`` in place; returns ``img``."""
    cv2 = _cv2()
    p = np.asarray(kp, dtype=np.float64) * scale
    ok = np.isfinite(p).all(-1) & (np.asarray(conf) >= min_conf)
    pi = np.round(np.nan_to_num(p)).astype(np.int32)
    for c, par in BONES:
        if ok[c] and ok[par]:
            cv2.line(img, tuple(pi[c]), tuple(pi[par]), _BONE_COLOUR[c], thickness, cv2.LINE_AA)
    for j in np.flatnonzero(ok):
        cv2.circle(img, tuple(pi[j]), thickness + 1, (255, 255, 255), -1, cv2.LINE_AA)
    if label and ok.any():
        top = pi[ok][np.argmin(pi[ok][:, 1])]
        cv2.putText(img, label, (int(top[0]) - 10, int(top[1]) - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return img


def _view(azimuth: float, elevation: float) -> np.ndarray:
    a, e = math.radians(azimuth), math.radians(elevation)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(e), -math.sin(e)], [0, math.sin(e), math.cos(e)]])
    return rx @ ry


def draw_skeleton_3d(panel: np.ndarray, poses: np.ndarray, *, azimuth: float = 35.0, elevation: float = 15.0,
                     extent: float = 2.6, thickness: int = 2) -> np.ndarray:
    """Draw root-relative poses ``(K, 17, 3)`` metres on the square BGR ``panel`` in place; returns it.

    Several poses (tracks) stand side by side, 1 m apart. NaN poses are skipped.
    """
    cv2 = _cv2()
    size = panel.shape[0]
    s = size / extent
    rot = _view(azimuth, elevation)
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 17, 3)
    k = len(poses)
    shift = (np.arange(k) - (k - 1) / 2.0) * 1.0
    shown = [i for i in range(k) if np.isfinite(poses[i]).all()]
    centre = np.array([size / 2.0, size / 2.0])
    # floor grid at the lowest foot (largest y), in the x-z plane
    if shown:
        floor = max(float(np.max(poses[i][[3, 6], 1])) for i in shown)
        g = np.linspace(-1.2, 1.2, 7)
        for a in g:
            for seg in (np.array([[a, floor, -1.2], [a, floor, 1.2]]), np.array([[-1.2, floor, a], [1.2, floor, a]])):
                q = (seg @ rot.T)[:, :2] * s + centre
                cv2.line(panel, tuple(np.round(q[0]).astype(int)), tuple(np.round(q[1]).astype(int)),
                         (70, 70, 70), 1, cv2.LINE_AA)
    segs = []
    for i in shown:
        p = poses[i] + np.array([shift[i], 0.0, 0.0])
        q = p @ rot.T
        uv = q[:, :2] * s + centre
        for c, par in BONES:
            segs.append((0.5 * (q[c, 2] + q[par, 2]), uv[c], uv[par], _BONE_COLOUR[c]))
    for _z, a, b, col in sorted(segs, key=lambda t: -t[0]):  # far bones first
        cv2.line(panel, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)), col, thickness, cv2.LINE_AA)
    return panel


def compose(frame_rgb: np.ndarray, kp2d: np.ndarray, conf: np.ndarray, kp3d: np.ndarray, *, height: int,
            labels: list[str] | None = None, min_conf: float = 0.2, azimuth: float = 35.0,
            elevation: float = 15.0) -> np.ndarray:
    """One output frame (BGR ``(height, width + height, 3)``): the frame scaled to ``height`` with the 2D
    skeletons of ``kp2d (K, 17, 2)`` / ``conf (K, 17)`` drawn, and a square panel with the 3D skeletons
    ``kp3d (K, 17, 3)`` (root-relative metres) to its right."""
    cv2 = _cv2()
    h, w = frame_rgb.shape[:2]
    sc = height / h
    width = max(2, round(w * sc / 2) * 2)  # even sizes keep video encoders happy
    img = cv2.resize(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR), (width, height),
                     interpolation=cv2.INTER_AREA if sc < 1 else cv2.INTER_LINEAR)
    thick = max(1, round(height / 240))
    for i in range(len(kp2d)):
        draw_skeleton_2d(img, kp2d[i], conf[i], min_conf=min_conf, scale=sc, thickness=thick,
                         label=labels[i] if labels else None)
    panel = np.full((height, height, 3), 24, dtype=np.uint8)
    draw_skeleton_3d(panel, kp3d, azimuth=azimuth, elevation=elevation, thickness=thick)
    return np.concatenate([img, panel], axis=1)


class VideoSink:
    """Write BGR frames to ``.mp4`` / ``.avi`` (OpenCV) or ``.gif`` (Pillow); the file appears atomically on
    :meth:`close` (written under a temporary name in the same directory first)."""

    def __init__(self, path: str | os.PathLike[str], fps: float):
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in RENDER_SUFFIXES:
            raise ConfigError(f"--render: expected a file ending in {', '.join(RENDER_SUFFIXES)}, got {self.path}")
        if not fps > 0:
            raise ConfigError(f"render: fps must be positive, got {fps}")
        self.fps = float(fps)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # OpenCV takes UTF-8 file names only (others crash it): the temporary name is UTF-8 always
        prefix = f".{self.path.name}." if opencv_safe_name(self.path.name) else ".auglift-render."
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=self.suffix, dir=self.path.parent)
        os.fchmod(fd, FILE_MODE)  # the published file gets the usual mode, not mkstemp's 0600
        os.close(fd)
        self._tmp = Path(tmp)
        self._link: tuple[str, str] | None = None  # a UTF-8 link to a directory whose name is not UTF-8
        self._writer: Any = None
        self._gif: list[Any] = []
        self.frames = 0

    def write(self, frame_bgr: np.ndarray) -> None:
        cv2 = _cv2()
        if self.suffix == ".gif":
            rgb = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)
            self._gif.append(Image.fromarray(rgb).quantize(colors=128, method=Image.Quantize.MEDIANCUT))
        else:
            if self._writer is None:
                fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.suffix == ".mp4" else "MJPG"))
                h, w = frame_bgr.shape[:2]
                self._writer = cv2.VideoWriter(self._writer_path(), fourcc, self.fps, (w, h))
                if not self._writer.isOpened():
                    raise DataError(self.path, "render", "OpenCV cannot open a video writer for this file")
            self._writer.write(np.ascontiguousarray(frame_bgr))
        self.frames += 1

    def _writer_path(self) -> str:
        """The temporary file's name for OpenCV: through a UTF-8 link when the directory's is not."""
        if opencv_safe_name(str(self._tmp)):
            return str(self._tmp)
        self._link = utf8_link(str(self._tmp.parent), "d")
        return os.path.join(self._link[1], self._tmp.name)

    def _release(self) -> None:
        """Release the video writer, the UTF-8 link and the GIF frames (each at most once)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._link is not None:
            drop_utf8_link(*self._link)
            self._link = None
        self._gif = []

    def close(self) -> Path:
        """Finish the file and move it into place; returns its path."""
        try:
            if self.suffix == ".gif":
                if not self._gif:
                    raise DataError(self.path, "render", "no frames to write")
                self._gif[0].save(self._tmp, save_all=True, append_images=self._gif[1:],
                                  duration=max(1, round(1000 / self.fps)), loop=0)
            self._release()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        self._release()
        with contextlib.suppress(OSError):
            self._tmp.unlink()
