"""One module per ``auglift`` subcommand: ``register(subparsers)`` adds the parser and sets ``func``.

Command modules import the library at module top; :mod:`auglift.cli` imports only the module of the
command being run (so ``auglift --help`` stays fast without torch).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_progress_option(p: argparse.ArgumentParser) -> None:
    """``--progress/--no-progress``: force progress bars on or off (default: on a terminal only)."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction,
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


def add_chunk_options(g: argparse._ArgumentGroup, model: str) -> None:
    """``--batch-size``, ``--chunk-frames``, ``--shard`` of a chunked, resumable run (``auglift depth``, ``detect``)."""
    g.add_argument("--batch-size", type=int, default=8, help=f"frames per {model} batch")
    g.add_argument("--chunk-frames", type=int, default=256, help="rows per resumable chunk")
    g.add_argument("--shard", type=shard_arg, help="i/n: this process's share (default: torchrun rank)")


def chunk_summary(res: Any) -> tuple[dict[str, Any], str]:
    """A chunked run's result (``ExtractResult``, ``DetectResult``): its JSON fields, and the start of its text line."""
    shard = f"{res.shard[0]}/{res.shard[1]}"
    out = {"poseset": str(res.path), "key": res.key, "shard": shard, "chunks": res.chunks_total,
           "computed": res.chunks_done, "skipped": res.chunks_skipped, "missing": res.chunks_missing,
           "frames": res.rows, "seconds": round(res.seconds, 3), "frames_per_s": round(res.frames_per_s, 2),
           "merged": res.merged}
    line = (f"{res.path}: run {res.key}, shard {shard}: {res.chunks_done} chunks computed, {res.chunks_skipped} "
            f"already done, {res.chunks_missing} missing of {res.chunks_total}; {res.rows} frames")
    return out, line
