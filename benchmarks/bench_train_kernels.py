"""Benchmark: where TCN-27 and PoseFormer-27 training time goes on this CPU, and what the kernels allow.

Standalone (random data, the lifters of ``auglift.models``), on ``--threads`` threads:

* **machine**: the CPU's matrix extensions (``avx512_bf16``, ``amx_bf16`` in ``/proc/cpuinfo``);
* **FLOP ceiling**: one matrix product of the TCN's main shape (``(B * 3, 3072) @ (3072, 1024)``,
  the kernel-3 convolution of a 27-frame window at batch ``B``) in float32 and bfloat16, GFLOP/s,
  against the GFLOP/s the whole training step reaches;
* **step breakdown** (TCN-27: 1024 channels, batch 1024, Adam with AMSGrad; PoseFormer-27: batch
  512, AdamW): forward + loss, backward, optimiser step, in float32 and under CPU bfloat16
  autocast, and the time of each of the first steps (the bfloat16 warm-up);
* **candidates**: the optimiser's for-loop, ``foreach`` and ``fused`` implementations; the
  strided kernel-3 convolution written as a reshape + matrix product; ``torch.compile`` of the
  training step (``--compile``: minutes of compilation on 2 cores);
* **TCN evaluation**: one clip of ``--eval-frames`` frames with the flip test through the
  whole-clip path (Winograd F(4, 3) on oneDNN's GEMM where available, :mod:`auglift.models.winograd`)
  against 27-frame windows through the strided path, frames/s and the largest output difference;
  the dilated ``conv1d`` against ``torch.mm`` and oneDNN's linear at the same FLOPs.

Timings are the median of ``--steps`` steps after ``--warmup`` steps (wall clock; the machine may
be shared: read the spread). Usage: ``python benchmarks/bench_train_kernels.py [--threads 2]
[--steps 6] [--compile]``
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from auglift.metrics import mpjpe_loss
from auglift.models import build, winograd
from auglift.models.layers import DropPath


def cpu_flags() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    want = ("avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")
    return f"{name}; " + ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in want)


def timed(fn: Callable[[], object], steps: int, warmup: int) -> tuple[float, list[float]]:
    """(median seconds of ``steps`` calls after ``warmup``, every call's seconds)."""
    times = []
    for _ in range(warmup + steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[warmup:]), times


def matmul_rate(m: int, k: int, n: int, dtype: torch.dtype, steps: int) -> float:
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    t, _ = timed(lambda: torch.mm(a, b), steps, 2)
    return 2.0 * m * k * n / t / 1e9


def tcn_flops_per_sample(channels: int = 1024, c_in: int = 34) -> float:
    """Multiply-adds x 2 of one 27-frame window through the strided TCN (widths 3, 3, 3)."""
    macs = 9 * (3 * c_in) * channels  # expand conv: 9 output frames
    macs += 3 * (3 * channels) * channels + 3 * channels * channels  # block 1: kernel-3 conv, 1x1 conv
    macs += 1 * (3 * channels) * channels + 1 * channels * channels  # block 2
    macs += channels * 51  # shrink
    return 2.0 * macs


def poseformer_flops_per_sample(frames: int = 27, joints: int = 17, e: int = 32, depth: int = 4,
                                mlp_ratio: float = 2.0, c_in: int = 2) -> float:
    """Multiply-adds x 2 of one window through PoseFormer's forward: the linear layers and the two
    attention products (``q k^T``, ``attn v``) of the spatial and temporal blocks."""
    d = e * joints

    def block(tokens: int, dim: int, sequences: int) -> int:
        linear = sequences * tokens * dim * (3 * dim + dim + 2 * int(dim * mlp_ratio))  # qkv, proj, fc1, fc2
        return linear + sequences * 2 * tokens * tokens * dim

    macs = frames * joints * c_in * e + depth * block(joints, e, frames) + depth * block(frames, d, 1)
    macs += frames * d + d * joints * 3  # weighted mean, head
    return 2.0 * macs


def matmul_cpu_rate(m: int, k: int, n: int, dtype: torch.dtype, steps: int) -> tuple[float, float]:
    """(GFLOP/s by wall clock, GFLOP per CPU second) of ``(m, k) @ (k, n)``, median of ``steps``."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    torch.mm(a, b)
    wall, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        torch.mm(a, b)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    flop = 2.0 * m * k * n / 1e9
    return flop / statistics.median(wall), flop / statistics.median(cpu)


class Step:
    """One training step split into phases: forward + loss, backward, optimiser."""

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer,
                 amp: bool):
        self.model, self.x, self.y, self.opt, self.amp = model, x, y, opt, amp
        self.phase: dict[str, list[float]] = {"forward": [], "backward": [], "optimizer": []}

    def __call__(self) -> None:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if self.amp else contextlib.nullcontext()
        t0 = time.perf_counter()
        with ctx:
            loss = mpjpe_loss(self.model(self.x).float(), self.y)
        t1 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        self.opt.step()
        t3 = time.perf_counter()
        for k, v in zip(self.phase, (t1 - t0, t2 - t1, t3 - t2)):
            self.phase[k].append(v)


def lifter(name: str) -> tuple[torch.nn.Module, int, Callable[[torch.nn.Module], torch.optim.Optimizer]]:
    if name == "tcn":
        model = build("tcn", 2, receptive_field=27, channels=1024, dropout=0.25)
        return model, 1024, lambda m, **kw: torch.optim.Adam(m.parameters(), lr=1e-3, amsgrad=True, **kw)
    model = build("poseformer", 2, receptive_field=27, embed_dim_ratio=32, depth=4, num_heads=8, drop_path_rate=0.1)
    return model, 512, lambda m, **kw: torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.05, **kw)


def step_breakdown(name: str, steps: int, warmup: int) -> float:
    """Print the phases of ``name``'s step in float32 and bf16 autocast; returns the fp32 step seconds."""
    fp32 = 0.0
    for amp in (False, True):
        torch.manual_seed(0)
        model, batch, make_opt = lifter(name)
        model.train()
        x, y = torch.randn(batch, 27, 17, 2), torch.randn(batch, 1, 17, 3)
        step = Step(model, x, y, make_opt(model), amp)
        t, every = timed(step, steps, warmup)
        ph = {k: statistics.median(v[warmup:]) * 1e3 for k, v in step.phase.items()}
        label = "bf16 autocast" if amp else "float32"
        print(f"{name:<10} {label:<13} step {t * 1e3:7.1f} ms = {batch / t:6.0f} frames/s;  "
              f"forward {ph['forward']:6.1f}  backward {ph['backward']:6.1f}  optimizer {ph['optimizer']:5.1f} ms;  "
              f"first steps "
              + " ".join(f"{v * 1e3:.0f}" for v in every[:warmup + 1]) + " ms", flush=True)
        if not amp:
            fp32 = t
    return fp32


def _timed_step(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: int, amp: bool) -> float:
    """CPU seconds of one training step on a random batch of ``batch`` windows."""
    x, y = torch.randn(batch, 27, 17, 2), torch.randn(batch, 1, 17, 3)
    c0 = time.process_time()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        loss = mpjpe_loss(model(x).float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.process_time() - c0


def bf16_steps(name: str, batch: int, steps: int) -> None:
    """CPU seconds of each training step in float32 and under bfloat16 autocast (CPU time: what a shared
    machine distorts least): the first steps (warm-up), the median after them, one step of a new, smaller
    batch shape (a last batch: oneDNN makes primitives per shape) and one back at the usual shape."""
    for amp in (False, True):
        torch.manual_seed(0)
        model, _, make_opt = lifter(name)
        model.train()
        opt = make_opt(model)
        ts = [_timed_step(model, opt, batch, amp) for _ in range(steps)]
        odd, back = _timed_step(model, opt, batch - 24, amp), _timed_step(model, opt, batch, amp)
        med = statistics.median(ts[2:])
        print(f"{name} batch {batch} {'bf16 autocast' if amp else 'float32':<13}: CPU s a step, steps 1-{steps} "
              + " ".join(f"{t:.2f}" for t in ts) + f"; median after 2: {med:.2f} = {batch / med:.0f} frames per CPU-s;"
              f" new shape {odd:.2f}, then {back:.2f}", flush=True)


def optimizer_variants(steps: int, warmup: int) -> None:
    """Adam(AMSGrad) on the TCN's 16.9 M parameters: for-loop, foreach, fused."""
    model, _, make_opt = lifter("tcn")
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    for label, kw in (("for-loop", {"foreach": False}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        try:
            opt = make_opt(model, **kw)
        except (RuntimeError, TypeError) as exc:
            print(f"tcn Adam(amsgrad) {label:<9} unavailable: {exc}")
            continue
        t, _ = timed(opt.step, steps, warmup)
        print(f"tcn Adam(amsgrad) {label:<9} {t * 1e3:6.1f} ms per step", flush=True)


def conv_as_matmul(steps: int, warmup: int) -> None:
    """The kernel-3, stride-3 convolution of the strided TCN, as conv1d and as reshape + matmul."""
    b, c, t = 1024, 1024, 9
    h = torch.randn(b, c, t, requires_grad=True)
    w = torch.randn(c, c, 3, requires_grad=True)
    w2 = w.detach().permute(0, 2, 1).reshape(c, 3 * c).clone().requires_grad_(True)

    def conv() -> None:
        F.conv1d(h, w, stride=3).sum().backward()

    def mm() -> None:  # (B, C, T) -> (B, T/3, 3C) rows, times the (3C, C) weight
        hh = h.transpose(1, 2).reshape(b, t // 3, 3 * c)
        (hh @ w2.t()).sum().backward()

    out_c = F.conv1d(h, w, stride=3)
    out_m = (h.transpose(1, 2).reshape(b, t // 3, 3 * c) @ w2.t()).transpose(1, 2)
    diff = (out_c - out_m).abs().max().item()
    for label, fn in (("conv1d", conv), ("reshape+matmul", mm)):
        tt, _ = timed(fn, steps, warmup)
        print(f"kernel-3 stride-3 conv (B {b}, 1024 ch, 9 frames) {label:<15} forward+backward {tt * 1e3:6.1f} ms"
              f"  (outputs differ by {diff:.1e})", flush=True)


def compiled_step(steps: int, warmup: int) -> None:
    torch.manual_seed(0)
    model, batch, make_opt = lifter("tcn")
    step = Step(torch.compile(model), torch.randn(batch, 27, 17, 2), torch.randn(batch, 1, 17, 3), make_opt(model),
                amp=False)
    t0 = time.perf_counter()
    step()
    compile_s = time.perf_counter() - t0
    t, _ = timed(step, steps, warmup)
    print(f"tcn torch.compile(model): first step (compilation) {compile_s:.0f} s, then {t * 1e3:.1f} ms per step "
          f"= {batch / t:.0f} frames/s", flush=True)


def tcn_eval(frames: int, steps: int) -> None:
    """One clip with the flip test: dilated path over the whole clip vs strided 27-frame windows."""
    torch.manual_seed(0)
    model, _, _ = lifter("tcn")
    model.eval()
    clip = torch.randn(2, frames + 26, 17, 2)  # the clip and its mirrored copy, edge-padded by 13 each side
    with torch.inference_mode():
        whole = lambda: model(clip)  # noqa: E731
        windows = clip.unfold(1, 27, 1).permute(0, 1, 4, 2, 3).reshape(-1, 27, 17, 2)  # (2 * frames, 27, 17, 2)

        def per_window() -> torch.Tensor:
            return torch.cat([model(windows[i:i + 8192]) for i in range(0, len(windows), 8192)])

        diff = (whole().reshape(-1, 17, 3) - per_window().reshape(-1, 17, 3)).abs().max().item()
        tw, _ = timed(whole, steps, 1)
        ts, _ = timed(per_window, steps, 1)
    print(f"tcn evaluation, {frames:,} frames + flip test: whole clip (dilated) {frames / tw:,.0f} frames/s, "
          f"27-frame windows (strided) {frames / ts:,.0f} frames/s; outputs differ by {diff:.1e}", flush=True)


def official_models(vp3d: Path | None, poseformer: Path | None,
                    poseformer_batch: int = 512) -> list[tuple[str, torch.nn.Module, int]]:
    """The original lifters from their checkouts (imported from there, never copied): VideoPose3D's
    ``TemporalModelOptimized1f`` (its training model) and PoseFormer's ``PoseTransformer``."""
    out = []
    for name, root in (("tcn", vp3d), ("poseformer", poseformer)):
        if root is None:
            continue
        sys.path.insert(0, str(root))
        for mod in [m for m in sys.modules if m == "common" or m.startswith("common.")]:
            del sys.modules[mod]  # both checkouts name their package "common"
        torch.manual_seed(0)
        if name == "tcn":
            model = importlib.import_module("common.model").TemporalModelOptimized1f(17, 2, 17, [3, 3, 3],
                                                                                      dropout=0.25, channels=1024)
            batch = 1024
        else:
            model = importlib.import_module("common.model_poseformer").PoseTransformer(
                num_frame=27, num_joints=17, in_chans=2, embed_dim_ratio=32, depth=4, num_heads=8, mlp_ratio=2.0,
                qkv_bias=True, qk_scale=None, drop_path_rate=0.1)
            batch = poseformer_batch
        sys.path.remove(str(root))
        out.append((name, model, batch))
    return out


def without_drop_path(model: torch.nn.Module) -> None:
    """Stochastic depth off in every block. The original (timm's ``DropPath``: ``rand`` + ``floor``)
    and auglift (``bernoulli_``) draw different masks from the same seed, so the loss curves of the
    two compare step by step only without it; the masks are one ``(B, 1, 1)`` multiply a block."""
    for m in model.modules():
        if isinstance(m, DropPath):
            m.p = 0.0
        elif hasattr(m, "drop_prob"):  # timm.models.layers.DropPath
            m.drop_prob = 0.0


def official_optimizer(name: str, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The originals' optimisers: VideoPose3D's ``run.py`` Adam(lr 1e-3, AMSGrad); PoseFormer's
    ``run_poseformer.py`` AdamW(lr 1e-4, weight_decay 0.1) (auglift's PoseFormer configs use 0.05)."""
    if name == "tcn":
        return torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    return torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)


def vs_official(vp3d: Path | None, poseformer: Path | None, steps: int, poseformer_batch: int = 512) -> None:
    """Training steps of the original model and auglift's, same initial weights (the original's state
    dict loaded into auglift's lifter, strictly: the same keys), same batches, the original's optimiser
    on both sides; steps alternate between the sides. Dropout (TCN) draws from the same seed each step
    on both sides; PoseFormer's stochastic depth is off on both (:func:`without_drop_path`).
    PoseFormer has a third side, auglift's model (the same initial weights, its own optimiser) under CPU
    bfloat16 autocast, against the original in float32 (bf16 attention takes the math backend in
    training: :func:`auglift.models.layers.attention`); the sides' order rotates every step.
    Prints every step (wall and CPU seconds: CPU time is what a loaded machine distorts least), then
    each side's median step, frames/s, its ratio to the original and every loss curve (mm)."""
    for name, official, batch in official_models(vp3d, poseformer, poseformer_batch):
        ours, _, _ = lifter(name)
        ours.load_state_dict(official.state_dict())
        if name == "poseformer":
            without_drop_path(official), without_drop_path(ours)
        gen = torch.Generator().manual_seed(1)
        xs = [torch.randn(batch, 27, 17, 2, generator=gen) for _ in range(4)]
        mix = torch.randn(34, 51, generator=gen) / 34**0.5
        ys = [0.3 * torch.tanh(x[:, 13].reshape(batch, 34) @ mix).reshape(batch, 1, 17, 3) for x in xs]
        sides = {"official": (official, official_optimizer(name, official), False),
                 "auglift": (ours, official_optimizer(name, ours), False)}
        if name == "poseformer":
            bf16, _, _ = lifter(name)
            bf16.load_state_dict(official.state_dict())
            without_drop_path(bf16)
            sides["auglift bf16"] = (bf16, official_optimizer(name, bf16), True)
        with torch.no_grad():
            official.eval(), ours.eval()
            n = min(64, batch)
            diff = (official(xs[0][:n]).reshape(n, 1, 17, 3) - ours(xs[0][:n])).abs().max().item()
        print(f"{name} training step vs the original (batch {batch}, {steps} alternated steps; eval-mode outputs "
              f"of the same weights differ by {diff:.1e}):", flush=True)
        curves: dict[str, list[float]] = {k: [] for k in sides}
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in sides}
        order = list(sides)
        for k in range(steps):
            for side in order[k % len(order):] + order[:k % len(order)]:
                model, opt, amp = sides[side]
                model.train()
                torch.manual_seed(k)  # the same dropout stream on both sides
                t0, c0 = time.perf_counter(), time.process_time()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                    out = model(xs[k % 4])
                loss = mpjpe_loss(out.float().reshape(batch, 1, 17, 3), ys[k % 4])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                times[side].append((time.perf_counter() - t0, time.process_time() - c0))
                curves[side].append(1000 * loss.item())
            print(f"  step {k}: " + ";  ".join(f"{side} {times[side][k][0]:6.2f} s wall {times[side][k][1]:6.2f} CPU-s "
                                               f"loss {curves[side][k]:.1f} mm" for side in sides), flush=True)
        med = {side: (statistics.median(w for w, _ in v[1:]), statistics.median(c for _, c in v[1:]))
               for side, v in times.items()}
        print("  medians, first step left out:", flush=True)
        for side, (w, c) in med.items():
            print(f"  {side:<12} {w * 1e3:8.1f} ms wall = {batch / w:6.0f} frames/s;  {c:7.2f} CPU-s a step;  "
                  f"loss mm " + " ".join(f"{v:.1f}" for v in curves[side]), flush=True)
        for side in [s for s in sides if s != "official"]:
            print(f"  ratio {side}/official: {med['official'][0] / med[side][0]:.2f}x by wall clock, "
                  f"{med['official'][1] / med[side][1]:.2f}x by CPU time", flush=True)
        if name == "poseformer":  # the float32 ceiling: a step's FLOPs against its main matrix product
            flop = 3 * poseformer_flops_per_sample() * batch / 1e9  # forward + backward (2x)
            print(f"  a step is {flop:.0f} GFLOP: " + ", ".join(
                f"{side} {flop / w:.0f} GFLOP/s wall, {flop / c:.0f} GFLOP per CPU-s" for side, (w, c) in med.items()),
                flush=True)
            for dtype in (torch.float32, torch.bfloat16):
                w, c = matmul_cpu_rate(batch * 27, 544, 1632, dtype, 5)
                print(f"  its qkv matmul ({batch * 27} x 544) @ (544 x 1632), {str(dtype)[6:]}: {w:.0f} GFLOP/s wall, "
                      f"{c:.0f} GFLOP per CPU-s", flush=True)


def eval_ceiling(frames: int, steps: int) -> None:
    """The evaluation's main layer, a kernel-3 dilated convolution over a whole clip (1024 channels),
    through conv1d (what VideoPose3D and auglift run) against the matrix product of the same FLOPs:
    if both run at the same rate, whole-clip evaluation is at the float32 FLOP ceiling."""
    c = 1024
    x, w = torch.randn(1, c, frames + 6), torch.randn(c, c, 3)
    a, b = torch.randn(frames, 3 * c), torch.randn(3 * c, c)
    flop = 2.0 * frames * 3 * c * c
    bt = b.t().contiguous()
    with torch.inference_mode():
        tc, _ = timed(lambda: F.conv1d(x, w, dilation=3), steps, 1)
        tm, _ = timed(lambda: a @ b, steps, 1)
        to, _ = timed(lambda: winograd.linear(a, bt), steps, 1)
    print(f"kernel-3 dilated conv1d over {frames:,} frames: {flop / tc / 1e9:,.0f} GFLOP/s; matmul of the same "
          f"FLOPs: {flop / tm / 1e9:,.0f} GFLOP/s (torch.mm), {flop / to / 1e9:,.0f} GFLOP/s (oneDNN linear, "
          f"{'used' if winograd.available() else 'missing: F.linear'}); Winograd F(4, 3) needs half these FLOPs",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--eval-frames", type=int, default=16384)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    ap.add_argument("--videopose3d", type=Path, help="checkout of facebookresearch/VideoPose3D: step vs its model")
    ap.add_argument("--poseformer", type=Path, help="checkout of zczcwh/PoseFormer (needs einops and timm)")
    ap.add_argument("--poseformer-batch", type=int, default=512,
                    help="batch of the PoseFormer steps against the original (512 as published)")
    ap.add_argument("--only-official", action="store_true", help="only the steps against the original models")
    ap.add_argument("--bf16", action="store_true", help="only the float32 vs bf16 training steps in CPU seconds "
                                                        "(TCN batch 1024, PoseFormer batch --poseformer-batch)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{cpu_flags()}; torch {torch.__version__}, {args.threads} threads; oneDNN bf16 kernels: "
          f"{'yes' if torch.ops.mkldnn._is_mkldnn_bf16_supported() else 'no (bf16 runs reference kernels)'}",
          flush=True)
    if args.bf16:
        bf16_steps("tcn", 1024, args.steps)
        bf16_steps("poseformer", args.poseformer_batch, args.steps)
        return
    vs_official(args.videopose3d, args.poseformer, args.steps, args.poseformer_batch)
    if args.only_official:
        return
    for dtype in (torch.float32, torch.bfloat16):
        rate = matmul_rate(3 * 1024, 3072, 1024, dtype, args.steps)
        print(f"matmul (3072 x 3072) @ (3072 x 1024), {str(dtype)[6:]}: {rate:,.0f} GFLOP/s", flush=True)
    t_tcn = step_breakdown("tcn", args.steps, args.warmup)
    flops = 3 * tcn_flops_per_sample() * 1024  # forward + backward (2x) of a batch
    print(f"tcn fp32 step reaches {flops / t_tcn / 1e9:,.0f} GFLOP/s ({flops / 1e9:.0f} GFLOP a step)", flush=True)
    step_breakdown("poseformer", args.steps, args.warmup)
    optimizer_variants(args.steps, 1)
    conv_as_matmul(args.steps, 1)
    if args.compile:
        compiled_step(args.steps, 1)
    tcn_eval(args.eval_frames, max(2, args.steps // 2))
    eval_ceiling(args.eval_frames, max(2, args.steps // 2))


if __name__ == "__main__":
    main()
