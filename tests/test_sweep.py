"""``auglift demo --sweep``: the AugLift gain against depth quality and 2D noise, on tiny data.

The sweeps run once per module (tiny size, one seed, two levels each, in one run directory): the
depth sweep trains the 2D-only inputs once and ``uadd+bbox`` per level, the 2D-noise sweep reuses
the default world's data and cells, and a re-run trains nothing.
"""

from __future__ import annotations

import csv
import json

import pytest

from auglift.cli import main
from auglift.errors import ConfigError
from auglift.report import CLIP_METRICS
from auglift.sweep import SWEEP_CONTRASTS, format_sweep, run_sweep


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    logs: dict[str, list[str]] = {"depth": [], "noise2d": [], "again": []}
    # the depth sweep's cells in two worker processes, the others in this process
    depth = run_sweep("depth", out, levels=[0, 1], size="tiny", seeds=1, log=logs["depth"].append, jobs=2)
    noise = run_sweep("noise2d", out, levels=[1, 2], size="tiny", seeds=1, log=logs["noise2d"].append, jobs=1)
    again = run_sweep("depth", out, levels=["ideal", "default"], size="tiny", seeds=1, log=logs["again"].append,
                      jobs=1)
    return out, depth, noise, again, logs


def _trained(log: list[str]) -> int:
    """How many cells a run trained: announced cells (``[i/n] cell ...``) less those it reused."""
    return sum("] cell " in line for line in log) - sum(line.strip().startswith("reuse ") for line in log)


def test_depth_sweep_shares_the_2d_cells_and_writes_its_report(sweeps):
    out, depth, _noise, _again, logs = sweeps
    assert [lv["tag"] for lv in depth["levels"]] == ["n1_d0", "n1_d1"]
    # the 2D-only inputs are trained once (on the default world), uadd+bbox on every level
    assert sorted(p.name for p in (out / "matrices" / "n1_d0" / "cells" / "lab" / "simple_baseline").iterdir()) \
        == ["uadd+bbox"]
    assert sorted(p.name for p in (out / "matrices" / "n1_d1" / "cells" / "lab" / "simple_baseline").iterdir()) \
        == ["uadd+bbox", "xy", "xy+bbox", "xyc+bbox"]
    assert _trained(logs["depth"]) == 5
    # every contrast, group and metric at every level, with an interval
    keys = {(r["level"], r["contrast"], r["group"], r["metric"]) for r in depth["rows"]}
    assert keys == {(lv, f"{a} vs {b}", g, m) for lv in (0.0, 1.0) for a, b in SWEEP_CONTRASTS
                    for g in ("ID", "OOD") for m in CLIP_METRICS}
    assert all(r["ci_low"] is not None and r["ci_low"] <= r["ci_high"] for r in depth["rows"])
    # the shared xy cell is the same at both levels; the uadd cells differ (the depth changed)
    by = {(lv["level"], s["input"]): s for lv in depth["levels"] for s in lv["summary"]}
    assert by[(0.0, "xy")]["ood_mpjpe"] == by[(1.0, "xy")]["ood_mpjpe"]
    assert by[(0.0, "uadd+bbox")]["ood_mpjpe"] != by[(1.0, "uadd+bbox")]["ood_mpjpe"]
    # the files
    paths = depth["paths"]
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < paths["plot"].stat().st_size < 200_000
    md = paths["markdown"].read_text()
    assert "uadd+bbox vs xyc+bbox" in md and "0 (ideal)" in md and "![sweep depth](sweep_depth.png)" in md
    with open(paths["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(depth["rows"]) and {r["label"] for r in rows} == {"0 (ideal)", "1 (default)"}
    assert json.loads(paths["json"].read_text())["kind"] == "depth"
    assert "uadd+bbox vs xy" in format_sweep(depth)


def test_noise_sweep_reuses_the_default_world_and_scales_the_2d_error(sweeps):
    out, _depth, noise, _again, logs = sweeps
    assert not any("generated" in line for line in logs["noise2d"] if "n1_d1" in line)
    assert _trained(logs["noise2d"]) == 4  # every input on the x2 world; the x1 world's cells are the depth sweep's
    px = {lv["level"]: lv["detector_px"]["lab_test_px"] for lv in noise["levels"]}
    assert 1.6 < px[2.0] / px[1.0] < 2.4
    assert (out / "sweep_noise2d.png").is_file() and (out / "sweep_depth.png").is_file()


def test_a_rerun_trains_nothing_and_reports_the_same(sweeps):
    _out, depth, _noise, again, logs = sweeps
    assert _trained(logs["again"]) == 0
    assert not any("generated" in line or "descriptors for" in line for line in logs["again"])
    assert [r["change_pct"] for r in again["rows"]] == [r["change_pct"] for r in depth["rows"]]


def test_bad_sweeps_fail_with_one_line(tmp_path, capsys):
    with pytest.raises(ConfigError, match="sweep must be one of"):
        run_sweep("colour", tmp_path / "a")
    with pytest.raises(ConfigError, match="severity"):
        run_sweep("depth", tmp_path / "a", levels=[9])
    with pytest.raises(ConfigError, match="2D noise scale"):
        run_sweep("noise2d", tmp_path / "a", levels=[-1])
    with pytest.raises(ConfigError, match="sweep jobs must be at least 1"):
        run_sweep("depth", tmp_path / "a", jobs=0)
    assert main(["demo", "--levels", "1", "--out", str(tmp_path / "b")]) != 0
    assert "--levels needs --sweep" in capsys.readouterr().err
    assert main(["demo", "--sweep", "depth", "--full", "--out", str(tmp_path / "b")]) != 0
    assert "--sweep" in capsys.readouterr().err
