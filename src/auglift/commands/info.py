"""``auglift info POSESET``: a summary that shows whether a conversion is right."""

from __future__ import annotations

import argparse
import json

from auglift.detectors.report import format_detection_errors, poseset_detection_errors
from auglift.poseset import PoseSet


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="summarise a PoseSet (frames, clips, fields, depth/size histograms)",
                       description="Summarise a PoseSet: frames, clips, subjects, actions, fields, "
                                   "root-depth and image-size histograms. Validates values by default.")
    p.add_argument("poseset", nargs="+", help="PoseSet directory (several allowed)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--no-validate", action="store_true", help="skip the value checks (NaN, ranges)")
    p.add_argument("--checksums", action="store_true", help="also verify file checksums against meta.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = []
    for path in args.poseset:
        ps = PoseSet.load(path)
        if not args.no_validate:
            ps.validate(checksums=args.checksums)
        summary = ps.summary()
        errors = poseset_detection_errors(ps)
        if errors is not None:
            summary["detection_errors"] = errors
        out.append(summary)
    if args.json:
        print(json.dumps(out if len(out) > 1 else out[0], indent=2))
    else:
        print("\n\n".join(format_summary(s) for s in out))
    return 0


def format_summary(s: dict) -> str:
    """Human-readable text of :meth:`PoseSet.summary` (and the 2D error report, when there is one)."""
    lines = [f"PoseSet {s['path'] or '(in memory)'}",
             f"  source      {s['source']}   joints {s['joint_set']}",
             f"  frames      {s['frames']:,} in {s['clips']:,} clips",
             f"  fields      {', '.join(s['fields'])}",
             f"  depth model {s['depth_model'] or '-'}"]
    for key in ("splits", "subjects", "actions"):
        items = s[key]
        shown = ", ".join(f"{k} ({v:,})" for k, v in list(items.items())[:12])
        more = f", ... ({len(items) - 12} more)" if len(items) > 12 else ""
        lines.append(f"  {key:<11} {shown}{more}")
    lines.append(f"  cameras     {', '.join(s['cameras'][:12])}{' ...' if len(s['cameras']) > 12 else ''}")
    lines.append("  image sizes " + ", ".join(f"{k} ({v:,} frames)" for k, v in s["image_sizes"].items()))
    if "conf_mean" in s:
        lines.append(f"  mean conf   {s['conf_mean']:.3f}")
    if "kp2d_source" in s:
        valid = f", detections in {100 * s['kp2d_valid_frac']:.1f}% of frames" if "kp2d_valid_frac" in s else ""
        lines.append(f"  kp2d        {s['kp2d_source']}{valid}")
    if "detection_errors" in s:
        lines.append(format_detection_errors(s["detection_errors"]))
    rp = s.get("reprojection_px")
    if rp:
        lines.append(f"  reprojection of kp3d vs the dataset's 2D: median {rp['median']:.2f} px, "
                     f"95% {rp['p95']:.2f} px, max {rp['max']:.2f} px")
    rd = s.get("root_depth_m")
    if rd:
        lines.append(f"  root depth  mean {rd['mean']:.2f} m, range {rd['min']:.2f}-{rd['max']:.2f} m")
        peak = max(rd["hist"]) or 1
        for lo, hi, n in zip(rd["edges"][:-1], rd["edges"][1:], rd["hist"], strict=True):
            lines.append(f"    {lo:6.2f}-{hi:6.2f} m {'#' * round(30 * n / peak):<30} {n}")
    return "\n".join(lines)
