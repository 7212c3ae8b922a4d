"""Depth estimation and the UADD descriptor.

* :mod:`auglift.depth.uadd`: :func:`~auglift.depth.uadd.sample_uadd`, the descriptor sampler
  (exact and fast modes, radius rules, statistics);
* :mod:`auglift.depth.estimators`: depth models behind one interface (Depth Anything V2 through
  ``transformers``, official ``.pth`` checkpoints, the synthetic world's oracle);
* :mod:`auglift.depth.frames`: decoding a clip's frames (video files, image patterns);
* :mod:`auglift.depth.extract`: the batched, resumable, sharded extraction run that writes a
  PoseSet's ``uadd``/``uadd_valid`` fields.

Heavy dependencies (``transformers``, OpenCV) are imported on first use.
"""

from auglift.depth.uadd import (
    PAPER_STATS,
    RESEARCH_STATS,
    LinearRadius,
    ScaleAdaptiveRadius,
    Stats,
    UaddResult,
    disk_pattern,
    sample_uadd,
    to_map_pixels,
)

__all__ = [
    "PAPER_STATS",
    "RESEARCH_STATS",
    "LinearRadius",
    "ScaleAdaptiveRadius",
    "Stats",
    "UaddResult",
    "disk_pattern",
    "sample_uadd",
    "to_map_pixels",
]
