"""``auglift view``: poses in the browser, as one self-contained HTML file (offline, from disk, no server).

:func:`write_viewer` reads a PoseSet, one or more predictions files (:mod:`auglift.predictions`)
or an ``auglift infer`` output (:mod:`auglift.viewer.inputs`) and writes a page
(:mod:`auglift.viewer.page`) with a three.js 3D view (play/pause, scrub, speed, orbit/zoom/pan,
camera view vs upright world view, clip selection, a joint's values and depth descriptor on
hover), the 2D keypoints over the input's frames when they are available, ground truth and
predictions overlaid with joints coloured by error, and the worst frames listed.

Limits: the page holds at most ``max_frames`` frames (longer inputs show every k-th frame, said
on the page) and decodes a clip's arrays only when the clip is first shown, so a large set
opens quickly; infer inputs embed at most ``max_images`` frames as small JPEGs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from auglift.errors import ConfigError
from auglift.io import PathLike, write_file
from auglift.viewer.inputs import read_inputs
from auglift.viewer.page import DEFAULT_IMAGE_SIZE, DEFAULT_MAX_IMAGES, build_page, embed_images

__all__ = ["DEFAULT_MAX_FRAMES", "ViewerResult", "write_viewer"]

DEFAULT_MAX_FRAMES = 100_000
_GENERATOR = b'<meta name="generator" content="auglift view">'


@dataclass(frozen=True)
class ViewerResult:
    """What was written: the page, the input kind, clips and frames shown, the frame stride, notes."""

    path: Path
    kind: str
    clips: int
    frames: int
    stride: int
    images: int
    bytes: int
    notes: tuple[str, ...]


def default_output(path: PathLike) -> Path:
    """``NAME.html`` in the current directory, NAME from the input (a folder's name, a file's stem)."""
    p = Path(path)
    if p.name in ("poses3d.npz", "poses3d.json"):
        p = p.parent
    name = p.resolve().name if p.is_dir() else p.name.removesuffix(".npz")
    return Path(f"{name or 'auglift_view'}.html")


def _check_output(out: Path) -> None:
    """Refuse to replace a file that is not a page written by ``auglift view``."""
    if out.is_dir():
        raise ConfigError(f"{out}: is a directory; --out takes an .html file name")
    if out.exists():
        with open(out, "rb") as fh:
            head = fh.read(4096)
        if _GENERATOR not in head:
            raise ConfigError(f"{out}: exists and was not written by auglift view; not overwriting it")


def write_viewer(
    paths: PathLike | Sequence[PathLike],
    out: PathLike | None = None,
    *,
    clips: Sequence[str] | None = None,
    max_frames: int | None = DEFAULT_MAX_FRAMES,
    max_images: int = DEFAULT_MAX_IMAGES,
    image_size: int = DEFAULT_IMAGE_SIZE,
    title: str | None = None,
) -> ViewerResult:
    """Write the viewer page for ``paths`` to ``out`` (default :func:`default_output`), atomically.

    ``clips``: clip indices or ``fnmatch`` patterns on clip names (``"S9/*"``, ``"track 0"``);
    ``max_frames``: frames in the page at most (``None``: all); ``max_images``/``image_size``:
    embedded frames of an infer input and their long side in pixels.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if max_images < 0 or image_size < 16:
        raise ConfigError(f"--max-images must be >= 0 and --image-size >= 16, got {max_images} and {image_size}")
    target = Path(out) if out is not None else default_output(paths[0]) if paths else Path("auglift_view.html")
    _check_output(target)
    data = read_inputs(paths, clips, max_frames)
    numbers, images, notes = [], [], []
    if data.frames_source is not None and max_images > 0:  # an infer input whose frames were found
        frames = np.concatenate([c.frame for c in data.clips])
        numbers, images, note = embed_images(*data.frames_source, frames, max_images=max_images, long_side=image_size)
        notes.append(note)
    stride = max((c.stride for c in data.clips), default=1)
    if stride > 1:
        notes.append(f"one frame in {stride} shown (the input has more than {max_frames:,} frames; --max-frames)")
    text, shown = build_page(data, images=(numbers, images), notes=notes, title=title)
    page = text.encode("utf-8")
    write_file(target, page)
    return ViewerResult(target, data.kind, len(data.clips), sum(len(c.frame) for c in data.clips), stride,
                        len(images), len(page), tuple(shown))
