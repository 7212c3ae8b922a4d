"""PoseFormer v1 (Zheng et al., ICCV 2021): spatial then temporal transformer, many-to-one.

Architecture (the original ``PoseTransformer``):

1. spatial: every joint of every frame is a token; ``Linear(C_in -> e)`` (the only layer that
   depends on ``C_in``) plus a learned joint embedding ``(1, J, e)``, ``depth`` pre-norm
   transformer blocks over the ``J`` joint tokens of each frame, LayerNorm;
2. temporal: each frame's ``J*e`` features form one token; a learned frame embedding
   ``(1, T, J*e)``, ``depth`` transformer blocks over the ``T`` frame tokens, LayerNorm;
3. a learned weighted mean over frames (``Conv1d(T -> 1, kernel 1)``), then
   ``LayerNorm + Linear(J*e -> J*3)`` gives the pose of the window's centre frame.

Defaults as published: joint embedding width ``e = 32`` (the released 27- and 81-frame models
use 32; wider, e.g. 96, is a configuration choice), 4 + 4 blocks, 8 heads, MLP ratio 2, qkv
bias, stochastic depth rising linearly from 0 to 0.1 over the blocks, LayerNorm eps 1e-6
(the head's LayerNorm keeps PyTorch's 1e-5 as in the original), no dropout. The 81-frame
model has 9.60 M parameters for 17 joints and 2 inputs. The positional embeddings start at
zero and the layers at PyTorch's default initialisation, as in the original.
"""

from __future__ import annotations

import torch
from torch import nn

from auglift.models.layers import TransformerBlock, check_input, drop_path_rates

__all__ = ["PoseFormer"]


class PoseFormer(nn.Module):
    """Spatial-temporal transformer lifter: ``(B, T, J, C_in) -> (B, 1, J, 3)`` with ``T == receptive_field``.

    Parameters: ``receptive_field`` (frames, original ``num_frame``; 81 by default),
    ``embed_dim_ratio`` (joint embedding width e, 32), ``depth`` (4), ``num_heads`` (8),
    ``mlp_ratio`` (2.0), ``qkv_bias``, ``drop_rate``, ``attn_drop_rate``, ``drop_path_rate`` (0.1).
    """

    many_to_many = False
    causal = False

    def __init__(self, in_channels: int = 2, num_joints: int = 17, receptive_field: int = 81,
                 embed_dim_ratio: int = 32, depth: int = 4, num_heads: int = 8, mlp_ratio: float = 2.0,
                 qkv_bias: bool = True, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.1):
        super().__init__()
        self.in_channels, self.num_joints, self.receptive_field = in_channels, num_joints, receptive_field
        e = embed_dim_ratio
        dim = e * num_joints
        dpr = drop_path_rates(drop_path_rate, depth)

        self.Spatial_patch_to_embedding = nn.Linear(in_channels, e)
        self.Spatial_pos_embed = nn.Parameter(torch.zeros(1, num_joints, e))
        self.Temporal_pos_embed = nn.Parameter(torch.zeros(1, receptive_field, dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.Spatial_blocks = nn.ModuleList(
            TransformerBlock(e, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, dpr[i])
            for i in range(depth))
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, dpr[i])
            for i in range(depth))
        self.Spatial_norm = nn.LayerNorm(e, eps=1e-6)
        self.Temporal_norm = nn.LayerNorm(dim, eps=1e-6)
        self.weighted_mean = nn.Conv1d(receptive_field, 1, kernel_size=1)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_joints * 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, T, J, C_in)``, ``T == receptive_field`` -> centre-frame pose ``(B, 1, J, 3)``."""
        check_input(x, self.num_joints, self.in_channels, "poseformer")
        b, t, j, c = x.shape
        if t != self.receptive_field:
            raise ValueError(f"poseformer: expected a window of {self.receptive_field} frames, got {t}")
        h = self.Spatial_patch_to_embedding(x.reshape(b * t, j, c)) + self.Spatial_pos_embed
        h = self.pos_drop(h)
        for blk in self.Spatial_blocks:
            h = blk(h)
        h = self.Spatial_norm(h).reshape(b, t, -1)  # (B, T, J*e)
        h = self.pos_drop(h + self.Temporal_pos_embed)
        for blk in self.blocks:
            h = blk(h)
        h = self.weighted_mean(self.Temporal_norm(h))  # (B, 1, J*e)
        return self.head(h).view(b, 1, j, 3)
