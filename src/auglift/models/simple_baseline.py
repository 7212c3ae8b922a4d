"""SimpleBaseline (Martinez et al., ICCV 2017): a residual MLP lifting one frame.

Architecture: ``Linear(J*C_in -> width)``, BatchNorm, ReLU, Dropout, then ``num_blocks``
residual blocks of two (Linear, BatchNorm, ReLU, Dropout) layers, then
``Linear(width -> J*3)``. Defaults: width 1024, 2 blocks, dropout 0.25 (the paper's).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SimpleBaseline"]


class _Block(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class SimpleBaseline(nn.Module):
    """Single-frame residual MLP lifter: ``(B, T, J, C_in) -> (B, 1, J, 3)`` (uses the centre frame)."""

    receptive_field = 1
    many_to_many = False
    causal = False

    def __init__(self, in_channels: int = 2, num_joints: int = 17, width: int = 1024,
                 num_blocks: int = 2, dropout: float = 0.25):
        super().__init__()
        self.in_channels, self.num_joints = in_channels, num_joints
        self.input = nn.Sequential(nn.Linear(num_joints * in_channels, width), nn.BatchNorm1d(width),
                                   nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.blocks = nn.Sequential(*[_Block(width, dropout) for _ in range(num_blocks)])
        self.output = nn.Linear(width, num_joints * 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (self.num_joints, self.in_channels):
            raise ValueError(f"expected (B, T, {self.num_joints}, {self.in_channels}), got {tuple(x.shape)}")
        b, t = x.shape[:2]
        h = x[:, t // 2].reshape(b, -1)
        y = self.output(self.blocks(self.input(h)))
        return y.view(b, 1, self.num_joints, 3)
