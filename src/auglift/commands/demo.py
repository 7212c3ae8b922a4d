"""``auglift demo``: the AugLift experiment end to end on the embedded synthetic world."""

from __future__ import annotations

import argparse

from auglift.commands import add_progress_option
from auglift.demo import run_demo
from auglift.errors import ConfigError
from auglift.report import format_summary
from auglift.sweep import format_sweep, run_sweep


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run AugLift end to end on the embedded synthetic world (minutes on a CPU)",
                       description="Generate the lab/fitness/outdoor synthetic domains, extract UADD depth "
                                   "descriptors, train SimpleBaseline (several seeds) and a TCN on lab with xy, "
                                   "xy+bbox, xyc+bbox, uadd+bbox (AugLift's ablation) and uadd+bbox+torso "
                                   "(relative depth) inputs, evaluate on all domains and write a report with "
                                   "intervals and plots. Re-running reuses finished steps.")
    p.add_argument("--out", help="output directory (default: runs/demo; runs/sweep with --sweep)")
    p.add_argument("--overwrite", action="store_true",
                   help="use an output directory holding files auglift did not write")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="larger run: more data and epochs, wider lifters, "
                                                          "PoseFormer too (tens of minutes on a CPU)")
    size.add_argument("--tiny", action="store_true", help="seconds-long smoke run (numbers are meaningless)")
    p.add_argument("--lifters", nargs="+", help="subset of the preset's lifters")
    p.add_argument("--seed", type=int, default=0, help="world and training seed")
    p.add_argument("--sweep", choices=("depth", "noise2d"),
                   help="instead of the demo, measure when depth helps: the AugLift gain (SimpleBaseline, several "
                        "seeds, paired intervals) against the depth model's severity or the 2D detector's noise "
                        "scale (auglift.sweep; writes sweep_<kind>.md/.csv/.json/.png)")
    p.add_argument("--levels", nargs="+", type=float, metavar="L",
                   help="sweep levels: depth severities or 2D-noise scales in [0, 5] (default: 0 1 2 3 for depth, "
                        "0.5 1 2 3 for noise2d)")
    p.add_argument("--jobs", type=int,
                   help="worker processes running domains and cells at once, one torch thread each "
                        "(default: one per CPU core, at most 8; 1 with a GPU)")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    size = "full" if args.full else ("tiny" if args.tiny else "default")
    if args.sweep or args.levels:
        return _sweep(args, size)
    res = run_demo(args.out or "runs/demo", size=size, lifters=args.lifters, seed=args.seed, progress=args.progress,
                   overwrite=args.overwrite, jobs=args.jobs)
    print(format_summary(res["summary"]))
    cells = {(c["lifter"], c["input"], c["train"], c.get("seed")) for c in res["cells"]}
    print(f"\n{len(cells)} cells ({len(res['cells'])} evaluations) in {res['seconds']:.0f} s; "
          f"report: {res['paths']['markdown']}")
    return 0


def _sweep(args: argparse.Namespace, size: str) -> int:
    if not args.sweep:
        raise ConfigError("demo: --levels needs --sweep depth|noise2d")
    if size == "full" or args.lifters:
        raise ConfigError("demo: --sweep trains SimpleBaseline at the default or --tiny size (no --full, --lifters)")
    res = run_sweep(args.sweep, args.out or "runs/sweep", levels=args.levels, size=size, seed=args.seed,
                    progress=args.progress, overwrite=args.overwrite, jobs=args.jobs)
    print(format_sweep(res))
    print(f"\n{len(res['levels'])} levels in {res['seconds']:.0f} s; report: {res['paths']['markdown']}")
    return 0
