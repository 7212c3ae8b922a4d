"""Issue 18: eval's per-frame predictions (and the matrix's), the `Lifter` Python API on arrays (equal to eval's
predictions), shareable lifters (save_pretrained / from_pretrained, `export --hf`, a hub id offline), and
TensorBoard logging with and without the package."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from _train_fixtures import TINY, add_uadd, moving_poseset, tiny_config, write_config
from auglift import Lifter
from auglift.cli import main
from auglift.depth.uadd import DescriptorSpec
from auglift.errors import ConfigError, DataError
from auglift.evaluate import evaluate
from auglift.matrix import run_matrix
from auglift.poseset import PoseSet
from auglift.predictions import Predictions
from auglift.train import train

DEPTH = {"name": "oracle", "kind": "metric", "descriptor": DescriptorSpec().to_dict()}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lifter")
    add_uadd(moving_poseset(4, [30, 9, 25, 14], seed=3), depth_model=DEPTH).save(root / "ps")
    out = {"root": root, "ps": root / "ps"}
    for name, kw in (("m2o", {"window": 5, "width": 32}), ("m2m", {"window": 8, "width": 32, "many_to_many": True})):
        sec = tiny_config(root / "ps", None, root / name, model=TINY, kwargs=kw, epochs=1, batch=16)
        out[name] = train(write_config(root / f"{name}.toml", sec))
    return out


def _clip_arrays(ps: PoseSet, clip: int) -> dict[str, np.ndarray]:
    rows = np.flatnonzero(np.asarray(ps.clip) == clip)
    return {"kp2d": np.asarray(ps.kp2d[rows]), "conf": np.asarray(ps.conf[rows]), "uadd": np.asarray(ps.uadd[rows])}


def test_eval_save_predictions_round_trips_and_opens_in_the_viewer(run, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["eval", str(run["m2o"]), "--data", str(run["ps"]), "--split", "test", "--out", str(out),
                 "--save-predictions"]) == 0
    ev = json.loads((out / "eval.json").read_text())["datasets"][0]
    path = Path(ev["predictions"])
    assert path == out / "ps.predictions.npz"
    p = Predictions.load(path)
    ps = PoseSet.load(run["ps"])
    rows = ps.rows_of(ps.clips.mask(split="test"))
    assert len(p) == ev["frames"] == len(rows)
    np.testing.assert_array_equal(p.frame, ps.frame[rows])
    assert list(p.clips.subject[p.clip]) == list(ps.clips.subject[ps.clip[rows]])
    np.testing.assert_allclose(p.pred[:, 0], 0.0, atol=1e-7)  # root-relative
    np.testing.assert_allclose(p.gt, ps.kp3d[rows] - ps.kp3d[rows][:, :1], atol=1e-6)
    assert np.nanmean(p.errors) == pytest.approx(ev["metrics"]["mpjpe"], rel=1e-4)  # mm, per joint
    p.save(tmp_path / "again.npz")
    q = Predictions.load(tmp_path / "again.npz")
    for name in ("pred", "gt", "errors", "clip", "frame", "kp2d", "uadd"):
        np.testing.assert_array_equal(getattr(q, name), getattr(p, name))
    assert main(["view", str(path), "--out", str(tmp_path / "v.html")]) == 0
    html = (tmp_path / "v.html").read_text()
    assert html.lower().startswith("<!doctype html>") and len(html) > 100_000  # three.js and the data inlined
    assert main(["eval", str(run["m2o"]), "--data", str(run["ps"]), "--save-predictions"]) == 2  # where to?
    assert "--save-predictions" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["m2o", "m2m"])
def test_lifter_predict_on_arrays_equals_eval_predictions(run, tmp_path, kind):
    res = evaluate(run[kind], run["ps"], device="cpu", save_predictions=tmp_path / "p.npz")
    p = Predictions.load(res["datasets"][0]["predictions"])
    ps = PoseSet.load(run["ps"])
    lifter = Lifter.from_checkpoint(run[kind], device="cpu", flip_test=True)
    assert len(p.clips) == len(ps.clips)
    for c in range(len(ps.clips)):
        got = lifter.predict(**_clip_arrays(ps, c), image_size=(1000, 1000))
        want = p.pred[p.clip == c][np.argsort(p.frame[p.clip == c])]
        assert got.shape == want.shape == (int((np.asarray(ps.clip) == c).sum()), 17, 3)
        np.testing.assert_allclose(got, want, atol=1e-5)  # metres; batches of another size only
    one = lifter.predict(**{k: v[:1] for k, v in _clip_arrays(ps, 0).items()}, image_size=(1000, 1000))
    assert one.shape == (1, 17, 3) and np.isfinite(one).all()  # a single frame: edge-padded window


def test_lifter_predict_checks_its_arrays(run):
    ps = PoseSet.load(run["ps"])
    a = _clip_arrays(ps, 0)
    lifter = Lifter.from_checkpoint(run["m2o"], device="cpu")
    with pytest.raises(ConfigError, match="uadd"):
        lifter.predict(a["kp2d"], a["conf"], image_size=(1000, 1000))
    with pytest.raises(ConfigError, match="kp2d"):
        lifter.predict(a["kp2d"][:, :16], a["conf"], a["uadd"], image_size=(1000, 1000))
    with pytest.raises(ConfigError, match="conf"):
        lifter.predict(a["kp2d"], a["conf"][:-1], a["uadd"], image_size=(1000, 1000))
    with pytest.raises(ConfigError, match="image_size"):
        lifter.predict(a["kp2d"], a["conf"], a["uadd"], image_size=(0, 1000))


def test_save_pretrained_then_from_pretrained_predicts_identically(run, tmp_path, capsys):
    ps = PoseSet.load(run["ps"])
    a = _clip_arrays(ps, 2)
    ev = evaluate(run["m2m"], run["ps"], device="cpu", out=tmp_path / "ev")
    lifter = Lifter.from_checkpoint(run["m2m"], device="cpu")
    d = lifter.save_pretrained(tmp_path / "hf", metrics=ev)
    assert sorted(f.name for f in d.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["model"]["receptive_field"] == 8 and cfg["encoder"]["channels"] == list(lifter.checkpoint.encoder
                                                                                          .channels)
    assert cfg["depth_model"]["descriptor"] == DescriptorSpec().to_dict()
    card = (d / "README.md").read_text()
    assert "## Training data" in card and f"{ev['datasets'][0]['metrics']['mpjpe']:.1f}" in card
    back = Lifter.from_pretrained(d, device="cpu")
    assert back.checkpoint.provenance.descriptor == DescriptorSpec()
    np.testing.assert_array_equal(back.predict(**a, image_size=(1000, 1000)),
                                  lifter.predict(**a, image_size=(1000, 1000)))
    # the CLI: export --hf, then eval reads the directory like a checkpoint
    assert main(["export", str(run["m2m"]), "--hf", str(tmp_path / "cli"), "--metrics",
                 str(tmp_path / "ev" / "eval.json")]) == 0
    res = evaluate(tmp_path / "cli", run["ps"], device="cpu")
    assert res["datasets"][0]["metrics"]["mpjpe"] == pytest.approx(ev["datasets"][0]["metrics"]["mpjpe"], rel=1e-6)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ConfigError, match="not an auglift"):
        lifter.save_pretrained(tmp_path / "other")  # a directory we did not write is left alone


def test_unreadable_weights_with_an_empty_error_message_are_one_line(run, tmp_path, monkeypatch):
    st = pytest.importorskip("safetensors.torch")
    d = Lifter.from_checkpoint(run["m2m"], device="cpu").save_pretrained(tmp_path / "hf")

    def load(data: bytes) -> None:
        raise RuntimeError("")  # some readers raise without a message

    monkeypatch.setattr(st, "load", load)
    with pytest.raises(DataError, match=r"model\.safetensors.*cannot read safetensors weights \(RuntimeError\)"):
        Lifter.from_pretrained(d, device="cpu")


def test_hub_id_offline_is_one_clear_line(tmp_path, monkeypatch, capsys):
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # read by huggingface_hub at import: set its constants too
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    assert main(["eval", "nobody/no-such-lifter", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("auglift: error: nobody/no-such-lifter: ")
    assert "offline" in lines[0] and "Traceback" not in err


def test_matrix_saves_predictions_per_cell_when_asked(run, tmp_path):
    cfg = {"matrix": {"out": str(tmp_path / "m"), "lifters": ["simple_baseline"], "inputs": ["uadd"],
                      "baseline": "uadd"},
           "train_sets": {"lab": {"path": str(run["ps"]), "split": "train"}},
           "test_sets": {"lab": {"path": str(run["ps"]), "split": "test"}},
           "train": {"optim": {"epochs": 1, "batch_size": 32}, "runtime": {"progress": False, "log": False}},
           "lifters": {"simple_baseline": {"model": {"kwargs": {"width": 32, "num_blocks": 1}}}}}
    res = run_matrix(cfg, progress=False, log=lambda m: None)
    cell = tmp_path / "m/cells/lab/simple_baseline/uadd"
    assert not (cell / "predictions_lab.npz").exists()
    cfg["matrix"]["save_predictions"] = True
    logs: list[str] = []
    again = run_matrix(cfg, progress=False, log=logs.append)  # reused, not retrained: evaluated again
    assert any("reuse" in m for m in logs) and again["cells"] == res["cells"]
    p = Predictions.load(cell / "predictions_lab.npz")
    assert len(p) == res["cells"][0]["frames"]
    assert np.nanmean(p.errors) == pytest.approx(res["cells"][0]["mpjpe"], rel=1e-4)


@pytest.mark.parametrize("installed", [True, False])
def test_tensorboard_event_files_or_a_line_saying_why_not(tmp_path, monkeypatch, capsys, installed):
    if installed:
        pytest.importorskip("tensorboard")
    else:
        monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails: not installed
    add_uadd(moving_poseset(2, 12, seed=1)).save(tmp_path / "ps")
    sec = tiny_config(tmp_path / "ps", None, tmp_path / "run", epochs=1, batch=16)
    train(write_config(tmp_path / "c.toml", sec))
    summary = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (tmp_path / "run" / "history.csv").is_file()
    events = list((tmp_path / "run").glob("tb/events.out.tfevents.*"))
    if installed:
        assert events and events[0].stat().st_size > 0 and summary["tensorboard"].endswith("tb")
    else:
        assert not events and summary["tensorboard"] is None
        assert "tensorboard" in capsys.readouterr().err.lower()
