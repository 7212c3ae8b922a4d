"""``auglift depth POSESET --model M``: estimate depth and write the PoseSet's UADD descriptors."""

from __future__ import annotations

import argparse
import json

from auglift.commands import add_chunk_options, add_progress_option, chunk_summary
from auglift.depth.estimators import DepthEstimator, load_estimator
from auglift.depth.extract import extract_uadd, merge_uadd, run_key
from auglift.depth.uadd import RESEARCH_STATS, DescriptorSpec, LinearRadius, ScaleAdaptiveRadius, Stats, TorsoRadius
from auglift.errors import ConfigError


def _hw(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW (e.g. 256x320), got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return h, w


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "depth", help="estimate depth and write UADD descriptors (uadd, uadd_valid) into a PoseSet",
        description="Decode each clip's frames (video or image pattern; synthetic clips are rendered by the "
                    "oracle), estimate depth in batches and sample the UADD descriptor (d, d_min, d_max) of every "
                    "keypoint. Work is chunked and resumable; --shard i/n (or torchrun) splits it; the last "
                    "shard to finish merges into the PoseSet.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("poseset", help="saved PoseSet directory")
    p.add_argument("--model",
                   help="oracle[:metric|relative|true], an official .pth checkpoint, a transformers model "
                        "directory or a hub id (required except with --merge alone)")
    g = p.add_argument_group("depth model")
    g.add_argument("--device", help="cuda, cpu, cuda:1, ... (default: CUDA if available)")
    g.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"])
    g.add_argument("--input-size", type=int, default=518, help="short side of the network input (multiple of 14)")
    g.add_argument("--encoder", choices=["vits", "vitb", "vitl"],
                   help=".pth: encoder (default: from the file name)")
    g.add_argument("--kind", choices=["metric", "relative"], help=".pth: model kind (default: from name)")
    g.add_argument("--max-depth", type=float, help=".pth metric: max depth (20 indoor, 80 outdoor)")
    g.add_argument("--oracle-size", type=_hw, metavar="HxW",
                   help="oracle: depth-map size, e.g. 256x256 (default: 256 px on the long side)")
    d = p.add_argument_group("descriptor")
    d.add_argument("--radius", choices=["torso", "linear", "scale"], default="torso",
                   help="torso: the paper's linear rule in torso lengths (--t-min/--t-max); linear: paper "
                        "r = r_min + (1-c)(r_max-r_min) px (--r-min/--r-max); scale: research code's rule")
    d.add_argument("--r-min", type=float, default=3.0, help="smallest radius, px of the original image")
    d.add_argument("--r-max", type=float, default=30.0, help="largest radius, px of the original image")
    d.add_argument("--t-min", type=float, default=0.03, help="torso rule: smallest radius, torso lengths")
    d.add_argument("--t-max", type=float, default=0.3, help="torso rule: largest radius, torso lengths")
    d.add_argument("--k", type=float, default=0.04, help="scale rule: k")
    d.add_argument("--beta", type=float, default=3.0, help="scale rule: beta")
    d.add_argument("--gamma", type=float, default=1.5, help="scale rule: gamma")
    d.add_argument("--stats", choices=["paper", "research"], default="paper",
                   help="paper: median/min/max; research: keypoint depth/q10/q90 (--center/--low/--high override)")
    d.add_argument("--center", choices=["median", "keypoint"])
    d.add_argument("--low", type=float, help="quantile for d_min")
    d.add_argument("--high", type=float, help="quantile for d_max")
    d.add_argument("--mode", choices=["exact", "fast"], default="exact", help="every pixel, or 97 bilinear samples")
    d.add_argument("--points", type=int, default=97, help="samples per keypoint in fast mode")
    r = p.add_argument_group("run")
    add_chunk_options(r, "depth-model")
    r.add_argument("--every", type=int, default=1, help="run the depth model on every K-th frame of each clip")
    r.add_argument("--merge", action="store_true", help="only merge the chunks of a finished run into the PoseSet")
    r.add_argument("--no-merge", action="store_true", help="do not merge even when all chunks are present")
    r.add_argument("--full-hash", action="store_true",
                   help="key the run on a hash of every byte of kp2d/conf/clip/frame (default: size and "
                        "sampled bytes)")
    r.add_argument("--save-maps", action="store_true", help="also keep the depth maps (float16) with the chunks")
    add_progress_option(r)
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.radius == "linear":
        radius = LinearRadius(args.r_min, args.r_max)
    elif args.radius == "torso":
        radius = TorsoRadius(args.t_min, args.t_max)
    else:
        radius = ScaleAdaptiveRadius(k=args.k, beta=args.beta, gamma=args.gamma, r_min=args.r_min, r_max=args.r_max)
    base = RESEARCH_STATS if args.stats == "research" else Stats()
    stats = Stats(args.center or base.center, base.low if args.low is None else args.low,
                  base.high if args.high is None else args.high)
    descriptor = DescriptorSpec(radius, stats, args.mode, args.points)

    def estimator() -> DepthEstimator:
        return load_estimator(args.model, device=args.device, dtype=args.dtype, input_size=args.input_size,
                              max_batch=args.batch_size, encoder=args.encoder, kind=args.kind,
                              max_depth=args.max_depth, oracle_size=args.oracle_size)

    if args.merge:
        key = run_key(args.poseset, estimator(), descriptor=descriptor, every=args.every,
                      chunk_frames=args.chunk_frames, full_hash=args.full_hash) if args.model else None
        res = merge_uadd(args.poseset, key)
    else:
        if not args.model:
            raise ConfigError("--model is required (oracle, a .pth checkpoint, a model directory or a hub id)")
        res = extract_uadd(args.poseset, estimator(), batch_size=args.batch_size, chunk_frames=args.chunk_frames,
                           shard=args.shard, every=args.every, merge=not args.no_merge, save_maps=args.save_maps,
                           progress=args.progress, descriptor=descriptor, full_hash=args.full_hash)
    out, line = chunk_summary(res)
    out["changed"] = res.changed
    if args.json:
        print(json.dumps({**out, "depth_maps": res.maps, "depth_model": res.depth_model}, indent=2))
        return 0
    if res.changed:
        print(f"{', '.join(res.changed)} changed since the last run with these settings: computing the descriptors "
              "afresh")
    print(f"{line} ({res.maps} depth maps) in {res.seconds:.1f} s ({res.frames_per_s:.1f} frames/s)")
    if res.merged:
        print(f"wrote uadd, uadd_valid ({res.depth_model.get('name')}, {res.depth_model.get('kind')})")
    elif res.chunks_missing:
        print("not merged yet: run the other shards, then 'auglift depth POSESET --merge'")
    return 0
