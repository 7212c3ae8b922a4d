"""Typed option sections: frozen dataclasses whose fields carry a help text, choices and a value check.

A section (:class:`Section`) is validated when it is built, so code that holds one trusts it: a
wrong type (from the field's annotation: ``float`` takes ints, ``tuple[str, ...]`` a list of
strings, ``dict`` a table, ``X | None`` null), a value outside the choices or a failed check raises
:class:`~auglift.errors.ConfigError` naming the dotted key (``optim.lr: expected a positive
number, got -1``; non-finite floats are refused everywhere, quoted values are cut to about 80
characters). Sections read TOML tables (:func:`parse_section`, :func:`flatten`) and write
plain dicts (:meth:`Section.to_dict`) for checkpoints and JSON.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

from auglift.errors import ConfigError, short

__all__ = ["POSITIVE", "Check", "Section", "check_section", "flatten", "option", "parse_section", "schema",
           "unknown_key"]


@dataclass(frozen=True)
class Check:
    """A value check: ``ok(value)`` must hold, else "expected ``text``, got <value>"."""

    ok: Callable[[Any], bool]
    text: str


POSITIVE = Check(lambda v: v > 0, "a positive number")  # (lengths, rates, clips of the config sections)


def option(default: Any, help: str = "", *, choices: tuple[Any, ...] | None = None, check: Check | None = None
           ) -> Any:
    """A dataclass field of a :class:`Section` with its help text, allowed values and value check.

    ``default`` must be immutable (tuples, not lists); a table field uses ``field(default_factory=dict)``.
    """
    return field(default=default, metadata={"help": help, "choices": choices, "check": check})


class Section:
    """Base of the option sections: ``prefix`` names the keys in errors (``"optim"``: ``optim.lr``).

    Sections with an empty prefix are checked by the section that holds them (under its key).
    """

    prefix: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if self.prefix:
            check_section(self, self.prefix)

    def to_dict(self) -> dict[str, Any]:
        """The section as plain values (nested dicts, lists for tuples), e.g. for a checkpoint."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def _plain(v: Any) -> Any:
    if isinstance(v, Section):
        return v.to_dict()
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


# Annotation (origin) -> the runtime types a field of it accepts and their name in messages; any other
# annotation accepts its own type.
_ACCEPTED: dict[Any, tuple[tuple[type, ...], str]] = {
    type(None): ((type(None),), "null"),
    float: ((int, float), "int or float"),
    tuple: ((list, tuple), "list"),
    dict: ((Mapping,), "table"),  # type: ignore[type-abstract]
}


def _accepts(tp: Any) -> tuple[tuple[type, ...], str]:
    """Runtime types a field of annotation ``tp`` accepts, and their names for messages."""
    parts = typing.get_args(tp) if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union else (tp,)
    out: list[type] = []
    names: list[str] = []
    for p in parts:
        origin = typing.get_origin(p) or p
        accepted, name = _ACCEPTED.get(origin, ((origin,), origin.__name__))
        out += accepted
        names.append(name)
    return tuple(out), " or ".join(names)


def check_section(section: Section, prefix: str) -> None:
    """Check (and normalise: lists -> tuples, tables -> dicts) every field of ``section`` under ``prefix``."""
    hints = _hints(type(section))
    for f in dataclasses.fields(section):  # type: ignore[arg-type]
        key, value = f"{prefix}.{f.name}", getattr(section, f.name)
        if isinstance(value, Section):
            check_section(value, key)
            continue
        accepted, names = _accepts(hints[f.name])
        if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
            raise ConfigError(f"{key}: expected {names}, got {short(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        if isinstance(value, list | tuple):
            item = (typing.get_args(hints[f.name]) or (str,))[0]
            item = item if item in (int, str) else str  # tuple[int, ...] (seeds) or tuple[str, ...]
            if not all(isinstance(v, item) and not isinstance(v, bool) for v in value):
                raise ConfigError(f"{key}: expected a list of {'integers' if item is int else 'strings'}, "
                                  f"got {short(value)}")
            object.__setattr__(section, f.name, tuple(value))
        elif isinstance(value, Mapping):
            object.__setattr__(section, f.name, dict(value))
        choices, check = f.metadata.get("choices"), f.metadata.get("check")
        if choices is not None and value not in choices:
            raise ConfigError(f"{key}: expected one of {', '.join(map(str, choices))}, got {short(value)}")
        if check is not None and not check.ok(value):
            raise ConfigError(f"{key}: expected {check.text}, got {short(value)}")


def schema(cls: type[Section], prefix: str = "") -> dict[str, dataclasses.Field[Any]]:
    """Dotted key -> field of every option of ``cls`` (nested sections expanded; free tables are one key)."""
    out: dict[str, dataclasses.Field[Any]] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if isinstance(tp, type) and issubclass(tp, Section):
            out |= schema(tp, key + ".")
        else:
            out[key] = f
    return out


def flatten(user: Mapping[str, Any], known: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` pairs of a nested table, descending only into tables that hold ``known`` keys."""
    for k, v in user.items():
        key = f"{prefix}{k}"
        if key not in known and isinstance(v, Mapping) and any(s.startswith(key + ".") for s in known):
            yield from flatten(v, known, key + ".")
        else:
            yield key, v


def unknown_key(key: str, known: Mapping[str, Any], source: str) -> ConfigError:
    """The error for an unknown dotted ``key``, with the closest known key of its section as a hint."""
    section, _, leaf = key.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == section}
    close = difflib.get_close_matches(leaf, list(siblings), n=1)
    if close:
        hint = f" (did you mean {siblings[close[0]]}?)"
    else:
        sections = sorted({k.rpartition(".")[0] for k in known})
        hint = "" if section in sections else f" (sections: {', '.join(sections)})"
    return ConfigError(f"{source}: {short(key, quote=False)}: unknown key{hint}")


def parse_section(cls: type[Section], values: Mapping[str, Any]) -> Section:
    """Build ``cls`` from dotted ``values`` (keys relative to ``cls``; absent keys keep their defaults)."""
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp = hints[f.name]
        if isinstance(tp, type) and issubclass(tp, Section):
            sub = {k[len(f.name) + 1:]: v for k, v in values.items() if k.startswith(f.name + ".")}
            kwargs[f.name] = parse_section(tp, sub)
        elif f.name in values:
            kwargs[f.name] = values[f.name]
    return cls(**kwargs)
