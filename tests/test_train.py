"""Training: overfitting, flips, determinism, checkpoints, kill-and-resume, torchrun DDP, config errors, CLI."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _train_fixtures import (
    TINY,
    TINY_MODELS,
    add_uadd,
    moving_poseset,
    repeat_poseset,
    subprocess_env,
    tiny_config,
    write_config,
)
from auglift.batches import shard_batch
from auglift.checkpoint import Checkpoint
from auglift.cli import main
from auglift.config import load_config
from auglift.encoding import encode_arrays, fit, target
from auglift.errors import ConfigError, DataError
from auglift.evaluate import evaluate
from auglift.geometry import project
from auglift.models import MODELS
from auglift.poseset import PoseSet
from auglift.predict import resolve_amp
from auglift.skeleton import get_joint_set
from auglift.train import apply_flips, train

H36M = get_joint_set("h36m17")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train_data")
    add_uadd(moving_poseset(6, 30, seed=1)).save(root / "ps")  # clips alternate train/test
    tiny = add_uadd(moving_poseset(2, 24, seed=2, splits=("train",)), noise=0.0, invalid=0.0)
    repeat_poseset(tiny, 8).save(root / "tiny")  # 48 distinct frames, 8 passes per epoch
    tiny12 = add_uadd(moving_poseset(1, 12, seed=2, splits=("train",)), noise=0.0, invalid=0.0)
    repeat_poseset(tiny12, 8).save(root / "tiny12")
    moving_poseset(4, 20, seed=3).save(root / "no_uadd")
    return root


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model_state"]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- learning
# Every registered lifter with a tiny configuration, plus the test-only temporal model in both modes.
OVERFIT = [(name, TINY_MODELS[name]) for name in sorted(MODELS) if name in TINY_MODELS] + [
    (TINY, {"window": 5, "width": 64}),
    (TINY, {"window": 8, "width": 64, "many_to_many": True}),
]
# (data set, epochs, batch, learning rate, extra kwargs): "tiny" = 48 distinct frames, "tiny12" = 12 frames,
# both repeated 8 times per epoch. SimpleBaseline's BatchNorm wants large batches; the transformers are
# the slowest per step, so they get the 12-frame set. Margin (issue 15: 60.05 mm against the 60 mm bound
# on another CPU): on tiny12 the mean pose already scores 56 mm, and 30 epochs reached 29-38 mm here
# (TCN 35/32, PoseFormer 38/34, MotionBERT 29/36 mm at runtime.threads 1/2), so the temporal lifters
# train 60 epochs: 15 (TCN), 10 (PoseFormer), 18 (MotionBERT; 21 at two threads) mm at one thread, well
# past the bound.
# SimpleBaseline 20 mm, the test-only lifters 15-18 mm.
RECIPE = {
    "simple_baseline": ("tiny", 50, 48, 1e-2, {}),
    "tcn": ("tiny12", 60, 12, 1e-2, {}),
    "poseformer": ("tiny12", 60, 12, 1e-3, {"receptive_field": 5}),
    "motionbert": ("tiny12", 60, 12, 3e-3, {}),
}


@pytest.mark.parametrize(("model", "kwargs"), OVERFIT, ids=lambda v: v if isinstance(v, str) else
                         ("m2m" if v.get("many_to_many") else str(v.get("window", ""))))
def test_each_lifter_overfits_a_tiny_set(data, tmp_path, model, kwargs):
    dset, epochs, batch, lr, more = RECIPE.get(model, ("tiny12", 30, 12, 3e-3, {}))
    extra = {"augment": {"flip": False}, "optim": {"lr_decay": 1.0}, "data.train": {"stride": 1}}
    if kwargs.get("many_to_many") or model == "motionbert":
        extra["loss"] = {"velocity_weight": 1.0}
    sec = tiny_config(data / dset, None, tmp_path / "run", model=model, kwargs=kwargs | more, epochs=epochs,
                      batch=batch, lr=lr, extra=extra)
    best = train(write_config(tmp_path / "c.toml", sec))
    hist = Checkpoint.load(best).history
    res = evaluate(best, [data / dset], flip_test=False, device="cpu")["datasets"][0]["metrics"]
    # predicting zeros scores the mean distance of the joints from the pelvis
    zero = float(np.linalg.norm(target(PoseSet.load(data / dset).kp3d), axis=-1).mean() * 1000)
    assert res["mpjpe"] < min(60.0, 0.15 * zero), (model, res["mpjpe"], zero,
                                                  [round(h["train_mpjpe_mm"]) for h in hist])


def test_flip_augmentation_mirrors_inputs_and_targets_consistently():
    """A flipped training sample equals the sample of the body mirrored in 3D, re-projected."""
    ps = moving_poseset(1, 6, seed=4)
    intr = ps.clips.intrinsics[0]
    kp3 = np.asarray(ps.kp3d, dtype=np.float64)
    perm = H36M.flip_permutation
    mirrored = kp3[:, perm] * np.array([-1.0, 1.0, 1.0])
    state = fit(ps, {"channels": "xyc"})
    conf = np.asarray(ps.conf)
    x = torch.as_tensor(encode_arrays(project(kp3, intr), conf, 1000, 1000, state=state))[:, None]
    y = torch.as_tensor(target(kp3))[:, None]
    m = torch.zeros(6, 1, 17, dtype=torch.bool)
    m[:, :, H36M.index("left_wrist")] = True  # a joint-specific mask must follow its joint
    flip = torch.tensor([True, False, True, False, True, True])
    fx, fy, fm = apply_flips(x, y, m, flip, torch.as_tensor(perm), list(state["channels"]), center="image")
    want_x = encode_arrays(project(mirrored, intr), conf[:, perm], 1000, 1000, state=state)
    np.testing.assert_allclose(fx[flip, 0].numpy(), want_x[flip.numpy()], atol=1e-5)
    np.testing.assert_allclose(fy[flip, 0].numpy(), target(mirrored)[flip.numpy()], atol=1e-6)
    torch.testing.assert_close(fx[~flip], x[~flip])
    torch.testing.assert_close(fy[~flip], y[~flip])
    lw, rw = H36M.index("left_wrist"), H36M.index("right_wrist")
    assert fm[flip][..., rw].all() and not fm[flip][..., lw].any() and fm[~flip][..., lw].all()
    # the 3D left wrist of a flipped sample is the mirrored right wrist; the 2D one likewise (around the root)
    np.testing.assert_allclose(fy[0, 0, lw].numpy(), target(kp3)[0, rw] * [-1, 1, 1], atol=1e-6)
    rx, _, _ = apply_flips(x, y, m, flip, torch.as_tensor(perm), list(state["channels"]), center="root")
    assert torch.allclose(rx[0, 0, lw, 0], 2 * x[0, 0, 0, 0] - x[0, 0, rw, 0])
    assert torch.allclose(rx[0, 0, lw, 1:], x[0, 0, rw, 1:])


def test_deterministic_given_a_seed(data, tmp_path):
    sec = tiny_config(data / "ps", data / "ps", tmp_path / "a", model=TINY, kwargs={"window": 3, "width": 32},
                      epochs=2, batch=8)
    a = train(write_config(tmp_path / "a.toml", sec))
    sec["runtime"]["out"] = str(tmp_path / "b")
    b = train(write_config(tmp_path / "b.toml", sec))
    assert _same(_weights(a), _weights(b))
    sec["runtime"] |= {"out": str(tmp_path / "c"), "seed": 1}
    c = train(write_config(tmp_path / "c.toml", sec))
    assert not _same(_weights(a), _weights(c))


def test_checkpoints_history_and_best_selection(data, tmp_path):
    sec = tiny_config(data / "ps", data / "ps", tmp_path / "run", epochs=4, batch=8, lr=1e-2)
    best = train(write_config(tmp_path / "c.toml", sec))
    assert best == tmp_path / "run" / "best.pt"
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)  # only tensors and plain values
    assert last["format"] == "auglift.checkpoint" and last["epoch"] == 4 and last["step_in_epoch"] == 0
    assert {"model_state", "optimizer_state", "scheduler_state", "rng", "encoder", "config", "history"} <= set(last)
    assert last["encoder"]["channels"] == ["x", "y", "c", "d", "d_min", "d_max"]
    assert last["model"]["in_channels"] == 6 and last["model"]["anchor"] == "center"
    assert last["config"]["model"]["kwargs"] == TINY_MODELS["simple_baseline"]
    rows = list(csv.DictReader(open(tmp_path / "run" / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    vals = [h["val_mpjpe_mm"] for h in last["history"]]
    np.testing.assert_allclose([float(r["val_mpjpe_mm"]) for r in rows], vals, rtol=1e-5)
    b = torch.load(best, weights_only=True)
    assert b["epoch"] == int(np.argmin(vals)) + 1 and "optimizer_state" not in b
    assert b["best"]["val_mpjpe_mm"] == min(vals)
    lrs = [float(r["lr"]) for r in rows]
    np.testing.assert_allclose(lrs, 1e-2 * 0.95 ** np.arange(4), rtol=1e-5)  # exponential decay per epoch
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["timing"]["time_to_first_step_s"] > 0 and run["window"] == 1 and run["best"]["epoch"] == b["epoch"]
    # the validation MPJPE of the last epoch is what evaluate() measures on the same frames (flip test on)
    ev = evaluate(tmp_path / "run" / "last.pt", [data / "ps"], split="test", device="cpu")["datasets"][0]
    assert ev["metrics"]["mpjpe"] == pytest.approx(vals[-1], rel=1e-6)
    assert ev["metrics"]["p_mpjpe"] == pytest.approx(last["history"][-1]["val_p_mpjpe_mm"], rel=1e-6)


def test_amp_bf16_on_cpu_and_fp16_refused(data, tmp_path):
    sec = tiny_config(data / "ps", None, tmp_path / "run", epochs=1, batch=16, extra={"runtime": {"amp": "bf16"}})
    best = train(write_config(tmp_path / "c.toml", sec))
    assert np.isfinite(Checkpoint.load(best).history[0]["train_mpjpe_mm"])
    sec["runtime"] |= {"amp": "fp16", "out": str(tmp_path / "run2")}
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        train(write_config(tmp_path / "d.toml", sec))


def test_amp_auto_records_what_it_chose(data, tmp_path):
    """runtime.amp = "auto" trains in bf16 exactly where the CPU has oneDNN bf16 kernels, and the checkpoint
    records the choice (a resume on a machine that would choose otherwise is refused, like any config change)."""
    sec = tiny_config(data / "ps", None, tmp_path / "run", epochs=1, batch=16, extra={"runtime": {"amp": "auto"}})
    best = train(write_config(tmp_path / "c.toml", sec))
    chosen = "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "none"
    assert resolve_amp("auto", torch.device("cpu")) == chosen and resolve_amp("none", torch.device("cpu")) == "none"
    assert Checkpoint.load(best).config.runtime.amp == chosen
    if chosen == "bf16":  # the same seed in float32 trains to other weights: autocast did run
        sec["runtime"] |= {"amp": "none", "out": str(tmp_path / "fp32")}
        fp32 = Checkpoint.load(train(write_config(tmp_path / "d.toml", sec)))
        assert fp32.history[0]["train_mpjpe_mm"] != Checkpoint.load(best).history[0]["train_mpjpe_mm"]


# --------------------------------------------------------------------------- resume and DDP
def _run_cli(args: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "auglift", *args], env=subprocess_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_kill_and_resume_gives_bit_identical_weights(data, tmp_path):
    sec = tiny_config(data / "ps", data / "ps", tmp_path / "unused", model="simple_baseline",
                      kwargs={"width": 256, "num_blocks": 2, "dropout": 0.25}, epochs=6, batch=4,
                      extra={"runtime": {"checkpoint_every": 3}, "data.val": {"max_windows": 30}})
    cfg = write_config(tmp_path / "c.toml", sec)
    killed = tmp_path / "killed"
    total = 6 * (90 // 4)
    for _attempt in range(3):
        proc = _run_cli(["train", str(cfg), "--out", str(killed)])
        while proc.poll() is None and not (killed / "last.pt").exists():
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ck = torch.load(killed / "last.pt", weights_only=True) if (killed / "last.pt").exists() else None
        if proc.returncode == -signal.SIGKILL and ck is not None and ck["global_step"] < total:
            break
        import shutil

        shutil.rmtree(killed, ignore_errors=True)
    else:
        pytest.fail("could not kill the training run in the middle")
    assert ck["global_step"] < total
    done = _run_cli(["train", str(cfg), "--out", str(killed), "--resume"])
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err.decode()
    ref = train(cfg, out=tmp_path / "ref")  # uninterrupted, in this process
    a = torch.load(killed / "last.pt", weights_only=True)
    b = torch.load(ref.parent / "last.pt", weights_only=True)
    assert a["global_step"] == b["global_step"] == total
    assert _same(a["model_state"], b["model_state"])  # bit-identical (dropout and BatchNorm included)
    sa, sb = a["optimizer_state"]["state"], b["optimizer_state"]["state"]
    assert all(torch.equal(sa[k]["exp_avg_sq"], sb[k]["exp_avg_sq"]) for k in sa)
    assert [h["val_mpjpe_mm"] for h in a["history"]] == [h["val_mpjpe_mm"] for h in b["history"]]
    assert out.decode().strip().endswith("best.pt")


def test_torchrun_two_processes_match_single_process(data, tmp_path):
    sec = tiny_config(data / "ps", data / "ps", tmp_path / "single", model=TINY,
                      kwargs={"window": 5, "width": 32}, epochs=2, batch=16, lr=3e-3)
    cfg = write_config(tmp_path / "c.toml", sec)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "auglift",
           "train", str(cfg), "--out", str(tmp_path / "ddp")]
    proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    single = train(cfg)  # meanwhile, the single-process run
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert out.decode().strip().splitlines() == [str(tmp_path / "ddp" / "best.pt")]  # rank 0 prints once
    a = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    b = torch.load(single.parent / "last.pt", weights_only=True)
    assert a["world_size"] == 2 and len(a["rng"]["torch"]) == 2 and a["global_step"] == b["global_step"]
    diff = max(float((a["model_state"][k] - b["model_state"][k]).abs().max()) for k in b["model_state"])
    assert diff < 1e-5, diff  # same trajectory up to float summation order
    for ha, hb in zip(a["history"], b["history"]):
        assert ha["train_mpjpe_mm"] == pytest.approx(hb["train_mpjpe_mm"], rel=1e-4)
        assert ha["val_mpjpe_mm"] == pytest.approx(hb["val_mpjpe_mm"], rel=1e-4)


# --------------------------------------------------------------------------- errors
def test_config_errors_name_the_key_and_file(data, tmp_path):
    sec = tiny_config(data / "ps", None, tmp_path / "run")
    sec["optim"]["learning_rate"] = 0.1
    cfg = write_config(tmp_path / "bad.toml", sec)
    with pytest.raises(ConfigError, match=r"bad\.toml: optim\.learning_rate: unknown key"):
        train(cfg)
    del sec["optim"]["learning_rate"]
    sec["data.train"]["sbujects"] = ["S1"]
    with pytest.raises(ConfigError, match=r"data\.train\.sbujects: unknown key \(did you mean data\.train\.subjects"):
        train(write_config(tmp_path / "bad2.toml", sec))
    del sec["data.train"]["sbujects"]
    good = write_config(tmp_path / "good.toml", sec)
    with pytest.raises(ConfigError, match=r"good\.toml: optim\.epochs: expected int, got 'ten'"):
        train(write_config(tmp_path / "good.toml", sec | {"optim": sec["optim"] | {"epochs": "ten"}}))
    good = write_config(tmp_path / "good.toml", sec)
    with pytest.raises(ConfigError, match=r"--set optim\.lrr=1: optim\.lrr: unknown key"):
        train(good, overrides=["optim.lrr=1"])
    with pytest.raises(ConfigError, match="input.channels: unknown channel 'z'"):
        train(good, overrides=["input.channels='x,y,z'"])
    with pytest.raises(ConfigError, match="input.scale_norm: expected one of none, bbox, dscale2d"):
        train(good, overrides=["input.scale_norm=box"])
    with pytest.raises(ConfigError, match="model.kwargs: .*widht"):
        train(good, overrides=["model.kwargs.widht=3"])
    with pytest.raises(ConfigError, match="model.name: unknown lifter 'mlp'"):
        train(good, overrides=["model.name=mlp"])
    with pytest.raises(ConfigError, match="invalid TOML"):
        (tmp_path / "broken.toml").write_text("[optim\nlr = 1")
        train(tmp_path / "broken.toml")


def test_missing_field_for_the_input_set(data, tmp_path):
    sec = tiny_config(data / "no_uadd", None, tmp_path / "run", channels="xycd")
    with pytest.raises(DataError) as e:
        train(write_config(tmp_path / "c.toml", sec))
    assert e.value.field == "uadd" and str(data / "no_uadd") in str(e.value) and "'xycd'" in str(e.value)
    sec = tiny_config(data / "ps", data / "no_uadd", tmp_path / "run", channels="uadd")
    with pytest.raises(DataError, match=r"no_uadd: uadd: field is missing"):
        train(write_config(tmp_path / "c.toml", sec))


def test_checkpoint_of_another_input_set_is_refused(data, tmp_path):
    sec = tiny_config(data / "ps", None, tmp_path / "xy", channels="xy", epochs=1)
    best = train(write_config(tmp_path / "xy.toml", sec))
    # resuming into a run directory with a different input set
    with pytest.raises(ConfigError, match="trained on input 'xy', the config asks for 'uadd'"):
        train(write_config(tmp_path / "u.toml", tiny_config(data / "ps", None, tmp_path / "xy", epochs=2)),
              resume=True)
    # initialising from it
    with pytest.raises(ConfigError, match=r"trained on input 'xy' \(2 channels\).*'uadd' \(6 channels\)"):
        train(write_config(tmp_path / "u.toml", tiny_config(data / "ps", None, tmp_path / "u", epochs=1)),
              overrides=[f"model.init='{best}'"])
    # evaluating it as if it were another input set
    with pytest.raises(ConfigError, match="trained on input 'xy'.*'x,y,c,d,d_min,d_max' was requested"):
        evaluate(best, [data / "ps"], channels="uadd", device="cpu")
    # a run directory that already holds a checkpoint needs --resume
    with pytest.raises(ConfigError, match="holds a checkpoint of an earlier run"):
        train(write_config(tmp_path / "xy.toml", sec))
    # resume with a changed optimiser setting is refused, with more epochs it continues
    with pytest.raises(ConfigError, match=r"optim\.lr: 0\.003 -> 0\.1"):
        train(tmp_path / "xy.toml", overrides=["optim.lr=0.1"], resume=True)
    train(tmp_path / "xy.toml", overrides=["optim.epochs=2"], resume=True)
    assert Checkpoint.load(tmp_path / "xy" / "last.pt").epoch == 2


def test_cli_train_and_eval(data, tmp_path, capsys):
    sec = tiny_config(data / "ps", data / "ps", tmp_path / "ignored", model=TINY, kwargs={"window": 3, "width": 16},
                      epochs=1, batch=16)
    cfg = write_config(tmp_path / "c.toml", sec)
    assert main(["train", str(cfg), "--out", str(tmp_path / "run"), "--set", "optim.lr=1e-3",
                 "--set", "model.kwargs.width=24"]) == 0
    best = Path(capsys.readouterr().out.strip())
    ck = Checkpoint.load(best)
    assert ck.lifter.kwargs["width"] == 24 and ck.config.optim.lr == 1e-3
    assert main(["eval", str(best), "--data", str(data / "ps"), str(data / "ps"), "--split", "test",
                 "--out", str(tmp_path / "ev")]) == 0
    text = capsys.readouterr().out
    assert "| dataset | frames | MPJPE |" in text and text.count("| ps |") == 2
    res = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert len(res["datasets"]) == 2 and (tmp_path / "ev" / "eval.md").read_text().startswith("# Evaluation")
    sec["optim"]["colour"] = "red"
    bad = write_config(tmp_path / "bad.toml", sec)
    out = subprocess.run([sys.executable, "-m", "auglift", "train", str(bad)], capture_output=True, text=True,
                         env=subprocess_env())
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [f"auglift: error: {bad}: optim.colour: unknown key"]
    assert main(["eval", str(tmp_path / "nope.pt"), "--data", str(data / "ps")]) == 2
    assert "checkpoint file not found" in capsys.readouterr().err


def test_environment_is_restored(data, tmp_path):
    threads = torch.get_num_threads()
    mode = torch.get_deterministic_debug_mode()
    train(write_config(tmp_path / "c.toml", tiny_config(data / "ps", None, tmp_path / "r", epochs=1)))
    assert torch.get_num_threads() == threads and torch.get_deterministic_debug_mode() == mode
    assert os.environ.get("RANK") is None


CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.toml"))


def test_shipped_configs_are_valid():
    """One config per lifter x input set; each loads, names its lifter and input, and builds (when registered)."""
    from auglift.config import load_config
    from auglift.encoding import CHANNEL_SETS, parse_channels
    from auglift.models import build

    names = {p.stem for p in CONFIGS}
    assert names == {f"{m}_{i}" for m in ("simple_baseline", "tcn", "poseformer", "motionbert") for i in CHANNEL_SETS}
    for path in CONFIGS:
        cfg = load_config(path)
        lifter, _, inp = path.stem.rpartition("_")
        assert cfg.model.name == lifter and cfg.input.channels == inp, path
        assert cfg.runtime.out == str(Path("runs") / path.stem)
        assert cfg.data.train.split == "train" and cfg.data.val.split == "test"
        if lifter in MODELS:
            with torch.device("meta"):
                m = build(lifter, len(parse_channels(inp)), 17, **cfg.model.kwargs)
            assert m.receptive_field == {"simple_baseline": 1, "poseformer": 81}.get(lifter, 243)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 500), batch=st.integers(1, 64), world=st.integers(1, 5), data=st.data())
def test_ddp_shards_partition_each_global_batch(n, batch, world, data):
    """Every global batch is split into disjoint per-rank shares whose union is the single-process batch."""
    k = data.draw(st.integers(0, max(0, n // batch - 1)))
    shards = [shard_batch(n, k, batch, r, world) for r in range(world)]
    joined = np.sort(np.concatenate(shards))
    np.testing.assert_array_equal(joined, np.arange(k * batch, min((k + 1) * batch, n)))
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_end_to_end_on_the_synthetic_world(tmp_path):
    """Synthetic world -> UADD from the oracle depth model -> train on lab -> evaluate in and out of domain."""
    from auglift.datasets.synthetic import generate
    from auglift.depth.estimators import OracleEstimator
    from auglift.depth.extract import extract_uadd
    from auglift.depth.uadd import DescriptorSpec

    sets = (("lab", "lab", 3000, 0, "metric"), ("outdoor", "outdoor", 800, 1, "metric"),
            ("outdoor_rel", "outdoor", 300, 2, "relative"))
    for name, domain, frames, seed, flavour in sets:
        generate(domain, frames, seed=seed).save(tmp_path / name)
        extract_uadd(tmp_path / name, OracleEstimator(flavour, size=(96, 96)), descriptor=DescriptorSpec(mode="fast"),
                     every=4, progress=False)
    sec = tiny_config(tmp_path / "lab", tmp_path / "lab", tmp_path / "run", kwargs={"width": 128, "num_blocks": 1,
                      "dropout": 0.0}, epochs=4, batch=64, lr=3e-3,
                      extra={"input": {"scale_norm": "bbox"}, "data.val": {"split": "train", "max_windows": 300}})
    best = train(write_config(tmp_path / "c.toml", sec))
    assert Checkpoint.load(best).encoder.depth_kind == "metric"  # read from meta["depth_model"]["kind"]
    res = evaluate(best, [tmp_path / "lab", tmp_path / "outdoor"], device="cpu", out=tmp_path / "ev")
    for d in res["datasets"]:
        zero = float(np.linalg.norm(target(PoseSet.load(tmp_path / d["name"]).kp3d), axis=-1).mean() * 1000)
        assert all(np.isfinite(v) for v in d["metrics"].values()), d["metrics"]
        assert d["metrics"]["mpjpe"] < 0.6 * zero, (d["name"], d["metrics"]["mpjpe"], zero)
        assert set(d["occlusion"]) == {"visible", "occluded"}
        assert d["depth_model"]["kind"] == "metric"
    assert (tmp_path / "ev" / "eval.md").exists()
    with pytest.raises(DataError, match="outdoor_rel.*relative depth.*fitted on metric"):
        evaluate(best, [tmp_path / "outdoor_rel"], device="cpu")


# --------------------------------------------------------------------------- VideoPose3D / MotionBERT extras
def test_n_mpjpe_term_is_scale_invariant_and_respects_the_mask():
    from auglift.metrics import n_mpjpe_loss

    g = torch.Generator().manual_seed(0)
    y = torch.randn(3, 4, 17, 3, generator=g)
    mask = torch.ones(3, 4, 17)
    assert float(n_mpjpe_loss(1.7 * y, y, mask)) < 1e-6  # a pure per-frame scale costs nothing
    p = y + 0.3 * torch.randn(3, 4, 17, 3, generator=g)
    plain = float((p - y).norm(dim=-1).mean())
    assert 0 < float(n_mpjpe_loss(p, y, mask)) <= plain  # the best scale can only reduce the error
    bad = p.clone()
    bad[:, :, 5] = 1e3  # a joint outside the mask does not count, neither in the error nor in the scale
    m2 = mask.clone()
    m2[:, :, 5] = 0
    assert float(n_mpjpe_loss(bad, y, m2)) == pytest.approx(float(n_mpjpe_loss(p, y, m2)), rel=1e-5)
    # it is differentiable: a gradient step lowers it
    q = p.clone().requires_grad_(True)
    n_mpjpe_loss(q, y, mask).backward()
    assert float(n_mpjpe_loss(q.detach() - 0.1 * q.grad, y, mask)) < float(n_mpjpe_loss(p, y, mask))


def test_bn_momentum_schedule_matches_videopose3d():
    from auglift.train import bn_momentum

    e = 80
    got = [bn_momentum(k, e, 0.1, 0.001) for k in range(e + 1)]
    # VideoPose3D: momentum = 0.1 * exp(-epoch / epochs * log(0.1 / 0.001)) after each epoch
    want = [0.1 * np.exp(-k / e * np.log(0.1 / 0.001)) for k in range(e + 1)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[0] == 0.1 and got[-1] == pytest.approx(0.001)
    assert bn_momentum(7, e, 0.05, 0.0) == 0.05  # no decay


def test_training_with_bn_momentum_decay_and_n_mpjpe(data, tmp_path):
    sec = tiny_config(data / "ps", None, tmp_path / "run", model="simple_baseline", epochs=3,
                      extra={"optim": {"bn_momentum": 0.1, "bn_momentum_final": 0.001},
                             "loss": {"n_mpjpe_weight": 0.5}})
    best = train(write_config(tmp_path / "c.toml", sec))
    hist = Checkpoint.load(best).history
    np.testing.assert_allclose([h["bn_momentum"] for h in hist], [0.1, 0.1 * 0.01 ** (1 / 3), 0.1 * 0.01 ** (2 / 3)])
    # the loss holds the N-MPJPE term on top of the MPJPE (both reported in metres / millimetres)
    assert all(1000 * h["train_loss"] > h["train_mpjpe_mm"] for h in hist)
    rows = list(csv.DictReader(open(tmp_path / "run" / "history.csv")))
    assert float(rows[0]["bn_momentum"]) == pytest.approx(0.1)
    # a momentum schedule without a start value, and out-of-range values, are refused
    for extra, key in (({"optim": {"bn_momentum_final": 0.001}}, "bn_momentum_final"),
                       ({"optim": {"bn_momentum": 1.5}}, "optim.bn_momentum"),
                       ({"loss": {"n_mpjpe_weight": -1.0}}, "loss.n_mpjpe_weight")):
        bad = tiny_config(data / "ps", None, tmp_path / f"bad_{key}", model="simple_baseline", extra=extra)
        with pytest.raises(ConfigError, match=key):
            train(write_config(tmp_path / f"bad_{key}.toml", bad))


def test_resume_accepts_a_checkpoint_written_before_a_config_key_existed(data, tmp_path):
    from auglift.config import TrainConfig
    from auglift.train import check_resume

    sec = tiny_config(data / "ps", None, tmp_path / "run", model="simple_baseline", epochs=1)
    cfg = load_config(write_config(tmp_path / "c.toml", sec))
    old = json.loads(json.dumps(cfg.to_dict()))  # the config as a checkpoint stores it
    del old["loss"]["n_mpjpe_weight"], old["optim"]["bn_momentum"]
    old = TrainConfig.from_mapping(old)  # as Checkpoint.load reads it
    check_resume(old, cfg, tmp_path / "last.pt")  # missing keys read as their defaults
    cfg = cfg.with_override("loss.n_mpjpe_weight=0.5")
    with pytest.raises(ConfigError, match="n_mpjpe_weight"):
        check_resume(old, cfg, tmp_path / "last.pt")
