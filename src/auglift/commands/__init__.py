"""One module per ``auglift`` subcommand: ``register(subparsers)`` adds the parser and sets ``func``.

Command modules import the library at module top; :mod:`auglift.cli` imports only the module of the
command being run (so ``auglift --help`` stays fast without torch).
"""

from __future__ import annotations

import argparse


def add_progress_option(p: argparse.ArgumentParser) -> None:
    """``--progress/--no-progress``: force progress bars on or off (default: on a terminal only)."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars always / never (default: only when stderr is a terminal; otherwise "
                        "a line per epoch)")


def shard_arg(text: str) -> tuple[int, int]:
    """``--shard i/n`` (``auglift depth``, ``auglift detect``): ``(i, n)`` with ``0 <= i < n``."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"expected 0 <= i < n, got {text!r}")
    return i, n
