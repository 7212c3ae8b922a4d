"""Load the original projects' checkpoint files into our lifters.

Our modules keep the original parameter names, so the mapping is thin:

* **VideoPose3D** (``tcn``): ``.bin`` written by ``run.py``: a dict with ``model_pos`` (the
  ``TemporalModel``/``TemporalModelOptimized1f`` state dict, same keys), plus ``epoch``, ``lr``,
  ``optimizer``, NumPy ``random_state`` and possibly ``model_traj`` (ignored). Checkpoints from
  PyTorch 0.4 may lack BatchNorm ``num_batches_tracked`` buffers; they are filled with 0.
* **PoseFormer** (``poseformer``): ``.bin``/``.pth`` from ``run_poseformer.py``: ``model_pos``
  saved from ``nn.DataParallel``, so every key starts with ``module.``.
* **MotionBERT** (``motionbert``): ``.bin`` from ``train.py``: ``model_pos`` (or ``model``)
  with ``module.`` prefixes; a backbone nested as ``backbone.*`` (action/mesh models) is
  taken out of its wrapper.

Files are read with ``torch.load(map_location="cpu", weights_only=True)`` only. The extra
globals admitted are NumPy's array/scalar/dtype reconstructors (the original training
scripts store NumPy random states and losses next to the weights); anything else a pickle
asks for (code, arbitrary classes) makes the load fail with a :class:`DataError`.

The architecture is read from the tensor shapes (input channels, joints, widths, depth,
frames, MLP ratio; the number of heads, which shapes do not show, defaults to 8); keyword
``config`` overrides or pins values, and every key and shape is checked before loading, so
a mismatch names the file, the key, and what was expected.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from auglift.errors import ConfigError, DataError
from auglift.models.registry import build
from auglift.safe_pickle import _ALLOWED, _numpy_global, describe_load_error

__all__ = ["INPUT_LAYER", "infer_config", "load_official", "read_checkpoint"]

# lifter -> the parameter that reads the input (the only one whose shape depends on C_in)
INPUT_LAYER: dict[str, str] = {
    "tcn": "expand_conv.weight",
    "poseformer": "Spatial_patch_to_embedding.weight",
    "motionbert": "joints_embed.weight",
}
_CONTAINER_KEYS = ("model_pos", "model", "state_dict")


def _numpy_globals() -> list[tuple[Any, str]]:
    """NumPy reconstructors found in the original training checkpoints, under their NumPy 1 and 2 names: the array,
    dtype and scalar ones the restricted unpickler admits (:mod:`auglift.safe_pickle`), plus the dtype classes."""
    out = [(_numpy_global(n), f"{m}.{n}") for m, n in sorted(_ALLOWED) if m.startswith("numpy")
           and n != "_frombuffer"]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:  # NumPy >= 1.25 may pickle dtypes by their class
        out += [(getattr(dtypes, n), f"numpy.dtypes.{n}") for n in dir(dtypes) if n.endswith("DType")
                and n not in ("ObjectDType", "StringDType")]
    return out


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a checkpoint file and return the model's state dict (``module.`` prefixes removed).

    Accepts a dict holding ``model_pos``, ``model`` or ``state_dict`` (first found), or a bare
    state dict. Raises :class:`DataError` for a missing, truncated, foreign or hostile file.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(p, None, "checkpoint file not found" if not p.exists() else "not a regular file")
    try:
        with torch.serialization.safe_globals(_numpy_globals()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about foreign pickles before refusing them
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f"it needs {m.group(1)}" if m else describe_load_error(e)
        raise DataError(p, None, f"refused to unpickle ({what}); only PyTorch checkpoints that load with "
                                 "weights_only=True (tensors, numbers, NumPy arrays) are supported") from None
    except Exception as e:  # garbage bytes raise IndexError, KeyError, ... from the legacy unpickler
        raise DataError(p, None, f"not a readable PyTorch checkpoint ({describe_load_error(e)})") from None
    if not isinstance(obj, dict):
        raise DataError(p, None, f"expected a dict with a state dict under 'model_pos', got {type(obj).__name__}")
    state: Any = next((obj[k] for k in _CONTAINER_KEYS if isinstance(obj.get(k), dict)), obj)  # or obj itself
    if state is obj and not (obj and all(isinstance(v, torch.Tensor) for v in obj.values())):
        raise DataError(p, None, "expected a state dict under 'model_pos', 'model' or 'state_dict', "
                                 f"found keys {sorted(map(str, obj))[:8]}")
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise DataError(p, str(k), f"expected a tensor, got {type(v).__name__}")
    return {re.sub(r"^(module\.)+", "", str(k)): v for k, v in state.items()}


def _count(state: dict[str, torch.Tensor], prefix: str) -> int:
    idx = {int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"\.(\d+)\.", k))}
    return max(idx) + 1 if idx else 0


def _shape(state: dict[str, torch.Tensor], key: str, dims: int) -> tuple[int, ...] | None:
    v = state.get(key)
    return tuple(v.shape) if v is not None and v.dim() == dims else None


# the transformers' state-dict names: joint embedding, spatial and temporal position embeddings (with the
# latter's dimensions), the first block's first MLP layer, the block list
_TRANSFORMER_KEYS = {
    "poseformer": ("Spatial_patch_to_embedding.weight", "Spatial_pos_embed", "Temporal_pos_embed", 3,
                   "blocks.0.mlp.fc1.weight", "Spatial_blocks"),
    "motionbert": ("joints_embed.weight", "pos_embed", "temp_embed", 4, "blocks_st.0.mlp_s.fc1.weight", "blocks_st"),
}


def infer_config(name: str, state: dict[str, torch.Tensor], given: dict[str, Any] | None = None) -> dict[str, Any]:
    """Architecture settings read from a state dict's shapes, for the keys ``given`` does not set.

    Returns keyword arguments for :func:`auglift.models.build` including ``in_channels``.
    """
    given = given or {}
    cfg: dict[str, Any] = {}
    if name == "tcn":
        w = _shape(state, "expand_conv.weight", 3)
        s = _shape(state, "shrink.weight", 3)
        if s and s[0] % 3 == 0:
            cfg["num_joints"] = s[0] // 3
        if w:
            cfg["channels"] = w[0]
            if "receptive_field" not in given:
                n = _count(state, "layers_conv") // 2
                cfg["filter_widths"] = [w[2]] + [state[f"layers_conv.{2 * i}.weight"].shape[-1] for i in range(n)
                                                 if f"layers_conv.{2 * i}.weight" in state]
            joints = given.get("num_joints", cfg.get("num_joints", 17))
            if joints and w[1] % joints == 0:
                cfg["in_channels"] = w[1] // joints
    elif name in _TRANSFORMER_KEYS:
        e_key, pos_key, tpos_key, tpos_dims, fc1_key, blocks = _TRANSFORMER_KEYS[name]
        e, fc1 = _shape(state, e_key, 2), _shape(state, fc1_key, 2)
        pos, tpos = _shape(state, pos_key, 3), _shape(state, tpos_key, tpos_dims)
        if pos:
            cfg["num_joints"] = pos[1]
        if tpos:
            cfg["receptive_field"] = tpos[1]
        if (depth := _count(state, blocks)) > 0:
            cfg["depth"] = depth
        if name == "poseformer":
            if e:
                cfg["embed_dim_ratio"], cfg["in_channels"] = e
            if tpos and fc1:
                cfg["mlp_ratio"] = fc1[0] / tpos[2]
        else:
            if e:
                cfg["in_channels"] = e[1]
                if "size" not in given:
                    cfg["dim_feat"] = e[0]
                    if fc1:
                        cfg["mlp_ratio"] = fc1[0] / e[0]
            rep = _shape(state, "pre_logits.fc.weight", 2)
            cfg["dim_rep"] = rep[0] if rep else 0
            cfg["att_fuse"] = "ts_attn.0.weight" in state
    return {k: v for k, v in cfg.items() if k not in given}


def load_official(name: str, path: str | os.PathLike[str], **config: Any) -> nn.Module:
    """Build lifter ``name`` (``tcn``, ``poseformer``, ``motionbert``) with the weights of an original checkpoint.

    ``config`` takes :func:`auglift.models.build` keywords (``in_channels``, ``num_joints``,
    ``num_heads``, ``causal``, ...); unspecified architecture settings come from the file.
    The model is returned in eval mode on the CPU. Raises :class:`DataError` naming the file
    and key when the file is unreadable, a key is missing or unexpected, or a shape differs
    (e.g. a 2-channel checkpoint loaded with ``in_channels=6``).
    """
    if name not in INPUT_LAYER:
        raise ConfigError(f"load_official: no original checkpoint format for lifter {name!r} "
                          f"(supported: {', '.join(sorted(INPUT_LAYER))})")
    p = Path(path)
    first = INPUT_LAYER[name]  # checked first below: a wrong C_in is the likeliest mismatch
    state = read_checkpoint(p)
    if first not in state and f"backbone.{first}" in state:  # an action/mesh model: its backbone is the lifter
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    for other, key in INPUT_LAYER.items():
        if other != name and first not in state and key in state:
            raise DataError(p, first, f"missing: this looks like a {other} checkpoint, not {name}")
    cfg = {**infer_config(name, state, config), **config}
    in_channels = cfg.pop("in_channels", 2)
    try:
        model = build(name, in_channels, **cfg)
    except TypeError as e:
        raise ConfigError(f"load_official({name!r}): {e}") from None
    own = model.state_dict()
    settings = ", ".join(f"{k}={v}" for k, v in {"in_channels": in_channels, **cfg}.items())  # named in errors
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise DataError(p, missing[0], f"missing from the checkpoint ({len(missing)} of {len(own)} {name} keys "
                                       f"missing: {', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})")
    unexpected = [k for k in state if k not in own]
    if unexpected:
        raise DataError(p, unexpected[0], f"unexpected key for {name} with {settings} "
                                          f"({len(unexpected)} unexpected: {', '.join(unexpected[:4])})")
    for k, v in sorted(own.items(), key=lambda kv: kv[0] != first):
        if k not in state:
            continue
        got = tuple(state[k].shape)
        if got != tuple(v.shape):
            hint = ""
            if k == first and len(got) >= 2:
                per_joint = got[1] / cfg.get("num_joints", 17) if name == "tcn" else got[1]
                hint = (f" (the checkpoint's input layer takes {per_joint:g} channels per joint, "
                        f"the model was asked for in_channels={in_channels})")
            raise DataError(p, k, f"expected shape {tuple(v.shape)} for {name} with {settings}, "
                                  f"got {got}{hint}")
        if v.dtype.is_floating_point and not state[k].dtype.is_floating_point:
            raise DataError(p, k, f"expected a floating-point tensor, got {state[k].dtype}")
    merged = {k: state.get(k, v) for k, v in own.items()}
    model.load_state_dict(merged, strict=True)
    return model.eval()
