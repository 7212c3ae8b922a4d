"""VideoPose3D temporal convolutional lifter (Pavllo et al., CVPR 2019).

Architecture (the original ``TemporalModel``): the ``J*C_in`` per-frame values are the
channels of a 1D convolution over time. An expansion ``Conv1d(J*C_in -> channels, w0)``
+ BatchNorm + ReLU + Dropout is followed by one residual block per further filter width
``w_i``: a dilated ``Conv1d(channels, channels, w_i, dilation=w0*...*w_{i-1})`` + BN + ReLU +
Dropout, a ``Conv1d(channels, channels, 1)`` + BN + ReLU + Dropout, and a skip connection
from the block input (cropped to the output frames). A ``Conv1d(channels -> J*3, 1)`` reads
out the pose. Convolutions have no bias except the last one; BatchNorm momentum starts at
0.1 (the original training script decays it towards 0.001, see :meth:`TCN.set_bn_momentum`).

Receptive field ``prod(filter_widths)``: 1 = ``[1]`` (single frame), 27 = ``[3, 3, 3]``,
81 = ``[3, 3, 3, 3]``, 243 = ``[3, 3, 3, 3, 3]``. Defaults: 243 frames, 1024 channels,
dropout 0.25, which gives the published 16.95 M parameters for 17 joints and 2 inputs.

Two forward paths share one set of weights (and state-dict keys, identical to the original's):

* the dilated path (original ``TemporalModel``) maps ``T >= receptive_field`` frames to
  ``T - receptive_field + 1`` outputs, e.g. a whole clip at once for evaluation;
* the strided path (original ``TemporalModelOptimized1f``) replaces dilation by stride and
  computes only what the single output of a ``T == receptive_field`` window needs. It is used
  automatically for such windows (``strided=True``); in eval mode both paths give the same
  output, in training mode BatchNorm sees the same statistics as the original's training model.

Causal mode (``causal=True``): the output for a window belongs to its last frame, not its centre.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from auglift.errors import ConfigError
from auglift.models import winograd
from auglift.models.layers import Dropout, check_input, set_bn_momentum

__all__ = ["TCN", "filter_widths_for"]


def filter_widths_for(receptive_field: int) -> list[int]:
    """Filter widths of the published models: ``[1]`` for 1 frame, ``[3] * k`` for ``3**k`` frames."""
    k = round(math.log(receptive_field, 3)) if receptive_field > 0 else 0
    if 3**k != receptive_field:
        raise ConfigError(f"tcn: receptive_field must be 1 or a power of 3 (27, 81, 243), got {receptive_field}; "
                          "pass filter_widths=[...] for other layouts")
    return [3] * k or [1]  # 3**0 frames: one width-1 layer


def _strided_rows(h: torch.Tensor, weight: torch.Tensor, w: int) -> torch.Tensor:
    """Kernel-``w``, stride-``w`` convolution on time-major rows: ``h (N * w, C_in)`` (``w`` consecutive
    frames of a sample per output) and a conv1d ``weight (C_out, C_in, w)`` -> ``(N, C_out)``."""
    return F.linear(h.reshape(-1, w * h.shape[1]), weight.transpose(1, 2).reshape(weight.shape[0], -1))


class TCN(nn.Module):
    """Temporal convolutional lifter: ``(B, T, J, C_in) -> (B, T - receptive_field + 1, J, 3)``.

    Parameters: ``receptive_field`` (1, 27, 81, 243; default 243, or the product of ``filter_widths``),
    ``filter_widths`` (odd widths), ``channels`` (1024), ``dropout`` (0.25), ``causal``,
    ``bn_momentum`` (0.1), ``strided`` (use the strided path for ``T == receptive_field``).
    """

    many_to_many = False
    whole_clip = True  # T > receptive_field frames in, T - receptive_field + 1 out (auglift.predict uses it)

    def __init__(self, in_channels: int = 2, num_joints: int = 17, receptive_field: int | None = None,
                 filter_widths: Sequence[int] | None = None, channels: int = 1024, dropout: float = 0.25,
                 causal: bool = False, bn_momentum: float = 0.1, strided: bool = True):
        super().__init__()
        if filter_widths is None:
            widths = filter_widths_for(243 if receptive_field is None else receptive_field)
        else:
            widths = list(filter_widths)
        if not widths or any(int(w) != w or w < 1 or w % 2 == 0 for w in widths):
            raise ConfigError(f"tcn: filter_widths must be odd positive integers, got {widths}")
        if receptive_field is not None and math.prod(widths) != receptive_field:
            raise ConfigError(f"tcn: filter_widths {widths} give a receptive field of {math.prod(widths)} frames, "
                              f"not receptive_field={receptive_field}")
        self.in_channels, self.num_joints = in_channels, num_joints
        self.filter_widths = [int(w) for w in widths]
        self.causal = bool(causal)
        self.strided = bool(strided)
        self.receptive_field = math.prod(self.filter_widths)

        self.drop = Dropout(dropout)
        self.expand_conv = nn.Conv1d(num_joints * in_channels, channels, widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=bn_momentum)
        # Per block i: crop ``pad`` frames each side of the residual, shifted by ``shift`` when causal.
        self.pad: list[int] = []
        self.shift: list[int] = []
        convs: list[nn.Module] = []
        dilation = widths[0]
        for w in widths[1:]:
            self.pad.append((w - 1) * dilation // 2)
            self.shift.append((w // 2) * dilation if causal else 0)
            convs += [nn.Conv1d(channels, channels, w, dilation=dilation, bias=False),
                      nn.Conv1d(channels, channels, 1, bias=False)]
            dilation *= w
        self.layers_conv = nn.ModuleList(convs)
        self.layers_bn = nn.ModuleList(nn.BatchNorm1d(channels, momentum=bn_momentum) for _ in convs)
        self.shrink = nn.Conv1d(channels, num_joints * 3, 1)
        self._rows_cache: tuple[tuple[tuple[int, int], ...], list[tuple[torch.Tensor, torch.Tensor]]] | None = None

    def set_bn_momentum(self, momentum: float) -> None:
        """Set the momentum of every BatchNorm layer (VideoPose3D decays 0.1 -> 0.001 over training)."""
        set_bn_momentum(self, momentum)

    def _act(self, bn: nn.Module, h: torch.Tensor) -> torch.Tensor:
        return self.drop(F.relu(bn(h)))

    def _conv_act(self, conv: nn.Conv1d, bn: nn.Module, h: torch.Tensor) -> torch.Tensor:
        """``drop(relu(bn(conv(h))))``; in eval mode with BatchNorm folded into the convolution's weights
        and the ReLU in place (the same values, two passes over the activations fewer)."""
        if self.training:
            return self._act(bn, F.conv1d(h, conv.weight, dilation=conv.dilation))
        return F.relu_(F.conv1d(h, *self._folded(conv, bn), dilation=conv.dilation))

    def _forward_dilated(self, h: torch.Tensor) -> torch.Tensor:
        h = self._conv_act(self.expand_conv, self.expand_bn, h)
        for i, (pad, shift) in enumerate(zip(self.pad, self.shift)):
            res = h[:, :, pad + shift: h.shape[2] - pad + shift]
            h = self._conv_act(self.layers_conv[2 * i], self.layers_bn[2 * i], h)
            h = res + self._conv_act(self.layers_conv[2 * i + 1], self.layers_bn[2 * i + 1], h)
        return self.shrink(h)

    def _forward_strided(self, h: torch.Tensor) -> torch.Tensor:
        # Time-major rows (B, T, C): a kernel-w, stride-w convolution of a T == w * T' input is the
        # product of its (B * T', w * C) rows with the (C_out, w * C) weight, and 1x1 convolutions and
        # BatchNorm act on (N, C) rows: plain matrix products (several times faster than a strided
        # conv1d on CPU, and bf16 autocast reaches the bf16 GEMM), the same values as the convolutions.
        h = self._act(self.expand_bn, _strided_rows(h, self.expand_conv.weight, self.filter_widths[0]))
        for i, w in enumerate(self.filter_widths[1:]):
            start = w // 2 + (w // 2 if self.causal else 0)
            res = h.unflatten(0, (-1, w))[:, start]  # (B * T' / w, C): frames start, start + w, ...
            h = self._act(self.layers_bn[2 * i], _strided_rows(h, self.layers_conv[2 * i].weight, w))
            h = res + self._act(self.layers_bn[2 * i + 1], F.linear(h, self.layers_conv[2 * i + 1].weight[..., 0]))
        return F.linear(h, self.shrink.weight[..., 0], self.shrink.bias)[..., None]  # (B, J*3, 1)

    def _folded(self, conv: nn.Conv1d, bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode BatchNorm folded into the convolution: ``(weight (C_out, C_in, w), bias (C_out,))``."""
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        return conv.weight * scale[:, None, None], bn.bias - bn.running_mean * scale

    def _rows_ok(self, x: torch.Tensor) -> bool:
        """Whether :meth:`_forward_rows` serves ``x``: eval mode without autograd, float32 on CPU outside
        autocast and tracing, kernel-3 blocks, oneDNN's linear present, finite input (a Winograd tile mixes
        its frames, so a non-finite frame would spread to neighbours the convolution keeps finite)."""
        return (not self.training and not torch.is_grad_enabled() and x.device.type == "cpu"
                and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
                and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
                and all(w == 3 for w in self.filter_widths[1:]) and winograd.available()
                and bool(torch.isfinite(x).all()))

    def _forward_rows(self, h: torch.Tensor) -> torch.Tensor:
        """The dilated path in eval mode on time-major rows: ``h (B, T, J*C_in)`` -> ``(B, T - rf + 1, J*3)``.

        The expansion convolution is one matrix product of unfolded rows, each kernel-3 dilated
        convolution Winograd F(4, 3) (:mod:`auglift.models.winograd`), BatchNorm folded, ReLUs fused. The
        tiles are planned from the last layer back; frames the tiles need past the clip's end are the
        last frame repeated (they reach only outputs past ``T - rf + 1``, which are dropped).
        """
        b, t, _ = h.shape
        n = t - self.receptive_field + 1
        dilations = list(itertools.accumulate(self.filter_widths[:-1], operator.mul))
        tiles, need = [], n
        for d in reversed(dilations):
            tiles.append(-(-need // (winograd.TILE * d)))  # tiles of 4 d outputs covering the frames needed
            need = winograd.TILE * d * tiles[-1] + 2 * d
        tiles.reverse()
        w0 = self.filter_widths[0]
        if need + w0 - 1 > t:
            h = torch.cat([h, h[:, -1:].expand(b, need + w0 - 1 - t, h.shape[2])], 1)
        weights = self._rows_weights()
        rows = h.unfold(1, w0, 1)[:, :need].reshape(b * need, -1)  # (B * need, C_in * w0): channel-major, as weight
        h = winograd.linear(rows, *weights[0], relu=True).view(b, need, -1)
        for i, (d, k) in enumerate(zip(dilations, tiles)):
            h = winograd.block(h, *weights[1 + 2 * i], *weights[2 + 2 * i], d, k, self.pad[i] + self.shift[i])
        out = winograd.linear(h.view(-1, h.shape[2]), *weights[-1])
        return out.view(b, -1, out.shape[1])[:, :n]

    def _rows_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The weights of :meth:`_forward_rows`, ``(weight, bias)`` per layer: the expansion ``(C, C_in * w0)``, per
        block the Winograd ``(6, C, C)`` and the 1x1 ``(C, C)``, BatchNorm folded, then the read-out. Cached until a
        parameter or BatchNorm statistic changes (a training step, ``load_state_dict``, ``.to()``)."""
        tensors = list(itertools.chain(self.parameters(), self.buffers()))
        key = None if any(t.is_inference() for t in tensors) else tuple((t.data_ptr(), t._version) for t in tensors)
        if key is not None and self._rows_cache is not None and self._rows_cache[0] == key:
            return self._rows_cache[1]
        w, b = self._folded(self.expand_conv, self.expand_bn)
        out = [(w.reshape(w.shape[0], -1), b)]
        for i in range(len(self.pad)):
            w, b = self._folded(self.layers_conv[2 * i], self.layers_bn[2 * i])
            out.append((winograd.winograd_weights(w), b))
            w, b = self._folded(self.layers_conv[2 * i + 1], self.layers_bn[2 * i + 1])
            out.append((w[..., 0].contiguous(), b))
        out.append((self.shrink.weight[..., 0].contiguous(), self.shrink.bias))
        self._rows_cache = None if key is None else (key, out)  # inference tensors keep no version: no cache
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, T, J, C_in)`` with ``T >= receptive_field`` -> ``(B, T - receptive_field + 1, J, 3)``."""
        check_input(x, self.num_joints, self.in_channels, "tcn")
        b, t = x.shape[:2]
        if t < self.receptive_field:
            raise ValueError(f"tcn: window of {t} frames is shorter than the receptive field {self.receptive_field}")
        h = x.reshape(b, t, -1)  # (B, T, J*C_in)
        if self.strided and t == self.receptive_field:
            h = self._forward_strided(h.reshape(b * t, -1))
        elif self._rows_ok(x):
            return self._forward_rows(h).reshape(b, -1, self.num_joints, 3)
        else:
            h = self._forward_dilated(h.transpose(1, 2))
        return h.transpose(1, 2).reshape(b, -1, self.num_joints, 3)
