"""Building blocks shared by the lifters: the transformers' (PoseFormer, MotionBERT) and a faster CPU dropout.

Parameter names follow the timm vision-transformer convention that both original code bases
use (``qkv``, ``proj``, ``fc1``, ``fc2``, ``norm1``, ``norm2``), so state dicts of the original
models load without renaming. Attention runs through
:func:`torch.nn.functional.scaled_dot_product_attention` (fused kernels on CPU and GPU); the
result equals the explicit ``softmax(q k^T / sqrt(d)) v`` of the originals up to float rounding.
When training in bfloat16 on CPU (``torch.autocast("cpu", dtype=torch.bfloat16)`` or a bfloat16
model) it runs the math backend instead of the CPU flash kernel, whose bfloat16 backward is slow
at these head widths and sequence lengths (:func:`attention`); float32, inference and GPU keep
PyTorch's choice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["Attention", "DropPath", "Dropout", "Mlp", "TransformerBlock", "attention", "check_input", "drop_path_rates",
           "set_bn_momentum"]


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` with a cheaper CPU training mask: 15 random bits per element, four
    elements from each 64-bit draw of ``random_()``, kept where the bits are ``>= round(p * 32768)`` (so
    ``p`` acts in steps of 1/32768; 0.25 and 0.5 exactly). On the CPU ``bernoulli_`` draws one double per
    element and took 1.8 ms for a 256 x 512 batch on one core (20 % of a SimpleBaseline training step);
    this mask takes about a fifth of that. Other devices, evaluation and ``p`` of 0 or 1 use
    :func:`torch.nn.functional.dropout`; no parameters, so state dicts are those of ``nn.Dropout``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or self.p == 1.0 or x.device.type != "cpu":
            return super().forward(x)
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_().view(torch.int16)[:n].view(x.shape)
        keep = bits.bitwise_and_(0x7FFF) >= round(self.p * 32768)  # random_() fills bits 0-62: 15 per lane
        scale = keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x.mul_(scale) if self.inplace else x * scale


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """Stochastic-depth rate of each of ``depth`` blocks, rising linearly from 0 to ``rate``."""
    return [rate * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]


def check_input(x: torch.Tensor, num_joints: int, in_channels: int, name: str) -> None:
    """Raise ``ValueError`` unless ``x`` is ``(B, T, num_joints, in_channels)``."""
    if x.dim() != 4 or tuple(x.shape[-2:]) != (num_joints, in_channels):
        raise ValueError(f"{name}: expected input (B, T, {num_joints}, {in_channels}), got {tuple(x.shape)}")


class DropPath(nn.Module):
    """Stochastic depth: zero a residual branch for whole samples with probability ``p`` (training only).

    ``sample_dims`` leading dimensions index the "samples" that are dropped together, e.g. 2
    for ``(B, F, J, C)`` tensors where the original code dropped per ``B*F`` row.
    """

    def __init__(self, p: float = 0.0, sample_dims: int = 1):
        super().__init__()
        self.p = float(p)
        self.sample_dims = sample_dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = x.shape[: self.sample_dims] + (1,) * (x.dim() - self.sample_dims)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Module):
    """``fc1 -> GELU -> dropout -> fc2 -> dropout`` on the last dimension."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d)) v`` of ``(B, H, N, d)`` tensors through ``scaled_dot_product_attention``.

    bfloat16 on CPU with gradients (CPU bf16 autocast training: the ``qkv`` projection gives
    bfloat16) takes the math backend: the CPU flash kernel took 58 % of a bf16 PoseFormer-27
    training step (head widths 4 and 68, 17 and 27 tokens) and the math path trains it about 1.35x
    faster, MotionBERT-lite 1.06x. Without gradients (evaluation) the flash forward is the faster
    one (math 1.08x slower on PoseFormer-27, 1.23x on MotionBERT-lite, ``benchmarks/README.md``),
    so it stays, as does every other case (float32, GPU): the default call, unchanged.
    """
    if q.dtype == torch.bfloat16 and q.device.type == "cpu" and q.requires_grad:
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)


class Attention(nn.Module):
    """Multi-head self-attention over one axis of a token tensor.

    ``forward(x)`` with ``x (..., N, C)`` attends over the ``N`` axis (``seq_axis=-2``, the
    default). With ``seq_axis=-3`` and ``x (B, F, J, C)`` it attends over frames ``F``
    separately for every joint (MotionBERT's temporal attention). The ``qkv`` projection's
    output is laid out ``(3, heads, head_dim)`` as in the originals.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, seq_axis: int = -2):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention width {dim} is not divisible by {num_heads} heads")
        if seq_axis not in (-2, -3):
            raise ValueError("seq_axis must be -2 (tokens) or -3 (frames of (B, F, J, C))")
        self.num_heads = num_heads
        self.seq_axis = seq_axis
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, -1))  # (..., N, 3, H, d)
        if self.seq_axis == -3:
            qkv = qkv.transpose(-5, -4)  # (B, J, F, 3, H, d): frames become the sequence
        q, k, v = qkv.movedim(-3, 0).transpose(-3, -2).unbind(0)  # each (..., H, N, d)
        lead = q.shape[:-3]
        # attention on 4D (B', H, N, d) tensors: the same result, and exportable to ONNX (4D only there)
        q, k, v = (t.reshape(-1, *t.shape[-3:]) for t in (q, k, v))
        out = attention(q, k, v, self.attn_drop if self.training else 0.0)
        out = out.reshape(*lead, *out.shape[-3:]).transpose(-3, -2).flatten(-2)  # (..., N, C)
        if self.seq_axis == -3:
            out = out.transpose(-3, -2)
        return self.proj_drop(self.proj(out))


class TransformerBlock(nn.Module):
    """Pre-norm block with stochastic depth: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``; LayerNorm eps 1e-6."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 2.0, qkv_bias: bool = True, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def set_bn_momentum(model: nn.Module, momentum: float) -> None:
    """Set the momentum of every BatchNorm layer of ``model`` (VideoPose3D decays it 0.1 -> 0.001)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum
