"""``auglift detect POSESET --detector rtmpose|mediapipe``: detected 2D keypoints for a PoseSet's frames."""

from __future__ import annotations

import argparse
import json

from auglift.commands import add_chunk_options, add_progress_option, chunk_summary
from auglift.detectors import DETECTORS, build_detector, format_detection_errors, poseset_detection_errors
from auglift.detectors.run import detect_poseset
from auglift.errors import ConfigError
from auglift.poseset import PoseSet


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect", help="detect 2D keypoints (RTMDet + RTMPose, or MediaPipe) in a PoseSet's frames: kp2d, conf",
        description="Decode each clip's frames (video or image pattern), find people, estimate their 2D keypoints, "
                    "keep the person of the ground-truth track (else the best-scoring one), convert to H36M-17 and "
                    "write kp2d, conf and kp2d_valid (ground truth kept in kp2d_gt; UADD descriptors of the old "
                    "keypoints dropped). Chunked and resumable; --shard i/n (or torchrun) splits it; the last shard "
                    "to finish writes the PoseSet.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("poseset", help="saved PoseSet directory")
    p.add_argument("--detector", choices=DETECTORS, default="rtmpose",
                   help="rtmpose: RTMDet boxes + RTMPose keypoints on ONNX Runtime (the paper's); mediapipe: "
                        "MediaPipe Pose (one person per frame, CPU)")
    g = p.add_argument_group("rtmpose")
    g.add_argument("--det-model", default="rtmdet-m", help="RTMDet ONNX file, rtmlib model id or URL")
    g.add_argument("--pose-model", default="rtmpose-l",
                   help="RTMPose ONNX file, rtmlib model id (rtmpose-l: body7/COCO-17 256x192; rtmpose-l-halpe26) "
                        "or URL")
    g.add_argument("--joint-set", help="the pose model's keypoints (default: by their count)")
    g.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (needs onnxruntime-gpu)")
    g.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    r = p.add_argument_group("run")
    add_chunk_options(r, "detector")
    r.add_argument("--min-iou", type=float, default=0.1, help="smallest IoU with the ground-truth box of a kept person")
    r.add_argument("--no-merge", action="store_true", help="do not write the PoseSet even when all chunks are present")
    add_progress_option(r)
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _options(args: argparse.Namespace) -> dict[str, object]:
    if args.detector == "rtmpose":
        return {"det_model": args.det_model, "pose_model": args.pose_model, "joint_set": args.joint_set,
                "device": args.device, "threads": args.threads, "det_batch": args.batch_size}
    if args.device != "cpu":
        raise ConfigError(f"--device {args.device}: MediaPipe runs on the CPU only")
    return {}


def run(args: argparse.Namespace) -> int:
    with build_detector(args.detector, **_options(args)) as detector:
        res = detect_poseset(args.poseset, detector, batch_size=args.batch_size, chunk_frames=args.chunk_frames,
                             shard=args.shard, min_iou=args.min_iou, merge=not args.no_merge,
                             progress=args.progress)
    errors = poseset_detection_errors(PoseSet.load(res.path)) if res.merged else None
    out, line = chunk_summary(res)
    if args.json:
        stages = {k: round(v, 2) for k, v in res.stage_frames_per_s().items()}
        print(json.dumps({**out, "stage_frames_per_s": stages, "detections": res.stats, "detection_errors": errors},
                         indent=2))
        return 0
    print(f"{line} in {res.seconds:.1f} s ({res.frames_per_s:.1f} frames/s)")
    if res.stage_seconds:
        print("  frames/s per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in res.stage_frames_per_s().items()))
    if res.merged:
        s = res.stats
        print(f"wrote kp2d, conf, kp2d_valid ({args.detector}, person choice: {s['select']}): a person in "
              f"{s['frames_with_detection']}/{s['frames']} frames, {s['frames_without_detection']} without "
              "(kp2d_valid False)")
        if s["clips_without_detection"]:
            print(f"  nobody found in {', '.join(s['clips_without_detection'])}")
        if s["dropped_fields"]:
            print(f"  dropped {', '.join(s['dropped_fields'])} (sampled at the old keypoints): rerun 'auglift depth'")
        if errors is not None:
            print(format_detection_errors(errors))
    elif res.chunks_missing:
        print("not written yet: run the other shards (the last one to finish writes the PoseSet)")
    return 0
