"""Monocular depth estimators behind one small interface.

Every estimator has

* ``kind``: ``"metric"`` (depth in metres) or ``"relative"`` (affine-invariant disparity: larger
  is nearer, scale and shift unknown per image);
* ``name`` and :meth:`~DepthEstimator.identity`, a JSON-ready dict stored in a PoseSet's
  ``meta["depth_model"]`` and hashed to key resumable extraction runs;
* :meth:`~DepthEstimator.predict`: ``images uint8 (B, H, W, 3) RGB -> (B, H, W) float32`` depth
  at image resolution (:meth:`~DepthEstimator.predict_tensor` keeps the result on the model's
  device for the descriptor sampler).

Implementations:

* :class:`DepthAnythingV2`: Depth Anything V2 through Hugging Face ``transformers``
  (``DepthAnythingForDepthEstimation``) from a hub id or a local ``save_pretrained`` directory
  (:meth:`DepthAnythingV2.from_pretrained`), or from an official ``.pth`` checkpoint of the
  Depth-Anything-V2 repository (:meth:`DepthAnythingV2.from_official`, state-dict keys mapped by
  :func:`official_to_transformers`). Preprocessing follows the official ``image2tensor``: the
  image is scaled so its *short* side is ``input_size`` (518), both sides rounded to multiples
  of 14 (never below ``input_size``), bicubic, ImageNet mean/std; the prediction is resized
  back to the frame with bilinear interpolation (``align_corners=True``, as ``infer_image``).
  ``transformers``' ``DPTImageProcessor`` instead scales "as little as possible", which differs
  for images smaller than the input size; we follow the official code.
* :class:`OracleEstimator`: the embedded synthetic world's rendered, error-modelled depth
  (``auglift.datasets.synthetic.render_depth``), for clips whose ``source`` starts with
  ``synthetic:``. It reads PoseSet rows, not images (``needs_frames = False``).

:func:`load_estimator` turns a CLI ``--model`` string into an estimator.
"""

from __future__ import annotations

import abc
import hashlib
import math
import os
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from auglift.datasets.synthetic import render_depth
from auglift.detectors.model_files import hub_unavailable
from auglift.errors import ConfigError, DataError
from auglift.io import sha256_file
from auglift.poseset import clip_label
from auglift.safe_pickle import describe_load_error

if TYPE_CHECKING:  # pragma: no cover
    from auglift.poseset import PoseSet

__all__ = [
    "ENCODERS",
    "DepthAnythingV2",
    "DepthEstimator",
    "OracleEstimator",
    "input_size_for",
    "load_estimator",
    "official_config",
    "official_to_transformers",
]

Kind = Literal["metric", "relative"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PATCH = 14

# Official encoders: ViT width/depth/heads, DPT head width ("features") and the per-level
# channels ("out_channels"), and the 0-based blocks whose outputs feed the head
# (``intermediate_layer_idx`` in the official ``dpt.py``).
ENCODERS: dict[str, dict[str, Any]] = {
    "vits": {"hidden": 384, "layers": 12, "heads": 6, "features": 64, "out_channels": [48, 96, 192, 384],
             "blocks": [2, 5, 8, 11]},
    "vitb": {"hidden": 768, "layers": 12, "heads": 12, "features": 128, "out_channels": [96, 192, 384, 768],
             "blocks": [2, 5, 8, 11]},
    "vitl": {"hidden": 1024, "layers": 24, "heads": 16, "features": 256, "out_channels": [256, 512, 1024, 1024],
             "blocks": [4, 11, 17, 23]},
}


class DepthEstimator(abc.ABC):
    """Interface of a depth estimator (see the module docstring)."""

    kind: Kind = "metric"
    name: str = "depth-estimator"
    needs_frames: bool = True
    device: torch.device = torch.device("cpu")

    def identity(self) -> dict[str, Any]:
        """JSON-ready description of the model and its settings (what changes the output)."""
        return {"name": self.name, "kind": self.kind}

    @abc.abstractmethod
    def predict_tensor(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``images uint8 (B, H, W, 3)`` RGB -> ``(B, H, W)`` float32 depth on :attr:`device`."""

    def predict(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """``images uint8 (B, H, W, 3)`` RGB -> ``(B, H, W)`` float32 depth (NumPy, image resolution)."""
        return self.predict_tensor(images).cpu().numpy()

    def predict_rows(self, ps: PoseSet, rows: np.ndarray) -> torch.Tensor:
        """Depth maps of PoseSet ``rows`` without images (estimators with ``needs_frames = False``)."""
        raise ConfigError(f"{self.name}: this estimator needs image frames")


# ----------------------------------------------------------------------------- Depth Anything V2
def input_size_for(height: int, width: int, input_size: int = 518, multiple: int = PATCH) -> tuple[int, int]:
    """Network input ``(height, width)`` for a frame, as the official ``image2tensor`` computes it.

    The frame is scaled so that both sides are at least ``input_size`` with the short side equal
    to it ("lower_bound", aspect kept), then each side is rounded to a multiple of ``multiple``
    (rounded up instead where rounding would go below ``input_size``).
    """
    scale = max(input_size / height, input_size / width)

    def fit(v: float) -> int:
        y = int(round(v / multiple) * multiple)
        if y < input_size:
            y = int(math.ceil(v / multiple) * multiple)
        return y

    return fit(scale * height), fit(scale * width)


def _pick_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if "LOCAL_RANK" in os.environ and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _pick_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    table = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype not in table:
        raise ConfigError(f"dtype must be auto, float32, float16 or bfloat16, got {dtype!r}")
    return table[dtype]


class DepthAnythingV2(DepthEstimator):
    """Depth Anything V2 (any size, relative or metric) running a ``transformers`` model.

    Args:
        model: a ``DepthAnythingForDepthEstimation`` (its config says relative/metric and ``max_depth``).
        input_size: short side of the network input in pixels (official default 518).
        device: ``"cuda"``, ``"cpu"``, ...; default CUDA when available (``LOCAL_RANK`` under torchrun).
        dtype: ``"auto"`` (bf16, else fp16, on CUDA; fp32 on CPU), ``"float32"``, ``"float16"``, ``"bfloat16"``.
        max_batch: largest batch sent through the network at once (bigger inputs are split).
        source: where the weights came from (hub id@revision, or the file/directory name; the
            checksum identifies local weights), recorded in :meth:`identity`.
        weights_sha256: checksum of the weight file(s), recorded in :meth:`identity`.
    """

    def __init__(self, model: torch.nn.Module, *, input_size: int = 518, device: str | torch.device | None = None,
                 dtype: str | torch.dtype = "auto", max_batch: int = 16, source: str = "",
                 weights_sha256: str | None = None, name: str | None = None):
        if input_size < PATCH or input_size % PATCH:
            raise ConfigError(f"input_size must be a positive multiple of {PATCH}, got {input_size}")
        self.device = _pick_device(device)
        self.dtype = _pick_dtype(dtype, self.device)
        cfg = model.config
        self.kind = "metric" if getattr(cfg, "depth_estimation_type", "relative") == "metric" else "relative"
        self.max_depth = float(cfg.max_depth) if self.kind == "metric" and cfg.max_depth is not None else None
        self.input_size = int(input_size)
        self.max_batch = int(max_batch)
        self.source = str(source)
        self.weights_sha256 = weights_sha256
        hidden = int(cfg.backbone_config.hidden_size)
        size = {384: "small", 768: "base", 1024: "large"}.get(hidden, f"vit{hidden}")
        self.name = name or f"depth-anything-v2-{size}-{self.kind}"
        self.model = model.eval().to(self.device, dtype=self.dtype).to(memory_format=torch.channels_last)
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    # -- construction
    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike[str], **kw: Any) -> DepthAnythingV2:
        """Load a ``transformers`` checkpoint: a hub id (e.g. ``depth-anything/Depth-Anything-V2-Small-hf``,
        read from the local cache when offline) or a ``save_pretrained`` directory."""
        from transformers import DepthAnythingForDepthEstimation  # optional: the "depth" extra

        p = Path(name_or_path)
        local = p.is_dir()
        hub_off = None if local else hub_unavailable()  # then the local cache only, without retries
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = DepthAnythingForDepthEstimation.from_pretrained(str(name_or_path),
                                                                        local_files_only=local or hub_off is not None)
        except OSError:
            if hub_off is None:
                raise
            raise DataError(name_or_path, "model", f"not in the local Hugging Face cache, and {hub_off}") from None
        except MemoryError:
            raise DataError(name_or_path, "model", "cannot load a Depth Anything model (the files declare more "
                                                   "data than can be loaded)") from None
        except Exception as exc:  # transformers/safetensors raise many types for a bad model directory
            why = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise DataError(name_or_path, "model", f"cannot load a Depth Anything model ({why})") from None
        sha = _dir_sha256(p) if local else None
        revision = getattr(model.config, "_commit_hash", None)
        source = p.resolve().name if local else str(name_or_path) + (f"@{revision}" if revision else "")
        return cls(model, source=source, weights_sha256=sha, **kw)

    @classmethod
    def from_official(cls, path: str | os.PathLike[str], *, encoder: str | None = None, kind: Kind | None = None,
                      max_depth: float | None = None, num_heads: int | None = None,
                      layer_indices: list[int] | None = None, **kw: Any) -> DepthAnythingV2:
        """Load an official Depth-Anything-V2 ``.pth`` checkpoint (``torch.load(weights_only=True)``).

        ``encoder`` (vits/vitb/vitl) is taken from the file name or the ViT width when not given;
        ``kind`` defaults to ``"metric"`` when the file name contains ``metric`` (the official
        metric files are ``depth_anything_v2_metric_{hypersim,vkitti}_<encoder>.pth``), and
        ``max_depth`` to 20 m for Hypersim (indoor) and 80 m for VKITTI (outdoor) names. For other
        files pass ``kind``/``max_depth`` explicitly. ``num_heads``/``layer_indices`` override the
        encoder's attention heads and the 0-based blocks feeding the head (non-standard sizes).
        """
        p = Path(path)
        if not p.is_file():
            raise DataError(p, "checkpoint", "file not found")
        try:
            with warnings.catch_warnings():  # torch warns about foreign pickles before refusing them
                warnings.simplefilter("ignore")
                sd = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for bad files
            raise DataError(p, "checkpoint", f"cannot read a PyTorch state dict ({describe_load_error(exc)})") from None
        if isinstance(sd, Mapping) and "model" in sd and isinstance(sd["model"], Mapping):
            sd = sd["model"]
        if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
            raise DataError(p, "checkpoint", "expected a state dict of tensors")
        stem = p.name.lower()
        if kind is None:
            kind = "metric" if "metric" in stem else "relative"
        if kind == "metric" and max_depth is None:
            if "hypersim" in stem:
                max_depth = 20.0
            elif "vkitti" in stem:
                max_depth = 80.0
            else:
                raise ConfigError(f"{p}: metric checkpoint: pass max_depth "
                                  "(20 for Hypersim/indoor, 80 for VKITTI/outdoor)")
        if kind == "metric" and not (max_depth is not None and math.isfinite(max_depth) and max_depth > 0):
            raise ConfigError(f"{p}: max_depth must be a positive number of metres, got {max_depth}")
        if encoder is None:
            m = re.search(r"vit[sbl]", stem)
            encoder = m.group(0) if m else None
        config = official_config(sd, encoder=encoder, kind=kind, max_depth=max_depth, num_heads=num_heads,
                                 layer_indices=layer_indices, path=p)
        from transformers import DepthAnythingForDepthEstimation  # optional: the "depth" extra

        model = DepthAnythingForDepthEstimation(config)
        mapped = official_to_transformers(sd, model.state_dict().keys(), path=p)
        _load_exact(model, mapped, p)
        size = {384: "small", 768: "base", 1024: "large"}.get(config.backbone_config.hidden_size, "custom")
        kw.setdefault("name", f"depth-anything-v2-{size}-{kind}" + (f"-{max_depth:g}m" if kind == "metric" else ""))
        return cls(model, source=p.name, weights_sha256=sha256_file(p), **kw)

    # -- identity and prediction
    def identity(self) -> dict[str, Any]:
        out = {"name": self.name, "kind": self.kind, "family": "depth-anything-v2", "source": self.source,
               "input_size": self.input_size, "dtype": str(self.dtype).replace("torch.", ""),
               "units": "m" if self.kind == "metric" else "relative disparity"}
        if self.max_depth is not None:
            out["max_depth"] = self.max_depth
        if self.weights_sha256:
            out["weights_sha256"] = self.weights_sha256
        return out

    def preprocess(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``uint8 (B, H, W, 3)`` RGB -> normalised ``(B, 3, h, w)`` network input on the device."""
        x = torch.as_tensor(images).to(self.device, non_blocking=True)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise DataError(None, "images", f"expected RGB images of shape (B, H, W, 3), got {tuple(x.shape)}")
        if x.dtype != torch.uint8:
            raise DataError(None, "images", f"expected uint8 images, got {x.dtype}")
        _, h, w, _ = x.shape
        th, tw = input_size_for(h, w, self.input_size)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        x = F.interpolate(x, size=(th, tw), mode="bicubic", align_corners=False)
        x = (x - self._mean) / self._std
        return x.to(self.dtype).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def predict_tensor(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        imgs = torch.as_tensor(images) if not torch.is_tensor(images) else images
        if imgs.ndim != 4:
            raise DataError(None, "images", f"expected RGB images of shape (B, H, W, 3), got {tuple(imgs.shape)}")
        b, h, w = imgs.shape[:3]
        outs = []
        for s in range(0, b, self.max_batch):
            x = self.preprocess(imgs[s: s + self.max_batch])
            depth = self.model(pixel_values=x).predicted_depth  # (b, th, tw)
            depth = F.interpolate(depth[:, None].float(), size=(h, w), mode="bilinear", align_corners=True)[:, 0]
            outs.append(depth)
        return torch.cat(outs) if outs else torch.zeros((0, h, w), device=self.device)


def _load_exact(model: torch.nn.Module, sd: Mapping[str, torch.Tensor], path: Path) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    if missing:
        raise DataError(path, "checkpoint", f"missing weights for {len(missing)} parameters, e.g. {missing[0]}")
    for k, v in sd.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise DataError(path, "checkpoint", f"{k}: expected shape {tuple(own[k].shape)}, got {tuple(v.shape)}")
    model.load_state_dict(dict(sd), strict=True)


def official_config(sd: Mapping[str, torch.Tensor], *, encoder: str | None = None, kind: Kind = "relative",
                    max_depth: float | None = None, num_heads: int | None = None,
                    layer_indices: list[int] | None = None, path: os.PathLike[str] | str | None = None) -> Any:
    """A ``transformers`` ``DepthAnythingConfig`` matching an official state dict.

    Sizes (ViT width and depth, MLP ratio, patch size, position-embedding grid, DPT channels) are
    read from the tensors; attention heads and the blocks feeding the head come from the encoder
    table :data:`ENCODERS` (or ``num_heads``/``layer_indices``).
    """
    from transformers import DepthAnythingConfig, Dinov2Config  # optional: the "depth" extra

    def need(key: str) -> torch.Tensor:
        if key not in sd:
            raise DataError(path, "checkpoint", f"not an official Depth-Anything-V2 state dict: missing {key}")
        return sd[key]

    hidden = int(need("pretrained.cls_token").shape[-1])
    patch = int(need("pretrained.patch_embed.proj.weight").shape[-1])
    n_pos = int(need("pretrained.pos_embed").shape[1]) - 1
    grid = round(math.sqrt(n_pos))
    if grid * grid != n_pos:
        raise DataError(path, "pretrained.pos_embed", f"expected a square grid of position embeddings, got {n_pos}")
    layers = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"pretrained\.blocks\.(\d+)\.", k)))
    mlp = int(need("pretrained.blocks.0.mlp.fc1.weight").shape[0])
    features = int(need("depth_head.scratch.layer1_rn.weight").shape[0])
    out_channels = [int(need(f"depth_head.projects.{i}.weight").shape[0]) for i in range(4)]
    if encoder is None:
        encoder = {v["hidden"]: k for k, v in ENCODERS.items()}.get(hidden)
    enc = ENCODERS.get(encoder or "")
    if enc is not None and (enc["hidden"] != hidden or enc["layers"] != layers):
        raise DataError(path, "checkpoint", f"encoder {encoder}: expected width {enc['hidden']} and {enc['layers']} "
                                            f"blocks, the weights have {hidden} and {layers}")
    heads = num_heads or (enc["heads"] if enc else None)
    blocks = layer_indices or (enc["blocks"] if enc else None)
    if heads is None or blocks is None:
        raise ConfigError(f"{path}: non-standard encoder (width {hidden}, {layers} blocks): "
                          "pass num_heads and layer_indices")
    if hidden % heads:
        raise ConfigError(f"{path}: width {hidden} is not divisible by {heads} heads")
    head_hidden = int(need("depth_head.scratch.output_conv2.0.weight").shape[0])
    try:
        backbone = Dinov2Config(
            hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, mlp_ratio=_num(mlp / hidden),
            patch_size=patch, image_size=grid * patch, layerscale_value=1.0, layer_norm_eps=1e-6,
            out_indices=[i + 1 for i in blocks], apply_layernorm=True, reshape_hidden_states=False,
        )
        return DepthAnythingConfig(
            backbone_config=backbone, patch_size=patch, reassemble_hidden_size=hidden,
            neck_hidden_sizes=out_channels, fusion_hidden_size=features,
            head_hidden_size=head_hidden, depth_estimation_type=kind,
            **({"max_depth": _num(max_depth)} if kind == "metric" else {}),
        )
    except Exception as exc:  # transformers' config validation (TypeError, ValueError, strict-dataclass errors)
        raise ConfigError(f"{path}: cannot build a Depth Anything config ({exc})") from None


def _num(v: float | None) -> int | float | None:
    """An integral float as int (``transformers`` 5 configs type some of these fields as int)."""
    return int(v) if v is not None and float(v).is_integer() else v


_RC_PARTS = {"out_conv": "projection", "resConfUnit1.conv1": "residual_layer1.convolution1",
             "resConfUnit1.conv2": "residual_layer1.convolution2", "resConfUnit2.conv1": "residual_layer2.convolution1",
             "resConfUnit2.conv2": "residual_layer2.convolution2"}
# official depth_head key (a regex) -> its transformers name, from the match's groups
_HEAD_RULES: tuple[tuple[str, Callable[..., str]], ...] = (
    (r"depth_head\.projects\.([0-3])\.(weight|bias)", lambda i, w: f"neck.reassemble_stage.layers.{i}.projection.{w}"),
    (r"depth_head\.resize_layers\.([013])\.(weight|bias)", lambda i, w: f"neck.reassemble_stage.layers.{i}.resize.{w}"),
    (r"depth_head\.scratch\.layer([1-4])_rn\.(weight)", lambda i, w: f"neck.convs.{int(i) - 1}.{w}"),
    (r"depth_head\.scratch\.refinenet([1-4])\.(out_conv|resConfUnit[12]\.conv[12])\.(weight|bias)",
     lambda i, part, w: f"neck.fusion_stage.layers.{4 - int(i)}.{_RC_PARTS[part]}.{w}"),
)


def official_to_transformers(sd: Mapping[str, torch.Tensor], target_keys: Any = None, *,
                             path: os.PathLike[str] | str | None = None) -> dict[str, torch.Tensor]:
    """Rename an official Depth-Anything-V2 state dict to ``transformers``' ``DepthAnythingForDepthEstimation``.

    The official model is ``pretrained`` (DINOv2: ``cls_token``, ``pos_embed``, ``mask_token``,
    ``patch_embed.proj``, ``blocks.<i>.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1,
    mlp.fc2, ls2.gamma}``, ``norm``) plus ``depth_head`` (``projects.<i>``,
    ``resize_layers.{0,1,3}``, ``scratch.layer<i>_rn``, ``scratch.refinenet<i>.{out_conv,
    resConfUnit1, resConfUnit2}``, ``scratch.output_conv1``, ``scratch.output_conv2.{0,2}``).
    The fused ``attn.qkv`` is split into query/key/value (rows in that order); ``refinenet4`` is
    the first fusion layer in ``transformers`` (``refinenet1`` the last). ``target_keys`` (the
    model's own keys) selects between attention naming schemes of ``transformers`` releases
    (``attention.{q,k,v,o}_proj`` in 5.x, ``attention.attention.{query,key,value}`` /
    ``attention.output.dense`` before). Unknown or left-over official keys raise a DataError.
    """
    keys = set(target_keys) if target_keys is not None else set()
    new_attn = not keys or "backbone.encoder.layer.0.attention.q_proj.weight" in keys
    attn = ({"q": "attention.q_proj", "k": "attention.k_proj", "v": "attention.v_proj", "o": "attention.o_proj"}
            if new_attn else
            {"q": "attention.attention.query", "k": "attention.attention.key", "v": "attention.attention.value",
             "o": "attention.output.dense"})
    fixed = {
        "pretrained.cls_token": "backbone.embeddings.cls_token",
        "pretrained.mask_token": "backbone.embeddings.mask_token",
        "pretrained.pos_embed": "backbone.embeddings.position_embeddings",
        "pretrained.patch_embed.proj.weight": "backbone.embeddings.patch_embeddings.projection.weight",
        "pretrained.patch_embed.proj.bias": "backbone.embeddings.patch_embeddings.projection.bias",
        "pretrained.norm.weight": "backbone.layernorm.weight",
        "pretrained.norm.bias": "backbone.layernorm.bias",
        "depth_head.scratch.output_conv1.weight": "head.conv1.weight",
        "depth_head.scratch.output_conv1.bias": "head.conv1.bias",
        "depth_head.scratch.output_conv2.0.weight": "head.conv2.weight",
        "depth_head.scratch.output_conv2.0.bias": "head.conv2.bias",
        "depth_head.scratch.output_conv2.2.weight": "head.conv3.weight",
        "depth_head.scratch.output_conv2.2.bias": "head.conv3.bias",
    }
    block_parts = {"norm1": "norm1", "norm2": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
                   "attn.proj": attn["o"], "ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1"}
    out: dict[str, torch.Tensor] = {}
    for key, val in sd.items():
        if key in fixed:
            out[fixed[key]] = val
            continue
        m = re.fullmatch(r"pretrained\.blocks\.(\d+)\.(.+)\.(weight|bias|gamma)", key)
        if m:
            i, part, leaf = m.groups()
            if part == "attn.qkv":
                d = val.shape[0] // 3
                for j, name in enumerate("qkv"):
                    out[f"backbone.encoder.layer.{i}.{attn[name]}.{leaf}"] = val[j * d:(j + 1) * d]
                continue
            if part in ("ls1", "ls2") and leaf == "gamma":
                out[f"backbone.encoder.layer.{i}.{block_parts[part + '.gamma']}"] = val
                continue
            if part in block_parts:
                out[f"backbone.encoder.layer.{i}.{block_parts[part]}.{leaf}"] = val
                continue
        name = next((rule(*m.groups()) for pattern, rule in _HEAD_RULES if (m := re.fullmatch(pattern, key))), None)
        if name is None:
            raise DataError(path, "checkpoint", f"unexpected key {key!r} for an official Depth-Anything-V2 model "
                                                "(vits/vitb/vitl, no class-token readout, no batch norm)")
        out[name] = val
    if keys:
        extra = sorted(set(out) - keys)
        if extra:
            raise DataError(path, "checkpoint", f"{extra[0]}: no such parameter in the transformers model")
    return out



def _dir_sha256(path: Path) -> str:
    """One checksum over a model directory's weight and config files (names and contents)."""
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.is_file() and (f.suffix in (".safetensors", ".bin", ".pth", ".pt") or f.name == "config.json"):
            h.update(f.name.encode())
            h.update(sha256_file(f).encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------- oracle
class OracleEstimator(DepthEstimator):
    """The synthetic world's own depth: ``auglift.datasets.synthetic.render_depth``.

    ``flavour``: ``"metric"`` (rendered depth with the world's monocular-error model, metres),
    ``"relative"`` (affine-invariant disparity like a relative model), ``"true"`` (exact z-buffer).
    ``size``: map ``(h, w)`` passed to ``render_depth`` (``None``: its default, 256 px on the
    image's long side). Maps cover each frame's full field of view; the extraction maps keypoints
    with :func:`~auglift.depth.uadd.to_map_pixels` and scales the radii. Only clips whose
    ``source`` starts with ``synthetic:`` can be rendered; others raise a DataError naming the clip.
    """

    needs_frames = False

    def __init__(self, flavour: Literal["metric", "relative", "true"] = "metric", *, size: Any = None,
                 device: str | torch.device | None = None, render_options: Mapping[str, Any] | None = None):
        if flavour not in ("metric", "relative", "true"):
            raise ConfigError(f"oracle flavour must be metric, relative or true, got {flavour!r}")
        if size is not None:
            ok = isinstance(size, tuple | list) and len(size) == 2 and all(
                isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in size)
            if not ok:
                raise ConfigError(f"oracle size must be a (height, width) pair of positive integers, got {size!r}")
            size = (int(size[0]), int(size[1]))
        self.flavour = flavour
        self.kind = "relative" if flavour == "relative" else "metric"
        self.size = size
        self.render_options = dict(render_options or {})
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.name = f"oracle-{flavour}"

    def identity(self) -> dict[str, Any]:
        out = {"name": self.name, "kind": self.kind, "family": "oracle", "flavour": self.flavour,
               "units": "m" if self.kind == "metric" else "relative disparity"}
        if self.size is not None:
            out["size"] = list(self.size) if isinstance(self.size, tuple | list) else self.size
        if self.render_options:
            out["render_options"] = dict(self.render_options)
        return out

    def predict_tensor(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        raise ConfigError("the oracle estimator renders the synthetic world from PoseSet rows; it takes no images")

    def predict_rows(self, ps: PoseSet, rows: np.ndarray) -> torch.Tensor:
        """``(B, h, w)`` float32 maps of PoseSet ``rows`` covering each frame's full field of view."""
        rows = np.asarray(rows, dtype=np.int64)
        clips = np.unique(np.asarray(ps.clip[rows]))
        for c in clips:
            src = str(ps.clips.source[c])
            if not src.startswith("synthetic:"):
                raise DataError(ps.path, "clips.source", f"{clip_label(ps, int(c))}: the oracle "
                                                         f"estimator needs a synthetic: source, got {src!r}")
        maps = render_depth(ps, rows, size=self.size, flavour=self.flavour, **self.render_options)
        maps = np.asarray(maps, dtype=np.float32)
        if maps.ndim != 3 or maps.shape[0] != len(rows):
            raise DataError(None, "render_depth", f"expected ({len(rows)}, h, w) maps, got {maps.shape}")
        return torch.from_numpy(maps).to(self.device)


# ----------------------------------------------------------------------------- factory
def load_estimator(spec: str, *, device: str | None = None, dtype: str = "auto", input_size: int = 518,
                   max_batch: int = 16, encoder: str | None = None, kind: Kind | None = None,
                   max_depth: float | None = None, oracle_size: Any = None) -> DepthEstimator:
    """An estimator from a ``--model`` string.

    * ``oracle``, ``oracle:metric``, ``oracle:relative``, ``oracle:true``: :class:`OracleEstimator`;
    * a ``.pth``/``.pt`` file: an official checkpoint (:meth:`DepthAnythingV2.from_official`);
    * a directory or a hub id: a ``transformers`` checkpoint (:meth:`DepthAnythingV2.from_pretrained`).
    """
    if spec == "oracle" or spec.startswith("oracle:"):
        flavour = spec.partition(":")[2] or "metric"
        return OracleEstimator(flavour, size=oracle_size, device=device)  # type: ignore[arg-type]
    common: dict[str, Any] = {"device": device, "dtype": dtype, "input_size": input_size, "max_batch": max_batch}
    p = Path(spec)
    if p.suffix in (".pth", ".pt"):
        return DepthAnythingV2.from_official(p, encoder=encoder, kind=kind, max_depth=max_depth, **common)
    if p.exists() and not p.is_dir():
        raise DataError(p, "model", "expected a .pth checkpoint, a transformers model directory or a hub id")
    return DepthAnythingV2.from_pretrained(spec, **common)
