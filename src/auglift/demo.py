"""``auglift demo``: the AugLift experiment end to end on the embedded synthetic world.

1. generate three domains of the synthetic world (:mod:`auglift.datasets.synthetic`): ``lab``
   (H36M-like; the training set is its train subjects; the in-distribution test set ``lab_test``
   is a second draw of the same domain with another seed: new bodies, sequences and cameras),
   ``fitness`` (Fit3D-like) and ``outdoor`` (3DPW-like), both unseen in training;
2. extract UADD descriptors with the oracle depth estimator (the world's rendered depth after
   its monocular-depth error model, metric flavour) in fast mode (:mod:`auglift.depth.extract`);
3. train SimpleBaseline and a 27-frame VideoPose3D TCN on ``lab`` with the paper's ablation
   (:data:`INPUTS`): plain ``xy``, ``xy`` + scale normalisation, ``xyc`` + scale normalisation and
   ``uadd`` + scale normalisation (AugLift), plus AugLift with the depth read as a relative-depth
   model's (scale and shift unknown, normalised by the torso's depth spread), on identical data and
   seeds (several seeds for SimpleBaseline), and evaluate them on all three domains
   (:mod:`auglift.matrix`);
4. write the report (tables with mean ± sd over seeds, paired changes with bootstrap intervals
   (:data:`CONTRASTS`), CSV/JSON, plots) and print the summary.

Every step is resumable: a re-run reuses the generated data, the descriptors and the finished
cells. The domains and then the cells run in ``jobs`` worker processes at once (default: one per CPU
core, one torch thread each; :mod:`auglift.workers`). The default size takes about 7 minutes on 2 CPU
cores; ``size="full"`` is a larger run (more frames, more epochs, wider lifters, PoseFormer as well).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auglift.datasets.synthetic import calibration, generate
from auglift.depth.estimators import OracleEstimator
from auglift.depth.extract import extract_uadd, merge_uadd
from auglift.depth.uadd import DescriptorSpec
from auglift.errors import ConfigError, DataError
from auglift.io import PathLike, log_stderr
from auglift.matrix import load_matrix_config, run_matrix
from auglift.outputs import writing
from auglift.poseset import PoseSet
from auglift.report import summary_table, write_report
from auglift.workers import default_jobs, process_pool, raise_returned, run_returning_errors, worker_log

__all__ = ["CONTRASTS", "INPUTS", "SETS", "SIZES", "DemoSize", "demo_matrix_config", "ensure_uadd", "made_with",
           "run_demo", "world_sections"]


@dataclass(frozen=True)
class DemoSize:
    """Frames per domain, training length and lifter sizes of one demo preset."""

    frames: dict[str, int]  # PoseSet name -> frames; names are domains, "lab_test" is a second lab draw
    epochs: int
    batch_size: int
    lr: float
    lifters: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq_seconds: tuple[float, float] = (4.0, 10.0)  # shorter sequences: more subjects/actions per frame budget
    default_lifters: tuple[str, ...] | None = None  # None: every lifter of the preset
    seeds: dict[str, int] = field(default_factory=dict)  # lifter -> training seeds (seed, seed + 1, ...); default 1


SIZES: dict[str, DemoSize] = {
    # the ablation (5 inputs) x (SimpleBaseline x 3 seeds + TCN x 1 seed) = 20 cells, two at a time on 2 CPU cores
    # (see benchmarks/README.md for the measurement): 20 epochs and a 128-channel TCN.
    "default": DemoSize(
        frames={"lab": 20_000, "lab_test": 6_000, "fitness": 4_000, "outdoor": 4_000},
        epochs=20, batch_size=256, lr=1e-3,
        lifters={"simple_baseline": {"width": 512},
                 "tcn": {"receptive_field": 27, "channels": 128}},
        seeds={"simple_baseline": 3},
    ),
    # a larger run: ~1 h on 2 CPU cores for SimpleBaseline + TCN, minutes on a GPU; PoseFormer and
    # MotionBERT (lite) can be added with lifters=[...] (GPU recommended).
    "full": DemoSize(
        frames={"lab": 100_000, "lab_test": 20_000, "fitness": 20_000, "outdoor": 20_000},
        epochs=40, batch_size=512, lr=1e-3,
        lifters={"simple_baseline": {"width": 1024},
                 "tcn": {"receptive_field": 81, "channels": 512},
                 "poseformer": {"receptive_field": 27},
                 "motionbert": {"receptive_field": 81, "size": "lite"}},
        default_lifters=("simple_baseline", "tcn"), seeds={"simple_baseline": 3, "tcn": 3},
    ),
    # seconds: for tests and a smoke check (numbers are meaningless).
    "tiny": DemoSize(
        frames={"lab": 1_200, "lab_test": 300, "fitness": 300, "outdoor": 300},
        epochs=1, batch_size=64, lr=1e-3,
        lifters={"simple_baseline": {"width": 64, "num_blocks": 1},
                 "tcn": {"receptive_field": 9, "filter_widths": [3, 3], "channels": 32}},
        seq_seconds=(0.4, 0.8), seeds={"simple_baseline": 2},
    ),
}
# Training precision of every demo cell: bf16 autocast where the CPU (or GPU) has bf16 kernels, float32
# elsewhere (runtime.amp = "auto"); README "The demo", measured against float32.
AMP = "auto"
# PoseSet name -> (domain, seed offset)
SETS = {"lab": ("lab", 0), "lab_test": ("lab", 3), "fitness": ("fitness", 1), "outdoor": ("outdoor", 2)}
# The ablation: plain lifting, + scale normalisation (the training set's mean person box), + confidence,
# + depth (UADD: AugLift as the paper v4 defines it, descriptors and scale normalisation); and AugLift with the
# depth channels encoded as a relative-depth model's (per frame: minus the root's depth, divided by the torso
# joints' depth spread, input.relative_norm = "torso", which keeps the body's relief; issue 16 item 6).
INPUTS = ("xy", "xy+bbox", "xyc+bbox", "uadd+bbox", "uadd+bbox+torso")
# what each part contributes (A vs B), reported with intervals
CONTRASTS = {"xy+bbox vs xy": "scale normalisation", "xyc+bbox vs xy+bbox": "confidence",
             "uadd+bbox vs xyc+bbox": "depth (beyond confidence)",
             "uadd+bbox vs xy+bbox": "depth + confidence (AugLift vs scale-normalised xy)",
             "uadd+bbox vs xy": "AugLift vs plain xy",
             "uadd+bbox+torso vs uadd+bbox": "relative depth (torso scale) vs metric depth",
             "uadd+bbox+torso vs xyc+bbox": "relative depth beyond confidence"}
# UADD of the demo: the default descriptor (the paper's statistics, its linear radius rule in torso lengths), fast mode.
DEMO_DESCRIPTOR = DescriptorSpec(mode="fast")


def _wait(jobs: Iterable[Future[Any]]) -> None:
    """Wait for pool jobs submitted with :func:`run_returning_errors`, raising the first error."""
    for job in list(jobs):
        raise_returned(job.result())


def made_with(path: Path, tag: str, want: Mapping[str, Any]) -> PoseSet | None:
    """The PoseSet at ``path`` when its ``meta["extra"][tag]`` records ``want`` (the arguments it was generated
    with: the demo's or a sweep world's) and it was generated with ``want["domain"]``'s current calibration
    (a world made before a calibration change is made again), else None."""
    if (path / "meta.json").exists():
        with contextlib.suppress(DataError):
            ps = PoseSet.load(path)
            extra = ps.meta.get("extra", {})
            if (extra.get(tag) == dict(want)
                    and extra.get("synthetic", {}).get("calibration") == calibration(want["domain"])):
                return ps
    return None


def _ensure_domain(path: Path, domain: str, frames: int, seed: int, seq_seconds: tuple[float, float],
                   log: Callable[[str], None]) -> None:
    want = {"domain": domain, "frames": frames, "seed": seed, "seq_seconds": list(seq_seconds)}
    ps = made_with(path, "demo", want)
    if ps is not None:
        log(f"  reuse {path.name}: {len(ps):,} frames in {path}")
        return
    t = time.perf_counter()
    ps = generate(domain, frames, seed, seq_seconds=seq_seconds)
    ps.meta["extra"] = dict(ps.meta.get("extra", {})) | {"demo": want}
    ps.save(path)
    log(f"  generated {path.name} ({domain}): {len(ps):,} frames, {len(ps.clips)} clips in "
        f"{time.perf_counter() - t:.1f} s")


def _has_uadd(path: Path) -> bool:
    """Whether the PoseSet at ``path`` holds the demo's descriptors (:data:`DEMO_DESCRIPTOR`, oracle depth)."""
    ps = PoseSet.load(path)
    dm = ps.meta.get("depth_model") or {}
    return (ps.uadd is not None and dm.get("name") == OracleEstimator("metric").name and "descriptor" in dm
            and DescriptorSpec.from_dict(dm["descriptor"]) == DEMO_DESCRIPTOR)


def ensure_uadd(path: Path, log: Callable[[str], None], progress: bool | None, *, log_reuse: bool = True,
                shard: tuple[int, int] | None = None) -> None:
    """The demo's descriptors (:data:`DEMO_DESCRIPTOR`, oracle depth) in the PoseSet at ``path``, unless it has them
    (said in ``log`` when ``log_reuse``). ``shard = (i, n)``: only the i-th of n parts of the frames, not merged
    (:func:`_merge_shards` merges once every part is done)."""
    if _has_uadd(path):
        if log_reuse and shard is None:
            log(f"  reuse descriptors of {path.name} (oracle depth)")
        return
    t = time.perf_counter()
    est = OracleEstimator("metric")
    res = extract_uadd(path, est, descriptor=DEMO_DESCRIPTOR, batch_size=128, chunk_frames=2048, progress=progress,
                       shard=shard, merge=shard is None)
    part = "" if shard is None else f" (part {shard[0] + 1} of {shard[1]})"
    log(f"  descriptors for {path.name}{part}: {res.rows:,} frames in {time.perf_counter() - t:.1f} s "
        f"({est.name}, fast mode)")


def _merge_shards(path: Path, log: Callable[[str], None]) -> None:
    """Merge the descriptor parts :func:`ensure_uadd` wrote with ``shard`` into the PoseSet (unless it has them)."""
    if not _has_uadd(path):
        merge_uadd(path)
        log(f"  descriptors for {path.name}: {len(PoseSet.load(path)):,} frames merged from its parts")


def _shards(frames: dict[str, int], jobs: int) -> dict[str, int]:
    """Parts per PoseSet for ``jobs`` workers: a set larger than its share of the frames is split so that the
    workers finish together (default demo on 2 cores: lab in 2 parts, the others whole)."""
    total = sum(frames.values())
    return {name: max(1, math.ceil(n * jobs / total - 1e-9)) for name, n in frames.items()}


def world_sections(data: Path, size: Any, seed: int) -> dict[str, Any]:
    """The ``train_sets``, ``test_sets`` and ``train`` tables of a matrix on the demo's world in ``data``: trained on
    ``lab``, tested on ``lab_test`` (as ``lab``), ``fitness`` and ``outdoor``, with ``size``'s lr, epochs and batch
    and :data:`AMP` precision."""
    return {
        "train_sets": {"lab": {"path": str(data / "lab"), "split": "train"}},
        "test_sets": {"lab": {"path": str(data / "lab_test")},
                      "fitness": {"path": str(data / "fitness")},
                      "outdoor": {"path": str(data / "outdoor")}},
        "train": {"optim": {"optimizer": "adam", "lr": size.lr, "lr_decay": 0.95, "epochs": size.epochs,
                            "batch_size": size.batch_size},
                  "augment": {"flip": True, "flip_test": True},
                  "runtime": {"seed": seed, "log": False, "amp": AMP}},
    }


def demo_matrix_config(data: Path, out: Path, size: DemoSize, lifters: Sequence[str], seed: int) -> dict[str, Any]:
    """The matrix config the demo runs (a dict in the :mod:`auglift.matrix` schema)."""
    return {
        "matrix": {"out": str(out), "lifters": list(lifters), "inputs": list(INPUTS), "baseline": "xy",
                   "contrasts": list(CONTRASTS), "flip_test": True,
                   "title": "AugLift demo on the embedded synthetic world"},
        **world_sections(data, size, seed),
        "lifters": {name: {"model": {"kwargs": dict(size.lifters[name])},
                           "seeds": list(range(seed, seed + size.seeds.get(name, 1)))} for name in lifters},
    }


def run_demo(
    out: PathLike = "runs/demo",
    *,
    size: str = "default",
    lifters: Sequence[str] | None = None,
    seed: int = 0,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    overwrite: bool = False,
    jobs: int | None = None,
) -> dict[str, Any]:
    """Run the demo into ``out`` (data in ``out/data``, cells and report in ``out``); ``out`` is a matrix
    run directory (:mod:`auglift.outputs`: refused if it holds something else, unless ``overwrite``; locked).

    ``jobs``: worker processes generating the domains and training the cells at once, one torch thread each
    (default: one per CPU core, at most 8; 1 when a GPU is there: the cells then run one after the other in
    this process, with its threads).

    Returns the :func:`auglift.matrix.run_matrix` result plus ``"summary"`` (rows of
    :func:`auglift.report.summary_table`), ``"seconds"`` and ``"notes"``.
    """
    if size not in SIZES:
        raise ConfigError(f"demo size must be one of {', '.join(SIZES)}, got {size!r}")
    preset = SIZES[size]
    lifters = list(lifters or preset.default_lifters or preset.lifters)
    unknown = [x for x in lifters if x not in preset.lifters]
    if unknown:
        raise ConfigError(f"demo lifters must be among {', '.join(preset.lifters)} for size {size!r}, got {unknown}")
    jobs = default_jobs(jobs, "demo")
    log = log or log_stderr
    with writing(out, "matrix", overwrite=overwrite) as root:
        if jobs == 1:
            return _run(root, size, preset, lifters, seed, progress, log, None)
        with process_pool(jobs, log=log) as pool:
            return _run(root, size, preset, lifters, seed, progress, log, pool, jobs)


def _run(out: Path, size: str, preset: DemoSize, lifters: list[str], seed: int, progress: bool | None,
         log: Callable[[str], None], pool: Any, jobs: int = 1) -> dict[str, Any]:
    data = out / "data"
    t0 = time.perf_counter()
    log(f"auglift demo ({size}): data and depth descriptors in {data}")
    sets = [(data / name, *SETS[name], frames) for name, frames in preset.frames.items()]
    if pool is None:
        for path, domain, offset, frames in sets:
            _ensure_domain(path, domain, frames, seed * 10 + offset, preset.seq_seconds, log)
            ensure_uadd(path, log, progress)
    else:  # the sets at once, then their descriptors with the large sets in parts (lab, the largest, first)
        _wait(pool.submit(run_returning_errors, _ensure_domain, path, domain, frames, seed * 10 + offset,
                          preset.seq_seconds, worker_log) for path, domain, offset, frames in sets)
        parts = _shards(preset.frames, jobs)
        _wait(pool.submit(run_returning_errors, ensure_uadd, data / name, worker_log, False,
                          shard=None if n == 1 else (i, n)) for name, n in parts.items() for i in range(n))
        for name, n in parts.items():
            if n > 1:
                _merge_shards(data / name, log)
    t_data = time.perf_counter() - t0
    log("training and evaluating (lifter x input on lab; tests on lab, fitness, outdoor)")
    cfg = load_matrix_config(demo_matrix_config(data, out, preset, lifters, seed))
    res = run_matrix(cfg, progress=progress, report=False, log=log, pool=pool)
    seconds = time.perf_counter() - t0
    notes = _notes(data, size, seconds, t_data)
    res["paths"] = write_report(res["cells"], out, title=cfg.title, baseline="xy", notes=notes,
                                contrasts=cfg.contrasts)
    res["summary"] = summary_table(res["cells"], baseline="xy")
    res["seconds"] = seconds
    res["notes"] = notes
    return res


def _notes(data: Path, size: str, seconds: float, t_data: float) -> list[str]:
    lines = [f"Demo size `{size}`: {seconds:.0f} s in all ({t_data:.0f} s data + descriptors). Training set: "
             "`lab` train subjects; `lab` (test) is a second draw of the lab domain with another seed (new bodies, "
             "sequences and camera placements: in-distribution), `fitness` and `outdoor` are "
             "unseen domains (out-of-distribution). Depth: the world's oracle depth after its monocular-"
             "depth error model (metric), UADD in fast mode with the paper's statistics and its linear radius "
             "rule in torso lengths (TorsoRadius). "
             "Inputs: `xy` (2D only), `xy+bbox` (2D divided by the training set's mean person box: scale "
             "normalisation), `xyc+bbox` (+ detector confidence), `uadd+bbox` (+ UADD depth descriptors: AugLift), "
             "`uadd+bbox+torso` (AugLift with the depth read as a relative-depth model's: per frame minus the "
             "root's depth and divided by the torso joints' depth spread, so its scale and shift carry nothing). "
             "Contrasts: " + "; ".join(f"`{k}` = {v}" for k, v in CONTRASTS.items()) + ".", ""]
    rows = ["| domain | like | frames | image | focal (px) | root depth (m) | depth scale error (log sd) | "
            "2D noise (fraction of person height) |", "|---|---|---|---|---|---|---|---|"]
    for name in ("lab", "lab_test", "fitness", "outdoor"):
        d = SETS[name][0]
        ps = PoseSet.load(data / name)
        cal = calibration(d)
        w, h = int(ps.clips.width[0]), int(ps.clips.height[0])
        z = ps.kp3d[:, 0, 2]
        rows.append(f"| {name} | {cal['like']} | {len(ps):,} | {w}x{h} | {cal['rig']['focal'][0]:.0f} | "
                    f"{float(z.mean()):.2f} | {cal['depth']['log_scale_sd']} | {cal['detector']['sigma_frac']} |")
    return [*lines, *rows]
