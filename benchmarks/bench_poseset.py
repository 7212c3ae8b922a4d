"""Benchmark: PoseSet load time and sliding-window throughput on a 1.5 M-frame set.

Writes a synthetic 1.5 M-frame PoseSet (random values, 600 clips of 2500 frames, about
0.8 GB) to a temporary directory, then measures

* ``PoseSet.load`` (header checks + memory maps) and ``validate()`` (full value scan);
* building ``windows(T)`` index views for T = 1, 27, 81, 243;
* gathering random batches of windows (``kp2d[rows]``) as a training loader would.

Usage: ``python benchmarks/bench_poseset.py [--frames 1500000] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from auglift.poseset import ClipTable, PoseSet


def build(root: Path, n: int, clips: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    per = n // clips
    n = per * clips
    ct = ClipTable(subject=[f"S{i % 7}" for i in range(clips)], action=[f"a{i % 15}" for i in range(clips)],
                   camera=[str(i % 4) for i in range(clips)], split=["train"] * clips,
                   width=[1000] * clips, height=[1000] * clips,
                   intrinsics=np.tile([1145.0, 1145.0, 500.0, 500.0], (clips, 1)))
    small = PoseSet({"clip": np.zeros(1, np.int32), "frame": np.zeros(1, np.int32),
                     "kp2d": np.zeros((1, 17, 2), np.float32), "conf": np.ones((1, 17), np.float32),
                     "kp3d": np.zeros((1, 17, 3), np.float32)}, ct[:1], {"source": "bench"})
    small.save(root)
    # Overwrite the arrays with full-size ones written in chunks (memory stays flat).
    (root / "clips").mkdir(exist_ok=True)
    for name, a in ct.columns.items():
        np.save(root / "clips" / f"{name}.npy", a)
    np.save(root / "clip.npy", np.repeat(np.arange(clips, dtype=np.int32), per))
    np.save(root / "frame.npy", np.tile(np.arange(per, dtype=np.int32), clips))
    for name, tail in (("kp2d", (17, 2)), ("conf", (17,)), ("kp3d", (17, 3))):
        mm = np.lib.format.open_memmap(root / f"{name}.npy", mode="w+", dtype=np.float32, shape=(n, *tail))
        for s in range(0, n, 250_000):
            e = min(n, s + 250_000)
            mm[s:e] = rng.uniform(0.0, 1.0, (e - s, *tail)).astype(np.float32)
        mm.flush()
        del mm
    meta = json.loads((root / "meta.json").read_text())
    meta["num_frames"], meta["num_clips"] = n, clips
    for name in meta["fields"]:
        meta["fields"][name].pop("sha256", None)
    (root / "meta.json").write_text(json.dumps(meta))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1_500_000)
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--keep", type=Path, default=None, help="build/reuse the set here instead of a temp dir")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "big"
        if not (root / "meta.json").exists():
            t = time.perf_counter()
            build(root, args.frames, args.clips)
            print(f"built {args.frames:,}-frame PoseSet in {time.perf_counter() - t:.1f} s")
        loads = []
        for _ in range(5):
            t = time.perf_counter()
            ps = PoseSet.load(root)
            loads.append(time.perf_counter() - t)
        print(f"PoseSet.load: median {1000 * np.median(loads):.1f} ms over 5 runs ({len(ps):,} frames)")
        t = time.perf_counter()
        ps.validate()
        print(f"validate() full value scan: {time.perf_counter() - t:.2f} s")
        rng = np.random.default_rng(0)
        for T in (1, 27, 81, 243):
            t = time.perf_counter()
            w = ps.windows(T)
            build_s = time.perf_counter() - t
            n_batches = 20 if T < 243 else 10
            t = time.perf_counter()
            for _ in range(n_batches):
                sel = rng.integers(0, len(w), args.batch)
                rows = w.rows(sel)
                x = ps.kp2d[rows]  # (B, T, 17, 2) gather from the memory map
                y = ps.kp3d[w.target_rows(sel)]
                assert x.shape == (args.batch, T, 17, 2) and y.shape[0] == args.batch
            dt = time.perf_counter() - t
            print(f"T={T:3d}: windows() {1000 * build_s:6.1f} ms for {len(w):,} windows; "
                  f"gather {n_batches * args.batch / dt:,.0f} windows/s "
                  f"({n_batches * args.batch * T / dt / 1e6:.1f} M frames/s), batch {args.batch}")


if __name__ == "__main__":
    main()
