"""``auglift synth``: generate PoseSets (and optionally depth maps and a preview) of the synthetic world."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from auglift.datasets.mocap.source import film_motion, generate_mixed
from auglift.datasets.synthetic import DOMAINS, generate, preview_grid, save_depth_maps
from auglift.datasets.synthetic.depth_error import depth_severity
from auglift.datasets.synthetic.detections import noise2d_scale
from auglift.datasets.synthetic.render import map_size
from auglift.errors import ConfigError
from auglift.outputs import claim
from auglift.poseset import PoseSet


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth", help="generate PoseSets of the embedded synthetic world (lab, fitness, outdoor)",
        description="Generate a PoseSet of the embedded synthetic world: procedural people filmed by a "
                    "domain's cameras, with simulated 2D detections. Depth maps are re-rendered on demand "
                    "from the PoseSet (auglift.datasets.synthetic.render_depth); --depth-maps also stores "
                    "them. --preview draws a PNG grid of depth maps with the 2D skeleton (occluded joints "
                    "marked).")
    p.add_argument("--domain", default="lab",
                   help="lab, fitness, outdoor, or a comma-separated list (then --out gets one sub-directory "
                        "per domain) (default: lab)")
    p.add_argument("--frames", type=int, default=20000, help="PoseSet rows per domain (default: 20000)")
    p.add_argument("--seed", type=int, default=0, help="world seed (default: 0)")
    p.add_argument("--out", type=Path, help="output PoseSet directory")
    p.add_argument("--overwrite", action="store_true",
                   help="replace what is at --out/--preview even when auglift did not write it")
    p.add_argument("--actions", help="comma-separated activities to use instead of the domain's list")
    p.add_argument("--seq-seconds", type=float, nargs=2, metavar=("LO", "HI"),
                   help="range of sequence durations in seconds (default: the domain's)")
    p.add_argument("--depth-quality", default="default", metavar="Q",
                   help="the monocular-depth model's quality: ideal (exact depth), default, poor, or a severity "
                        "in [0, 5] that scales every error magnitude (0 = ideal, 1 = default); stored in the "
                        "PoseSet (default: default)")
    p.add_argument("--noise-2d", type=float, default=1.0, metavar="S",
                   help="scale of the 2D detector's noise in [0, 5]: multiplies its noise sd and its outlier and "
                        "left/right-swap rates, the same random draws at every scale (0 = exact 2D, 1 = the "
                        "calibrated detector); stored in the PoseSet (default: 1)")
    p.add_argument("--depth-maps", nargs="+", choices=("metric", "relative", "true"), metavar="FLAVOUR",
                   help="also store depth maps (compressed float16 chunks under OUT/depth_<flavour>_<h>x<w>/): "
                        "metric, relative and/or true")
    p.add_argument("--map-size", type=int, default=256, help="depth-map pixels on the image's long side (default 256)")
    p.add_argument("--chunk", type=int, default=1000, help="frames per stored depth-map chunk (default 1000)")
    p.add_argument("--preview", type=Path, metavar="PNG", help="write a PNG grid of depth maps with 2D skeletons")
    p.add_argument("--preview-frames", type=int, default=4, help="panels per domain in the preview (default 4)")
    p.add_argument("--preview-flavour", choices=("metric", "relative", "true"), default="metric",
                   help="depth flavour drawn in the preview (default metric)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    m = p.add_argument_group(
        "real motion capture", "film BVH or ASF/AMC motion capture instead of procedural motion "
        "(auglift.datasets.mocap); every frame of every file is filmed, so --frames, --actions and "
        "--seq-seconds do not apply -- unless --motion-ratio mixes the files with the procedural activities")
    m.add_argument("--motion", type=Path, metavar="FILE_OR_DIR",
                   help="a .bvh/.amc file or a directory searched recursively (an .amc needs its .asf beside it: "
                        "same stem, CMU's SS.asf for SS_TT.amc, or the only .asf)")
    m.add_argument("--motion-fps", type=float,
                   help="resample the motion to this frame rate (default 30; with --motion-ratio the domain's)")
    m.add_argument("--motion-map", type=Path, metavar="TOML_OR_JSON",
                   help="joint mapping 'h36m joint = source joint' for skeletons that are not recognised "
                        "(CMU ASF, CMU BVH, Mixamo, MotionBuilder and Biovision names are)")
    m.add_argument("--motion-units", default="auto",
                   help="length unit of the files: auto, m, cm, mm, inch, cmu or metres per unit (default auto)")
    m.add_argument("--motion-up", default="auto", help="up axis of the files: auto, x, y, z, -x, -y, -z (default auto)")
    m.add_argument("--motion-height", default="auto",
                   help="body height: auto (keep 1.4-2.0 m, else scale to the nearest bound), metres, or keep "
                        "(default auto)")
    m.add_argument("--amc-fps", type=float, default=120.0, help="frame rate of .amc files (default 120, CMU's)")
    m.add_argument("--motion-split", choices=("train", "test"),
                   help="split of every motion-capture clip (default: the domain decides, i.e. train)")
    m.add_argument("--motion-ratio", type=float, metavar="R",
                   help="mix: a share R in [0, 1] of the --frames rows comes from the motion files (cut into "
                        "sequences of --seq-seconds), the rest from the procedural activities")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    domains = [d.strip() for d in str(args.domain).split(",") if d.strip()]
    if not domains:
        raise ConfigError("synth: --domain is empty")
    for d in domains:
        if d not in DOMAINS:
            raise ConfigError(f"synth: unknown domain {d!r}; known: {', '.join(DOMAINS)}")
    if args.out is None and args.preview is None:
        raise ConfigError("synth: nothing to do; give --out DIR and/or --preview PNG")
    if args.frames < 1:
        raise ConfigError(f"synth: --frames must be >= 1, got {args.frames}")
    if args.depth_maps and args.out is None:
        raise ConfigError("synth: --depth-maps needs --out DIR")
    if args.map_size < 8 or args.chunk < 1 or args.preview_frames < 1:
        raise ConfigError("synth: --map-size must be >= 8, --chunk and --preview-frames >= 1")
    depth_severity(args.depth_quality)  # a bad quality fails before anything is generated
    noise2d_scale(args.noise_2d)
    actions = [a.strip() for a in args.actions.split(",")] if args.actions else None
    progress = not args.no_progress
    motion = _motion_options(args) if getattr(args, "motion", None) is not None else None
    if args.motion_ratio is not None and motion is None:
        raise ConfigError("synth: --motion-ratio needs --motion FILE_OR_DIR")
    seq = tuple(args.seq_seconds) if args.seq_seconds else None
    dests = _claim_outputs(args, domains)
    sets = []
    for d in domains:
        t0 = time.perf_counter()
        if motion is not None and args.motion_ratio is not None:
            ps = generate_mixed(d, args.frames, args.seed, motion=args.motion, ratio=args.motion_ratio,
                                actions=actions, seq_seconds=seq, depth_quality=args.depth_quality,
                                noise2d=args.noise_2d, progress=progress,
                                **(motion | {"fps": motion["fps"] or DOMAINS[d].fps}))
        elif motion is not None:
            ps = film_motion(d, args.motion, args.seed, depth_quality=args.depth_quality, noise2d=args.noise_2d,
                             progress=progress, **(motion | {"fps": motion["fps"] or 30.0}))
        else:
            ps = generate(d, args.frames, args.seed, actions=actions, seq_seconds=seq,
                          depth_quality=args.depth_quality, noise2d=args.noise_2d, progress=progress)
        dt = time.perf_counter() - t0
        sets.append(ps)
        print(_summary(d, ps, dt))
        if args.out is not None:
            dest = dests[d]
            ps.save(dest)
            print(f"  wrote {dest}")
            for flavour in args.depth_maps or []:
                W, H = int(ps.clips.width[0]), int(ps.clips.height[0])
                h, w = map_size(W, H, args.map_size)
                mdir = dest / f"depth_{flavour}_{h}x{w}"
                t0 = time.perf_counter()
                save_depth_maps(ps, mdir, flavour=flavour, size=(h, w), chunk=args.chunk, progress=progress)
                print(f"  depth maps ({flavour}, {h}x{w}) in {mdir} ({time.perf_counter() - t0:.1f} s)")
    if args.preview is not None:
        path = preview_grid(sets, args.preview, per_set=args.preview_frames, flavour=args.preview_flavour,
                            long_side=args.map_size, seed=args.seed)
        print(f"preview: {path}")
    return 0


def _claim_outputs(args: argparse.Namespace, domains: list[str]) -> dict[str, Path]:
    """Each domain's PoseSet directory, checked before any work (auglift.outputs.claim)."""
    if args.preview is not None:
        claim(args.preview, "png", overwrite=args.overwrite)
    if args.out is None:
        return {}
    if len(domains) == 1:
        return {domains[0]: claim(args.out, "poseset", overwrite=args.overwrite)}
    root = claim(args.out, "posesets", overwrite=args.overwrite)
    return {d: claim(root / d, "poseset", overwrite=args.overwrite) for d in domains}


def _motion_options(args: argparse.Namespace) -> dict:
    """Reading/retargeting options of ``--motion`` (auglift.datasets.mocap.source.film_motion)."""
    def number_or(text: str, words: tuple[str, ...], what: str) -> str | float:
        if text in words:
            return text
        try:
            val = float(text)
        except ValueError:
            raise ConfigError(f"synth: {what} must be {', '.join(words)} or a number, got {text!r}") from None
        if not val > 0:
            raise ConfigError(f"synth: {what} must be positive, got {text!r}")
        return val

    if (args.motion_fps is not None and not args.motion_fps > 0) or not args.amc_fps > 0:
        raise ConfigError("synth: --motion-fps and --amc-fps must be positive")
    height = number_or(args.motion_height, ("auto", "keep"), "--motion-height")
    return {"fps": args.motion_fps, "mapping": args.motion_map,
            "units": number_or(args.motion_units, ("auto", "m", "cm", "mm", "inch", "cmu"), "--motion-units"),
            "up": args.motion_up, "height": None if height == "keep" else height, "amc_fps": args.amc_fps,
            "split": args.motion_split}


def _summary(domain: str, ps: PoseSet, seconds: float) -> str:
    c = ps.clips
    frames = ps.clip_ranges[:, 1] - ps.clip_ranges[:, 0]
    split = {s: int(frames[c.split == s].sum()) for s in ("train", "test")}
    z = np.asarray(ps.kp3d[:, 0, 2])
    q = ps.meta["extra"]["synthetic"].get("depth_quality") or {}
    return (f"{domain}: {len(ps):,} frames in {len(c)} clips ({seconds:.1f} s); train {split['train']:,} / "
            f"test {split['test']:,}; {len(set(c.subject.tolist()))} subjects, {len(set(c.action.tolist()))} actions; "
            f"image {int(c.width[0])}x{int(c.height[0])}; root depth {z.mean():.2f} m; "
            f"visible {np.asarray(ps.visible).mean():.1%}; depth quality "
            f"{q.get('preset') or 'custom'} (severity {q.get('severity', 1.0):g})")
