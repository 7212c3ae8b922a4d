"""Biovision Hierarchy (BVH) files: read, write, and turn into a :class:`Motion`.

Format (what this reader accepts)::

    HIERARCHY
    ROOT Hips
    {
      OFFSET 0 0 0
      CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
      JOINT LeftUpLeg
      {
        OFFSET 9.0 -3.0 0.0
        CHANNELS 3 Zrotation Xrotation Yrotation
        End Site
        {
          OFFSET 0 -40 0
        }
      }
    }
    MOTION
    Frames: 2
    Frame Time: 0.0083333
    <one line of channel values per frame, in hierarchy order>

* One ``ROOT``; ``JOINT`` blocks nest; ``End Site`` blocks carry only an ``OFFSET`` and are
  named ``<parent>_end``. Joint names may contain spaces.
* ``CHANNELS n ...`` lists any subset of ``X/Y/Zposition`` and ``X/Y/Zrotation`` in any order,
  on the root and on joints (3 or 6 channels are usual). Angles are in degrees.
* Rotation order is the order of the rotation channels: ``Zrotation Xrotation Yrotation``
  means ``R = R_z(z) @ R_x(x) @ R_y(y)`` (intrinsic Z-X-Y: rotate about Z, then about the new
  X, then the new Y), the convention of Blender's BVH importer and of the Biovision format.
* Position channels *replace* the corresponding component of the joint's ``OFFSET`` (they are
  the joint's local position in its parent's frame), as in Blender's importer. (PyMO adds the
  channel to the offset for non-root joints; on files whose joint position channels repeat
  the offset, as MotionBuilder and Mixamo exports do, "replace" is the reading that keeps
  bone lengths.)
* Lengths are in the file's unit (cm for Mixamo/MotionBuilder, CMU units for the CMU BVH
  conversions, metres or inches elsewhere): :func:`load_bvh` detects it from the size of
  the rest pose, or takes ``units=``.

Every problem raises :class:`~auglift.errors.DataError` as ``"<file>: line N: <problem>"``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from auglift.datasets.mocap.kinematics import Motion, Skeleton, detect_unit_scale, euler_matrices
from auglift.datasets.mocap.kinematics import line_error as _err
from auglift.datasets.mocap.kinematics import parse_floats as _floats
from auglift.errors import DataError
from auglift.io import write_file

__all__ = ["BvhFile", "format_bvh", "load_bvh", "parse_bvh", "read_bvh", "to_motion", "write_bvh"]

_CHANNELS = {f"{a}{kind}": (kind, i) for i, a in enumerate("XYZ") for kind in ("position", "rotation")}
_CANON = {k.lower(): k for k in _CHANNELS}

# Largest BVH text read (the motion of a few hours at 120 fps); bigger files are refused.
MAX_BVH_BYTES = 1 << 30


@dataclass(frozen=True)
class BvhFile:
    """A parsed BVH file, as written.

    Attributes:
        skeleton: the hierarchy (offsets in file units).
        channels: per joint, its channel names in file order (``"Zrotation"``, ...); ``()``
            for end sites.
        frames: ``(F, C)`` float64 channel values, one row per frame, columns in hierarchy order.
        frame_time: seconds per frame.
    """

    skeleton: Skeleton
    channels: tuple[tuple[str, ...], ...]
    frames: np.ndarray
    frame_time: float

    @property
    def fps(self) -> float:
        """Frames per second (``1 / frame_time``, snapped to an integer when within 0.05%)."""
        fps = 1.0 / self.frame_time
        return float(round(fps)) if abs(fps - round(fps)) < 5e-4 * fps else fps

    @property
    def path(self) -> str | None:
        return self.skeleton.path

    @property
    def column_offsets(self) -> np.ndarray:
        """``(K + 1,)`` start column of each joint's channels in ``frames``."""
        return np.concatenate([[0], np.cumsum([len(c) for c in self.channels])])


def parse_bvh(text: str, path: str | os.PathLike[str] | None = None) -> BvhFile:
    """Parse BVH ``text`` (``path`` only names the file in errors). See the module docstring."""
    p = None if path is None else os.fspath(path)
    lines = text.splitlines()
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float] | None] = []
    channels: list[tuple[str, ...] | None] = []
    end: list[bool] = []
    decl_line: list[int] = []
    stack: list[int] = []
    awaiting_brace: int | None = None          # joint declared, its '{' not yet seen
    seen_hierarchy = False
    for ln, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        tok = parts[0]
        up = tok.upper()
        if awaiting_brace is not None and tok != "{":
            raise _err(p, ln, f"expected '{{' to open {names[awaiting_brace]!r} (declared on line "
                              f"{decl_line[awaiting_brace]}), got {line.strip()!r}")
        if not seen_hierarchy:
            if up != "HIERARCHY":
                raise _err(p, ln, f"expected 'HIERARCHY' at the start of a BVH file, got {line.strip()!r}")
            seen_hierarchy = True
            continue
        if up in ("ROOT", "JOINT") or (up == "END" and len(parts) > 1 and parts[1].upper() == "SITE"):
            is_end = up == "END"
            brace = parts[-1] == "{"
            rest = parts[2:] if is_end else parts[1:]
            if brace:
                rest = rest[:-1]
            if up == "ROOT":
                if stack:
                    raise _err(p, ln, f"ROOT inside {names[stack[-1]]!r}: a BVH file has one root")
                if names:
                    raise _err(p, ln, "a second ROOT: only files with one skeleton are supported")
                parent = -1
            else:
                if not stack:
                    what = "End Site" if is_end else "JOINT"
                    raise _err(p, ln, f"{what} outside the ROOT block (unbalanced braces before it?)")
                parent = stack[-1]
                if end[parent]:
                    raise _err(p, ln, f"an End Site cannot have children (End Site of {names[parents[parent]]!r})")
                if offsets[parent] is None:
                    raise _err(p, ln, f"{names[parent]!r} has no OFFSET before its first child")
            if is_end:
                name = f"{names[parent]}_end"
            else:
                name = " ".join(rest)
                if not name:
                    raise _err(p, ln, f"{up} without a name")
            if name in names:
                raise _err(p, ln, f"duplicate joint name {name!r} (first on line {decl_line[names.index(name)]})")
            names.append(name)
            parents.append(parent)
            offsets.append(None)
            channels.append(() if is_end else None)
            end.append(is_end)
            decl_line.append(ln)
            k = len(names) - 1
            if brace:
                stack.append(k)
            else:
                awaiting_brace = k
        elif tok == "{":
            if awaiting_brace is None:
                raise _err(p, ln, "unexpected '{' (no ROOT, JOINT or End Site before it)")
            stack.append(awaiting_brace)
            awaiting_brace = None
        elif tok == "}":
            if not stack:
                raise _err(p, ln, "unmatched '}'")
            k = stack.pop()
            if offsets[k] is None:
                raise _err(p, ln, f"{names[k]!r} (line {decl_line[k]}) closed without an OFFSET")
            if channels[k] is None:
                raise _err(p, ln, f"{names[k]!r} (line {decl_line[k]}) closed without a CHANNELS line")
        elif up == "OFFSET":
            if not stack:
                raise _err(p, ln, "OFFSET outside any joint")
            k = stack[-1]
            if offsets[k] is not None:
                raise _err(p, ln, f"a second OFFSET for {names[k]!r}")
            if len(parts) != 4:
                raise _err(p, ln, f"OFFSET of {names[k]!r}: expected 3 numbers, got {len(parts) - 1}")
            offsets[k] = _floats(parts[1:], p, ln, f"OFFSET of {names[k]!r}")
        elif up == "CHANNELS":
            if not stack:
                raise _err(p, ln, "CHANNELS outside any joint")
            k = stack[-1]
            if end[k]:
                raise _err(p, ln, f"an End Site has no CHANNELS ({names[k]!r})")
            if channels[k] is not None:
                raise _err(p, ln, f"a second CHANNELS line for {names[k]!r}")
            try:
                n = int(parts[1])
            except (IndexError, ValueError):
                raise _err(p, ln, f"CHANNELS of {names[k]!r}: expected a channel count, got "
                                  f"{' '.join(parts[1:2])!r}") from None
            chans = parts[2:]
            if n != len(chans) or not 0 <= n <= 6:
                raise _err(p, ln, f"CHANNELS of {names[k]!r}: the count says {n} but {len(chans)} channels "
                                  f"are listed (0 to 6 expected)")
            canon = []
            for c in chans:
                if c.lower() not in _CANON:
                    raise _err(p, ln, f"CHANNELS of {names[k]!r}: unknown channel {c!r}; expected "
                                      f"{', '.join(_CHANNELS)}")
                canon.append(_CANON[c.lower()])
            if len(set(canon)) != len(canon):
                raise _err(p, ln, f"CHANNELS of {names[k]!r}: a channel is listed twice")
            channels[k] = tuple(canon)
        elif up == "MOTION":
            if awaiting_brace is not None or stack:
                k = stack[-1] if stack else awaiting_brace
                raise _err(p, ln, f"MOTION before the hierarchy is closed: {names[k]!r} opened on line "
                                  f"{decl_line[k]} has no matching '}}'")
            if not names:
                raise _err(p, ln, "MOTION before any ROOT")
            break
        else:
            raise _err(p, ln, f"unexpected {tok!r} in the HIERARCHY section (expected ROOT, JOINT, End Site, "
                              f"OFFSET, CHANNELS, braces or MOTION)")
    else:  # the file ends without a MOTION line
        if not seen_hierarchy:
            raise DataError(p, "line 1", "empty file: expected a BVH 'HIERARCHY' section")
        if stack or awaiting_brace is not None:
            k = stack[-1] if stack else awaiting_brace
            raise _err(p, len(lines), f"the file ends inside the hierarchy: {names[k]!r} opened on line "
                                      f"{decl_line[k]} is not closed")
        raise _err(p, len(lines), "no MOTION section" if names else "no ROOT in the HIERARCHY section")

    # MOTION header: "Frames: N" and "Frame Time: t", each on its own line.
    header: dict[str, tuple[str, int]] = {}
    i = ln  # the line after MOTION
    while i < len(lines) and len(header) < 2:
        ln = i + 1
        s = lines[i].strip()
        i += 1
        if not s:
            continue
        key, _, val = s.partition(":")
        key = " ".join(key.split()).lower()
        if key not in ("frames", "frame time") or key in header:
            raise _err(p, ln, f"expected 'Frames: N' and 'Frame Time: seconds' after MOTION, got {s!r}")
        header[key] = (val.strip(), ln)
    for key in ("frames", "frame time"):
        if key not in header:
            label = "Frames" if key == "frames" else "Frame Time"
            raise _err(p, len(lines), f"the MOTION section has no '{label}:' line")
    try:
        n_frames = int(header["frames"][0])
        if n_frames < 0:
            raise ValueError
    except ValueError:
        raise _err(p, header["frames"][1], f"Frames: expected a count >= 0, got {header['frames'][0]!r}") from None
    try:
        frame_time = float(header["frame time"][0])
        if not (np.isfinite(frame_time) and frame_time > 0):
            raise ValueError
    except ValueError:
        raise _err(p, header["frame time"][1], f"Frame Time: expected seconds > 0, got "
                                               f"{header['frame time'][0]!r}") from None

    chans = tuple(c or () for c in channels)
    frames = _parse_frames(lines, i, n_frames, sum(len(c) for c in chans), p)  # from the line after the header
    skel = Skeleton(tuple(names), np.asarray(parents, np.int64), np.asarray(offsets, np.float64).reshape(-1, 3),
                    np.asarray(end, bool), tuple(decl_line), p)
    return BvhFile(skel, chans, frames, frame_time)


def _parse_frames(lines: list[str], start: int, n_frames: int, n_cols: int, path: str | None) -> np.ndarray:
    """``(n_frames, n_cols)`` values from ``lines[start:]``; a clear error names the first bad line."""
    body = lines[start:]
    tokens = " ".join(body).split()
    n_lines = sum(1 for s in body if s and not s.isspace())
    if len(tokens) == n_frames * n_cols and n_lines == (n_frames if n_cols else 0):
        try:
            values = np.array(tokens, dtype=np.float64).reshape(n_frames, n_cols)
        except ValueError:
            values = None
        if values is not None and np.all(np.isfinite(values)):
            return values
    # Slow path, only for a broken file: find the first line that is wrong.
    frame = 0
    for j, s in enumerate(body):
        parts = s.split()
        if not parts:
            continue
        ln = start + j + 1
        if frame >= n_frames:
            raise _err(path, ln, f"more frame lines than 'Frames: {n_frames}' declares")
        if len(parts) != n_cols:
            raise _err(path, ln, f"frame {frame} has {len(parts)} values, the hierarchy declares {n_cols} channels")
        _floats(parts, path, ln, f"frame {frame}")
        frame += 1
    raise _err(path, start + len(body), f"the file ends after {frame} frames, 'Frames:' says {n_frames}")


def read_bvh(path: str | os.PathLike[str]) -> BvhFile:
    """Read and parse a BVH file (see :func:`parse_bvh`)."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_BVH_BYTES:
        raise DataError(path, None, f"BVH file of {size} bytes is larger than the {MAX_BVH_BYTES}-byte limit")
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        text = path.read_bytes().decode("latin-1")
        if "\x00" in text:
            raise DataError(path, None, f"not a text BVH file (binary data at byte {exc.start})") from None
    return parse_bvh(text, path)


def to_motion(bvh: BvhFile, *, units: str | float = "auto") -> Motion:
    """Build the :class:`Motion` (local rotations/translations per frame) of a parsed BVH file.

    ``units``: ``"auto"`` (detected from the rest pose), a unit name (``m``, ``cm``, ``mm``,
    ``inch``, ``cmu``) or metres per file unit.
    """
    skel = bvh.skeleton
    F, K = bvh.frames.shape[0], skel.num_joints
    starts = bvh.column_offsets
    rotations = np.broadcast_to(np.eye(3), (F, K, 3, 3)).copy()
    translations = np.broadcast_to(skel.offsets, (F, K, 3)).copy()
    groups: dict[str, tuple[list[int], list[list[int]]]] = {}
    pos_joint, pos_axis, pos_col = [], [], []
    for k, chans in enumerate(bvh.channels):
        seq, cols = "", []
        for c, name in enumerate(chans):
            kind, axis = _CHANNELS[name]
            if kind == "rotation":
                seq += "XYZ"[axis]
                cols.append(int(starts[k]) + c)
            else:
                pos_joint.append(k)
                pos_axis.append(axis)
                pos_col.append(int(starts[k]) + c)
        if seq:
            js, cs = groups.setdefault(seq, ([], []))
            js.append(k)
            cs.append(cols)
    for seq, (js, cs) in groups.items():   # one scipy call per distinct rotation order
        rotations[:, js] = euler_matrices(bvh.frames[:, np.asarray(cs)], seq, degrees=True)
    if pos_joint:
        translations[:, pos_joint, pos_axis] = bvh.frames[:, pos_col]
    scale, unit = detect_unit_scale(skel.rest_positions(), skel.path, units)
    orders = sorted(groups)
    return Motion(skel, rotations, translations, bvh.fps, scale, "bvh", skel.path,
                  {"unit": unit, "rotation_orders": orders, "frame_time": bvh.frame_time})


def load_bvh(path: str | os.PathLike[str], *, units: str | float = "auto") -> Motion:
    """Read a BVH file into a :class:`Motion` (see :func:`to_motion` for ``units``)."""
    return to_motion(read_bvh(path), units=units)


def format_bvh(skeleton: Skeleton, channels: Sequence[Sequence[str]], frames: np.ndarray,
               frame_time: float) -> str:
    """BVH text for a skeleton, per-joint channel lists and ``(F, C)`` channel values.

    End sites (``skeleton.end_site``) are written as ``End Site`` blocks; values are written
    with 9 significant digits.
    """
    K = skeleton.num_joints
    frames = np.asarray(frames, dtype=np.float64)
    n_cols = sum(len(c) for c in channels)
    if len(channels) != K or frames.ndim != 2 or frames.shape[1] != n_cols:
        raise DataError(None, "frames", f"expected {K} channel lists and frames (F, {n_cols}), got "
                                        f"{len(channels)} lists and {frames.shape}")
    children: list[list[int]] = [[] for _ in range(K)]
    for k in range(1, K):
        children[int(skeleton.parents[k])].append(k)
    order: list[int] = []
    todo = [0]
    while todo:
        k = todo.pop()
        order.append(k)
        todo.extend(reversed(children[k]))
    if order != list(range(K)):
        raise DataError(None, "skeleton", "joints must be in depth-first order (as read from a BVH or ASF file) "
                                          "so that channel columns follow the hierarchy")
    out = ["HIERARCHY"]

    def emit(k: int, depth: int) -> None:
        ind = "  " * depth
        if skeleton.end_site[k]:
            out.append(f"{ind}End Site")
        else:
            out.append(f"{ind}{'ROOT' if k == 0 else 'JOINT'} {skeleton.names[k]}")
        out.append(f"{ind}{{")
        out.append(f"{ind}  OFFSET " + " ".join(f"{v:.9g}" for v in skeleton.offsets[k]))
        if not skeleton.end_site[k]:
            out.append(f"{ind}  CHANNELS {len(channels[k])} " + " ".join(channels[k]))
        for c in children[k]:
            emit(c, depth + 1)
        out.append(f"{ind}}}")

    emit(0, 0)
    out += ["MOTION", f"Frames: {frames.shape[0]}", f"Frame Time: {frame_time:.9g}"]
    buf = io.StringIO()
    if frames.size:
        np.savetxt(buf, frames, fmt="%.9g", delimiter=" ")
    elif frames.shape[0]:
        buf.write("\n" * frames.shape[0])
    return "\n".join(out) + "\n" + buf.getvalue()


def write_bvh(path: str | os.PathLike[str], skeleton: Skeleton, channels: Sequence[Sequence[str]],
              frames: np.ndarray, frame_time: float) -> None:
    """Write a BVH file atomically (see :func:`format_bvh`)."""
    write_file(path, format_bvh(skeleton, channels, frames, frame_time))
