"""Benchmark: training throughput per lifter, data-pipeline overhead, time to first step on 1.5 M frames.

Runs the real training loop (:func:`auglift.train.train`) on synthetic PoseSets with random
values (the numbers do not depend on what the poses look like):

1. **Throughput** of every lifter registered in :data:`auglift.models.MODELS` (lifters added
   later are picked up automatically; unknown ones run with their default arguments) at the
   configuration in ``BENCH`` below: samples/s (windows/s) and predicted frames/s, with the
   batch, window and input set stated. The first step of each run (warm-up) is not timed.
2. **Data-pipeline overhead**: gathering + encoding a batch (done in a background thread) as a
   share of the step time, and the share of the step the loop actually waits for data.
3. **Time to first step** on a 1.5 M-frame PoseSet (600 clips, with ``uadd``), in a fresh
   process: ``import auglift.train`` and ``train()`` from its call to the end of the first
   optimiser step (loading, value validation, encoder fit, windows, model, optimiser).

Usage: ``python benchmarks/bench_train.py [--threads 2] [--steps 6] [--only tcn,...] [--skip-big] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

from auglift.models import MODELS
from auglift.poseset import ClipTable, PoseSet

# lifter -> (model kwargs, batch size in windows, input set). Paper-sized architectures; batches
# sized so that a CPU step takes seconds, not minutes.
BENCH: dict[str, tuple[dict[str, Any], int, str]] = {
    "simple_baseline": ({"width": 1024, "num_blocks": 2, "dropout": 0.25}, 512, "uadd"),
    "tcn": ({"receptive_field": 243, "channels": 1024, "dropout": 0.25}, 128, "uadd"),
    "poseformer": ({"receptive_field": 81, "embed_dim_ratio": 32, "depth": 4}, 16, "uadd"),
    "motionbert": ({"receptive_field": 243, "size": "lite"}, 1, "uadd"),
}


def synthetic(n_clips: int, per_clip: int, seed: int = 0) -> PoseSet:
    """Random but valid PoseSet with every field (in memory)."""
    rng = np.random.default_rng(seed)
    n = n_clips * per_clip
    kp3d = rng.normal(0, 0.3, (n, 17, 3)).astype(np.float32)
    kp3d[..., 2] += 5.0
    d = kp3d[..., 2] + rng.normal(0, 0.05, (n, 17)).astype(np.float32)
    fields = {
        "clip": np.repeat(np.arange(n_clips, dtype=np.int32), per_clip),
        "frame": np.tile(np.arange(per_clip, dtype=np.int32), n_clips),
        "kp2d": rng.uniform(0, 1000, (n, 17, 2)).astype(np.float32),
        "conf": rng.uniform(0, 1, (n, 17)).astype(np.float32),
        "kp3d": kp3d,
        "visible": np.ones((n, 17), bool),
        "uadd": np.stack([d, d - 0.05, d + 0.05], -1).astype(np.float32),
        "uadd_valid": np.ones((n, 17), bool),
    }
    ct = ClipTable(subject=[f"S{i % 7}" for i in range(n_clips)], action=[f"a{i % 15}" for i in range(n_clips)],
                   camera=[str(i % 4) for i in range(n_clips)],
                   split=["train" if i % 6 else "test" for i in range(n_clips)],
                   width=[1000] * n_clips, height=[1000] * n_clips,
                   intrinsics=np.tile([1145.0, 1145.0, 500.0, 500.0], (n_clips, 1)))
    return PoseSet(fields, ct, {"source": "bench", "depth_model": "bench-metric"})


def build_big(root: Path, n: int, clips: int, seed: int = 0) -> None:
    """Write an ``n``-frame PoseSet with every field to ``root`` in chunks (memory stays flat)."""
    per = n // clips
    n = per * clips
    synthetic(clips, 1).save(root)  # small valid set: meta.json + clip table, then full-size arrays
    meta = json.loads((root / "meta.json").read_text())
    rng = np.random.default_rng(seed)
    np.save(root / "clip.npy", np.repeat(np.arange(clips, dtype=np.int32), per))
    np.save(root / "frame.npy", np.tile(np.arange(per, dtype=np.int32), clips))
    mm = {name: np.lib.format.open_memmap(root / f"{name}.npy", mode="w+", dtype=dt, shape=(n, *tail))
          for name, tail, dt in (("kp2d", (17, 2), np.float32), ("conf", (17,), np.float32),
                                 ("kp3d", (17, 3), np.float32), ("visible", (17,), np.bool_),
                                 ("uadd", (17, 3), np.float32), ("uadd_valid", (17,), np.bool_))}
    for s in range(0, n, 250_000):
        e = min(n, s + 250_000)
        chunk = synthetic(1, e - s, seed=int(rng.integers(1 << 31)))
        for name, arr in mm.items():
            arr[s:e] = getattr(chunk, name)
    for arr in mm.values():
        arr.flush()
    del mm
    meta["num_frames"] = n
    for name in meta["fields"]:
        meta["fields"][name].pop("sha256", None)
        meta["fields"][name]["shape"][0] = n
    (root / "meta.json").write_text(json.dumps(meta))


def write_toml(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return repr(v)

    text = "\n".join(f"[{sec}]\n" + "\n".join(f"{k} = {val(v)}" for k, v in kv.items()) + "\n"
                     for sec, kv in sections.items())
    path.write_text(text)
    return path


def throughput(root: Path, data: Path, name: str, threads: int, steps: int) -> dict[str, Any]:
    from auglift.train import train

    kwargs, batch, channels = BENCH.get(name, ({}, 64, "uadd"))
    cfg = write_toml(root / f"{name}.toml", {
        "data.train": {"path": str(data), "split": "train"},
        "model": {"name": name}, "model.kwargs": kwargs,
        "input": {"channels": channels},
        "optim": {"epochs": 1, "batch_size": batch, "steps_per_epoch": steps},
        "runtime": {"threads": threads, "progress": False, "log": False, "out": str(root / f"run_{name}")},
    })
    train(cfg)
    run = json.loads((root / f"run_{name}" / "run.json").read_text())
    t = run["timing"]
    window, anchor = run["window"], run["anchor"]
    out_frames = window if anchor == "start" else 1
    sps = 1000.0 * batch / t["step_ms"]
    return {"lifter": name, "kwargs": kwargs, "batch": batch, "window": window, "anchor": anchor, "input": channels,
            "step_ms": t["step_ms"], "samples_per_s": sps, "frames_per_s": sps * out_frames,
            "fetch_pct": 100 * t["fetch_fraction"], "wait_pct": 100 * t["wait_fraction"], "steps": t["steps_timed"]}


CHILD = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    from auglift.train import train
    imp = time.perf_counter() - t0
    train(sys.argv[1])
    print(json.dumps({"import_s": imp}))
""")


def time_to_first_step(root: Path, big: Path, threads: int) -> dict[str, Any]:
    cfg = write_toml(root / "ttfs.toml", {
        "data.train": {"path": str(big), "split": "train"},
        "data.val": {"path": str(big), "split": "test", "max_windows": 1000},
        "model": {"name": "simple_baseline"},
        "input": {"channels": "uadd", "scale_norm": "bbox"},
        "optim": {"epochs": 1, "batch_size": 512, "steps_per_epoch": 1},
        "runtime": {"threads": threads, "progress": False, "log": False, "out": str(root / "run_ttfs")},
    })
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, str(cfg)], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t
    imp = json.loads(out.stdout.strip().splitlines()[-1])["import_s"]
    run = json.loads((root / "run_ttfs" / "run.json").read_text())
    return {"frames": PoseSet.load(big).num_frames, "import_s": imp,
            "train_to_first_step_s": run["timing"]["time_to_first_step_s"], "process_wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the target machine has 2 cores)")
    ap.add_argument("--steps", type=int, default=4, help="steps per lifter (the first is not timed)")
    ap.add_argument("--only", default="", help="comma-separated lifters (default: every registered one)")
    ap.add_argument("--frames", type=int, default=1_500_000, help="frames of the time-to-first-step PoseSet")
    ap.add_argument("--skip-big", action="store_true", help="skip the 1.5 M-frame time-to-first-step run")
    ap.add_argument("--keep", type=Path, default=None, help="build/reuse the big PoseSet here")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    names = [n for n in (args.only.split(",") if args.only else sorted(MODELS)) if n]
    results: dict[str, Any] = {"threads": args.threads, "lifters": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthetic(120, 300, seed=1).save(root / "small")  # 36,000 frames
        print(f"training throughput, {args.threads} threads, {args.steps - 1} timed steps "
              "(samples = windows; frames = predicted frames)")
        for name in names:
            r = throughput(root, root / "small", name, args.threads, args.steps)
            results["lifters"].append(r)
            print(f"  {name:<16} batch {r['batch']:>4} x window {r['window']:>3} ({r['anchor']}), input {r['input']}: "
                  f"{r['samples_per_s']:8.1f} samples/s, {r['frames_per_s']:8.1f} frames/s, "
                  f"step {r['step_ms']:8.1f} ms; data pipeline {r['fetch_pct']:.2f}% of the step "
                  f"(loop waits {r['wait_pct']:.2f}%)", flush=True)
        if not args.skip_big:
            big = args.keep or root / "big"
            if not (big / "meta.json").exists():
                t = time.perf_counter()
                build_big(big, args.frames, 600)
                print(f"built a {args.frames:,}-frame PoseSet in {time.perf_counter() - t:.1f} s")
            r = time_to_first_step(root, big, args.threads)
            results["time_to_first_step"] = r
            print(f"time to first step on {r['frames']:,} frames (simple_baseline, uadd + bbox scale norm, batch 512): "
                  f"train() {r['train_to_first_step_s']:.2f} s (+ import auglift.train {r['import_s']:.2f} s; "
                  f"process wall incl. interpreter start and exit {r['process_wall_s']:.2f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
