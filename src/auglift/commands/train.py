"""``auglift train CONFIG.toml [--set key=value ...] [--resume] [--out DIR]``."""

from __future__ import annotations

import argparse
import os

from auglift.commands import add_progress_option
from auglift.train import train


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a lifter from a TOML config (single process or torchrun DDP)",
        description="Train a 2D-to-3D lifter as described by a TOML config (see configs/). Writes last.pt, "
                    "best.pt, history.csv and run.json into the run directory. Under torchrun "
                    "--nproc_per_node=N the run is data-parallel (gloo on CPU, nccl on CUDA).")
    p.add_argument("config", help="TOML config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=1e-4 --set model.kwargs.width=256 "
                        "(values are read as TOML; repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pt (fresh start if absent)")
    p.add_argument("--out", help="run directory (default: runtime.out, else runs/<config name>)")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    progress = [] if args.progress is None else [f"runtime.progress={str(args.progress).lower()}"]
    best = train(args.config, overrides=[*args.overrides, *progress], resume=args.resume, out=args.out)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 prints
        print(best)
    return 0
