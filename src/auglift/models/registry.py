"""The lifter registry: name -> ``"module:callable"`` building the model; modules are imported on first use.

A lifter's module is imported when the lifter is first built, so ``import auglift.models`` stays
light and a lifter outside auglift joins with :func:`register` (``"package.module:callable"``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

__all__ = ["MODELS", "build", "register"]

MODELS: dict[str, str] = {
    "simple_baseline": "auglift.models.simple_baseline:SimpleBaseline",
    "tcn": "auglift.models.tcn:TCN",
    "poseformer": "auglift.models.poseformer:PoseFormer",
    "motionbert": "auglift.models.motionbert:MotionBERT",
}


def register(name: str, target: str) -> None:
    """Register a lifter builder under ``name`` (``"package.module:callable"``)."""
    MODELS[name] = target


def _resolve(target: str) -> Callable[..., nn.Module]:
    mod, _, attr = target.partition(":")
    return getattr(importlib.import_module(mod), attr)


def build(name: str, in_channels: int, num_joints: int = 17, **config: Any) -> nn.Module:
    """Build lifter ``name`` taking ``in_channels`` values per joint.

    Raises ``KeyError`` listing the known names for an unknown lifter and ``TypeError`` for
    an unknown configuration key.
    """
    if name not in MODELS:
        raise KeyError(f"unknown lifter {name!r}; known: {', '.join(sorted(MODELS))}")
    return _resolve(MODELS[name])(in_channels=in_channels, num_joints=num_joints, **config)
