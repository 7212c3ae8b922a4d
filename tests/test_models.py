"""Lifter architectures: published parameter counts, the forward contract, input-layer-only widening, overfitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from auglift.errors import ConfigError
from auglift.geometry import project
from auglift.metrics import mpjpe
from auglift.models import MODELS, build
from auglift.models.layers import Dropout
from auglift.models.official import INPUT_LAYER
from auglift.models.tcn import filter_widths_for

INPUT = {**INPUT_LAYER, "simple_baseline": "input.0.weight"}

# Small configurations (fast on 2 CPU cores) of every lifter.
TINY: dict[str, dict] = {
    "simple_baseline": {"width": 64, "num_blocks": 2, "dropout": 0.0},
    "tcn": {"receptive_field": 9, "filter_widths": [3, 3], "channels": 64, "dropout": 0.0},
    "poseformer": {"receptive_field": 9, "embed_dim_ratio": 8, "depth": 2, "num_heads": 2, "drop_path_rate": 0.0},
    "motionbert": {"receptive_field": 9, "dim_feat": 32, "mlp_ratio": 2, "dim_rep": 32, "depth": 2, "num_heads": 4},
}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run several times faster on one thread than on two contended cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "in_channels", "config", "expected"), [
    # VideoPose3D TemporalModel(17, 2, 17, widths, channels=1024), counted with the original code
    ("tcn", 2, {"receptive_field": 1}, 89_139),
    ("tcn", 2, {"receptive_field": 27}, 8_555_571),
    ("tcn", 2, {"receptive_field": 81}, 12_753_971),
    ("tcn", 2, {"receptive_field": 243}, 16_952_371),  # the paper's 16.95 M
    # PoseFormer PoseTransformer(num_frame, 17, 2, embed_dim_ratio=32, depth=4, heads 8, mlp 2), original code
    ("poseformer", 2, {"receptive_field": 9}, 9_563_645),
    ("poseformer", 2, {"receptive_field": 27}, 9_573_455),
    ("poseformer", 2, {"receptive_field": 81}, 9_602_885),  # the paper's 9.6 M
    # MotionBERT DSTformer via load_backbone with MB_ft_h36m / MB_lite configs, original code
    ("motionbert", 3, {"size": "full"}, 42_466_317),  # the paper's 42.3 M class
    ("motionbert", 3, {"size": "lite"}, 16_001_549),  # the paper's 16 M
    # Martinez LinearModel: 16 joints in/out as the TensorFlow original, and our 17-joint variant
    ("simple_baseline", 2, {"num_joints": 16}, 4_291_632),
    ("simple_baseline", 2, {}, 4_296_755),
])
def test_published_parameter_counts(name, in_channels, config, expected):
    with torch.device("meta"):
        model = build(name, in_channels, **config)
    assert count(model) == expected


def test_registry_and_errors():
    assert set(MODELS) >= {"simple_baseline", "tcn", "poseformer", "motionbert"}
    with pytest.raises(KeyError, match="known"):
        build("nope", 2)
    with pytest.raises(TypeError):
        build("tcn", 2, widht=3)
    with pytest.raises(ConfigError, match="power of 3"):
        build("tcn", 2, receptive_field=30)
    with pytest.raises(ConfigError, match="odd"):
        build("tcn", 2, filter_widths=[3, 2])
    with pytest.raises(ConfigError, match="receptive field of 9 frames"):
        build("tcn", 2, filter_widths=[3, 3], receptive_field=27)
    assert build("tcn", 2, filter_widths=[5, 3], channels=8).receptive_field == 15
    with pytest.raises(ConfigError, match="size"):
        build("motionbert", 3, size="huge")
    assert filter_widths_for(243) == [3, 3, 3, 3, 3] and filter_widths_for(1) == [1]


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("c_in", [2, 6])
def test_forward_contract(name, c_in):
    torch.manual_seed(0)
    model = build(name, c_in, **TINY[name]).eval()
    rf = model.receptive_field
    t = max(rf, 1)
    x = torch.randn(3, t, 17, c_in)
    y = model(x)
    expected_t = t if model.many_to_many else 1
    assert y.shape == (3, expected_t, 17, 3) and y.dtype == torch.float32
    assert isinstance(model.causal, bool) and isinstance(model.many_to_many, bool)
    with pytest.raises(ValueError, match=name):
        model(torch.randn(3, t, 16, c_in))
    with pytest.raises(ValueError, match=name):
        model(torch.randn(3, t, 17, c_in + 1))


def test_window_lengths():
    torch.manual_seed(0)
    tcn = build("tcn", 2, **TINY["tcn"]).eval()
    assert (tcn.receptive_field, tcn.many_to_many, tcn.causal) == (9, False, False)
    assert tcn(torch.randn(2, 20, 17, 2)).shape == (2, 12, 17, 3)  # T - rf + 1 outputs over a long clip
    with pytest.raises(ValueError, match="shorter"):
        tcn(torch.randn(2, 8, 17, 2))
    assert build("tcn", 2, causal=True, **TINY["tcn"]).causal is True
    mb = build("motionbert", 3, **TINY["motionbert"]).eval()
    assert mb(torch.randn(2, 5, 17, 3)).shape == (2, 5, 17, 3)  # any T <= maxlen
    assert mb(torch.randn(2, 5, 17, 3), return_rep=True).shape == (2, 5, 17, 32)
    with pytest.raises(ValueError, match="longer"):
        mb(torch.randn(2, 10, 17, 3))
    pf = build("poseformer", 2, **TINY["poseformer"]).eval()
    with pytest.raises(ValueError, match="9 frames"):
        pf(torch.randn(2, 8, 17, 2))
    sb = build("simple_baseline", 2, **TINY["simple_baseline"]).eval()
    x = torch.randn(2, 5, 17, 2)
    assert torch.equal(sb(x), sb(x[:, 2:3]))  # only the centre frame is used


@settings(max_examples=15, deadline=None)
@given(widths=st.lists(st.sampled_from([1, 3, 5]), min_size=1, max_size=3), causal=st.booleans(),
       extra=st.integers(0, 6), batch=st.integers(1, 3))
def test_tcn_paths_agree_for_any_filter_widths(widths, causal, extra, batch):
    """Any odd widths: ``T - rf + 1`` outputs; each output is the strided path's result on its own window."""
    torch.manual_seed(0)
    model = build("tcn", 2, filter_widths=widths, channels=8, causal=causal).eval()
    rf = model.receptive_field
    x = torch.randn(batch, rf + extra, 17, 2)
    with torch.no_grad():
        long = model(x)
        assert long.shape == (batch, extra + 1, 17, 3)
        for i in (0, extra):
            torch.testing.assert_close(long[:, i:i + 1], model(x[:, i:i + rf]), atol=1e-5, rtol=1e-4)


def test_tcn_strided_path_equals_dilated_path_in_eval():
    torch.manual_seed(0)
    model = build("tcn", 2, receptive_field=27, channels=32).eval()
    x = torch.randn(4, 27, 17, 2)
    y_strided = model(x)
    model.strided = False
    torch.testing.assert_close(model(x), y_strided, atol=1e-5, rtol=1e-5)
    model.set_bn_momentum(0.001)
    assert all(bn.momentum == 0.001 for bn in [model.expand_bn, *model.layers_bn])


@pytest.mark.parametrize("name", sorted(TINY))
def test_wider_input_changes_only_the_input_layer(name):
    base = 3 if name == "motionbert" else 2
    with torch.device("meta"):
        narrow = {k: tuple(v.shape) for k, v in build(name, base, **TINY[name]).state_dict().items()}
        wide = {k: tuple(v.shape) for k, v in build(name, 6, **TINY[name]).state_dict().items()}
    assert narrow.keys() == wide.keys()
    changed = {k for k in narrow if narrow[k] != wide[k]}
    assert changed == {INPUT[name]}
    key = INPUT[name]
    # the input dimension grows from J*base (or base) to J*6 (or 6); the output side is unchanged
    assert wide[key][0] == narrow[key][0]
    assert wide[key][1] * base == narrow[key][1] * 6


def _fixed_batch(n: int, t: int, c_in: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` windows of ``t`` frames: screen-normalised 2D (+ extra noise channels) and root-relative 3D in metres."""
    rng = np.random.default_rng(seed)
    root = np.array([0.0, 0.0, 5.0])
    base = rng.normal(0, 0.25, (n, 1, 17, 3))
    drift = np.cumsum(rng.normal(0, 0.01, (n, t, 17, 3)), axis=1)
    kp3d = base + drift + root
    kp3d[..., 0, :] = root
    intr = np.array([1145.0, 1145.0, 500.0, 500.0])
    kp2d = project(kp3d.reshape(-1, 17, 3), intr).reshape(n, t, 17, 2)
    x = np.concatenate([kp2d / 500.0 - 1.0, rng.uniform(-1, 1, (n, t, 17, c_in - 2))], axis=-1)
    y = kp3d - kp3d[..., :1, :]
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


# (config, samples, steps, learning rate) for the overfitting check
OVERFIT: dict[str, tuple[dict, int, int, float]] = {
    "simple_baseline": (TINY["simple_baseline"], 32, 300, 3e-3),
    "tcn": (TINY["tcn"], 32, 300, 3e-3),
    "poseformer": (TINY["poseformer"], 8, 200, 3e-3),
    "motionbert": ({**TINY["motionbert"], "receptive_field": 5, "depth": 1}, 8, 300, 3e-3),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_each_lifter_overfits_a_fixed_batch(name):
    """Every lifter memorises a small fixed batch of (wide-input) windows: gradients reach every layer."""
    torch.manual_seed(0)
    config, n, steps, lr = OVERFIT[name]
    c_in = 3 if name == "motionbert" else 6
    model = build(name, c_in, **config)
    t = model.receptive_field
    x, y = _fixed_batch(n, t, c_in)
    centre = t - 1 if model.causal else t // 2
    target = y if model.many_to_many else y[:, centre:centre + 1]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()  # dropout and stochastic depth are 0 in these configs: training mode is deterministic
    for _ in range(steps):
        opt.zero_grad()
        loss = (model(x) - target).square().sum(-1).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        fit = model(x).numpy()
        model.eval()
        pred = model(x).numpy()

    def err(p: np.ndarray) -> float:
        return mpjpe(p.reshape(-1, 17, 3), target.numpy().reshape(-1, 17, 3))

    start = err(np.zeros(target.shape, np.float32))
    assert start > 200  # mm: the poses are far from the mean pose
    assert err(fit) < 20, f"{name}: MPJPE {err(fit):.1f} mm after {steps} steps (zero prediction: {start:.1f} mm)"
    # eval mode swaps BatchNorm batch statistics for running ones: close, not identical
    assert err(pred) < 0.2 * start


def test_cpu_dropout_has_the_distribution_of_torch_dropout():
    """layers.Dropout (a mask from random bits on the CPU): zeroes a fraction p, scales the rest by
    1 / (1 - p), masks the gradient alike, is the identity in eval mode and repeats with the seed; the
    masks of different elements are independent (no pattern across the four lanes of a draw)."""
    x = torch.full((400, 500), 2.0, requires_grad=True)
    drop = Dropout(0.25)
    torch.manual_seed(3)
    y = drop(x)
    kept = y != 0
    assert abs(float(kept.float().mean()) - 0.75) < 0.005  # 200,000 draws: sd 0.001
    assert torch.all(y[kept] == 2.0 / 0.75)
    y.sum().backward()
    assert torch.equal(x.grad != 0, kept) and torch.all(x.grad[kept] == 1 / 0.75)
    torch.manual_seed(3)
    assert torch.equal(drop(x.detach()), y.detach())
    drop.eval()
    assert drop(x) is x or torch.equal(drop(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x) and torch.count_nonzero(Dropout(1.0).train()(x)) == 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert abs(float((Dropout(0.5).train()(x.to(torch.bfloat16)) != 0).float().mean()) - 0.5) < 0.005
    lanes = kept.reshape(-1, 4).float()  # the four elements of one 64-bit draw
    assert torch.all((lanes.mean(0) - 0.75).abs() < 0.01)
    pair = (lanes[:, :, None] * lanes[:, None, :]).mean(0)  # P(both kept) = 0.5625 when independent
    assert torch.all((pair - torch.eye(4) * 0.1875 - 0.5625).abs() < 0.01)
    odd = Dropout(0.3).train()(torch.ones(1000, 1000))
    assert abs(float((odd == 0).float().mean()) - 0.3) < 0.003
