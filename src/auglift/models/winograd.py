"""Whole-clip TCN evaluation on CPU: kernel-3 dilated convolutions as Winograd F(4, 3) on time-major rows.

A kernel-3 convolution with dilation ``d`` over time, ``y[t] = W0 x[t] + W1 x[t+d] + W2 x[t+2d]``
(``W_k (C_out, C_in)``), gives four outputs ``y[t], y[t+d], y[t+2d], y[t+3d]`` from the six inputs
``x[t], ..., x[t+5d]`` with six matrix products instead of twelve (Lavin & Gray, "Fast Algorithms
for Convolutional Neural Networks", CVPR 2016, F(4, 3)): the six inputs are combined (``B^T``),
each combination is multiplied by a combination of the weights (``G W``), and the six products
are combined into the four outputs (``A^T``). With the 1x1 convolutions that follow, the TCN's
multiply-adds per output frame drop from 8.5 M to 5.4 M (1024 channels, 27 frames).

Rows are time-major, ``(B, T, C)`` with the channels contiguous: a convolution of kernel 1 is a
matrix product of the rows, and the inputs of every tile are strided views of the rows (no
copies). The matrix products run through oneDNN's float32 GEMM (``torch.ops.mkldnn._linear_pointwise``,
with the ReLU fused): on CPUs where PyTorch's default float32 GEMM (MKL) does not use AVX-512
(AMD), oneDNN's is about twice as fast, the rate of the convolutions VideoPose3D runs. Where
oneDNN's linear is missing, :func:`available` is False and the TCN keeps its convolutions.

The products and sums are those of the direct convolution regrouped: the outputs agree with
``conv1d`` to float32 rounding (about 5e-7 m on a trained TCN, ``benchmarks/bench_vs_official.py``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = ["TILE", "available", "block", "linear", "winograd_weights"]

# F(4, 3) in correlation form: y (4 outputs) = A^T [(G w) * (B^T x)] over 6 inputs; B^T and A^T are
# applied in factored form in conv3_relu.
_G = ((1 / 4, 0.0, 0.0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6), (1 / 24, 1 / 12, 1 / 6),
      (1 / 24, -1 / 12, 1 / 6), (0.0, 0.0, 1.0))
TILE = 4  # outputs per tile (at dilation d a tile spans 4 d output frames)


@functools.cache
def available() -> bool:
    """Whether oneDNN's float32 linear (with a fused ReLU) runs here and matches ``F.linear``."""
    op = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return False
    try:
        x, w, b = torch.randn(5, 7), torch.randn(3, 7), torch.randn(3)
        with torch.no_grad():
            ok = torch.allclose(op(x, w, b, "relu", [], ""), F.relu(F.linear(x, w, b)), atol=1e-5)
    except (RuntimeError, TypeError):
        return False
    return bool(ok)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, relu: bool = False
           ) -> torch.Tensor:
    """``x (N, C_in) @ weight (C_out, C_in)^T + bias``, then ReLU when ``relu``: oneDNN's GEMM when
    :func:`available`, else ``F.linear``."""
    if available():
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "relu" if relu else "none", [], "")
    y = F.linear(x, weight, bias)
    return F.relu_(y) if relu else y


def winograd_weights(weight: torch.Tensor) -> torch.Tensor:
    """``G W``: a kernel-3 conv1d weight ``(C_out, C_in, 3)`` -> ``(6, C_out, C_in)`` float32 (computed in float64)."""
    out = weight.new_empty((len(_G), *weight.shape[:2]))
    for o, g in zip(out, _G):  # one (C_out, C_in) matrix at a time: little memory beside the result
        o.copy_(sum(gk * weight[..., k].double() for k, gk in enumerate(g) if gk))
    return out


def block(h: torch.Tensor, gw: torch.Tensor, bias: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, dilation: int,
          tiles: int, offset: int, rows: int = 1024) -> torch.Tensor:
    """One TCN residual block in eval mode on time-major rows, BatchNorm folded:
    ``h[:, offset + t] + relu(W1 relu(conv1d(h, W, bias, dilation)[t]) + b1)`` for ``t < 4 * dilation * tiles``.

    ``h (B, R, C)`` contiguous with ``R >= 4 * dilation * tiles + 2 * dilation`` and ``R >= offset + 4 *
    dilation * tiles`` frames; ``gw``: :func:`winograd_weights` of ``W``; ``w1 (C, C)``, ``b1``: the 1x1
    convolution. Returns ``(B, 4 * dilation * tiles, C)``: output ``t`` reads frames ``t, t + d, t + 2d``
    (outputs past the ones a caller needs are computed from whatever frames follow; they never mix into
    earlier outputs). The work runs in slices of about ``rows`` rows per matrix product, so besides
    ``h`` and the result only a few slice-sized buffers are alive (and stay in cache).
    """
    b, r = h.shape[:2]
    d, per = dilation, TILE * dilation
    if r < per * tiles + 2 * d or r < offset + per * tiles or not h.is_contiguous():
        raise ValueError(f"winograd.block: {r} frames, need {max(per * tiles + 2 * d, offset + per * tiles)} "
                         "contiguous ones")
    out = torch.empty((b, per * tiles, w1.shape[0]), dtype=h.dtype, device=h.device)
    step = max(1, rows // (b * d))
    for k0 in range(0, tiles, step):
        k = min(step, tiles - k0)
        y = _conv3_relu(h, gw, bias, d, k0, k)
        z = linear(y.view(-1, y.shape[-1]), w1, b1, relu=True).view(b, per * k, -1)
        torch.add(z, h[:, offset + per * k0: offset + per * (k0 + k)], out=out[:, per * k0: per * (k0 + k)])
    return out


def _conv3_relu(h: torch.Tensor, gw: torch.Tensor, bias: torch.Tensor, d: int, k0: int, k: int) -> torch.Tensor:
    """``relu(conv1d(h, W, bias, d))`` for tiles ``k0 .. k0 + k - 1`` (outputs ``4 d k0 .. 4 d (k0 + k) - 1``) of
    ``h (B, R, C)`` by Winograd F(4, 3): ``(B, 4 d k, C_out)``."""
    b, r, c = h.shape
    shape, stride = (b, k, d, c), (r * c, TILE * d * c, c, 1)
    x = [h.as_strided(shape, stride, h.storage_offset() + (TILE * k0 + j) * d * c) for j in range(TILE + 2)]
    # B^T x in factored form (15 passes instead of 22)
    t = [torch.empty(shape, dtype=h.dtype, device=h.device) for _ in range(TILE + 2)]
    p, q = t[3], t[4]
    torch.sub(x[4], x[2], out=p)  # p = x4 - x2
    torch.sub(x[3], x[1], out=q)  # q = x3 - x1
    torch.add(p, x[0], alpha=4, out=t[0]).add_(x[2], alpha=-4)  # 4 x0 - 5 x2 + x4
    torch.sub(x[5], x[3], out=t[5]).add_(q, alpha=-4)  # 4 x1 - 5 x3 + x5
    torch.add(x[3], x[4], out=t[1]).add_(x[1], alpha=-4).add_(x[2], alpha=-4)  # -4 x1 - 4 x2 + x3 + x4
    torch.sub(x[4], x[3], out=t[2]).add_(x[1], alpha=4).add_(x[2], alpha=-4)  # 4 x1 - 4 x2 - x3 + x4
    p.add_(q, alpha=2)  # t3 = -2 x1 - x2 + 2 x3 + x4
    q.mul_(-4).add_(p)  # t4 = t3 - 4 q = 2 x1 - x2 - 2 x3 + x4
    # every output has coefficient 1 on m1: the bias goes there
    m = [linear(ti.view(-1, c), gw[i], bias if i == 1 else None).view(*shape[:3], -1) for i, ti in enumerate(t)]
    del t, p, q
    co = m[0].shape[-1]
    y = torch.empty((b, k, TILE, d, co), dtype=h.dtype, device=h.device)
    y0, y1, y2, y3 = (y[:, :, j] for j in range(TILE))
    # A^T m in factored form: y0 = m0 + s12 + s34, y1 = d12 + 2 d34, y2 = s12 + 4 s34, y3 = d12 + 8 d34 + m5
    torch.sub(m[1], m[2], out=y1)  # d12
    m[1].add_(m[2])  # s12
    torch.sub(m[3], m[4], out=m[2])  # d34
    m[3].add_(m[4])  # s34
    torch.add(m[1], m[3], alpha=4, out=y2)
    torch.add(m[5], y1, out=y3).add_(m[2], alpha=8)
    y1.add_(m[2], alpha=2)
    torch.add(m[1], m[3], out=y0).add_(m[0])
    return F.relu_(y.view(b, k * TILE * d, co))
