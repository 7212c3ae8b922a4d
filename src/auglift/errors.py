"""Typed exceptions and the one-line form of an error. The CLI prints any :class:`AugliftError` as one
line (:func:`one_line`) and exits 2; messages quote values through :func:`short`."""

from __future__ import annotations

import importlib
import os
import re
from typing import Any


class AugliftError(Exception):
    """Base class for every error the library raises on purpose (bad input, bad config)."""


class DataError(AugliftError, ValueError):
    """A data file or array is not what was expected.

    ``str(err)`` is ``"<file>: <field>: <what was expected>"`` so the CLI line reads
    ``auglift: error: data/h36m/kp3d.npy: kp3d: expected shape (N, 17, 3), got (10, 16, 3)``.
    """

    def __init__(self, path: str | os.PathLike[str] | None, field: str | None, expected: str):
        self.path = None if path is None else os.fspath(path)
        self.field = field
        self.expected = expected
        parts = [p for p in (self.path, field) if p]
        super().__init__(": ".join([*parts, expected]))


class ConfigError(AugliftError, ValueError):
    """A configuration (TOML file, ``--set`` override, CLI option) is invalid."""


def need_extra(module: str, what: str, extra: str, packages: str) -> Any:
    """Import ``module`` of an optional extra on first use; missing, a ConfigError saying how to install it
    (``"<what>: pip install 'auglift[<extra>]' (<packages>)"``)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"{what} {module.split('.')[0]}: pip install 'auglift[{extra}]' ({packages})") from None


# Longest value an error line quotes: a 10 MB string in a config must not become a 10 MB line.
MAX_VALUE_CHARS = 80
# Longest error line the CLI prints (a message made of several values, a library's long text).
MAX_LINE_CHARS = 2000
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def short(value: Any, limit: int = MAX_VALUE_CHARS, *, quote: bool = True) -> str:
    """``repr(value)`` (``str`` when not ``quote``) cut to about ``limit`` characters for error lines
    (``'aaaaa... (10000000 chars)``)."""
    text = repr(value) if quote else str(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} chars)" if isinstance(value, str) else ""
    return text[: limit - 3] + "..." + size


def one_line(message: object, limit: int = MAX_LINE_CHARS) -> str:
    """``message`` as one printable line: ANSI escape codes removed, line breaks and tabs folded into
    spaces, cut to ``limit`` characters (the line ``auglift: error: ...`` prints)."""
    text = _ANSI.sub("", str(message))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
