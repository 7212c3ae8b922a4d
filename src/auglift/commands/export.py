"""``auglift export CHECKPOINT --onnx model.onnx`` / ``--hf DIR``: the lifter as ONNX with its input encoding in the
metadata, or as a shareable Hugging Face-style directory (``model.safetensors``, ``config.json``, model card)."""

from __future__ import annotations

import argparse
import json

from auglift.errors import ConfigError
from auglift.export import export_onnx
from auglift.hub import save_pretrained
from auglift.io import read_json
from auglift.lifter import open_any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a trained lifter to ONNX (encoding in the metadata) or as a shareable directory (--hf)",
        description="Export the checkpoint's lifter to ONNX: input x (batch, T, 17, C) with T the receptive field, "
                    "output y (batch, T_out, 17, 3) metres; the encoder state, channels, depth model and joint "
                    "names are stored in the model's metadata. The file is checked against PyTorch with "
                    "onnxruntime.")
    p.add_argument("checkpoint", help="checkpoint written by 'auglift train', or a save_pretrained directory")
    p.add_argument("--onnx", metavar="FILE", help="the .onnx file to write")
    p.add_argument("--overwrite", action="store_true", help="replace --onnx FILE even when auglift did not write it")
    p.add_argument("--hf", metavar="DIR", help="write a shareable directory: model.safetensors, config.json "
                                                "(lifter, encoder, descriptor options) and a README.md model card; "
                                                "Lifter.from_pretrained(DIR) loads it")
    p.add_argument("--metrics", metavar="EVAL_JSON", help="--hf: an 'auglift eval --out' eval.json for the model card")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the exporter's)")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the onnxruntime comparison")
    p.add_argument("--atol", type=float, default=1e-4, help="largest allowed |onnxruntime - PyTorch| in metres")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (args.onnx or args.hf):
        raise ConfigError("export: give --onnx FILE and/or --hf DIR")
    ckpt = open_any(args.checkpoint)
    if ckpt.onnx:
        raise ConfigError(f"{ckpt.where}: already an exported model; export the .pt checkpoint it came from")
    if args.hf:
        metrics = read_json(args.metrics, "metrics") if args.metrics else None
        d = save_pretrained(ckpt, args.hf, metrics=metrics)
        print(f"wrote {d}: model.safetensors, config.json, README.md (Lifter.from_pretrained({str(d)!r}))")
    if not args.onnx:
        return 0
    res = export_onnx(ckpt, args.onnx, opset=args.opset, check=args.check, atol=args.atol, overwrite=args.overwrite)
    model = json.loads(res.metadata["auglift.model"])
    if args.json:
        print(json.dumps({"path": str(res.path), "input": list(res.input_shape), "output": list(res.output_shape),
                          "max_abs_diff_m": res.max_abs_diff, "model": model,
                          "channels": res.metadata["auglift.channels"]}, indent=2))
        return 0
    shape = lambda s: "(" + ", ".join(map(str, s)) + ")"  # noqa: E731
    print(f"wrote {res.path}: {model['name']} lifter, x {shape(res.input_shape)} "
          f"[{res.metadata['auglift.channels']}] -> y {shape(res.output_shape)} metres")
    if res.max_abs_diff is not None:
        print(f"onnxruntime vs PyTorch: max |difference| {res.max_abs_diff:.2e} m")
    return 0
