"""The lifter registry: name -> ``"module:callable"`` building the model; modules are imported on first use.

A lifter's module is imported when the lifter is first built, so ``import auglift.models`` stays
light and a lifter outside auglift joins with :func:`register` (``"package.module:callable"``).
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import math
import typing
from collections.abc import Callable
from typing import Annotated, Any

from torch import nn

from auglift.errors import ConfigError, short

__all__ = ["MODELS", "NonNegativeInt", "build", "check_kwargs", "register"]

# a lifter parameter annotated so accepts 0 as well (an int parameter otherwise must be >= 1 unless its default is 0)
_NON_NEGATIVE = "non-negative"
NonNegativeInt = Annotated[int, _NON_NEGATIVE]

MODELS: dict[str, str] = {
    "simple_baseline": "auglift.models.simple_baseline:SimpleBaseline",
    "tcn": "auglift.models.tcn:TCN",
    "poseformer": "auglift.models.poseformer:PoseFormer",
    "motionbert": "auglift.models.motionbert:MotionBERT",
}


def register(name: str, target: str) -> None:
    """Register a lifter builder under ``name`` (``"package.module:callable"``)."""
    MODELS[name] = target


def build(name: str, in_channels: int, num_joints: int = 17, **config: Any) -> nn.Module:
    """Build lifter ``name`` taking ``in_channels`` values per joint.

    Raises ``KeyError`` listing the known names for an unknown lifter, ``TypeError`` for
    an unknown configuration key and :class:`~auglift.errors.ConfigError` naming
    ``model.kwargs.<key>`` for a value of the wrong kind (:func:`check_kwargs`).
    """
    if name not in MODELS:
        raise KeyError(f"unknown lifter {name!r}; known: {', '.join(sorted(MODELS))}")
    mod, _, attr = MODELS[name].partition(":")
    builder = getattr(importlib.import_module(mod), attr)
    check_kwargs(builder, config)
    return builder(in_channels=in_channels, num_joints=num_joints, **config)


def check_kwargs(builder: Callable[..., nn.Module], config: dict[str, Any]) -> None:
    """Check ``config`` against the annotations of ``builder``'s parameters: ``int`` a positive integer
    (``>= 0`` where the default is 0 or the annotation is :data:`NonNegativeInt`), ``float`` a finite number
    ``>= 0``, ``bool`` a boolean, a sequence of ints a list of positive integers; ``None`` where the annotation
    allows it. Other parameters are left to the builder."""
    try:
        hints = typing.get_type_hints(builder.__init__ if isinstance(builder, type) else builder, include_extras=True)
        params = inspect.signature(builder).parameters
    except (NameError, TypeError, ValueError):  # an outside lifter with unresolvable annotations
        return
    for key, value in config.items():
        if key not in hints or key not in params:
            continue
        args = set(typing.get_args(hints[key])) or {hints[key]}
        if value is None and type(None) in args:
            continue
        expected = _kind_error(args, value, params[key].default)
        if expected:
            raise ConfigError(f"model.kwargs.{key}: expected {expected}, got {short(value)}")


def _kind_error(args: set[Any], value: Any, default: Any) -> str:
    """What ``value`` should have been for a parameter annotated with the union ``args`` ('' when it fits)."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    low = 0 if (default == 0 and not isinstance(default, bool)) or _NON_NEGATIVE in args else 1
    if int in args and float not in args:
        return "" if is_int and value >= low else f"an integer >= {low}"
    if float in args:
        return "" if (is_int or isinstance(value, float)) and math.isfinite(value) and value >= 0 else "a number >= 0"
    if bool in args:
        return "" if isinstance(value, bool) else "true or false"
    seq = [a for a in args if typing.get_origin(a) in (list, tuple, collections.abc.Sequence)]
    if seq and typing.get_args(seq[0])[:1] == (int,):
        ok = isinstance(value, list | tuple) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                                                     for v in value)
        return "" if ok else "a list of positive integers"
    return ""
