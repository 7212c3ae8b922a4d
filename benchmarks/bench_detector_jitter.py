"""How much a 2D detector's keypoints and confidences jitter from frame to frame: real video against the world.

The world's detector noise is part white (new every frame) and part temporally smooth
(``DetectorSpec.white_share``). This script measures, on real videos run through MediaPipe Pose with
detection on every frame (``static_image_mode=True``, as a top-down detector runs), and on the world's
simulated detections, the same statistics:

* ``kp jitter``: median over joints and frames of ``|x[t] - (x[t-1] + x[t+1]) / 2|`` in % of the person's
  height (the keypoints' box height) - the white part of the noise, plus the true motion's acceleration
  (small at 50-60 fps: 0.007 % on the world's `lab` ground truth);
* ``conf sd`` / ``conf step sd``: the sd of ``2c - 1`` within a segment and of its change between
  consecutive frames (the encoder's confidence units);
* ``logit white``: the sd of ``logit(c)[t] - (logit(c)[t-1] + logit(c)[t+1]) / 2``, divided by sqrt(1.5)
  (white noise of sd s gives s), c clipped to [0.01, 0.99].

Real videos are cut into segments at frames without a person and where the pelvis jumps by more than
15 % of the person's height between frames (another person was picked); a video with many cuts shows
several people and measures the switches, not the jitter. The MediaPipe part needs the ``mediapipe``
extra (its own environment, ``make test-mediapipe`` builds it)::

    .venv-mediapipe/bin/python benchmarks/bench_detector_jitter.py --videos /path/videos/*.mp4
    python benchmarks/bench_detector_jitter.py --white-share 0.5 0.01     # the world alone

Real single-person videos with several views come with Pose2Sim's demo (``pip download --no-deps
pose2sim``; ``Pose2Sim/Demo_SinglePerson/videos/cam0*.mp4`` in the wheel: 60 fps, 100 frames each).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from auglift.datasets.synthetic import domains, generate


def _segments(kp: np.ndarray, found: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows with a person, segment id per such row): cut at gaps and pelvis jumps > 15 % of the height."""
    rows = np.flatnonzero(found)
    height = np.ptp(kp[rows, :, 1], axis=1)
    jump = np.linalg.norm(kp[rows[1:], 0] - kp[rows[:-1], 0], axis=-1) / height[1:]
    cut = (np.diff(rows) != 1) | (jump > 0.15)
    return rows, np.concatenate([[0], np.cumsum(cut)])


def jitter_stats(kp: np.ndarray, conf: np.ndarray, seg: np.ndarray) -> dict[str, float]:
    """The statistics of the module doc for ``kp (N, 17, 2)`` px, ``conf (N, 17)`` and ``seg (N,)`` segment ids
    (rows of one segment are consecutive frames)."""
    one = seg[1:] == seg[:-1]
    two = one[1:] & one[:-1]
    x = 2.0 * conf - 1.0
    sums = np.zeros((seg.max() + 1, x.shape[1]))
    np.add.at(sums, seg, x)
    within = x - (sums / np.bincount(seg)[:, None])[seg]
    c = np.clip(conf, 0.01, 0.99)
    logit = np.log(c / (1 - c))
    height = np.ptp(kp[..., 1], axis=1)[1:-1, None]
    accel = np.linalg.norm(kp[1:-1] - 0.5 * (kp[2:] + kp[:-2]), axis=-1) / height
    return {"frames": float(len(kp)), "segments": float(len(np.unique(seg))),
            "kp jitter %": float(100 * np.median(accel[two])), "mean conf": float(conf.mean()),
            "conf sd": float(within.std()), "conf step sd": float(np.diff(x, axis=0)[one].std()),
            "logit white": float((logit[1:-1] - 0.5 * (logit[2:] + logit[:-2]))[two].std() / np.sqrt(1.5))}


def video_stats(path: Path) -> dict[str, float]:
    """MediaPipe Pose on every frame of the video at ``path`` (H36M-17 keypoints and confidences)."""
    from auglift.keypoints2d import MediaPipePose  # the mediapipe extra, only here

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while (ok_frame := cap.read())[0]:
        frames.append(cv2.cvtColor(ok_frame[1], cv2.COLOR_BGR2RGB))
    with MediaPipePose(static_image_mode=True) as pose:
        kp, conf, found = pose(np.stack(frames))
    rows, seg = _segments(kp, found)
    return {"fps": fps, **jitter_stats(kp[rows], conf[rows], seg)}


def world_stats(domain: str, frames: int, white_share: float | None) -> dict[str, float]:
    """The world's detections of ``domain`` (seed 0), with the detector's ``white_share`` replaced if given."""
    change = {} if white_share is None else {"white_share": white_share}
    with domains.detector_replaced([domain], **change):
        ps = generate(domain, frames, 0)
    dom = domains.DOMAINS[domain]
    valid = np.flatnonzero(ps.kp2d_valid)
    clip = np.asarray(ps.clip)[valid]
    seg = np.concatenate([[0], np.cumsum((np.diff(valid) != 1) | (np.diff(clip) != 0))])
    return {"fps": dom.fps, **jitter_stats(np.asarray(ps.kp2d)[valid], np.asarray(ps.conf)[valid], seg)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, nargs="*", default=[], help="real videos (needs mediapipe)")
    ap.add_argument("--domains", default="lab,outdoor", help="world domains to measure ('' for none)")
    ap.add_argument("--frames", type=int, default=20_000, help="world frames per domain")
    ap.add_argument("--white-share", type=float, nargs="*", default=[],
                    help="also measure the world with these white shares (default: the calibrated one only)")
    args = ap.parse_args()
    rows: list[tuple[str, dict[str, float]]] = [(p.name if len(p.parts) < 3 else "/".join(p.parts[-3:]),
                                                 video_stats(p)) for p in args.videos]
    for domain in filter(None, args.domains.split(",")):
        rows.append((f"world {domain} (white share {domains.DOMAINS[domain].detector.white_share})",
                     world_stats(domain, args.frames, None)))
        rows += [(f"world {domain} (white share {w})", world_stats(domain, args.frames, w)) for w in args.white_share]
    keys = list(rows[0][1])
    print("| source | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for name, st in rows:
        print(f"| {name} | " + " | ".join(f"{st[k]:.0f}" if k in ("fps", "frames", "segments") else f"{st[k]:.3g}"
                                           for k in keys) + " |")


if __name__ == "__main__":
    main()
