"""The cross-dataset matrix: cells, reuse, resume, config errors, torchrun sharding."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auglift.cli import main
from auglift.errors import ConfigError, DataError
from auglift.matrix import cells_of, input_options, load_matrix_config, run_matrix
from auglift.outputs import resolve_recorded
from conftest import synthetic_uadd_sets


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Tiny synthetic lab (train/test subjects) and outdoor sets with oracle UADD descriptors."""
    return synthetic_uadd_sets(tmp_path_factory.mktemp("matrix_data"))


def _config(data: Path, out: Path, **train) -> dict:
    return {
        "matrix": {"out": str(out), "lifters": ["simple_baseline", "tcn"], "inputs": ["xy", "uadd"]},
        "train_sets": {"lab": {"path": str(data / "lab"), "split": "train"}},
        "test_sets": {"lab": {"path": str(data / "lab"), "split": "test"}, "outdoor": str(data / "outdoor")},
        "train": {"optim": {"epochs": 1, "batch_size": 32, "lr": 1e-3} | train,
                  "runtime": {"progress": False, "log": False}},
        "lifters": {"simple_baseline": {"model": {"kwargs": {"width": 32, "num_blocks": 1}}},
                    "tcn": {"model": {"kwargs": {"receptive_field": 9, "filter_widths": [3, 3], "channels": 16}}}},
    }


def test_matrix_runs_every_cell_and_reuses_them(data, tmp_path, monkeypatch):
    cfg = _config(data, tmp_path / "run")
    res = run_matrix(cfg, progress=False, log=lambda m: None)
    assert len(res["cells"]) == 2 * 2 * 2  # lifters x inputs x test sets
    keys = {(c["lifter"], c["input"], c["test"]) for c in res["cells"]}
    assert len(keys) == 8
    by = {(c["lifter"], c["input"], c["test"]): c for c in res["cells"]}
    assert by[("tcn", "uadd", "lab")]["in_distribution"] and not by[("tcn", "uadd", "outdoor")]["in_distribution"]
    for c in res["cells"]:
        assert c["mpjpe"] > 0 and len(c["per_joint"]) == 17 and c["frames"] > 0
    out = tmp_path / "run"
    for name in ("report.md", "results.csv", "results.json", "heatmap_mpjpe.png", "relative_change.png",
                 "occlusion.png", "per_joint.png"):
        assert (out / name).stat().st_size > 0, name
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert {(r["lifter"], r["input"], r["test"]) for r in rows} == keys
    md = (out / "report.md").read_text()
    for lifter in ("simple_baseline", "tcn"):
        for inp in ("xy", "uadd"):
            assert f"| {lifter} | {inp} | lab |" in md
    assert len(json.loads((out / "results.json").read_text())["relative_changes"]) == 4

    # a re-run trains nothing: every cell is reused
    import auglift.train

    def boom(*a, **k):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(auglift.train, "train", boom)
    logs: list[str] = []
    again = run_matrix(cfg, progress=False, log=logs.append)
    assert sum("reuse" in line for line in logs) == 4
    assert again["cells"] == res["cells"]


def test_a_moved_matrix_run_reuses_its_cells_and_finds_their_checkpoints(data, tmp_path, monkeypatch):
    cfg = _config(data, tmp_path / "run")
    cfg["matrix"]["lifters"] = ["simple_baseline"]
    first = run_matrix(cfg, progress=False, log=lambda m: None)
    cell = tmp_path / "run" / "cells" / "lab" / "simple_baseline" / "uadd"
    assert not Path(json.loads((cell / "cell.json").read_text())["checkpoint"]).is_absolute()
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    (tmp_path / "run").rename(moved)
    for cache in moved.glob("cells/**/posthoc_*.npz"):  # the post-hoc analyses predict again from the checkpoints
        cache.unlink()
    import auglift.train

    def boom(*a, **k):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(auglift.train, "train", boom)
    cfg["matrix"] |= {"out": str(moved), "save_predictions": True}  # evaluates again: loads each checkpoint
    logs: list[str] = []
    again = run_matrix(cfg, progress=False, log=logs.append)
    assert sum("reuse" in line for line in logs) == 2
    assert [c["mpjpe"] for c in again["cells"]] == [c["mpjpe"] for c in first["cells"]]
    assert (moved / "cells/lab/simple_baseline/uadd/predictions_outdoor.npz").is_file()
    posthoc = json.loads((moved / "posthoc.json").read_text())  # the post-hoc analyses ran on the moved cells
    assert set(posthoc["per_joint"]["bars"]) == {"simple_baseline/xy", "simple_baseline/uadd"}
    caches = sorted(p.name for p in moved.glob("cells/**/posthoc_*.npz"))
    assert caches == ["posthoc_lab.npz"] * 2 + ["posthoc_outdoor.npz"] * 2


def test_a_checkpoint_recorded_by_an_older_run_is_found_after_a_move(tmp_path):
    cdir = tmp_path / "now" / "cells" / "c"
    (cdir / "run").mkdir(parents=True)
    (cdir / "run" / "best.pt").write_bytes(b"x")
    old = str(tmp_path / "before" / "cells" / "c" / "run" / "best.pt")  # absolute, where the run used to be
    assert resolve_recorded(old, cdir) == cdir / "run" / "best.pt"
    assert resolve_recorded("run/best.pt", cdir) == cdir / "run" / "best.pt"
    assert resolve_recorded(str(tmp_path / "gone.pt"), cdir) == tmp_path / "gone.pt"  # missing: named as recorded


def test_changed_config_retrains_only_that_cell(data, tmp_path):
    cfg = _config(data, tmp_path / "run")
    cfg["matrix"]["lifters"] = ["simple_baseline"]
    run_matrix(cfg, progress=False, log=lambda m: None)
    cfg["lifters"]["simple_baseline"]["model"]["kwargs"]["width"] = 48
    logs: list[str] = []
    run_matrix(cfg, progress=False, log=logs.append)
    assert sum("training it again" in line for line in logs) == 2
    ck = json.loads((tmp_path / "run/cells/lab/simple_baseline/uadd/cell.json").read_text())
    assert ck["results"][0]["lifter"] == "simple_baseline"


def test_interrupted_cell_resumes(data, tmp_path):
    """A cell whose training stopped after an epoch continues from last.pt, not from scratch."""
    from auglift.matrix import _cell_plan
    from auglift.train import train

    cfg = load_matrix_config(_config(data, tmp_path / "run", epochs=2) | {
        "matrix": {"out": str(tmp_path / "run"), "lifters": ["simple_baseline"], "inputs": ["xy"]}})
    cell = cells_of(cfg)[0]
    tcfg, fp = _cell_plan(cfg, cell)
    half = json.loads(json.dumps(tcfg))
    half["optim"]["epochs"] = 2
    run_dir = tmp_path / "run/cells/lab/simple_baseline/xy"
    run_dir.mkdir(parents=True)
    (run_dir / "fingerprint").write_text(fp + "\n")
    # train one epoch of two, as if killed at the epoch boundary
    import torch

    train(half | {"optim": half["optim"] | {"epochs": 1}}, distributed=False)
    ck = torch.load(run_dir / "run/last.pt", weights_only=True)
    assert ck["epoch"] == 1
    res = run_matrix(cfg, progress=False, log=lambda m: None)
    assert len(res["cells"]) == 2
    hist = (run_dir / "run/history.csv").read_text().splitlines()
    assert len(hist) == 3  # header + epoch 1 (before) + epoch 2 (resumed)


def test_seeds_and_scale_norm_inputs_resume_and_reuse(data, tmp_path, monkeypatch):
    """A cell per seed and input variant: seeds reach training, scale_norm reaches the encoder, an interrupted
    seed cell resumes and a re-run (or a longer seed list) reuses every finished cell."""
    import torch

    import auglift.matrix
    from auglift.matrix import _cell_plan
    from auglift.train import train

    cfg = _config(data, tmp_path / "run")
    cfg["matrix"] |= {"lifters": ["simple_baseline"], "inputs": ["xy", "uadd+bbox"], "seeds": [3, 4],
                      "contrasts": ["uadd+bbox vs xy"]}
    mc = load_matrix_config(cfg)
    cells = cells_of(mc)
    assert [(c.input, c.seed) for c in cells] == [("xy", 3), ("xy", 4), ("uadd+bbox", 3), ("uadd+bbox", 4)]
    assert mc.contrasts == [("uadd+bbox", "xy")]
    tcfg, fp = _cell_plan(mc, cells[3])
    assert tcfg["runtime"]["seed"] == 4 and tcfg["input"] == {"channels": "uadd", "scale_norm": "bbox"}
    assert _cell_plan(mc, cells[2])[1] != fp  # the seed is part of the fingerprint
    # the last cell was interrupted after its first epoch of two
    cfg["train"]["optim"]["epochs"] = 2
    mc = load_matrix_config(cfg)
    tcfg, fp = _cell_plan(mc, cells[3])
    run_dir = tmp_path / "run/cells/lab/simple_baseline/uadd+bbox/seed4"
    run_dir.mkdir(parents=True)
    (run_dir / "fingerprint").write_text(fp + "\n")
    train(tcfg | {"optim": tcfg["optim"] | {"epochs": 1}}, distributed=False)
    res = run_matrix(cfg, progress=False, log=lambda m: None)
    assert len((run_dir / "run/history.csv").read_text().splitlines()) == 3  # resumed, not restarted
    assert torch.load(run_dir / "run/best.pt", weights_only=True)["encoder"]["scale_norm"] == "bbox"
    assert {(c["input"], c["seed"], c["test"]) for c in res["cells"]} == {
        (i, s, t) for i in ("xy", "uadd+bbox") for s in (3, 4) for t in ("lab", "outdoor")}
    assert all(len(c["per_clip"]["clip"]) > 1 for c in res["cells"])
    report = json.loads((tmp_path / "run/results.json").read_text())
    assert {(r["contrast"], r["group"]) for r in report["contrasts"]} == {("uadd+bbox vs xy", "ID"),
                                                                        ("uadd+bbox vs xy", "OOD")}
    assert all(r["seeds"] == 2 and r["ci_low"] <= r["ci_high"] for r in report["contrasts"])

    # a re-run with one more seed trains only the new seed's cells
    trained: list[str] = []
    monkeypatch.setattr(auglift.matrix, "train", lambda c, **k: trained.append(c["runtime"]["out"]) or train(c, **k))
    cfg["matrix"]["seeds"] = [3, 4, 5]
    logs: list[str] = []
    again = run_matrix(cfg, progress=False, log=logs.append)
    assert sum("reuse" in line for line in logs) == 4 and len(trained) == 2
    assert all("/seed5/" in t for t in trained) and len(again["cells"]) == 12


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"bogus": {}}, "bogus: unknown section"),
        ({"matrix": {"lifters": ["simple_baseline"], "inputs": ["xy", "xyzz"]}}, "matrix.inputs"),
        ({"matrix": {"lifters": ["simple_baseline"], "colour": 1}}, "matrix.colour: unknown key"),
        ({"train_sets": {}}, "train_sets: at least one"),
        ({"test_sets": {"x": {"paht": "a"}}}, "test_sets.x.paht: unknown key"),
        ({"train": {"optim": {"epochz": 3}}}, "optim.epochz: unknown key"),
        ({"matrix": {"lifters": ["simple_baseline"], "inputs": ["xy", "xy+box"]}}, "after '\\+' expected a scale"),
        ({"matrix": {"lifters": ["simple_baseline"], "seeds": [1, 1]}}, "seeds repeat"),
        ({"matrix": {"lifters": ["simple_baseline"], "seeds": ["a"]}}, "list of integer"),
        ({"matrix": {"lifters": ["simple_baseline"], "contrasts": ["uadd vs xyc"]}}, "matrix.contrasts"),
        ({"lifters": {"simple_baseline": {"model": {"kwargs": {"width": 8}}}, "nolifter": {}},
          "matrix": {"inputs": ["xy"]}}, "unknown lifter 'nolifter'"),
    ],
)
def test_config_errors(data, tmp_path, patch, message):
    cfg = _config(data, tmp_path / "run")
    for k, v in patch.items():
        cfg[k] = v
    with pytest.raises(ConfigError, match=message):
        load_matrix_config(cfg)


def test_cli_matrix_toml_and_error_line(data, tmp_path, capsys):
    toml = tmp_path / "m.toml"
    toml.write_text(f"""
[matrix]
out = "{tmp_path / 'run'}"
lifters = ["simple_baseline"]
inputs = ["xy", "uadd"]

[train_sets.lab]
path = "{data / 'lab'}"
split = "train"

[test_sets.outdoor]
path = "{data / 'outdoor'}"

[train]
optim.epochs = 1
optim.batch_size = 32
runtime.progress = false
runtime.log = false

[lifters.simple_baseline]
model.kwargs.width = 32
""")
    assert main(["matrix", str(toml), "--no-progress", "--set", "train.optim.lr=0.002"]) == 0
    out = capsys.readouterr().out
    assert "simple_baseline  uadd" in out and "report:" in out
    assert main(["matrix", str(toml), "--set", "train.optim.bogus=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("auglift: error: ") and "optim.bogus: unknown key" in err[0]


def test_torchrun_shards_cells(data, tmp_path):
    """Two ranks split the cells; rank 0 waits for all and writes the report."""
    cfg = _config(data, tmp_path / "run")
    cfg["matrix"]["lifters"] = ["simple_baseline"]
    (tmp_path / "m.json").write_text(json.dumps(cfg))
    script = tmp_path / "run_matrix.py"
    script.write_text("import json, sys\nfrom auglift.matrix import run_matrix\n"
                      "run_matrix(json.load(open(sys.argv[1])), progress=False)\n")
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=0",
                          str(script), str(tmp_path / "m.json")], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "rank 0/2: 1 of 2 cells" in out.stderr and "rank 1/2: 1 of 2 cells" in out.stderr
    rows = list(csv.DictReader(open(tmp_path / "run/results.csv")))
    assert {(r["input"], r["test"]) for r in rows} == {("xy", "lab"), ("xy", "outdoor"), ("uadd", "lab"),
                                                        ("uadd", "outdoor")}


def test_cells_in_worker_processes_log_reuse_and_repeat_bit_for_bit(data, tmp_path):
    cfg = _config(data, tmp_path / "a")
    logs: list[str] = []
    res = run_matrix(cfg, progress=False, log=logs.append, jobs=2)
    assert len(res["cells"]) == 2 * 2 * 2 and (tmp_path / "a" / "report.md").is_file()
    assert sorted(line for line in logs if " cell " in line) == sorted(
        f"[{i}/4] cell lab/{k}" for i, k in enumerate(["simple_baseline/xy", "simple_baseline/uadd", "tcn/xy",
                                                       "tcn/uadd"], 1))
    # another run directory, the same workers' thread count: the same numbers
    again = run_matrix(_config(data, tmp_path / "b"), progress=False, log=lambda m: None, jobs=2)
    metrics = ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve")
    assert [[c[k] for k in metrics] for c in again["cells"]] == [[c[k] for k in metrics] for c in res["cells"]]
    logs.clear()
    run_matrix(cfg, progress=False, log=logs.append, jobs=2)  # finished cells are reused by the workers too
    assert sum("reuse lab/" in line for line in logs) == 4


def test_an_error_in_a_worker_is_one_line(data, tmp_path):
    cfg = _config(data, tmp_path / "run")
    cfg["test_sets"]["outdoor"] = {"path": str(data / "outdoor"), "subjects": ["nobody"]}
    with pytest.raises((ConfigError, DataError), match="nobody|no frames|subjects"):
        run_matrix(cfg, progress=False, log=lambda m: None, jobs=2)
    with pytest.raises(ConfigError, match="jobs must be at least 1"):
        run_matrix(cfg, progress=False, log=lambda m: None, jobs=0)


def test_relative_depth_input_names(data, tmp_path):
    assert input_options("uadd+bbox+torso") == {"channels": "uadd", "scale_norm": "bbox", "depth_kind": "relative",
                                                "relative_norm": "torso"}
    assert input_options("xy+bbox") == {"channels": "xy", "scale_norm": "bbox"} and input_options("xy") == {
        "channels": "xy"}
    for bad in ("uadd+bbox+median", "xy+bbox+torso"):
        raw = _config(data, tmp_path / "run")
        raw["matrix"]["inputs"] = ["xy", bad]
        with pytest.raises(ConfigError, match="relative-depth normalisation"):
            load_matrix_config(raw)
    # a relative encoder reads the metric oracle's descriptors (its scale and shift are removed per frame)
    raw = _config(data, tmp_path / "run")
    raw["matrix"] |= {"lifters": ["simple_baseline"], "inputs": ["xy", "uadd+bbox+torso"]}
    res = run_matrix(raw, progress=False, log=lambda m: None)
    cdir = tmp_path / "run" / "cells" / "lab" / "simple_baseline" / "uadd+bbox+torso"
    ck = json.loads((cdir / "cell.json").read_text())["checkpoint"]
    from auglift.checkpoint import Checkpoint

    enc = Checkpoint.load(resolve_recorded(ck, cdir)).encoder
    assert (enc.depth_kind, enc.relative_norm, enc.scale_norm) == ("relative", "torso", "bbox")
    assert all(c["mpjpe"] > 0 for c in res["cells"])
