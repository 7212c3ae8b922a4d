import csv
import json

import numpy as np
import pytest

from auglift.report import relative_changes, summary_table, write_report


def _cells():
    rng = np.random.default_rng(0)
    cells = []
    for lifter in ("simple_baseline", "tcn"):
        for inp, factor in (("xy", 1.0), ("uadd", 0.85)):
            for test in ("lab", "fitness", "outdoor"):
                base = 50.0 if test == "lab" else 100.0
                v = base * (factor if test != "lab" else (0.98 if inp == "uadd" else 1.0))
                cells.append({"lifter": lifter, "input": inp, "train": "lab", "test": test,
                              "in_distribution": test == "lab", "frames": 100, "mpjpe": v, "p_mpjpe": 0.7 * v,
                              "n_mpjpe": 0.9 * v, "mpjve": 5.0, "pck150": 90.0, "auc": 55.0,
                              "mpjpe_visible": 0.9 * v, "mpjpe_occluded": 1.3 * v,
                              "per_joint": list(rng.uniform(20, 120, 17))})
    return cells


def test_relative_changes_and_summary():
    ch = relative_changes(_cells())
    assert len(ch) == 6
    ood = [r["change_pct"] for r in ch if not r["in_distribution"]]
    assert ood == pytest.approx([-15.0] * 4)
    s = summary_table(_cells())
    uadd = next(r for r in s if r["input"] == "uadd")
    assert uadd["ood_change_pct"] == pytest.approx(-15.0)
    assert uadd["id_change_pct"] == pytest.approx(-2.0)
    assert uadd["ood_mpjpe"] == pytest.approx(85.0)


def test_write_report(tmp_path):
    paths = write_report(_cells(), tmp_path, notes=["A note."])
    for key in ("csv", "json", "markdown", "heatmap_mpjpe", "relative_change", "occlusion", "per_joint"):
        assert paths[key].exists() and paths[key].stat().st_size > 0
    rows = list(csv.DictReader(open(paths["csv"])))
    assert len(rows) == 12 and rows[0]["lifter"] == "simple_baseline" and "joint_pelvis" in rows[0]
    data = json.loads(paths["json"].read_text())
    assert len(data["cells"]) == 12 and len(data["relative_changes"]) == 6
    md = paths["markdown"].read_text()
    assert "A note." in md and "| tcn | uadd | lab | 49.0* | 85.0 | 85.0 |" in md
    assert "![relative_change](relative_change.png)" in md
    for p in tmp_path.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp"))


def test_cells_must_have_keys(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        write_report([{"lifter": "x"}], tmp_path)
