"""Original checkpoints: parity with the original code, the original file layouts, and clear errors."""

from __future__ import annotations

import json
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from auglift.errors import ConfigError, DataError
from auglift.models import build, load_official
from auglift.models.official import infer_config, read_checkpoint

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def one_thread():
    """Small models run several times faster on one thread than on two contended cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _fixture(name: str) -> tuple[OrderedDict[str, torch.Tensor], dict[str, np.ndarray], dict]:
    with np.load(DATA / f"parity_{name}.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    state = OrderedDict((k[len("state/"):], torch.from_numpy(v)) for k, v in arrays.items() if k.startswith("state/"))
    return state, arrays, json.loads(str(arrays["config"]))


def _save_training_checkpoint(path: Path, state: dict[str, torch.Tensor], *, dataparallel: bool,
                              container: str = "model_pos", legacy: bool = False, **extra) -> Path:
    """Write ``state`` the way the original training scripts do (epoch, lr, optimizer, NumPy RNG state, weights)."""
    if dataparallel:
        state = OrderedDict(("module." + k, v) for k, v in state.items())
    params = [torch.nn.Parameter(v.clone()) for v in state.values() if v.dtype.is_floating_point]
    opt = torch.optim.Adam(params, lr=1e-3)
    torch.save({"epoch": 80, "lr": 1.2e-5, "random_state": np.random.RandomState(7).get_state(),
                "optimizer": opt.state_dict(), container: state, **extra},
               path, _use_new_zipfile_serialization=not legacy)
    return path


def test_tcn_parity_with_videopose3d(tmp_path):
    """The fixture ``parity_tcn.npz`` was made outside this project with VideoPose3D's own ``common/model.py``.

    A ``TemporalModel(17, 2, 17, filter_widths=[3, 3, 3], channels=16)`` was built, every weight,
    bias and BatchNorm statistic perturbed with seeded random noise, and its ``state_dict()``
    stored as flat arrays (``state/<key>``, the original key names). Random inputs were run
    through it in eval mode: a 31-frame sequence (``x_long`` -> ``y_long``, 5 outputs), the same
    with ``causal=True`` (``y_long_causal``) and a 27-frame window through
    ``TemporalModelOptimized1f`` loaded with the same weights (``x_window`` -> ``y_window_opt1f``).
    """
    state, a, cfg = _fixture("tcn")
    ck = _save_training_checkpoint(tmp_path / "epoch_80.bin", state, dataparallel=False)
    model = load_official("tcn", ck)
    assert model.filter_widths == cfg["filter_widths"] and not model.training
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(a["x_long"])).numpy(), a["y_long"], atol=1e-5)
        np.testing.assert_allclose(model(torch.from_numpy(a["x_window"])).numpy(), a["y_window_opt1f"], atol=1e-5)
        causal = load_official("tcn", ck, causal=True)
        np.testing.assert_allclose(causal(torch.from_numpy(a["x_long"])).numpy(), a["y_long_causal"], atol=1e-5)


def test_poseformer_parity_with_original(tmp_path):
    """The fixture ``parity_poseformer.npz`` was made outside this project with PoseFormer's own model code.

    The original file is ``common/model_poseformer.py`` (its ``timm`` imports were served by a
    minimal stand-in providing ``DropPath``, which is the identity in eval mode). A
    ``PoseTransformer(num_frame=9, num_joints=5, in_chans=2, embed_dim_ratio=4, depth=2,
    num_heads=2, mlp_ratio=2, qkv_bias=True)`` had every tensor perturbed with seeded random
    noise (so the zero-initialised position embeddings matter); its ``state_dict()`` is stored as
    ``state/<key>`` and its eval-mode output ``y`` for the random input ``x`` (2, 9, 5, 2).
    PoseFormer's ``run_poseformer.py`` saves from ``nn.DataParallel``, hence the ``module.`` prefixes below.
    """
    state, a, cfg = _fixture("poseformer")
    ck = _save_training_checkpoint(tmp_path / "detected81f.bin", state, dataparallel=True)
    model = load_official("poseformer", ck, num_heads=cfg["num_heads"])
    assert (model.receptive_field, model.num_joints) == (cfg["num_frame"], cfg["num_joints"])
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(a["x"])).numpy(), a["y"], atol=1e-5)


def test_motionbert_parity_with_original(tmp_path):
    """The fixture ``parity_motionbert.npz`` was made outside this project with MotionBERT's ``lib/model/DSTformer.py``.

    The model was built by MotionBERT's ``load_backbone`` (LayerNorm eps 1e-6, attention fusion)
    with ``dim_feat=8, dim_rep=8, depth=2, num_heads=2, mlp_ratio=2, maxlen=9, num_joints=17``;
    every tensor was perturbed with seeded random noise, the ``state_dict()`` stored as
    ``state/<key>``, and eval-mode outputs recorded for a full window ``x`` (2, 9, 17, 3) -> ``y``
    and a shorter one ``x_short`` (2, 6, 17, 3) -> ``y_short``. MotionBERT's ``train.py`` saves
    ``model_pos`` from ``nn.DataParallel`` (``module.`` prefixes) next to a NumPy ``min_loss``.
    """
    state, a, cfg = _fixture("motionbert")
    ck = tmp_path / "best_epoch.bin"
    sd = OrderedDict(("module." + k, v) for k, v in state.items())
    torch.save({"epoch": 60, "lr": 1e-4, "model_pos": sd, "min_loss": np.float64(39.8)}, ck)
    model = load_official("motionbert", ck, num_heads=cfg["num_heads"])
    assert model.receptive_field == cfg["maxlen"] and model.many_to_many
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(a["x"])).numpy(), a["y"], atol=1e-5)
        np.testing.assert_allclose(model(torch.from_numpy(a["x_short"])).numpy(), a["y_short"], atol=1e-5)


def test_fixtures_are_small_and_pickle_free():
    for f in DATA.glob("parity_*.npz"):
        assert f.stat().st_size < 200_000
        with np.load(f, allow_pickle=False) as z:
            assert all(z[k].dtype != object for k in z.files)


SMALL = {
    "tcn": (2, {"receptive_field": 27, "channels": 16}),
    "poseformer": (2, {"receptive_field": 9, "embed_dim_ratio": 4, "depth": 2, "num_heads": 2}),
    "motionbert": (3, {"receptive_field": 9, "dim_feat": 8, "dim_rep": 8, "depth": 2, "num_heads": 2}),
}


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("layout", ["plain", "dataparallel", "legacy"])
def test_state_dict_in_official_layout_loads_and_runs(tmp_path, name, layout):
    c_in, cfg = SMALL[name]
    torch.manual_seed(1)
    src = build(name, c_in, **cfg).eval()
    ck = _save_training_checkpoint(tmp_path / "ck.bin", src.state_dict(), dataparallel=layout == "dataparallel",
                                   legacy=layout == "legacy", model_traj=OrderedDict(w=torch.zeros(2)))
    heads = {"num_heads": cfg["num_heads"]} if "num_heads" in cfg else {}
    model = load_official(name, ck, **heads)
    t = model.receptive_field
    x = torch.randn(2, t, 17, c_in)
    with torch.no_grad():
        torch.testing.assert_close(model(x), src(x))
    inferred = infer_config(name, read_checkpoint(ck))
    assert inferred == infer_config(name, src.state_dict())
    assert inferred["in_channels"] == c_in and inferred["num_joints"] == 17


def test_old_videopose3d_checkpoint_without_num_batches_tracked(tmp_path):
    torch.manual_seed(2)
    src = build("tcn", 2, receptive_field=27, channels=16).eval()
    state = OrderedDict((k, v) for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked"))
    ck = _save_training_checkpoint(tmp_path / "pretrained_h36m_cpn.bin", state, dataparallel=False, legacy=True)
    model = load_official("tcn", ck)
    x = torch.randn(1, 40, 17, 2)
    with torch.no_grad():
        torch.testing.assert_close(model(x), src(x))


def test_motionbert_model_container_and_nested_backbone(tmp_path):
    c_in, cfg = SMALL["motionbert"]
    src = build("motionbert", c_in, **cfg).eval()
    nested = OrderedDict(("module.backbone." + k, v) for k, v in src.state_dict().items())
    nested["module.head.fc1.weight"] = torch.zeros(4, 8)  # the action/mesh head is not part of the lifter
    ck = tmp_path / "action.bin"
    torch.save({"epoch": 1, "model": nested}, ck)
    model = load_official("motionbert", ck, num_heads=2)
    x = torch.randn(1, 9, 17, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x), src(x))


def test_motionbert_without_pre_logits_loads(tmp_path):
    """dim_rep = 0 (no motion-representation layer, the head reads the features) is inferred and accepted."""
    c_in, cfg = SMALL["motionbert"]
    src = build("motionbert", c_in, **{**cfg, "dim_rep": 0}).eval()
    assert not any(k.startswith("pre_logits") for k in src.state_dict())
    ck = tmp_path / "no_rep.bin"
    torch.save({"model_pos": src.state_dict()}, ck)
    model = load_official("motionbert", ck, num_heads=2)
    x = torch.randn(1, 9, 17, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x), src(x))
    with pytest.raises(ConfigError, match=r"model\.kwargs\.dim_rep: expected an integer >= 0"):
        build("motionbert", c_in, **{**cfg, "dim_rep": -1})


def test_lite_size_pins_width(tmp_path):
    src = build("motionbert", 3, size="lite", depth=1, receptive_field=9, dim_rep=8)
    ck = tmp_path / "lite.bin"
    torch.save({"model_pos": src.state_dict()}, ck)
    assert load_official("motionbert", ck, size="lite").blocks_st[0].mlp_s.fc1.out_features == 1024
    with pytest.raises(DataError, match=r"joints_embed\.weight.*expected shape \(512, 3\)"):
        load_official("motionbert", ck, size="full")


def test_wrong_input_size_is_a_clear_error(tmp_path):
    src = build("tcn", 2, receptive_field=27, channels=16)
    ck = _save_training_checkpoint(tmp_path / "vp3d.bin", src.state_dict(), dataparallel=False)
    with pytest.raises(DataError) as e:
        load_official("tcn", ck, in_channels=6)
    msg = str(e.value)
    assert str(ck) in msg and "expand_conv.weight" in msg and "in_channels=6" in msg
    assert "(16, 102, 3)" in msg and "(16, 34, 3)" in msg and "takes 2 channels per joint" in msg
    # a checkpoint built for 6 channels loads without being told
    wide = build("tcn", 6, receptive_field=27, channels=16)
    ck6 = _save_training_checkpoint(tmp_path / "uadd.bin", wide.state_dict(), dataparallel=False)
    assert load_official("tcn", ck6).in_channels == 6


@pytest.mark.parametrize("name", sorted(SMALL))
def test_missing_or_unexpected_key_is_a_clear_error(tmp_path, name):
    c_in, cfg = SMALL[name]
    state = build(name, c_in, **cfg).state_dict()
    heads = {"num_heads": cfg["num_heads"]} if "num_heads" in cfg else {}
    victim = [k for k in state if k.endswith("weight")][-1]
    missing = OrderedDict((k, v) for k, v in state.items() if k != victim)
    ck = _save_training_checkpoint(tmp_path / "missing.bin", missing, dataparallel=True)
    with pytest.raises(DataError, match=rf"missing\.bin: {victim}: missing from the checkpoint"):
        load_official(name, ck, **heads)
    extra = OrderedDict(state)
    extra["bogus.weight"] = torch.zeros(3)
    ck = _save_training_checkpoint(tmp_path / "extra.bin", extra, dataparallel=False)
    with pytest.raises(DataError, match=r"extra\.bin: bogus\.weight: unexpected key"):
        load_official(name, ck, **heads)


def test_wrong_lifter_is_named(tmp_path):
    c_in, cfg = SMALL["motionbert"]
    ck = _save_training_checkpoint(tmp_path / "mb.bin", build("motionbert", c_in, **cfg).state_dict(),
                                   dataparallel=True)
    with pytest.raises(DataError, match="looks like a motionbert checkpoint, not tcn"):
        load_official("tcn", ck)
    with pytest.raises(ConfigError, match="supported"):
        load_official("simple_baseline", ck)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        load_official("motionbert", ck, num_heads=2, widht=3)


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_unreadable_and_hostile_files(tmp_path, capsys):
    with pytest.raises(DataError, match="not found"):
        load_official("tcn", tmp_path / "nope.bin")
    raw = tmp_path / "exploit.pkl"
    raw.write_bytes(pickle.dumps({"model_pos": _Exploit()}, protocol=2))
    torch_file = tmp_path / "exploit.bin"
    torch.save({"model_pos": {"w": _Exploit()}}, torch_file)
    for f in (raw, torch_file):
        with pytest.raises(DataError, match=r"refused to unpickle.*weights_only=True") as e:
            load_official("tcn", f)
        assert str(f) in str(e.value)
    assert "pwned" not in capsys.readouterr().out
    good = _save_training_checkpoint(tmp_path / "good.bin", build("tcn", 2, receptive_field=1, channels=8).state_dict(),
                                     dataparallel=False)
    cut = tmp_path / "truncated.bin"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(DataError, match="truncated.bin: not a readable PyTorch checkpoint"):
        load_official("tcn", cut)
    junk = tmp_path / "junk.bin"
    torch.save({"epoch": 3, "weights": [1, 2]}, junk)
    with pytest.raises(DataError, match="expected a state dict under 'model_pos'"):
        load_official("tcn", junk)
    bad = tmp_path / "bad.bin"
    torch.save({"model_pos": {"expand_conv.weight": 3}}, bad)
    with pytest.raises(DataError, match="expand_conv.weight: expected a tensor"):
        load_official("tcn", bad)
