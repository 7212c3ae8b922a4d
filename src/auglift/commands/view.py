"""``auglift view PATH... [--out FILE.html] [--clip ...] [--max-frames N]``: poses as one offline web page."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "view", help="write one self-contained HTML page that shows a PoseSet, predictions or an infer output in 3D",
        description="Write one self-contained HTML file (opens from disk, offline, no server) with a 3D viewer: "
                    "a PoseSet directory, one or more predictions files (ground truth and every prediction "
                    "overlaid, joints coloured by error, the worst frames listed) or an 'auglift infer' output "
                    "(the 3D poses beside the input's frames with their 2D keypoints).",
    )
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="PoseSet directory, predictions .npz file(s), or infer output folder / poses3d.npz")
    p.add_argument("--out", "-o", help="the .html file to write (default: NAME.html here, NAME from "
                                                     "the first PATH)")
    p.add_argument("--clip", nargs="+", metavar="PATTERN",
                   help="clips to show: indices or patterns on 'subject/action/camera' ('S9/walk*'; infer: 'track 0')")
    # defaults live in auglift.viewer (not imported here: `auglift --help` stays fast)
    p.add_argument("--max-frames", type=int,
                   help="frames in the page at most, longer inputs show every k-th frame (default 100,000; 0: all)")
    p.add_argument("--max-images", type=int,
                   help="infer outputs: input frames embedded at most, evenly spaced (default 1,000; 0: none)")
    p.add_argument("--image-size", type=int, help="long side of embedded frames, px (default 360)")
    p.add_argument("--title", help="page title (default: the input's name)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from auglift.viewer import write_viewer

    given = {"max_images": args.max_images, "image_size": args.image_size}
    limits = {k: v for k, v in given.items() if v is not None}
    if args.max_frames is not None:
        limits["max_frames"] = args.max_frames or None
    res = write_viewer(args.paths, args.out, clips=args.clip, title=args.title, **limits)
    print(f"wrote {res.path} ({res.bytes / 1e6:.1f} MB): {res.kind}, {res.clips} clip(s), {res.frames:,} frames"
          + (f", {res.images} frames embedded" if res.images else ""))
    for note in res.notes:
        print(f"  {note}")
    return 0
