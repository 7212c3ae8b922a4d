"""Train a lifter from a TOML configuration: single process or ``torchrun`` DDP, resumable, deterministic.

``train(config)`` runs the loop described by the config (see :mod:`auglift.config` and
``configs/*.toml``) and returns the path of the best checkpoint. A run directory holds

==================  ==========================================================================
``last.pt``         full training state after the last finished epoch (or step, with
                    ``runtime.checkpoint_every``): model, optimiser, scheduler, AMP scaler, RNG
                    states of every rank, epoch/step counters, history, config, encoder state
``best.pt``         the model with the lowest validation MPJPE (no optimiser state)
``history.csv``     one row per epoch: lr, BatchNorm momentum (if scheduled), training
                    loss/MPJPE, validation MPJPE/P-MPJPE, time, samples/s, data share
``run.json``        the resolved config, timings (time to first step, data/step time), best epoch
``tb/``             TensorBoard scalars, only when ``tensorboard`` is installed
==================  ==========================================================================

Checkpoints are written atomically and hold only tensors and plain Python values, so
``torch.load(path, weights_only=True)`` reads them.

**Data.** Windows are index views over the memory-mapped PoseSet
(:meth:`PoseSet.windows`): length = the lifter's ``receptive_field``; anchored at the centre
frame (many-to-one), the last frame (causal lifters) or the start (many-to-many). Each
step gathers and encodes one batch (:func:`auglift.encoding.encode`) in a background thread
while the previous step runs. The epoch's window order and flip decisions come from
``numpy.random.default_rng([seed, epoch])``, so they need no saved state.

**Determinism and resume.** Same config + seed + thread count -> bit-identical weights on CPU
(deterministic algorithms enforced). ``resume=True`` reloads ``last.pt`` (weights,
optimiser, scheduler, RNG states, position inside the epoch) and continues to the same final
weights as an uninterrupted run.

**DDP.** Under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE`` > 1) the process group uses
gloo on CPU and nccl on CUDA. ``optim.batch_size`` is the global batch: every rank takes an
interleaved share of each global batch (a seeded DistributedSampler), gradients are averaged,
so N ranks follow the single-process trajectory up to float summation order (BatchNorm layers
use per-rank statistics on CPU, SyncBatchNorm on CUDA). Only rank 0 writes files.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import math
import os
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from auglift.checkpoint import Checkpoint, LifterSpec, Provenance, TrainingState
from auglift.config import DataSubset, TrainConfig, load_config
from auglift.encoding import EncoderState, check_compatible, encode, fit, parse_channels, target
from auglift.errors import ConfigError, DataError
from auglift.io import atomic_write, write_json
from auglift.metrics import joint_errors, n_mpjpe_loss
from auglift.models import MODELS, build, register
from auglift.poseset import PoseSet, Windows
from auglift.predict import auto_batch, predict_windows, resolve_device
from auglift.skeleton import get_joint_set

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["RESUME_SAFE_KEYS", "apply_flips", "bn_momentum", "check_resume", "shard_batch", "train"]

PathLike = str | os.PathLike[str]

# Config keys that may change between a run and its --resume (they do not change the result,
# or are expected to change: more epochs, moved data).
RESUME_SAFE_KEYS = frozenset({
    "optim.epochs", "data.validate", "data.train.path", "data.val.path", "runtime.device", "runtime.out",
    "runtime.progress", "runtime.log", "runtime.checkpoint_every", "runtime.val_batch_size",
    "runtime.tensorboard", "runtime.threads", "_source",
})


# --------------------------------------------------------------------------- distributed
@dataclass
class _Dist:
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
        import torch.distributed as dist

        if self.enabled and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            self.initialised_here = True

    def barrier(self) -> None:
        if not self.enabled:
            return
        import torch.distributed as dist

        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[self.local_rank])
        else:
            dist.barrier()

    def teardown(self) -> None:
        import gc

        import torch.distributed as dist

        if self.initialised_here and dist.is_initialized():
            # Reference cycles (the DDP wrapper's hooks) may still hold the process group: collect
            # them so the group and gloo's worker threads end here, while the interpreter runs,
            # and not in its final garbage collection, where a worker releasing a tensor aborts
            # the process ("terminate called without an active exception").
            gc.collect()
            dist.destroy_process_group()
            gc.collect()

    def all_sum(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t)
        return t.cpu().tolist()

    def gather_bytes(self, t: torch.Tensor) -> list[torch.Tensor]:
        """All ranks' uint8 tensors (same length) — used for RNG states."""
        if not self.enabled:
            return [t.clone()]
        import torch
        import torch.distributed as dist

        src = t.cuda() if dist.get_backend() == "nccl" else t
        out = [torch.empty_like(src) for _ in range(self.world)]
        dist.all_gather(out, src)
        return [o.cpu() for o in out]


# --------------------------------------------------------------------------- data
@dataclass
class _Split:
    """The windows of one data split that the loop reads."""

    ps: PoseSet
    windows: Windows
    sel: np.ndarray  # (M,) indices into windows
    name: str


def _open_split(sub: DataSubset, which: str, *, validate: bool, validated: set[Path] | None = None,
                source: str = "") -> tuple[PoseSet, np.ndarray]:
    if not sub.path:
        raise ConfigError(f"{source + ': ' if source else ''}data.{which}.path: no PoseSet given")
    ps = PoseSet.load(sub.path)
    key = Path(sub.path).resolve()
    if validate and (validated is None or key not in validated):
        ps.validate()
        if validated is not None:
            validated.add(key)
    ps.require("kp3d", why=f"needed as the {which} target")
    mask = ps.clips.mask(split=sub.split, subject=list(sub.subjects) or None, action=list(sub.actions) or None)
    if not mask.any() or ps.rows_of(mask).size == 0:
        raise DataError(ps.path, "clips", f"no frames match data.{which} split={sub.split!r} "
                                          f"subjects={list(sub.subjects)} actions={list(sub.actions)}")
    return ps, mask


def _limit(n: int, max_windows: int) -> np.ndarray:
    if max_windows and n > max_windows:
        return np.linspace(0, n - 1, max_windows).round().astype(np.int64)
    return np.arange(n, dtype=np.int64)


@dataclass
class _Batch:
    x: np.ndarray  # (B, T, J, C) float32
    y: np.ndarray  # (B, T_out, J, 3) float32 metres root-relative, NaN -> 0
    m: np.ndarray  # (B, T_out, J) bool: position and joint count in the loss
    flip: np.ndarray  # (B,) bool
    fetch_s: float = 0.0


def _fetch(split: _Split, idx: np.ndarray, flip: np.ndarray, state: EncoderState) -> _Batch:
    t0 = time.perf_counter()
    w, ps = split.windows, split.ps
    x = encode(ps, w.rows(idx), state)
    trows = w.target_rows(idx)
    y = target(ps.kp3d[trows], state.root)
    if w.target is not None:
        y = y[:, None]
        pos = np.ones(y.shape[:2], dtype=bool)
    else:
        pos = w.valid(idx)
    m = np.isfinite(y).all(-1) & pos[..., None]
    y = np.where(m[..., None], y, 0.0).astype(np.float32)
    return _Batch(x, y, m, flip, time.perf_counter() - t0)


def apply_flips(x: torch.Tensor, y: torch.Tensor, m: torch.Tensor, flip: torch.Tensor, perm: torch.Tensor,
                channels: list[str], *, center: str = "root", root: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mirror the samples of a batch where ``flip (B,)`` is True: inputs ``x (B, T, J, C)`` around the
    root (or image centre), targets ``y (B, T_out, J, 3)`` (``X -> -X``), loss masks ``m (B, T_out, J)``;
    left/right joints swap in all three."""
    import torch

    from auglift.encoding import flip_input, flip_pose

    x = torch.where(flip[:, None, None, None], flip_input(x, perm, channels, center=center, root=root), x)
    y = torch.where(flip[:, None, None, None], flip_pose(y, perm), y)
    m = torch.where(flip[:, None, None], m[:, :, perm], m)
    return x, y, m


def shard_batch(n: int, k: int, batch: int, rank: int, world: int) -> np.ndarray:
    """Positions in the epoch's order that rank ``rank`` of ``world`` reads for global step ``k``.

    The global batch is positions ``[k * batch, (k + 1) * batch)`` (clipped to ``n``); rank r takes
    every ``world``-th of them starting at r, so the ranks' shares are disjoint and together form
    the single-process batch. ``(B_r,)`` int64.
    """
    return np.arange(k * batch, min((k + 1) * batch, n), dtype=np.int64)[rank::world]


# --------------------------------------------------------------------------- helpers
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


def _seed32(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def bn_momentum(epoch: int, epochs: int, start: float, final: float) -> float:
    """BatchNorm momentum for 0-based ``epoch`` of ``epochs``: ``start`` decayed exponentially
    towards ``final`` (reached after the last epoch), VideoPose3D's schedule; ``start`` when
    ``final`` (or ``start``) is 0."""
    if final <= 0 or start <= 0:
        return start
    return start * (final / start) ** (epoch / epochs)


def _write_history(path: Path, history: list[dict[str, Any]]) -> None:
    if not history:
        return
    cols = list(dict.fromkeys(k for row in history for k in row))  # rows of older versions may lack columns
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    wr.writeheader()
    for row in history:
        wr.writerow({k: ("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)) for k, v in row.items()})
    with atomic_write(path, "w") as fh:
        fh.write(buf.getvalue())


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


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


# --------------------------------------------------------------------------- the loop
def train(
    config: PathLike | Mapping[str, Any] | TrainConfig,
    *,
    overrides: Iterable[str] = (),
    resume: bool = False,
    out: PathLike | None = None,
    distributed: bool | None = None,
) -> Path:
    """Train the lifter described by ``config`` (a TOML path or a config dict); return the best checkpoint.

    ``config``: a TOML path, a nested dict or a :class:`~auglift.config.TrainConfig`.
    ``overrides``: ``"key=value"`` strings applied on top (``--set``); ``out``: run directory
    (overrides ``runtime.out``); ``resume``: continue from ``<out>/last.pt`` (starts afresh when
    there is none); ``distributed``: ``None`` uses DDP when launched by ``torchrun``
    (``WORLD_SIZE > 1``), ``False`` trains in this process alone even under ``torchrun`` (e.g.
    when the caller shards independent runs over the ranks).
    Raises :class:`ConfigError` for bad configuration and :class:`DataError` for
    bad or missing data (e.g. a PoseSet without the field the input set needs).
    """
    import torch

    timing = _Timing()
    _warm_imports()
    cfg = load_config(config, overrides)
    if out is not None:
        cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(cfg.runtime, out=str(out)))
    if not cfg.runtime.out:
        raise ConfigError(f"{cfg.source}: runtime.out: no run directory; pass out=/--out")
    dist = _Dist.from_env() if distributed is not False else _Dist()
    rt = cfg.runtime
    device = resolve_device(rt.device)
    if device.type == "cuda" and dist.enabled:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if rt.amp == "fp16" and device.type != "cuda":
        raise ConfigError(f"{cfg.source}: runtime.amp: fp16 needs a CUDA device (use bf16 or none on CPU)")
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
        return _run(cfg, dist, device, resume, timing)
    finally:
        dist.teardown()
        torch.set_num_threads(prev_threads)
        torch.set_deterministic_debug_mode(prev_det)


_WARM_IMPORTS: list[Any] = []  # the running warm-import thread, if any


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
    import importlib
    import threading

    t = threading.Thread(target=importlib.import_module, args=("torch._dynamo",), name="auglift-warm-imports")
    _WARM_IMPORTS[:] = [t]
    t.start()


def _join_warm_imports() -> None:
    """Wait for :func:`_warm_imports` to finish."""
    while _WARM_IMPORTS:
        _WARM_IMPORTS.pop().join()


def _build_model(cfg: TrainConfig, in_channels: int, num_joints: int) -> nn.Module:
    """The lifter of ``model.name`` (a ``"package.module:callable"`` name is imported and registered)."""
    m = cfg.model
    try:
        if ":" in m.name and m.name not in MODELS:
            register(m.name, m.name)
        return build(m.name, in_channels, num_joints, **m.kwargs)
    except (KeyError, ImportError, AttributeError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) else f"cannot import {m.name!r} ({exc})"
        raise ConfigError(f"{cfg.source}: model.name: {msg}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cfg.source}: model.kwargs: {exc}") from None


def _run(cfg: TrainConfig, dist: _Dist, device: torch.device, resume: bool, timing: _Timing) -> Path:
    import torch
    from torch import nn
    from tqdm.auto import tqdm

    from auglift import __version__
    from auglift.models import set_bn_momentum

    rt, oc, dc = cfg.runtime, cfg.optim, cfg.data
    source = cfg.source
    seed = rt.seed
    out_dir = Path(rt.out)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    ckpt: Checkpoint | None = None
    if last_path.exists():
        if not resume:
            raise ConfigError(f"{out_dir}: holds a checkpoint of an earlier run (last.pt); pass --resume to "
                              "continue it or choose another --out")
        ckpt = Checkpoint.load(last_path)
        check_resume(ckpt.config, cfg, last_path)
    is_main = dist.rank == 0

    # ---- data and encoder
    validated: set[Path] = set()
    tps, tmask = _open_split(dc.train, "train", validate=dc.validate, validated=validated, source=source)
    if ckpt is not None:
        state = ckpt.encoder
        check_compatible(state, tps)
    else:
        state = fit(tps, cfg.input, rows=tps.rows_of(tmask))
    joints = get_joint_set(tps.meta["joint_set"])
    channels = list(state.channels)

    # ---- model
    torch.manual_seed(seed)
    _join_warm_imports()
    model = _build_model(cfg, len(channels), joints.num_joints)
    window = int(getattr(model, "receptive_field", 1))
    many = bool(getattr(model, "many_to_many", False))
    causal = bool(getattr(model, "causal", False))
    anchor = dc.anchor if dc.anchor != "auto" else ("start" if many else ("causal" if causal else "center"))
    if many != (anchor == "start"):
        raise ConfigError(f"{source}: data.anchor: {anchor!r} does not suit a "
                          f"{'many-to-many' if many else 'many-to-one'} lifter")
    if cfg.model.init and ckpt is None:
        init = Checkpoint.load(cfg.model.init)
        if list(init.encoder.channels) != channels:
            raise ConfigError(f"{cfg.model.init}: checkpoint was trained on input {init.encoder.label!r} "
                              f"({len(init.encoder.channels)} channels), this config asks for "
                              f"{state.label!r} ({len(channels)} channels)")
        if init.lifter.name != cfg.model.name:
            raise ConfigError(f"{cfg.model.init}: checkpoint holds lifter {init.lifter.name!r}, "
                              f"the config builds {cfg.model.name!r}")
        model.load_state_dict(init.weights)
    model.to(device)

    def windows_of(ps: PoseSet, mask: np.ndarray, stride: int) -> Windows:
        stride = stride or (window if anchor == "start" else 1)
        try:
            return ps.windows(window, stride=stride, anchor=anchor, pad="edge", clips=mask)
        except ValueError as exc:
            raise ConfigError(f"{source}: data.anchor: {exc} (window {window})") from None

    tw = windows_of(tps, tmask, dc.train.stride)
    train = _Split(tps, tw, _limit(len(tw), dc.train.max_windows), "train")
    if len(train.sel) < dist.world:
        raise DataError(tps.path, "clips", f"only {len(train.sel)} training windows for {dist.world} ranks")
    val: _Split | None = None
    if dc.val.path:
        vps, vmask = _open_split(dc.val, "val", validate=dc.validate, validated=validated, source=source)
        check_compatible(state, vps)
        vw = windows_of(vps, vmask, dc.val.stride)
        val = _Split(vps, vw, _limit(len(vw), dc.val.max_windows), "val")

    # ---- optimiser
    opt_cls = torch.optim.AdamW if oc.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=oc.lr, weight_decay=oc.weight_decay, amsgrad=oc.amsgrad)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=oc.lr_decay)
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(rt.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=rt.amp == "fp16")
    start_epoch, start_step, global_step = 0, 0, 0
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    accum = {"loss": 0.0, "mpjpe": 0.0, "count": 0.0, "time": 0.0}
    if ckpt is not None:
        assert ckpt.training is not None
        model.load_state_dict(ckpt.weights)
        optimizer.load_state_dict(ckpt.training.optimizer)
        scheduler.load_state_dict(ckpt.training.scheduler)
        if ckpt.training.scaler:
            scaler.load_state_dict(ckpt.training.scaler)
        start_epoch, start_step = ckpt.epoch, ckpt.step_in_epoch
        global_step = ckpt.global_step
        history, best = list(ckpt.history), ckpt.best
        accum = dict(ckpt.training.accum or accum)
        if len(ckpt.training.rng_torch) == dist.world:
            torch.set_rng_state(ckpt.training.rng_torch[dist.rank])
            if device.type == "cuda" and ckpt.training.rng_cuda:
                torch.cuda.set_rng_state(ckpt.training.rng_cuda[dist.rank], device)
        else:
            torch.manual_seed(_seed32(seed, dist.rank, start_epoch, start_step))
    else:
        torch.manual_seed(_seed32(seed, dist.rank))
        if device.type == "cuda":
            torch.cuda.manual_seed(_seed32(seed, dist.rank))
    if dist.enabled and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = torch.nn.parallel.DistributedDataParallel
    net = ddp(model, device_ids=[device.index] if device.type == "cuda" else None) if dist.enabled else model
    perm_t = torch.as_tensor(joints.flip_permutation, device=device)

    lifter = LifterSpec(cfg.model.name, copy.deepcopy(cfg.model.kwargs), len(channels), joints.num_joints, window,
                        many, causal, anchor)
    # the training set's depth model and descriptor options: inference samples descriptors the same way
    provenance = Provenance.of(joints.name, copy.deepcopy(tps.meta.get("depth_model")), where=tps.path)
    writer = None
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if rt.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the optional tensorboard package

                writer = SummaryWriter(str(out_dir / "tb"))
            except ImportError:
                writer = None

    def checkpoint(epoch: int, step_in_epoch: int) -> Checkpoint:
        rng_t = dist.gather_bytes(torch.get_rng_state())
        rng_c = (dist.gather_bytes(torch.cuda.get_rng_state(device)) if device.type == "cuda" else None)
        training = TrainingState(optimizer.state_dict(), scheduler.state_dict(),
                                 scaler.state_dict() if scaler.is_enabled() else None, rng_t, rng_c, dict(accum))
        return Checkpoint(lifter, state, cfg, {k: v.detach().cpu() for k, v in model.state_dict().items()},
                          provenance, epoch, step_in_epoch, global_step, tuple(copy.deepcopy(history)), best,
                          dist.world, training)

    vel_w = float(cfg.loss.velocity_weight)
    nm_w = float(cfg.loss.n_mpjpe_weight)
    B = oc.batch_size
    if B % dist.world:
        raise ConfigError(f"{source}: optim.batch_size: {B} is not divisible by the {dist.world} DDP ranks")
    n = len(train.sel)
    steps = max(1, n // B)
    if oc.steps_per_epoch:
        steps = min(steps, oc.steps_per_epoch)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="auglift-data")

    def plan(epoch: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(n)
        flips = (rng.random(n) < 0.5) if cfg.augment.flip else np.zeros(n, dtype=bool)
        return order, flips

    def submit(order: np.ndarray, flips: np.ndarray, k: int) -> Future[_Batch]:
        pos = shard_batch(len(order), k, B, dist.rank, dist.world)
        pos = pos[np.argsort(order[pos], kind="stable")]  # ascending rows: memory-map locality
        return pool.submit(_fetch, train, train.sel[order[pos]], flips[pos], state)

    try:
        for epoch in range(start_epoch, oc.epochs):
            order, flips = plan(epoch)
            mom = bn_momentum(epoch, oc.epochs, oc.bn_momentum, oc.bn_momentum_final)
            if mom > 0:
                set_bn_momentum(model, mom)
            net.train()
            k0 = start_step if epoch == start_epoch else 0
            if k0 == 0:
                accum = {"loss": 0.0, "mpjpe": 0.0, "count": 0.0, "time": 0.0}
            lr_now = optimizer.param_groups[0]["lr"]
            bar = tqdm(total=steps * B, initial=k0 * B, unit="sample", unit_scale=True, dynamic_ncols=True,
                       desc=f"epoch {epoch + 1}/{oc.epochs}", disable=not (rt.progress and is_main), leave=False)
            t_epoch = time.perf_counter()
            nxt = submit(order, flips, k0) if k0 < steps else None
            for k in range(k0, steps):
                t_step = time.perf_counter()
                assert nxt is not None
                batch = nxt.result()
                t_wait = time.perf_counter() - t_step
                nxt = submit(order, flips, k + 1) if k + 1 < steps else None
                x = torch.from_numpy(batch.x).to(device, non_blocking=True)
                y = torch.from_numpy(batch.y).to(device, non_blocking=True)
                msk = torch.from_numpy(batch.m).to(device, non_blocking=True)
                if batch.flip.any():
                    x, y, msk = apply_flips(x, y, msk, torch.from_numpy(batch.flip).to(device), perm_t, channels,
                                            center=cfg.augment.flip_center, root=state.root)
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    pred = net(x)
                pred = pred.float()
                if pred.shape != y.shape:
                    raise ValueError(f"lifter {cfg.model.name!r} returned {tuple(pred.shape)}, "
                                     f"expected {tuple(y.shape)}")
                dj = (pred - y).norm(dim=-1)
                mf = msk.to(dj.dtype)
                mp = (dj * mf).sum() / mf.sum().clamp_min(1.0)
                loss = mp
                if vel_w > 0 and pred.shape[1] > 1:
                    vm = (msk[:, 1:] & msk[:, :-1]).to(dj.dtype)
                    dv = (pred.diff(dim=1) - y.diff(dim=1)).norm(dim=-1)
                    loss = loss + vel_w * (dv * vm).sum() / vm.sum().clamp_min(1.0)
                if nm_w > 0:
                    loss = loss + nm_w * n_mpjpe_loss(pred, y, mf)
                if not torch.isfinite(loss):
                    raise DataError(tps.path, "kp3d", f"training loss became {loss.item()} at epoch {epoch + 1} "
                                                      f"step {k + 1}; check the data (NaN/inf) or lower optim.lr")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if oc.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), oc.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                global_step += 1
                nb = len(batch.flip)
                accum["loss"] += float(loss.detach()) * nb
                accum["mpjpe"] += float(mp.detach()) * nb
                accum["count"] += nb
                dt = time.perf_counter() - t_step
                accum["time"] += dt
                timing.add(batch.fetch_s, t_wait, dt)
                bar.update(B)
                bar.set_postfix(loss=f"{1000 * accum['mpjpe'] / max(accum['count'], 1):.1f}mm", refresh=False)
                ce = rt.checkpoint_every
                if ce and (k + 1) % ce == 0 and k + 1 < steps:
                    ck = checkpoint(epoch, k + 1)
                    if is_main:
                        ck.save(last_path)
            bar.close()
            # ---- end of epoch: metrics, validation, checkpoints
            tot = dist.all_sum([accum["loss"], accum["mpjpe"], accum["count"]])
            row: dict[str, Any] = {
                "epoch": epoch + 1, "lr": lr_now,
                "bn_momentum": mom if mom > 0 else None,
                "train_loss": tot[0] / max(tot[2], 1), "train_mpjpe_mm": 1000 * tot[1] / max(tot[2], 1),
                "val_mpjpe_mm": None, "val_p_mpjpe_mm": None,
                "epoch_time_s": time.perf_counter() - t_epoch,
                "samples_per_s": steps * B / max(accum["time"], 1e-9) if k0 == 0 else None,
                "data_fraction": timing.as_dict()["fetch_fraction"],
            }
            if val is not None:
                v = _validate(model, val, state, cfg, device, dist)
                row["val_mpjpe_mm"], row["val_p_mpjpe_mm"] = v
            scheduler.step()
            score = row["val_mpjpe_mm"] if row["val_mpjpe_mm"] is not None else -float(epoch)
            is_best = best is None or score < best["score"]
            if is_best:
                best = {"epoch": epoch + 1, "score": score, "val_mpjpe_mm": row["val_mpjpe_mm"]}
            row["best"] = int(is_best)
            history.append(row)
            ck = checkpoint(epoch + 1, 0)
            if is_main:
                if is_best:
                    dataclasses.replace(ck, training=None).save(best_path)
                ck.save(last_path)
                _write_history(out_dir / "history.csv", history)
                write_json(out_dir / "run.json", _json_safe({
                    "auglift_version": __version__, "config": cfg.to_dict(), "device": str(device),
                    "world_size": dist.world,
                    "window": window, "anchor": anchor, "train_windows": n, "steps_per_epoch": steps,
                    "val_windows": None if val is None else len(val.sel), "best": best, "timing": timing.as_dict(),
                    "history": history}))
                if writer is not None:
                    for key, val_ in row.items():
                        if isinstance(val_, float):
                            writer.add_scalar(key, val_, epoch + 1)
                    writer.flush()
                if rt.log:
                    vtxt = "" if row["val_mpjpe_mm"] is None else (
                        f"  val {row['val_mpjpe_mm']:.1f} mm (P {row['val_p_mpjpe_mm']:.1f})")
                    sps = "" if row["samples_per_s"] is None else f"  {row['samples_per_s']:,.0f} samples/s"
                    print(f"epoch {epoch + 1}/{oc.epochs}  train {row['train_mpjpe_mm']:.1f} mm{vtxt}  "
                          f"lr {lr_now:.2e}{sps}  {row['epoch_time_s']:.1f} s{'  *best*' if is_best else ''}",
                          file=sys.stderr, flush=True)
    finally:
        pool.shutdown(wait=True)
        if writer is not None:
            writer.close()
    dist.barrier()  # every rank done (rank 0 has written its files) before the process group goes away
    return best_path


def _validate(model: nn.Module, val: _Split, state: EncoderState, cfg: TrainConfig,
              device: torch.device, dist: _Dist) -> tuple[float, float]:
    """Validation MPJPE and P-MPJPE (mm) over the val windows, sharded over ranks and summed."""
    was = model.training
    model.eval()
    sel = val.sel[dist.rank:: dist.world]
    w = val.windows
    if len(sel) == 0:  # more ranks than validation windows
        s = dist.all_sum([0.0, 0.0, 0.0])
        model.train(was)
        return (s[0] / s[2], s[1] / s[2]) if s[2] else (float("nan"), float("nan"))
    vb = cfg.runtime.val_batch_size or auto_batch(w.length)
    pred = predict_windows(model, state, val.ps, w, sel, batch_size=vb, flip_test=cfg.augment.flip_test,
                           flip_center=cfg.augment.flip_center, device=device, amp=cfg.runtime.amp)
    trows = w.target_rows(sel)
    gt = target(val.ps.kp3d[trows], state.root)
    if w.target is not None:
        gt = gt[:, None]
        pos = np.ones(gt.shape[:2], dtype=bool)
    else:
        pos = w.valid(sel)
    m = np.isfinite(gt).all(-1) & pos[..., None]
    gt = np.where(m[..., None], gt, 0.0)
    p = np.where(m[..., None], pred, 0.0)
    e1 = joint_errors(p, gt, mask=m)
    e2 = joint_errors(p, gt, align="procrustes", mask=m)
    s = dist.all_sum([float(e1[m].sum()), float(e2[m].sum()), float(m.sum())])
    model.train(was)
    return (s[0] / s[2], s[1] / s[2]) if s[2] else (float("nan"), float("nan"))
