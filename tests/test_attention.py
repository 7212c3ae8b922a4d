"""The transformers' attention: bf16 training on CPU takes the math backend, everything else is unchanged."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from auglift.models import build, layers

FLASH = "_scaled_dot_product_flash_attention_for_cpu"


class Ops(TorchDispatchMode):
    """Records the name of every aten op that runs."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.__name__.split(".")[0])
        return func(*args, **(kwargs or {}))


def default_sdpa(q, k, v, dropout_p=0.0):
    return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)


def run(module: torch.nn.Module, x: torch.Tensor, amp: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(output in float32, gradients of every parameter) of one forward + backward."""
    module.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out = module(x)
    out.float().square().mean().backward()
    return out.detach().float(), [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("seq_axis", [-2, -3])
def test_float32_is_bitwise_the_default_sdpa(monkeypatch, seq_axis):
    torch.manual_seed(0)
    attn = layers.Attention(64, num_heads=8, seq_axis=seq_axis)
    x = torch.randn(3, 27, 17, 64)
    out, grads = run(attn, x, amp=False)
    with Ops() as ops:
        attn(x).sum().backward()
    assert FLASH in ops.names  # float32 keeps PyTorch's own choice
    monkeypatch.setattr(layers, "attention", default_sdpa)
    ref, ref_grads = run(attn, x, amp=False)
    assert torch.equal(out, ref)
    assert all(torch.equal(g, r) for g, r in zip(grads, ref_grads))


@pytest.mark.parametrize("seq_axis", [-2, -3])
def test_bf16_training_takes_the_math_path_and_matches_the_default(monkeypatch, seq_axis):
    torch.manual_seed(0)
    attn = layers.Attention(64, num_heads=8, seq_axis=seq_axis)
    x = torch.randn(3, 27, 17, 64)
    with Ops() as ops, torch.autocast("cpu", dtype=torch.bfloat16):
        attn(x).float().sum().backward()
    assert FLASH not in ops.names
    out, grads = run(attn, x, amp=True)
    monkeypatch.setattr(layers, "attention", default_sdpa)
    ref, ref_grads = run(attn, x, amp=True)
    scale = ref.abs().max()
    assert (out - ref).abs().max() <= 2e-2 * scale  # bfloat16 keeps 8 bits: 4e-3 relative a rounding
    for g, r in zip(grads, ref_grads):
        assert (g - r).abs().max() <= 3e-2 * r.abs().max() + 1e-6


@pytest.mark.parametrize("name", ["poseformer", "motionbert"])
def test_bf16_evaluation_keeps_the_flash_kernel(name):
    cfg = {"poseformer": {"receptive_field": 9, "embed_dim_ratio": 8, "depth": 2, "num_heads": 2},
           "motionbert": {"receptive_field": 9, "dim_feat": 32, "mlp_ratio": 2, "dim_rep": 32, "depth": 2,
                          "num_heads": 4}}[name]
    torch.manual_seed(0)
    model = build(name, 2, **cfg).eval()
    x = torch.randn(2, 9, 17, 2)
    # no_grad, not inference_mode: the dispatch mode would see the op before it picks a kernel there;
    # both give tensors without gradients, the one condition attention() looks at
    with Ops() as ops, torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(x)
    assert FLASH in ops.names
    model.train()
    with Ops() as ops, torch.autocast("cpu", dtype=torch.bfloat16):
        model(x).float().sum().backward()
    assert FLASH not in ops.names
