"""The TCN's whole-clip evaluation path (Winograd F(4, 3) on time-major rows, oneDNN GEMM) against its
convolutions, and the model building and heap helpers that evaluation uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from auglift.checkpoint import Checkpoint
from auglift.heap import reuse_freed_memory
from auglift.metrics import breakdown
from auglift.models import winograd
from auglift.models.tcn import TCN


def _tcn(widths: list[int], causal: bool, channels: int = 24) -> TCN:
    torch.manual_seed(1)
    model = TCN(in_channels=2, filter_widths=widths, channels=channels, causal=causal)
    for bn in (model.expand_bn, *model.layers_bn):
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("widths", [[3, 3], [3, 3, 3], [1], [5, 3]])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("frames", [0, 1, 7, 40, 113])
def test_rows_path_equals_convolutions(widths, causal, frames):
    model = _tcn(widths, causal)
    x = torch.randn(3, model.receptive_field + frames, 17, 2)
    with torch.inference_mode():
        assert model._rows_ok(x) == winograd.available()
        fast = model(x)
        conv = model._forward_dilated(x.reshape(3, x.shape[1], -1).transpose(1, 2)).transpose(1, 2)
    assert fast.shape == (3, frames + 1, 17, 3)
    np.testing.assert_allclose(fast.reshape(3, frames + 1, -1).numpy(), conv.numpy(), atol=2e-5, rtol=1e-4)


def test_rows_path_only_for_plain_float32_inference():
    model = _tcn([3, 3], False)
    x = torch.randn(2, 30, 17, 2)
    assert not model._rows_ok(x)  # autograd on: the convolutions
    with torch.no_grad():
        bad = x.clone()
        bad[0, 3, 2, 0] = float("nan")
        assert not model._rows_ok(bad)  # a Winograd tile would spread the NaN to frames that never read it
        assert not model._rows_ok(x.double())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not model._rows_ok(x)
        model.train()
        assert not model._rows_ok(x)


def test_cached_weights_follow_the_parameters():
    model = _tcn([3, 3], False)
    x = torch.randn(1, 40, 17, 2)
    with torch.no_grad():
        before = model(x)
        model.layers_conv[0].weight.mul_(0.5)  # an in-place change (as an optimiser step) invalidates the cache
        after = model(x)
        conv = model._forward_dilated(x.reshape(1, 40, -1).transpose(1, 2)).transpose(1, 2)
    assert not torch.allclose(before, after)
    np.testing.assert_allclose(after.reshape(1, 32, -1).numpy(), conv.numpy(), atol=2e-5, rtol=1e-4)


def test_linear_and_winograd_weights():
    x, w, b = torch.randn(9, 16), torch.randn(5, 16), torch.randn(5)
    torch.testing.assert_close(winograd.linear(x, w, b, relu=True), F.relu(F.linear(x, w, b)), atol=1e-5, rtol=1e-5)
    gw = winograd.winograd_weights(torch.randn(4, 3, 3))
    assert gw.shape == (6, 4, 3) and gw.dtype == torch.float32
    with pytest.raises(ValueError, match="frames"):
        winograd.block(torch.randn(1, 10, 4), gw, torch.zeros(4), torch.eye(4), torch.zeros(4), 3, 2, 3)


def test_heap_context_is_reentrant_and_harmless():
    with reuse_freed_memory(), reuse_freed_memory(limit_mib=64):
        a = torch.empty(3 << 20)
        del a
    assert torch.ones(4).sum() == 4


def test_build_model_shares_the_checkpoint_weights():
    ck = Checkpoint.load(Path(__file__).parent / "data" / "legacy" / "tcn3_uadd_bbox_df7b230_best.pt")
    model = ck.build_model()
    state = model.state_dict()
    assert not model.training and not any(t.is_meta for t in state.values())
    assert all(t.data_ptr() == ck.weights[k].data_ptr() for k, t in state.items())  # no copy of the weights
    assert all(p.requires_grad for p in model.parameters())


def test_breakdown_per_frame_labels_skip_fully_masked_groups():
    err = np.arange(12, dtype=np.float64).reshape(4, 3)
    mask = np.ones((4, 3), bool)
    mask[3] = False  # every joint of the only "c" frame masked out: no "c" group, as with per-joint labels
    out = breakdown(err, np.array(["a", "b", "a", "c"]), mask)
    assert out == breakdown(err, np.broadcast_to(np.array(["a", "b", "a", "c"])[:, None], (4, 3)), mask)
    assert out == {"a": (4.0, 6), "b": (4.0, 3)}
