"""SimpleBaseline (Martinez et al., ICCV 2017): a residual MLP lifting one frame.

Architecture: ``Linear(J*C_in -> width)``, BatchNorm, ReLU, Dropout, then ``num_blocks``
residual blocks of two (Linear, BatchNorm, ReLU, Dropout) layers, then
``Linear(width -> J*3)``. Defaults: width 1024, 2 blocks, dropout 0.25. The layer layout is
the original TensorFlow ``LinearModel``'s (``una-dinosauria/3d-pose-baseline``): with its 16
input and output joints it has the same 4,291,632 trainable parameters; with 17 joints
4,296,755. The original's max-norm weight clipping is not part of the module. Only the first
``Linear`` depends on ``C_in``.
"""

from __future__ import annotations

import torch
from torch import nn

from auglift.models.layers import Dropout, check_input

__all__ = ["SimpleBaseline"]


class _Block(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), Dropout(dropout),
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
                                   nn.ReLU(inplace=True), Dropout(dropout))
        self.blocks = nn.Sequential(*[_Block(width, dropout) for _ in range(num_blocks)])
        self.output = nn.Linear(width, num_joints * 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, T, J, C_in)`` -> ``(B, 1, J, 3)``: the pose of the centre frame ``T // 2``."""
        check_input(x, self.num_joints, self.in_channels, "simple_baseline")
        b, t = x.shape[:2]
        h = x[:, t // 2].reshape(b, -1)
        y = self.output(self.blocks(self.input(h)))
        return y.view(b, 1, self.num_joints, 3)
