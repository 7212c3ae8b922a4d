"""The embedded synthetic world: procedural people, cameras, depth maps and 2D detections.

Public API (stable; other parts of auglift call these):

* :func:`generate` ``(domain, frames, seed, **options) -> PoseSet`` -- a procedural PoseSet
  (H36M-17; ``kp3d`` absolute camera-frame metres; ``kp2d`` simulated detections px;
  ``conf``; ``kp2d_gt``; ``visible``; ``kp2d_valid``; clip table with intrinsics, image
  size, subject, action, camera, split by subject, fps and a ``"synthetic:{...}"`` source);
  ``depth_quality="ideal" | "default" | "poor" | severity`` sets the depth model's quality
  (:data:`DEPTH_QUALITY`; stored per clip and in ``meta["extra"]["synthetic"]["depth_quality"]``);
  ``noise2d=scale`` in [0, 5] scales the 2D detector's noise (1 = calibrated; stored in
  ``meta["extra"]["synthetic"]["noise2d"]``).
* :func:`procedural_clips` ``(domain, frames, seed) -> list[MotionClip]`` -- the procedural motion
  alone (world frame), e.g. to mix with other motion before :func:`film`.
* :func:`render_depth` ``(ps, rows, *, size=None, flavour="metric", depth_quality=None,
  body_out=None) -> (B, h, w) float32`` -- z-buffered depth maps of any rows, covering the whole
  image (default 256 px on the long side); ``flavour`` ``"true"`` (exact, metres), ``"metric"``
  (monocular-depth error model, metres) or ``"relative"`` (affine-invariant disparity);
  ``depth_quality`` re-renders at another quality (same random draws); ``body_out`` receives the
  body's pixels. Map pixel centres follow ``u_map = (u + 0.5) * w / width - 0.5``.
* :func:`film` ``(domain, motion_clips, seed) -> PoseSet`` -- the motion-source hook: film
  world-frame :class:`MotionClip` trajectories ``(T, 17, 3)`` metres (z up, floor ``z = 0``)
  with a domain's cameras, depth-error model and detector.
* :data:`DOMAINS` (``lab``, ``fitness``, ``outdoor``) and :func:`calibration` (all values).
* :func:`preview_grid` -- PNG grid of depth maps with 2D skeletons and occluded joints.
"""

from auglift.datasets.synthetic.depth_error import DEPTH_QUALITY, depth_severity
from auglift.datasets.synthetic.domains import DOMAINS, Domain, calibration, get_domain
from auglift.datasets.synthetic.motion import MotionClip, procedural_clip
from auglift.datasets.synthetic.preview import preview_grid
from auglift.datasets.synthetic.render import map_intrinsics, map_size
from auglift.datasets.synthetic.world import (
    FLAVOURS,
    decode_source,
    default_size,
    film,
    generate,
    load_depth_maps,
    procedural_clips,
    render_depth,
    save_depth_maps,
)

__all__ = [
    "DEPTH_QUALITY",
    "DOMAINS",
    "FLAVOURS",
    "Domain",
    "MotionClip",
    "calibration",
    "decode_source",
    "default_size",
    "depth_severity",
    "film",
    "generate",
    "get_domain",
    "load_depth_maps",
    "map_intrinsics",
    "map_size",
    "preview_grid",
    "procedural_clip",
    "procedural_clips",
    "render_depth",
    "save_depth_maps",
]
