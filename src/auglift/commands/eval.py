"""``auglift eval CHECKPOINT --data POSESET [POSESET ...] [--out DIR]``."""

from __future__ import annotations

import argparse
import json

from auglift.commands import add_progress_option
from auglift.errors import ConfigError
from auglift.evaluate import evaluate, format_markdown


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a checkpoint on one or more PoseSets (MPJPE, P-MPJPE, PCK, AUC, ...)",
        description="Evaluate a trained lifter on one or more PoseSets: MPJPE, P-MPJPE, N-MPJPE, MPJVE, "
                    "PCK@150mm, AUC, per action, per joint and occluded vs visible joints. Prints a markdown "
                    "table; with --out also writes eval.json and eval.md, with --save-predictions the per-frame "
                    "predictions (.npz, for 'auglift view' and your own analysis).")
    p.add_argument("checkpoint", help="checkpoint written by 'auglift train' (best.pt or last.pt), an exported .onnx "
                                        "model or a save_pretrained directory")
    p.add_argument("--data", nargs="+", required=True, metavar="POSESET", help="PoseSet directories to evaluate on")
    p.add_argument("--out", help="directory for eval.json and eval.md")
    p.add_argument("--overwrite", action="store_true", help="write into --out even when auglift did not write it")
    p.add_argument("--save-predictions", nargs="?", const=True, metavar="DIR_OR_NPZ",
                   help="write each PoseSet's per-frame predictions (root-relative metres, ground truth, per-joint "
                        "errors) as NAME.predictions.npz into DIR (default: --out), or with one PoseSet to FILE.npz")
    p.add_argument("--split", help="only clips of this split (e.g. test)")
    p.add_argument("--subjects", nargs="+", help="only these subjects")
    p.add_argument("--actions", nargs="+", help="only these actions")
    p.add_argument("--input", dest="channels",
                   help="expected input set (xy, xyc, xycd, uadd or x,y,...): error if the checkpoint differs")
    p.add_argument("--no-flip-test", dest="flip_test", action="store_false", help="no flip-test averaging")
    p.add_argument("--batch-size", type=int, default=0, help="windows per batch (0: about 65536 frames)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none", help="mixed precision inference")
    p.add_argument("--json", action="store_true", help="print the JSON result instead of markdown")
    add_progress_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    save = args.save_predictions
    if save is True:
        if args.out is None:
            raise ConfigError("--save-predictions: give a directory or a .npz file, or --out DIR to save them there")
        save = args.out
    res = evaluate(args.checkpoint, args.data, flip_test=args.flip_test, channels=args.channels, split=args.split,
                   subjects=args.subjects, actions=args.actions, batch_size=args.batch_size, device=args.device,
                   amp=args.amp, out=args.out, save_predictions=save, progress=args.progress,
                   overwrite=args.overwrite)
    if args.json:
        print(json.dumps(res, indent=2))
    else:  # the summary table; per action / joint / occlusion tables are in eval.md (--out)
        print(format_markdown(res).split("\n## ")[0].rstrip())
        for ds in res["datasets"]:
            if "predictions" in ds:
                print(f"predictions of {ds['name']}: {ds['predictions']} (look at them: auglift view FILE)")
    return 0
