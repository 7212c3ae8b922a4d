"""Training configurations: TOML files with a fixed schema, defaults, and ``--set key=value`` overrides.

A configuration is a nested dict with the sections below (see ``configs/*.toml`` and the README
section "Training and evaluation"). Every key is checked: an unknown key, a wrong type or a
value outside its choices raises :class:`auglift.errors.ConfigError` naming the key and the
file (or ``--set``). ``model.kwargs`` is free-form: it is passed to :func:`auglift.models.build`,
which rejects keys the lifter does not take.

Relative PoseSet paths are resolved against the current working directory.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from auglift.encoding import CHOICES as INPUT_CHOICES
from auglift.encoding import DEFAULTS as INPUT_DEFAULTS
from auglift.encoding import parse_channels
from auglift.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["SCHEMA", "default_config", "from_dict", "load_config", "parse_override", "read_toml", "resolve_section"]

# A configuration is a few kilobytes; anything near this is not one (and would be read into memory whole).
MAX_TOML_BYTES = 16 << 20

_STR_OR_LIST = (str, list)
_NUM = (int, float)
_OPT_STR = (str, type(None))


def _subset(prefix: str) -> dict[str, tuple[Any, tuple[type, ...], tuple[Any, ...] | None, str]]:
    return {
        f"{prefix}.path": (None, _OPT_STR, None, "PoseSet directory"),
        f"{prefix}.split": (None, _OPT_STR, None, "only clips of this split (e.g. 'train')"),
        f"{prefix}.subjects": ([], (list,), None, "only these subjects (empty: all)"),
        f"{prefix}.actions": ([], (list,), None, "only these actions (empty: all)"),
        f"{prefix}.stride": (0, (int,), None, "window stride (0: 1 for many-to-one, the window length for "
                                             "many-to-many)"),
        f"{prefix}.max_windows": (0, (int,), None, "use at most this many evenly spaced windows (0: all)"),
    }


# dotted key -> (default, accepted types, choices or None, help)
SCHEMA: dict[str, tuple[Any, tuple[type, ...], tuple[Any, ...] | None, str]] = {
    **_subset("data.train"),
    **_subset("data.val"),
    "data.validate": (True, (bool,), None, "check PoseSet values (NaN/inf, ranges) before training"),
    "data.anchor": ("auto", (str,), ("auto", "center", "causal", "start"),
                    "window anchor (auto: start for many-to-many, causal for causal lifters, else center)"),
    "model.name": ("simple_baseline", (str,), None, "lifter name in auglift.models"),
    "model.init": (None, _OPT_STR, None, "initialise weights from this checkpoint (same input set)"),
    **{f"input.{k}": (v, _STR_OR_LIST if k == "channels" else ((int,) if k == "root" else (
        _NUM if isinstance(v, float) else (str,))), INPUT_CHOICES.get(k), "") for k, v in INPUT_DEFAULTS.items()},
    "optim.optimizer": ("adam", (str,), ("adam", "adamw"), ""),
    "optim.lr": (1e-3, _NUM, None, "initial learning rate"),
    "optim.weight_decay": (0.0, _NUM, None, ""),
    "optim.amsgrad": (False, (bool,), None, "AMSGrad variant of Adam/AdamW (VideoPose3D uses it)"),
    "optim.lr_decay": (0.98, _NUM, None, "learning rate factor per epoch (exponential decay)"),
    "optim.epochs": (10, (int,), None, ""),
    "optim.batch_size": (256, (int,), None, "global batch (windows per step, summed over DDP ranks)"),
    "optim.grad_clip": (0.0, _NUM, None, "max gradient L2 norm (0: off)"),
    "optim.steps_per_epoch": (0, (int,), None, "cap on steps per epoch (0: one pass over the windows)"),
    "optim.bn_momentum": (0.0, _NUM, None, "BatchNorm momentum in the first epoch (0: the lifter's own)"),
    "optim.bn_momentum_final": (0.0, _NUM, None, "decay the BatchNorm momentum exponentially per epoch "
                                "towards this value, reached after the last epoch (VideoPose3D: 0.1 -> "
                                "0.001; 0: no decay)"),
    "loss.velocity_weight": (0.0, _NUM, None, "weight of the velocity loss (many-to-many lifters)"),
    "loss.n_mpjpe_weight": (0.0, _NUM, None, "weight of the N-MPJPE term: MPJPE after scaling each "
                            "predicted frame by the factor that best fits the target (MotionBERT: 0.5)"),
    "augment.flip": (True, (bool,), None, "random left/right flips (p = 0.5) during training"),
    "augment.flip_test": (True, (bool,), None, "average with the flipped input's prediction at validation"),
    "augment.flip_center": ("root", (str,), ("root", "image"), "2D mirror axis"),
    "runtime.seed": (0, (int,), None, ""),
    "runtime.device": ("auto", (str,), None, "auto | cpu | cuda | cuda:N"),
    "runtime.amp": ("none", (str,), ("none", "bf16", "fp16"), "mixed precision (fp16 needs CUDA)"),
    "runtime.threads": (0, (int,), None, "torch intra-op threads (0: torch's default)"),
    "runtime.deterministic": (True, (bool,), None, "torch.use_deterministic_algorithms"),
    "runtime.out": (None, _OPT_STR, None, "run directory (default runs/<config name>)"),
    "runtime.progress": (True, (bool,), None, "tqdm progress bar"),
    "runtime.log": (True, (bool,), None, "one line per epoch on stderr"),
    "runtime.checkpoint_every": (0, (int,), None, "also checkpoint every N steps inside an epoch (0: off)"),
    "runtime.val_batch_size": (0, (int,), None, "windows per validation batch (0: about 65536 frames)"),
    "runtime.tensorboard": (True, (bool,), None, "write TensorBoard scalars if tensorboard is installed"),
}
_FREE = ("model.kwargs",)


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value


def default_config() -> dict[str, Any]:
    """The full default configuration as a nested dict."""
    cfg: dict[str, Any] = {"model": {"kwargs": {}}}
    for k, (default, *_rest) in SCHEMA.items():
        _set(cfg, k, copy.deepcopy(default))
    return cfg


def _flatten(d: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if key in _FREE or key in SCHEMA:
            yield key, v
        elif isinstance(v, Mapping) and any(s.startswith(key + ".") for s in (*SCHEMA, *_FREE)):
            yield from _flatten(v, key + ".")
        else:
            yield key, v


def _unknown(key: str, source: str) -> ConfigError:
    known = [*SCHEMA, *_FREE]
    section, _, leaf = key.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == section}
    close = difflib.get_close_matches(leaf, list(siblings), n=1)
    if close:
        hint = f" (did you mean {siblings[close[0]]}?)"
    else:
        sections = sorted({k.rpartition(".")[0] for k in known})
        hint = "" if section in sections else f" (sections: {', '.join(sections)})"
    return ConfigError(f"{source}: {key}: unknown key{hint}")


def _check_value(key: str, value: Any, source: str) -> Any:
    if key in _FREE:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: {key}: expected a table of keyword arguments, got {value!r}")
        return dict(value)
    _default, types, choices, _help = SCHEMA[key]
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise ConfigError(f"{source}: {key}: expected {names}, got {value!r}")
    if choices is not None and value not in choices:
        raise ConfigError(f"{source}: {key}: expected one of {', '.join(map(str, choices))}, got {value!r}")
    if key == "input.channels":
        try:
            parse_channels(value)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    if key.endswith((".subjects", ".actions")) and not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: {key}: expected a list of strings, got {value!r}")
    if key in ("optim.epochs", "optim.batch_size") and value < 1:
        raise ConfigError(f"{source}: {key}: expected a positive integer, got {value!r}")
    if key in ("optim.lr", "optim.lr_decay") and not value > 0:
        raise ConfigError(f"{source}: {key}: expected a positive number, got {value!r}")
    nonneg = (".stride", ".max_windows", "steps_per_epoch", "checkpoint_every", "threads", "val_batch_size")
    if key.endswith(nonneg) and value < 0:
        raise ConfigError(f"{source}: {key}: expected an integer >= 0, got {value!r}")
    if key.startswith("loss.") and not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{source}: {key}: expected a number >= 0, got {value!r}")
    if key.startswith("optim.bn_momentum") and not 0 <= value <= 1:
        raise ConfigError(f"{source}: {key}: expected a momentum in [0, 1], got {value!r}")
    return value


def from_dict(user: Mapping[str, Any], *, source: str = "<config>", base: Mapping[str, Any] | None = None
              ) -> dict[str, Any]:
    """Merge ``user`` over the defaults (or over ``base``), checking every key and value."""
    cfg = copy.deepcopy(dict(base) if base is not None else default_config())
    for key, value in _flatten(user):
        if key not in SCHEMA and key not in _FREE:
            raise _unknown(key, source)
        _set(cfg, key, _check_value(key, value, source))
    return cfg


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=1e-4"`` -> ``("optim.lr", 0.0001)``; the value is read as TOML, else as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text}: expected KEY=VALUE, e.g. optim.lr=1e-4")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        value = raw
    return key, value


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    free = next((f for f in _FREE if key.startswith(f + ".")), None)
    if free is not None:  # model.kwargs.width=256
        _set(out, free, {key[len(free) + 1:]: value})
    else:
        _set(out, key, value)
    return out


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
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: invalid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{p}: invalid TOML (nested too deeply)") from None


def load_config(
    path: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """Read a TOML config (or take a dict), fill defaults, apply ``--set`` overrides, validate.

    ``overrides`` are ``"section.key=value"`` strings (``model.kwargs.<name>=value`` for
    lifter arguments). The resolved dict records its origin in ``cfg["_source"]``.
    """
    if path is None:
        user: Mapping[str, Any] = {}
        source = "<defaults>"
    elif isinstance(path, Mapping):
        user = {k: v for k, v in path.items() if k != "_source"}
        source = str(path.get("_source", "<config>"))
    else:
        source = str(Path(path))
        user = read_toml(path)
    cfg = from_dict(user, source=source)
    for text in overrides:
        key, value = parse_override(text)
        if key not in SCHEMA and not any(key.startswith(f + ".") for f in _FREE):
            raise _unknown(key, f"--set {text}")
        nested = _nest(key, value)
        if key.startswith("model.kwargs."):
            cfg["model"]["kwargs"].update(nested["model"]["kwargs"])
        else:
            cfg = from_dict(nested, source=f"--set {text}", base=cfg)
    if cfg["runtime"]["out"] is None and source not in ("<defaults>", "<config>") and not isinstance(path, Mapping):
        cfg["runtime"]["out"] = str(Path("runs") / Path(source).stem)
    cfg["_source"] = source
    return cfg


def resolve_section(cfg: Mapping[str, Any], section: str) -> dict[str, Any]:
    """A copy of one section of a resolved config."""
    return copy.deepcopy(dict(cfg[section]))
