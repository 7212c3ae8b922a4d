"""MotionBERT's DSTformer (Zhu et al., ICCV 2023): dual-stream spatio-temporal transformer, many-to-many.

Architecture (the original ``DSTformer`` as built by MotionBERT's ``load_backbone``):

1. every joint of every frame is a token: ``Linear(C_in -> D)`` (the only layer that depends
   on ``C_in``; the original input is ``x, y, confidence``, ``C_in = 3``) plus a learned joint
   embedding ``(1, J, D)`` and a learned frame embedding ``(1, maxlen, 1, D)`` (its first ``T``
   rows are used);
2. ``depth`` stages, each with two parallel blocks over the same input: ``blocks_st`` runs
   spatial attention + MLP then temporal attention + MLP, ``blocks_ts`` the other order
   (spatial attention: over the J joints of a frame; temporal: over the T frames of a joint);
   attention fusion mixes them per token with ``softmax(Linear(2D -> 2))`` weights
   (``ts_attn``, initialised to weight 0 / bias 0.5, i.e. the plain average);
3. LayerNorm, ``pre_logits`` = ``Linear(D -> dim_rep) + tanh`` (the motion representation),
   ``head`` = ``Linear(dim_rep -> 3)`` per token.

Sizes: ``full`` (the 3D pose configuration ``MB_ft_h36m``): D = 512, MLP ratio 2;
``lite`` (``MB_lite`` / ``MB_ft_h36m_global_lite``): D = 256, MLP ratio 4. Both: dim_rep 512,
depth 5, 8 heads, maxlen 243, qkv bias, LayerNorm eps 1e-6, attention fusion, no dropout or
stochastic depth. Linear weights start truncated-normal (std 0.02, bias 0) and the embeddings
truncated-normal (std 0.02), as in the original.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from auglift.errors import ConfigError
from auglift.models.layers import Attention, DropPath, Mlp, check_input, drop_path_rates
from auglift.models.registry import NonNegativeInt

__all__ = ["SIZES", "MotionBERT"]

# size -> (dim_feat, mlp_ratio) of the released configurations
SIZES: dict[str, tuple[int, float]] = {"full": (512, 2.0), "lite": (256, 4.0)}


class DSTBlock(nn.Module):
    """One stream of a DSTformer stage on ``(B, F, J, D)`` tokens: spatial/temporal attention + MLP, in ``order``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop: float, attn_drop: float,
                 drop_path: float, order: str):
        super().__init__()
        self.order = order  # "st" (spatial first) or "ts"
        self.norm1_s = nn.LayerNorm(dim, eps=1e-6)
        self.norm1_t = nn.LayerNorm(dim, eps=1e-6)
        self.attn_s = Attention(dim, num_heads, qkv_bias, attn_drop, drop, seq_axis=-2)
        self.attn_t = Attention(dim, num_heads, qkv_bias, attn_drop, drop, seq_axis=-3)
        self.drop_path = DropPath(drop_path, sample_dims=2)
        self.norm2_s = nn.LayerNorm(dim, eps=1e-6)
        self.norm2_t = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_s = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        self.mlp_t = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = (self.norm1_s, self.attn_s, self.norm2_s, self.mlp_s)
        temporal = (self.norm1_t, self.attn_t, self.norm2_t, self.mlp_t)
        for norm1, attn, norm2, mlp in (spatial, temporal) if self.order == "st" else (temporal, spatial):
            x = x + self.drop_path(attn(norm1(x)))
            x = x + self.drop_path(mlp(norm2(x)))
        return x


class MotionBERT(nn.Module):
    """DSTformer lifter: ``(B, T, J, C_in) -> (B, T, J, 3)`` for any ``T <= receptive_field``.

    Parameters: ``size`` (``"full"`` or ``"lite"``, presets for ``dim_feat``/``mlp_ratio``),
    ``dim_feat``, ``mlp_ratio`` (override the preset), ``dim_rep`` (512; 0 = no ``pre_logits``),
    ``depth`` (5), ``num_heads`` (8), ``receptive_field`` (frames, original ``maxlen``; 243),
    ``att_fuse`` (True), ``qkv_bias``, ``drop_rate``, ``attn_drop_rate``, ``drop_path_rate`` (0).
    """

    many_to_many = True
    causal = False

    def __init__(self, in_channels: int = 3, num_joints: int = 17, size: str = "full", dim_feat: int | None = None,
                 mlp_ratio: float | None = None, dim_rep: NonNegativeInt = 512, depth: int = 5, num_heads: int = 8,
                 receptive_field: int = 243, att_fuse: bool = True, qkv_bias: bool = True, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0):
        super().__init__()
        if size not in SIZES:
            raise ConfigError(f"motionbert: size must be one of {sorted(SIZES)}, got {size!r}")
        dim = dim_feat if dim_feat is not None else SIZES[size][0]
        ratio = mlp_ratio if mlp_ratio is not None else SIZES[size][1]
        self.in_channels, self.num_joints, self.receptive_field = in_channels, num_joints, receptive_field
        self.att_fuse = att_fuse
        dpr = drop_path_rates(drop_path_rate, depth)

        self.joints_embed = nn.Linear(in_channels, dim)
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks_st = nn.ModuleList(
            DSTBlock(dim, num_heads, ratio, qkv_bias, drop_rate, attn_drop_rate, dpr[i], "st") for i in range(depth))
        self.blocks_ts = nn.ModuleList(
            DSTBlock(dim, num_heads, ratio, qkv_bias, drop_rate, attn_drop_rate, dpr[i], "ts") for i in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pre_logits = (nn.Sequential(OrderedDict(fc=nn.Linear(dim, dim_rep), act=nn.Tanh())) if dim_rep
                           else nn.Identity())
        self.head = nn.Linear(dim_rep or dim, 3)
        self.temp_embed = nn.Parameter(torch.zeros(1, receptive_field, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_joints, dim))
        nn.init.trunc_normal_(self.temp_embed, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.apply(self._init_weights)
        if att_fuse:
            self.ts_attn = nn.ModuleList(nn.Linear(dim * 2, 2) for _ in range(depth))
            for lin in self.ts_attn:
                nn.init.zeros_(lin.weight)
                nn.init.constant_(lin.bias, 0.5)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        """Linear layers truncated-normal (std 0.02, bias 0); LayerNorms keep PyTorch's (weight 1, bias 0)."""
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, return_rep: bool = False) -> torch.Tensor:
        """``x (B, T, J, C_in)``, ``T <= receptive_field`` -> ``(B, T, J, 3)``.

        With ``return_rep=True`` it returns the motion representation ``(B, T, J, dim_rep)`` instead.
        """
        check_input(x, self.num_joints, self.in_channels, "motionbert")
        t = x.shape[1]
        if t > self.receptive_field:
            raise ValueError(f"motionbert: window of {t} frames is longer than maxlen {self.receptive_field}")
        h = self.joints_embed(x) + self.pos_embed + self.temp_embed[:, :t]
        h = self.pos_drop(h)
        for i, (blk_st, blk_ts) in enumerate(zip(self.blocks_st, self.blocks_ts)):
            x_st, x_ts = blk_st(h), blk_ts(h)
            if self.att_fuse:
                alpha = self.ts_attn[i](torch.cat([x_st, x_ts], dim=-1)).softmax(dim=-1)
                h = x_st * alpha[..., 0:1] + x_ts * alpha[..., 1:2]
            else:
                h = (x_st + x_ts) * 0.5
        h = self.pre_logits(self.norm(h))
        return h if return_rep else self.head(h)
