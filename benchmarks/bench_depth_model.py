"""Benchmark: Depth Anything V2 Small-sized model (random weights) on CPU, batched vs one at a time.

Builds a randomly initialised ``DepthAnythingForDepthEstimation`` with DA-V2-Small's
architecture (DINOv2 ViT-S/14: width 384, 12 blocks, 6 heads; DPT head 64 features, channels
48/96/192/384; about 25 M parameters; nothing is downloaded) and measures images/s on
H36M-sized 1000x1000 RGB frames at a 518 px network input:

* **batched**: :class:`auglift.depth.estimators.DepthAnythingV2` ``predict`` on batches of
  ``--batch`` frames (preprocessing in torch, ``inference_mode``, channels-last, output resized
  back to the frame);
* **one at a time through the transformers pipeline**: ``pipeline("depth-estimation")`` with a
  ``DPTImageProcessor`` configured like the hub's DA-V2 processors (518, keep aspect ratio,
  multiple of 14, bicubic, ImageNet mean/std), called once per PIL image.

Usage: ``python benchmarks/bench_depth_model.py [--threads 2] [--batch 8] [--images 16]``
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine a spinning worker
# stalls every parallel region for a scheduler time slice (set OMP_WAIT_POLICY=ACTIVE to compare).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import math
import time
import warnings

import numpy as np
import torch


def small_model():
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, mlp_ratio=4,
                            patch_size=14, image_size=518, layerscale_value=1.0, out_indices=[3, 6, 9, 12],
                            apply_layernorm=True, reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=backbone, patch_size=14, reassemble_hidden_size=384,
                              neck_hidden_sizes=[48, 96, 192, 384], fusion_hidden_size=64,
                              depth_estimation_type="relative")
    return DepthAnythingForDepthEstimation(cfg).eval()


def frames(n: int, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(xx / 37 + k) * np.cos(yy / 29 - k) for k in range(3)], -1)
    return np.clip(base[None] + rng.normal(0, 12, (n, h, w, 3)), 0, 255).astype(np.uint8)


def best_rate(fn, n_images: int, repeats: int) -> float:
    fn()  # warm-up
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n_images / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--images", type=int, default=16, help="images per timed run")
    ap.add_argument("--size", type=int, default=1000, help="frame side, px")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    try:  # transformers >= 5 without torchvision: the PIL backend (what DPTImageProcessor falls back to)
        from transformers import DPTImageProcessorPil as DPTImageProcessor
    except ImportError:
        from transformers import DPTImageProcessor

    from auglift.depth.estimators import DepthAnythingV2

    hf_logging.set_verbosity_error()
    model = small_model()
    n_params = sum(p.numel() for p in model.parameters())
    imgs = frames(args.images, args.size, args.size)
    print(f"threads={torch.get_num_threads()}  DA-V2-Small-sized random weights ({n_params / 1e6:.1f} M params), "
          f"frames {args.size}x{args.size} -> 518x518 input, {args.images} images per run, best of {args.repeats}")

    est = DepthAnythingV2(model, input_size=518, device="cpu", dtype="float32", max_batch=args.batch)

    def batched() -> None:
        for s in range(0, len(imgs), args.batch):
            est.predict(imgs[s: s + args.batch])

    def single() -> None:
        for i in range(len(imgs)):
            est.predict(imgs[i: i + 1])

    rate_b = best_rate(batched, len(imgs), args.repeats)
    rate_s = best_rate(single, len(imgs), args.repeats)

    from PIL import Image

    processor = DPTImageProcessor(do_resize=True, size={"height": 518, "width": 518}, keep_aspect_ratio=True,
                                  ensure_multiple_of=14, resample=3, do_rescale=True, do_normalize=True,
                                  image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    pipe = pipeline("depth-estimation", model=model, image_processor=processor, device="cpu")
    pil = [Image.fromarray(im) for im in imgs]

    def pipeline_single() -> None:
        for im in pil:
            pipe(im)

    rate_p = best_rate(pipeline_single, len(imgs), args.repeats)
    print(f"auglift DepthAnythingV2.predict, batch {args.batch:<3}     {rate_b:6.2f} images/s")
    print(f"auglift DepthAnythingV2.predict, one at a time {rate_s:6.2f} images/s")
    print(f"transformers pipeline, one at a time       {rate_p:6.2f} images/s")
    print(f"batched / pipeline: {rate_b / rate_p:.2f}x")


if __name__ == "__main__":
    main()
