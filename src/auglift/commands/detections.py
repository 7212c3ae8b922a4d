"""``auglift detections import FILE... --poseset DIR``: attach 2D detections to a PoseSet."""

from __future__ import annotations

import argparse
import json

from auglift.datasets.detections import import_detections

_EPILOG = """\
formats: coco (result list: image_id + keypoints [x,y,s]*J + score), halpe (AlphaPose, 26/136 joints),
mmpose (per-image JSON files / per-video JSON / demo 'instance_info'), npy / npz ((N, J, 2|3) arrays
aligned to the PoseSet rows, or VideoPose3D's data_2d_h36m_<det>.npz).
matching: by file name against the clips' frame sources (or --name-pattern), by integer id with
--id-scheme (row, row1, frame, frame1, clip*K+frame) or --images (COCO images list), per video by name.
examples:
  auglift detections import rtmpose.json --poseset posesets/h36m/test --images h36m_test_images.json
  auglift detections import preds/ --poseset posesets/3dhp/test --format mmpose
  auglift detections import data_2d_h36m_cpn_ft_h36m_dbb.npz --poseset posesets/h36m/test
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detections", help="import 2D detections (COCO, MMPose, Halpe, npy/npz) into a PoseSet",
                       description="Work with 2D detection files.")
    dsub = p.add_subparsers(dest="detections_command", metavar="ACTION")
    imp = dsub.add_parser("import", help="store detections as the PoseSet's kp2d/conf (GT stays in kp2d_gt)",
                          description="Read 2D detections, keep the best person per frame, convert to H36M-17 "
                                      "and store them as kp2d/conf/kp2d_valid of a PoseSet (frames without a "
                                      "detection: NaN, confidence 0, kp2d_valid False).",
                          epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("files", nargs="+", help="detection file(s) or a directory of MMPose JSON files")
    imp.add_argument("--poseset", required=True, help="the PoseSet directory to update")
    imp.add_argument("--out", help="write the result here instead of updating --poseset in place")
    imp.add_argument("--overwrite", action="store_true",
                     help="replace what is at --out even when it is not a PoseSet written by auglift")
    imp.add_argument("--format", dest="fmt", choices=("coco", "mmpose", "halpe", "npy", "npz"),
                     help="detection format (default: guessed)")
    imp.add_argument("--joint-set", help="joint set of the detections (default: by joint count)")
    imp.add_argument("--id-scheme", help="integer image ids: row, row1, frame, frame1 or clip*K+frame")
    imp.add_argument("--images", help="COCO json with an images list [{id, file_name}] for integer ids")
    imp.add_argument("--name-pattern", help="how detected images are named, e.g. '{stem}/{frame:06d}.jpg'")
    imp.add_argument("--key", help="npz: the array to read")
    imp.add_argument("--align", choices=("rows", "frames"), default="rows",
                     help="npy/npz: array rows are PoseSet rows (default) or frame numbers of a one-clip set")
    imp.add_argument("--select", choices=("score", "gt"), default="score",
                     help="several people: highest mean score (default) or closest to kp2d_gt")
    imp.add_argument("--min-score", type=float, default=0.0, help="ignore instances with a lower mean score")
    imp.add_argument("--frame-base", type=int, choices=(0, 1), help="MMPose video JSON: first frame_id (0 or 1)")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar")
    imp.add_argument("--json", action="store_true", help="print the counts as JSON")
    imp.set_defaults(func=run_import)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def run_import(args: argparse.Namespace) -> int:
    stats = import_detections(
        args.poseset, args.files, fmt=args.fmt, joint_set=args.joint_set, id_scheme=args.id_scheme,
        images=args.images, name_pattern=args.name_pattern, key=args.key, align=args.align, select=args.select,
        min_score=args.min_score, frame_base=args.frame_base, out=args.out, overwrite=args.overwrite,
        progress_bar=not args.no_progress,
    )
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    dest = args.out or args.poseset
    total = stats["frames_with_detection"] + stats["frames_without_detection"]
    print(f"{dest}: detections ({stats['format']}, {stats['joint_set']} -> h36m17) for "
          f"{stats['frames_with_detection']:,} of {total:,} frames")
    if stats["frames_without_detection"]:
        print(f"  {stats['frames_without_detection']:,} frames without a detection "
              "(kp2d NaN, conf 0, kp2d_valid False)")
    if stats.get("dropped_fields"):
        print(f"  dropped {', '.join(stats['dropped_fields'])} (sampled at the previous keypoints); run "
              "auglift depth again to recompute them")
    if stats.get("unmatched_instances"):
        print(f"  {stats['unmatched_instances']:,} detections matched no frame of the PoseSet")
    if stats.get("frames_with_several_people"):
        print(f"  {stats['frames_with_several_people']:,} frames had several people; kept the "
              f"{'highest-scoring' if stats['select'] == 'score' else 'closest-to-GT'} one")
    return 0
