"""Tables and plots for cross-dataset results (``auglift matrix``, ``auglift demo``).

A result is one *cell*: a lifter trained with one input set on one training PoseSet and
evaluated on one test PoseSet. Cells are plain dicts (see :data:`CELL_KEYS`)::

    {"lifter": "simple_baseline", "input": "uadd+bbox", "train": "lab", "seed": 0, "test": "outdoor",
     "in_distribution": False, "frames": 4000, "mpjpe": 88.1, "p_mpjpe": 61.0, "n_mpjpe": 80.2,
     "mpjve": 12.3, "pck150": 85.0, "auc": 52.1, "mpjpe_visible": 80.0, "mpjpe_occluded": 120.3,
     "per_joint": [0.0, 35.1, ...],
     "per_clip": {"clip": [...], "joints": [...], "mpjpe": [...], "n_mpjpe": [...], "p_mpjpe": [...]}}

``seed`` (``None`` for a matrix without seeds) and ``per_clip`` (sums of joint errors per clip,
see :func:`auglift.evaluate.evaluate_poseset`) are optional. Cells of several seeds are averaged
(mean ± sd over seeds) in the summary; :func:`paired_changes` gives the paired change of one input
against another per seed, with a bootstrap confidence interval over seeds and clips.

:func:`write_report` turns a list of cells into ``results.csv``, ``results.json``, ``report.md``
and PNG plots: the train x test MPJPE heatmap per lifter and input, the relative change of each
input set against the baseline (the paper's headline form), occluded vs visible joint error,
and per-joint error. ``sections`` adds markdown sections (e.g. post-hoc analyses) to the report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from auglift.analysis import append_to_report, save_png
from auglift.io import json_safe, write_csv, write_file, write_json
from auglift.skeleton import H36M17

__all__ = ["CELL_KEYS", "METRIC_NAMES", "SCALAR_METRICS", "SUMMARY_METRICS", "format_summary", "paired_changes",
           "relative_changes", "summary_table", "write_report"]

SCALAR_METRICS = ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "pck150", "auc", "mpjpe_visible", "mpjpe_occluded")
SUMMARY_METRICS = ("mpjpe", "n_mpjpe", "p_mpjpe", "mpjve")  # position, position after scale, after similarity; velocity
CLIP_METRICS = ("mpjpe", "n_mpjpe", "p_mpjpe")  # per-frame metrics bootstrapped over clips (``per_clip`` sums)
CELL_KEYS = ("lifter", "input", "train", "seed", "test", "in_distribution", "frames", *SCALAR_METRICS)
METRIC_NAMES = {"mpjpe": "MPJPE", "n_mpjpe": "N-MPJPE", "p_mpjpe": "P-MPJPE", "mpjve": "MPJVE"}
_LABELS = {"mpjpe": "MPJPE (mm)", "p_mpjpe": "P-MPJPE (mm)", "n_mpjpe": "N-MPJPE (mm)", "mpjve": "MPJVE (mm)",
           "pck150": "PCK@150 (%)", "auc": "AUC (%)", "mpjpe_visible": "MPJPE visible (mm)",
           "mpjpe_occluded": "MPJPE occluded (mm)"}


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def _ordered(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(map(_fmt, r)) + " |" for r in rows]
    return "\n".join(out)


def relative_changes(cells: Sequence[Mapping[str, Any]], *, baseline: str = "xy",
                     metric: str = "mpjpe") -> list[dict[str, Any]]:
    """Relative change (%) of ``metric`` of every non-baseline input vs ``baseline``, per lifter/train/test.

    Negative is better for errors. Cells are paired by seed and the changes averaged over seeds.
    Returns dicts ``{lifter, input, train, test, in_distribution, baseline_value, value,
    change_pct, seeds}`` (values: means over the paired seeds).
    """
    base = {(c["lifter"], c["train"], c["test"], c.get("seed")): c for c in cells if c["input"] == baseline}
    pairs: dict[tuple[Any, ...], list[tuple[float, float]]] = {}
    first: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for c in cells:
        b = base.get((c["lifter"], c["train"], c["test"], c.get("seed")))
        if c["input"] == baseline or b is None or not b.get(metric) or c.get(metric) is None:
            continue
        key = (c["lifter"], c["input"], c["train"], c["test"])
        pairs.setdefault(key, []).append((float(b[metric]), float(c[metric])))
        first.setdefault(key, c)
    out = []
    for key, vals in pairs.items():
        b, v = np.asarray(vals).T
        out.append({"lifter": key[0], "input": key[1], "train": key[2], "test": key[3],
                    "in_distribution": bool(first[key]["in_distribution"]), "baseline_value": float(b.mean()),
                    "value": float(v.mean()), "change_pct": float(np.mean(100.0 * (v / b - 1.0))),
                    "seeds": len(vals)})
    return out


def _seed_means(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One cell per lifter, input, training and test set: metrics and per-joint errors averaged over seeds."""
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for c in cells:
        groups.setdefault((c["lifter"], c["input"], c["train"], c["test"]), []).append(c)
    out = []
    for sel in groups.values():
        m = {k: v for k, v in sel[0].items() if k != "per_clip"} | {"seed": None, "seeds": len(sel)}
        for k in SCALAR_METRICS:
            vals = [c[k] for c in sel if c.get(k) is not None]
            m[k] = float(np.mean(vals)) if vals else None
        if all(c.get("per_joint") for c in sel):
            m["per_joint"] = np.mean([c["per_joint"] for c in sel], axis=0).tolist()
        out.append(m)
    return out


def _per_seed(cells: Sequence[Mapping[str, Any]], metric: str, in_distribution: bool) -> dict[Any, float]:
    """Seed -> mean of ``metric`` over the ID (or OOD) test sets of ``cells``."""
    by: dict[Any, list[float]] = {}
    for c in cells:
        if bool(c["in_distribution"]) == in_distribution and c.get(metric) is not None:
            by.setdefault(c.get("seed"), []).append(float(c[metric]))
    return {s: float(np.mean(v)) for s, v in by.items()}


def _mean_sd(values: Sequence[float]) -> tuple[float, float | None]:
    if not values:
        return float("nan"), None
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def summary_table(cells: Sequence[Mapping[str, Any]], *, baseline: str = "xy") -> list[dict[str, Any]]:
    """Per lifter x input: MPJPE, N-MPJPE, P-MPJPE and MPJVE in- and out-of-distribution, and the
    relative MPJPE change vs ``baseline``.

    Each value is the mean over seeds of the mean over the ID (OOD) test sets (``id_mpjpe``,
    ``ood_n_mpjpe``, ...), with the sd over seeds (``id_mpjpe_sd``; ``None`` for one seed) and
    ``seeds``. This is the table ``auglift demo`` and ``auglift matrix`` print.
    """
    rows = []
    lifters = _ordered(c["lifter"] for c in cells)
    inputs = _ordered(c["input"] for c in cells)
    for lifter in lifters:
        for inp in inputs:
            sel = [c for c in cells if c["lifter"] == lifter and c["input"] == inp]
            if not sel:
                continue
            row: dict[str, Any] = {"lifter": lifter, "input": inp, "seeds": len(_ordered(c.get("seed") for c in sel))}
            for metric in SUMMARY_METRICS:
                for group, in_dist in (("id", True), ("ood", False)):
                    row[f"{group}_{metric}"], row[f"{group}_{metric}_sd"] = _mean_sd(
                        list(_per_seed(sel, metric, in_dist).values()))
            if inp != baseline:
                ch = relative_changes([c for c in cells if c["lifter"] == lifter and c["input"] in (inp, baseline)],
                                      baseline=baseline)
                for group, in_dist in (("id", True), ("ood", False)):
                    vals = [r["change_pct"] for r in ch if r["in_distribution"] == in_dist]
                    row[f"{group}_change_pct"] = float(np.mean(vals)) if vals else float("nan")
            rows.append(row)
    return rows


def _summary_cells(r: Mapping[str, Any]) -> list[str]:
    """A :func:`summary_table` row's lifter, input, seeds and its metrics in the order of :data:`_SUMMARY_COLUMNS`:
    ``mean ± sd`` (sd over seeds), or the mean alone for one seed."""
    sds = {f"{g}_{m}": r.get(f"{g}_{m}_sd") for g in ("id", "ood") for m in SUMMARY_METRICS}
    return [r["lifter"], r["input"], str(r["seeds"]),
            *(_fmt(r[k]) + ("" if sd is None else f" ± {sd:.1f}") for k, sd in sds.items())]


_SUMMARY_COLUMNS = ["lifter", "input", "seeds",
                    *(f"{g} {METRIC_NAMES[m]}" for g in ("ID", "OOD") for m in SUMMARY_METRICS)]


def format_summary(rows: Sequence[Mapping[str, Any]], baseline: str = "xy") -> str:
    """Plain-text table of :func:`summary_table` rows for the terminal (mm; mean ± sd over seeds)."""
    head = [*_SUMMARY_COLUMNS, f"ID vs {baseline}", f"OOD vs {baseline}"]
    body = [[*_summary_cells(r),
             *("" if r.get(f"{g}_change_pct") is None else f"{r[f'{g}_change_pct']:+.1f}%" for g in ("id", "ood"))]
            for r in rows]
    width = [max(len(x) for x in col) for col in zip(head, *body)]
    return "\n".join("  ".join(x.ljust(w) if i < 2 else x.rjust(w) for i, (x, w) in enumerate(zip(line, width)))
                     .rstrip() for line in [head, *body])


def _clip_means(cell: Mapping[str, Any], metric: str, idx: np.ndarray) -> np.ndarray:
    """``metric`` of ``cell`` (mm) on each resample of its clips: ``idx`` (B, n_clips) -> (B,)."""
    pc = cell["per_clip"]
    return np.asarray(pc[metric])[idx].sum(1) / np.maximum(np.asarray(pc["joints"])[idx].sum(1), 1.0)


def _paired(cells: Sequence[Mapping[str, Any]], a: str, b: str, in_dist: bool
            ) -> dict[tuple[Any, str], tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(seed, test) -> (cell of input ``a``, cell of input ``b``) for every pair both inputs have."""
    idx = {(c["input"], c.get("seed"), c["train"], c["test"]): c for c in cells
           if bool(c["in_distribution"]) == in_dist}
    return {(s, f"{tr}/{t}"): (c, idx[(b, s, tr, t)]) for (i, s, tr, t), c in idx.items()
            if i == a and (b, s, tr, t) in idx}


def _boot_changes(pairs: Mapping[tuple[Any, str], tuple[Mapping[str, Any], Mapping[str, Any]]], seeds: list[Any],
                  tests: list[str], metric: str, n_boot: int, rng: np.random.Generator) -> np.ndarray | None:
    """(B, seeds) paired changes (%) on ``n_boot`` resamples of each test set's clips (the same clips for
    every seed and both inputs); ``None`` when a cell has no per-clip errors or the clips differ."""
    out = np.zeros((n_boot, len(seeds)))
    for t in tests:
        cs = [c for s in seeds for c in pairs[(s, t)]]
        if any(not c.get("per_clip") for c in cs) or any(c["per_clip"]["clip"] != cs[0]["per_clip"]["clip"]
                                                        for c in cs):
            return None
        idx = rng.integers(0, len(cs[0]["per_clip"]["clip"]), size=(n_boot, len(cs[0]["per_clip"]["clip"])))
        for k, s in enumerate(seeds):
            ca, cb = pairs[(s, t)]
            out[:, k] += 100.0 * (_clip_means(ca, metric, idx) / _clip_means(cb, metric, idx) - 1.0) / len(tests)
    return out


def paired_changes(cells: Sequence[Mapping[str, Any]], pairs: Sequence[tuple[str, str]], *, n_boot: int = 2000,
              seed: int = 0, level: float = 0.95) -> list[dict[str, Any]]:
    """Paired change (%) of input ``a`` against input ``b`` (same lifter, seed, training and test set).

    For every lifter, ``(a, b)`` pair, ID/OOD group and metric of :data:`CLIP_METRICS`: the change
    per seed (mean over the group's test sets of ``100 (a / b - 1)``), its mean and sd over seeds,
    and a ``level`` confidence interval from a bootstrap (``n_boot`` resamples, ``numpy`` generator
    seeded with ``seed``) that resamples the seeds and, within each test set, the clips (the same
    clips for both inputs: paired). ``distinguishable`` is True when the interval excludes 0,
    ``None`` when there is no interval (cells without ``per_clip``).
    """
    rng = np.random.default_rng(seed)
    out = []
    for lifter in _ordered(c["lifter"] for c in cells):
        sel = [c for c in cells if c["lifter"] == lifter]
        for a, b in pairs:
            for group, in_dist in (("ID", True), ("OOD", False)):
                pr = _paired(sel, a, b, in_dist)
                seeds = _ordered(s for s, _ in pr)
                tests = [t for t in _ordered(t for _, t in pr) if all((s, t) in pr for s in seeds)]
                if not tests:
                    continue
                for metric in CLIP_METRICS:
                    out.append(_contrast_row(pr, seeds, tests, metric, n_boot, rng, level)
                               | {"lifter": lifter, "contrast": f"{a} vs {b}", "a": a, "b": b, "group": group})
    return out


def _contrast_row(pr: Mapping[tuple[Any, str], tuple[Mapping[str, Any], Mapping[str, Any]]], seeds: list[Any],
                  tests: list[str], metric: str, n_boot: int, rng: np.random.Generator, level: float
                  ) -> dict[str, Any]:
    per_seed = [float(np.mean([100.0 * (pr[(s, t)][0][metric] / pr[(s, t)][1][metric] - 1.0) for t in tests]))
                for s in seeds]
    mean, sd = _mean_sd(per_seed)
    row: dict[str, Any] = {"metric": metric, "change_pct": mean, "sd": sd, "per_seed": per_seed,
                           "seeds": len(seeds), "tests": tests, "ci_low": None, "ci_high": None,
                           "distinguishable": None}
    boot = _boot_changes(pr, seeds, tests, metric, n_boot, rng)
    if boot is not None:
        if len(seeds) > 1:
            boot = np.take_along_axis(boot, rng.integers(0, len(seeds), size=boot.shape), axis=1)
        lo, hi = np.percentile(boot.mean(1), [50 * (1 - level), 50 * (1 + level)])
        row |= {"ci_low": float(lo), "ci_high": float(hi), "distinguishable": bool(lo > 0 or hi < 0)}
    return row


def _reading(r: Mapping[str, Any]) -> str:
    if r["distinguishable"] is None:
        return "no interval (no per-clip errors)"
    if not r["distinguishable"]:
        return "not distinguishable from noise"
    return f"{'lower' if r['change_pct'] < 0 else 'higher'} beyond noise"


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
            rs = [next((x for x in ch if x["lifter"] == lifter and x["input"] == inp
                        and f"{x['train']}→{x['test']}" == g), None) for g in groups]
            xs = np.arange(len(groups)) + (k - (len(others) - 1) / 2) * width
            ax.bar(xs, [np.nan if r is None else r["change_pct"] for r in rs], width=width * 0.95,
                   color=["tab:blue" if r and r["in_distribution"] else "tab:orange" for r in rs],
                   alpha=1.0 - 0.25 * k, label=inp, edgecolor="k", linewidth=0.4)
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
    xs = np.arange(len(combos))
    for key, dx in (("visible", -0.2), ("occluded", 0.2)):
        ax.bar(xs + dx, [np.nanmean([c[f"mpjpe_{key}"] for c in occ if f"{c['lifter']}/{c['input']}" == k])
                         for k in combos], 0.4, label=f"{key} joints")
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
    paths = [save_png(_heatmaps(cells), out / "heatmap_mpjpe.png", 110)]
    ch = relative_changes(cells, baseline=baseline)
    if ch:
        paths.append(save_png(_relative_change_plot(cells, ch, baseline), out / "relative_change.png", 110))
    occ = [c for c in cells if c.get("mpjpe_occluded") is not None and c.get("mpjpe_visible") is not None]
    if occ:
        paths.append(save_png(_occlusion_plot(occ), out / "occlusion.png", 110))
    pj = [c for c in cells if c.get("per_joint")]
    if pj:
        paths.append(save_png(_per_joint_plot(pj), out / "per_joint.png", 110))
    return paths


def write_report(
    cells: Sequence[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    title: str = "AugLift cross-dataset results",
    baseline: str = "xy",
    notes: Sequence[str] = (),
    plots: bool = True,
    contrasts: Sequence[tuple[str, str]] | None = None,
    sections: Sequence[str] = (),
) -> dict[str, Path]:
    """Write ``results.csv``, ``results.json``, ``report.md`` and PNG plots into ``out_dir`` (atomically).

    Returns the written paths by kind. ``notes`` are extra markdown paragraphs (e.g. the
    world's calibration, run time) placed under the title; ``contrasts``: ``(a, b)`` input pairs
    for :func:`paired_changes` (default: every input against ``baseline``); ``sections``: extra
    markdown sections (each starting with its ``## `` heading) placed before the plots.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cells = [dict(c) for c in cells]
    for c in cells:
        missing = [k for k in ("lifter", "input", "train", "test", "in_distribution", "mpjpe") if k not in c]
        if missing:
            raise ValueError(f"result cell {c} lacks {missing}")
    paths = {"csv": out / "results.csv", "json": out / "results.json"}
    no_joints = [float("nan")] * H36M17.num_joints  # per-joint columns of a cell without per-joint errors
    write_csv(paths["csv"], [[*CELL_KEYS, *(f"joint_{n}" for n in H36M17.joints)],
                             *([c.get(k) for k in CELL_KEYS] + list(c.get("per_joint") or no_joints) for c in cells)])
    summary = summary_table(cells, baseline=baseline)
    changes = relative_changes(cells, baseline=baseline)
    if contrasts is None:
        contrasts = [(i, baseline) for i in _ordered(c["input"] for c in cells) if i != baseline]
    paired = paired_changes(cells, contrasts)
    write_json(paths["json"], json_safe({"cells": cells, "summary": summary, "relative_changes": changes,
                                         "contrasts": paired}))
    figs = _plots(_seed_means(cells), out, baseline) if plots and cells else []
    paths |= {f.stem: f for f in figs} | {"markdown": out / "report.md"}
    md = _markdown(cells, title, baseline, notes, summary, changes, figs)
    md[-1:-1] = [_contrast_markdown(paired), _decomposition(summary, contrasts), *sections]
    write_file(paths["markdown"], "\n\n".join(x for x in md if x) + "\n")
    if plots:  # a matrix run: the post-hoc analyses (auglift.analysis) join the report
        paths |= {p.stem: p for p in append_to_report(out)}
    return paths


def _markdown(cells: Sequence[Mapping[str, Any]], title: str, baseline: str, notes: Sequence[str],
              summary: Sequence[Mapping[str, Any]], changes: Sequence[Mapping[str, Any]], figs: Sequence[Path]
              ) -> list[str]:
    """``report.md`` as sections: title and summary, the MPJPE matrix, relative changes, every metric, the plots."""
    head = [f"# {title}", ""] + ([*notes, ""] if notes else [])
    head += ["## Summary", "", "Mean over the in-distribution (ID) and out-of-distribution (OOD) test sets, in mm, "
             "as mean ± sd over seeds (no sd: one seed). MPJPE: root-relative position error; N-MPJPE: after the "
             "least-squares scale per frame (scale removed); P-MPJPE: after a similarity Procrustes fit per frame "
             "(scale and global orientation removed: articulated shape); MPJVE: velocity error (temporal "
             "smoothness). Change: mean relative MPJPE change against "
             f"`{baseline}` (negative = better).", ""]
    head.append(_md_table([*_SUMMARY_COLUMNS, "ID change %", "OOD change %"],
                          [[*_summary_cells(r), r.get("id_change_pct"), r.get("ood_change_pct")] for r in summary]))
    means = _seed_means(cells)
    trains, tests = _ordered(c["train"] for c in means), _ordered(c["test"] for c in means)
    matrix = ["## MPJPE matrix (mm)", "", "Rows: lifter / input / training set; columns: test set "
              "(ID cells marked *); mean over seeds.", ""]
    rows = []
    for lifter in _ordered(c["lifter"] for c in means):
        for inp in _ordered(c["input"] for c in means):
            for tr in trains:
                sel = {c["test"]: c for c in means if (c["lifter"], c["input"], c["train"]) == (lifter, inp, tr)}
                if sel:
                    rows.append([lifter, inp, tr] + [
                        (_fmt(sel[t]["mpjpe"]) + ("*" if sel[t]["in_distribution"] else "")) if t in sel else "-"
                        for t in tests])
    matrix.append(_md_table(["lifter", "input", "train", *tests], rows))
    md = ["\n".join(head), "\n".join(matrix)]
    if changes:
        md.append("\n".join([f"## Relative MPJPE change vs `{baseline}` (%)", "", "Mean over seeds of the paired "
                             "per-seed change.", "", _md_table(
                                 ["lifter", "input", "train", "test", "ID/OOD", f"{baseline}", "value", "change %"],
                                 [[r["lifter"], r["input"], r["train"], r["test"],
                                   "ID" if r["in_distribution"] else "OOD", r["baseline_value"], r["value"],
                                   r["change_pct"]] for r in changes])]))
    md.append("\n".join(["## All metrics", "", _md_table(
        ["lifter", "input", "train", "seed", "test", "frames", *(_LABELS[m] for m in SCALAR_METRICS)],
        [[c["lifter"], c["input"], c["train"], _fmt(c.get("seed")), c["test"], c.get("frames"),
          *(c.get(m) for m in SCALAR_METRICS)] for c in cells])]))
    md.append("\n".join(["## Plots", "", *(f"![{f.stem}]({f.name})" for f in figs)]) if figs else "")
    return md


def _decomposition(summary: Sequence[Mapping[str, Any]], pairs: Sequence[tuple[str, str]]) -> str:
    """A markdown section ('' without rows) with a row per lifter, A vs B and ID/OOD: the change of MPJPE (mm) and its
    parts: scale (MPJPE - N-MPJPE), global orientation (N-MPJPE - P-MPJPE) and articulated shape (P-MPJPE), from
    the seed means of :func:`summary_table`."""
    by = {(r["lifter"], r["input"]): r for r in summary}
    rows = []
    for lifter in _ordered(r["lifter"] for r in summary):
        for a, b in pairs:
            ra, rb = by.get((lifter, a)), by.get((lifter, b))
            for g in ("id", "ood") if ra and rb else ():
                d = {m: ra[f"{g}_{m}"] - rb[f"{g}_{m}"] for m in CLIP_METRICS}
                rows.append([lifter, f"{a} vs {b}", g.upper(), f"{d['mpjpe']:+.1f}",
                             f"{d['mpjpe'] - d['n_mpjpe']:+.1f}", f"{d['n_mpjpe'] - d['p_mpjpe']:+.1f}",
                             f"{d['p_mpjpe']:+.1f}"])
    if not rows:
        return ""
    return "\n".join(["## Which part of the error changes", "", "Change of the mean MPJPE (mm, mean over seeds) "
                      "split into scale (MPJPE - N-MPJPE), global orientation (N-MPJPE - P-MPJPE) and articulated "
                      "shape (P-MPJPE); negative = A removes that much error.", "",
                      _md_table(["lifter", "A vs B", "ID/OOD", "MPJPE", "scale", "orientation", "shape"], rows)])


def _contrast_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The paired changes of :func:`paired_changes` as a markdown section."""
    if not rows:
        return ""
    n_seeds = max(r["seeds"] for r in rows)
    md = ["## Paired changes with confidence intervals", "",
          "Change (%) of input A against input B on the same seed, training and test data (mean over the "
          "group's test sets; negative = A is better), as mean ± sd over seeds; 95 % interval from a bootstrap "
          f"that resamples the seeds ({n_seeds} at most here) and, within each test set, the clips (paired: the "
          "same clips for A and B; 2,000 resamples, seeded). \"not distinguishable from noise\": the interval "
          "contains 0.", ""]
    md.append(_md_table(["lifter", "A vs B", "ID/OOD", "metric", "change %", "95 % CI", "per seed", "reading"],
                        [[r["lifter"], r["contrast"], r["group"], METRIC_NAMES[r["metric"]],
                          f"{r['change_pct']:+.1f}" + ("" if r["sd"] is None else f" ± {r['sd']:.1f}"),
                          "-" if r["ci_low"] is None else f"[{r['ci_low']:+.1f}, {r['ci_high']:+.1f}]",
                          " ".join(f"{v:+.1f}" for v in r["per_seed"]), _reading(r)] for r in rows]))
    return "\n".join(md)
