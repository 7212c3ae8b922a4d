"""Wall time, CPU time and peak memory of ``auglift demo`` from scratch (data generation included).

The issue's target: the default demo within 5 minutes wall on 2 CPU cores, venv creation excluded.
Run it on a quiet machine (the demo uses every core torch sees; ``taskset -c 0,1`` pins it to two)::

    taskset -c 0,1 python benchmarks/bench_demo.py            # default size, into a fresh temp dir
    taskset -c 0,1 python benchmarks/bench_demo.py --jobs 1   # the cells one after the other (2 threads each)
    python benchmarks/bench_demo.py --size tiny               # seconds: a smoke check of the script

CPU seconds (user + system of the demo process) are printed as well: on a loaded machine they are
the more comparable number (wall time then mostly measures the other processes). The per-lifter
training and evaluation seconds of the cells (wall, from their ``cell.json``) follow.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="default", choices=("default", "tiny", "full"))
    ap.add_argument("--out", type=Path, default=None, help="run directory (default: a fresh temporary one)")
    ap.add_argument("--jobs", type=int, default=None, help="auglift demo --jobs (default: the demo's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "demo"
        cmd = [sys.executable, "-m", "auglift", "demo", "--out", str(out), "--no-progress"]
        cmd += [] if args.size == "default" else [f"--{args.size}"]
        cmd += [] if args.jobs is None else ["--jobs", str(args.jobs)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"demo failed: {proc.stderr[-2000:]}")
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        data = next((line for line in proc.stderr.splitlines() if "descriptors for outdoor" in line), "")
        print(proc.stdout.rstrip())
        print(f"auglift demo ({args.size}): {wall:.0f} s wall ({wall / 60:.1f} min), "
              f"{ru.ru_utime + ru.ru_stime:.0f} CPU-s, peak RSS {ru.ru_maxrss / 1e6:.2f} GB (largest process); "
              f"{data.strip()}")
        cells: dict[str, list[tuple[float, float]]] = {}
        for path in sorted(out.glob("cells/*/*/*/**/cell.json")):
            info = json.loads(path.read_text())
            cells.setdefault(info["cell"]["lifter"], []).append((info["train_seconds"], info["eval_seconds"]))
        for lifter, times in cells.items():
            tr, ev = (sum(t[i] for t in times) / len(times) for i in (0, 1))
            print(f"  {lifter}: {len(times)} cells, train {tr:.1f} s, evaluation {ev:.1f} s a cell (wall)")


if __name__ == "__main__":
    main()
