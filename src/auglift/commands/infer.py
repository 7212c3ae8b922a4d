"""``auglift infer INPUT --checkpoint CKPT [--keypoints FILE] [--depth M] [--render out.mp4] [--out DIR]``."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from auglift.infer import InferOptions, infer


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "infer", help="lift a video, an image or a folder of images to 3D poses (poses3d.npz/.json, rendering)",
        description="Lift a video, an image or a folder of images to 3D: 2D keypoints from a file (COCO/Halpe/MMPose "
                    "JSON, .npy/.npz) or MediaPipe, tracking (the largest person, or --all), depth descriptors "
                    "sampled as the checkpoint was trained, the lifter with sliding windows, and an absolute-root "
                    "estimate from metric depth. Writes poses3d.npz and poses3d.json into --out and prints the "
                    "frames/s of every stage.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("input", help="video file, image, or folder of images (sorted naturally)")
    p.add_argument("--checkpoint", "-c", required=True, help="checkpoint written by 'auglift train' (best.pt)")
    p.add_argument("--out", "-o", help="output directory (default: <input name>_3d next to the input)")
    k = p.add_argument_group("2D keypoints")
    k.add_argument("--keypoints", "-k",
                   help="keypoint file: COCO/Halpe/MMPose JSON or .npy/.npz (F, J, 2|3) / (F, P, J, 2|3); "
                        "default: run --detector")
    k.add_argument("--format", dest="keypoint_format", choices=["coco", "halpe", "mmpose", "npy", "npz"],
                   help="keypoint file format (default: guessed)")
    k.add_argument("--joint-set", help="joint set of the keypoint file (default: by joint count)")
    k.add_argument("--id-scheme", choices=["frame", "frame1"], default="frame",
                   help="integer image ids / numbers in file names are 0-based (frame) or 1-based (frame1) frames")
    k.add_argument("--key", dest="keypoint_key", help=".npz: the keypoint array")
    k.add_argument("--min-score", type=float, default=0.0, help="drop instances with a lower mean keypoint score")
    k.add_argument("--detector", choices=["mediapipe"], default="mediapipe",
                   help="2D detector without --keypoints (needs the mediapipe extra)")
    t = p.add_argument_group("people")
    t.add_argument("--all", dest="all_tracks", action="store_true", help="lift every track (default: the largest)")
    t.add_argument("--max-gap", type=int, default=30, help="frames a track may miss before it ends")
    t.add_argument("--min-similarity", type=float, default=0.25, help="tracking: least 0.5*(IoU+OKS) to link")
    d = p.add_argument_group("depth")
    d.add_argument("--depth", default="auto",
                   help="Depth Anything V2: a save_pretrained directory, an official .pth or a hub id; 'auto' = the "
                        "default hub id when the checkpoint needs depth (else none); 'none' = no depth")
    d.add_argument("--depth-dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"])
    d.add_argument("--depth-input-size", type=int, default=518, help="short side of the depth network input")
    d.add_argument("--depth-batch", type=int, default=4, help="frames per depth-model batch")
    d.add_argument("--depth-every", type=int, default=1, help="run the depth model on every K-th frame")
    d.add_argument("--max-depth", type=float,
                   help=".pth metric models: max depth (20 indoor, 80 outdoor)")
    c = p.add_argument_group("camera and lifter")
    c.add_argument("--focal", type=float, help="focal length in px (default: max(width, height))")
    c.add_argument("--fps", type=float, help="frame rate (default: the video's; images: 30)")
    c.add_argument("--no-flip-test", dest="flip_test", action="store_false", default=None,
                   help="no flip-test averaging (default: as the checkpoint was validated)")
    c.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (lifter and depth model)")
    c.add_argument("--batch-size", type=int, default=0, help="lifter windows per batch (0: about 65536 frames)")
    c.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none",
                   help="lifter precision: bf16 is faster on CPUs with AVX512-BF16/AMX and on GPUs")
    r = p.add_argument_group("output")
    r.add_argument("--render", metavar="FILE",
                   help="draw 2D and 3D skeletons into FILE (.mp4, .avi, .gif)")
    r.add_argument("--overwrite", action="store_true",
                   help="replace what is at --out/--render even when auglift did not write it")
    r.add_argument("--render-height", type=int, default=480, help="height of the rendered frames in px")
    r.add_argument("--no-progress", action="store_true", help="no progress bars (default: on a terminal)")
    r.add_argument("--json", action="store_true", help="print the run's metadata as JSON")
    p.set_defaults(func=run)


STAGES = ("decode", "2D", "tracking", "depth", "lifter", "render", "total")


def format_timings(timings: dict) -> str:
    """The per-stage table printed at the end of a run."""
    lines = [f"{'stage':<10} {'frames':>8} {'seconds':>9} {'frames/s':>10}"]
    for s in STAGES:
        if s in timings:
            v = timings[s]
            fps = "-" if v["fps"] is None else f"{v['fps']:.1f}"
            lines.append(f"{s:<10} {v['frames']:>8} {v['seconds']:>9.3f} {fps:>10}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    out = args.out or str(Path(args.input).with_name(Path(args.input).stem + "_3d"))
    options = {f.name: getattr(args, f.name) for f in dataclasses.fields(InferOptions) if hasattr(args, f.name)}
    res = infer(args.input, args.checkpoint, out_dir=out, progress=False if args.no_progress else None, **options)
    if args.json:
        print(json.dumps(res.meta, indent=2))
        return 0
    m = res.meta
    inp = m["input"]
    tracks = ", ".join(f"#{t['track']} frames {t['first_frame']}-{t['last_frame']}" for t in m["tracks"])
    root = "absolute root from metric depth" if m["root"]["available"] else "no absolute root (needs metric depth)"
    print(f"{inp['path']}: {inp['frames']} frames {inp['width']}x{inp['height']} at {inp['fps']:g} fps; "
          f"{m['tracking']['tracks_found']} track(s) found, lifted {tracks}")
    print(f"lifter {m['model']['name']} (input {m['input_set']}), depth "
          f"{(m['depth_model'] or {}).get('name', 'none')}; {root}")
    print(f"wrote {res.npz} and {res.json}" + (f", rendering {res.render}" if res.render else ""))
    print(format_timings(m["timings"]))
    return 0
