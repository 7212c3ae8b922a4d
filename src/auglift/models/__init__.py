"""2D-to-3D lifters with one interface, for any number of input channels per joint.

Every lifter is an ``nn.Module`` built by :func:`build` and maps an input window
``x (B, T, J, C_in)`` (normalised 2D + optional confidence/depth channels, see
:mod:`auglift.encoding`) to root-relative 3D joints ``(B, T_out, J, 3)`` in metres:

* ``T_out == 1`` for many-to-one lifters (the target is the window's centre frame, or
  its last frame when causal), ``T_out == T`` for many-to-many ones (MotionBERT);
* ``model.receptive_field`` is the window length ``T`` the model expects (1 for
  single-frame models), ``model.many_to_many`` and ``model.causal`` describe the target.

Only the input layer depends on ``C_in``; with the original channel count each model has the
published architecture, and :func:`load_official` loads the original projects' checkpoint
files (VideoPose3D ``.bin``, PoseFormer ``.bin``/``.pth``, MotionBERT ``.bin``): parameter
names are the originals', so a checkpoint needs no more than its container unwrapped.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from torch import nn

__all__ = ["MODELS", "build", "load_official", "register", "set_bn_momentum"]

# name -> "module:function" building the model; modules are imported on first use.
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


def load_official(name: str, path: str | os.PathLike[str], **config: Any) -> nn.Module:
    """Build lifter ``name`` from an original project's checkpoint file, in eval mode.

    See :func:`auglift.models.official.load_official`.
    """
    from auglift.models.official import load_official as _load

    return _load(name, path, **config)


def set_bn_momentum(model: nn.Module, momentum: float) -> None:
    """Set the momentum of every BatchNorm layer of ``model`` (VideoPose3D decays it 0.1 -> 0.001)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum
