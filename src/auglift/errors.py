"""Typed exceptions. The CLI prints any :class:`AugliftError` as one line and exits 2."""

from __future__ import annotations

import os


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
