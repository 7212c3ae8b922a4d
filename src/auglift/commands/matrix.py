"""``auglift matrix CONFIG.toml``: train and evaluate every lifter x input x training set, write the report."""

from __future__ import annotations

import argparse

from auglift.commands import add_progress_option
from auglift.matrix import run_matrix
from auglift.report import format_summary, summary_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("matrix", help="cross-dataset matrix: train/evaluate every cell, write report + plots",
                       description="Train every lifter x input set x training set of a matrix config, evaluate "
                                   "each on every test set and write report.md, results.csv/json and PNG plots. "
                                   "Finished cells are reused; an interrupted cell resumes. Under torchrun the "
                                   "cells are sharded over the ranks.")
    p.add_argument("config", help="matrix TOML (see configs/matrix/*.toml)")
    p.add_argument("--out", help="run directory (default: matrix.out of the config)")
    p.add_argument("--overwrite", action="store_true", help="use a run directory holding files auglift did not write")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. train.optim.epochs=5 (repeatable)")
    p.add_argument("--jobs", type=int, default=1,
                   help="cells trained at once in worker processes (torch threads split between them; default 1)")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    res = run_matrix(args.config, overrides=args.overrides, out=args.out, progress=args.progress,
                     overwrite=args.overwrite, jobs=args.jobs)
    if res["paths"]:
        print(format_summary(summary_table(res["cells"])))
        print(f"\nreport: {res['paths']['markdown']}")
    return 0
