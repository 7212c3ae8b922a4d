"""The typed checkpoint: the one module that reads, writes, validates and migrates lifter checkpoints.

A :class:`Checkpoint` holds the lifter (:class:`LifterSpec`), the fitted encoder, the training
config, the training set's :class:`Provenance` (joint set, depth model, descriptor options), the
weights, the history and, in ``last.pt``, the :class:`TrainingState` a resumed run continues from.
On disk it is a dict of tensors and plain values (``torch.load(weights_only=True)``; format
``"auglift.checkpoint"``, version 1; keys in :meth:`Checkpoint.to_dict`). :meth:`Checkpoint.load`
checks every part (a file is untrusted input; a DataError names the file and the field) and
migrates the older layouts: without ``depth_model`` (read from the training PoseSet's ``meta.json``
when it still exists) and configs without keys added since (their defaults).
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from auglift import __version__
from auglift.config import TrainConfig
from auglift.depth.uadd import DescriptorSpec
from auglift.encoding import LATER_OPTIONS, EncoderState, InputOptions
from auglift.errors import AugliftError, ConfigError, DataError, short
from auglift.io import PathLike, atomic_write, read_json
from auglift.models import MODELS, build
from auglift.safe_pickle import describe_load_error

__all__ = ["FORMAT", "Checkpoint", "LifterSpec", "Provenance", "TrainingState"]

FORMAT = "auglift.checkpoint"
VERSION = 1
_ANCHORS = ("center", "causal", "start")


@dataclass(frozen=True)
class LifterSpec:
    """Which lifter to build and how it reads windows: ``receptive_field`` frames in, ``frames_out`` out.

    ``anchor``: the window's frame the prediction belongs to (``center``, ``causal``: the last,
    ``start``: many-to-many windows predict every frame from the window start).
    """

    name: str
    kwargs: dict[str, Any]
    in_channels: int
    num_joints: int
    receptive_field: int = 1
    many_to_many: bool = False
    causal: bool = False
    anchor: str = "center"

    @property
    def frames_out(self) -> int:
        """Frames predicted per window: the window length for many-to-many lifters, else 1."""
        return self.receptive_field if self.many_to_many else 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any, where: PathLike | None) -> LifterSpec:
        """Check a stored lifter description (types and values building relies on); DataError naming ``where``."""
        if not isinstance(d, Mapping):
            raise DataError(where, "model", f"expected a table of lifter arguments, got {type(d).__name__}")
        for key in ("in_channels", "num_joints", "receptive_field"):
            v = d.get(key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise DataError(where, f"model.{key}", f"expected an integer >= 1, got {v!r}")
        if not isinstance(d.get("name"), str) or not isinstance(d.get("kwargs", {}), Mapping):
            raise DataError(where, "model", "expected a lifter name and a table of keyword arguments")
        if d.get("anchor", "center") not in _ANCHORS:
            raise DataError(where, "model.anchor", f"expected center, causal or start, got {d.get('anchor')!r}")
        return cls(d["name"], dict(d.get("kwargs", {})), d["in_channels"], d["num_joints"], d["receptive_field"],
                   bool(d.get("many_to_many", False)), bool(d.get("causal", False)), str(d.get("anchor", "center")))

    def build(self, where: PathLike | None = None) -> nn.Module:
        """The lifter, untrained. Only registered lifters (auglift's own, or ones registered with
        :func:`auglift.models.register` in this process): a checkpoint must not be able to import code."""
        if self.name not in MODELS:
            hint = (f"; a lifter outside auglift is built only after auglift.models.register({self.name!r}, "
                    f"{self.name!r}) in your own code (a checkpoint cannot import code)" if ":" in self.name else
                    f"; known: {', '.join(sorted(MODELS))}")
            raise DataError(where, "model.name", f"unknown lifter {self.name!r}{hint}")
        try:
            model = build(self.name, self.in_channels, self.num_joints, **self.kwargs)
        except (KeyError, ImportError, AttributeError) as exc:
            raise DataError(where, "model.name", f"cannot build lifter {self.name!r}: {exc}") from None
        except (TypeError, ValueError, RuntimeError, IndexError) as exc:
            raise DataError(where, "model.kwargs", f"cannot build lifter {self.name!r}: {exc}") from None
        built = int(getattr(model, "receptive_field", 1))
        if built != self.receptive_field:
            raise DataError(where, "model.receptive_field", f"{self.receptive_field} frames, but the lifter built "
                                                            f"from model.kwargs reads {built}")
        return model


def parse_encoder(d: Any, lifter: LifterSpec, where: PathLike | None) -> EncoderState:
    """Check a stored encoder state against its lifter; DataError naming ``where``."""
    if not isinstance(d, Mapping) or "channels" not in d:
        raise DataError(where, "encoder", "expected the encoder state (a table with the input channels and options)")
    missing = [f.name for f in dataclasses.fields(InputOptions) if f.name not in d and f.name not in LATER_OPTIONS] + (
        ["label"] if "label" not in d else [])
    try:
        state = EncoderState.of(d)
    except (ConfigError, TypeError, ValueError) as exc:
        raise DataError(where, "encoder", f"invalid encoder state ({exc})") from None
    if missing:
        raise DataError(where, "encoder", f"encoder state lacks {', '.join(missing)}")
    if len(state.channels) != lifter.in_channels:
        raise DataError(where, "encoder", f"{len(state.channels)} input channels, but the lifter takes "
                                          f"{lifter.in_channels}")
    return state


@dataclass(frozen=True)
class Provenance:
    """What the lifter was trained on: the training PoseSet's joint set and depth model.

    ``depth_model`` is the training set's ``meta["depth_model"]`` as recorded (None, a model name,
    or the estimator's identity with its ``descriptor`` options); ``recorded_in`` says where it was
    found (``"checkpoint"``, ``"training set meta.json"`` for older checkpoints, ``"none recorded"``).
    """

    joint_set: str = "h36m17"
    depth_model: Any = None
    recorded_in: str = "checkpoint"
    descriptor: DescriptorSpec | None = None  # the descriptor options in depth_model, if any

    @classmethod
    def of(cls, joint_set: str, depth_model: Any, recorded_in: str = "checkpoint",
           where: PathLike | None = None) -> Provenance:
        """Provenance with the descriptor options of ``depth_model`` read (DataError naming ``where``)."""
        desc = depth_model.get("descriptor") if isinstance(depth_model, Mapping) else None
        spec = None
        if isinstance(desc, Mapping):
            try:
                spec = DescriptorSpec.from_dict(desc)
            except ConfigError as exc:
                raise DataError(where, "depth_model.descriptor", str(exc)) from None
        return cls(joint_set, depth_model, recorded_in, spec)


@dataclass(frozen=True)
class TrainingState:
    """What a resumed run continues from: optimiser, scheduler and AMP-scaler states, every rank's
    RNG state (``rng_torch``/``rng_cuda``: one uint8 tensor per rank) and the epoch's running sums."""

    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any] | None
    rng_torch: list[torch.Tensor]
    rng_cuda: list[torch.Tensor] | None
    accum: dict[str, float]


@dataclass(frozen=True)
class Checkpoint:
    """A trained lifter with everything needed to use it or to continue training it (see the module doc)."""

    lifter: LifterSpec
    encoder: EncoderState
    config: TrainConfig
    weights: dict[str, torch.Tensor]
    provenance: Provenance = field(default_factory=Provenance)
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    history: tuple[dict[str, Any], ...] = ()
    best: dict[str, Any] | None = None
    world_size: int = 1
    training: TrainingState | None = None
    auglift_version: str = __version__
    path: Path | None = None
    onnx: bool = False  # described by an exported ONNX model's metadata (no weights: onnxruntime runs it)

    @property
    def where(self) -> str:
        """The file's path for messages (``<checkpoint>`` for one built in memory)."""
        return str(self.path) if self.path is not None else "<checkpoint>"

    # ------------------------------------------------------------------ using it
    def build_model(self, device: str | torch.device = "cpu") -> nn.Module:
        """The trained lifter in eval mode on ``device`` (registered lifters only, see :meth:`LifterSpec.build`).

        Built without initial weights (on PyTorch's ``meta`` device) and given the checkpoint's tensors
        themselves (on CPU the model's parameters share memory with :attr:`weights`: no copy); a lifter
        that keeps tensors outside its state dict is built on CPU and the weights copied in.
        """
        model = self._build_empty()
        self._fits(model)
        want = {k: v.dtype for k, v in model.state_dict().items()}
        if all(t.is_meta for t in itertools.chain(model.parameters(), model.buffers())) and all(
                v.dtype == want[k] and v.device.type == "cpu" for k, v in self.weights.items()):
            model.load_state_dict(self.weights, assign=True)
        else:  # tensors outside the state dict, or weights to convert: a built model, weights copied in
            model = self.lifter.build(self.path)
            model.load_state_dict(self.weights)
        return model.to(device).eval()

    def _build_empty(self) -> nn.Module:
        """The lifter built on the ``meta`` device (no memory, no initialisation), or on CPU where that fails."""
        try:
            with torch.device("meta"):
                return self.lifter.build(self.path)
        except (DataError, RuntimeError, NotImplementedError):
            return self.lifter.build(self.path)

    def _fits(self, model: nn.Module) -> None:
        """DataError unless :attr:`weights` has exactly the keys and shapes of ``model``'s state dict."""
        need = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        have = {k: tuple(v.shape) for k, v in self.weights.items()}
        problems = [f"{short(k)} is missing" for k in need if k not in have]
        problems += [f"{short(k)} is not a weight of the lifter" for k in have if k not in need]
        problems += [f"{short(k)} has shape {have[k]}, the lifter needs {need[k]}"
                     for k in need if k in have and have[k] != need[k]]
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise DataError(self.path, "model_state",
                            f"does not fit lifter {self.lifter.name!r}: {'; '.join(problems[:3])}{more}")

    def require_channels(self, channels: tuple[str, ...]) -> None:
        """Refuse (ConfigError) a checkpoint trained on other input channels than ``channels``."""
        if tuple(channels) != self.encoder.channels:
            raise ConfigError(f"{self.where}: checkpoint was trained on input {self.encoder.label!r} "
                              f"({', '.join(self.encoder.channels)}), but input {','.join(channels)!r} was requested")

    # ------------------------------------------------------------------ writing
    def to_dict(self, *, weights: bool = True) -> dict[str, Any]:
        """The on-disk layout (module doc): tensors and plain values only; without the weights when
        ``weights=False`` (a pretrained directory's ``config.json``, :mod:`auglift.hub`)."""
        out: dict[str, Any] = {
            "format": FORMAT, "version": VERSION, "auglift_version": self.auglift_version,
            "config": self.config.to_dict(), "model": self.lifter.to_dict(), "encoder": self.encoder.to_dict(),
            "joint_set": self.provenance.joint_set, "model_state": self.weights,
            "depth_model": self.provenance.depth_model, "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step, "history": [dict(h) for h in self.history], "best": self.best,
            "world_size": self.world_size,
        }
        if not weights:
            del out["model_state"]
        t = self.training
        if t is not None:
            out |= {"optimizer_state": t.optimizer, "scheduler_state": t.scheduler, "scaler_state": t.scaler,
                    "rng": {"torch": t.rng_torch, "cuda": t.rng_cuda}, "accum": dict(t.accum)}
        return out

    def save(self, path: PathLike) -> Path:
        """Write atomically (the previous file stays intact on any error, a full disk included)."""
        p = Path(path)
        with atomic_write(p, "wb") as fh:
            out = _WriteErrors(fh)
            try:
                torch.save(self.to_dict(), out)
            except RuntimeError:
                if out.error is not None:
                    raise out.error from None
                raise
        return p

    # ------------------------------------------------------------------ reading
    @classmethod
    def load(cls, path: PathLike) -> Checkpoint:
        """Read a checkpoint with ``torch.load(weights_only=True)`` (CPU tensors), check and migrate it."""
        p = Path(path)
        if not p.is_file():
            raise DataError(p, None, "checkpoint file not found" if not p.exists() else "not a regular file")
        try:
            with warnings.catch_warnings():  # torch warns about foreign pickles before refusing them
                warnings.simplefilter("ignore")
                raw = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # any unpickling/zip error means "not a checkpoint"
            raise DataError(p, None, f"cannot read checkpoint ({describe_load_error(exc)})") from None
        return cls.from_dict(raw, p)

    @classmethod
    def from_dict(cls, raw: Any, path: Path | None = None, weights: Mapping[str, Any] | None = None) -> Checkpoint:
        """Check and migrate an on-disk layout (see :meth:`load`); DataError naming ``path`` and the field.
        ``weights``: the state dict when ``raw`` was written without it (``to_dict(weights=False)``)."""
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise DataError(path, "format", f"not an auglift checkpoint (expected format {FORMAT!r})")
        if weights is not None:
            raw = {**raw, "model_state": dict(weights)}
        for key in ("model", "model_state", "encoder", "config"):
            if key not in raw:
                raise DataError(path, key, "missing from the checkpoint")
        weights = raw["model_state"]
        if not isinstance(weights, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                       for k, v in weights.items()):
            raise DataError(path, "model_state", "expected a state dict (parameter name -> tensor)")
        lifter = LifterSpec.from_dict(raw["model"], path)
        encoder = parse_encoder(raw["encoder"], lifter, path)
        config = _config(raw["config"], path)
        provenance = _provenance(raw, config, path)
        try:
            return cls(lifter, encoder, config, dict(weights), provenance,
                       epoch=int(raw.get("epoch", 0)), step_in_epoch=int(raw.get("step_in_epoch", 0)),
                       global_step=int(raw.get("global_step", 0)), history=tuple(raw.get("history") or ()),
                       best=raw.get("best"), world_size=int(raw.get("world_size", 1)),
                       training=_training_state(raw), auglift_version=str(raw.get("auglift_version", "")),
                       path=path)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise DataError(path, None, f"unreadable training progress or state ({exc})") from None


def _config(d: Any, path: Path | None) -> TrainConfig:
    if not isinstance(d, Mapping):
        raise DataError(path, "config", f"expected the training configuration (a table), got {type(d).__name__}")
    try:
        return TrainConfig.from_mapping(d, source=str(d.get("_source", "<config>")))
    except AugliftError as exc:
        raise DataError(path, "config", str(exc)) from None


def _provenance(raw: Mapping[str, Any], config: TrainConfig, path: Path | None) -> Provenance:
    """The training set's provenance; older layouts without ``depth_model`` read the training PoseSet's meta.json."""
    joint_set = str(raw.get("joint_set", "h36m17"))
    if "depth_model" in raw:
        return Provenance.of(joint_set, raw["depth_model"], "checkpoint", path)
    train_set = config.data.train.path
    if train_set and (Path(train_set) / "meta.json").is_file():
        meta = read_json(Path(train_set) / "meta.json", "meta")
        if isinstance(meta, dict):
            return Provenance.of(joint_set, meta.get("depth_model"), "training set meta.json", path)
    return Provenance(joint_set, None, "none recorded")


def _training_state(raw: Mapping[str, Any]) -> TrainingState | None:
    if "optimizer_state" not in raw:
        return None
    rng = raw["rng"]
    return TrainingState(raw["optimizer_state"], raw["scheduler_state"], raw.get("scaler_state"),
                         list(rng["torch"]), rng.get("cuda"), dict(raw.get("accum") or {}))


class _WriteErrors:
    """A file wrapper that remembers the ``OSError`` a write raised (a full disk): ``torch.save`` turns
    it into a ``RuntimeError`` from its zip writer's clean-up, which would hide the cause."""

    def __init__(self, fh: Any):
        self._fh, self.error = fh, None

    def write(self, data: Any) -> int:
        try:
            return self._fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._fh.flush()
