"""A full disk (``OSError(ENOSPC)``) at seeded random points of every kind of write: a clean failure
(one ``auglift: error:`` line naming the file, exit status 2, or an ``OSError`` naming it from the
library) and the earlier data intact.

The fault is injected where every atomic writer passes (``_helpers.DiskFull``): the n-th write
call, a write crossing a byte budget, the n-th ``fsync`` or the n-th temporary-file creation.
A first pass with no fault counts the writes of a job; the faulty runs then fail at points
drawn from that count. Covered: ``PoseSet.save`` (new and over an existing set, also through
``auglift synth`` and an in-place ``auglift detections import``), ``PoseSet.write_field``, the
chunk writes and the merge of ``auglift depth``, the checkpoints and logs of ``auglift train``,
``auglift eval --out`` and the matrix report (``auglift.report.write_report``).
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from _reliability_fixtures import error_lines, scan_tree, temp_files
from _train_fixtures import add_uadd, moving_poseset, tiny_config, write_config
from auglift.cli import main
from auglift.poseset import PoseSet

from ._helpers import DiskFull

SEED = 99


def _points(n: int, k: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(np.arange(1, n + 1), size=min(k, n), replace=False).tolist())


def _one_error_line(capsys, *names: str) -> str:
    cap = capsys.readouterr()
    lines = error_lines(cap.err)
    assert len(lines) == 1 and lines[0].startswith("auglift: error: "), cap.err
    assert "No space left on device" in lines[0] and all(n in lines[0] for n in names), lines[0]
    return lines[0]


def _same_poseset(a: Path, b: PoseSet) -> None:
    got = PoseSet.load(a).validate(checksums=True)
    assert sorted(got.fields) == sorted(b.fields)
    for k, v in b.fields.items():
        np.testing.assert_array_equal(np.asarray(got.fields[k]), np.asarray(v), err_msg=k)


# ----------------------------------------------------------------------------- PoseSet.save / write_field
@pytest.mark.parametrize("trigger", ["write", "bytes", "fsync", "create"])
def test_poseset_save_over_an_existing_set(tmp_path, monkeypatch, trigger):
    old = add_uadd(moving_poseset(3, 20, seed=1))
    new = add_uadd(moving_poseset(3, 20, seed=2))
    dest = old.save(tmp_path / "ps")
    with monkeypatch.context() as m:
        count = DiskFull(tmp_path).install(m)
        new.save(tmp_path / "probe")
    total = {"write": count.writes, "bytes": count.written, "fsync": count.fsyncs, "create": count.creates}[trigger]
    shutil.rmtree(tmp_path / "probe")
    for point in _points(total, 3, SEED):
        with monkeypatch.context() as m:
            DiskFull(tmp_path, **{{"write": "at_write", "bytes": "after_bytes", "fsync": "at_fsync",
                                   "create": "at_create"}[trigger]: point}).install(m)
            with pytest.raises(OSError) as e:
                new.save(dest)
            with pytest.raises(OSError):
                new.save(tmp_path / "fresh")  # a new destination is not created at all
        assert e.value.errno == errno.ENOSPC and str(dest) in str(e.value)
        _same_poseset(dest, old)
        assert not (tmp_path / "fresh").exists() and not temp_files(tmp_path)


def test_write_field_keeps_the_set_consistent(tmp_path, monkeypatch):
    """A full disk at any write of ``write_field`` (staged array, meta.json without the field,
    meta.json with the new field): the set loads and passes its checksums, and the field is the
    old one, absent, or the new one."""
    base = add_uadd(moving_poseset(2, 30, seed=3))
    new_uadd = np.asarray(base.uadd) + 1.0
    with monkeypatch.context() as m:
        count = DiskFull(tmp_path).install(m)
        probe = base.save(tmp_path / "probe")
        start = count.writes
        PoseSet.write_field(probe, "uadd", new_uadd, {"depth_model": {"name": "new"}})
        total = count.writes - start
    outcomes = set()
    for point in range(1, total + 1):  # every write call of it
        ps = base.save(tmp_path / f"ps{point}")
        with monkeypatch.context() as m:
            DiskFull(ps, at_write=point).install(m)
            with pytest.raises(OSError) as e:
                PoseSet.write_field(ps, "uadd", new_uadd, {"depth_model": {"name": "new"}})
        assert e.value.errno == errno.ENOSPC
        got = PoseSet.load(ps).validate(checksums=True)
        if got.uadd is None:
            outcomes.add("absent")
        elif np.array_equal(np.asarray(got.uadd), np.asarray(base.uadd), equal_nan=True):
            outcomes.add("old")
            assert got.meta["depth_model"] == base.meta["depth_model"]
        else:  # pragma: no cover - the new field is only listed once everything is written
            raise AssertionError("new array listed although the write failed")
        assert not list(ps.glob(".*"))  # no staged or temporary file left behind
    assert outcomes == {"old", "absent"}


# ----------------------------------------------------------------------------- auglift synth / detections import
def test_synth_and_in_place_detections_import(tmp_path, monkeypatch, capsys):
    ps = tmp_path / "ps"
    assert main(["synth", "--domain", "lab", "--frames", "120", "--seed", "0", "--out", str(ps),
                 "--no-progress"]) == 0
    before = PoseSet.load(ps)
    before_fields = {k: np.array(v) for k, v in before.fields.items()}
    det = tmp_path / "det.npy"
    np.save(det, np.asarray(before.kp2d_gt) + 2.0)
    capsys.readouterr()
    for i, point in enumerate(_points(12, 2, SEED)):
        with monkeypatch.context() as m:
            DiskFull(tmp_path, at_create=1 + i, at_write=point * 3).install(m)
            assert main(["synth", "--domain", "lab", "--frames", "120", "--seed", "1", "--out", str(ps),
                         "--no-progress"]) == 2
        _one_error_line(capsys, str(ps))
        with monkeypatch.context() as m:
            DiskFull(tmp_path, at_write=point).install(m)
            assert main(["detections", "import", str(det), "--poseset", str(ps), "--no-progress"]) == 2
        _one_error_line(capsys, str(ps))
        got = PoseSet.load(ps).validate(checksums=True)
        for k, v in before_fields.items():  # the set that was being rewritten in place is untouched
            np.testing.assert_array_equal(np.asarray(got.fields[k]), v, err_msg=k)
    assert not temp_files(tmp_path)


# ----------------------------------------------------------------------------- auglift depth
def test_depth_chunk_and_merge_writes(tmp_path, monkeypatch, capsys):
    from auglift.datasets.synthetic import generate

    base = generate("lab", 160, 0, seq_seconds=(0.4, 0.8)).save(tmp_path / "base")
    args = ["--model", "oracle", "--oracle-size", "32x32", "--chunk-frames", "16", "--no-progress"]
    ref = shutil.copytree(base, tmp_path / "ref")
    with monkeypatch.context() as m:
        count = DiskFull(tmp_path).install(m)
        assert main(["depth", str(ref), *args]) == 0
    capsys.readouterr()
    ref_ps = PoseSet.load(ref)
    for point in _points(count.writes, 4, SEED):
        ps = shutil.copytree(base, tmp_path / f"ps{point}")
        with monkeypatch.context() as m:
            DiskFull(ps, at_write=point).install(m)
            assert main(["depth", str(ps), *args]) == 2
        line = _one_error_line(capsys, str(ps))
        assert ("chunk-" in line) or ("meta.json" in line) or (".npy" in line) or ("manifest" in line), line
        assert not scan_tree(ps)
        PoseSet.load(ps).validate(checksums=True)
        assert main(["depth", str(ps), *args]) == 0  # the rerun finishes the job
        capsys.readouterr()
        got = PoseSet.load(ps)
        np.testing.assert_array_equal(np.asarray(got.uadd), np.asarray(ref_ps.uadd))
        np.testing.assert_array_equal(np.asarray(got.uadd_valid), np.asarray(ref_ps.uadd_valid))


# ----------------------------------------------------------------------------- auglift train / eval --out
def test_training_checkpoint_and_log_writes(tmp_path, monkeypatch, capsys):
    ps = add_uadd(moving_poseset(4, 20, seed=5)).save(tmp_path / "data" / "ps")
    sec = tiny_config(ps, ps, tmp_path / "unused", kwargs={"width": 32, "num_blocks": 1, "dropout": 0.1}, epochs=3,
                      batch=8, extra={"runtime": {"checkpoint_every": 2, "device": "cpu"}})
    cfg = write_config(tmp_path / "data" / "c.toml", sec)
    ref = tmp_path / "ref"
    with monkeypatch.context() as m:
        count = DiskFull(ref).install(m)
        assert main(["train", str(cfg), "--out", str(ref)]) == 0
    capsys.readouterr()
    want = torch.load(ref / "last.pt", weights_only=True)
    for point in _points(count.writes, 3, SEED):
        run = tmp_path / f"run{point}"
        with monkeypatch.context() as m:
            DiskFull(run, at_write=point).install(m)
            assert main(["train", str(cfg), "--out", str(run)]) == 2
        line = _one_error_line(capsys, str(run))
        assert any(n in line for n in ("last.pt", "best.pt", "history.csv", "run.json")), line
        assert not scan_tree(run) and not temp_files(run)
        assert main(["train", str(cfg), "--out", str(run), "--resume"]) == 0  # resumes from the last good state
        capsys.readouterr()
        got = torch.load(run / "last.pt", weights_only=True)
        assert all(torch.equal(got["model_state"][k], v) for k, v in want["model_state"].items())
    # evaluation reports: eval.json and eval.md
    out = tmp_path / "eval"
    assert main(["eval", str(ref / "best.pt"), "--data", str(ps), "--out", str(out), "--device", "cpu"]) == 0
    capsys.readouterr()
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    for point in (1, 2):
        with monkeypatch.context() as m:
            DiskFull(out, at_create=point).install(m)
            assert main(["eval", str(ref / "best.pt"), "--data", str(ps), "--out", str(out), "--device", "cpu",
                         "--no-flip-test"]) == 2
        _one_error_line(capsys, "eval.")
        assert {p.name: p.read_bytes() for p in out.iterdir()}.keys() == old.keys()
        assert (out / "eval.md").read_bytes() == old["eval.md"]  # the earlier report is intact


# ----------------------------------------------------------------------------- reports
def test_report_writes(tmp_path, monkeypatch):
    from auglift.report import write_report

    rng = np.random.default_rng(0)
    cells = [{"lifter": lf, "input": inp, "train": "lab", "test": t, "in_distribution": t == "lab", "frames": 100,
              "mpjpe": float(rng.uniform(40, 90)), "p_mpjpe": 40.0, "n_mpjpe": 45.0, "mpjve": 3.0, "pck150": 90.0,
              "auc": 50.0, "mpjpe_visible": 50.0, "mpjpe_occluded": 80.0, "per_joint": rng.uniform(0, 90, 17).tolist()}
             for lf in ("simple_baseline", "tcn") for inp in ("xy", "uadd") for t in ("lab", "outdoor")]
    pristine = tmp_path / "pristine"
    write_report(cells, pristine)
    old = {p.name: p.read_bytes() for p in pristine.iterdir()}
    out = tmp_path / "report"
    changed = [dict(c, mpjpe=c["mpjpe"] + 1) for c in cells]
    with monkeypatch.context() as m:
        count = DiskFull(tmp_path / "probe").install(m)
        write_report(changed, tmp_path / "probe")
    assert count.creates >= 7 and count.written > 1000
    rng = np.random.default_rng(SEED)
    faults = [{"at_create": k} for k in _points(count.creates, 3, SEED)]
    faults += [{"after_bytes": int(b)} for b in rng.integers(1, count.written, 2)]
    for kw in faults:
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(pristine, out)
        with monkeypatch.context() as m:
            DiskFull(out, **kw).install(m)
            with pytest.raises(OSError) as e:
                write_report(changed, out)
        assert e.value.errno == errno.ENOSPC and str(out) in str(e.value)
        for p in out.iterdir():  # every file is the old or the new version, whole; none is partial
            assert p.name in old, p
            assert not p.name.startswith(".")
        assert not scan_tree(out)
        assert (out / "results.json").read_bytes() in (old["results.json"], _fresh(changed, tmp_path))


def _fresh(cells: list, tmp_path: Path) -> bytes:
    from auglift.report import write_report

    d = tmp_path / "fresh_report"
    if not d.exists():
        write_report(cells, d, plots=False)
    return (d / "results.json").read_bytes()
