"""Training configurations: TOML files read once into a typed :class:`TrainConfig`.

A configuration has the sections below (see ``configs/*.toml`` and the README section
"Training and evaluation"); each is a frozen dataclass (:mod:`auglift.schema`) whose fields
hold the defaults, help texts and checks. Every key is checked when the file is read: an unknown
key, a wrong type or a value outside its choices raises :class:`auglift.errors.ConfigError`
naming the file (or ``--set``) and the key. ``model.kwargs`` is free-form: it is passed to
:func:`auglift.models.build`, which rejects keys the lifter does not take.

``--set key=value`` overrides (:func:`parse_override`, values read as TOML) and the dotted-key
walk of nested tables (:func:`auglift.schema.flatten`) are shared with :mod:`auglift.matrix`.
Relative PoseSet paths are resolved against the current working directory.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from auglift.encoding import InputOptions
from auglift.errors import ConfigError, short
from auglift.schema import POSITIVE, Check, Section, flatten, option, parse_section, schema, unknown_key

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["AugmentSection", "DataSection", "DataSubset", "LossSection", "ModelSection", "OptimSection",
           "RuntimeSection", "TrainConfig", "load_config", "parse_override", "read_toml", "set_dotted"]

# A configuration is a few kilobytes; anything near this is not one (and would be read into memory whole).
MAX_TOML_BYTES = 16 << 20

_NONNEG_INT = Check(lambda v: v >= 0, "an integer >= 0")
_POSITIVE_INT = Check(lambda v: v >= 1, "a positive integer")
_WEIGHT = Check(lambda v: v >= 0, "a number >= 0")  # (check_section refuses non-finite floats first)
_MOMENTUM = Check(lambda v: 0 <= v <= 1, "a momentum in [0, 1]")


@dataclass(frozen=True)
class DataSubset(Section):
    """A PoseSet and the clips and windows read from it (``[data.train]``, ``[data.val]``)."""

    path: str | None = option(None, "PoseSet directory")
    split: str | None = option(None, "only clips of this split (e.g. 'train')")
    subjects: tuple[str, ...] = option((), "only these subjects (empty: all)")
    actions: tuple[str, ...] = option((), "only these actions (empty: all)")
    stride: int = option(0, "window stride (0: 1 for many-to-one, the window length for many-to-many)",
                         check=_NONNEG_INT)
    max_windows: int = option(0, "use at most this many evenly spaced windows (0: all)", check=_NONNEG_INT)


@dataclass(frozen=True)
class DataSection(Section):
    prefix: ClassVar[str] = "data"
    train: DataSubset = field(default_factory=DataSubset)
    val: DataSubset = field(default_factory=DataSubset)
    validate: bool = option(True, "check PoseSet values (NaN/inf, ranges) before training")
    anchor: str = option("auto", "window anchor (auto: start for many-to-many, causal for causal lifters, "
                         "else center)", choices=("auto", "center", "causal", "start"))


@dataclass(frozen=True)
class ModelSection(Section):
    prefix: ClassVar[str] = "model"
    name: str = option("simple_baseline", "lifter name in auglift.models (or 'package.module:callable')")
    init: str | None = option(None, "initialise weights from this checkpoint (same input set)")
    kwargs: dict[str, Any] = field(default_factory=dict, metadata={"help": "keyword arguments of auglift.models.build"})

    def __post_init__(self) -> None:
        super().__post_init__()
        for key, value in flatten(self.kwargs, {}):
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise ConfigError(f"model.kwargs.{short(key, quote=False)}: expected finite numbers, "
                                  f"got {short(value)}")


@dataclass(frozen=True)
class OptimSection(Section):
    prefix: ClassVar[str] = "optim"
    optimizer: str = option("adam", choices=("adam", "adamw"))
    lr: float = option(1e-3, "initial learning rate", check=POSITIVE)
    weight_decay: float = option(0.0)
    amsgrad: bool = option(False, "AMSGrad variant of Adam/AdamW (VideoPose3D uses it)")
    lr_decay: float = option(0.98, "learning rate factor per epoch (exponential decay)", check=POSITIVE)
    epochs: int = option(10, check=_POSITIVE_INT)
    batch_size: int = option(256, "global batch (windows per step, summed over DDP ranks)", check=_POSITIVE_INT)
    grad_clip: float = option(0.0, "max gradient L2 norm (0: off)")
    steps_per_epoch: int = option(0, "cap on steps per epoch (0: one pass over the windows)", check=_NONNEG_INT)
    bn_momentum: float = option(0.0, "BatchNorm momentum in the first epoch (0: the lifter's own)",
                                check=_MOMENTUM)
    bn_momentum_final: float = option(0.0, "decay the BatchNorm momentum exponentially per epoch towards this "
                                      "value, reached after the last epoch (VideoPose3D: 0.1 -> 0.001; 0: no "
                                      "decay)", check=_MOMENTUM)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bn_momentum_final > 0 and not self.bn_momentum > 0:
            raise ConfigError("optim.bn_momentum_final: decays from optim.bn_momentum, which is not set")


@dataclass(frozen=True)
class LossSection(Section):
    prefix: ClassVar[str] = "loss"
    velocity_weight: float = option(0.0, "weight of the velocity loss (many-to-many lifters)", check=_WEIGHT)
    n_mpjpe_weight: float = option(0.0, "weight of the N-MPJPE term: MPJPE after scaling each predicted frame "
                                   "by the factor that best fits the target (MotionBERT: 0.5)", check=_WEIGHT)


@dataclass(frozen=True)
class AugmentSection(Section):
    prefix: ClassVar[str] = "augment"
    flip: bool = option(True, "random left/right flips (p = 0.5) during training")
    flip_test: bool = option(True, "average with the flipped input's prediction at validation")
    flip_center: str = option("image", "2D mirror axis: image (x -> -x, as VideoPose3D/PoseFormer/MotionBERT) or the "
                              "root joint's x", choices=("root", "image"))


@dataclass(frozen=True)
class RuntimeSection(Section):
    prefix: ClassVar[str] = "runtime"
    seed: int = option(0, "random seed (an integer >= 0)", check=_NONNEG_INT)
    device: str = option("auto", "auto | cpu | cuda | cuda:N")
    amp: str = option("none", "mixed precision (fp16 needs CUDA; auto: bf16 where the device has bf16 kernels "
                      "(a CPU with AVX512-BF16/AMX, a CUDA GPU with bf16), else none)",
                      choices=("none", "bf16", "fp16", "auto"))
    threads: int = option(0, "torch intra-op threads (0: torch's default)", check=_NONNEG_INT)
    deterministic: bool = option(True, "deterministic algorithms (torch's deterministic mode)")
    out: str | None = option(None, "run directory (default runs/<config name>)")
    progress: bool | None = option(None, "tqdm progress bar: true always, false never, unset: on a terminal only "
                                   "(otherwise the per-epoch lines of runtime.log)")
    log: bool = option(True, "one line per epoch on stderr")
    checkpoint_every: int = option(0, "also checkpoint every N steps inside an epoch (0: off)", check=_NONNEG_INT)
    val_batch_size: int = option(0, "windows per validation batch (0: about 65536 frames)", check=_NONNEG_INT)
    tensorboard: bool = option(True, "write TensorBoard scalars if tensorboard is installed")


@dataclass(frozen=True)
class TrainConfig(Section):
    """A resolved training configuration; ``source`` names where it came from (a file, ``<config>``)."""

    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    input: InputOptions = field(default_factory=InputOptions)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    runtime: RuntimeSection = field(default_factory=RuntimeSection)
    source: str = "<config>"

    @classmethod
    def keys(cls) -> dict[str, Any]:
        """Dotted key -> field of every option (``model.kwargs`` is one key)."""
        return {k: f for k, f in schema(cls).items() if k != "source"}

    @classmethod
    def from_mapping(cls, user: Mapping[str, Any], *, source: str = "<config>",
                     base: TrainConfig | None = None) -> TrainConfig:
        """Merge a nested table ``user`` over the defaults (or over ``base``), checking every key and value.

        Errors name ``source`` and the key; keys an older checkpoint's config lacks keep their defaults.
        A ``"_source"`` entry (the origin recorded by :meth:`to_dict`) is not an option and is skipped.
        """
        known = cls.keys()
        values = base.flat() if base is not None else {}
        for key, value in flatten({k: v for k, v in user.items() if k != "_source"}, known):
            if key not in known:
                raise unknown_key(key, known, source)
            values[key] = value
        try:
            cfg = parse_section(cls, values)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        return dataclasses.replace(cfg, source=source)

    def flat(self) -> dict[str, Any]:
        """Dotted key -> value of every option (the form resume compares)."""
        return {k: v for k, v in flatten(self.to_dict(), self.keys()) if k != "_source"}

    def with_override(self, text: str) -> TrainConfig:
        """This config with one ``--set key=value`` applied (``model.kwargs.<name>=v`` adds a lifter argument)."""
        key, value = parse_override(text)
        if key.startswith("model.kwargs."):
            value, key = {**self.model.kwargs, key.removeprefix("model.kwargs."): value}, "model.kwargs"
        where = f"--set {short(text, quote=False)}"
        if key not in self.keys():
            raise unknown_key(key, self.keys(), where)
        return TrainConfig.from_mapping(set_dotted({}, key, value), source=where, base=self).with_source(self.source)

    def with_source(self, source: str) -> TrainConfig:
        return dataclasses.replace(self, source=source)

    def to_dict(self) -> dict[str, Any]:
        """The nested plain dict stored in checkpoints and ``run.json`` (``_source`` records the origin)."""
        out = super().to_dict()
        out["_source"] = out.pop("source")
        return out


def set_dotted(table: dict[str, Any], key: str, value: Any, *, where: str = "") -> dict[str, Any]:
    """Set ``table[a][b][c] = value`` for ``key = "a.b.c"`` (creating tables); returns ``table``."""
    d = table
    parts = key.split(".")
    for part in parts[:-1]:
        d = d.setdefault(part, {})
        if not isinstance(d, dict):
            raise ConfigError(f"{where or key}: {part} is not a table")
    d[parts[-1]] = value
    return table


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=1e-4"`` -> ``("optim.lr", 0.0001)``; the value is read as TOML, else as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {short(text, quote=False)}: expected KEY=VALUE, e.g. optim.lr=1e-4")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except (ValueError, RecursionError):  # invalid TOML, or an integer of more than 4300 digits
        value = raw
    return key, value


def read_toml(path: str | os.PathLike[str], what: str = "config file") -> dict[str, Any]:
    """Parse a TOML file with one-line errors: missing, not a file, too large, not UTF-8, invalid, too deeply nested."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: {what} not found" if not p.exists() else f"{p}: not a regular file")
    size = p.stat().st_size
    if size > MAX_TOML_BYTES:
        raise ConfigError(f"{p}: file of {size} bytes exceeds the {MAX_TOML_BYTES}-byte limit for a {what}")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise ConfigError(f"{p}: invalid TOML ({short(str(exc), quote=False)})") from None
    except RecursionError:
        raise ConfigError(f"{p}: invalid TOML (nested too deeply)") from None


def load_config(
    path: str | os.PathLike[str] | Mapping[str, Any] | TrainConfig | None = None,
    overrides: Iterable[str] = (),
) -> TrainConfig:
    """Read a TOML config (or take a nested dict or a config), fill defaults, apply ``--set`` overrides.

    ``overrides`` are ``"section.key=value"`` strings (``model.kwargs.<name>=value`` for lifter
    arguments). A dict may name its origin in ``"_source"``; a file's config runs in
    ``runs/<file stem>`` unless ``runtime.out`` says otherwise.
    """
    if isinstance(path, TrainConfig):
        cfg = path
    elif path is None:
        cfg = TrainConfig.from_mapping({}, source="<defaults>")
    elif isinstance(path, Mapping):
        cfg = TrainConfig.from_mapping(path, source=str(path.get("_source", "<config>")))
    else:
        cfg = TrainConfig.from_mapping(read_toml(path), source=str(Path(path)))
        if cfg.runtime.out is None:
            cfg = dataclasses.replace(cfg, runtime=dataclasses.replace(
                cfg.runtime, out=str(Path("runs") / Path(path).stem)))
    for text in overrides:
        cfg = cfg.with_override(text)
    return cfg
