"""Benchmark: UADD descriptor sampling throughput and fast-vs-exact error.

Measures, per depth-map size (default 1000, 518 and 256 px; frames of 17 joints, detector-like
confidences, radii mostly 3-10 px, and a worst case with every radius at 30 px):

* **per CPU-second** (``time.process_time`` on 1 thread: robust on a shared machine), with the
  methods **alternated call by call** so all see the same machine state, best of ``--repeats``:
  fast mode (97 nearest-pixel samples per keypoint, + 32 rim points for a minimum/maximum; on the
  CPU the fused numba gather of ``auglift.depth.kernels`` with prefetch, then one row sort), a
  **naive reference** (for comparison only, not library code: the research code's approach, 100
  random offsets per keypoint read at rounded pixel positions, statistics with NumPy, one keypoint
  at a time in a Python loop; with the research code's and with the paper's radius rule and
  statistics), the **grid_sample reads**: ``grid_sample`` alone reading the fast pattern's
  pixels from a precomputed grid (the torch path's reads, which CUDA runs; the CPU kernel reads the
  same pixels without building a grid, and is faster); where the time of fast mode goes (paper rule):
  the **kernel's reads alone** (``auglift.depth.kernels.gather``, no statistics) with each frame on its
  own map and with every keypoint on one shared map (the same disks, but a map that stays in the
  caches), whose difference is the time spent waiting for memory, and the **row sort** (``np.sort`` of
  97 positive float32 per keypoint as their int32 bit patterns, as fast mode sorts them: what the
  paper's median needs); and fast mode called with ``map_index`` as
  ``extract_uadd``/``describe`` call it;
* **wall time** on ``--threads`` threads: fast mode, exact mode (every pixel of the disk, at 1000
  px), small calls (1, 8 and 32 frames, where the fixed cost of a call shows);
* **accuracy**: fast and naive against exact on body-like scenes (a floor plane, ellipsoid "body
  parts" 1-2.5 m in front of it, blurred edges, 1 cm noise), per statistic, in millimetres and as
  a fraction of the disk's exact depth spread (d_max - d_min).

OpenMP keeps its default wait policy (what a user gets: idle workers spin briefly, then sleep);
while other processes load the cores, ``OMP_WAIT_POLICY=PASSIVE`` gives steadier wall numbers.
Usage: ``python benchmarks/bench_uadd.py [--threads 2] [--frames 256] [--quick]``
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from auglift.depth import kernels
from auglift.depth.uadd import (
    _RIM_INSET,
    RESEARCH_STATS,
    RIM_POINTS,
    LinearRadius,
    ScaleAdaptiveRadius,
    Stats,
    _pattern,
    disk_pattern,
    sample_uadd,
)


def naive_reference(depth: np.ndarray, kp: np.ndarray, conf: np.ndarray, seed: int = 0,
                    rule: str = "research") -> np.ndarray:
    """NAIVE REFERENCE (benchmark only, not library code): the research code's sampler as METHOD.md
    describes it, one keypoint at a time in a Python loop.

    ``rule="research"``: radius ``clip(0.04 * S * (1 + 3 (1 - c))^1.5, 3, 30)`` px with ``S`` =
    pelvis-thorax length, ``d`` = depth at the keypoint pixel, ``d_min``/``d_max`` = 10th/90th
    percentiles (``np.percentile``). ``rule="paper"``: radius ``3 + (1 - c) 27`` px, median /
    minimum / maximum of the samples. Either way 100 uniform random offsets in the disk are read at
    rounded pixel positions (clipped to the image). Seeded here (the research code was not).
    ``(B, J, 3)``.
    """
    rng = np.random.default_rng(seed)
    b, j = conf.shape
    _, h, w = depth.shape
    out = np.full((b, j, 3), np.nan, np.float32)
    for bi in range(b):
        s = float(np.hypot(*(kp[bi, 8] - kp[bi, 0])))
        for ji in range(j):
            x, y = kp[bi, ji]
            if not (np.isfinite(x) and np.isfinite(y) and -0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5):
                continue
            if rule == "paper":
                r = 3.0 + (1.0 - min(max(float(conf[bi, ji]), 0.0), 1.0)) * 27.0
            else:
                r = min(30.0, max(3.0, 0.04 * s * (1 + 3 * (1 - conf[bi, ji])) ** 1.5))
            rho = r * np.sqrt(rng.uniform(size=100))
            th = rng.uniform(0, 2 * math.pi, 100)
            xs = np.clip(np.rint(x + rho * np.cos(th)), 0, w - 1).astype(int)
            ys = np.clip(np.rint(y + rho * np.sin(th)), 0, h - 1).astype(int)
            v = depth[bi, ys, xs]
            if rule == "paper":
                out[bi, ji] = (np.median(v), v.min(), v.max())
            else:
                out[bi, ji] = (depth[bi, int(np.rint(y)), int(np.rint(x))], np.percentile(v, 10), np.percentile(v, 90))
    return out


def body_scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A floor/background plane ~6 m away with ellipsoidal 'body parts' at 3.5-5 m, blurred, noisy."""
    from scipy.ndimage import gaussian_filter

    vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
    d = 6.0 + 0.004 * (vv - h / 2) * 1000 / h + 0.001 * (uu - w / 2) * 1000 / w
    for _ in range(10):
        cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
        a, b = rng.uniform(0.02, 0.12) * w, rng.uniform(0.02, 0.12) * h
        z, th = rng.uniform(3.5, 5.0), rng.uniform(0, math.pi)
        xr = (uu - cx) * math.cos(th) + (vv - cy) * math.sin(th)
        yr = -(uu - cx) * math.sin(th) + (vv - cy) * math.cos(th)
        q = (xr / a) ** 2 + (yr / b) ** 2
        d = np.where(q < 1, np.minimum(d, z - 0.15 * np.sqrt(np.clip(1 - q, 0, 1))), d)
    return (gaussian_filter(d, 1.5) + rng.normal(0, 0.01, d.shape)).astype(np.float32)


def timed(fn, repeats: int, clock=time.perf_counter, warmup_s: float = 0.5) -> float:
    """Best of ``repeats`` runs (``clock``: wall time, or ``time.thread_time``) after a warm-up of
    at least 3 calls and ``warmup_s`` seconds: the first calls of a process run 2-3x slower here
    (allocator and page-fault warm-up), and a long extraction run is all steady state."""
    t_end = time.perf_counter() + warmup_s
    for i in range(1000):
        fn()
        if i >= 2 and time.perf_counter() > t_end:
            break
    best = math.inf
    for _ in range(repeats):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def cpu_rates(calls: dict[str, tuple[Callable[[], object], int]], repeats: int) -> dict[str, float]:
    """Keypoints per CPU-second (``time.process_time``) of each ``name: (call, keypoints)``: the
    best of ``repeats`` rounds, every round calling each method once in turn (after one warm-up
    round), so that all methods see the same machine state."""
    best = dict.fromkeys(calls, math.inf)
    for rnd in range(repeats + 1):
        for name, (fn, _) in calls.items():
            t0 = time.process_time()
            fn()
            if rnd:
                best[name] = min(best[name], time.process_time() - t0)
    return {name: calls[name][1] / best[name] for name in calls}


def grid_sample_reads(depth: torch.Tensor, kp: torch.Tensor, r: torch.Tensor, rim: bool) -> Callable[[], object]:
    """A call that only reads the pixels fast mode reads (``grid_sample``, nearest pixel, from a
    precomputed grid): the 97 area points at radius ``r`` and, with ``rim``, the 32 rim points."""
    _, h, w = depth.shape
    pat = torch.as_tensor(disk_pattern(97), dtype=torch.float32)
    off = r[..., None, None] * pat  # (B, J, 97, 2) px
    if rim:
        ang = (torch.arange(RIM_POINTS) + 0.5) * (2 * math.pi / RIM_POINTS)
        ring = torch.stack([torch.cos(ang), torch.sin(ang)], 1)
        off = torch.cat([off, (r - 0.71).clamp_min(0)[..., None, None] * ring], 2)
    grid = (kp[:, :, None, :] + off) * torch.tensor([2.0 / (w - 1), 2.0 / (h - 1)]) - 1.0
    maps = depth[:, None]
    return lambda: F.grid_sample(maps, grid, mode="nearest", padding_mode="border", align_corners=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=256, help="frames (x 17 joints) per timed call")
    ap.add_argument("--sizes", default="1000,518,256", help="depth map sides, px (H36M frame, DA-V2 output, "
                                                             "oracle default)")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="smaller problem (a smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.frames, args.sizes, args.repeats = 32, "400", 2
    rng = np.random.default_rng(0)
    b, j = args.frames, 17
    n = b * j
    nb = max(2, min(b, 40))  # frames the naive loop reads per call (it is slow)
    print(f"frames={b} x {j} joints per call (naive: {nb} frames); fast: 97 samples/keypoint (+ 32 rim points "
          f"for min/max); kp/cpu-s = keypoints per CPU-second on 1 thread, methods alternated, best of "
          f"{args.repeats}; wall on {args.threads} threads; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset (OpenMP default)')}; "
          f"load average {os.getloadavg()[0]:.1f}")
    rules = {"paper": {"radius": LinearRadius(), "stats": Stats()},
             "research": {"radius": ScaleAdaptiveRadius(), "stats": RESEARCH_STATS}}
    conf_det = torch.from_numpy(rng.beta(6.0, 1.5, (b, j)).astype(np.float32))  # mean ~0.8 like a detector
    for s in (int(v) for v in args.sizes.split(",")):
        # joints scattered around a person centre (pelvis-thorax ~ 0.11 s px); map content does not
        # change the cost (the body-like scene below is used for accuracy)
        depth = torch.from_numpy(rng.uniform(2.0, 8.0, (b, s, s)).astype(np.float32))
        centre = rng.uniform(0.25, 0.75, (b, 1, 2)) * s
        kp = torch.from_numpy((centre + rng.normal(0, 0.08 * s, (b, j, 2))).astype(np.float32))
        naive_args = (depth[:nb].numpy(), kp[:nb].numpy(), conf_det[:nb].numpy())
        calls: dict[str, tuple[Callable[[], object], int]] = {}
        for rule, opts in rules.items():
            calls[f"fast {rule}"] = (functools.partial(sample_uadd, depth, kp, conf_det, mode="fast", **opts), n)
            calls[f"naive {rule}"] = (functools.partial(naive_reference, *naive_args, rule=rule), nb * j)
            radii = opts["radius"].radii(conf_det, kp)
            calls[f"grid_sample {rule}"] = (grid_sample_reads(depth, kp, radii, rule == "paper"), n)
            if rule == "paper":  # the kernel's reads alone: own maps, and every keypoint on one shared map
                area, rim = _pattern(97, RIM_POINTS)
                kxy, kr = kp.reshape(-1, 2).numpy(), radii.reshape(-1).numpy()
                for name, kmap in (("own maps", np.repeat(np.arange(b), j)), ("one map", np.zeros(n, np.int64))):
                    calls[f"reads, {name}"] = (functools.partial(kernels.gather, depth.numpy(), kmap, kxy, kr, area,
                                                                 rim, _RIM_INSET), n)
        # the caller's path: extract_uadd / describe pass map_index (arange for one frame per map)
        calls["fast paper, map_index"] = (functools.partial(sample_uadd, depth, kp, conf_det, mode="fast",
                                                            map_index=torch.arange(b), **rules["paper"]), n)
        # the same keypoint sets in another order: the general (padded) layout, which map_index took before
        perm = torch.from_numpy(np.random.default_rng(1).permutation(b))  # own stream: the scenes stay as before
        calls["fast paper, general"] = (functools.partial(sample_uadd, depth, kp[perm], conf_det[perm], mode="fast",
                                                          map_index=perm, **rules["paper"]), n)
        calls["fast paper 30 px"] = (functools.partial(sample_uadd, depth, kp, torch.zeros(b, j), mode="fast"), n)
        # the row sort any median or inner quantile of 97 samples needs (NumPy's SIMD sort, rows of 97 float32)
        rows = np.random.default_rng(2).uniform(2.0, 8.0, (n, 97)).astype(np.float32)
        calls["row sort"] = (lambda rows=rows: np.sort(rows.view(np.int32), axis=1), n)  # as fast mode sorts them
        torch.set_num_threads(1)
        cpu = cpu_rates(calls, args.repeats)
        torch.set_num_threads(args.threads)
        for rule, opts in rules.items():
            r = opts["radius"].radii(conf_det, kp)
            fast, naive, ceil = (cpu[f"{k} {rule}"] for k in ("fast", "naive", "grid_sample"))
            wall = n / timed(calls[f"fast {rule}"][0], args.repeats)
            print(f"maps {s:>4}x{s:<4} {rule:<8} rule, mean r {float(r.mean()):4.1f} px: fast {fast:>10,.0f} kp/cpu-s "
                  f"({wall:>10,.0f} kp/s wall); naive loop {naive:>7,.0f} kp/cpu-s; fast / naive {fast / naive:4.0f}x "
                  f"per CPU-second; grid_sample reads {ceil:>10,.0f} kp/cpu-s = {ceil / naive:4.0f}x naive", flush=True)
            if rule == "paper":
                own, one = (1e6 / cpu[f"reads, {k}"] for k in ("own maps", "one map"))
                srt = 1e6 / cpu["row sort"]
                print(f"maps {s:>4}x{s:<4} paper    rule, per keypoint: fast {1e6 / fast:.3f} us; of it the kernel's "
                      f"reads {own:.3f} us (one shared, cached map: {one:.3f} us, so memory waits {own - one:.3f} us), "
                      f"the row sort {srt:.3f} us, the rest {1e6 / fast - own - srt:.3f} us (statistics, Python)",
                      flush=True)
        line = (f"maps {s:>4}x{s:<4} paper    rule, all radii 30 px: fast {cpu['fast paper 30 px']:>10,.0f} kp/cpu-s; "
                f"detector-like conf: map_index=arange (extract_uadd's call) {cpu['fast paper, map_index']:>9,.0f}, "
                f"maps out of order (general layout) {cpu['fast paper, general']:>9,.0f} kp/cpu-s")
        if s == 1000 or args.quick:
            t_exact = timed(functools.partial(sample_uadd, depth, kp, conf_det, **rules["paper"]),
                            max(1, args.repeats // 3))
            line += f"; exact (detector-like conf) {n / t_exact:>9,.0f} kp/s wall"
            rates_b = []
            for nf in (1, 8, 32):
                small = functools.partial(sample_uadd, depth[:nf], kp[:nf], conf_det[:nf], mode="fast",
                                          **rules["paper"])
                rates_b.append(f"{nf} frames {nf * j / timed(small, 3 * args.repeats, warmup_s=0.2):,.0f}")
            line += "; small calls: " + ", ".join(rates_b) + " kp/s wall"
        print(line, flush=True)
        del depth, naive_args, calls
    accuracy(args.quick)


def accuracy(quick: bool = False) -> None:
    """Fast (and naive) vs exact on body-like scenes, confidences over the whole range (own seed)."""
    rng = np.random.default_rng(1)
    paper = {"radius": LinearRadius(), "stats": Stats()}
    research = {"radius": ScaleAdaptiveRadius(), "stats": RESEARCH_STATS}
    sb, ss = (8, 256) if quick else (48, 500)
    scene = np.stack([body_scene(rng, ss, ss) for _ in range(sb)])
    kps = (rng.uniform(0.1, 0.9, (sb, 1, 2)) * ss + rng.normal(0, 0.1 * ss, (sb, 200, 2))).astype(np.float32)
    confs = rng.uniform(0, 1, (sb, 200)).astype(np.float32)
    for name, opts in (("paper (median/min/max)", paper), ("research (keypoint/q10/q90)", research)):
        ex = sample_uadd(scene, kps, confs, **opts)
        fa = sample_uadd(scene, kps, confs, mode="fast", **opts)
        report(f"fast vs exact, {name}", fa.uadd, ex)
    ex = sample_uadd(scene, kps, confs, **research)
    report("NAIVE vs exact, research", naive_reference(scene, kps, confs), ex)


def report(name: str, got: np.ndarray, ex) -> None:
    ok = ex.valid & np.isfinite(got).all(-1)
    spread = (ex.uadd[..., 2] - ex.uadd[..., 1])[ok]
    err = np.abs(got - ex.uadd)[ok]
    rel = err / np.maximum(spread, 1e-6)[:, None]
    fmt = lambda v: "/".join(f"{x:.1f}" for x in v)  # noqa: E731
    print(f"{name:<38} |error| (d/d_min/d_max) mean {fmt(err.mean(0) * 1000)} mm, "
          f"p99 {fmt(np.percentile(err, 99, axis=0) * 1000)} mm; |error|/spread median "
          f"{fmt(np.median(rel, 0) * 100)} %, mean {fmt(rel.mean(0) * 100)} %  "
          f"(exact spread {spread.mean() * 1000:.0f} mm)")


if __name__ == "__main__":
    main()
