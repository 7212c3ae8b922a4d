"""The typed checkpoint: files written by earlier auglift versions load and evaluate to the numbers those
versions computed; the on-disk layout round-trips; migration of older layouts; typed config and descriptor spec.

``tests/data/legacy/`` holds tiny checkpoints trained (2 epochs on 2 x 24 synthetic frames) by the code of
commit f2915b8 (the layout before checkpoints recorded the training set's depth model) and of df7b230 (the
layout of the refactor's base), and a 32-frame PoseSet. ``expected.json`` is what df7b230's
``evaluate``/``infer.depth_settings`` computed for each on that PoseSet.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from _train_fixtures import add_uadd, moving_poseset
from auglift.checkpoint import Checkpoint, LifterSpec
from auglift.config import TrainConfig, load_config
from auglift.depth.uadd import PAPER_DESCRIPTOR, RESEARCH_STATS, DescriptorSpec, ScaleAdaptiveRadius
from auglift.errors import ConfigError, DataError
from auglift.evaluate import evaluate
from auglift.infer import depth_settings

LEGACY = Path(__file__).parent / "data" / "legacy"
EXPECTED = json.loads((LEGACY / "expected.json").read_text())
FILES = sorted(EXPECTED)


def assert_same_numbers(got, want, where: str = "") -> None:
    """Nested dicts/lists equal in structure and strings, floats equal to 1e-6 relative."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), where
        for k in want:
            assert_same_numbers(got[k], want[k], f"{where}/{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_numbers(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9), where
    else:
        assert got == want, where


@pytest.mark.parametrize("name", FILES)
def test_checkpoints_of_earlier_versions_evaluate_to_the_same_numbers(name):
    want = EXPECTED[name]
    ck = Checkpoint.load(LEGACY / name)
    got = evaluate(ck, LEGACY / "eval_poseset", device="cpu")
    got.pop("checkpoint")
    got["datasets"][0].pop("path")
    got["datasets"][0].pop("per_clip")  # added since: per-clip error sums (the matrix's bootstrap intervals)
    # every metric, per action, per joint and occlusion bucket: the same to 1e-6 relative (float32
    # convolutions and P-MPJPE's float64 SVD differ in the last bits between CPUs; anything the code
    # changes moves far more)
    assert_same_numbers(got, want["evaluate"])
    off = evaluate(ck, LEGACY / "eval_poseset", flip_test=False, device="cpu")["datasets"][0]["metrics"]["mpjpe"]
    assert off == pytest.approx(want["no_flip_mpjpe"], rel=1e-6)
    s = depth_settings(ck)
    assert s.descriptor.to_dict() == want["descriptor"]
    assert (s.options_from, s.kind, ck.epoch) == (want["descriptor_source"], want["depth_kind"], want["epoch"])


@pytest.mark.parametrize("name", FILES)
def test_layout_round_trips(name, tmp_path):
    raw = torch.load(LEGACY / name, weights_only=True)
    ck = Checkpoint.load(LEGACY / name)
    assert (ck.training is not None) == name.endswith("_last.pt")
    back = torch.load(ck.save(tmp_path / name), weights_only=True)
    assert set(back) == set(raw) | {"depth_model"}  # older layouts gain the (migrated) depth model
    for key in ("model", "encoder", "history", "best", "epoch", "global_step", "joint_set", "format", "version"):
        assert back[key] == raw[key], key
    assert back["model_state"].keys() == raw["model_state"].keys()
    assert all(torch.equal(back["model_state"][k], v) for k, v in raw["model_state"].items())
    # the config gains the keys added since, at their defaults; nothing else changes
    old, new = TrainConfig.from_mapping(raw["config"]).flat(), TrainConfig.from_mapping(back["config"]).flat()
    assert old == new
    if "optimizer_state" in raw:
        assert back["rng"]["torch"][0].equal(raw["rng"]["torch"][0]) and back["accum"] == raw["accum"]
    assert Checkpoint.load(tmp_path / name).encoder == ck.encoder


def test_an_old_layout_reads_the_depth_model_of_its_training_set(tmp_path):
    """Checkpoints written before they recorded the depth model: the training PoseSet's meta.json says it."""
    raw = torch.load(LEGACY / "simple_baseline_uadd_f2915b8_best.pt", weights_only=True)
    assert "depth_model" not in raw
    assert Checkpoint.from_dict(raw).provenance.recorded_in == "none recorded"  # its training set is gone
    spec = DescriptorSpec(ScaleAdaptiveRadius(k=0.05), RESEARCH_STATS, "fast", 33)
    dm = {"name": "da2", "kind": "metric", "descriptor": spec.to_dict()}
    add_uadd(moving_poseset(2, 8), depth_model=dm).save(tmp_path / "train")
    raw["config"]["data"]["train"]["path"] = str(tmp_path / "train")
    prov = Checkpoint.from_dict(raw).provenance
    assert (prov.recorded_in, prov.depth_model, prov.descriptor) == ("training set meta.json", dm, spec)
    assert depth_settings(Checkpoint.from_dict(raw)).descriptor == spec


def test_load_errors_name_the_file_and_the_field(tmp_path):
    raw = torch.load(LEGACY / "tcn3_uadd_bbox_df7b230_best.pt", weights_only=True)
    cases = {
        "config.pt": (raw | {"config": raw["config"] | {"optim": {"learning_rate": 1}}}, "config"),
        "descriptor.pt": (raw | {"depth_model": {"descriptor": {"radius": {"rule": "cubic"}}}},
                          "depth_model.descriptor"),
        "anchor.pt": (raw | {"model": raw["model"] | {"anchor": "middle"}}, "model.anchor"),
        "encoder.pt": (raw | {"encoder": raw["encoder"] | {"depth_clip": -1.0}}, "encoder"),
    }
    for fname, (bad, field) in cases.items():
        torch.save(bad, tmp_path / fname)
        with pytest.raises(DataError) as info:
            Checkpoint.load(tmp_path / fname)
        assert info.value.field == field and fname in str(info.value), str(info.value)


def test_checkpoint_is_frozen_and_builds_its_lifter(tmp_path):
    ck = Checkpoint.load(LEGACY / "tcn3_uadd_bbox_df7b230_best.pt")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ck.epoch = 3  # type: ignore[misc]
    assert isinstance(ck.lifter, LifterSpec) and ck.lifter.frames_out == 1 and ck.lifter.receptive_field == 3
    model = ck.build_model()
    assert not model.training and all(torch.equal(p, ck.weights[k]) for k, p in model.state_dict().items())
    shutil.copy(LEGACY / "tcn3_uadd_bbox_df7b230_best.pt", tmp_path / "x.pt")
    assert Checkpoint.load(tmp_path / "x.pt").path == tmp_path / "x.pt"


def test_descriptor_spec_is_the_one_place_for_descriptor_defaults():
    d = DescriptorSpec()
    assert d.to_dict() == {"radius": {"t_min": 0.03, "t_max": 0.3, "fallback_px": 100.0, "floor_px": 1.0, "pelvis": 0,
                                      "thorax": 8, "rule": "torso_linear"},
                           "stats": {"center": "median", "low": 0.0, "high": 1.0}, "mode": "exact",
                           "radius_units": "torso lengths"}
    assert PAPER_DESCRIPTOR.to_dict() == {"radius": {"r_min": 3.0, "r_max": 30.0, "rule": "linear"},
                                          "stats": {"center": "median", "low": 0.0, "high": 1.0}, "mode": "exact",
                                          "radius_units": "px of the original image"}
    fast = DescriptorSpec(mode="fast")
    assert fast.to_dict()["pattern"] == {"kind": "sunflower", "points": 97, "read": "nearest pixel", "rim_points": 32}
    assert DescriptorSpec.from_dict(fast.to_dict()) == fast and DescriptorSpec.from_dict(d.to_dict()) == d
    # a spec recorded by the earlier bilinear fast sampler reads back as such and round-trips unchanged
    legacy = fast.to_dict() | {"pattern": {"kind": "sunflower", "points": 97}}
    assert DescriptorSpec.from_dict(legacy).read == "bilinear" and DescriptorSpec.from_dict(legacy).to_dict() == legacy
    for bad in ({"radius": {"rule": "cubic"}, "stats": {}}, {"stats": {}}, {"radius": {}, "stats": {"low": 2}}):
        with pytest.raises(ConfigError, match="descriptor|radius|stats"):
            DescriptorSpec.from_dict(bad)
    with pytest.raises(ConfigError, match="mode"):
        DescriptorSpec(mode="slow")  # type: ignore[arg-type]


def test_typed_config_parses_once_and_names_file_and_key(tmp_path):
    cfg = load_config({"optim": {"lr": 0.01}, "model": {"name": "tcn", "kwargs": {"channels": 8}},
                       "data": {"train": {"subjects": ["S1"]}}, "_source": "c.toml"})
    assert cfg.optim.lr == 0.01 and cfg.model.kwargs == {"channels": 8} and cfg.data.train.subjects == ("S1",)
    assert cfg.source == "c.toml" and cfg.to_dict()["data"]["train"]["subjects"] == ["S1"]
    assert TrainConfig.from_mapping(cfg.to_dict()) == cfg.with_source("<config>")  # the stored form round-trips
    over = cfg.with_override("model.kwargs.dropout=0.5").with_override("data.val.split='test'")
    assert over.model.kwargs == {"channels": 8, "dropout": 0.5} and over.data.val.split == "test"
    with pytest.raises(ConfigError, match=r"c\.toml: data\.train\.subjects: expected a list of strings"):
        load_config({"data": {"train": {"subjects": [1]}}, "_source": "c.toml"})
    with pytest.raises(ConfigError, match=r"--set augment\.flip=2: augment\.flip: expected bool, got 2"):
        cfg.with_override("augment.flip=2")
    with pytest.raises(ConfigError, match=r"--set runtime\.seeds=1: runtime\.seeds: unknown key \(did you mean"):
        cfg.with_override("runtime.seeds=1")
