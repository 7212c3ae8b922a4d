"""kill -9 ``auglift train`` at seeded random points, resume each time, compare with an uninterrupted run.

The lifter has dropout and BatchNorm and the optimiser is Adam, so a resume is only exact if the
model, optimiser, scheduler, RNG states and the position inside the epoch are all restored.
Checkpoints are written every 3 steps and at every epoch end; the kills aim at the n-th
checkpoint write (plus a random delay, so some land mid-step or inside the next write). After
every kill the run directory must hold only readable files: ``last.pt``/``best.pt`` load with
``torch.load(weights_only=True)``, ``run.json`` parses, ``history.csv`` has whole rows. The
final weights, optimiser state and history must be bit-identical to an uninterrupted run (same
seed, one thread, CPU).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from _reliability_fixtures import scan_tree
from _train_fixtures import add_uadd, moving_poseset, tiny_config, write_config

from ._helpers import Replacements, auglift_cmd, kill_when, run_to_end

EPOCHS, BATCH, WINDOWS = 4, 4, 90  # 22 steps per epoch, a checkpoint every 3 steps and at epoch ends


def _check_run_dir(run: Path) -> None:
    problems = scan_tree(run)
    assert not problems, problems
    for name in ("last.pt", "best.pt"):
        if (run / name).exists():
            ck = torch.load(run / name, map_location="cpu", weights_only=True)
            assert ck["format"] == "auglift.checkpoint" and ck["model_state"]
    if (run / "history.csv").exists():
        rows = list(csv.reader((run / "history.csv").open()))
        assert len(rows) >= 2 and all(len(r) == len(rows[0]) for r in rows), rows


def test_kill_training_and_resume_bit_identical(tmp_path):
    from auglift.train import train

    ps = add_uadd(moving_poseset(6, 30, seed=1)).save(tmp_path / "ps")
    sec = tiny_config(ps, ps, tmp_path / "unused", model="simple_baseline",
                      kwargs={"width": 256, "num_blocks": 2, "dropout": 0.25}, epochs=EPOCHS, batch=BATCH,
                      extra={"runtime": {"checkpoint_every": 3, "device": "cpu"}, "data.val": {"max_windows": 30}})
    cfg = write_config(tmp_path / "c.toml", sec)
    run = tmp_path / "killed"
    rng = np.random.default_rng(11)
    writes = 4 * (7 + 1)  # checkpoint writes per run: 7 inside each epoch + 1 at its end
    targets = sorted(rng.choice(np.arange(1, writes - 4), size=4, replace=False).tolist())
    progress = Replacements(run, "last.pt")
    kills = []
    for i, target in enumerate(targets):
        args = ["train", str(cfg), "--out", str(run)] + (["--resume"] if i else [])
        kill = kill_when(auglift_cmd(*args), progress, target, float(rng.uniform(0, 0.02)))
        kills.append(kill)
        _check_run_dir(run)
        if not kill.killed:  # a fast machine may finish the last steps within the delay
            assert kill.returncode == 0, kill.stderr
            break
    print("train kill points:", [(k.target, round(k.delay, 3), k.progress, k.killed) for k in kills])
    assert sum(k.killed for k in kills) >= 3, kills
    out = run_to_end(auglift_cmd("train", str(cfg), "--out", str(run), "--resume"))
    assert out.stdout.strip().endswith("best.pt")
    ref = train(cfg, out=tmp_path / "ref")  # uninterrupted, in this process (one thread, as configured)
    a = torch.load(run / "last.pt", weights_only=True)
    b = torch.load(ref.parent / "last.pt", weights_only=True)
    assert a["global_step"] == b["global_step"] == EPOCHS * (WINDOWS // BATCH)
    for k, v in b["model_state"].items():
        assert torch.equal(a["model_state"][k], v), k  # bit-identical: dropout and BatchNorm included
    sa, sb = a["optimizer_state"]["state"], b["optimizer_state"]["state"]
    assert all(torch.equal(sa[k][s], sb[k][s]) for k in sb for s in ("exp_avg", "exp_avg_sq"))
    assert [h["val_mpjpe_mm"] for h in a["history"]] == [h["val_mpjpe_mm"] for h in b["history"]]
    best_a = torch.load(run / "best.pt", weights_only=True)
    best_b = torch.load(ref, weights_only=True)
    assert best_a["epoch"] == best_b["epoch"]
    assert all(torch.equal(best_a["model_state"][k], v) for k, v in best_b["model_state"].items())
