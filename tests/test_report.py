import csv
import json

import numpy as np
import pytest

from auglift.report import format_summary, paired_changes, relative_changes, summary_table, write_report


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


def _seeded_cells(n_clips: int = 40) -> list[dict]:
    """xy and uadd cells over 3 seeds with per-clip error sums: uadd is 20 % better OOD, the same ID (noise only)."""
    rng = np.random.default_rng(1)
    cells = []
    clip_err = {t: rng.uniform(40, 160, n_clips) for t in ("lab", "outdoor")}  # how hard each clip is
    for seed in range(3):
        for inp in ("xy", "uadd"):
            for test in ("lab", "outdoor"):
                factor = 0.8 if (inp == "uadd" and test == "outdoor") else 1.0
                joints = np.full(n_clips, 17.0 * 50)
                per = {m: clip_err[test] * factor * k * rng.normal(1.0, 0.03, n_clips)
                       for m, k in (("mpjpe", 1.0), ("n_mpjpe", 0.9), ("p_mpjpe", 0.7))}
                c = {"lifter": "simple_baseline", "input": inp, "train": "lab", "seed": seed, "test": test,
                     "in_distribution": test == "lab", "frames": 50 * n_clips, "mpjve": 5.0 + seed,
                     "per_clip": {"clip": list(range(n_clips)), "joints": joints.tolist(),
                                  **{m: (v * joints).tolist() for m, v in per.items()}}}
                c |= {m: float((v * joints).sum() / joints.sum()) for m, v in per.items()}
                cells.append(c)
    return cells


def test_paired_changes_interval_over_seeds_and_clips():
    cells = _seeded_cells()
    rows = paired_changes(cells, [("uadd", "xy")], n_boot=500, seed=3)
    assert rows == paired_changes(cells, [("uadd", "xy")], n_boot=500, seed=3)  # seeded: reproducible
    by = {(r["group"], r["metric"]): r for r in rows}
    assert set(by) == {(g, m) for g in ("ID", "OOD") for m in ("mpjpe", "n_mpjpe", "p_mpjpe")}
    for m in ("mpjpe", "n_mpjpe", "p_mpjpe"):
        ood, idd = by[("OOD", m)], by[("ID", m)]
        assert ood["seeds"] == 3 and len(ood["per_seed"]) == 3 and ood["sd"] > 0
        assert ood["ci_low"] < -20.0 < ood["ci_high"] < 0 and ood["distinguishable"]  # a real 20 % gain
        assert idd["ci_low"] < 0 < idd["ci_high"] and not idd["distinguishable"]  # noise only
        assert -2.0 < idd["change_pct"] < 2.0
    # one seed: the interval comes from the clips alone; cells without per-clip errors have none
    one = paired_changes([c for c in cells if c["seed"] == 0], [("uadd", "xy")], n_boot=200)
    assert all(r["seeds"] == 1 and r["sd"] is None and r["ci_low"] is not None for r in one)
    bare = [{k: v for k, v in c.items() if k != "per_clip"} for c in cells]
    assert all(r["ci_low"] is None and r["distinguishable"] is None
               for r in paired_changes(bare, [("uadd", "xy")], n_boot=50))


def test_tables_show_shape_metrics_and_seed_spread(tmp_path):
    cells = _seeded_cells(12)
    s = summary_table(cells)
    uadd = next(r for r in s if r["input"] == "uadd")
    for g in ("id", "ood"):
        for m in ("mpjpe", "n_mpjpe", "p_mpjpe", "mpjve"):
            assert np.isfinite(uadd[f"{g}_{m}"]) and uadd[f"{g}_{m}_sd"] >= 0
    assert uadd["seeds"] == 3 and uadd["ood_mpjve_sd"] == pytest.approx(1.0)
    assert uadd["ood_change_pct"] == pytest.approx(-20.0, abs=2.0)
    head = format_summary(s).splitlines()[0]
    for col in ("seeds", "ID MPJPE", "ID N-MPJPE", "ID P-MPJPE", "ID MPJVE", "OOD MPJPE", "OOD N-MPJPE",
                "OOD P-MPJPE", "OOD MPJVE", "OOD vs xy"):
        assert col in head
    assert " ± " in format_summary(s).splitlines()[1]
    paths = write_report(cells, tmp_path, sections=["## Extra analysis\n\nhello"])
    md = paths["markdown"].read_text()
    assert "| lifter | input | seeds | ID MPJPE | ID N-MPJPE | ID P-MPJPE | ID MPJVE | OOD MPJPE |" in md
    assert "## Paired changes with confidence intervals" in md and "not distinguishable from noise" in md
    assert md.index("## Extra analysis") < md.index("## Plots")
    # the OOD gain of uadd is split into scale, orientation and shape: all three shrink by 20 %
    part = next(line for line in md.split("## Which part of the error changes")[1].splitlines()
                if line.startswith("| simple_baseline | uadd vs xy | OOD |"))
    mm, scale, orient, shape = (float(v) for v in part.split("|")[4:8])
    assert mm < 0 and scale < 0 and orient < 0 and shape < 0 and mm == pytest.approx(scale + orient + shape, abs=0.2)
    data = json.loads(paths["json"].read_text())
    assert len(data["contrasts"]) == 6 and len(data["relative_changes"]) == 2
