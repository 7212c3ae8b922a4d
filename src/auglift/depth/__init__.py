"""Depth estimation and the UADD descriptor.

* :mod:`auglift.depth.uadd`: :func:`~auglift.depth.uadd.sample_uadd`, the descriptor sampler
  (exact and fast modes, radius rules, statistics), and
  :class:`~auglift.depth.uadd.DescriptorSpec`, the descriptor options as one object;
* :mod:`auglift.depth.estimators`: depth models behind one interface (Depth Anything V2 through
  ``transformers``, official ``.pth`` checkpoints, the synthetic world's oracle);
* :mod:`auglift.depth.extract`: the batched, resumable, sharded extraction run that writes a
  PoseSet's ``uadd``/``uadd_valid`` fields, and the same sampling for a PoseSet in memory.

Frames are decoded by :mod:`auglift.video`. The optional ``transformers`` is imported on first use.
"""

from auglift.depth.uadd import (
    PAPER_STATS,
    RESEARCH_STATS,
    DescriptorSpec,
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
    "DescriptorSpec",
    "LinearRadius",
    "ScaleAdaptiveRadius",
    "Stats",
    "UaddResult",
    "disk_pattern",
    "sample_uadd",
    "to_map_pixels",
]
