"""Benchmark: the stages of ``auglift infer`` in frames/s, and above all the lifter stage per lifter.

Stages, each on its own (random weights: speed does not depend on them; nothing is downloaded):

* **decode**: OpenCV decoding of an ``mp4v`` video at 640x360;
* **2D (file)**: reading a COCO keypoint-result JSON (two people per frame) and matching it to
  the frames (:func:`auglift.keypoints2d.read_keypoints`), and **tracking** the instances;
* **2D (MediaPipe)**: only where the ``mediapipe`` extra is installed (its own environment,
  ``.venv-mediapipe/bin/python benchmarks/bench_infer.py --only mediapipe``), 640x360 frames;
* **depth**: Depth Anything V2 with Small's architecture (ViT-S/14, ~25 M parameters) at the
  518 px input on 640x360 frames, plus the UADD sampling of one person (exact mode), i.e. what
  :func:`auglift.infer.infer` does per frame;
* **lifter**: :func:`auglift.evaluate.predict` (encoding, sliding windows with edge padding,
  flip test on and off) on a 486-frame track (16 s at 30 fps), ``uadd`` input (6 channels),
  for every lifter at its test size (``tests/_train_fixtures.TINY_MODELS``) and at realistic
  (published) sizes, with PyTorch and with onnxruntime running the ``auglift export`` model
  (what ``auglift infer --checkpoint model.onnx`` does);
* **render**: :func:`auglift.render.compose` + an ``.mp4`` sink at 480 px height.

Real time means >= 30 frames/s for 30 fps input.

Usage: ``python benchmarks/bench_infer.py [--threads 2] [--frames 486] [--only lifter,render,...]``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_depth_model.py

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

TINY: dict[str, dict[str, Any]] = {
    "simple_baseline": {"width": 64, "num_blocks": 1, "dropout": 0.0},
    "tcn": {"receptive_field": 9, "filter_widths": [3, 3], "channels": 64, "dropout": 0.0},
    "poseformer": {"receptive_field": 9, "embed_dim_ratio": 16, "depth": 2, "num_heads": 2, "drop_path_rate": 0.0},
    "motionbert": {"receptive_field": 8, "dim_feat": 32, "mlp_ratio": 2, "dim_rep": 32, "depth": 1, "num_heads": 4},
}
REALISTIC: list[tuple[str, str, dict[str, Any]]] = [
    ("simple_baseline", "simple_baseline", {}),
    ("tcn rf=27", "tcn", {"receptive_field": 27}),
    ("tcn rf=243", "tcn", {"receptive_field": 243}),
    ("poseformer rf=27", "poseformer", {"receptive_field": 27}),
    ("poseformer rf=81", "poseformer", {"receptive_field": 81}),
    ("motionbert lite T=243", "motionbert", {"size": "lite"}),
    ("motionbert full T=243", "motionbert", {"size": "full"}),
]


def checkpoint(name: str, kwargs: dict[str, Any]) -> Any:
    """An in-memory checkpoint around a randomly initialised lifter."""
    from auglift.checkpoint import Checkpoint, LifterSpec
    from auglift.config import TrainConfig
    from auglift.encoding import make_state
    from auglift.models import build

    torch.manual_seed(0)
    model = build(name, 6, **kwargs).eval()
    many = bool(getattr(model, "many_to_many", False))
    lifter = LifterSpec(name, kwargs, 6, 17, model.receptive_field, many, False, "start" if many else "center")
    return Checkpoint(lifter, make_state({"channels": "uadd", "depth_kind": "metric"}), TrainConfig(),
                      model.state_dict())


def track(frames: int, width: int = 640, height: int = 360) -> Any:
    """A one-track PoseSet as ``infer`` builds it: moving bodies, confidences and descriptors."""
    from _train_fixtures import add_uadd, moving_poseset
    from auglift.poseset import ClipTable, PoseSet

    ps = add_uadd(moving_poseset(n_clips=1, frames=frames, seed=0))
    f = ps.fields
    clips = ClipTable(subject=["track0"], action=["bench"], camera=["0"], split=["infer"], width=[width],
                      height=[height], intrinsics=[[640.0, 640.0, 319.5, 179.5]], fps=[30.0])
    keep = ("clip", "frame", "kp2d", "conf", "uadd", "uadd_valid")
    return PoseSet({k: f[k] for k in keep}, clips, {"depth_model": {"name": "bench", "kind": "metric"}})


def _rate(ck: Any, ps: Any, model: Any, flip: bool, seconds: float) -> float:
    from auglift.predict import predict

    with torch.inference_mode():
        predict(ck, ps.select(rows=np.arange(min(len(ps), 2 * ck.lifter.receptive_field))), model=model,
                flip_test=flip)  # warm-up
        best, runs, t_all = float("inf"), 0, time.perf_counter()
        while runs < 1 or (time.perf_counter() - t_all < seconds and runs < 5):
            t0 = time.perf_counter()
            pred = predict(ck, ps, model=model, flip_test=flip)
            best = min(best, time.perf_counter() - t0)
            runs += 1
    assert len(pred.rows) == len(ps) and np.isfinite(pred.pred).all()
    return len(ps) / best


def bench_lifters(frames: int, threads: int, seconds: float, onnx: bool) -> list[dict[str, Any]]:

    ps = track(frames)
    rows = []
    cases = [(f"{n} (test size)", n, k) for n, k in TINY.items()] + REALISTIC
    print(f"\nlifter stage: {frames}-frame track, uadd input (6 channels), torch {torch.__version__}, "
          f"{threads} threads; frames/s with and without the flip test, PyTorch"
          + (" and onnxruntime (the 'auglift export' model)" if onnx else ""))
    head = f"{'lifter':<32} {'params':>11} {'window':>6} {'flip test':>10} {'no flip':>10}"
    print(head + (f" {'ORT flip':>10} {'ORT no flip':>11}" if onnx else ""))
    for label, name, kw in cases:
        ck = checkpoint(name, kw)
        model = ck.build_model()
        n_params = sum(p.numel() for p in model.parameters())
        res = {"flip": _rate(ck, ps, model, True, seconds), "noflip": _rate(ck, ps, model, False, seconds)}
        line = (f"{label:<32} {n_params:>11,} {ck.lifter.receptive_field:>6} {res['flip']:>10.1f} "
                f"{res['noflip']:>10.1f}")
        if onnx:
            from auglift.export import OnnxLifter, export_onnx

            with tempfile.TemporaryDirectory() as d:
                export_onnx(ck, Path(d) / "m.onnx")
                ort_model = OnnxLifter(Path(d) / "m.onnx", threads=threads)
                res["ort_flip"] = _rate(ck, ps, ort_model, True, seconds)
                res["ort_noflip"] = _rate(ck, ps, ort_model, False, seconds)
            line += f" {res['ort_flip']:>10.1f} {res['ort_noflip']:>11.1f}"
        best = max(v for k, v in res.items() if "noflip" not in k)
        line += "" if best >= 30 else "  < 30 with flip"
        print(line, flush=True)
        rows.append({"lifter": label, "params": n_params, "window": ck.lifter.receptive_field,
                     **{k: round(v, 1) for k, v in res.items()}})
    return rows


def write_video(path: Path, frames: int, size: tuple[int, int] = (640, 360)) -> None:
    import cv2

    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (w, h))
    for f in range(frames):
        img = np.stack([80 + 60 * np.sin(xx / 23 + f / 7), 90 + 50 * np.cos(yy / 17 - f / 5), 100 + 0 * xx], -1)
        vw.write(np.clip(img, 0, 255).astype(np.uint8))
    vw.release()


def bench_io(tmp: Path, frames: int) -> dict[str, float]:
    """decode, 2D from a COCO file, tracking, render."""
    from auglift.keypoints2d import read_keypoints
    from auglift.render import VideoSink, compose
    from auglift.tracking import track_instances
    from auglift.video import open_input

    out: dict[str, float] = {}
    video = tmp / "bench.mp4"
    write_video(video, frames)
    src = open_input(video)
    t0 = time.perf_counter()
    with src.reader() as rd:
        for s in range(0, frames, 16):
            imgs = rd.read(np.arange(s, min(frames, s + 16)))
    out["decode 640x360"] = frames / (time.perf_counter() - t0)

    ps = track(frames)
    kp = np.asarray(ps.kp2d) * 0.36 + np.array([120.0, 0.0])  # 1000 px world -> 640x360 frames
    far = kp * 0.5 + np.array([300.0, 60.0])
    coco_idx = [9, 10, 10, 10, 10, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]
    recs = []
    for f in range(frames):
        for person in (kp, far):
            flat = np.concatenate([person[f, coco_idx], np.full((17, 1), 0.9)], 1).ravel()
            recs.append({"image_id": f, "category_id": 1, "keypoints": flat.round(2).tolist(), "score": 0.9})
    (tmp / "kp.json").write_text(json.dumps(recs))
    def best_of(fn: Any, n: int = 3) -> tuple[Any, float]:  # the first call pays one-off imports
        best, res = float("inf"), None
        for _ in range(n):
            t0 = time.perf_counter()
            res = fn()
            best = min(best, time.perf_counter() - t0)
        return res, best

    det, dt = best_of(lambda: read_keypoints(tmp / "kp.json", num_frames=frames))
    out["2D from COCO JSON (2 people/frame)"] = frames / dt
    tr, dt = best_of(lambda: track_instances(det.frame, det.kp, det.conf))
    out["tracking (2 people/frame)"] = frames / dt
    assert tr.num_tracks == 2, tr.num_tracks

    from _train_fixtures import moving_poseset

    pose = np.asarray(moving_poseset(n_clips=1, frames=frames, seed=0).kp3d, dtype=np.float32)
    sink = VideoSink(tmp / "render.mp4", fps=30)
    with src.reader() as rd:
        t_draw = 0.0
        for s in range(0, frames, 16):
            fr = np.arange(s, min(frames, s + 16))
            imgs = rd.read(fr)
            t0 = time.perf_counter()
            for img, f in zip(imgs, fr):
                sink.write(compose(img, det.kp[det.frame == f], det.conf[det.frame == f],
                                   np.repeat(pose[f: f + 1] - pose[f: f + 1, :1], 2, 0), height=360))
            t_draw += time.perf_counter() - t0
    t0 = time.perf_counter()
    sink.close()
    out["render 360 px + mp4 (2 people)"] = frames / (t_draw + time.perf_counter() - t0)
    return out


def bench_depth(images: int, threads: int) -> dict[str, float]:
    """Depth Anything V2 Small-sized (random weights) at 518 px on 640x360 frames + UADD sampling of one person."""
    import warnings

    from transformers.utils import logging as hf_logging

    from auglift.depth.estimators import DepthAnythingV2
    from auglift.depth.uadd import sample_uadd
    from bench_depth_model import small_model

    warnings.filterwarnings("ignore")
    hf_logging.set_verbosity_error()
    est = DepthAnythingV2(small_model(), input_size=518, device="cpu", dtype="float32", max_batch=4)
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (images, 360, 640, 3), dtype=np.uint8)
    est.predict_tensor(imgs[:1])
    t0 = time.perf_counter()
    maps = torch.cat([est.predict_tensor(imgs[s: s + 4]) for s in range(0, images, 4)])
    t_model = time.perf_counter() - t0
    ps = track(max(images, 32), 640, 360)
    kp = torch.from_numpy(np.asarray(ps.kp2d[:images]) * 0.36 + np.array([120.0, 0.0], np.float32)).float()
    conf = torch.from_numpy(np.asarray(ps.conf[:images]))
    big = maps.repeat(max(1, 2000 // images), 1, 1)[:2000]
    kpb = kp.repeat(max(1, 2000 // images), 1, 1)[: len(big)]
    cb = conf.repeat(max(1, 2000 // images), 1)[: len(big)]
    t0 = time.perf_counter()
    sample_uadd(big, kpb, cb)
    t_sample = (time.perf_counter() - t0) / len(big)
    return {"depth model (DA-V2 Small-sized, 518 px)": images / t_model,
            "UADD sampling, exact mode (1 person)": 1.0 / t_sample,
            "depth stage (model + sampling)": 1.0 / (t_model / images + t_sample)}


def bench_mediapipe(frames: int) -> dict[str, float]:
    from auglift.keypoints2d import MediaPipePose

    try:
        from skimage import data

        photo = data.astronaut()
    except ImportError:
        photo = np.full((512, 512, 3), 128, np.uint8)
    import cv2

    img = cv2.resize(photo, (360, 360))
    canvas = np.full((360, 640, 3), 90, np.uint8)
    canvas[:, 140:500] = img
    seq = np.stack([np.roll(canvas, 2 * i, axis=1) for i in range(frames)])
    out = {}
    for static, label in ((False, "MediaPipe video mode"), (True, "MediaPipe per image")):
        with MediaPipePose(static_image_mode=static) as mpp:
            mpp(seq[:2])
            t0 = time.perf_counter()
            for s in range(0, frames, 16):
                mpp(seq[s: s + 16])
            out[f"{label} (640x360)"] = frames / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=486, help="frames of the benchmark track/video")
    ap.add_argument("--depth-images", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=3.0, help="time budget per lifter measurement (best of runs)")
    ap.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime column of the lifter table")
    ap.add_argument("--only", default="io,depth,lifter,mediapipe",
                    help="comma-separated: io (decode, 2D file, tracking, render), depth, lifter, mediapipe")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    only = set(args.only.split(","))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}")
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        if "io" in only:
            rates |= bench_io(Path(d), args.frames)
    if "mediapipe" in only:
        try:
            import mediapipe  # noqa: F401
        except ImportError:
            print("mediapipe not installed here: run with .venv-mediapipe/bin/python ... --only mediapipe")
        else:
            rates |= bench_mediapipe(min(args.frames, 96))
    if "depth" in only:
        rates |= bench_depth(args.depth_images, args.threads)
    if rates:
        print(f"\n{'stage':<44} {'frames/s':>10}")
        for k, v in rates.items():
            print(f"{k:<44} {v:>10.1f}")
    if "lifter" in only:
        bench_lifters(args.frames, args.threads, args.seconds, onnx=not args.no_onnx)


if __name__ == "__main__":
    main()
