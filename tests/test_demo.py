"""A tiny version of ``auglift demo`` (seconds): report, CSV and plots exist and hold every cell."""

from __future__ import annotations

import csv
import json

import pytest

from auglift.cli import main
from auglift.errors import ConfigError


def test_tiny_demo_end_to_end_and_rerun(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--tiny", "--out", str(out), "--no-progress", "--jobs", "2"]) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert lines[0].split()[:6] == ["lifter", "input", "seeds", "ID", "MPJPE", "ID"]
    assert "OOD N-MPJPE" in lines[0] and "OOD P-MPJPE" in lines[0] and "OOD MPJVE" in lines[0]
    body = [line.split()[:3] for line in lines[1:] if line.startswith(("simple_baseline", "tcn"))]
    inputs = ["xy", "xy+bbox", "xyc+bbox", "uadd+bbox", "uadd+bbox+torso"]
    assert body == [[lifter, inp, n] for lifter, n in (("simple_baseline", "2"), ("tcn", "1")) for inp in inputs]
    assert f"report: {out / 'report.md'}" in printed.out and "15 cells (45 evaluations)" in printed.out
    rows = list(csv.DictReader(open(out / "results.csv")))
    cells = {(r["lifter"], r["input"], r["seed"], r["test"]) for r in rows}
    assert cells == {(lifter, inp, seed, test) for lifter, seeds in (("simple_baseline", "01"), ("tcn", "0"))
                     for seed in seeds for inp in inputs for test in ("lab", "fitness", "outdoor")}
    assert all(float(r["mpjpe"]) > 0 for r in rows)
    md = (out / "report.md").read_text()
    # the world's calibration is stated
    assert "| lab | Human3.6M |" in md and "| lab_test | Human3.6M |" in md and "| outdoor | 3DPW |" in md
    for png in ("heatmap_mpjpe.png", "relative_change.png", "occlusion.png", "per_joint.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
        assert f"({png})" in md
    res = json.loads((out / "results.json").read_text())
    assert len(res["cells"]) == 45 and len(res["relative_changes"]) == 2 * 4 * 3
    # the ablation's contrasts, per lifter, ID and OOD, three metrics
    assert len(res["contrasts"]) == 2 * 7 * 2 * 3 and "## Paired changes with confidence intervals" in md
    assert "`uadd+bbox+torso vs uadd+bbox`" in md
    for domain in ("lab", "fitness", "outdoor"):
        meta = json.loads((out / "data" / domain / "meta.json").read_text())
        assert meta["depth_model"]["name"] == "oracle-metric" and "uadd" in meta["fields"]

    # the domains and cells ran in two worker processes; their log lines reached stderr
    assert "[1/15] cell lab/simple_baseline/xy/seed0" in printed.err and "descriptors for outdoor" in printed.err

    # second run, in this process: data, descriptors and every cell are reused
    assert main(["demo", "--tiny", "--out", str(out), "--no-progress", "--jobs", "1"]) == 0
    err = capsys.readouterr().err
    assert err.count("reuse lab/") == 15 and "reuse descriptors of lab" in err and "reuse lab:" in err

    # what the README promises (issue 15 item 16): same machine, same thread count -> the same numbers,
    # bit for bit, from scratch (world, descriptors, training, evaluation), whichever worker ran which cell
    assert main(["demo", "--tiny", "--out", str(tmp_path / "again"), "--no-progress", "--jobs", "2"]) == 0
    metrics = ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "pck150", "auc")
    again = list(csv.DictReader(open(tmp_path / "again" / "results.csv")))
    assert [[r[k] for k in metrics] for r in again] == [[r[k] for k in metrics] for r in rows]


def test_demo_rejects_unknown_lifter(tmp_path):
    from auglift.demo import run_demo

    with pytest.raises(ConfigError, match="demo lifters"):
        run_demo(tmp_path, size="tiny", lifters=["motionbert"])


def test_a_world_made_before_a_calibration_change_is_not_reused(tmp_path, monkeypatch):
    from auglift import demo
    from auglift.datasets.synthetic import calibration, generate

    want = {"domain": "lab", "frames": 300, "seed": 0, "seq_seconds": [2.0, 3.0]}
    ps = generate("lab", 300, 0, seq_seconds=(2.0, 3.0))
    ps.meta["extra"] = dict(ps.meta["extra"]) | {"demo": want}
    ps.save(tmp_path / "lab")
    assert demo.made_with(tmp_path / "lab", "demo", want) is not None
    assert demo.made_with(tmp_path / "lab", "demo", want | {"seed": 1}) is None
    changed = calibration("lab")
    changed["detector"]["white_share"] = 0.5
    monkeypatch.setattr(demo, "calibration", lambda name: changed)
    assert demo.made_with(tmp_path / "lab", "demo", want) is None
