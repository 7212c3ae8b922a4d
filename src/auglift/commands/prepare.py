"""``auglift prepare DATASET --root DIR --out DIR``: convert a real dataset into PoseSets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from auglift.datasets.common import prepare

_EPILOG = """\
datasets and their options (see README 'Real datasets' for the directory layouts):
  h36m          --layout mmpose|videopose3d, --skip-damaged, --step, --fps-dir (mmpose),
                --keypoints NAME and --video-root (videopose3d)
  mpi_inf_3dhp  --layout raw|pstmo, --annot3 annot3|univ_annot3, --cameras 0,1,2,4,5,6,7,8,
                --test-frames valid|all, --step, --frame-root (pstmo)
  3dpw          --kp2d openpose|gt, --step
  fit3d         --cameras, --train-subjects, --test-subjects, --step
examples:
  auglift prepare h36m --root data/h36m --out posesets/h36m --layout mmpose --step 2
  auglift prepare mpi_inf_3dhp --root data/mpi_inf_3dhp --out posesets/3dhp --splits test
"""


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="convert Human3.6M / MPI-INF-3DHP / 3DPW / Fit3D into PoseSets",
                       description="Convert a real dataset (as distributed, or as MMPose / VideoPose3D / "
                                   "P-STMO preprocess it) into PoseSets: H36M-17 joints, 3D in metres in the "
                                   "camera frame, 2D in pixels, per-clip cameras and frame sources. Writes "
                                   "OUT/<split>/ per split (or one PoseSet with --combined).",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", help="h36m, mpi_inf_3dhp (3dhp), 3dpw or fit3d")
    p.add_argument("--root", required=True, help="the dataset directory")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--splits", type=_csv, help="comma-separated splits to convert (default: all)")
    p.add_argument("--combined", action="store_true", help="write one PoseSet with a split column at OUT")
    p.add_argument("--step", type=int, help="keep every STEP-th frame (2: 50 -> 25 Hz)")
    p.add_argument("--layout", help="h36m: mmpose|videopose3d; mpi_inf_3dhp: raw|pstmo")
    p.add_argument("--skip-damaged", action="store_true", default=None,
                   help="h36m: drop the S9 sequences with damaged ground truth")
    p.add_argument("--keypoints", help="h36m videopose3d: use data_2d_h36m_<NAME>.npz as kp2d (e.g. cpn_ft_h36m_dbb)")
    p.add_argument("--fps-dir", help="h36m mmpose: annotation_body3d/<FPS_DIR> (default fps50)")
    p.add_argument("--video-root", help="h36m videopose3d: directory with <subject>/Videos/*.mp4")
    p.add_argument("--annot3", choices=("annot3", "univ_annot3"), help="mpi_inf_3dhp: 3D annotation (univ_annot3)")
    p.add_argument("--cameras", type=_csv, help="mpi_inf_3dhp / fit3d: comma-separated cameras")
    p.add_argument("--test-frames", choices=("valid", "all"), help="mpi_inf_3dhp: test frames to keep")
    p.add_argument("--frame-root", help="mpi_inf_3dhp pstmo: the 3DHP directory holding the frames")
    p.add_argument("--kp2d", choices=("openpose", "gt"), help="3dpw: provided OpenPose 2D or projected GT as kp2d")
    p.add_argument("--train-subjects", type=_csv, help="fit3d: comma-separated training subjects")
    p.add_argument("--test-subjects", type=_csv, help="fit3d: comma-separated test subjects")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)


_OPTIONS = ("splits", "step", "layout", "skip_damaged", "keypoints", "fps_dir", "video_root", "annot3", "cameras",
            "test_frames", "frame_root", "kp2d", "train_subjects", "test_subjects")


def run(args: argparse.Namespace) -> int:
    opts: dict[str, Any] = {k: getattr(args, k) for k in _OPTIONS if getattr(args, k) is not None}
    opts["progress_bar"] = not args.no_progress
    ps, paths = prepare(args.dataset, args.root, args.out, combined=args.combined, **opts)
    extra = ps.meta.get("extra", {})
    summary = {
        "dataset": args.dataset, "source": ps.meta.get("source"), "frames": len(ps), "clips": len(ps.clips),
        "splits": ps.summary()["splits"], "written": [str(p) for p in paths],
        "dropped_frames": extra.get("dropped_frames", 0), "reprojection_px": extra.get("reprojection_px"),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['source']}: {len(ps):,} frames in {len(ps.clips):,} clips")
    for split, n in summary["splits"].items():
        print(f"  {split:<11} {n:,} frames")
    for split in extra.get("empty_splits", []):
        print(f"  {split:<11} 0 frames: the dataset's file for this split holds none (nothing converted)")
    if summary["dropped_frames"]:
        print(f"  dropped     {summary['dropped_frames']:,} frames with unusable 3D (non-finite or behind the camera)")
    rp = summary["reprojection_px"]
    if rp:
        print(f"  reprojection of kp3d vs the dataset's 2D: median {rp['median']:.2f} px, 95% {rp['p95']:.2f} px")
    for p in paths:
        print(f"wrote {Path(p)}")
    return 0
