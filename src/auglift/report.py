"""Tables and plots for cross-dataset results (``auglift matrix``, ``auglift demo``).

A result is one *cell*: a lifter trained with one input set on one training PoseSet and
evaluated on one test PoseSet. Cells are plain dicts (see :data:`CELL_KEYS`)::

    {"lifter": "simple_baseline", "input": "uadd", "train": "lab", "test": "outdoor",
     "in_distribution": False, "frames": 4000, "mpjpe": 88.1, "p_mpjpe": 61.0, "n_mpjpe": 80.2,
     "mpjve": 12.3, "pck150": 85.0, "auc": 52.1, "mpjpe_visible": 80.0, "mpjpe_occluded": 120.3,
     "per_joint": [0.0, 35.1, ...]}

:func:`write_report` turns a list of cells into ``results.csv``, ``results.json``, ``report.md``
and PNG plots: the train x test MPJPE heatmap per lifter and input, the relative change of each
depth-augmented input set against ``xy`` (the paper's headline form), occluded vs visible joint
error, and per-joint error.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from auglift.analysis import append_to_report
from auglift.io import atomic_write, json_safe, write_json
from auglift.skeleton import H36M17

__all__ = ["CELL_KEYS", "SCALAR_METRICS", "relative_changes", "summary_table", "write_report"]

SCALAR_METRICS = ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "pck150", "auc", "mpjpe_visible", "mpjpe_occluded")
CELL_KEYS = ("lifter", "input", "train", "test", "in_distribution", "frames", *SCALAR_METRICS)
_LABELS = {"mpjpe": "MPJPE (mm)", "p_mpjpe": "P-MPJPE (mm)", "n_mpjpe": "N-MPJPE (mm)", "mpjve": "MPJVE (mm)",
           "pck150": "PCK@150 (%)", "auc": "AUC (%)", "mpjpe_visible": "MPJPE visible (mm)",
           "mpjpe_occluded": "MPJPE occluded (mm)"}


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _ordered(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(v) if not isinstance(v, str) else v for v in r) + " |" for r in rows]
    return "\n".join(out)


def relative_changes(cells: Sequence[Mapping[str, Any]], *, baseline: str = "xy",
                     metric: str = "mpjpe") -> list[dict[str, Any]]:
    """Relative change (%) of ``metric`` of every non-baseline input vs ``baseline``, per lifter/train/test.

    Negative is better for errors. Returns dicts ``{lifter, input, train, test, in_distribution,
    baseline_value, value, change_pct}``.
    """
    base = {(c["lifter"], c["train"], c["test"]): c for c in cells if c["input"] == baseline}
    out = []
    for c in cells:
        if c["input"] == baseline:
            continue
        b = base.get((c["lifter"], c["train"], c["test"]))
        if b is None or not b.get(metric):
            continue
        out.append({"lifter": c["lifter"], "input": c["input"], "train": c["train"], "test": c["test"],
                    "in_distribution": bool(c["in_distribution"]), "baseline_value": float(b[metric]),
                    "value": float(c[metric]), "change_pct": 100.0 * (float(c[metric]) / float(b[metric]) - 1.0)})
    return out


def summary_table(cells: Sequence[Mapping[str, Any]], *, baseline: str = "xy") -> list[dict[str, Any]]:
    """Per lifter x input: mean MPJPE in- and out-of-distribution and the relative change vs ``baseline``.

    This is the short table ``auglift demo`` prints.
    """
    rows = []
    lifters = _ordered(c["lifter"] for c in cells)
    inputs = _ordered(c["input"] for c in cells)
    for lifter in lifters:
        for inp in inputs:
            sel = [c for c in cells if c["lifter"] == lifter and c["input"] == inp]
            if not sel:
                continue
            idd = [c["mpjpe"] for c in sel if c["in_distribution"]]
            ood = [c["mpjpe"] for c in sel if not c["in_distribution"]]
            row: dict[str, Any] = {"lifter": lifter, "input": inp,
                                   "id_mpjpe": float(np.mean(idd)) if idd else float("nan"),
                                   "ood_mpjpe": float(np.mean(ood)) if ood else float("nan")}
            if inp != baseline:
                ch = relative_changes([c for c in cells if c["lifter"] == lifter and c["input"] in (inp, baseline)],
                                      baseline=baseline)
                id_ch = [r["change_pct"] for r in ch if r["in_distribution"]]
                ood_ch = [r["change_pct"] for r in ch if not r["in_distribution"]]
                row["id_change_pct"] = float(np.mean(id_ch)) if id_ch else float("nan")
                row["ood_change_pct"] = float(np.mean(ood_ch)) if ood_ch else float("nan")
            rows.append(row)
    return rows


def format_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    """Plain-text table of :func:`summary_table` rows for the terminal."""
    lines = [f"{'lifter':<16} {'input':<6} {'ID MPJPE':>9} {'OOD MPJPE':>10} {'ID change':>10} {'OOD change':>11}"]
    for r in rows:
        idc = r.get("id_change_pct")
        oodc = r.get("ood_change_pct")
        lines.append(f"{r['lifter']:<16} {r['input']:<6} {r['id_mpjpe']:>9.1f} {r['ood_mpjpe']:>10.1f} "
                     f"{'' if idc is None else f'{idc:+.1f}%':>10} {'' if oodc is None else f'{oodc:+.1f}%':>11}")
    return "\n".join(lines)


def _write_csv(path: Path, cells: Sequence[Mapping[str, Any]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*CELL_KEYS, *(f"joint_{n}" for n in H36M17.joints)])
    for c in cells:
        pj = list(c.get("per_joint") or [float("nan")] * H36M17.num_joints)
        w.writerow([c.get(k) for k in CELL_KEYS] + pj)
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())


def _save(fig: Figure, path: Path) -> Path:
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    return path


def _heatmaps(cells: Sequence[Mapping[str, Any]]) -> Figure:
    """Train x test MPJPE, one panel per lifter x input."""
    lifters, inputs = _ordered(c["lifter"] for c in cells), _ordered(c["input"] for c in cells)
    trains, tests = _ordered(c["train"] for c in cells), _ordered(c["test"] for c in cells)
    vals = [c["mpjpe"] for c in cells if c.get("mpjpe") is not None]
    vmin, vmax = (min(vals), max(vals)) if vals else (0, 1)
    fig = Figure(layout="constrained", figsize=(1.6 + 1.1 * len(tests) * len(inputs),
                                                0.4 + (0.9 + 0.5 * len(trains)) * len(lifters)))
    axes = fig.subplots(len(lifters), len(inputs), squeeze=False)
    for i, lifter in enumerate(lifters):
        for j, inp in enumerate(inputs):
            ax = axes[i][j]
            m = np.full((len(trains), len(tests)), np.nan)
            for c in cells:
                if c["lifter"] == lifter and c["input"] == inp:
                    m[trains.index(c["train"]), tests.index(c["test"])] = c["mpjpe"]
            im = ax.imshow(m, cmap="viridis_r", vmin=vmin, vmax=vmax)
            for (a, b), v in np.ndenumerate(m):
                if np.isfinite(v):
                    ax.text(b, a, f"{v:.0f}", ha="center", va="center", color="w" if v > (vmin + vmax) / 2 else "k",
                            fontsize=8)
            ax.set_xticks(range(len(tests)), tests, rotation=30, fontsize=8)
            ax.set_yticks(range(len(trains)), trains, fontsize=8)
            ax.set_title(f"{lifter} / {inp}", fontsize=9)
            if j == 0:
                ax.set_ylabel("train")
            if i == len(lifters) - 1:
                ax.set_xlabel("test")
    fig.colorbar(im, ax=axes, shrink=0.8, label="MPJPE (mm)")
    return fig


def _relative_change_plot(cells: Sequence[Mapping[str, Any]], ch: Sequence[Mapping[str, Any]], baseline: str
                          ) -> Figure:
    """Bars of the relative MPJPE change of every other input against ``baseline``, per lifter and test set."""
    lifters = _ordered(c["lifter"] for c in cells)
    others = [i for i in _ordered(c["input"] for c in cells) if i != baseline]
    groups = _ordered(f"{r['train']}→{r['test']}" for r in ch)
    fig = Figure(layout="constrained", figsize=(1.5 + 0.7 * len(groups) * len(others) * len(lifters), 3.8))
    axes = fig.subplots(1, len(lifters), squeeze=False, sharey=True)
    width = 0.8 / max(1, len(others))
    for i, lifter in enumerate(lifters):
        ax = axes[0][i]
        for k, inp in enumerate(others):
            ys = []
            colors = []
            for g in groups:
                r = [x for x in ch if x["lifter"] == lifter and x["input"] == inp and f"{x['train']}→{x['test']}" == g]
                ys.append(r[0]["change_pct"] if r else np.nan)
                colors.append("tab:blue" if r and r[0]["in_distribution"] else "tab:orange")
            xs = np.arange(len(groups)) + (k - (len(others) - 1) / 2) * width
            ax.bar(xs, ys, width=width * 0.95, color=colors, alpha=1.0 - 0.25 * k, label=inp, edgecolor="k",
                   linewidth=0.4)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right", fontsize=8)
        ax.set_title(lifter, fontsize=9)
        if i == 0:
            ax.set_ylabel(f"MPJPE change vs {baseline} (%)")
    fig.legend(handles=[Patch(color="tab:blue", label="in-distribution"),
                        Patch(color="tab:orange", label="out-of-distribution")], fontsize=8,
               loc="outside lower center", ncol=2)
    fig.suptitle(f"Depth-augmented inputs ({', '.join(others)}) vs {baseline}: lower is better", fontsize=10)
    return fig


def _occlusion_plot(occ: Sequence[Mapping[str, Any]]) -> Figure:
    """MPJPE of visible vs occluded joints per lifter/input (mean over test sets)."""
    combos = _ordered(f"{c['lifter']}/{c['input']}" for c in occ)
    fig = Figure(figsize=(1.5 + 0.9 * len(combos), 3.4), layout="constrained")
    ax = fig.subplots()
    vis = [np.nanmean([c["mpjpe_visible"] for c in occ if f"{c['lifter']}/{c['input']}" == k]) for k in combos]
    oc = [np.nanmean([c["mpjpe_occluded"] for c in occ if f"{c['lifter']}/{c['input']}" == k]) for k in combos]
    xs = np.arange(len(combos))
    ax.bar(xs - 0.2, vis, 0.4, label="visible joints")
    ax.bar(xs + 0.2, oc, 0.4, label="occluded joints")
    ax.set_xticks(xs, combos, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("MPJPE (mm), mean over test sets")
    ax.legend(fontsize=8)
    return fig


def _per_joint_plot(pj: Sequence[Mapping[str, Any]]) -> Figure:
    """Per-joint MPJPE (mean over out-of-distribution test sets), one line per lifter/input."""
    fig = Figure(figsize=(8, 3.4), layout="constrained")
    ax = fig.subplots()
    for k in _ordered(f"{c['lifter']}/{c['input']}" for c in pj):
        sel = [c for c in pj if f"{c['lifter']}/{c['input']}" == k and not c["in_distribution"]] or \
              [c for c in pj if f"{c['lifter']}/{c['input']}" == k]
        ax.plot(np.nanmean([c["per_joint"] for c in sel], axis=0), marker="o", ms=3, label=k)
    ax.set_xticks(range(H36M17.num_joints), H36M17.joints, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("MPJPE (mm), out-of-distribution")
    ax.legend(fontsize=7, ncol=2)
    return fig


def _plots(cells: Sequence[Mapping[str, Any]], out: Path, baseline: str) -> list[Path]:
    """The report's PNG plots (matplotlib's object-oriented API: no pyplot state, no display backend)."""
    paths = [_save(_heatmaps(cells), out / "heatmap_mpjpe.png")]
    ch = relative_changes(cells, baseline=baseline)
    if ch:
        paths.append(_save(_relative_change_plot(cells, ch, baseline), out / "relative_change.png"))
    occ = [c for c in cells if c.get("mpjpe_occluded") is not None and c.get("mpjpe_visible") is not None]
    if occ:
        paths.append(_save(_occlusion_plot(occ), out / "occlusion.png"))
    pj = [c for c in cells if c.get("per_joint")]
    if pj:
        paths.append(_save(_per_joint_plot(pj), out / "per_joint.png"))
    return paths


def write_report(
    cells: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    title: str = "AugLift cross-dataset results",
    baseline: str = "xy",
    notes: Sequence[str] = (),
    plots: bool = True,
) -> dict[str, Path]:
    """Write ``results.csv``, ``results.json``, ``report.md`` and PNG plots into ``out_dir`` (atomically).

    Returns the written paths by kind. ``notes`` are extra markdown paragraphs (e.g. the
    world's calibration, run time) placed under the title.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cells = [dict(c) for c in cells]
    for c in cells:
        missing = [k for k in ("lifter", "input", "train", "test", "in_distribution", "mpjpe") if k not in c]
        if missing:
            raise ValueError(f"result cell {c} lacks {missing}")
    paths: dict[str, Path] = {}
    _write_csv(out / "results.csv", cells)
    paths["csv"] = out / "results.csv"
    summary = summary_table(cells, baseline=baseline)
    changes = relative_changes(cells, baseline=baseline)
    write_json(out / "results.json", json_safe({"cells": cells, "summary": summary, "relative_changes": changes}))
    paths["json"] = out / "results.json"
    figs = _plots(cells, out, baseline) if plots and cells else []
    for f in figs:
        paths[f.stem] = f
    with atomic_write(out / "report.md", "w") as fh:
        fh.write(_markdown(cells, title, baseline, notes, summary, changes, figs))
    paths["markdown"] = out / "report.md"
    if plots:  # a matrix run: the post-hoc analyses (auglift.analysis) join the report
        paths |= {p.stem: p for p in append_to_report(out)}
    return paths


def _markdown(cells: Sequence[Mapping[str, Any]], title: str, baseline: str, notes: Sequence[str],
              summary: Sequence[Mapping[str, Any]], changes: Sequence[Mapping[str, Any]], figs: Sequence[Path]
              ) -> str:
    """``report.md``: summary, the MPJPE matrix, relative changes, every metric, the plots."""
    md = [f"# {title}", ""]
    md += [*notes, ""] if notes else []
    md += ["## Summary", "", "Mean MPJPE (mm) over in-distribution (ID) and out-of-distribution (OOD) test sets; "
           f"change is the mean relative MPJPE change against `{baseline}` (negative = better).", ""]
    md.append(_md_table(["lifter", "input", "ID MPJPE", "OOD MPJPE", "ID change %", "OOD change %"],
                        [[r["lifter"], r["input"], r["id_mpjpe"], r["ood_mpjpe"], r.get("id_change_pct"),
                          r.get("ood_change_pct")] for r in summary]))
    trains = _ordered(c["train"] for c in cells)
    tests = _ordered(c["test"] for c in cells)
    md += ["", "## MPJPE matrix (mm)", "", "Rows: lifter / input / training set; columns: test set "
           "(ID cells marked *).", ""]
    rows = []
    for lifter in _ordered(c["lifter"] for c in cells):
        for inp in _ordered(c["input"] for c in cells):
            for tr in trains:
                sel = {c["test"]: c for c in cells if (c["lifter"], c["input"], c["train"]) == (lifter, inp, tr)}
                if sel:
                    rows.append([lifter, inp, tr] + [
                        (_fmt(sel[t]["mpjpe"]) + ("*" if sel[t]["in_distribution"] else "")) if t in sel else "-"
                        for t in tests])
    md.append(_md_table(["lifter", "input", "train", *tests], rows))
    if changes:
        md += ["", f"## Relative MPJPE change vs `{baseline}` (%)", ""]
        md.append(_md_table(["lifter", "input", "train", "test", "ID/OOD", f"{baseline}", "value", "change %"],
                            [[r["lifter"], r["input"], r["train"], r["test"], "ID" if r["in_distribution"] else "OOD",
                              r["baseline_value"], r["value"], r["change_pct"]] for r in changes]))
    md += ["", "## All metrics", ""]
    md.append(_md_table(["lifter", "input", "train", "test", "frames", *(_LABELS[m] for m in SCALAR_METRICS)],
                        [[c["lifter"], c["input"], c["train"], c["test"], c.get("frames"),
                          *(c.get(m) for m in SCALAR_METRICS)] for c in cells]))
    if figs:
        md += ["", "## Plots", ""] + [f"![{f.stem}]({f.name})" for f in figs]
    return "\n".join(md) + "\n"
