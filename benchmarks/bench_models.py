"""Benchmark: lifter throughput (training step and inference) at the published sizes.

For each lifter configuration it times, on random inputs of the stated batch, window and
input channels (default ``C_in = 6``, the AugLift ``uadd`` input; 2 or 3 changes only the
first layer and so hardly the cost):

* ``train``: forward + MPJPE loss + backward + Adam step, model in training mode
  (the TCN uses its strided single-output path, VideoPose3D's ``TemporalModelOptimized1f``);
* ``infer``: forward only under ``torch.inference_mode`` in eval mode.

It reports windows (samples) per second and, for many-to-many MotionBERT, frames per second.
Each measurement runs warm-up steps, then as many timed steps as fit ``--seconds`` (at least
``--min-steps``), and reports the median step time.

Usage: ``python benchmarks/bench_models.py [--seconds 3] [--threads N] [--device cpu|cuda] [--only tcn,...]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from auglift.models import build

# (label, lifter, config, batch for training, batch for inference)
CASES: list[tuple[str, str, dict, int, int]] = [
    ("simple_baseline", "simple_baseline", {}, 1024, 4096),
    ("tcn rf=27", "tcn", {"receptive_field": 27}, 256, 1024),
    ("tcn rf=81", "tcn", {"receptive_field": 81}, 128, 512),
    ("tcn rf=243", "tcn", {"receptive_field": 243}, 64, 256),
    ("poseformer rf=27", "poseformer", {"receptive_field": 27}, 32, 128),
    ("poseformer rf=81", "poseformer", {"receptive_field": 81}, 16, 64),
    ("motionbert lite T=243", "motionbert", {"size": "lite"}, 1, 2),
    ("motionbert full T=243", "motionbert", {"size": "full"}, 1, 2),
]


def _time(step, seconds: float, min_steps: int, warmup: int, sync) -> float:
    for _ in range(warmup):
        step()
    sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_steps or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(name: str, config: dict, batch_train: int, batch_infer: int, c_in: int, device: str, seconds: float,
          min_steps: int) -> dict:
    torch.manual_seed(0)
    model = build(name, c_in, **config).to(device)
    t = model.receptive_field
    t_out = t if model.many_to_many else 1
    x = torch.randn(batch_train, t, 17, c_in, device=device)
    y = torch.randn(batch_train, t_out, 17, 3, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = (model(x) - y).norm(dim=-1).mean()
        loss.backward()
        opt.step()

    model.train()
    t_train = _time(train_step, seconds, min_steps, 1, sync)
    xi = torch.randn(batch_infer, t, 17, c_in, device=device)
    model.eval()

    def infer_step() -> None:
        with torch.inference_mode():
            model(xi)

    t_infer = _time(infer_step, seconds, min_steps, 1, sync)
    params = sum(p.numel() for p in model.parameters())
    return {"params": params, "T": t, "t_out": t_out, "bt": batch_train, "bi": batch_infer,
            "train": batch_train / t_train, "infer": batch_infer / t_infer}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement (default 3)")
    ap.add_argument("--min-steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--in-channels", type=int, default=6)
    ap.add_argument("--only", default="", help="comma-separated lifter names to run")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} CPU threads, "
          f"C_in = {args.in_channels}, 17 joints")
    print(f"{'lifter':<24}{'params':>12}{'window':>8}{'train batch':>12}{'train samples/s':>17}"
          f"{'infer batch':>12}{'infer samples/s':>17}")
    for label, name, config, bt, bi in CASES:
        if only and name not in only:
            continue
        r = bench(name, config, bt, bi, args.in_channels, args.device, args.seconds, args.min_steps)
        extra = f"   ({r['train'] * r['T']:,.0f} / {r['infer'] * r['T']:,.0f} frames/s)" if r["t_out"] > 1 else ""
        print(f"{label:<24}{r['params']:>12,}{r['T']:>8}{r['bt']:>12}{_num(r['train']):>17}{r['bi']:>12}"
              f"{_num(r['infer']):>17}{extra}", flush=True)


def _num(v: float) -> str:
    return f"{v:,.1f}" if v >= 10 else f"{v:.3f}"


if __name__ == "__main__":
    main()
