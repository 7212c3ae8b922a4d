"""Nothing lost, nothing stale (issue 15, items 1-5): output paths auglift did not write are refused,
replacing its own output is atomic, one job per output directory (locks), two depth runs share the
chunks, a changed input recomputes the descriptors, new 2D keypoints drop the descriptors sampled
at the old ones, and every command refuses non-finite values marked valid.
"""

from __future__ import annotations

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

from _reliability_fixtures import env_for_child, error_lines
from _train_fixtures import add_uadd, moving_poseset, tiny_config, write_config
from auglift.cli import main
from auglift.depth.estimators import DepthEstimator
from auglift.depth.extract import extract_uadd
from auglift.outputs import LOCK, hold
from auglift.poseset import PoseSet
from conftest import make_poseset


class GradientDepth(DepthEstimator):
    """Depth = 2 m + x/1000 on a 16x16 map (descriptors depend on where the keypoints are); ``delay`` s
    per batch so that two processes overlap."""

    name, kind, needs_frames = "gradient", "metric", False

    def __init__(self, delay: float = 0.0):
        self.delay = delay

    def predict_tensor(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:  # pragma: no cover - unused
        raise NotImplementedError

    def predict_rows(self, ps: PoseSet, rows: np.ndarray) -> torch.Tensor:
        time.sleep(self.delay)
        x = torch.linspace(0.0, 1.0, 16)
        return (2.0 + x).expand(len(rows), 16, 16).contiguous()


def _one_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    rc = main(argv)
    lines = [x for x in error_lines(capsys.readouterr().err) if not x.startswith("[")]  # matrix: "[1/1] cell ..."
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("auglift: error: "), (rc, lines)
    return lines[0]


# ----------------------------------------------------------------------------- 1. output safety
def _foreign(path: Path, what: str) -> Path:
    if what == "dir":
        path.mkdir()
        (path / "thesis.tex").write_text("years of work")
    else:
        path.write_text("years of work")
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A saved PoseSet with descriptors, a training config on it and a checkpoint."""
    from auglift.train import train

    d = tmp_path_factory.mktemp("small")
    ps = add_uadd(moving_poseset(n_clips=2, frames=16)).save(d / "ps")
    cfg = write_config(d / "train.toml", tiny_config(ps, None, d / "run", kwargs={"width": 16, "num_blocks": 1,
                                                                                   "dropout": 0.0}, epochs=1, batch=8))
    (d / "matrix.toml").write_text(f"""
[matrix]
out = "{d / 'mrun'}"
lifters = ["simple_baseline"]
inputs = ["xy"]
[train_sets.lab]
path = "{ps}"
split = "train"
[test_sets.lab]
path = "{ps}"
[train]
optim.epochs = 1
optim.batch_size = 8
runtime.progress = false
runtime.log = false
[lifters.simple_baseline]
model.kwargs.width = 16
""")
    return {"ps": ps, "config": cfg, "ckpt": train(cfg), "dir": d}


def _argv(cmd: str, out: Path, small: dict) -> list[str]:
    d = small["dir"]
    return {
        "synth": ["synth", "--frames", "30", "--out", str(out), "--no-progress"],
        "prepare": ["prepare", "h36m", "--root", str(d / "nothing"), "--out", str(out)],
        "detections": ["detections", "import", str(d / "det.npy"), "--poseset", str(small["ps"]), "--out", str(out)],
        "train": ["train", str(small["config"]), "--out", str(out)],
        "eval": ["eval", str(small["ckpt"]), "--data", str(small["ps"]), "--out", str(out)],
        "matrix": ["matrix", str(d / "matrix.toml"), "--out", str(out)],
        "demo": ["demo", "--tiny", "--out", str(out)],
        "infer": ["infer", str(d / "video.mp4"), "-c", str(small["ckpt"]), "--out", str(out)],
        "render": ["infer", str(d / "video.mp4"), "-c", str(small["ckpt"]), "--out", str(d / "o"), "--render",
                   str(out)],
        "export": ["export", str(small["ckpt"]), "--onnx", str(out)],
        "preview": ["synth", "--frames", "30", "--preview", str(out), "--no-progress"],
    }[cmd]


COMMANDS = ["synth", "prepare", "detections", "train", "eval", "matrix", "demo", "infer", "render", "export", "preview"]


@pytest.mark.parametrize("what", ["dir", "file"])
@pytest.mark.parametrize("cmd", COMMANDS)
def test_an_output_path_auglift_did_not_write_is_refused(cmd, what, small, tmp_path, capsys):
    if cmd == "detections":
        np.save(small["dir"] / "det.npy", np.concatenate([np.asarray(PoseSet.load(small["ps"]).kp2d),
                                                          np.ones((32, 17, 1), np.float32)], axis=-1))
    name = {"export": "model.onnx", "preview": "p.png", "render": "r.mp4"}.get(cmd, "out")
    out = _foreign(tmp_path / name, what)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    line = _one_error(capsys, _argv(cmd, out, small))
    assert str(out) in line and ("--overwrite" in line or "another output" in line)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing added, nothing removed
    assert (out / "thesis.tex" if what == "dir" else out).read_text() == "years of work"


def test_overwrite_replaces_and_own_output_is_replaced_atomically(tmp_path, capsys):
    out = _foreign(tmp_path / "out", "dir")
    assert main(["synth", "--frames", "30", "--out", str(out), "--no-progress", "--overwrite"]) == 0
    assert not (out / "thesis.tex").exists() and len(PoseSet.load(out)) == 30
    assert main(["synth", "--frames", "40", "--seed", "1", "--out", str(out), "--no-progress"]) == 0  # ours
    assert len(PoseSet.load(out)) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary or .old leftovers
    f = _foreign(tmp_path / "file", "file")
    assert main(["synth", "--frames", "30", "--out", str(f), "--no-progress", "--overwrite"]) == 0
    assert f.is_dir() and len(PoseSet.load(f)) == 30


def test_out_dot(tmp_path, monkeypatch, capsys):
    here = tmp_path / "work"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["synth", "--frames", "30", "--out", ".", "--no-progress"]) == 0  # an empty directory
    os.chdir(here)  # the directory this process stood in was replaced
    assert main(["synth", "--frames", "40", "--out", ".", "--no-progress"]) == 0  # our PoseSet: replaced
    assert len(PoseSet.load(here)) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # no "..xxxx.old" beside it
    os.chdir(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    os.chdir(tmp_path / "notes")
    assert "--overwrite" in _one_error(capsys, ["synth", "--frames", "30", "--out", ".", "--no-progress"])
    assert (tmp_path / "notes" / "a.txt").read_text() == "mine"


def test_failed_run_leaves_no_directory(small, tmp_path, capsys):
    out = tmp_path / "ev"
    _one_error(capsys, ["eval", str(small["ckpt"]), "--data", str(tmp_path / "missing"), "--out", str(out)])
    _one_error(capsys, ["prepare", "h36m", "--root", str(tmp_path / "missing"), "--out", str(out)])
    assert not out.exists()


# ----------------------------------------------------------------------------- 2. locks
def test_second_job_on_a_held_directory_names_the_holder(small, tmp_path, capsys):
    run = tmp_path / "run"
    with hold(run):  # as a concurrent `auglift train` holds it
        line = _one_error(capsys, ["train", str(small["config"]), "--out", str(run)])
        assert f"pid {os.getpid()}" in line and str(run) in line
        line = _one_error(capsys, ["prepare", "h36m", "--root", str(tmp_path), "--out", str(run)])
        assert f"pid {os.getpid()}" in line
    assert not (run / "last.pt").exists()


def test_matrix_cell_held_by_another_job(small, tmp_path, capsys):
    cells = tmp_path / "m" / "cells" / "lab" / "simple_baseline"
    with hold(cells, name=".xy.lock"):
        line = _one_error(capsys, ["matrix", str(small["dir"] / "matrix.toml"), "--out", str(tmp_path / "m"),
                                   "--no-progress"])
    assert f"{cells / 'xy'}: in use by pid {os.getpid()}" in line and not (cells / "xy").exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    d = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; from auglift.outputs import hold\n"
                              "with hold(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)", str(d)],
                             env=env_for_child(), stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    with pytest.raises(Exception, match=f"pid {child.pid} on host"):
        with hold(d):
            pass
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert f"pid {child.pid}" in (d / LOCK).read_text()  # the dead holder's note is still there
    with hold(d):
        assert f"pid {os.getpid()}" in (d / LOCK).read_text()


_DEPTH_CHILD = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from faults.test_outputs import GradientDepth
from auglift.depth.extract import extract_uadd
while not Path(sys.argv[2]).exists():
    time.sleep(0.01)
r = extract_uadd(sys.argv[1], GradientDepth(0.15), chunk_frames=4, progress=False)
print(json.dumps({"done": r.chunks_done, "total": r.chunks_total, "merged": r.merged}))
"""


def test_two_depth_runs_share_the_chunks(tmp_path):
    ps_dir = make_poseset(n_clips=2, frames=16).save(tmp_path / "ps")
    go = tmp_path / "go"
    tests = str(Path(__file__).resolve().parents[1])
    procs = [subprocess.Popen([sys.executable, "-c", _DEPTH_CHILD, str(ps_dir), str(go), tests], env=env_for_child(),
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(0.5)
    go.touch()
    res = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(r["merged"] for r in res) and res[0]["total"] == 8
    assert res[0]["done"] + res[1]["done"] == 8  # every chunk computed once, not once per process
    ref = make_poseset(n_clips=2, frames=16).save(tmp_path / "ref")
    extract_uadd(ref, GradientDepth(), chunk_frames=4, progress=False)
    np.testing.assert_array_equal(PoseSet.load(ps_dir).uadd, PoseSet.load(ref).uadd)


# ----------------------------------------------------------------------------- 3. staleness
@pytest.mark.parametrize("full_hash", [False, True])
def test_changed_keypoints_recompute_the_descriptors(tmp_path, capsys, full_hash):
    ps_dir = make_poseset(n_clips=2, frames=10).save(tmp_path / "ps")
    first = extract_uadd(ps_dir, GradientDepth(), chunk_frames=8, progress=False, full_hash=full_hash)
    kp = np.asarray(PoseSet.load(ps_dir).kp2d).copy()
    old = np.asarray(PoseSet.load(ps_dir).uadd).copy()
    kp[..., 0] -= 50.0  # edited in place: meta.json's checksum is now wrong
    np.save(ps_dir / "kp2d.npy", kp)
    again = extract_uadd(ps_dir, GradientDepth(), chunk_frames=8, progress=False, full_hash=full_hash)
    assert again.key != first.key and again.chunks_done == again.chunks_total and again.changed == ["kp2d"]
    ref_dir = make_poseset(n_clips=2, frames=10).with_fields(kp2d=kp).save(tmp_path / "ref")
    extract_uadd(ref_dir, GradientDepth(), chunk_frames=8, progress=False)
    new = np.asarray(PoseSet.load(ps_dir).uadd)
    np.testing.assert_array_equal(new, PoseSet.load(ref_dir).uadd)
    assert not np.allclose(new, old, equal_nan=True)  # the stale descriptors are gone


# ----------------------------------------------------------------------------- 4. derived fields
@pytest.mark.parametrize("in_place", [True, False])
def test_new_detections_drop_descriptors_of_the_old_keypoints(tmp_path, capsys, in_place):
    ps = add_uadd(make_poseset(n_clips=2, frames=10)).with_fields({"depth_model": {"name": "x", "kind": "metric"}})
    src = ps.save(tmp_path / "ps")
    det = np.concatenate([np.asarray(ps.kp2d) + 5, np.full((20, 17, 1), 0.9, np.float32)], axis=-1)
    np.save(tmp_path / "det.npy", det)
    out = src if in_place else tmp_path / "out"
    argv = ["detections", "import", str(tmp_path / "det.npy"), "--poseset", str(src), "--no-progress"]
    assert main(argv + ([] if in_place else ["--out", str(out)])) == 0
    assert "uadd, uadd_valid" in capsys.readouterr().out
    new = PoseSet.load(out)
    assert not new.has("uadd") and not new.has("uadd_valid") and new.meta["depth_model"] is None
    np.testing.assert_allclose(new.kp2d, det[..., :2])


# ----------------------------------------------------------------------------- 5. one validation
def _bad_kp2d(src: Path, dest: Path) -> Path:
    ps = PoseSet.load(src)
    kp = np.asarray(ps.kp2d).copy()
    kp[3] = np.nan  # every joint of a frame, confidence > 0, kp2d_valid true
    fields = ps.fields | {"kp2d": kp, "kp2d_valid": np.ones(len(ps), bool)}
    bad = PoseSet(fields, ps.clips, ps.meta)
    bad.path = dest
    dest.mkdir()
    (dest / "clips").mkdir()
    for name, a in fields.items():
        np.save(dest / f"{name}.npy", a)
    for name, a in ps.clips.columns.items():
        np.save(dest / "clips" / f"{name}.npy", a)
    meta = dict(ps.meta)
    meta["fields"] = {k: {"shape": list(a.shape), "dtype": str(a.dtype)} for k, a in fields.items()}
    (dest / "meta.json").write_text(json.dumps(meta))
    return dest


def test_every_command_refuses_non_finite_keypoints_marked_valid(small, tmp_path, capsys):
    bad = _bad_kp2d(small["ps"], tmp_path / "bad")
    cfg = write_config(tmp_path / "t.toml", tiny_config(bad, None, tmp_path / "run", epochs=1, batch=8))
    for argv in (["info", str(bad)], ["eval", str(small["ckpt"]), "--data", str(bad)],
                 ["depth", str(bad), "--model", "oracle", "--no-progress"], ["train", str(cfg)]):
        line = _one_error(capsys, argv)
        assert "kp2d.npy" in line and "kp2d" in line, (argv, line)
