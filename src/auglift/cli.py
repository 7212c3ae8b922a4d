"""The ``auglift`` command line. It only parses arguments and prints; the work is in the library.

Each subcommand lives in ``auglift.commands.<name>`` and provides ``register(subparsers)`` (its
parser and ``func``); command modules import the library at module top. This module is the one
place that defers imports: :func:`main` imports only the module of the command being run and
lists the others by the one-line help of :data:`COMMANDS`, so ``auglift --help`` and light
commands (``auglift info``) start without importing torch.

Errors the library raises on purpose (:class:`auglift.errors.AugliftError`) and OS errors on user
paths are printed as one line, ``auglift: error: ...`` (:func:`auglift.errors.one_line`), with exit status 2;
no command prints the help and exits 2; a closed output pipe ends the command quietly (status 141).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterable, Sequence

from auglift import __version__
from auglift.errors import AugliftError, one_line

# Subcommands (modules of auglift.commands) in the order ``--help`` lists them, with the line it shows.
COMMANDS: dict[str, str] = {
    "demo": "run AugLift end to end on the embedded synthetic world (minutes on a CPU)",
    "synth": "generate PoseSets of the embedded synthetic world (lab, fitness, outdoor)",
    "depth": "estimate depth and write UADD descriptors (uadd, uadd_valid) into a PoseSet",
    "prepare": "convert Human3.6M / MPI-INF-3DHP / 3DPW / Fit3D into PoseSets",
    "detect": "detect 2D keypoints (RTMDet + RTMPose, or MediaPipe) in a PoseSet's frames: kp2d, conf",
    "detections": "import 2D detections (COCO, MMPose, Halpe, npy/npz) into a PoseSet",
    "info": "summarise a PoseSet (frames, clips, fields, depth/size histograms)",
    "train": "train a lifter from a TOML config (single process or torchrun DDP)",
    "eval": "evaluate a checkpoint on one or more PoseSets (MPJPE, P-MPJPE, PCK, AUC, ...)",
    "matrix": "cross-dataset matrix: train/evaluate every cell, write report + plots",
    "infer": "lift a video, an image or a folder of images to 3D poses (poses3d.npz/.json, rendering)",
    "view": "write one self-contained HTML page that shows a PoseSet, predictions or an infer output in 3D",
    "export": "export a trained lifter to ONNX (encoding in the metadata) or as a shareable directory (--hf)",
}


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``auglift`` parser with the full options of ``commands`` (default: every command, importing every
    command module); the other commands are listed by name and help only."""
    full = set(COMMANDS if commands is None else commands)
    parser = argparse.ArgumentParser(
        prog="auglift",
        description="Depth-augmented 2D-to-3D human pose lifting (AugLift).",
        epilog="Run 'auglift COMMAND --help' for the options of a command. "
               "Set AUGLIFT_DEBUG=1 to see tracebacks.",
    )
    parser.add_argument("--version", action="version", version=f"auglift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_line in COMMANDS.items():
        if name not in full:
            sub.add_parser(name, help=help_line, add_help=False)
            continue
        importlib.import_module(f"auglift.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)  # the top level takes no values
    parser = build_parser([command] if command in COMMANDS else [])
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    debug = os.environ.get("AUGLIFT_DEBUG", "") not in ("", "0")
    try:
        result = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except BrokenPipeError:  # the reader of our output went away (`auglift info ... | head -1`): end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # as a process killed by SIGPIPE
    except (AugliftError, OSError) as exc:
        if debug:
            raise
        if isinstance(exc, OSError):  # an OS error on a user path: the file and the OS's reason
            exc = f"{exc.filename}: {exc.strerror or exc}" if exc.filename else exc.strerror or exc
        print(f"auglift: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("auglift: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
