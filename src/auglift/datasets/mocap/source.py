"""Motion capture as a motion source of the embedded synthetic world.

:func:`motion_clips` turns BVH/AMC files into the world's
:class:`~auglift.datasets.synthetic.motion.MotionClip` (H36M-17 world trajectories, z up,
floor ``z = 0``, metres) and :func:`film_motion` films them with a domain's cameras,
depth-error model and detection noise through :func:`auglift.datasets.synthetic.world.film`,
exactly as procedural motion is filmed::

    ps = film_motion("outdoor", "cmu/", seed=0, fps=30)     # a PoseSet, like generate()

Subjects are named ``mocap:<id>``: CMU's ``SS_TT.amc``/``SS_TT.bvh`` give ``mocap:SS`` (one
subject per CMU subject), any other file its stem; the action is the file stem. The domain
decides the split from the subject (mocap subjects are not among a domain's test subjects,
so they are ``train``) unless ``split=`` sets it for every clip.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from auglift.datasets.mocap.retarget import MocapClip, find_motion_files, load_motion
from auglift.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from auglift.datasets.synthetic.motion import MotionClip
    from auglift.poseset import PoseSet

__all__ = ["film_motion", "motion_clips", "subject_of", "to_motion_clip"]

_CMU_TRIAL = re.compile(r"^(\d+)_(\d+)$")


def subject_of(path: str | os.PathLike[str]) -> str:
    """Subject id of a motion file: ``mocap:SS`` for CMU's ``SS_TT`` names, else ``mocap:<stem>``."""
    stem = Path(path).stem
    m = _CMU_TRIAL.match(stem)
    return f"mocap:{m.group(1)}" if m else f"mocap:{stem}"


def to_motion_clip(clip: MocapClip) -> MotionClip:
    """The world's :class:`~auglift.datasets.synthetic.motion.MotionClip` of a retargeted motion
    (its body volume is fitted to the joints when filmed)."""
    from auglift.datasets.synthetic.motion import MotionClip

    return MotionClip(joints=clip.kp3d, fps=clip.fps, subject=subject_of(clip.path or clip.name), action=clip.name)


def motion_clips(path: str | os.PathLike[str], *, progress: bool = False, **load_kwargs: Any
                 ) -> tuple[list[MotionClip], list[MocapClip]]:
    """Load every motion file at ``path`` (a file or a directory) as world motion clips.

    ``load_kwargs`` go to :func:`~auglift.datasets.mocap.retarget.load_motion` (``fps``,
    ``mapping``, ``units``, ``up``, ``height``, ``asf``, ``amc_fps``). Returns the world's
    clips and the retargeted :class:`MocapClip` they came from.
    """
    files = find_motion_files(path)
    if progress and len(files) > 1:
        from tqdm import tqdm

        files = tqdm(files, desc="motion capture", unit="file")
    mocap = []
    for f in files:
        c = load_motion(f, **load_kwargs)
        if c.num_frames < 1:
            continue
        mocap.append(c)
    return [to_motion_clip(c) for c in mocap], mocap


def film_motion(domain: str, path: str | os.PathLike[str], seed: int = 0, *, split: str | None = None,
                progress: bool = False, **load_kwargs: Any) -> PoseSet:
    """Film the motion files at ``path`` in the synthetic world's ``domain``.

    Args:
        domain: a synthetic-world domain (``lab``, ``fitness``, ``outdoor``).
        path: a ``.bvh``/``.amc`` file or a directory of them.
        seed: seeds cameras, scenes, depth errors and detection noise.
        split: ``"train"``/``"test"`` for every clip, or ``None`` (the domain decides: train).
        progress: progress bars.
        load_kwargs: reading and retargeting options (:func:`motion_clips`).

    Returns:
        A PoseSet as :func:`auglift.datasets.synthetic.generate` writes (kp3d camera frame,
        detections, visibility, a re-renderable ``synthetic:`` source per clip), with
        ``meta["extra"]["mocap"]`` listing the files, their skeleton tables and normalisation.
    """
    from auglift.datasets.synthetic.world import film
    from auglift.poseset import ClipTable

    if split not in (None, "train", "test"):
        raise ConfigError(f"split must be train, test or None; got {split!r}")
    clips, mocap = motion_clips(path, progress=progress, **load_kwargs)
    if not clips:
        raise ConfigError(f"{path}: the motion files hold no frames")
    ps = film(domain, clips, seed, progress=progress, generator="mocap")
    if split is not None:
        ps.clips = ClipTable(dict(ps.clips.columns, split=np.full(len(ps.clips), split)))
    extra = dict(ps.meta.get("extra") or {})
    extra["mocap"] = [{"file": c.path, "subject": mc.subject, "action": mc.action, "skeleton": c.skeleton,
                       "frames": c.num_frames, "fps": c.fps, "height_m": round(c.height, 4),
                       **{k: c.info[k] for k in ("unit", "up_axis", "source_fps", "height_scale")}}
                      for c, mc in zip(mocap, clips)]
    ps.meta = dict(ps.meta, extra=extra)
    return ps
