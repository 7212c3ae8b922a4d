"""Frames of videos and images: the readers every stage shares (depth extraction, inference, rendering).

* A PoseSet clip's ``source`` (clip table) is a video path, an image pattern with ``{frame}`` /
  ``{frame1}`` placeholders (0-/1-based frame number, a format spec allowed, e.g.
  ``imgs/S9_{frame1:06d}.jpg``), or ``synthetic:...`` (no frames; see the oracle estimator).
  Relative paths are relative to ``meta["frame_root"]`` (itself relative to the PoseSet directory
  when not absolute); :func:`open_clip_frames` opens one.
* An inference input is a video file, one image or a folder of images (sorted naturally);
  :func:`open_input` probes it into a :class:`FrameSource`.

Readers return ``uint8 (n, H, W, 3)`` RGB and raise :class:`~auglift.errors.DataError` naming the
clip and the frame for a missing file, an unreadable frame, a frame past the end of a video and
a frame whose size differs from the expected ``width``/``height``. OpenCV (the ``video`` extra)
decodes; file names that are not UTF-8, which crash OpenCV, are read through their bytes or a
temporary UTF-8 link.
"""

from __future__ import annotations

import abc
import contextlib
import math
import os
import re
import string
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from auglift.errors import ConfigError, DataError
from auglift.io import natural_key

__all__ = [
    "IMAGE_SUFFIXES",
    "FrameReader",
    "FrameSource",
    "ImageListReader",
    "ImagePatternReader",
    "VideoReader",
    "check_pattern",
    "drop_utf8_link",
    "imread",
    "is_pattern",
    "open_clip_frames",
    "open_input",
    "opencv_safe_name",
    "resolve_source",
    "utf8_link",
    "video_capture",
]

PathLike = str | os.PathLike[str]
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# Forward gaps up to this many frames are decoded and dropped instead of seeking (exact and
# usually faster than a keyframe seek).
_MAX_GRAB_GAP = 250


def _cv2() -> Any:
    """OpenCV, an optional dependency (the ``video`` extra): imported on first use."""
    try:
        import cv2
    except ImportError:  # pragma: no cover - the "video" extra is part of the test setup
        raise DataError(None, "frames", "decoding frames needs OpenCV: pip install 'auglift[video]'") from None
    return cv2


def opencv_safe_name(path: str) -> bool:
    """True when OpenCV can take ``path``: it takes file names as UTF-8, and a name holding undecodable
    bytes (surrogate escapes) crashes it."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def imread(path: str) -> np.ndarray | None:
    """``cv2.imread(path, IMREAD_COLOR)`` (BGR, None when unreadable) for any file name: OpenCV crashes
    on names that are not UTF-8, so those are decoded from the file's bytes."""
    cv2 = _cv2()
    if opencv_safe_name(path):
        return cv2.imread(path, cv2.IMREAD_COLOR)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


def utf8_link(target: str, name: str) -> tuple[str, str]:
    """``(link_dir, link)``: a new temporary directory holding ``link = link_dir/name``, a symlink to
    ``target``, so OpenCV can reach a file or directory whose name is not UTF-8. The caller removes
    both (:func:`drop_utf8_link`) once OpenCV holds the file open."""
    link_dir = tempfile.mkdtemp(prefix="auglift-link-")
    link = os.path.join(link_dir, name)
    os.symlink(os.fsencode(os.path.abspath(target)), link)
    return link_dir, link


def drop_utf8_link(link_dir: str, link: str) -> None:
    """Remove what :func:`utf8_link` made (never the target)."""
    with contextlib.suppress(OSError):
        os.unlink(link)
        os.rmdir(link_dir)


def video_capture(path: str) -> Any:
    """``cv2.VideoCapture(path)`` for any file name: a name that is not UTF-8 (which crashes OpenCV) is
    opened through a temporary UTF-8 link, removed again once the decoder holds the file open."""
    cv2 = _cv2()
    if opencv_safe_name(path):
        return cv2.VideoCapture(path)
    suffix = Path(path).suffix if opencv_safe_name(Path(path).suffix) else ""
    link_dir, link = utf8_link(path, "video" + suffix)
    try:
        return cv2.VideoCapture(link)
    finally:
        drop_utf8_link(link_dir, link)


def is_pattern(source: str) -> bool:
    """True when ``source`` contains a ``{frame}``/``{frame1}`` placeholder."""
    try:
        return any(f in ("frame", "frame1") for _, f, _, _ in string.Formatter().parse(source))
    except ValueError:
        return False


def resolve_source(source: str, frame_root: str | os.PathLike[str], poseset_dir: str | os.PathLike[str] | None) -> str:
    """Absolute path (or pattern) of a clip source, resolving ``frame_root`` and the PoseSet directory."""
    if Path(source).is_absolute():
        return source
    root = Path(frame_root) if frame_root else Path()
    if not root.is_absolute() and poseset_dir is not None:
        root = Path(poseset_dir) / root
    return str(root / source)


class FrameReader(contextlib.AbstractContextManager):
    """Reads frames of one clip by index (subclasses: :class:`VideoReader`, :class:`ImagePatternReader`)."""

    def __init__(self, source: str, label: str, size: tuple[int, int] | None):
        self.source = source
        self.label = label  # "clip 3 (S9/walk/55011271)" for error messages
        self.size = size  # expected (width, height) or None

    @abc.abstractmethod
    def read(self, frames: np.ndarray) -> np.ndarray:
        """``uint8 (n, H, W, 3)`` RGB frames for increasing 0-based indices ``frames``."""

    def close(self) -> None:  # optional hook: readers without a decoder keep this
        """Release the decoder (nothing to release by default)."""

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_size(self, img: np.ndarray, frame: int, where: str) -> np.ndarray:
        if self.size is not None and (img.shape[1], img.shape[0]) != tuple(self.size):
            raise DataError(where, "frames", f"{self.label}, frame {frame}: expected a {self.size[0]}x{self.size[1]} "
                                             f"image (clip table width x height), got {img.shape[1]}x{img.shape[0]}")
        return img


class VideoReader(FrameReader):
    """Frames of a video file through ``cv2.VideoCapture``.

    Frames are decoded sequentially; a forward gap of up to 250 frames is decoded and dropped,
    longer jumps (and backward ones) seek with ``CAP_PROP_POS_FRAMES`` (frame-accurate with
    OpenCV's FFmpeg backend on constant-frame-rate files).
    """

    def __init__(self, source: str, label: str, size: tuple[int, int] | None = None):
        super().__init__(source, label, size)
        cv2 = _cv2()
        if not Path(source).is_file():
            raise DataError(source, "frames", f"{label}: video file not found")
        self._cap = video_capture(source)
        if not self._cap.isOpened():
            self.close()
            raise DataError(source, "frames", f"{label}: cannot open the video")
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._next = 0  # index of the frame the next read() returns

    def read(self, frames: np.ndarray) -> np.ndarray:
        cv2 = _cv2()
        out = []
        for f in np.asarray(frames, dtype=np.int64).tolist():
            if f < 0:
                raise DataError(self.source, "frame", f"{self.label}: negative frame index {f}")
            if self.frame_count and f >= self.frame_count:
                raise DataError(self.source, "frame", f"{self.label}, frame {f}: beyond the end of the video "
                                                      f"({self.frame_count} frames); frame count mismatch")
            if f < self._next or f - self._next > _MAX_GRAB_GAP:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, f)
                self._next = f
            while self._next < f:
                if not self._cap.grab():
                    raise DataError(self.source, "frame", f"{self.label}, frame {self._next}: the video ends early "
                                                          f"(frame {f} requested); frame count mismatch")
                self._next += 1
            ok, img = self._cap.read()
            if not ok or img is None:
                raise DataError(self.source, "frame", f"{self.label}, frame {f}: cannot decode the frame "
                                                      "(unreadable or past the end of the video)")
            self._next = f + 1
            out.append(cv2.cvtColor(self._check_size(img, f, self.source), cv2.COLOR_BGR2RGB))
        return np.stack(out) if out else np.zeros((0, 0, 0, 3), np.uint8)

    def close(self) -> None:
        self._cap.release()


# A placeholder's format spec may pad the number (``{frame1:06d}``) but not to absurd widths: a
# pattern read from a dataset file must not make formatting allocate gigabytes.
_MAX_FIELD_WIDTH = 64


def check_pattern(source: str, label: str = "") -> None:
    """Raise :class:`DataError` unless every field of the image pattern ``source`` is a plain
    ``{frame}`` / ``{frame1}`` with an optional format spec of a sane width (no attribute or
    index access such as ``{frame.__class__}``, no other names, no nested fields)."""
    where = f"{label}: " if label else ""
    try:
        fields = list(string.Formatter().parse(source))
    except ValueError as exc:
        raise DataError(source, "clips.source", f"{where}bad image pattern ({exc})") from None
    for _lit, name, spec, conv in fields:
        if name is None:
            continue
        if name not in ("frame", "frame1") or conv is not None or "{" in (spec or ""):
            raise DataError(source, "clips.source", f"{where}bad image pattern field {{{name}}}: only {{frame}} and "
                                                    "{frame1} with an optional format spec are allowed")
        if any(int(w) > _MAX_FIELD_WIDTH for w in re.findall(r"\d+", spec or "")):
            raise DataError(source, "clips.source", f"{where}bad image pattern: format spec {spec!r} pads to more "
                                                    f"than {_MAX_FIELD_WIDTH} characters")


class _ImageFileReader(FrameReader):
    """Frames stored as image files, one per frame (:meth:`path_of` names the file of a frame)."""

    @abc.abstractmethod
    def path_of(self, frame: int) -> str:
        """The image file of 0-based ``frame`` (a DataError when there is none)."""

    def read(self, frames: np.ndarray) -> np.ndarray:
        cv2 = _cv2()
        out = []
        for f in np.asarray(frames, dtype=np.int64).tolist():
            p = self.path_of(f)
            img = imread(p)
            if img is None:
                raise DataError(p, "frame", f"{self.label}, frame {f}: cannot decode the image")
            out.append(cv2.cvtColor(self._check_size(img, f, p), cv2.COLOR_BGR2RGB))
        return np.stack(out) if out else np.zeros((0, 0, 0, 3), np.uint8)


class ImagePatternReader(_ImageFileReader):
    """Frames stored as image files named by a pattern with ``{frame}``/``{frame1}``."""

    _checked = False

    def path_of(self, frame: int) -> str:
        if not self._checked:
            check_pattern(self.source, self.label)
            self._checked = True
        try:
            p = self.source.format(frame=frame, frame1=frame + 1)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise DataError(self.source, "clips.source", f"{self.label}: bad image pattern ({exc}); use "
                                                         "{frame} or {frame1} with an optional format spec") from None
        if not Path(p).is_file():
            raise DataError(p, "frame", f"{self.label}, frame {frame}: image file not found")
        return p


class ImageListReader(_ImageFileReader):
    """Frames stored as a list of image files (a folder of images, or one image)."""

    def __init__(self, files: Sequence[Path], label: str, size: tuple[int, int] | None = None):
        super().__init__(str(files[0].parent if files else ""), label, size)
        self.files = list(files)

    def path_of(self, frame: int) -> str:
        if not 0 <= frame < len(self.files):
            raise DataError(self.source, "frame", f"{self.label}: frame {frame} out of range (0-{len(self.files) - 1})")
        return str(self.files[frame])


def open_clip_frames(source: str, *, label: str, size: tuple[int, int] | None = None) -> FrameReader:
    """A reader for a resolved clip source (see :func:`resolve_source`)."""
    if source.startswith("synthetic:"):
        raise DataError(None, "clips.source", f"{label}: a synthetic: clip has no image frames; "
                                              "use the oracle estimator (--model oracle)")
    if not source:
        raise DataError(None, "clips.source", f"{label}: the clip has no frame source (video path or image pattern)")
    if is_pattern(source):
        return ImagePatternReader(source, label, size)
    return VideoReader(source, label, size)


# ----------------------------------------------------------------------------- inference inputs
@dataclass(frozen=True)
class FrameSource:
    """An input: ``kind`` ``"video"``, ``"image"`` or ``"images"`` (a folder), its frame count, size (px) and fps.

    ``files``/``names``: the image files and their names relative to the folder (image inputs only).
    """

    path: Path
    kind: str
    num_frames: int
    width: int
    height: int
    fps: float
    files: tuple[Path, ...] | None = None
    names: tuple[str, ...] | None = None

    def reader(self) -> FrameReader:
        label = f"input {self.path.name}"
        if self.kind == "video":
            return VideoReader(str(self.path), label, (self.width, self.height))
        assert self.files is not None
        return ImageListReader(self.files, label, (self.width, self.height))


def open_input(path: PathLike, *, fps: float | None = None) -> FrameSource:
    """Probe an input (video, image or folder of images) without decoding it all.

    A video must open and decode its first frame; its frame count is the container's (counted by
    decoding when the container does not say). ``fps`` overrides the video's rate (image inputs: 30
    unless given).
    """
    p = Path(path)
    if not p.exists():
        raise DataError(p, None, "input not found (a video file, an image or a folder of images)")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ConfigError(f"fps must be a positive number, got {fps}")
    if p.is_dir():
        files = sorted((f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
                       key=lambda f: natural_key(f.name))
        if not files:
            raise DataError(p, None, f"no images in this folder ({', '.join(sorted(IMAGE_SUFFIXES))})")
    elif p.suffix.lower() in IMAGE_SUFFIXES:
        files = [p]
    else:
        return _probe_video(p, fps)
    img = imread(str(files[0]))
    if img is None:
        raise DataError(files[0], "image", "cannot decode the image")
    h, w = img.shape[:2]
    return FrameSource(p, "images" if p.is_dir() else "image", len(files), int(w), int(h), float(fps or 30.0),
                       tuple(files), tuple(f.name for f in files))


def _probe_video(p: Path, fps: float | None) -> FrameSource:
    cv2 = _cv2()
    cap = video_capture(str(p))
    try:
        if not cap.isOpened():
            raise DataError(p, "video", "cannot open the video (corrupt file or unsupported format)")
        ok, first = cap.read()
        if not ok or first is None:
            raise DataError(p, "video", "cannot decode the first frame (corrupt file or unsupported format)")
        h, w = first.shape[:2]
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        rate = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if n <= 0:  # the container does not say: count by decoding
            n = 1
            while cap.grab():
                n += 1
    finally:
        cap.release()
    rate = fps or (rate if math.isfinite(rate) and rate > 0 else 30.0)
    return FrameSource(p, "video", n, int(w), int(h), float(rate))
