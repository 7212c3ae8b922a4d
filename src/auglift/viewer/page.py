"""Write :class:`~auglift.viewer.inputs.ViewData` as one self-contained HTML page.

The page holds, inline: the skeleton and clip table as JSON, one compressed block of arrays per
clip, the embedded frames (JPEG) and three.js (``three/three.min.js``) with the viewer script
(``viewer.js``). A block is what the page decodes when a clip is first shown:

* every float array is quantised to 65,535 levels between its minimum and maximum (NaN is
  level 65,535; positions of a 2 m body keep ~0.03 mm), integer arrays (frame numbers) stay exact;
* arrays are stored channel-major as differences between consecutive frames (small numbers for
  smooth motion), all arrays of the clip concatenated, deflated (zlib) and base64-encoded.

The browser inflates a block with its built-in ``DecompressionStream``; no server, no network.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import zlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from auglift.errors import DataError
from auglift.skeleton import get_joint_set
from auglift.video import open_input
from auglift.viewer.inputs import ViewClip, ViewData

__all__ = ["DEFAULT_IMAGE_SIZE", "DEFAULT_MAX_IMAGES", "ERROR_SCALE_MM", "build_page", "embed_images",
           "encode_block"]

DEFAULT_MAX_IMAGES = 1000  # embedded frames of an infer input, evenly spaced
DEFAULT_IMAGE_SIZE = 360  # long side of an embedded frame, pixels
JPEG_QUALITY = 80
ERROR_SCALE_MM = 150.0  # joint colour is red from this error on
DEFAULT_DEPTH_M = 4.0  # camera-view distance when neither an absolute root nor 2D keypoints are known
_LEVELS = 65534  # uint16 levels for finite values; 65535 marks NaN


# ----------------------------------------------------------------------------- array blocks
def _quantise(a: np.ndarray) -> tuple[np.ndarray, float, float]:
    """uint16 levels of float ``a`` and ``(lo, step)`` with ``a ~= lo + level * step`` (NaN -> 65535)."""
    finite = np.isfinite(a)
    lo = float(a[finite].min()) if finite.any() else 0.0
    hi = float(a[finite].max()) if finite.any() else 0.0
    step = (hi - lo) / _LEVELS if hi > lo else 1.0
    q = np.full(a.shape, _LEVELS + 1, dtype=np.uint16)
    q[finite] = np.rint((a[finite] - lo) / step).astype(np.uint16)
    return q, lo, step


def encode_block(arrays: dict[str, np.ndarray]) -> tuple[str, list[dict[str, Any]]]:
    """Arrays with a leading frame axis ``(n, ...)`` -> base64 text of the deflated block and each array's layout."""
    parts: list[bytes] = []
    layout: list[dict[str, Any]] = []
    for name, arr in arrays.items():
        a = np.asarray(arr)
        n = len(a)
        entry: dict[str, Any] = {"name": name, "shape": list(a.shape), "offset": sum(map(len, parts))}
        if a.dtype.kind in "iub":
            cols = a.reshape(n, -1).T.astype(np.int64)
            data = np.diff(cols, axis=1, prepend=0).astype("<i4")  # wraps like JavaScript's `| 0`
            entry["kind"] = "i32"
        else:
            q, lo, step = _quantise(a.astype(np.float64))
            cols = q.reshape(n, -1).T
            data = np.diff(cols, axis=1, prepend=np.zeros((len(cols), 1), np.uint16)).astype("<u2")  # mod 65536
            entry |= {"kind": "u16", "lo": lo, "step": step}
        raw = data.tobytes()
        raw += b"\0" * (-len(raw) % 4)  # typed-array views need 4-byte aligned offsets
        parts.append(raw)
        layout.append(entry)
    return base64.b64encode(zlib.compress(b"".join(parts), 6)).decode("ascii"), layout


# ----------------------------------------------------------------------------- camera placement
def _rms_spread(xy: np.ndarray) -> np.ndarray:
    """Per frame: RMS distance ``(n,)`` of the finite joints ``(n, J, 2)`` from their mean (NaN if none)."""
    ok = np.isfinite(xy).all(-1)
    cnt = ok.sum(1)
    safe = np.where(ok[..., None], xy, 0.0)
    mean = safe.sum(1) / np.maximum(cnt, 1)[:, None]
    sq = np.where(ok, ((safe - mean[:, None]) ** 2).sum(-1), 0.0).sum(1)
    return np.where(cnt >= 2, np.sqrt(sq / np.maximum(cnt, 1)), np.nan)


def camera_root(clip: ViewClip) -> tuple[np.ndarray, bool]:
    """Absolute pelvis ``(n, 3)`` metres, camera frame, for the camera view, and whether it was estimated.

    The clip's ``root`` where known; otherwise the pelvis's pixel back-projected at the depth where
    the pose's 3D spread matches its 2D spread (``fy * spread_3d / spread_2d``, median over frames).
    """
    n = len(clip.frame)
    if clip.root is not None and np.isfinite(clip.root).all():
        return clip.root.astype(np.float64), False
    fx, fy, cx, cy = _intrinsics(clip)
    depth = DEFAULT_DEPTH_M
    pelvis = np.full((n, 2), np.nan) if clip.kp2d is None else clip.kp2d[:, 0].astype(np.float64)
    if clip.kp2d is not None and clip.poses:
        ratio = fy * _rms_spread(clip.poses[0][..., :2]) / _rms_spread(clip.kp2d.astype(np.float64))
        ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
        depth = float(np.median(ratio)) if len(ratio) else depth
    root = np.stack([(pelvis[:, 0] - cx) / fx * depth, (pelvis[:, 1] - cy) / fy * depth, np.full(n, depth)], -1)
    if clip.root is not None:  # known where finite
        root = np.where(np.isfinite(clip.root), clip.root, root)
    return np.where(np.isfinite(root), root, [0.0, 0.0, depth]), True


def _intrinsics(clip: ViewClip) -> tuple[float, float, float, float]:
    """``fx, fy, cx, cy`` px; a focal length that is not positive becomes ``max(width, height)``."""
    fx, fy, cx, cy = (float(v) for v in clip.intrinsics)
    default = float(max(clip.width, clip.height))
    return fx if fx > 0 else default, fy if fy > 0 else default, cx, cy


def _floor(clip: ViewClip) -> float:
    """Height of the floor in the upright world view (y up = -y of the camera): under the feet."""
    lowest = np.concatenate([np.where(np.isfinite(p[..., 1]), p[..., 1], -np.inf).max(axis=1)
                             for p in clip.poses]) if clip.poses else np.zeros(0)
    lowest = lowest[np.isfinite(lowest)]
    return -float(np.percentile(lowest, 95)) if len(lowest) else -1.0


# ----------------------------------------------------------------------------- frames of infer inputs
def embed_images(source: Path, width: int, height: int, frames: np.ndarray, *, max_images: int = DEFAULT_MAX_IMAGES,
                 long_side: int = DEFAULT_IMAGE_SIZE) -> tuple[list[int], list[str], str]:
    """JPEG frames (base64) of an infer input for the given frame numbers: at most ``max_images`` evenly
    spaced, scaled to ``long_side`` px. Returns ``(frame numbers, images, note)``; no images and a
    note saying why when the input cannot be read."""
    try:
        import cv2  # optional: the video extra
    except ImportError:
        return [], [], "frames not shown: OpenCV is missing (pip install 'auglift[video]')"
    wanted = np.unique(np.asarray(frames, dtype=np.int64))
    try:
        src = open_input(source)
        if (src.width, src.height) != (width, height):
            return [], [], (f"frames not shown: {source} is {src.width}x{src.height} px, the poses were lifted "
                            f"from {width}x{height}")
        wanted = wanted[wanted < src.num_frames]
        if len(wanted) > max_images:
            wanted = np.unique(wanted[np.linspace(0, len(wanted) - 1, max_images).round().astype(np.int64)])
        scale = min(1.0, long_side / max(width, height))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        out = []
        with src.reader() as reader:
            for chunk in np.array_split(wanted, max(1, math.ceil(len(wanted) / 32))):
                for img in reader.read(chunk):
                    small = cv2.cvtColor(cv2.resize(img, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
                    _ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                    out.append(base64.b64encode(buf.tobytes()).decode("ascii"))
    except DataError as exc:
        return [], [], f"frames not shown: {exc}"
    note = (f"frames: {len(out):,} embedded ({size[0]}x{size[1]} px JPEG; at most {max_images:,}, evenly spaced; "
            "between them the nearest earlier frame is shown)")
    return [int(f) for f in wanted], out, note


# ----------------------------------------------------------------------------- the page
def _clip_meta(clip: ViewClip, ci: int) -> tuple[dict[str, Any], str, bool]:
    root, estimated = camera_root(clip)
    arrays: dict[str, np.ndarray] = {"frame": clip.frame, "root": root}
    for k, (pose, err) in enumerate(zip(clip.poses, clip.errors)):
        arrays[f"pose{k}"] = pose
        if err is not None:
            arrays[f"err{k}"] = err
    arrays |= {name: a for name in ("kp2d", "conf", "uadd") if (a := getattr(clip, name)) is not None}
    block, layout = encode_block(arrays)
    fov = math.degrees(2 * math.atan(clip.height / (2 * _intrinsics(clip)[1])))
    fps = clip.fps if clip.fps > 0 else 30.0
    meta = {"name": clip.name, "frames": len(clip.frame), "fps": fps, "stride": clip.stride,
            "width": clip.width, "height": clip.height, "fov": fov, "depth": float(np.median(root[:, 2])),
            "floor": _floor(clip), "block": f"clip-{ci}", "arrays": layout}
    return meta, block, estimated


def _worst_meta(data: ViewData) -> list[dict[str, Any]]:
    """Worst frames with the embedded row to jump to (the nearest one at or before the frame)."""
    groups = []
    for label, frames in data.worst:
        items = []
        for ci, frame, mm in frames:
            row = int(np.searchsorted(data.clips[ci].frame, frame, side="right")) - 1
            items.append({"clip": ci, "frame": frame, "index": max(row, 0), "mm": mm})
        groups.append({"label": label, "frames": items})
    return groups


def _asset(name: str) -> str:
    return resources.files("auglift.viewer").joinpath(name).read_text(encoding="utf-8")


def build_page(data: ViewData, *, images: tuple[Sequence[int], Sequence[str]] = ((), ()),
               notes: Sequence[str] = (), title: str | None = None) -> tuple[str, list[str]]:
    """The HTML text of the page for ``data`` (and embedded ``images``: frame numbers, base64 JPEGs) and the
    notes it shows (``data.notes``, ``notes`` and how the camera view was placed)."""
    js = get_joint_set(data.joint_set)
    side = ["l" if j in js.left else "r" if j in js.right else "c" for j in range(js.num_joints)]
    clips, blocks, estimated = [], [], False
    for ci, clip in enumerate(data.clips):
        meta, block, est = _clip_meta(clip, ci)
        clips.append(meta)
        blocks.append(f'<script type="text/plain" id="clip-{ci}">{block}</script>')
        estimated |= est and bool(data.layers)
    blocks += [f'<script type="text/plain" id="img-{k}">{img}</script>' for k, img in enumerate(images[1])]
    all_notes = list(data.notes) + list(notes)
    if estimated:
        all_notes.append("camera view: no absolute root in the input; the pose is placed at the depth where its 3D "
                         "size matches its 2D size")
    meta = {"title": title or data.title, "kind": data.kind, "joints": list(js.joints), "parents": list(js.parents),
            "side": side, "layers": [{"label": label, "role": role} for label, role in data.layers],
            "clips": clips, "worst": _worst_meta(data), "notes": all_notes, "uadd_units": data.uadd_units,
            "error_scale_mm": ERROR_SCALE_MM, "images": {"frames": list(images[0])} if images[1] else None}
    # the JSON is safe inside a <script> element: no "</script>" or "<!--" in its strings
    script_json = json.dumps(meta, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")
    values = {"TITLE": html.escape(meta["title"]), "META": script_json, "BLOCKS": "\n".join(blocks),
              "THREE": _asset("three/three.min.js"), "VIEWER": _asset("viewer.js"),
              "ERROR_SCALE": f"{ERROR_SCALE_MM:.0f}"}
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], _asset("page.html")), all_notes
