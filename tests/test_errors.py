"""Issue 15, items 6-18: crash paths that must end in one ``auglift: error:`` line, and CLI behaviour
(help, closed pipes, progress bars). The bad-input corpus (``test_bad_*.py``) holds the one-case-per-input
part; these are the cases that need a run in progress or a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import auglift.infer
import auglift.lifter as lifter_mod
import auglift.train as train_mod
from _dataset_fixtures import write_h36m_mmpose
from _train_fixtures import add_uadd, moving_poseset, subprocess_env, tiny_config, write_config
from auglift.cli import main
from auglift.errors import ConfigError, DataError, one_line, short
from auglift.io import load_npy, save_npy
from auglift.matrix import run_matrix
from auglift.poseset import PoseSet


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("errors")
    ps = add_uadd(moving_poseset(n_clips=2, frames=16)).save(d / "ps")
    return d, ps


def _config(d: Path, ps: Path, **kw) -> Path:
    return write_config(d / "c.toml", tiny_config(ps, ps, d / "run", kwargs={"width": 16, "num_blocks": 1,
                                                                            "dropout": 0.0}, batch=8, **kw))


def test_short_and_one_line():
    assert short("a" * 10_000_000).endswith("... (10000000 chars)") and len(short("a" * 10_000_000)) < 120
    assert short(3.5) == "3.5"
    assert one_line("\x1b[1mError(s)\x1b[0m in\nloading\tstate") == "Error(s) in loading state"
    assert len(one_line("x" * 10**6)) == 2000


@pytest.mark.parametrize("where", ["loss", "weights"])
def test_divergence_stops_with_one_line_and_keeps_the_last_good_checkpoint(tiny_run, monkeypatch, capsys, where):
    """Epoch 2 diverges (NaN loss, or NaN weights after a finite loss): exit 2, one line naming the
    epoch and step; last.pt and best.pt are epoch 1's, finite."""
    d, ps = tiny_run
    out = d / f"run-{where}"
    cfg = _config(d, ps, epochs=3)
    if where == "loss":
        real = train_mod.training_loss

        def loss(pred, y, mask, w):
            lo, mp = real(pred, y, mask, w)
            return (lo * float("nan"), mp) if train_mod_history else (lo, mp)

        monkeypatch.setattr(train_mod, "training_loss", loss)
    else:
        real_epoch = train_mod.train_epoch

        def epoch(run, e):
            row = real_epoch(run, e)
            if e == 1:
                with torch.no_grad():
                    next(run.model.parameters()).fill_(float("nan"))
            return row

        monkeypatch.setattr(train_mod, "train_epoch", epoch)
    train_mod_history: list[int] = []
    real_end = train_mod.end_epoch
    monkeypatch.setattr(train_mod, "end_epoch",
                        lambda run, e, row: (real_end(run, e, row), train_mod_history.append(e)))
    assert main(["train", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "training diverged at epoch 2" in err[0] and str(out / "last.pt") in err[0], err
    for name in ("last.pt", "best.pt"):
        ck = torch.load(out / name, weights_only=True)
        assert ck["epoch"] == 1 and all(torch.isfinite(v).all() for v in ck["model_state"].values())


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: auglift" in capsys.readouterr().err


def test_closed_pipe_ends_quietly(tiny_run):
    """`auglift info A B C ... | head -c 1`: no error line, no traceback, status of a SIGPIPE'd process (400
    PoseSets: far more output than a pipe buffer holds, so the writer is still running when the pipe closes)."""
    _, ps = tiny_run
    code = ("import sys; from auglift.cli import main; sys.exit(main(['info'] + sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, *[str(ps)] * 400], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=subprocess_env())
    proc.stdout.read(1)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141 and err == "", err


@pytest.fixture(scope="module")
def trained(tiny_run):
    d, ps = tiny_run
    cfg = _config(d, ps, epochs=1)
    assert main(["train", str(cfg), "--out", str(d / "trained")]) == 0
    return d / "trained" / "best.pt"


def test_eval_checks_its_output_path_before_predicting(tiny_run, trained, monkeypatch, capsys):
    _, ps = tiny_run
    monkeypatch.setattr(lifter_mod, "predict", lambda *a, **k: pytest.fail("predicted before checking --out"))
    assert main(["eval", str(trained), "--data", str(ps), "--out", "/proc/auglift-x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/proc/auglift-x" in err[0]


@pytest.mark.parametrize("flag", [None, "--progress", "--no-progress"])
def test_progress_bars_only_on_a_terminal_unless_forced(tiny_run, trained, capsys, flag):
    """stderr here is not a terminal: no carriage-return bars unless --progress; the per-epoch line stays."""
    d, ps = tiny_run
    sections = tiny_config(ps, ps, d / f"run-progress-{flag}", kwargs={"width": 16, "num_blocks": 1, "dropout": 0.0},
                           batch=8, epochs=1)
    sections["runtime"] = {k: v for k, v in sections["runtime"].items() if k not in ("progress", "log")}
    cfg = write_config(d / "progress.toml", sections)
    extra = [flag] if flag else []
    assert main(["train", str(cfg), *extra]) == 0
    assert main(["eval", str(trained), "--data", str(ps), *extra]) == 0
    err = capsys.readouterr().err
    assert ("\r" in err) == (flag == "--progress"), err
    assert "epoch 1/1" in err  # the plain per-epoch line


@pytest.mark.parametrize("variant", ["cell_kwargs", "baseline"])
def test_matrix_checks_every_cell_before_any_work(tiny_run, tmp_path, variant):
    """A later cell's lifter arguments, or a baseline that is no input set, fail when the config is read."""

    _, ps = tiny_run
    raw = {"matrix": {"out": str(tmp_path / "m"), "lifters": ["simple_baseline", "tcn"], "inputs": ["xy"]},
           "train_sets": {"lab": {"path": str(ps), "split": "train"}}, "test_sets": {"lab": {"path": str(ps)}},
           "train": {"optim": {"epochs": 1, "batch_size": 8}, "runtime": {"log": False}},
           "lifters": {"simple_baseline": {"model": {"kwargs": {"width": 16, "num_blocks": 1}}},
                       "tcn": {"model": {"kwargs": {"receptive_field": 28 if variant == "cell_kwargs" else 3}}}}}
    if variant == "baseline":
        raw["matrix"]["baseline"] = "xyc"
    with pytest.raises(ConfigError, match="receptive_field" if variant == "cell_kwargs" else "matrix.baseline"):
        run_matrix(raw, progress=False)
    assert not (tmp_path / "m").exists()  # nothing trained, nothing written


def test_h36m_split_without_frames_converts_to_nothing(tmp_path, capsys):
    """MMPose layout, test split with zero frames: the train split converts, the empty one is noted."""


    write_h36m_mmpose(tmp_path / "h36m", frames=4)
    np.savez(tmp_path / "h36m/annotation_body3d/fps50/h36m_test.npz", imgname=np.array([], dtype="<U40"),
             S=np.zeros((0, 17, 4)), part=np.zeros((0, 17, 3)), center=np.zeros((0, 2)), scale=np.zeros(0))
    argv = ["prepare", "h36m", "--root", str(tmp_path / "h36m"), "--out", str(tmp_path / "ps"), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "test" in out and "0 frames" in out
    assert not (tmp_path / "ps" / "test").exists()
    ps = PoseSet.load(tmp_path / "ps" / "train")
    assert set(ps.summary()["splits"]) == {"train"} and len(ps) > 0
    assert ps.meta["extra"]["empty_splits"] == ["test"]


def test_oracle_depth_on_non_finite_kp3d_is_one_line(tmp_path, capsys):
    """A NaN in kp3d of a synthetic PoseSet: `auglift depth --model oracle` names the field and row."""


    assert main(["synth", "--frames", "120", "--out", str(tmp_path / "syn"), "--no-progress"]) == 0
    kp3d = np.array(load_npy(tmp_path / "syn" / "kp3d.npy"))
    kp3d[5, 3, 0] = np.nan
    save_npy(tmp_path / "syn" / "kp3d.npy", kp3d)
    capsys.readouterr()
    assert main(["depth", str(tmp_path / "syn"), "--model", "oracle:metric", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "kp3d" in err[0], err


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "unreachable"])
def test_infer_depth_hub_id_offline_is_decided_at_once(monkeypatch, how):
    """Offline (a switch set, or the hub endpoint not answering): transformers is asked for the local cache
    only (no retries), and the one-line error says what to pass instead."""
    transformers = pytest.importorskip("transformers")

    for v in ("AUGLIFT_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(v, raising=False)
    if how == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: connection refused
    asked = []

    def from_pretrained(name, **kw):
        asked.append(kw.get("local_files_only"))
        raise OSError(f"{name} is not in the cache")

    monkeypatch.setattr(transformers.DepthAnythingForDepthEstimation, "from_pretrained", from_pretrained)
    with pytest.raises(DataError) as err:
        auglift.infer._load_depth("depth-anything/Not-There-hf", device=torch.device("cpu"),
                                  opts=auglift.infer.InferOptions())
    msg = one_line(err.value)
    assert asked == [True] and "--depth" in msg and (how in msg or "cannot be reached" in msg), msg


@pytest.mark.parametrize("preset", [None, "ACTIVE"])
def test_import_sets_a_passive_openmp_wait_policy_unless_the_user_chose_one(preset):
    """OpenMP threads that spin collapse training beside a busy process (benchmarks/bench_contention.py):
    `import auglift` (before torch) makes them sleep, unless OMP_WAIT_POLICY is already set."""
    env = subprocess_env()
    env.pop("OMP_WAIT_POLICY", None)
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = "import os, auglift; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (preset or "PASSIVE")
