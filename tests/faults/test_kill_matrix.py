"""kill -9 ``auglift matrix`` at seeded random points, rerun, compare with an uninterrupted matrix.

A matrix is resumable cell by cell: a finished cell (``cell.json``, written atomically) is reused,
an unfinished one resumes from its ``last.pt``. Kills aim at the n-th write of a checkpoint,
an evaluation, a ``cell.json`` or a report file, plus a random delay. After every kill the run
directory holds only readable files; the final results (every metric of every cell) and
``report.md`` must equal an uninterrupted run's exactly (training resumes bit-identically and
evaluation is deterministic).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from _reliability_fixtures import scan_tree
from conftest import synthetic_uadd_sets

from ._helpers import Replacements, auglift_cmd, kill_when, run_to_end


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Tiny synthetic lab (train/test subjects) and outdoor sets with oracle UADD descriptors."""
    return synthetic_uadd_sets(tmp_path_factory.mktemp("matrix_kill_data"))


def _write_toml(path: Path, data: Path, out: Path) -> Path:
    path.write_text(f"""
[matrix]
out = "{out}"
lifters = ["simple_baseline"]
inputs = ["xy", "uadd"]

[train_sets.lab]
path = "{data / 'lab'}"
split = "train"

[test_sets.lab]
path = "{data / 'lab'}"
split = "test"

[test_sets.outdoor]
path = "{data / 'outdoor'}"

[train.optim]
epochs = 2
batch_size = 32
lr = 0.001

[train.runtime]
device = "cpu"
progress = false
log = false
threads = 1
checkpoint_every = 4

[lifters.simple_baseline.model.kwargs]
width = 64
num_blocks = 1
""")
    return path


class _Progress:
    """Checkpoint, evaluation, cell and report writes seen so far."""

    def __init__(self, out: Path):
        self.parts = [Replacements(out, p) for p in ("cells/*/*/*/run/last.pt", "cells/*/*/*/cell.json",
                                                      "cells/*/*/*/eval_*.json", "results.json", "report.md")]

    def __call__(self) -> int:
        return sum(p() for p in self.parts)


def test_kill_matrix_and_resume(data, tmp_path):
    from auglift.matrix import run_matrix

    ref_out = tmp_path / "ref"
    counter, stop = _Progress(ref_out), threading.Event()

    def watch() -> None:  # count the writes of the uninterrupted run while it runs
        while not stop.is_set():
            counter()
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        ref = run_matrix(_write_toml(tmp_path / "ref.toml", data, ref_out), progress=False, log=lambda m: None)
    finally:
        stop.set()
        watcher.join()
    writes = counter()
    assert writes >= 15, writes
    out = tmp_path / "killed"
    cfg = _write_toml(tmp_path / "m.toml", data, out)
    rng = np.random.default_rng(5)
    targets = sorted(rng.choice(np.arange(1, writes - 1), size=4, replace=False).tolist())
    progress = _Progress(out)
    kills = []
    for target in targets:
        kill = kill_when(auglift_cmd("matrix", str(cfg), "--no-progress"), progress, target,
                         float(rng.uniform(0, 0.03)))
        kills.append(kill)
        if not kill.killed:
            assert kill.returncode == 0, kill.stderr
            break
        problems = scan_tree(out)
        assert not problems, problems
        for done in out.glob("cells/*/*/*/cell.json"):  # a finished cell is complete
            cell = json.loads(done.read_text())
            assert len(cell["results"]) == 2 and all(r["mpjpe"] > 0 for r in cell["results"])
    print("matrix kill points:", [(k.target, round(k.delay, 3), k.progress, k.killed) for k in kills], "of", writes)
    assert sum(k.killed for k in kills) >= 3, kills
    run_to_end(auglift_cmd("matrix", str(cfg), "--no-progress"))
    got = json.loads((out / "results.json").read_text())
    want = json.loads((ref_out / "results.json").read_text())
    assert got["cells"] == want["cells"] == json.loads(json.dumps(ref["cells"]))  # every metric, exactly
    assert got["relative_changes"] == want["relative_changes"]
    assert (out / "report.md").read_text().replace(str(out), "") == (ref_out / "report.md").read_text().replace(
        str(ref_out), "")
    for png in ("heatmap_mpjpe.png", "relative_change.png", "occlusion.png", "per_joint.png"):
        assert (out / png).stat().st_size > 0
