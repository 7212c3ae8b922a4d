"""The cross-dataset matrix: every lifter x input set x training set, evaluated on every test set.

A matrix config is a TOML file (see ``configs/matrix/*.toml``)::

    [matrix]
    out = "runs/matrix"             # run directory
    lifters = ["simple_baseline", "tcn"]   # default: the keys of [lifters]
    inputs = ["xy", "xy+bbox", "xyc+bbox", "uadd+bbox"]   # channel set [+ scale_norm [+ relative_norm]]
    baseline = "xy"                 # the input set relative changes are measured against
    seeds = [0, 1, 2]               # a cell per seed (default: one cell with train.runtime.seed)
    contrasts = ["uadd+bbox vs xy+bbox"]   # paired changes with intervals (default: each input vs baseline)
    flip_test = true
    title = "AugLift cross-dataset matrix"

    [train_sets.h36m]               # name -> PoseSet (+ selection); the name is also its domain
    path = "data/h36m"
    split = "train"
    # domain = "h36m"               # test sets of the same domain count as in-distribution
    # val = { path = "data/h36m", split = "test" }   # optional best-checkpoint selection

    [test_sets.h36m]
    path = "data/h36m"
    split = "test"
    [test_sets.3dpw]
    path = "data/3dpw"

    [train]                         # base training config (the `auglift train` schema, no data.*)
    optim.epochs = 20

    [lifters.tcn]                   # per-lifter overrides of [train]
    model.kwargs.receptive_field = 27
    seeds = [0]                     # per-lifter seeds (default: matrix.seeds)

An input name is a channel set (``xy``, ``xyc``, ``xycd``, ``uadd`` or ``"x,y,d"``) optionally
followed by ``+`` and a scale normalisation (``none``, ``bbox``, ``dscale2d``) that overrides
``input.scale_norm`` for that cell: ``uadd+bbox`` is AugLift as the paper (v4) defines it, UADD
descriptors and scale normalisation. A third part ``spread`` or ``torso`` encodes the depth channels
affine-invariantly (``input.depth_kind = "relative"``: per frame, shifted by the root's depth and divided
by the spread of all joints or of the torso joints, ``input.relative_norm``), as a lifter reads a
relative-depth model: ``uadd+bbox+torso`` on metric descriptors shows what is left of AugLift when the
depth's scale and shift are unknown, with the body-scale normalisation.

Every *cell* (lifter, input, training set[, seed]) is trained with :func:`auglift.train.train` into
``<out>/cells/<train>/<lifter>/<input>/[seed<k>/]`` and evaluated on every test set with
:func:`auglift.evaluate.evaluate`; a finished cell writes ``cell.json`` (atomically) with its
results and a fingerprint of its configuration, and a re-run reuses it. With ``matrix.save_predictions``
each cell also writes its per-frame predictions on every test set (``predictions_<test>.npz``,
:mod:`auglift.predictions`; a reused cell without them is evaluated again). An interrupted cell
resumes from its last checkpoint. With ``jobs > 1`` (``auglift matrix --jobs``) the cells run in that many
worker processes at once, one torch thread each by default (:mod:`auglift.workers`; small lifters train
faster as one single-threaded process per core than as one process using every core). Under ``torchrun``
the cells are sharded over the ranks (each rank trains its cells in one process); rank 0 waits for all
of them and writes the report (:func:`auglift.report.write_report`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from auglift.analysis import cache_cell_errors, write_cell_errors
from auglift.checkpoint import Checkpoint
from auglift.config import load_config, parse_override, read_toml, set_dotted
from auglift.encoding import SCALE_NORMS, parse_channels
from auglift.errors import ConfigError, DataError, short
from auglift.evaluate import evaluate
from auglift.io import PathLike, is_safe_name, log_stderr, read_json, write_file, write_json
from auglift.models import MODELS
from auglift.outputs import claim, hold, recorded, resolve_recorded
from auglift.poseset import PoseSet
from auglift.report import write_report
from auglift.schema import Section, option, schema, unknown_key
from auglift.train import build_lifter, train
from auglift.workers import available_cores, process_pool, raise_returned, run_returning_errors, worker_log

__all__ = ["RELATIVE_NORMS", "Cell", "DataSpec", "MatrixConfig", "MatrixSection", "cell_results", "cells_of",
           "input_options", "load_matrix_config", "run_matrix"]

_SET_KEYS = {"path", "split", "subjects", "actions", "domain", "val", "max_windows"}
_TOP_KEYS = {"matrix", "train_sets", "test_sets", "train", "lifters"}


@dataclass
class DataSpec:
    """A PoseSet and the clips selected from it."""

    name: str
    path: str
    split: str | None = None
    subjects: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    domain: str = ""
    val: dict[str, Any] | None = None
    max_windows: int = 0

    def train_section(self) -> dict[str, Any]:
        return {"path": self.path, "split": self.split, "subjects": list(self.subjects),
                "actions": list(self.actions), "max_windows": self.max_windows}


@dataclass
class MatrixConfig:
    """A validated matrix configuration (see the module docstring)."""

    out: Path
    lifters: list[str]
    inputs: list[str]
    train_sets: list[DataSpec]
    test_sets: list[DataSpec]
    train: dict[str, Any]
    lifter_overrides: dict[str, dict[str, Any]]
    seeds: dict[str, list[int]] = field(default_factory=dict)  # lifter -> seeds; none: one cell, runtime.seed
    contrasts: list[tuple[str, str]] = field(default_factory=list)
    baseline: str = "xy"
    flip_test: bool = True
    save_predictions: bool = False
    title: str = "AugLift cross-dataset matrix"
    notes: list[str] = field(default_factory=list)
    source: str = "<matrix>"


@dataclass(frozen=True)
class Cell:
    lifter: str
    input: str
    train: str
    seed: int | None = None

    @property
    def key(self) -> str:
        return f"{self.train}/{self.lifter}/{self.input}" + ("" if self.seed is None else f"/seed{self.seed}")


RELATIVE_NORMS = ("spread", "torso")  # third part of an input name: relative depth with that input.relative_norm


def input_options(name: str) -> dict[str, str]:
    """The ``[input]`` options an input name sets: ``"uadd+bbox"`` -> channels uadd, scale_norm bbox;
    ``"uadd+bbox+torso"`` -> also depth_kind relative, relative_norm torso."""
    channels, _, rest = name.partition("+")
    norm, plus, rel = rest.partition("+")
    return ({"channels": channels} | ({"scale_norm": norm} if norm else {})
            | ({"depth_kind": "relative", "relative_norm": rel} if plus else {}))


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _path_name(name: Any, where: str) -> str:
    """``name`` if it is usable as one directory/file-name component of the run directory.

    Set, lifter and input names become paths (``cells/<train>/<lifter>/<input>/``,
    ``eval_<test>.json``), so a name like ``../../x`` must not lead outside the run directory.
    """
    if not is_safe_name(name):
        raise ConfigError(f"{where}: {short(name)} cannot be used as a name (it names a directory of the run: no "
                          "'/', '\\', '..', NUL or surrounding spaces)")
    return name


def _data_spec(name: str, raw: Any, where: str, base_dir: Path) -> DataSpec:
    _path_name(name, where)
    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a PoseSet path or a table with 'path', got {short(raw)}")
    unknown = sorted(set(raw) - _SET_KEYS)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(_SET_KEYS))})")
    if not isinstance(raw.get("path"), str) or not raw["path"]:
        raise ConfigError(f"{where}.path: expected a PoseSet directory")
    path = raw["path"] if Path(raw["path"]).is_absolute() else str(base_dir / raw["path"])
    val = raw.get("val")
    if val is not None:
        val = _data_spec(f"{name}.val", val, f"{where}.val", base_dir).train_section()
    for key in ("subjects", "actions"):
        if not isinstance(raw.get(key, []), list):
            raise ConfigError(f"{where}.{key}: expected a list of names")
    return DataSpec(name=name, path=path, split=raw.get("split"), subjects=list(raw.get("subjects", [])),
                    actions=list(raw.get("actions", [])), domain=str(raw.get("domain", name)), val=val,
                    max_windows=int(raw.get("max_windows", 0)))


@dataclass(frozen=True)
class MatrixSection(Section):
    """The ``[matrix]`` table."""

    prefix: ClassVar[str] = "matrix"
    out: str = option("runs/matrix", "run directory")
    lifters: tuple[str, ...] = option((), "lifters (default: the keys of [lifters])")
    inputs: tuple[str, ...] = option(("xy", "uadd"), "input sets")
    baseline: str = option("xy", "the input set relative changes are measured against")
    seeds: tuple[int, ...] = option((), "a cell per training seed (default: one cell, train.runtime.seed)")
    contrasts: tuple[str, ...] = option((), "\"A vs B\" input pairs reported as paired changes with intervals "
                                        "(default: every input vs the baseline)")
    flip_test: bool = option(True, "evaluate with the flip test")
    save_predictions: bool = option(False, "also write each cell's per-frame predictions on every test set "
                                           "(cells/<train>/<lifter>/<input>/predictions_<test>.npz, for auglift view)")
    title: str = option("AugLift cross-dataset matrix", "report title")
    notes: tuple[str, ...] = option((), "markdown paragraphs under the report's title")


def load_matrix_config(
    config: PathLike | Mapping[str, Any],
    *,
    overrides: Iterable[str] = (),
    out: PathLike | None = None,
    base_dir: PathLike | None = None,
) -> MatrixConfig:
    """Read and validate a matrix config (TOML path or dict).

    ``overrides`` are ``"train.optim.epochs=3"``-style strings applied to the raw config;
    relative PoseSet paths are resolved against ``base_dir`` (default: the current directory).
    """
    raw, source = _read_raw(config, overrides)
    m = _matrix_section(raw.get("matrix", {}), source)
    lifter_over = raw.get("lifters", {})
    if not isinstance(lifter_over, Mapping) or not all(isinstance(v, Mapping) for v in lifter_over.values()):
        raise ConfigError(f"{source}: lifters: expected tables [lifters.<name>] of training overrides")
    lifter_over = {k: dict(v) for k, v in lifter_over.items()}
    lifters = list(m.lifters or lifter_over)
    _check_names(lifters, list(m.inputs), source)
    seeds = {k: _seed_list(lifter_over.get(k, {}).pop("seeds", m.seeds), f"{source}: lifters.{k}.seeds")
             for k in lifters}
    contrasts = _contrasts(m, source)
    bdir = Path(base_dir) if base_dir is not None else Path.cwd()
    trains = [_data_spec(n, v, f"{source}: train_sets.{n}", bdir) for n, v in raw.get("train_sets", {}).items()]
    tests = [_data_spec(n, v, f"{source}: test_sets.{n}", bdir) for n, v in raw.get("test_sets", {}).items()]
    if not trains:
        raise ConfigError(f"{source}: train_sets: at least one training set is needed")
    if not tests:
        raise ConfigError(f"{source}: test_sets: at least one test set is needed")
    base_train = dict(raw.get("train", {}))
    if "data" in base_train and ({"train", "val"} & set(base_train["data"])):
        raise ConfigError(f"{source}: train.data.train/val: set by the matrix from [train_sets]")
    if m.baseline not in m.inputs:
        raise ConfigError(f"{source}: matrix.baseline: {short(m.baseline)} is not one of matrix.inputs "
                          f"({', '.join(m.inputs)}); relative changes are measured against it")
    # validate every cell's training config and build its lifter (without weights) now, so a typo or a
    # lifter argument it rejects fails before hours of training the cells before it
    for lifter in lifters:
        for inp in m.inputs:
            cfg = _cell_train_config(base_train, lifter_over.get(lifter, {}), lifter, inp, trains[0], None)
            cell_cfg = load_config(cfg | {"_source": f"{source} (cell {lifter}/{inp})"})
            if ":" not in lifter:  # (a lifter outside auglift may not build on the meta device)
                with torch.device("meta"):
                    build_lifter(cell_cfg, len(parse_channels(input_options(inp)["channels"])), 17)
    return MatrixConfig(out=Path(out) if out is not None else Path(m.out), lifters=lifters, inputs=list(m.inputs),
                        train_sets=trains, test_sets=tests, train=base_train,
                        lifter_overrides=lifter_over, seeds=seeds, contrasts=contrasts, baseline=m.baseline,
                        flip_test=m.flip_test, save_predictions=m.save_predictions, title=m.title,
                        notes=list(m.notes), source=source)


def _read_raw(config: PathLike | Mapping[str, Any], overrides: Iterable[str]) -> tuple[dict[str, Any], str]:
    """The config as a nested dict with the ``--set`` overrides applied, and its origin for messages."""
    if isinstance(config, Mapping):
        raw: dict[str, Any] = copy.deepcopy(dict(config))
        source = str(raw.pop("_source", "<matrix>"))
    else:
        source = str(Path(config))
        raw = read_toml(config, "matrix config")
    for text in overrides:
        set_dotted(raw, *parse_override(text), where=f"--set {short(text, quote=False)}")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: {unknown[0]}: unknown section (known: {', '.join(sorted(_TOP_KEYS))})")
    return raw, source


def _seed_list(value: Any, where: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{where}: expected a list of integer seeds, got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: seeds repeat in {list(value)}")
    return list(value)


def _contrasts(m: MatrixSection, source: str) -> list[tuple[str, str]]:
    """``matrix.contrasts`` as (input, reference) pairs; default: every input against the baseline."""
    if not m.contrasts:
        return [(i, m.baseline) for i in m.inputs if i != m.baseline]
    out = []
    for text in m.contrasts:
        a, _, b = (x.strip() for x in str(text).partition(" vs "))
        if a not in m.inputs or b not in m.inputs:
            raise ConfigError(f"{source}: matrix.contrasts: {text!r}: expected \"A vs B\" with A and B among "
                              f"matrix.inputs ({', '.join(m.inputs)})")
        out.append((a, b))
    return out


def _matrix_section(table: Any, source: str) -> MatrixSection:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{source}: matrix: expected a table, got {short(table)}")
    known = schema(MatrixSection, "matrix.")
    for key in (f"matrix.{k}" for k in table):
        if key not in known:
            raise unknown_key(key, known, source)
    try:
        return MatrixSection(**table)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _check_names(lifters: list[str], inputs: list[str], source: str) -> None:
    """Lifters must be known (or ``module:callable``), inputs channel sets; both name run directories."""
    if not lifters:
        raise ConfigError(f"{source}: matrix.lifters: no lifters (list them or add [lifters.<name>] tables)")
    for lifter in lifters:
        _path_name(lifter, f"{source}: matrix.lifters")
        if ":" not in lifter and lifter not in MODELS:
            raise ConfigError(f"{source}: matrix.lifters: unknown lifter {short(lifter)}; "
                              f"known: {', '.join(sorted(MODELS))}")
    for inp in inputs:
        _path_name(inp, f"{source}: matrix.inputs")
        opts = input_options(inp)
        try:
            parse_channels(opts["channels"])
        except (ValueError, KeyError, ConfigError) as exc:
            raise ConfigError(f"{source}: matrix.inputs: {exc}") from None
        if opts.get("scale_norm", "none") not in SCALE_NORMS:
            raise ConfigError(f"{source}: matrix.inputs: {inp!r}: after '+' expected a scale normalisation "
                              f"({', '.join(SCALE_NORMS)})")
        if "relative_norm" in opts and (opts["relative_norm"] not in RELATIVE_NORMS
                                        or not {"d", "d_min", "d_max"} & set(parse_channels(opts["channels"]))):
            raise ConfigError(f"{source}: matrix.inputs: {inp!r}: after the second '+' expected a relative-depth "
                              f"normalisation ({', '.join(RELATIVE_NORMS)}) of depth channels")


def _cell_train_config(base: Mapping[str, Any], over: Mapping[str, Any], lifter: str, inp: str,
                       train_set: DataSpec, out: Path | None, seed: int | None = None) -> dict[str, Any]:
    runtime = ({} if seed is None else {"seed": seed}) | ({} if out is None else {"out": str(out)})
    cfg = _deep_merge(_deep_merge(dict(base), over),
                      {"model": {"name": lifter}, "input": input_options(inp), "runtime": runtime})
    cfg["data"] = dict(cfg.get("data", {})) | {"train": train_set.train_section()} | (
        {} if train_set.val is None else {"val": dict(train_set.val)})
    return cfg


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _poseset_identity(path: str) -> dict[str, Any]:
    """What makes a PoseSet's content: its meta's field checksums and depth model."""
    try:
        meta = read_json(Path(path) / "meta.json", "meta")
    except DataError:
        return {"path": path}
    fields = {k: v.get("sha256") or v.get("shape") for k, v in meta.get("fields", {}).items()}
    return {"path": path, "fields": fields, "depth_model": meta.get("depth_model")}


def cells_of(cfg: MatrixConfig) -> list[Cell]:
    """All cells in a fixed order (training set, lifter, input, seed)."""
    return [Cell(lifter, inp, t.name, seed) for t in cfg.train_sets for lifter in cfg.lifters for inp in cfg.inputs
            for seed in (cfg.seeds.get(lifter) or [None])]


def _cell_dir(cfg: MatrixConfig, cell: Cell) -> Path:
    return cfg.out / "cells" / cell.key


def _cell_plan(cfg: MatrixConfig, cell: Cell) -> tuple[dict[str, Any], str]:
    tset = next(t for t in cfg.train_sets if t.name == cell.train)
    tcfg = _cell_train_config(cfg.train, cfg.lifter_overrides.get(cell.lifter, {}), cell.lifter, cell.input, tset,
                              _cell_dir(cfg, cell) / "run", cell.seed)
    ident = {"train_config": {k: v for k, v in tcfg.items() if k != "runtime"},
             "runtime": {k: v for k, v in tcfg.get("runtime", {}).items() if k in ("seed", "deterministic", "amp")},
             "train_data": _poseset_identity(tset.path),
             "tests": [{"spec": t.__dict__, "data": _poseset_identity(t.path)} for t in cfg.test_sets],
             "flip_test": cfg.flip_test}
    return tcfg, _fingerprint(ident)


def cell_results(evaluation: Mapping[str, Any], cell: Cell, test: DataSpec, train_domain: str) -> dict[str, Any]:
    """One report cell (see :mod:`auglift.report`) from an :func:`auglift.evaluate.evaluate` result."""
    ds = evaluation["datasets"][0]
    m = ds["metrics"]
    occ = ds.get("occlusion") or {}
    return {
        "lifter": cell.lifter, "input": cell.input, "train": cell.train, "seed": cell.seed, "test": test.name,
        "in_distribution": test.domain == train_domain, "frames": ds["frames"],
        **{k: m[k] for k in ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "pck150", "auc")},
        **{f"mpjpe_{k}": (occ.get(k) or {}).get("mpjpe") for k in ("visible", "occluded")},
        "per_joint": [v["mpjpe"] for v in ds.get("per_joint", {}).values()],
        "per_clip": ds.get("per_clip"),
    }


def _run_cell(cfg: MatrixConfig, cell: Cell, *, progress: bool | None, log: Any) -> list[dict[str, Any]]:
    """Train and evaluate one cell (or reuse its finished results), holding the cell's lock."""
    cdir = _cell_dir(cfg, cell)
    with hold(cdir.parent, name=f".{cdir.name}.lock"):  # one process per cell (the lock sits beside it)
        tcfg, fp = _cell_plan(cfg, cell)
        done = cdir / "cell.json"
        if done.exists():
            try:
                prev = read_json(done, "cell")
            except DataError:
                prev = {}
            if prev.get("fingerprint") == fp and prev.get("results"):
                log(f"  reuse {cell.key} (finished earlier)")
                missing = [t for t in cfg.test_sets if not _predictions_file(cdir, t).is_file()]
                if cfg.save_predictions and missing:  # asked for after the cell ran: evaluate again, keep the results
                    ckpt = Checkpoint.load(resolve_recorded(str(prev["checkpoint"]), cdir))
                    _evaluate_cell(cfg, cell, ckpt, cdir, missing, fp)
                return list(prev["results"])
            log(f"  {cell.key}: configuration or data changed since it ran; training it again")
            shutil.rmtree(cdir)
        elif (cdir / "fingerprint").exists() and (cdir / "fingerprint").read_text().strip() != fp:
            log(f"  {cell.key}: an unfinished run with another configuration is here; starting it afresh")
            shutil.rmtree(cdir)
        cdir.mkdir(parents=True, exist_ok=True)
        write_file(cdir / "fingerprint", fp + "\n")
        if progress is not None:  # --progress/--no-progress over the config's runtime.progress (set: the cell's out)
            tcfg["runtime"] = dict(tcfg["runtime"]) | {"progress": progress}
        tcfg["_source"] = f"{cfg.source} (cell {cell.key})"
        t0 = time.perf_counter()
        best = train(tcfg, resume=True, distributed=False)
        t1 = time.perf_counter()
        results = _evaluate_cell(cfg, cell, Checkpoint.load(best), cdir, cfg.test_sets, fp)
        write_json(done, {"fingerprint": fp, "cell": cell.__dict__, "checkpoint": recorded(best, cdir),
                          "train_seconds": t1 - t0, "eval_seconds": time.perf_counter() - t1, "results": results})
        cache_cell_errors(done)  # the report's post-hoc analyses (cached above): here, in the cell's process
        return results


def _predictions_file(cdir: Path, test: DataSpec) -> Path:
    return cdir / f"predictions_{test.name}.npz"


def _evaluate_cell(cfg: MatrixConfig, cell: Cell, ckpt: Checkpoint, cdir: Path, tests: Sequence[DataSpec], fp: str
                   ) -> list[dict[str, Any]]:
    """Evaluate a cell's checkpoint on ``tests`` (``eval_<test>.json``, predictions when asked, the post-hoc
    analyses' per-frame errors from the same predictions for the cell's fingerprint ``fp``); its report cells."""
    tset = next(t for t in cfg.train_sets if t.name == cell.train)
    results = []
    for test in tests:
        ev = evaluate(ckpt, test.path, flip_test=cfg.flip_test, split=test.split, subjects=test.subjects or None,
                      actions=test.actions or None, channels=input_options(cell.input)["channels"],
                      save_predictions=_predictions_file(cdir, test) if cfg.save_predictions else None,
                      on_prediction=lambda ps, pred, t=test.name: write_cell_errors(cdir, t, fp, ps, pred))
        write_json(cdir / f"eval_{test.name}.json", ev)
        results.append(cell_results(ev, cell, test, tset.domain))
    return results


def run_matrix(
    config: PathLike | Mapping[str, Any] | MatrixConfig,
    *,
    overrides: Iterable[str] = (),
    out: PathLike | None = None,
    progress: bool | None = None,
    report: bool = True,
    log: Any = None,
    wait_timeout_s: float = 7 * 24 * 3600.0,
    overwrite: bool = False,
    jobs: int = 1,
    pool: ProcessPoolExecutor | None = None,
) -> dict[str, Any]:
    """Train and evaluate every cell (reusing finished ones), then write the report.

    ``jobs > 1``: train that many cells at once in worker processes of
    :func:`auglift.workers.process_pool` with ``max(1, cores // jobs)`` torch threads each; ``pool``: run
    the cells in this pool instead (one made by :func:`~auglift.workers.process_pool`). Ignored under
    ``torchrun`` (one process per rank).

    Returns ``{"cells": [...report cells...], "paths": {...}, "out": Path}``. Under ``torchrun``
    every rank calls this; cell ``i`` runs on rank ``i % WORLD_SIZE`` and rank 0 writes the report
    once every cell has finished (other ranks return their own cells and no paths). ``out`` must be
    absent, empty or a matrix run unless ``overwrite``; each cell is locked while it runs.
    """
    cfg = config if isinstance(config, MatrixConfig) else load_matrix_config(config, overrides=overrides, out=out)
    if jobs < 1:
        raise ConfigError(f"matrix jobs must be at least 1, got {jobs}")
    log = log or log_stderr
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cells = cells_of(cfg)
    _check_data(cfg)
    claim(cfg.out, "matrix", overwrite=overwrite)
    mine = [c for i, c in enumerate(cells) if i % world == rank]
    if world > 1:
        log(f"rank {rank}/{world}: {len(mine)} of {len(cells)} cells")
    results: list[dict[str, Any]] = []
    parallel = world == 1 and (pool is not None or (jobs > 1 and len(mine) > 1))
    if parallel and pool is not None:
        results = _run_in_pool(pool, cfg, mine)
    elif parallel:
        with process_pool(min(jobs, len(mine)), log=log, threads=max(1, available_cores() // jobs)) as own:
            results = _run_in_pool(own, cfg, mine)
    for i, cell in enumerate([] if parallel else mine):
        log(f"[{i + 1}/{len(mine)}] cell {cell.key}")
        try:
            results += _run_cell(cfg, cell, progress=progress, log=log)
        except BaseException as exc:
            if world > 1:
                write_json(_cell_dir(cfg, cell) / "failed.json", {"rank": rank, "error": str(exc)})
            raise
    if rank != 0:
        return {"cells": results, "paths": {}, "out": cfg.out}
    all_results = _collect(cfg, cells, wait_timeout_s=wait_timeout_s if world > 1 else 0.0)
    paths: dict[str, Path] = {}
    if report:
        paths = write_report(all_results, cfg.out, title=cfg.title, baseline=cfg.baseline, notes=cfg.notes,
                             contrasts=cfg.contrasts)
    return {"cells": all_results, "paths": paths, "out": cfg.out}


def _cell_job(cfg: MatrixConfig, cell: Cell, header: str) -> list[dict[str, Any]]:
    """One cell in a pool worker (no progress bars: several would interleave)."""
    worker_log(header)
    return _run_cell(cfg, cell, progress=False, log=worker_log)


def _run_in_pool(pool: ProcessPoolExecutor, cfg: MatrixConfig, cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """The report cells of ``cells`` trained in ``pool``, in the order of ``cells``. The first error cancels
    the cells not yet started and is raised once the running ones have finished."""
    futures = [pool.submit(run_returning_errors, _cell_job, cfg, cell, f"[{i + 1}/{len(cells)}] cell {cell.key}")
               for i, cell in enumerate(cells)]
    try:
        for f in as_completed(futures):
            raise_returned(f.result())
    except BaseException:
        for f in futures:
            f.cancel()
        raise
    return [r for f in futures for r in f.result()]


def _check_data(cfg: MatrixConfig) -> None:
    """Open and validate every PoseSet of the matrix before any cell trains, so a
    wrong path or a broken set fails at once instead of after hours of training the first cells."""
    for spec in [*cfg.train_sets, *cfg.test_sets]:
        for path in (spec.path, *([spec.val["path"]] if spec.val else [])):
            PoseSet.load(path, validate=True)


def _collect(cfg: MatrixConfig, cells: Sequence[Cell], *, wait_timeout_s: float) -> list[dict[str, Any]]:
    """Every cell's results from its ``cell.json`` (waiting for other ranks' cells up to the timeout)."""
    deadline = time.monotonic() + wait_timeout_s
    out: list[dict[str, Any]] = []
    for cell in cells:
        done = _cell_dir(cfg, cell) / "cell.json"
        failed = _cell_dir(cfg, cell) / "failed.json"
        while not done.exists():
            if failed.exists():
                info = read_json(failed, "failed")
                raise ConfigError(f"{failed}: cell {cell.key} failed on rank {info.get('rank')}: {info.get('error')}")
            if time.monotonic() > deadline:
                raise DataError(done, "cell", f"cell {cell.key} has not finished")
            time.sleep(2.0)
        out += list(read_json(done, "cell")["results"])
    return out
