"""Train a lifter from a TOML configuration: single process or ``torchrun`` DDP, resumable, deterministic.

``train(config)`` runs ``setup -> for each epoch: train_epoch; validate; end_epoch`` and returns the
best checkpoint's path. The run directory gets ``last.pt`` (the full state after each epoch, or every
``runtime.checkpoint_every`` steps), ``best.pt`` (lowest validation MPJPE, no optimiser state),
``history.csv``, ``run.json`` (config, timings, best epoch) and TensorBoard scalars in ``tb/`` when
``tensorboard`` is installed (the ``tensorboard`` extra; without it one line says they are not written
and ``run.json`` records ``"tensorboard": null``). Batches come from :mod:`auglift.batches`; the loss is
:func:`auglift.metrics.mpjpe_loss` plus the weighted velocity and N-MPJPE terms of ``[loss]``.

Same config + seed + thread count -> bit-identical weights on CPU (deterministic algorithms), and a
run resumed from ``last.pt`` ends with the weights of an uninterrupted one. Under ``torchrun`` (gloo
on CPU, nccl on CUDA) ``optim.batch_size`` is the global batch: each rank takes an interleaved share
(:func:`~auglift.batches.shard_batch`) and gradients are averaged, so N ranks follow the single-process
trajectory up to float summation order (BatchNorm: per-rank statistics on CPU, SyncBatchNorm on
CUDA). Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import importlib
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from torch import nn
from tqdm.auto import tqdm

from auglift import __version__
from auglift.batches import Batch, WindowSet, epoch_batches
from auglift.checkpoint import Checkpoint, LifterSpec, Provenance, TrainingState
from auglift.config import DataSubset, LossSection, TrainConfig, load_config
from auglift.encoding import EncoderState, check_compatible, fit, flip_input, flip_pose, parse_channels
from auglift.errors import ConfigError, DataError, short
from auglift.io import PathLike, json_safe, tqdm_disable, write_csv, write_json
from auglift.metrics import joint_errors, mpjpe_loss, n_mpjpe_loss
from auglift.models import MODELS, build, register, set_bn_momentum
from auglift.outputs import writing
from auglift.poseset import PoseSet
from auglift.predict import amp_dtype, auto_batch, predict_windows, resolve_amp, resolve_device, windows_for
from auglift.skeleton import JointSet, get_joint_set

__all__ = ["RESUME_SAFE_KEYS", "apply_flips", "bn_momentum", "build_lifter", "check_resume", "train"]


# Config keys that may change between a run and its --resume (they do not change the result,
# or are expected to change: more epochs, moved data).
RESUME_SAFE_KEYS = frozenset({
    "optim.epochs", "data.validate", "data.train.path", "data.val.path", "runtime.device", "runtime.out",
    "runtime.progress", "runtime.log", "runtime.checkpoint_every", "runtime.val_batch_size",
    "runtime.tensorboard", "runtime.threads",
})


# --------------------------------------------------------------------------- distributed
@dataclass
class _Dist:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @classmethod
    def from_env(cls) -> _Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def setup(self, device: torch.device) -> None:
        if self.enabled and not tdist.is_initialized():
            tdist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            self.initialised_here = True

    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier(device_ids=[self.local_rank] if tdist.get_backend() == "nccl" else None)

    def teardown(self) -> None:
        if self.initialised_here and tdist.is_initialized():
            # Reference cycles (the DDP wrapper's hooks) may still hold the process group: collect
            # them so the group and gloo's worker threads end here, while the interpreter runs,
            # and not in its final garbage collection, where a worker releasing a tensor aborts
            # the process ("terminate called without an active exception").
            gc.collect()
            tdist.destroy_process_group()
            gc.collect()

    def all_sum(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        if tdist.get_backend() == "nccl":
            t = t.cuda()
        tdist.all_reduce(t)
        return t.cpu().tolist()

    def gather_bytes(self, t: torch.Tensor) -> list[torch.Tensor]:
        """All ranks' uint8 tensors (same length) — used for RNG states."""
        if not self.enabled:
            return [t.clone()]
        src = t.cuda() if tdist.get_backend() == "nccl" else t
        out = [torch.empty_like(src) for _ in range(self.world)]
        tdist.all_gather(out, src)
        return [o.cpu() for o in out]


# --------------------------------------------------------------------------- the run's state
def _new_accum() -> dict[str, float]:
    return {"loss": 0.0, "mpjpe": 0.0, "count": 0.0, "time": 0.0}


@dataclass
class _Timing:
    """Wall-clock accounting of the loop; per-step averages leave out each process's first (warm-up) step."""

    start: float = field(default_factory=time.perf_counter)
    first_step_s: float | None = None
    fetch_s: float = 0.0  # gathering + encoding batches (in the background thread)
    wait_s: float = 0.0  # the loop waiting for a batch
    step_s: float = 0.0  # whole steps, waiting included
    steps: int = 0  # steps counted in the sums above

    def add(self, fetch: float, wait: float, step: float) -> None:
        if self.first_step_s is None:
            self.first_step_s = time.perf_counter() - self.start
            return
        self.fetch_s += fetch
        self.wait_s += wait
        self.step_s += step
        self.steps += 1

    def as_dict(self) -> dict[str, Any]:
        n = max(self.steps, 1)
        return {"time_to_first_step_s": self.first_step_s, "steps_timed": self.steps,
                "step_ms": 1000 * self.step_s / n, "fetch_ms": 1000 * self.fetch_s / n,
                "wait_ms": 1000 * self.wait_s / n,
                "fetch_fraction": self.fetch_s / self.step_s if self.step_s else None,
                "wait_fraction": self.wait_s / self.step_s if self.step_s else None}


@dataclass
class _Run:
    """Everything a training run holds between its steps."""

    cfg: TrainConfig
    dist: _Dist
    device: torch.device
    timing: _Timing
    train: WindowSet
    val: WindowSet | None
    joints: JointSet
    lifter: LifterSpec
    provenance: Provenance
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    net: nn.Module = field(init=False)  # the model, DDP-wrapped when distributed
    steps: int = 0  # optimiser steps per epoch
    start_epoch: int = 0
    start_step: int = 0
    global_step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    accum: dict[str, float] = field(default_factory=_new_accum)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="auglift-data"))
    writer: Any = None  # TensorBoard SummaryWriter (rank 0, when installed)

    @property
    def out_dir(self) -> Path:
        return Path(str(self.cfg.runtime.out))

    @property
    def is_main(self) -> bool:
        return self.dist.rank == 0

    @cached_property
    def flip_perm(self) -> torch.Tensor:
        """The joint set's left/right permutation ``(J,)`` on the run's device."""
        return torch.as_tensor(self.joints.flip_permutation, device=self.device)

    def checkpoint(self, epoch: int, step_in_epoch: int) -> Checkpoint:
        """The run as a checkpoint (collective under DDP: every rank's RNG state is gathered)."""
        rng_t = self.dist.gather_bytes(torch.get_rng_state())
        rng_c = self.dist.gather_bytes(torch.cuda.get_rng_state(self.device)) if self.device.type == "cuda" else None
        scaler = self.scaler.state_dict() if self.scaler.is_enabled() else None
        training = TrainingState(self.optimizer.state_dict(), self.scheduler.state_dict(), scaler, rng_t, rng_c,
                                 dict(self.accum))
        weights = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        return Checkpoint(self.lifter, self.train.encoder, self.cfg, weights, self.provenance, epoch, step_in_epoch,
                          self.global_step, tuple(copy.deepcopy(self.history)), self.best, self.dist.world, training)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        if self.writer is not None:
            self.writer.close()


# --------------------------------------------------------------------------- train()
def train(
    config: PathLike | Mapping[str, Any] | TrainConfig,
    *,
    overrides: Iterable[str] = (),
    resume: bool = False,
    out: PathLike | None = None,
    distributed: bool | None = None,
    overwrite: bool = False,
) -> Path:
    """Train the lifter described by ``config`` (a TOML path, a nested dict or a
    :class:`~auglift.config.TrainConfig`); return the best checkpoint's path.

    ``overrides``: ``"key=value"`` strings applied on top (``--set``); ``out``: run directory
    (overrides ``runtime.out``); ``resume``: continue from ``<out>/last.pt`` (starts afresh when
    there is none); ``distributed``: ``None`` uses DDP when launched by ``torchrun``
    (``WORLD_SIZE > 1``), ``False`` trains in this process alone even under ``torchrun`` (e.g.
    when the caller shards independent runs over the ranks); ``overwrite``: use a run directory that
    holds files auglift did not write. The run directory is locked for the run (:mod:`auglift.outputs`).
    Raises :class:`ConfigError` for bad configuration and :class:`DataError` for
    bad or missing data (e.g. a PoseSet without the field the input set needs).
    """
    timing = _Timing()
    _warm_imports()
    cfg = load_config(config, overrides)
    if out is not None:
        cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime, out=str(out)))
    if not cfg.runtime.out:
        raise ConfigError(f"{cfg.source}: runtime.out: no run directory; pass out=/--out")
    dist = _Dist.from_env() if distributed is not False else _Dist()
    # rank 0 owns the run directory: refused if another job holds it or auglift did not write it
    owner = writing(cfg.runtime.out, "train", overwrite=overwrite) if dist.rank == 0 else contextlib.nullcontext()
    with owner, _torch_runtime(cfg, dist) as device:
        # runtime.amp = "auto" is recorded as what it chose on this device (a resume elsewhere must choose alike)
        cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime,
                                                                   amp=resolve_amp(cfg.runtime.amp, device)))
        run = setup(cfg, dist, device, resume, timing)
        try:
            for epoch in range(run.start_epoch, cfg.optim.epochs):
                row = train_epoch(run, epoch)
                check_finite_weights(run, epoch, run.steps - 1)
                if run.val is not None:
                    row["val_mpjpe_mm"], row["val_p_mpjpe_mm"] = validate(run)
                end_epoch(run, epoch, row)
        finally:
            run.close()
        dist.barrier()  # every rank done (rank 0 has written its files) before the process group goes away
    return run.out_dir / "best.pt"


@contextlib.contextmanager
def _torch_runtime(cfg: TrainConfig, dist: _Dist) -> Iterator[torch.device]:
    """The run's device, threads, deterministic mode and process group; all restored or torn down on exit."""
    rt = cfg.runtime
    try:
        device = resolve_device(rt.device)
    except ConfigError as exc:
        raise ConfigError(f"{cfg.source}: {exc}") from None
    if device.type == "cuda" and dist.enabled:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if rt.amp == "fp16" and device.type != "cuda":
        raise ConfigError(f"{cfg.source}: runtime.amp: fp16 needs a CUDA device (use bf16 or none on CPU)")
    if rt.amp == "bf16" and device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        # Only where oneDNN has no bf16 kernels (no AVX-512: reference kernels, ~30x slower than float32). With
        # AVX512-BF16 autocast reaches oneDNN's bf16 GEMM (brg_matmul:avx512_core_bf16): a TCN-27 step takes half
        # the CPU time of float32 from the first step on (benchmarks/bench_train_kernels.py --bf16, README).
        print(f"auglift: warning: runtime.amp = 'bf16' on a CPU without bf16 kernels is much slower than "
              f"'none' ({cfg.source})", file=sys.stderr)
    prev_threads = torch.get_num_threads()
    prev_det = torch.get_deterministic_debug_mode()
    if rt.threads:
        torch.set_num_threads(rt.threads)
    if rt.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = False
        # same switch as torch.use_deterministic_algorithms, without its 1-2 s import of torch._inductor
        torch.set_deterministic_debug_mode("warn" if device.type == "cuda" else "error")
    if dist.enabled:
        _join_warm_imports()
    dist.setup(device)
    try:
        yield device
    finally:
        dist.teardown()
        torch.set_num_threads(prev_threads)
        torch.set_deterministic_debug_mode(prev_det)


_WARM_IMPORTS: list[threading.Thread] = []  # the running warm-import thread, if any


def _warm_imports() -> None:
    """Import ``torch._dynamo`` in a background thread while the data loads.

    Constructing the first torch optimiser imports it (1-2 s on a small CPU); doing it now
    overlaps that with PoseSet validation and encoder fitting (time to first step). The process
    group and the model wait for it (:func:`_join_warm_imports`): under load, a DDP run whose
    process group was set up while the import still ran kept extra references to the group, so
    its gloo threads outlived ``destroy_process_group`` and aborted the process at exit
    ("terminate called without an active exception"). Not a daemon thread: an import cut off at
    interpreter exit can abort the process too.
    """
    if "torch._dynamo" in sys.modules or any(t.is_alive() for t in _WARM_IMPORTS):
        return
    t = threading.Thread(target=importlib.import_module, args=("torch._dynamo",), name="auglift-warm-imports")
    _WARM_IMPORTS[:] = [t]
    t.start()


def _join_warm_imports() -> None:
    """Wait for :func:`_warm_imports` to finish."""
    while _WARM_IMPORTS:
        _WARM_IMPORTS.pop().join()


# --------------------------------------------------------------------------- setup
def setup(cfg: TrainConfig, dist: _Dist, device: torch.device, resume: bool, timing: _Timing) -> _Run:
    """Data, encoder, lifter, optimiser and (when resuming) the state of the previous run, in that order."""
    ckpt = _previous_run(cfg, resume)
    validated: set[Path] = set()
    train_ps, clips = _open_split(cfg.data.train, "train", cfg, validated)
    if ckpt is not None:
        encoder = ckpt.encoder
        check_compatible(encoder, train_ps)
    else:
        encoder = fit(train_ps, cfg.input, rows=train_ps.rows_of(clips))
    joints = get_joint_set(train_ps.meta["joint_set"])
    model, lifter = _make_model(cfg, encoder, joints, init=ckpt is None, device=device)
    train_set = _window_set(cfg, cfg.data.train, train_ps, clips, encoder, lifter)
    if len(train_set) < dist.world:
        raise DataError(train_ps.path, "clips", f"only {len(train_set)} training windows for {dist.world} ranks")
    val_set = None
    if cfg.data.val.path:
        val_ps, val_clips = _open_split(cfg.data.val, "val", cfg, validated)
        check_compatible(encoder, val_ps)
        val_set = _window_set(cfg, cfg.data.val, val_ps, val_clips, encoder, lifter)
    opt_cls = torch.optim.AdamW if cfg.optim.optimizer == "adamw" else torch.optim.Adam
    # the fused kernel (CPU and CUDA): one pass over each parameter instead of ~10 tensor ops; a bf16
    # SimpleBaseline step on the CPU spent a quarter of its time in the for-loop Adam
    optimizer = opt_cls(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                        amsgrad=cfg.optim.amsgrad, fused=device.type in ("cpu", "cuda"))
    # the training set's depth model and descriptor options: inference samples descriptors the same way
    provenance = Provenance.of(joints.name, copy.deepcopy(train_ps.meta.get("depth_model")), where=train_ps.path)
    run = _Run(cfg, dist, device, timing, train_set, val_set, joints, lifter, provenance, model, optimizer,
               torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.optim.lr_decay),
               torch.amp.GradScaler(device.type, enabled=cfg.runtime.amp == "fp16"))
    _restore(run, ckpt)
    if dist.enabled and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = nn.parallel.DistributedDataParallel
    run.net = ddp(model, device_ids=[device.index] if device.type == "cuda" else None) if dist.enabled else model
    _start_output(run)
    if cfg.optim.batch_size % dist.world:
        raise ConfigError(f"{cfg.source}: optim.batch_size: {cfg.optim.batch_size} is not divisible by the "
                          f"{dist.world} DDP ranks")
    run.steps = max(1, len(train_set) // cfg.optim.batch_size)
    _check_batch_norm(run)
    if cfg.optim.steps_per_epoch:
        run.steps = min(run.steps, cfg.optim.steps_per_epoch)
    return run


def _previous_run(cfg: TrainConfig, resume: bool) -> Checkpoint | None:
    """The run directory's ``last.pt`` when resuming (its config must match), None for a fresh run."""
    last = Path(str(cfg.runtime.out)) / "last.pt"
    if not last.exists():
        return None
    if not resume:
        raise ConfigError(f"{last.parent}: holds a checkpoint of an earlier run (last.pt); pass --resume to "
                          "continue it or choose another --out")
    ckpt = Checkpoint.load(last)
    check_resume(ckpt.config, cfg, last)
    return ckpt


def check_resume(old: TrainConfig, new: TrainConfig, where: Path) -> None:
    """Refuse to resume a run whose checkpoint config ``old`` differs from ``new`` in a key that changes the
    result (anything but :data:`RESUME_SAFE_KEYS`). Keys the checkpoint's config lacked read as their defaults."""
    a, b = old.flat(), new.flat()
    if parse_channels(old.input.channels) != parse_channels(new.input.channels):
        raise ConfigError(f"{where}: checkpoint was trained on input {a['input.channels']!r}, "
                          f"the config asks for {b['input.channels']!r}; use another --out or the same input")
    diff = sorted(k for k in set(a) | set(b) if k not in RESUME_SAFE_KEYS and a.get(k) != b.get(k))
    if diff:
        shown = "; ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in diff[:5])
        raise ConfigError(f"{where}: cannot resume, the config differs from the checkpoint's in {shown}")


def _open_split(sub: DataSubset, which: str, cfg: TrainConfig, validated: set[Path]) -> tuple[PoseSet, np.ndarray]:
    """The PoseSet of ``data.<which>`` (values checked once per directory) and its selected clips ``(C,)`` bool."""
    if not sub.path:
        raise ConfigError(f"{cfg.source}: data.{which}.path: no PoseSet given")
    ps = PoseSet.load(sub.path)
    key = Path(sub.path).resolve()
    if cfg.data.validate and key not in validated:
        ps.validate()
        validated.add(key)
    ps.require("kp3d", why=f"needed as the {which} target")
    mask = ps.clips.mask(split=sub.split, subject=list(sub.subjects) or None, action=list(sub.actions) or None)
    if not mask.any() or ps.rows_of(mask).size == 0:
        raise DataError(ps.path, "clips", f"no frames match data.{which} split={sub.split!r} "
                                          f"subjects={list(sub.subjects)} actions={list(sub.actions)}")
    return ps, mask


def _window_set(cfg: TrainConfig, sub: DataSubset, ps: PoseSet, clips: np.ndarray, encoder: EncoderState,
                lifter: LifterSpec) -> WindowSet:
    """The lifter's windows over the selected clips; at most ``max_windows`` of them, evenly spaced."""
    try:
        w = windows_for(ps, lifter, clips=clips, stride=sub.stride)
    except ValueError as exc:
        raise ConfigError(f"{cfg.source}: data.anchor: {exc} (window {lifter.receptive_field})") from None
    n = len(w)
    sel = np.arange(n, dtype=np.int64)
    if sub.max_windows and n > sub.max_windows:
        sel = np.linspace(0, n - 1, sub.max_windows).round().astype(np.int64)
    return WindowSet(ps, w, sel, encoder)


def _make_model(cfg: TrainConfig, encoder: EncoderState, joints: JointSet, *, init: bool,
                device: torch.device) -> tuple[nn.Module, LifterSpec]:
    """The seeded lifter on ``device`` (weights from ``model.init`` for a fresh run) and its spec."""
    torch.manual_seed(cfg.runtime.seed)
    _join_warm_imports()
    m = cfg.model
    model = build_lifter(cfg, len(encoder.channels), joints.num_joints)
    many, causal = bool(getattr(model, "many_to_many", False)), bool(getattr(model, "causal", False))
    anchor = cfg.data.anchor if cfg.data.anchor != "auto" else ("start" if many else ("causal" if causal else "center"))
    if many != (anchor == "start"):
        raise ConfigError(f"{cfg.source}: data.anchor: {anchor!r} does not suit a "
                          f"{'many-to-many' if many else 'many-to-one'} lifter")
    if m.init and init:
        _init_weights(model, Checkpoint.load(m.init), cfg, encoder)
    lifter = LifterSpec(m.name, copy.deepcopy(m.kwargs), len(encoder.channels), joints.num_joints,
                        int(getattr(model, "receptive_field", 1)), many, causal, anchor)
    return model.to(device), lifter


def build_lifter(cfg: TrainConfig, in_channels: int, num_joints: int) -> nn.Module:
    """The config's untrained lifter; every failure to build it is a :class:`ConfigError` naming the key."""
    m = cfg.model
    try:
        if ":" in m.name and m.name not in MODELS:  # a lifter outside auglift, named by the config's author
            register(m.name, m.name)
        return build(m.name, in_channels, num_joints, **m.kwargs)
    except (KeyError, ImportError, AttributeError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) else f"cannot import {m.name!r} ({exc})"
        raise ConfigError(f"{cfg.source}: model.name: {msg}") from None
    except ConfigError as exc:
        raise ConfigError(f"{cfg.source}: {exc}") from None
    except (TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise ConfigError(f"{cfg.source}: model.kwargs: {m.name} rejects {short(m.kwargs, 200)}: {exc}") from None


def _init_weights(model: nn.Module, init: Checkpoint, cfg: TrainConfig, encoder: EncoderState) -> None:
    """``model.init``: start from another checkpoint's weights (same lifter, same input channels)."""
    if init.encoder.channels != encoder.channels:
        raise ConfigError(f"{cfg.model.init}: checkpoint was trained on input {init.encoder.label!r} "
                          f"({len(init.encoder.channels)} channels), this config asks for "
                          f"{encoder.label!r} ({len(encoder.channels)} channels)")
    if init.lifter.name != cfg.model.name:
        raise ConfigError(f"{cfg.model.init}: checkpoint holds lifter {init.lifter.name!r}, "
                          f"the config builds {cfg.model.name!r}")
    model.load_state_dict(init.weights)


def _restore(run: _Run, ckpt: Checkpoint | None) -> None:
    """Continue from ``ckpt`` (weights, optimiser, progress, this rank's RNG state), or seed a fresh run."""
    seed, rank = run.cfg.runtime.seed, run.dist.rank
    if ckpt is None:
        torch.manual_seed(_seed32(seed, rank))  # (every device's generator, CUDA's included)
        return
    state = ckpt.training
    assert state is not None  # last.pt always holds it
    run.model.load_state_dict(ckpt.weights)
    run.optimizer.load_state_dict(state.optimizer)
    run.scheduler.load_state_dict(state.scheduler)
    if state.scaler:
        run.scaler.load_state_dict(state.scaler)
    run.start_epoch, run.start_step, run.global_step = ckpt.epoch, ckpt.step_in_epoch, ckpt.global_step
    run.history, run.best = list(ckpt.history), ckpt.best
    run.accum = dict(state.accum or _new_accum())
    if len(state.rng_torch) == run.dist.world:
        torch.set_rng_state(state.rng_torch[rank])
        if run.device.type == "cuda" and state.rng_cuda:
            torch.cuda.set_rng_state(state.rng_cuda[rank], run.device)
    else:  # resumed with another number of ranks: a new, still deterministic, stream
        torch.manual_seed(_seed32(seed, rank, ckpt.epoch, ckpt.step_in_epoch))


def _seed32(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def _start_output(run: _Run) -> None:
    """Rank 0: the run directory, and a TensorBoard writer when ``runtime.tensorboard`` and it is installed."""
    if not run.is_main:
        return
    run.out_dir.mkdir(parents=True, exist_ok=True)
    if run.cfg.runtime.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter  # optional: needs the tensorboard package
        except ImportError:
            print("auglift train: TensorBoard scalars are not written (tensorboard is not installed: pip install "
                  "'auglift[tensorboard]'); history.csv has them", file=sys.stderr, flush=True)
            return
        run.writer = SummaryWriter(str(run.out_dir / "tb"))


def _check_batch_norm(run: _Run) -> None:
    """A lifter with BatchNorm needs at least 2 windows per step and rank (BatchNorm's statistics)."""
    cfg, n = run.cfg, len(run.train)
    per_rank = min(cfg.optim.batch_size, n) // run.dist.world
    if per_rank >= 2 or not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in run.model.modules()):
        return
    key = "optim.batch_size" if cfg.optim.batch_size < n else (
        "data.train.max_windows" if cfg.data.train.max_windows else "data.train.path")
    raise ConfigError(f"{cfg.source}: {key}: lifter {cfg.model.name!r} has BatchNorm layers, which need at least 2 "
                      f"windows per step; this run has {per_rank} ({n} training windows, optim.batch_size "
                      f"{cfg.optim.batch_size}, {run.dist.world} rank(s))")


# --------------------------------------------------------------------------- one epoch
def bn_momentum(epoch: int, epochs: int, start: float, final: float) -> float:
    """BatchNorm momentum for 0-based ``epoch`` of ``epochs``: ``start`` decayed exponentially
    towards ``final`` (reached after the last epoch), VideoPose3D's schedule; ``start`` when
    ``final`` (or ``start``) is 0."""
    if final <= 0 or start <= 0:
        return start
    return start * (final / start) ** (epoch / epochs)


def train_epoch(run: _Run, epoch: int) -> dict[str, Any]:
    """One pass of optimiser steps (from the saved step when resuming inside it); the epoch's history row."""
    cfg, dist, batch_size = run.cfg, run.dist, run.cfg.optim.batch_size
    mom = bn_momentum(epoch, cfg.optim.epochs, cfg.optim.bn_momentum, cfg.optim.bn_momentum_final)
    if mom > 0:
        set_bn_momentum(run.model, mom)
    run.net.train()
    k0 = run.start_step if epoch == run.start_epoch else 0
    if k0 == 0:
        run.accum = _new_accum()
    lr = run.optimizer.param_groups[0]["lr"]
    bar = tqdm(total=run.steps * batch_size, initial=k0 * batch_size, unit="sample", unit_scale=True, leave=False,
               dynamic_ncols=True, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}",
               disable=tqdm_disable(cfg.runtime.progress) if run.is_main else True)
    t_epoch = time.perf_counter()
    for k, batch in epoch_batches(run.train, run.pool, seed=cfg.runtime.seed, epoch=epoch, batch_size=batch_size,
                                  steps=run.steps, start=k0, flip=cfg.augment.flip, rank=dist.rank, world=dist.world):
        loss, mpjpe = train_step(run, batch, epoch, k)
        n = len(batch.flip)
        run.accum["loss"] += loss * n
        run.accum["mpjpe"] += mpjpe * n
        run.accum["count"] += n
        dt = time.perf_counter() - batch.t0
        run.accum["time"] += dt
        run.timing.add(batch.fetch_s, batch.wait_s, dt)
        bar.update(batch_size)
        bar.set_postfix(loss=f"{1000 * run.accum['mpjpe'] / max(run.accum['count'], 1):.1f}mm", refresh=False)
        every = cfg.runtime.checkpoint_every
        if every and (k + 1) % every == 0 and k + 1 < run.steps:
            check_finite_weights(run, epoch, k)
            ck = run.checkpoint(epoch, k + 1)
            if run.is_main:
                ck.save(run.out_dir / "last.pt")
    bar.close()
    tot = dist.all_sum([run.accum["loss"], run.accum["mpjpe"], run.accum["count"]])
    return {"epoch": epoch + 1, "lr": lr, "bn_momentum": mom if mom > 0 else None,
            "train_loss": tot[0] / max(tot[2], 1), "train_mpjpe_mm": 1000 * tot[1] / max(tot[2], 1),
            "val_mpjpe_mm": None, "val_p_mpjpe_mm": None, "epoch_time_s": time.perf_counter() - t_epoch,
            "samples_per_s": run.steps * batch_size / max(run.accum["time"], 1e-9) if k0 == 0 else None,
            "data_fraction": run.timing.as_dict()["fetch_fraction"]}


def train_step(run: _Run, batch: Batch, epoch: int, step: int) -> tuple[float, float]:
    """One optimiser step on ``batch``; returns its loss and MPJPE (metres)."""
    cfg, dev = run.cfg, run.device
    x = torch.from_numpy(batch.x).to(dev, non_blocking=True)
    y = torch.from_numpy(batch.y).to(dev, non_blocking=True)
    mask = torch.from_numpy(batch.mask).to(dev, non_blocking=True)
    if batch.flip.any():
        enc = run.train.encoder
        x, y, mask = apply_flips(x, y, mask, torch.from_numpy(batch.flip).to(dev), run.flip_perm, list(enc.channels),
                                 center=cfg.augment.flip_center, root=enc.root)
    dtype = amp_dtype(cfg.runtime.amp)
    with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        pred = run.net(x)
    pred = pred.float()
    if pred.shape != y.shape:
        raise ValueError(f"lifter {cfg.model.name!r} returned {tuple(pred.shape)}, expected {tuple(y.shape)}")
    loss, mpjpe = training_loss(pred, y, mask, cfg.loss)
    if not torch.isfinite(loss):
        raise diverged(run, epoch, step, f"the loss became {loss.item()}")
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    if cfg.optim.grad_clip > 0:
        run.scaler.unscale_(run.optimizer)
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.optim.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.global_step += 1
    return float(loss.detach()), float(mpjpe.detach())


def diverged(run: _Run, epoch: int, step: int, what: str) -> ConfigError:
    """The error that stops a diverging run at 0-based ``epoch``/``step``; its checkpoints stay as they were."""
    last = run.out_dir / "last.pt"
    kept = f"the last good checkpoint {last} is kept" if last.exists() else "no checkpoint was written"
    return ConfigError(f"{run.cfg.source}: training diverged at epoch {epoch + 1} step {step + 1} "
                       f"(optim.lr = {run.cfg.optim.lr:g}): {what}; {kept}; lower optim.lr, set optim.grad_clip "
                       f"or check {run.train.ps.path} for NaN/inf")


def check_finite_weights(run: _Run, epoch: int, step: int) -> None:
    """Raise :func:`diverged` when a weight of the model is NaN or infinite (before it is validated or saved)."""
    if not all(bool(torch.isfinite(p).all()) for p in run.model.parameters()):
        raise diverged(run, epoch, step, "the weights are no longer finite")


def training_loss(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, weights: LossSection
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, mpjpe)`` for predictions and targets ``(B, T_out, J, 3)`` metres and ``mask (B, T_out, J)``:
    MPJPE + ``velocity_weight`` x the MPJPE of frame-to-frame differences (joints counted in both frames)
    + ``n_mpjpe_weight`` x N-MPJPE (:mod:`auglift.metrics`)."""
    mpjpe = mpjpe_loss(pred, y, mask)
    loss = mpjpe
    if weights.velocity_weight > 0 and pred.shape[1] > 1:
        loss = loss + weights.velocity_weight * mpjpe_loss(pred.diff(dim=1), y.diff(dim=1), mask[:, 1:] & mask[:, :-1])
    if weights.n_mpjpe_weight > 0:
        loss = loss + weights.n_mpjpe_weight * n_mpjpe_loss(pred, y, mask)
    return loss, mpjpe


def apply_flips(x: torch.Tensor, y: torch.Tensor, m: torch.Tensor, flip: torch.Tensor, perm: torch.Tensor,
                channels: list[str], *, center: str = "root", root: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mirror the samples of a batch where ``flip (B,)`` is True: inputs ``x (B, T, J, C)`` around the
    root (or image centre), targets ``y (B, T_out, J, 3)`` (``X -> -X``), loss masks ``m (B, T_out, J)``;
    left/right joints swap in all three."""
    x = torch.where(flip[:, None, None, None], flip_input(x, perm, channels, center=center, root=root), x)
    y = torch.where(flip[:, None, None, None], flip_pose(y, perm), y)
    m = torch.where(flip[:, None, None], m[:, :, perm], m)
    return x, y, m


def validate(run: _Run) -> tuple[float, float]:
    """Validation MPJPE and P-MPJPE (mm) over the val windows, sharded over ranks and summed."""
    assert run.val is not None
    cfg, dist, val = run.cfg, run.dist, run.val
    was = run.model.training
    run.model.eval()
    sel = val.sel[dist.rank:: dist.world]
    sums = [0.0, 0.0, 0.0]
    if len(sel):  # (more ranks than validation windows: this rank has none)
        batch = cfg.runtime.val_batch_size or auto_batch(val.windows.length)
        pred = predict_windows(run.model, val.encoder, val.ps, val.windows, sel, batch_size=batch,
                               flip_test=cfg.augment.flip_test, flip_center=cfg.augment.flip_center,
                               device=run.device, amp=cfg.runtime.amp)
        gt, m = val.targets(sel)
        if not np.isfinite(pred[m]).all():  # (finite weights can still overflow)
            raise diverged(run, len(run.history), run.steps - 1, "the validation predictions are not finite")
        p = np.where(m[..., None], pred, 0.0)
        e1 = joint_errors(p, gt, mask=m)
        e2 = joint_errors(p, gt, align="procrustes", mask=m)
        sums = [float(e1[m].sum()), float(e2[m].sum()), float(m.sum())]
    s = dist.all_sum(sums)
    run.model.train(was)
    return (s[0] / s[2], s[1] / s[2]) if s[2] else (float("nan"), float("nan"))


# --------------------------------------------------------------------------- end of an epoch
def end_epoch(run: _Run, epoch: int, row: dict[str, Any]) -> None:
    """Step the learning rate, keep the best epoch, save ``last.pt`` (and ``best.pt``), history, run.json, logs."""
    run.scheduler.step()
    score = row["val_mpjpe_mm"] if row["val_mpjpe_mm"] is not None else -float(epoch)
    is_best = run.best is None or score < run.best["score"]
    if is_best:
        run.best = {"epoch": epoch + 1, "score": score, "val_mpjpe_mm": row["val_mpjpe_mm"]}
    row["best"] = int(is_best)
    run.history.append(row)
    ck = run.checkpoint(epoch + 1, 0)
    if not run.is_main:
        return
    if is_best:
        dataclasses.replace(ck, training=None).save(run.out_dir / "best.pt")
    ck.save(run.out_dir / "last.pt")
    _write_history(run.out_dir / "history.csv", run.history)
    write_json(run.out_dir / "run.json", json_safe(_run_summary(run)))
    if run.writer is not None:
        for key, value in row.items():
            if isinstance(value, float):
                run.writer.add_scalar(key, value, epoch + 1)
        run.writer.flush()
    if run.cfg.runtime.log:
        print(_epoch_line(row, run.cfg.optim.epochs, is_best), file=sys.stderr, flush=True)


def _run_summary(run: _Run) -> dict[str, Any]:
    """``run.json``: the resolved config, device, windows, best epoch, timings and history."""
    return {"auglift_version": __version__, "config": run.cfg.to_dict(), "device": str(run.device),
            "world_size": run.dist.world, "window": run.lifter.receptive_field, "anchor": run.lifter.anchor,
            "train_windows": len(run.train), "steps_per_epoch": run.steps,
            "val_windows": None if run.val is None else len(run.val), "best": run.best,
            "timing": run.timing.as_dict(), "history": run.history,
            "tensorboard": None if run.writer is None else str(run.out_dir / "tb")}


def _epoch_line(row: Mapping[str, Any], epochs: int, is_best: bool) -> str:
    val = "" if row["val_mpjpe_mm"] is None else f"  val {row['val_mpjpe_mm']:.1f} mm (P {row['val_p_mpjpe_mm']:.1f})"
    sps = "" if row["samples_per_s"] is None else f"  {row['samples_per_s']:,.0f} samples/s"
    return (f"epoch {row['epoch']}/{epochs}  train {row['train_mpjpe_mm']:.1f} mm{val}  lr {row['lr']:.2e}{sps}  "
            f"{row['epoch_time_s']:.1f} s{'  *best*' if is_best else ''}")


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    cols = list(dict.fromkeys(k for row in history for k in row))  # rows of older versions may lack columns
    write_csv(path, [cols, *([("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v))
                              for v in map(row.get, cols)] for row in history)], lineterminator="\n")
