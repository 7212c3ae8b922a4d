"""The ``auglift`` command line. It only parses arguments and prints; the work is in the library.

Each subcommand lives in ``auglift.commands.<name>`` and provides ``register(subparsers)``.
Errors the library raises on purpose (:class:`auglift.errors.AugliftError`) and OS errors
on user paths are printed as one line, ``auglift: error: ...``, with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from auglift import __version__
from auglift.errors import AugliftError

# Subcommands in the order ``--help`` lists them; a module that does not exist yet is skipped.
COMMANDS = ("demo", "synth", "depth", "prepare", "detections", "info", "train", "eval",
            "matrix", "infer", "view", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="auglift",
        description="Depth-augmented 2D-to-3D human pose lifting (AugLift).",
        epilog="Run 'auglift COMMAND --help' for the options of a command. "
               "Set AUGLIFT_DEBUG=1 to see tracebacks.",
    )
    parser.add_argument("--version", action="version", version=f"auglift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"auglift.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"auglift.commands.{name}":
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    debug = os.environ.get("AUGLIFT_DEBUG", "") not in ("", "0")
    try:
        result = args.func(args)
    except AugliftError as exc:
        if debug:
            raise
        print(f"auglift: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"auglift: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("auglift: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
