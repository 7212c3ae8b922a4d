"""Motion capture as a motion source of the embedded synthetic world.

:func:`motion_clips` turns BVH/AMC files into the world's
:class:`~auglift.datasets.synthetic.motion.MotionClip` (H36M-17 world trajectories, z up,
floor ``z = 0``, metres) and :func:`film_motion` films them with a domain's cameras,
depth-error model and detection noise through :func:`auglift.datasets.synthetic.world.film`,
exactly as procedural motion is filmed::

    ps = film_motion("outdoor", "cmu/", seed=0, fps=30)     # a PoseSet, like generate()
    ps = generate_mixed("lab", 20000, seed=0, motion="cmu/", ratio=0.3)   # 30% of the rows from the files

:func:`generate_mixed` mixes the files with the procedural activities by a share of the rows:
the files are cut into sequences of the domain's lengths (reused, with new cameras and error
draws, when the library is shorter than its share).

Subjects are named ``mocap:<id>``: CMU's ``SS_TT.amc``/``SS_TT.bvh`` give ``mocap:SS`` (one
subject per CMU subject), any other file its stem; the action is the file stem. The domain
decides the split from the subject (mocap subjects are not among a domain's test subjects,
so they are ``train``) unless ``split=`` sets it for every clip.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from auglift.datasets.mocap.retarget import MocapClip, find_motion_files, load_motion
from auglift.datasets.synthetic.domains import get_domain
from auglift.datasets.synthetic.motion import MotionClip
from auglift.datasets.synthetic.world import film, procedural_clips
from auglift.errors import ConfigError
from auglift.poseset import ClipTable, PoseSet

__all__ = ["film_motion", "generate_mixed", "motion_clips", "subject_of", "to_motion_clip"]

_CMU_TRIAL = re.compile(r"^(\d+)_(\d+)$")


def subject_of(path: str | os.PathLike[str]) -> str:
    """Subject id of a motion file: ``mocap:SS`` for CMU's ``SS_TT`` names, else ``mocap:<stem>``."""
    stem = Path(path).stem
    m = _CMU_TRIAL.match(stem)
    return f"mocap:{m.group(1)}" if m else f"mocap:{stem}"


def to_motion_clip(clip: MocapClip) -> MotionClip:
    """The world's :class:`~auglift.datasets.synthetic.motion.MotionClip` of a retargeted motion
    (its body volume is fitted to the joints when filmed)."""
    return MotionClip(joints=clip.kp3d, fps=clip.fps, subject=subject_of(clip.path or clip.name), action=clip.name)


def motion_clips(path: str | os.PathLike[str], *, progress: bool = False, **load_kwargs: Any
                 ) -> tuple[list[MotionClip], list[MocapClip]]:
    """Load every motion file at ``path`` (a file or a directory) as world motion clips.

    ``load_kwargs`` go to :func:`~auglift.datasets.mocap.retarget.load_motion` (``fps``,
    ``mapping``, ``units``, ``up``, ``height``, ``asf``, ``amc_fps``). Returns the world's
    clips and the retargeted :class:`MocapClip` they came from.
    """
    files = find_motion_files(path)
    files = tqdm(files, desc="motion capture", unit="file", disable=not (progress and len(files) > 1))
    mocap = [c for c in (load_motion(f, **load_kwargs) for f in files) if c.num_frames >= 1]
    return [to_motion_clip(c) for c in mocap], mocap


def film_motion(domain: str, path: str | os.PathLike[str], seed: int = 0, *, split: str | None = None,
                depth_quality: str | float = "default", noise2d: float = 1.0, progress: bool = False,
                **load_kwargs: Any) -> PoseSet:
    """Film the motion files at ``path`` in the synthetic world's ``domain``.

    Args:
        domain: a synthetic-world domain (``lab``, ``fitness``, ``outdoor``).
        path: a ``.bvh``/``.amc`` file or a directory of them.
        seed: seeds cameras, scenes, depth errors and detection noise.
        split: ``"train"``/``"test"`` for every clip, or ``None`` (the domain decides: train).
        depth_quality: the depth model's quality (``ideal``, ``default``, ``poor`` or a severity).
        noise2d: the 2D detector's noise scale in [0, 5] (1 = calibrated).
        progress: progress bars.
        load_kwargs: reading and retargeting options (:func:`motion_clips`).

    Returns:
        A PoseSet as :func:`auglift.datasets.synthetic.generate` writes (kp3d camera frame,
        detections, visibility, a re-renderable ``synthetic:`` source per clip), with
        ``meta["extra"]["mocap"]`` listing the files, their skeleton tables and normalisation.
    """
    _check_split(split)
    clips, mocap = motion_clips(path, progress=progress, **load_kwargs)
    if not clips:
        raise ConfigError(f"{path}: the motion files hold no frames")
    ps = film(domain, clips, seed, depth_quality=depth_quality, noise2d=noise2d, progress=progress,
              generator="mocap")
    return _with_mocap_meta(_set_split(ps, split, np.ones(len(ps.clips), bool)), mocap, clips)


def generate_mixed(domain: str, frames: int, seed: int = 0, *, motion: str | os.PathLike[str], ratio: float,
                   actions: list[str] | None = None, seq_seconds: tuple[float, float] | None = None,
                   split: str | None = None, depth_quality: str | float = "default", noise2d: float = 1.0,
                   progress: bool = False, **load_kwargs: Any) -> PoseSet:
    """``frames`` rows of ``domain``: a share ``ratio`` from the motion files at ``motion``, the rest
    procedural (:func:`~auglift.datasets.synthetic.generate`'s activities).

    The files are cut into sequences of ``seq_seconds`` (default the domain's) at random starts,
    cycling through the files in a random order (a library shorter than its share is reused,
    filmed with other cameras and error draws). ``ratio = 0`` gives exactly ``generate``'s arrays,
    ``ratio = 1`` motion capture only. ``split`` applies to the motion-capture clips;
    ``load_kwargs`` are the reading options (:func:`motion_clips`; ``fps`` defaults to the domain's).
    ``meta["extra"]["synthetic"]["motion_ratio"]`` records the share of rows from the files.
    """
    if not 0.0 <= float(ratio) <= 1.0:
        raise ConfigError(f"motion ratio must lie in [0, 1] (the share of frames from motion files), got {ratio}")
    if frames < 1:
        raise ConfigError(f"synthetic: frames must be >= 1, got {frames}")
    _check_split(split)
    dom = get_domain(domain)
    views = dom.rig.views
    own_rows = round(float(ratio) * frames)
    proc = procedural_clips(domain, -(-(frames - own_rows) // views), seed, actions=actions,
                            seq_seconds=seq_seconds) if frames - own_rows > 0 else []
    mocap: list[MocapClip] = []
    segments: list[MotionClip] = []
    if own_rows:
        clips, mocap = motion_clips(motion, progress=progress, **({"fps": dom.fps} | load_kwargs))
        if not clips:
            raise ConfigError(f"{motion}: the motion files hold no frames")
        lo, hi = seq_seconds or dom.seq_seconds
        segments = _segments(clips, -(-own_rows // views), (lo, hi), np.random.default_rng([seed, 0x3B1]))
    ps = film(domain, proc + segments, seed, depth_quality=depth_quality, noise2d=noise2d, progress=progress,
              generator="procedural+mocap")
    ps = _set_split(ps, split, np.arange(len(ps.clips)) >= len(proc) * views)
    if len(ps) > frames:
        ps = ps.select(rows=np.arange(frames))
    ps = _with_mocap_meta(ps, mocap, [to_motion_clip(c) for c in mocap])
    synthetic = dict(ps.meta["extra"]["synthetic"], motion_ratio=float(
        np.isin(ps.clip, np.arange(len(proc) * views, len(ps.clips))).mean()))
    ps.meta = dict(ps.meta, extra=dict(ps.meta["extra"], synthetic=synthetic))
    return ps


def _segments(clips: list[MotionClip], need: int, seconds: tuple[float, float], rng: np.random.Generator
              ) -> list[MotionClip]:
    """Pieces of ``clips`` totalling ``need`` frames: sequences of ``seconds`` at random starts."""
    out: list[MotionClip] = []
    total = 0
    order = rng.permutation(len(clips))
    while total < need:
        c = clips[int(order[len(out) % len(clips)])]
        n = min(c.frames, max(2, round(rng.uniform(*seconds) * c.fps)), need - total)
        start = int(rng.integers(0, c.frames - n + 1))
        out.append(MotionClip(c.joints[start: start + n], c.fps, c.subject, c.action))
        total += n
    return out


def _check_split(split: str | None) -> None:
    if split not in (None, "train", "test"):
        raise ConfigError(f"split must be train, test or None; got {split!r}")


def _set_split(ps: PoseSet, split: str | None, which: np.ndarray) -> PoseSet:
    """``ps`` with the clips ``which (C,)`` bool in ``split`` (``None``: unchanged)."""
    if split is not None:
        ps.clips = ClipTable(dict(ps.clips.columns, split=np.where(which, split, ps.clips.split)))
    return ps


def _with_mocap_meta(ps: PoseSet, mocap: list[MocapClip], clips: list[MotionClip]) -> PoseSet:
    extra = dict(ps.meta.get("extra") or {})
    extra["mocap"] = [{"file": c.path, "subject": mc.subject, "action": mc.action, "skeleton": c.skeleton,
                       "frames": c.num_frames, "fps": c.fps, "height_m": round(c.height, 4),
                       **{k: c.info[k] for k in ("unit", "up_axis", "source_fps", "height_scale")}}
                      for c, mc in zip(mocap, clips)]
    ps.meta = dict(ps.meta, extra=extra)
    return ps
