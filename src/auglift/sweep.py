"""``auglift demo --sweep depth|noise2d``: when does depth help? The AugLift gain against depth quality
and against 2D-detector noise, measured on the embedded synthetic world.

For every *level* of the swept quantity the demo's world is generated at that level (``lab`` for
training, ``lab_test`` in distribution, ``fitness`` and ``outdoor`` out of distribution, the
demo's seeds and sizes), UADD descriptors are extracted with the oracle depth estimator, and
SimpleBaseline is trained with the demo's four ablation inputs (:data:`SWEEP_INPUTS`) on several seeds
(:mod:`auglift.matrix`). The report gives, per level, what depth adds (:data:`SWEEP_CONTRASTS`:
``uadd+bbox`` against ``xyc+bbox``, ``xy+bbox`` and plain ``xy``) as paired changes of MPJPE,
N-MPJPE and P-MPJPE with bootstrap intervals (:func:`auglift.report.paired_changes`), ID and OOD.

* ``depth``: the depth model's severity (:mod:`auglift.datasets.synthetic.depth_error`; 0 ideal,
  1 default, 2 poor). It changes the depth maps only, so the 2D inputs are byte-identical at every
  level: the ``xy``, ``xy+bbox`` and ``xyc+bbox`` cells are trained once (at severity 1) and
  shared, and each further level trains only ``uadd+bbox`` (checked: the 2D fields' checksums must
  match, else the level trains every input).
* ``noise2d``: the 2D detector's noise scale (:mod:`auglift.datasets.synthetic.detections`; 1 the
  calibrated detector), at the default depth quality; every input is trained at every level.

Layout of ``out`` (a ``sweep`` run directory): ``data/n<scale>_d<severity>/<set>/`` PoseSets,
``matrices/n<scale>_d<severity>/`` matrix runs (cells reused and resumed like any matrix), and
``sweep_<kind>.md``, ``.csv``, ``.json`` and ``.png``. Both sweeps share the level
``n1_d1`` (the default world), so running one after the other reuses its data and cells.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from auglift.analysis import error_2d, save_png
from auglift.datasets.synthetic import generate
from auglift.datasets.synthetic.depth_error import DEPTH_QUALITY, depth_severity
from auglift.datasets.synthetic.detections import noise2d_scale
from auglift.demo import INPUTS, SETS, ensure_uadd, made_with, world_sections
from auglift.errors import ConfigError
from auglift.io import PathLike, log_stderr, write_csv, write_file, write_json
from auglift.matrix import load_matrix_config, run_matrix
from auglift.outputs import writing
from auglift.poseset import PoseSet
from auglift.report import CLIP_METRICS, METRIC_NAMES, paired_changes, summary_table
from auglift.workers import default_jobs

__all__ = ["SWEEPS", "SWEEP_CONTRASTS", "SWEEP_SIZES", "SweepSize", "format_sweep", "run_sweep"]

LIFTER = "simple_baseline"
# kind -> default levels: depth severities (0 ideal, 1 default, 2 poor) and 2D-noise scales (x the calibrated detector)
SWEEPS: dict[str, tuple[float, ...]] = {"depth": (0.0, 1.0, 2.0, 3.0), "noise2d": (0.5, 1.0, 2.0, 3.0)}
# what depth adds: beyond confidence, beyond scale-normalised 2D, and AugLift against plain lifting
SWEEP_CONTRASTS: tuple[tuple[str, str], ...] = (("uadd+bbox", "xyc+bbox"), ("uadd+bbox", "xy+bbox"),
                                                ("uadd+bbox", "xy"))
# the ablation the sweep trains: the demo's four inputs (its relative-depth row is not swept)
SWEEP_INPUTS: tuple[str, ...] = tuple(i for i in INPUTS if i in ("xy", "xy+bbox", "xyc+bbox", "uadd+bbox"))


@dataclass(frozen=True)
class SweepSize:
    """Data, training and seeds of one sweep preset (SimpleBaseline only)."""

    frames: dict[str, int]  # PoseSet name (demo.SETS) -> frames
    epochs: int
    batch_size: int
    lr: float
    lifter: dict[str, Any]
    seeds: dict[str, int]  # sweep kind -> training seeds per cell (seed, seed + 1, ...)
    seq_seconds: tuple[float, float] = (4.0, 10.0)


SWEEP_SIZES: dict[str, SweepSize] = {
    # the demo's SimpleBaseline recipe and data sizes, 2 seeds; depth: 6 shared + 8 uadd cells, noise2d: 3 new
    # levels x 4 inputs x 2 seeds = 24 cells (its x1 level is the depth sweep's severity 1, reused)
    "default": SweepSize(frames={"lab": 20_000, "lab_test": 6_000, "fitness": 4_000, "outdoor": 4_000},
                         epochs=20, batch_size=256, lr=1e-3, lifter={"width": 512},
                         seeds={"depth": 2, "noise2d": 2}),
    # seconds: for tests (numbers are meaningless)
    "tiny": SweepSize(frames={"lab": 1_200, "lab_test": 300, "fitness": 300, "outdoor": 300},
                      epochs=1, batch_size=64, lr=1e-3, lifter={"width": 64, "num_blocks": 1},
                      seeds={"depth": 2, "noise2d": 2}, seq_seconds=(0.4, 0.8)),
}


@dataclass(frozen=True)
class _Level:
    """One world of a sweep: 2D-noise scale and depth severity, and the inputs trained on it."""

    noise2d: float
    depth: float
    inputs: tuple[str, ...] = field(default=SWEEP_INPUTS)

    @property
    def tag(self) -> str:
        return f"n{self.noise2d:g}_d{self.depth:g}"


_BASE = _Level(1.0, 1.0)  # the default world: the calibrated detector and depth model


def _levels(kind: str, levels: Sequence[float | str] | None) -> list[float]:
    if kind not in SWEEPS:
        raise ConfigError(f"sweep must be one of {', '.join(SWEEPS)}, got {kind!r}")
    check = depth_severity if kind == "depth" else noise2d_scale
    vals = [check(v) for v in (levels if levels else SWEEPS[kind])]
    if len(set(vals)) != len(vals):
        raise ConfigError(f"sweep levels repeat: {vals}")
    return vals


def level_label(kind: str, value: float) -> str:
    """``"1 (default)"`` for a depth severity with a preset name, ``"x2"`` for a 2D-noise scale."""
    if kind == "noise2d":
        return f"x{value:g}"
    names = [k for k, v in DEPTH_QUALITY.items() if v == value]
    return f"{value:g}" + (f" ({names[0]})" if names else "")


def run_sweep(
    kind: str,
    out: PathLike = "runs/sweep",
    *,
    levels: Sequence[float | str] | None = None,
    size: str = "default",
    seed: int = 0,
    seeds: int | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    overwrite: bool = False,
    jobs: int | None = None,
) -> dict[str, Any]:
    """Run sweep ``kind`` (``"depth"`` or ``"noise2d"``) into ``out`` and write its report.

    Args:
        kind: what is swept (module docstring).
        out: the sweep run directory (refused if it holds something else, unless ``overwrite``; locked).
        levels: depth severities in [0, 5] (or ``ideal``/``default``/``poor``) or 2D-noise scales in
            [0, 5]; default :data:`SWEEPS`.
        size: a key of :data:`SWEEP_SIZES`.
        seed: world and first training seed (the demo's).
        seeds: training seeds per cell (default the size's for ``kind``).
        progress: progress bars (``None``: auglift's default).
        log: receives progress lines (default: stderr).
        overwrite: use an ``out`` that holds files auglift did not write.
        jobs: worker processes training a world's cells at once, one torch thread each (default: one per
            core, at most 8; 1 with a GPU), as the demo's.

    Returns:
        ``{"kind", "levels": [{"level", "label", "tag", "summary", "detector_px", ...}], "rows": [paired
        changes with "level"], "paths": {...}, "seconds"}``.
    """
    values = _levels(kind, levels)
    if size not in SWEEP_SIZES:
        raise ConfigError(f"sweep size must be one of {', '.join(SWEEP_SIZES)}, got {size!r}")
    preset = SWEEP_SIZES[size]
    n_seeds = preset.seeds[kind] if seeds is None else int(seeds)
    if n_seeds < 1:
        raise ConfigError(f"sweep seeds must be >= 1, got {seeds}")
    jobs = default_jobs(jobs, "sweep")
    log = log or log_stderr
    with writing(out, "sweep", overwrite=overwrite) as root:
        return _run(root, kind, values, size, preset, seed, list(range(seed, seed + n_seeds)), progress, log, jobs)


def _run(out: Path, kind: str, values: list[float], size: str, preset: SweepSize, seed: int, seeds: list[int],
         progress: bool | None, log: Callable[[str], None], jobs: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    worlds = [_Level(v, 1.0) if kind == "noise2d" else _Level(1.0, v) for v in values]
    if kind == "depth" and _BASE not in worlds:
        worlds.append(_BASE)  # the 2D-only cells are trained on the default world
    for w in worlds:
        log(f"auglift demo --sweep {kind} ({size}): world {w.tag} (2D noise x{w.noise2d:g}, depth severity "
            f"{w.depth:g}) in {out / 'data' / w.tag}")
        _ensure_world(out / "data" / w.tag, w, preset, seed, progress, log)
    t_data = time.perf_counter() - t0
    cells = _train(out, kind, worlds, preset, seed, seeds, progress, log, jobs)
    seconds = time.perf_counter() - t0
    levels, rows = [], []
    for v, w in zip(values, worlds):
        sel = cells[w.tag]
        if kind == "depth":  # the shared 2D-only cells of the default world
            sel = sel + [c for c in cells[_BASE.tag] if c["input"] not in {c2["input"] for c2 in sel}]
        levels.append({"level": v, "label": level_label(kind, v), "tag": w.tag,
                       "summary": summary_table(sel, baseline="xy"),
                       "detector_px": _detector_error(out / "data" / w.tag)})
        rows += [r | {"level": v, "label": level_label(kind, v)} for r in paired_changes(sel, SWEEP_CONTRASTS)]
    res = {"kind": kind, "size": size, "seed": seed, "seeds": seeds, "levels": levels, "rows": rows,
           "seconds": seconds, "data_seconds": t_data, "config": asdict(preset) | {"lifter_name": LIFTER}}
    res["paths"] = _write(out, res)
    return res


def _train(out: Path, kind: str, worlds: list[_Level], preset: SweepSize, seed: int, seeds: list[int],
           progress: bool | None, log: Callable[[str], None], jobs: int) -> dict[str, list[dict[str, Any]]]:
    """Train and evaluate each world's cells (a matrix per world; the default world first): tag -> report cells.
    A depth level other than the default trains ``uadd+bbox`` only when its 2D inputs are the default world's."""
    cells: dict[str, list[dict[str, Any]]] = {}
    for w in sorted(worlds, key=lambda w: w != _BASE):  # the default world first: its cells are shared
        inputs = w.inputs
        if kind == "depth" and w != _BASE:
            inputs = ("uadd+bbox",) if _same_2d(out / "data" / _BASE.tag, out / "data" / w.tag) else SWEEP_INPUTS
            if len(inputs) > 1:
                log(f"  {w.tag}: its 2D inputs differ from {_BASE.tag}'s; training every input on it")
        log(f"training and evaluating {w.tag}: {LIFTER} x {', '.join(inputs)} x seeds {seeds}")
        cfg = load_matrix_config(_matrix_config(out, w, inputs, preset, seed, seeds))
        cells[w.tag] = run_matrix(cfg, progress=progress, report=False, log=log, jobs=jobs)["cells"]
    return cells


# ----------------------------------------------------------------------------- data
def _ensure_world(data: Path, w: _Level, preset: SweepSize, seed: int, progress: bool | None,
                  log: Callable[[str], None]) -> None:
    for name, frames in preset.frames.items():
        domain, offset = SETS[name]
        path = data / name
        want = {"domain": domain, "frames": frames, "seed": seed * 10 + offset, "seq_seconds": list(preset.seq_seconds),
                "noise2d": w.noise2d, "depth": w.depth}
        if made_with(path, "sweep", want) is None:
            t = time.perf_counter()
            ps = generate(domain, frames, seed * 10 + offset, seq_seconds=preset.seq_seconds, depth_quality=w.depth,
                          noise2d=w.noise2d)
            ps.meta["extra"] = dict(ps.meta.get("extra", {})) | {"sweep": want}
            ps.save(path)
            log(f"  generated {name} ({domain}): {len(ps):,} frames in {time.perf_counter() - t:.1f} s")
        ensure_uadd(path, log, progress, log_reuse=False)


def _same_2d(a: Path, b: Path) -> bool:
    """Whether two worlds' PoseSets hold the same 2D inputs and 3D targets (field checksums)."""
    keys = ("kp2d", "conf", "kp3d", "kp2d_valid")
    for name in SETS:
        fa, fb = (PoseSet.load(p / name).meta.get("fields", {}) for p in (a, b))
        if any(not fa.get(k, {}).get("sha256") or fa.get(k, {}).get("sha256") != fb.get(k, {}).get("sha256")
               for k in keys):
            return False
    return True


def _detector_error(data: Path) -> dict[str, float]:
    """Median 2D error of the visible joints on each test set, px and % of the person's size (the larger
    image extent of the true 2D joints, as the detector model measures it)."""
    out = {}
    for name in ("lab_test", "fitness", "outdoor"):
        ps = PoseSet.load(data / name)
        gt = np.asarray(ps.kp2d_gt, dtype=np.float64)
        err = error_2d(ps.kp2d, gt)
        vis = np.asarray(ps.visible) & np.isfinite(err)
        person = np.broadcast_to(np.maximum(np.ptp(gt, axis=1).max(-1), 1.0)[:, None], err.shape)  # larger extent
        out[f"{name}_px"] = float(np.median(err[vis]))
        out[f"{name}_pct"] = float(100.0 * np.median(err[vis] / person[vis]))
    return out


def _matrix_config(out: Path, w: _Level, inputs: Sequence[str], preset: SweepSize, seed: int,
                   seeds: list[int]) -> dict[str, Any]:
    inputs = list(inputs)
    contrasts = [f"{a} vs {b}" for a, b in SWEEP_CONTRASTS if a in inputs and b in inputs]
    return {
        "matrix": {"out": str(out / "matrices" / w.tag), "lifters": [LIFTER], "inputs": inputs,
                   "baseline": "xy" if "xy" in inputs else inputs[0], "contrasts": contrasts, "flip_test": True,
                   "title": f"AugLift sweep world {w.tag}"},
        **world_sections(out / "data" / w.tag, preset, seed),
        "lifters": {LIFTER: {"model": {"kwargs": dict(preset.lifter)}, "seeds": list(seeds)}},
    }


# ----------------------------------------------------------------------------- report
_ROW_KEYS = ("level", "label", "contrast", "group", "metric", "change_pct", "sd", "ci_low", "ci_high",
             "distinguishable", "seeds")


def _fmt_ci(r: Mapping[str, Any]) -> str:
    s = f"{r['change_pct']:+.1f}"
    return s + ("" if r["ci_low"] is None else f" [{r['ci_low']:+.1f}, {r['ci_high']:+.1f}]")


def _write(out: Path, res: Mapping[str, Any]) -> dict[str, Path]:
    kind = res["kind"]
    paths = {"json": out / f"sweep_{kind}.json", "csv": out / f"sweep_{kind}.csv",
             "markdown": out / f"sweep_{kind}.md", "plot": out / f"sweep_{kind}.png"}
    write_json(paths["json"], {k: v for k, v in res.items() if k != "paths"})
    means = _means(res)
    write_csv(paths["csv"], [[*_ROW_KEYS, "per_seed", "a_mm", "b_mm"],
                             *([r.get(k) for k in _ROW_KEYS] + [" ".join(f"{v:.2f}" for v in r["per_seed"])]
                               + [means.get((r["level"], x, r["group"], r["metric"])) for x in (r["a"], r["b"])]
                               for r in res["rows"])])
    save_png(_plot(res), paths["plot"])
    write_file(paths["markdown"], sweep_markdown(res, plot=paths["plot"].name))
    return paths


def _means(res: Mapping[str, Any]) -> dict[tuple[float, str, str, str], float]:
    """(level, input, "ID"/"OOD", metric) -> mean over seeds (mm)."""
    return {(lv["level"], s["input"], g.upper(), m): s[f"{g}_{m}"]
            for lv in res["levels"] for s in lv["summary"] for g in ("id", "ood") for m in CLIP_METRICS}


def _contrast_table(res: Mapping[str, Any]) -> list[str]:
    by = {(r["level"], r["contrast"], r["group"], r["metric"]): r for r in res["rows"]}
    metrics = " | ".join(f"{METRIC_NAMES[m]} change % [95 % CI]" for m in CLIP_METRICS)
    head = f"| level | A vs B | ID/OOD | {metrics} |"
    lines = [head, "|" + "---|" * (3 + len(CLIP_METRICS))]
    for lv in res["levels"]:
        for a, b in SWEEP_CONTRASTS:
            for g in ("ID", "OOD"):
                cells = [by.get((lv["level"], f"{a} vs {b}", g, m)) for m in CLIP_METRICS]
                if not any(cells):
                    continue
                lines.append(f"| {lv['label']} | {a} vs {b} | {g} | "
                             + " | ".join("-" if r is None else _fmt_ci(r) + ("" if r["distinguishable"] else " ~")
                                          for r in cells) + " |")
    return lines


def _absolute_table(res: Mapping[str, Any]) -> list[str]:
    lines = ["| level | input | ID MPJPE | ID N-MPJPE | ID P-MPJPE | OOD MPJPE | OOD N-MPJPE | OOD P-MPJPE |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for lv in res["levels"]:
        for s in sorted(lv["summary"], key=lambda r: INPUTS.index(r["input"]) if r["input"] in INPUTS else 99):
            vals = [s[f"{g}_{m}"] for g in ("id", "ood") for m in CLIP_METRICS]
            lines.append(f"| {lv['label']} | {s['input']} | " + " | ".join(f"{v:.1f}" for v in vals) + " |")
    return lines


def sweep_markdown(res: Mapping[str, Any], *, plot: str | None = None) -> str:
    """The sweep report (markdown): what was run, the paired changes per level, the absolute errors."""
    kind = res["kind"]
    what = ("the depth model's severity (0 ideal = exact depth, 1 default, 2 poor; every error magnitude of "
            "the world's monocular-depth model times the severity, the same random draws at every level); the 2D "
            "inputs are identical at every level, so `xy`, `xy+bbox` and `xyc+bbox` are trained once and shared"
            if kind == "depth" else
            "the 2D detector's noise scale (its noise sd and outlier and left/right-swap rates times the scale, "
            "the same random draws at every level; x1 is the calibrated detector), default depth quality; every "
            "input is trained at every level")
    tests = ("lab_test", "fitness", "outdoor")
    det = ["| level | " + " | ".join(f"{t} 2D error px (% person size)" for t in tests) + " |",
           "|---|---:|---:|---:|"]
    for lv in res["levels"]:
        d = lv["detector_px"]
        det.append(f"| {lv['label']} | " + " | ".join(f"{d[f'{t}_px']:.1f} ({d[f'{t}_pct']:.2f} %)"
                                                      for t in tests) + " |")
    md = [f"# AugLift sweep: {kind}", "",
          f"Swept: {what}. SimpleBaseline ({', '.join(f'{k} {v}' for k, v in res['config']['lifter'].items())}, "
          f"{res['config']['epochs']} epochs, {sum(res['config']['frames'].values()):,} frames in 4 sets) trained on "
          f"`lab` with seeds {res['seeds']}; `lab` (test) is in distribution (ID), `fitness` and `outdoor` out of "
          f"distribution (OOD). Sweep size `{res['size']}`: {res['seconds']:.0f} s in all "
          f"({res['data_seconds']:.0f} s data and descriptors; a re-run that reuses finished steps counts only "
          "what it did).", "",
          "Paired change (%) of A against B on the same seeds and test clips (mean over the group's test sets; "
          "negative = A is better), with a 95 % interval from a bootstrap over seeds and clips "
          "(`auglift.report.paired_changes`); `~` marks an interval that contains 0 (not "
          "distinguishable from noise).", "", *_contrast_table(res), ""]
    if plot:
        md += [f"![sweep {kind}]({plot})", ""]
    md += ["## Errors (mm, mean over seeds and the group's test sets)", "", *_absolute_table(res), "",
           "## Median 2D detection error of visible joints", "", *det, ""]
    return "\n".join(md)


def format_sweep(res: Mapping[str, Any]) -> str:
    """The sweep's contrast table as aligned plain text (what the CLI prints)."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in _contrast_table(res)]
    rows = [rows[0], *rows[2:]]  # without the markdown rule
    width = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, width)).rstrip() for r in rows)


def _plot(res: Mapping[str, Any]) -> Figure:
    """Paired change (%) with 95 % intervals against the level: rows ID/OOD, columns metrics, a marker per contrast."""
    levels = res["levels"]
    by = {(r["level"], r["contrast"], r["group"], r["metric"]): r for r in res["rows"]}
    fig = Figure(figsize=(12, 6.4))
    axes = fig.subplots(2, len(CLIP_METRICS), sharex=True)
    x = np.arange(len(levels))
    width = 0.22
    colours = ("#1b9e77", "#d95f02", "#7570b3")
    for gi, g in enumerate(("ID", "OOD")):
        for mi, m in enumerate(CLIP_METRICS):
            ax = axes[gi, mi]
            ax.axhline(0.0, color="0.5", lw=0.8)
            for ci, (a, b) in enumerate(SWEEP_CONTRASTS):
                rs = [by.get((lv["level"], f"{a} vs {b}", g, m)) for lv in levels]
                # (change, interval) per level; a missing row or interval is NaN (None as a float)
                ys, lo, hi = np.array([(r["change_pct"], r["ci_low"], r["ci_high"]) if r else (None,) * 3
                                       for r in rs], dtype=float).T
                ax.errorbar(x + (ci - 1) * width, ys, yerr=np.stack([ys - lo, hi - ys]), fmt="o", color=colours[ci],
                            capsize=3, ms=5, label=f"{a} vs {b}")
            ax.set_title(f"{g}: {METRIC_NAMES[m]}", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
            if mi == 0:
                ax.set_ylabel("change % (< 0: depth helps)")
            ax.set_xticks(x, [lv["label"] for lv in levels])
            if gi == 1:
                ax.set_xlabel("depth severity" if res["kind"] == "depth" else "2D noise scale")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9, bbox_to_anchor=(0.5, 0.955))
    fig.suptitle(f"AugLift gain against {'depth quality' if res['kind'] == 'depth' else '2D noise'} "
                 f"(SimpleBaseline, {len(res['seeds'])} seeds, 95 % paired bootstrap intervals)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig
