"""Depth estimators: the transformers path on a tiny random Depth Anything V2 saved with
``save_pretrained``, official ``.pth`` state dicts (key layout, mapping, parity with a functional
re-implementation of the official forward pass), preprocessing as the official code does it, and
the oracle's dispatch. No downloads: everything is built in temporary directories, offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _depth_fixtures import (
    TINY,
    official_forward,
    official_state_dict,
    tiny_transformers_model,
)
from auglift.depth import estimators
from auglift.depth.estimators import (
    DepthAnythingV2,
    OracleEstimator,
    input_size_for,
    load_estimator,
    official_to_transformers,
)
from auglift.errors import ConfigError, DataError
from auglift.poseset import ClipTable, PoseSet


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No downloads: HF_HUB_OFFLINE=1 (also patched where huggingface_hub has already read it)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True, raising=False)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_da2")
    tiny_transformers_model("relative").save_pretrained(d / "relative")
    tiny_transformers_model("metric", max_depth=20, seed=1).save_pretrained(d / "metric")
    return d


def images(b: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(xx / 7 + k) * np.cos(yy / 5 - k) for k in range(3)], -1)
    return np.clip(base[None] + rng.normal(0, 20, (b, h, w, 3)), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- preprocessing
def test_input_size_follows_the_official_lower_bound_rule():
    assert input_size_for(1000, 1000) == (518, 518)
    assert input_size_for(1080, 1920) == (518, 924)  # 518 * 1920 / 1080 = 920.9 -> 924 (66 x 14)
    assert input_size_for(1920, 1080) == (924, 518)  # portrait (3DPW phones)
    assert input_size_for(240, 320) == (518, 686)  # upscaled: the short side still becomes 518
    assert input_size_for(500, 510) == (518, 532)  # 528.4 rounds to 532
    assert input_size_for(37, 50, 56) == (56, 70)
    for h, w in ((1000, 1002), (719, 1280), (300, 299)):
        th, tw = input_size_for(h, w)
        assert th % 14 == 0 and tw % 14 == 0 and min(th, tw) == 518 and max(th, tw) >= 518


def official_preprocess(img_rgb: np.ndarray, size: int) -> torch.Tensor:
    """The official ``image2tensor`` steps with OpenCV (float image in [0, 1], INTER_CUBIC)."""
    import cv2

    h, w = img_rgb.shape[:2]
    th, tw = input_size_for(h, w, size)
    x = cv2.resize(img_rgb / 255.0, (tw, th), interpolation=cv2.INTER_CUBIC)
    x = (x - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    return torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32))


def test_transformers_model_from_save_pretrained_predicts_like_the_official_pipeline(tiny_dir):
    est = DepthAnythingV2.from_pretrained(tiny_dir / "relative", input_size=56, device="cpu")
    assert est.kind == "relative" and est.max_depth is None
    imgs = images(3, 37, 50)
    out = est.predict(imgs)
    assert out.shape == (3, 37, 50) and out.dtype == np.float32 and np.isfinite(out).all()
    assert out.std() > 0
    model = tiny_transformers_model("relative")  # same seed: the same weights as saved
    for i in range(3):
        with torch.no_grad():
            pred = model(pixel_values=official_preprocess(imgs[i], 56)).predicted_depth
        ref = F.interpolate(pred[:, None], (37, 50), mode="bilinear", align_corners=True)[0, 0].numpy()
        np.testing.assert_allclose(out[i], ref, rtol=2e-3, atol=2e-3 * np.abs(ref).mean())
    # batched equals one image at a time; max_batch splits big batches
    single = np.concatenate([est.predict(imgs[i:i + 1]) for i in range(3)])
    np.testing.assert_allclose(out, single, rtol=1e-5, atol=1e-5)
    est.max_batch = 2
    np.testing.assert_allclose(est.predict(imgs), out, rtol=1e-5, atol=1e-5)
    ident = est.identity()
    assert ident["kind"] == "relative" and ident["family"] == "depth-anything-v2" and ident["input_size"] == 56
    assert ident["source"] == "relative" and len(ident["weights_sha256"]) == 64
    assert ident["dtype"] == "float32"


def test_metric_model_is_bounded_by_max_depth_and_reports_it(tiny_dir):
    est = load_estimator(str(tiny_dir / "metric"), input_size=56, device="cpu")
    assert isinstance(est, DepthAnythingV2)
    assert est.kind == "metric" and est.max_depth == 20.0
    out = est.predict(images(2, 30, 44))
    assert out.shape == (2, 30, 44) and (out > 0).all() and (out < 20).all()
    assert est.identity()["max_depth"] == 20.0 and est.identity()["units"] == "m"


def test_bfloat16_weights_give_float32_maps_close_to_float32(tiny_dir):
    e32 = DepthAnythingV2.from_pretrained(tiny_dir / "metric", input_size=56, device="cpu", dtype="float32")
    e16 = DepthAnythingV2.from_pretrained(tiny_dir / "metric", input_size=56, device="cpu", dtype="bfloat16")
    imgs = images(2, 28, 28, seed=3)
    a, b = e32.predict(imgs), e16.predict(imgs)
    assert b.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=0.05, atol=0.05 * np.abs(a).mean())
    assert e16.identity()["dtype"] == "bfloat16" and e16.identity() != e32.identity()


def test_predict_rejects_bad_images(tiny_dir):
    est = DepthAnythingV2.from_pretrained(tiny_dir / "relative", input_size=56, device="cpu")
    with pytest.raises(DataError, match="uint8"):
        est.predict(np.zeros((1, 20, 20, 3), np.float32))
    with pytest.raises(DataError, match=r"\(B, H, W, 3\)"):
        est.predict(np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ConfigError):
        DepthAnythingV2(tiny_transformers_model(), input_size=50)
    with pytest.raises(ConfigError):
        DepthAnythingV2(tiny_transformers_model(), dtype="int8")


def test_unknown_hub_id_offline_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="local Hugging Face cache|cannot load"):
        load_estimator("no-such-org/no-such-depth-model-xyz", device="cpu")
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(DataError, match=r"\.pth checkpoint"):
        load_estimator(str(bad))


# ----------------------------------------------------------------------------- official checkpoints
OFFICIAL_KEYS = [  # names read from the official depth_anything_v2/{dpt,dinov2}.py and util/blocks.py
    "pretrained.cls_token", "pretrained.pos_embed", "pretrained.mask_token", "pretrained.patch_embed.proj.weight",
    "pretrained.blocks.0.norm1.weight", "pretrained.blocks.0.attn.qkv.weight", "pretrained.blocks.0.attn.qkv.bias",
    "pretrained.blocks.0.attn.proj.weight", "pretrained.blocks.0.ls1.gamma", "pretrained.blocks.0.mlp.fc1.weight",
    "pretrained.blocks.3.mlp.fc2.bias", "pretrained.blocks.3.ls2.gamma", "pretrained.norm.bias",
    "depth_head.projects.0.weight", "depth_head.resize_layers.0.weight", "depth_head.resize_layers.1.bias",
    "depth_head.resize_layers.3.weight", "depth_head.scratch.layer1_rn.weight", "depth_head.scratch.layer4_rn.weight",
    "depth_head.scratch.refinenet1.out_conv.weight", "depth_head.scratch.refinenet4.resConfUnit1.conv1.weight",
    "depth_head.scratch.refinenet2.resConfUnit2.conv2.bias", "depth_head.scratch.output_conv1.weight",
    "depth_head.scratch.output_conv2.0.weight", "depth_head.scratch.output_conv2.2.weight",
    "depth_head.scratch.output_conv2.2.bias",
]


def test_official_fixture_has_the_official_key_layout():
    sd = official_state_dict()
    for k in OFFICIAL_KEYS:
        assert k in sd, k
    assert "depth_head.resize_layers.2.weight" not in sd  # Identity in the official head
    assert "depth_head.scratch.layer1_rn.bias" not in sd  # bias=False in _make_scratch
    assert sd["pretrained.blocks.0.attn.qkv.weight"].shape == (3 * TINY["hidden"], TINY["hidden"])
    assert sd["pretrained.mask_token"].shape == (1, TINY["hidden"])
    assert sd["depth_head.resize_layers.0.weight"].shape[2:] == (4, 4)  # ConvTranspose2d k=4 s=4
    assert sd["depth_head.scratch.output_conv2.2.weight"].shape == (1, 32, 1, 1)


@pytest.mark.parametrize("metric", [False, True])
def test_official_checkpoint_loads_and_matches_the_official_forward(tmp_path, metric):
    sd = official_state_dict(seed=1 + metric)
    name = "depth_anything_v2_metric_hypersim_tiny.pth" if metric else "depth_anything_v2_tiny.pth"
    torch.save(sd, tmp_path / name)
    est = DepthAnythingV2.from_official(tmp_path / name, num_heads=TINY["heads"], layer_indices=TINY["blocks"],
                                        input_size=56, device="cpu")
    assert est.kind == ("metric" if metric else "relative")
    assert est.max_depth == (20.0 if metric else None)  # "hypersim" in the name: indoor, 20 m
    x = torch.randn(2, 3, 56, 56, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = est.model(pixel_values=x).predicted_depth
    ref = official_forward(sd, x, heads=TINY["heads"], blocks=TINY["blocks"], metric=metric, max_depth=20.0)
    assert ref.abs().mean() > 0.1  # a non-degenerate output
    # two float32 implementations (transformers vs the official layout): on this CPU up to 9e-4 apart on
    # metric outputs of up to 20 m; a wrong key mapping moves outputs by the output's own scale
    torch.testing.assert_close(ours, ref, rtol=1e-3, atol=3e-3)
    ident = est.identity()
    assert ident["source"] == name and len(ident["weights_sha256"]) == 64


def test_official_mapping_splits_qkv_and_reverses_the_refinenets():
    sd = official_state_dict()
    model = tiny_transformers_model()
    mapped = official_to_transformers(sd, model.state_dict().keys())
    assert set(mapped) == set(model.state_dict())  # every parameter, nothing extra
    h = TINY["hidden"]
    qkv = sd["pretrained.blocks.2.attn.qkv.weight"]
    names = ("q_proj", "k_proj", "v_proj") if "backbone.encoder.layer.0.attention.q_proj.weight" in mapped else \
        ("attention.query", "attention.key", "attention.value")
    for j, n in enumerate(names):
        assert torch.equal(mapped[f"backbone.encoder.layer.2.attention.{n}.weight"], qkv[j * h:(j + 1) * h])
    for i in range(1, 5):
        assert torch.equal(mapped[f"neck.fusion_stage.layers.{4 - i}.projection.weight"],
                           sd[f"depth_head.scratch.refinenet{i}.out_conv.weight"])
    assert torch.equal(mapped["head.conv3.weight"], sd["depth_head.scratch.output_conv2.2.weight"])
    assert torch.equal(mapped["neck.convs.3.weight"], sd["depth_head.scratch.layer4_rn.weight"])
    assert torch.equal(mapped["backbone.embeddings.position_embeddings"], sd["pretrained.pos_embed"])
    # the older transformers naming scheme is produced when the target model uses it
    old_keys = {k.replace("attention.q_proj", "attention.attention.query").replace(
        "attention.k_proj", "attention.attention.key").replace("attention.v_proj", "attention.attention.value")
        .replace("attention.o_proj", "attention.output.dense") for k in model.state_dict()}
    old = official_to_transformers(sd, old_keys)
    assert torch.equal(old["backbone.encoder.layer.0.attention.attention.value.bias"],
                       sd["pretrained.blocks.0.attn.qkv.bias"][2 * h:])
    assert torch.equal(old["backbone.encoder.layer.1.attention.output.dense.weight"],
                       sd["pretrained.blocks.1.attn.proj.weight"])


def test_official_checkpoint_errors_are_clear(tmp_path):
    sd = official_state_dict()
    bad = dict(sd)
    bad["depth_head.readout_projects.0.0.weight"] = torch.zeros(1)
    torch.save(bad, tmp_path / "extra.pth")
    with pytest.raises(DataError, match="unexpected key 'depth_head.readout_projects"):
        DepthAnythingV2.from_official(tmp_path / "extra.pth", num_heads=2, layer_indices=[0, 1, 2, 3])
    missing = {k: v for k, v in sd.items() if not k.startswith("depth_head.scratch.refinenet3.")}
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(DataError, match="missing weights"):
        DepthAnythingV2.from_official(tmp_path / "missing.pth", num_heads=2, layer_indices=[0, 1, 2, 3])
    torch.save(sd, tmp_path / "depth_anything_v2_metric_custom.pth")
    with pytest.raises(ConfigError, match="max_depth"):
        DepthAnythingV2.from_official(tmp_path / "depth_anything_v2_metric_custom.pth", num_heads=2,
                                      layer_indices=[0, 1, 2, 3])
    with pytest.raises(ConfigError, match="max_depth must be a positive"):
        DepthAnythingV2.from_official(tmp_path / "depth_anything_v2_metric_custom.pth", num_heads=2,
                                      layer_indices=[0, 1, 2, 3], max_depth=float("nan"))
    torch.save(sd, tmp_path / "plain.pth")
    with pytest.raises(ConfigError, match="num_heads"):
        DepthAnythingV2.from_official(tmp_path / "plain.pth")
    with pytest.raises(DataError, match="encoder vits"):
        DepthAnythingV2.from_official(tmp_path / "plain.pth", encoder="vits")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot read"):
        DepthAnythingV2.from_official(tmp_path / "junk.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(DataError, match="state dict"):
        DepthAnythingV2.from_official(tmp_path / "list.pth")
    with pytest.raises(DataError, match="not found"):
        DepthAnythingV2.from_official(tmp_path / "absent.pth")


def test_load_estimator_reads_official_files_by_suffix(tmp_path):
    torch.save(official_state_dict(), tmp_path / "depth_anything_v2_metric_vkitti_tiny.pth")
    with pytest.raises(ConfigError, match="num_heads"):  # the factory reaches the official loader
        load_estimator(str(tmp_path / "depth_anything_v2_metric_vkitti_tiny.pth"))


# ----------------------------------------------------------------------------- oracle
def synthetic_poseset(sources: list[str]) -> PoseSet:
    n = 4 * len(sources)
    clip = np.repeat(np.arange(len(sources)), 4).astype(np.int32)
    fields = {"clip": clip, "frame": np.tile(np.arange(4), len(sources)).astype(np.int32),
              "kp2d": np.full((n, 17, 2), 10.0, np.float32), "conf": np.ones((n, 17), np.float32)}
    k = len(sources)
    clips = ClipTable(subject=["S1"] * k, action=["walk"] * k, camera=["c0"] * k, split=["test"] * k,
                      width=[80] * k, height=[60] * k, intrinsics=np.tile([50.0, 50, 40, 30], (k, 1)), source=sources)
    return PoseSet(fields, clips, {"source": "synthetic"})


def test_oracle_dispatches_synthetic_clips_to_render_depth(monkeypatch):
    calls = []

    def render_depth(ps, rows, *, size=None, flavour="metric", **kw):
        calls.append((np.asarray(rows).tolist(), size, flavour, kw))
        h, w = size or (30, 40)
        return np.stack([np.full((h, w), 2.0 + r, np.float32) for r in rows])

    monkeypatch.setattr(estimators, "render_depth", render_depth)
    ps = synthetic_poseset(["synthetic:lab:seed=1:clip=0", "synthetic:lab:seed=1:clip=1"])
    est = load_estimator("oracle:relative", oracle_size=(15, 20))
    assert isinstance(est, OracleEstimator) and est.kind == "relative" and not est.needs_frames
    maps = est.predict_rows(ps, np.array([1, 5]))
    assert maps.shape == (2, 15, 20) and maps.dtype == torch.float32
    assert float(maps[1, 0, 0]) == 7.0
    assert calls == [([1, 5], (15, 20), "relative", {})]
    assert est.identity() == {"name": "oracle-relative", "kind": "relative", "family": "oracle",
                              "flavour": "relative", "units": "relative disparity", "size": [15, 20]}
    assert load_estimator("oracle").kind == "metric" and load_estimator("oracle:true").kind == "metric"
    with pytest.raises(ConfigError, match="takes no images"):
        est.predict(np.zeros((1, 4, 4, 3), np.uint8))
    mixed = synthetic_poseset(["synthetic:lab:seed=1:clip=0", "videos/real.mp4"])
    with pytest.raises(DataError, match=r"clip 1 \(S1/walk/c0\).*synthetic"):
        est.predict_rows(mixed, np.array([0, 5]))
    with pytest.raises(ConfigError, match="flavour"):
        OracleEstimator("sharp")


@pytest.mark.parametrize("size", [128, (128,), (0, 5), (1.5, 2), "64x64", (True, 3)])
def test_oracle_size_must_be_a_pair(size):
    from auglift.depth.estimators import OracleEstimator
    from auglift.errors import ConfigError

    with pytest.raises(ConfigError, match="oracle size must be"):
        OracleEstimator(size=size)
    assert OracleEstimator(size=(96, 64)).size == (96, 64)
