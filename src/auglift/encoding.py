"""Lifter input encodings: which channels a lifter sees per joint and how they are normalised.

A lifter input is ``(..., J, C)`` float32: for every joint ``C`` channels picked by name from

==========  ==============================================================================
channel     value
==========  ==============================================================================
``x, y``    screen-normalised 2D keypoint: ``x' = 2x/w - 1``, ``y' = 2y/w - h/w`` with the
            clip's image width/height ``w, h`` (VideoPose3D/MMPose convention), optionally
            rescaled (``scale_norm``, below)
``c``       detector confidence mapped to ``[-1, 1]``: ``2c - 1``
``d``       depth descriptor centre (``uadd[..., 0]``) relative to a per-frame reference:
            metric depth ``clip(d - d_ref, +-depth_clip)`` metres, ``d_ref`` the root's
            (pelvis) ``d`` (default) or the frame's minimum joint ``d`` (``depth_ref="min"``,
            the research code's choice)
``d_min``   local spread below: ``clip(d_min - d, +-spread_clip)`` metres
``d_max``   local spread above: ``clip(d_max - d, +-spread_clip)`` metres
==========  ==============================================================================

Named channel sets: ``xy`` (2), ``xyc`` (3), ``xycd`` (4) and ``uadd`` (6: x, y, c, d,
d_min, d_max); any other subset is written as a list of names or a comma-separated string
(``"x,y,d"``), in the order given.

**Relative depth** (affine-invariant models, ``depth_kind="relative"``): per frame, the
descriptor values are shifted by the same reference and divided by a spread ``s``, so the
lifter sees scale- and shift-free values; the three channels are then clipped to
``+-relative_clip``. ``relative_norm="spread"``: ``s = mean_j |d_j - mean(d)|`` over the
frame's valid joints (disks of wrists and ankles often read the background, so ``s`` is about
9x the body's own spread and the body's relief shrinks ~10x); ``"torso"``: the same spread over
the valid torso joints only (:data:`TORSO_JOINTS`, whose disks lie on the body; the all-joint
spread when fewer than 3 are valid), which keeps the body's relief at ~1 unit (README,
"Relative depth that keeps the body's relief", has the oracle measurement).

**Scale normalisation** of ``x, y`` (AugLift v4):

* ``"bbox"`` (detection setting): per frame, centroid ``m`` (mean of the joints) and box
  size ``b = (x-range + y-range) / 2`` in screen units; ``p -> s (p - m) + m`` with
  ``s = b_mean / b``, ``b_mean`` the mean box size of the training set (fitted, stored).
* ``"dscale2d"`` (GT-2D setting): ``(x, y) -> (x, y) * d_root / d_ref`` with
  ``d_ref = 4.5`` m; ``d_root`` is the root's descriptor depth ``uadd[..., 0, 0]``
  (``dscale_source="uadd"``, available at inference; needs metric depth) or the ground-truth
  root depth ``kp3d[..., 0, 2]`` (``"kp3d"``).

**Missing values are never passed on as NaN.** A NaN 2D keypoint (missing detection) takes
the centroid of the frame's valid keypoints (screen origin if none) and confidence 0
(channel value -1). A descriptor that is NaN or flagged invalid (``uadd_valid`` False) reads as
"at the reference depth, no spread": ``d = d_min = d_max = 0``; if the root's descriptor is
invalid the reference is the median of the frame's valid ``d`` (all zeros when none is valid).
With ``depth_ref="min"`` the minimum runs over valid joints only.

Encoders are pure functions of the input arrays and a small **state** (:class:`EncoderState`:
the options of :class:`InputOptions` plus fitted statistics, see :func:`fit`; a plain dict of
floats/strings/lists inside a checkpoint) that is stored in checkpoints, so training,
evaluation and inference encode identically. Everything is vectorised over any leading
batch shape, e.g. gathered windows ``(B, T, J, ...)``.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from auglift.errors import ConfigError, DataError, short
from auglift.poseset import PoseSet
from auglift.schema import POSITIVE, Check, Section, option

__all__ = [
    "CHANNELS",
    "CHANNEL_SETS",
    "LATER_OPTIONS",
    "SCALE_NORMS",
    "TORSO_JOINTS",
    "EncoderState",
    "InputOptions",
    "check_compatible",
    "depth_kind_of",
    "encode",
    "encode_arrays",
    "fit",
    "flip_input",
    "flip_pose",
    "gather_inputs",
    "make_state",
    "parse_channels",
    "required_fields",
    "target",
]

STATE_VERSION = 1
CHANNELS: tuple[str, ...] = ("x", "y", "c", "d", "d_min", "d_max")
CHANNEL_SETS: dict[str, tuple[str, ...]] = {
    "xy": ("x", "y"),
    "xyc": ("x", "y", "c"),
    "xycd": ("x", "y", "c", "d"),
    "uadd": ("x", "y", "c", "d", "d_min", "d_max"),
}
_DEPTH_CHANNELS = frozenset({"d", "d_min", "d_max"})
# Options added after the first stored encoder states, with the value that reproduces how those encoded: a
# stored state without the key reads as this value (checkpoints of earlier versions load and encode as before),
# and a state at this value is stored without the key (its stored form does not change).
LATER_OPTIONS: dict[str, Any] = {"relative_norm": "spread"}
# H36M-17 torso joints (pelvis, hips, spine, thorax, shoulders): the body scale of relative_norm="torso"
TORSO_JOINTS = (0, 1, 4, 7, 8, 11, 14)
_EPS = 1e-6
# fit() reads at most this many evenly spaced training frames (the mean box size converges fast).
FIT_MAX_FRAMES = 200_000


# --------------------------------------------------------------------------- options / state
def parse_channels(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Channel names of ``spec``: a set name (``"uadd"``), ``"x,y,d"`` or a list of names."""
    if isinstance(spec, str):
        if spec in CHANNEL_SETS:
            return CHANNEL_SETS[spec]
        names = tuple(s.strip() for s in spec.replace("+", ",").split(",") if s.strip())
    else:
        names = tuple(str(s) for s in spec)
    if not names:
        raise ConfigError(f"input.channels: empty channel list; use one of {', '.join(CHANNEL_SETS)} "
                          f"or names from {', '.join(CHANNELS)}")
    bad = [n for n in names if n not in CHANNELS]
    if bad:
        raise ConfigError(f"input.channels: unknown channel {short(bad[0])}; sets: {', '.join(CHANNEL_SETS)}; "
                          f"channels: {', '.join(CHANNELS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"input.channels: repeated channel in {short(list(names))}")
    return names


SCALE_NORMS = ("none", "bbox", "dscale2d")  # input.scale_norm: none, the training set's mean box, depth-scaled 2D
_CHANNELS = Check(lambda v: bool(parse_channels(v)), "channel names")  # parse_channels raises the precise error


@dataclass(frozen=True)
class InputOptions(Section):
    """The options of an encoder: the ``[input]`` section of a training config."""

    prefix: ClassVar[str] = "input"
    channels: str | tuple[str, ...] = option("uadd", "a set name (xy, xyc, xycd, uadd), a list of channel names "
                                             "or \"x,y,d\"", check=_CHANNELS)
    keypoints: str = option("kp2d", "2D source field: kp2d (detections) or kp2d_gt", choices=("kp2d", "kp2d_gt"))
    depth_ref: str = option("root", "reference joint depth subtracted from d", choices=("root", "min"))
    depth_clip: float = option(2.0, "metres: d - d_ref is clipped to +-depth_clip", check=POSITIVE)
    spread_clip: float = option(1.0, "metres: d_min - d and d_max - d are clipped to +-spread_clip",
                                check=POSITIVE)
    depth_kind: str = option("auto", "metric, relative or auto (read meta['depth_model'])",
                             choices=("auto", "metric", "relative"))
    relative_clip: float = option(3.0, "relative depth: clip of the per-frame normalised values", check=POSITIVE)
    relative_norm: str = option("spread", "relative depth: per-frame scale from the spread of all joints (spread) "
                                "or of the torso joints (torso: keeps the body's relief)", choices=("spread", "torso"))
    scale_norm: str = option("none", "scale normalisation of x, y", choices=SCALE_NORMS)
    d_ref: float = option(4.5, "metres, dscale2d reference depth", check=POSITIVE)
    dscale_source: str = option("uadd", "where dscale2d reads the root depth", choices=("uadd", "kp3d"))
    root: int = option(0, "root joint index (pelvis)")


@dataclass(frozen=True, eq=False)
class EncoderState(InputOptions, Mapping[str, Any]):
    """A fitted encoder: its options with ``channels`` resolved to names, plus the fitted statistics.

    ``bbox_mean``: mean box size of the training set in screen units (``scale_norm="bbox"``);
    ``depth_kind`` is resolved by :func:`fit` (never ``"auto"`` there). Stored in checkpoints as
    its plain dict (:meth:`to_dict`; it also pickles as that dict and reads like it, so
    ``torch.load(weights_only=True)`` returns it and code written against the dict layout works).
    """

    label: str = ""
    bbox_mean: float | None = None
    version: int = STATE_VERSION

    def __post_init__(self) -> None:
        super().__post_init__()
        names = parse_channels(self.channels)
        object.__setattr__(self, "channels", names)
        object.__setattr__(self, "label", next((k for k, v in CHANNEL_SETS.items() if names == v), ",".join(names)))
        for k in ("depth_clip", "spread_clip", "relative_clip", "d_ref"):
            object.__setattr__(self, k, float(getattr(self, k)))

    @classmethod
    def from_options(cls, options: InputOptions | Mapping[str, Any] | None = None, **stats: Any) -> EncoderState:
        """A state from encoder options (an :class:`InputOptions` or a mapping of its keys) plus fitted statistics.

        Unknown option keys or bad values raise :class:`ConfigError` naming ``input.<key>``.
        """
        known = [f.name for f in dataclasses.fields(InputOptions)]
        opts = {k: getattr(options, k) for k in known} if isinstance(options, InputOptions) else dict(options or {})
        for k in opts:
            if k not in known:
                raise ConfigError(f"input.{short(k, quote=False)}: unknown input option; known: {', '.join(known)}")
        return cls(**opts, **stats)

    @classmethod
    def of(cls, state: EncoderState | Mapping[str, Any]) -> EncoderState:
        """``state`` itself, or the state a plain dict (a checkpoint's ``encoder``) describes."""
        if isinstance(state, EncoderState):
            return state
        state = LATER_OPTIONS | dict(state)
        extra = {k: state[k] for k in ("bbox_mean", "version") if k in state}
        return cls.from_options({k: v for k, v in state.items() if k not in ("label", *extra)}, **extra)

    def to_dict(self) -> dict[str, Any]:
        """The plain dict stored in checkpoints (str/float/int/list values)."""
        out = super().to_dict()
        for k, v in LATER_OPTIONS.items():  # at the value that reproduces earlier encoders: not written
            if out.get(k) == v:
                del out[k]
        return {"version": out.pop("version"), "channels": out.pop("channels"), "label": out.pop("label"),
                **out}

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled as its dict (an OrderedDict: a global that torch.load(weights_only=True) allows), so an
        # EncoderState saved anywhere in a checkpoint-like structure loads without its class
        return collections.OrderedDict, (list(self.to_dict().items()),)

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __eq__(self, other: object) -> bool:
        return Mapping.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]


make_state = EncoderState.from_options  # the function form: an encoder state from options plus fitted statistics


def required_fields(state: EncoderState | Mapping[str, Any]) -> tuple[str, ...]:
    """PoseSet fields the encoder reads (``kp3d`` only when dscale2d uses the GT root depth)."""
    state = EncoderState.of(state)
    need = [state.keypoints, "conf"]
    if _uses_depth(state):
        need.append("uadd")
    if state.scale_norm == "dscale2d" and state.dscale_source == "kp3d":
        need.append("kp3d")
    return tuple(need)


def depth_kind_of(ps: PoseSet) -> str | None:
    """``"metric"``/``"relative"`` from ``meta["depth_model"]`` (a dict with ``kind``, or a name), or None.

    A name containing ``"relative"`` or ``"disparity"`` reads as relative, any other name as metric;
    no depth model recorded gives None.
    """
    dm = ps.meta.get("depth_model")
    if dm is None or dm == "":
        return None
    if isinstance(dm, Mapping):
        kind = dm.get("kind")
        if kind in ("metric", "relative"):
            return str(kind)
        dm = dm.get("name", "")
    s = str(dm).lower()
    return "relative" if ("relative" in s or "disparity" in s) else "metric"


def _uses_depth(state: EncoderState) -> bool:
    return bool(_DEPTH_CHANNELS & set(state.channels)) or (
        state.scale_norm == "dscale2d" and state.dscale_source == "uadd")


def _check_fields(ps: PoseSet, state: EncoderState) -> None:
    why = f"needed by input channels {state.label!r}"
    for f in required_fields(state):
        if not ps.has(f):
            if f == "kp3d":
                why = "needed by scale_norm 'dscale2d' with dscale_source 'kp3d'"
            elif f == "uadd" and not (_DEPTH_CHANNELS & set(state.channels)):
                why = "needed by scale_norm 'dscale2d' with dscale_source 'uadd'"
            raise DataError(ps.path, f, f"field is missing from this PoseSet ({why})")


def fit(ps: PoseSet, options: InputOptions | Mapping[str, Any] | None = None, *, rows: np.ndarray | None = None
        ) -> EncoderState:
    """Fit an encoder on training data: resolve options and compute the statistics it needs.

    ``rows``: the training rows ``(M,)`` (default all). Statistics: ``bbox_mean`` (mean box
    size in screen units, for ``scale_norm="bbox"``; computed on at most
    :data:`FIT_MAX_FRAMES` evenly spaced rows) and ``depth_kind`` (``"auto"`` resolved from
    ``meta["depth_model"]``, metric when unknown). Raises :class:`DataError` naming a field the
    chosen input needs but the PoseSet lacks.
    """
    state = make_state(options)
    _check_fields(ps, state)
    if state.depth_kind == "auto":
        kind = (depth_kind_of(ps) or "metric") if _uses_depth(state) else "metric"
        state = dataclasses.replace(state, depth_kind=kind)
    if state.scale_norm == "dscale2d" and state.dscale_source == "uadd" and state.depth_kind != "metric":
        raise ConfigError("input.scale_norm: dscale2d with dscale_source 'uadd' needs metric depth; "
                          "use dscale_source = 'kp3d' or a metric depth model")
    if state.scale_norm == "bbox":
        r = np.arange(len(ps)) if rows is None else np.asarray(rows, dtype=np.int64)
        if r.size == 0:
            raise DataError(ps.path, "rows", "cannot fit the encoder on an empty training set")
        if r.size > FIT_MAX_FRAMES:
            r = r[np.linspace(0, r.size - 1, FIT_MAX_FRAMES).round().astype(np.int64)]
        inp = gather_inputs(ps, r, state, check=False)
        xy, valid = _screen(inp["kp2d"], inp["width"], inp["height"])
        b = _box_size(xy)
        ok = valid.any(-1)
        state = dataclasses.replace(state, bbox_mean=float(b[ok].mean()) if ok.any() else 1.0)
    return state


def check_compatible(state: EncoderState | Mapping[str, Any], ps: PoseSet) -> None:
    """Raise :class:`DataError` if ``ps`` cannot be encoded with ``state`` (missing field, other depth kind).

    A relative (affine-invariant) encoder reads metric depth as well: the shift and scale it removes per
    frame are then simply known; a metric encoder refuses relative depth (its units are unknown).
    """
    state = EncoderState.of(state)
    _check_fields(ps, state)
    if _uses_depth(state):
        kind = depth_kind_of(ps)
        if kind is not None and kind != state.depth_kind and not (kind == "metric" and state.depth_kind == "relative"):
            raise DataError(ps.path, "meta.depth_model",
                            f"this PoseSet holds {kind} depth ({ps.meta.get('depth_model')!r}) but the encoder "
                            f"was fitted on {state.depth_kind} depth")


# --------------------------------------------------------------------------- encoding
def gather_inputs(ps: PoseSet, rows: np.ndarray, state: EncoderState | Mapping[str, Any], *, check: bool = True
                  ) -> dict[str, Any]:
    """Gather the arrays :func:`encode_arrays` needs for ``rows`` (any shape, e.g. ``(B, T)``)."""
    state = EncoderState.of(state)
    if check:
        _check_fields(ps, state)
    rows = np.asarray(rows, dtype=np.int64)
    clip = np.asarray(ps.clip[rows])
    out: dict[str, Any] = {
        "kp2d": np.asarray(getattr(ps, state.keypoints)[rows], dtype=np.float32),
        "conf": np.asarray(ps.conf[rows], dtype=np.float32),
        "width": ps.clips.width[clip].astype(np.float32),
        "height": ps.clips.height[clip].astype(np.float32),
    }
    if "uadd" in required_fields(state):
        out["uadd"] = np.asarray(ps.uadd[rows], dtype=np.float32)
        out["uadd_valid"] = None if ps.uadd_valid is None else np.asarray(ps.uadd_valid[rows])
    if state.scale_norm == "dscale2d" and state.dscale_source == "kp3d":
        out["root_depth"] = np.asarray(ps.kp3d[rows][..., state.root, 2], dtype=np.float32)
    return out


def encode(ps: PoseSet, rows: np.ndarray, state: EncoderState | Mapping[str, Any]) -> np.ndarray:
    """Encoded lifter input for ``rows`` of ``ps``: ``rows.shape + (J, C)`` float32, no NaN."""
    state = EncoderState.of(state)
    return encode_arrays(**gather_inputs(ps, rows, state), state=state)


def _screen(kp2d: np.ndarray, width: np.ndarray, height: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Screen-normalised keypoints with NaN joints filled by the frame centroid, and the valid mask."""
    valid = np.isfinite(kp2d).all(-1)
    w = np.asarray(width, dtype=np.float32)[..., None]
    h = np.asarray(height, dtype=np.float32)[..., None]
    xy = np.empty(kp2d.shape, dtype=np.float32)
    xy[..., 0] = kp2d[..., 0] * (2.0 / w) - 1.0
    xy[..., 1] = kp2d[..., 1] * (2.0 / w) - h / w
    if not valid.all():
        xy = np.where(valid[..., None], xy, 0.0).astype(np.float32)
        n = valid.sum(-1, keepdims=True)
        centroid = xy.sum(-2) / np.maximum(n, 1)
        xy = np.where(valid[..., None], xy, centroid[..., None, :]).astype(np.float32)
    return xy, valid


def _box_size(xy: np.ndarray) -> np.ndarray:
    """``(x-range + y-range) / 2`` per frame over the valid joints (0 for frames with < 2 valid joints).

    ``xy`` must come from :func:`_screen`: missing joints sit at the centroid of the valid ones,
    inside their box, so the range over all joints equals the range over the valid ones.
    """
    return ((xy.max(-2) - xy.min(-2)).sum(-1) * np.float32(0.5)).astype(np.float32)


def _depth_channels(
    uadd: np.ndarray, uadd_valid: np.ndarray | None, state: EncoderState
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Normalised ``(d, d_min, d_max)`` channels ``(..., J)`` each, and the root's depth ``(...)`` (raw units).

    The root's depth falls back to the median valid ``d`` of the frame (0 when none is valid).
    """
    valid = np.isfinite(uadd).all(-1)
    if uadd_valid is not None:
        valid &= np.asarray(uadd_valid, dtype=bool)
    d = np.where(valid, uadd[..., 0], np.nan).astype(np.float32)
    with np.errstate(all="ignore"):
        # median of the valid d per frame: sort pushes NaN to the end
        n = valid.sum(-1)
        srt = np.sort(d, axis=-1)
        k_lo = np.maximum((n - 1) // 2, 0)[..., None]
        k_hi = np.maximum(n // 2, 0)[..., None]
        med = 0.5 * (np.take_along_axis(srt, k_lo, -1) + np.take_along_axis(srt, k_hi, -1))[..., 0]
        med = np.where(n > 0, med, 0.0)
        r = state.root
        root_d = np.where(valid[..., r], d[..., r], med).astype(np.float32)
        ref = (np.where(n > 0, np.where(valid, d, np.inf).min(-1), 0.0).astype(np.float32)
               if state.depth_ref == "min" else root_d)
    dd = np.where(valid, uadd[..., 0] - ref[..., None], 0.0).astype(np.float32)
    lo = np.where(valid, uadd[..., 1] - uadd[..., 0], 0.0).astype(np.float32)
    hi = np.where(valid, uadd[..., 2] - uadd[..., 0], 0.0).astype(np.float32)
    if state.depth_kind == "relative":
        s = _spread(dd, valid)
        if state.relative_norm == "torso" and dd.shape[-1] > max(TORSO_JOINTS):
            torso = valid & np.isin(np.arange(dd.shape[-1]), TORSO_JOINTS)
            s = np.where((torso.sum(-1) >= 3) & (_spread(dd, torso) > _EPS), _spread(dd, torso), s)
        s = np.where(s > _EPS, s, 1.0).astype(np.float32)[..., None]
        c = state.relative_clip
        dd, lo, hi = (np.clip(a / s, -c, c) for a in (dd, lo, hi))
    else:
        dd = np.clip(dd, -state.depth_clip, state.depth_clip)
        lo, hi = (np.clip(a, -state.spread_clip, state.spread_clip) for a in (lo, hi))
    return dd, lo, hi, root_d


def _spread(dd: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(...)`` mean absolute deviation from their mean of the values ``dd (..., J)`` where ``mask``."""
    n = np.maximum(mask.sum(-1), 1)
    mean = np.where(mask, dd, 0.0).sum(-1) / n
    return np.where(mask, np.abs(dd - mean[..., None]), 0.0).sum(-1) / n


def encode_arrays(
    kp2d: np.ndarray,
    conf: np.ndarray,
    width: np.ndarray | float,
    height: np.ndarray | float,
    uadd: np.ndarray | None = None,
    uadd_valid: np.ndarray | None = None,
    root_depth: np.ndarray | None = None,
    *,
    state: EncoderState | Mapping[str, Any],
) -> np.ndarray:
    """Encode raw arrays into the lifter input ``(..., J, C)`` float32 (pure function of its arguments).

    ``kp2d (..., J, 2)`` pixels (NaN = missing), ``conf (..., J)`` in [0, 1], ``width``/``height``
    image size in pixels per frame (``(...)`` or scalars), ``uadd (..., J, 3)`` (d, d_min, d_max)
    metres or relative units, ``uadd_valid (..., J)`` bool, ``root_depth (...)`` metres (dscale2d
    from ground truth). ``C = len(state.channels)``.
    """
    state = EncoderState.of(state)
    kp2d = np.asarray(kp2d, dtype=np.float32)
    lead = kp2d.shape[:-2]
    width = np.broadcast_to(np.asarray(width, dtype=np.float32), lead)
    height = np.broadcast_to(np.asarray(height, dtype=np.float32), lead)
    names = state.channels
    xy, valid2d = _screen(kp2d, width, height)
    depth = None
    if _uses_depth(state):
        if uadd is None:
            raise DataError(None, "uadd", f"the encoder ({state.label!r}) needs depth descriptors")
        depth = _depth_channels(np.asarray(uadd, dtype=np.float32), uadd_valid, state)
    if state.scale_norm == "bbox":
        n = valid2d.sum(-1)
        m = np.where(valid2d[..., None], xy, 0.0).sum(-2) / np.maximum(n, 1)[..., None]
        b = _box_size(xy)
        s = np.where(b > _EPS, np.float32(state.bbox_mean) / np.maximum(b, _EPS), 1.0).astype(np.float32)
        xy = (s[..., None, None] * (xy - m[..., None, :]) + m[..., None, :]).astype(np.float32)
    elif state.scale_norm == "dscale2d":
        if state.dscale_source == "kp3d":
            if root_depth is None:
                raise DataError(None, "kp3d", "dscale2d with dscale_source 'kp3d' needs the ground-truth root depth")
            zr = np.asarray(root_depth, dtype=np.float32)
            zr = np.where(np.isfinite(zr) & (zr > 0), zr, state.d_ref)
        else:
            assert depth is not None
            zr = np.where(depth[3] > 0, depth[3], state.d_ref)
        xy = (xy * (zr / np.float32(state.d_ref))[..., None, None]).astype(np.float32)
    cols = {"x": xy[..., 0], "y": xy[..., 1]}  # channel name -> its values (..., J)
    if "c" in names:
        c = np.asarray(conf, dtype=np.float32)
        # a confidence outside [0, 1] is clipped and a non-finite one counts as 0 (as in the UADD radius)
        c = np.where(valid2d & np.isfinite(c), np.clip(c, 0.0, 1.0), 0.0)
        cols["c"] = 2.0 * c - 1.0
    if depth is not None:
        cols |= dict(zip(("d", "d_min", "d_max"), depth))
    return np.stack([cols[name] for name in names], axis=-1, dtype=np.float32)


def target(kp3d: np.ndarray, root: int = 0) -> np.ndarray:
    """Training/evaluation target: root-relative 3D joints ``(..., J, 3)`` metres, camera frame, float32."""
    kp3d = np.asarray(kp3d, dtype=np.float32)
    return kp3d - kp3d[..., root : root + 1, :]


# --------------------------------------------------------------------------- flips (torch)
def flip_input(x: Any, perm: Any, channels: Sequence[str], *, center: str = "root", root: int = 0) -> Any:
    """Mirror encoded inputs ``(..., J, C)`` (torch tensor) left/right.

    Joints are permuted with the joint set's ``flip_permutation``; channel ``x`` is mirrored
    around the root joint's ``x`` of the same frame (``center="root"``) or the image centre
    (``"image"``: ``x -> -x``); every other channel is a per-joint scalar and only moves with
    its joint. Applying it twice is the identity.
    """
    out = x[..., perm, :].clone()
    if "x" in channels:
        i = list(channels).index("x")
        if center == "root":
            c = x[..., root : root + 1, i]
            out[..., i] = 2 * c - out[..., i]
        elif center == "image":
            out[..., i] = -out[..., i]
        else:
            raise ConfigError(f"augment.flip_center: expected 'root' or 'image', got {short(center)}")
    return out


def flip_pose(y: Any, perm: Any) -> Any:
    """Mirror root-relative 3D poses ``(..., J, 3)`` (torch tensor): ``X -> -X``, left/right joints swapped."""
    out = y[..., perm, :].clone()
    out[..., 0] = -out[..., 0]
    return out
