"""Benchmark: training throughput with and without one competing CPU-bound process, per torch thread count
and OpenMP wait policy (issue 15 item 18).

Each measurement is a fresh child process (the OpenMP runtime reads ``OMP_WAIT_POLICY`` once, when torch
loads it) that trains SimpleBaseline (width 1024, 2 blocks, the ``uadd`` input: 6 channels x 17 joints)
on random batches of 512 windows: forward, MPJPE, backward, Adam, for ``--seconds`` after 3 warm-up
steps, and prints samples/s. "Contended" runs start one busy process (a Python spin loop) first and
stop it afterwards.

Wait policies:

* ``auglift`` -- what ``import auglift`` does when the variable is unset: ``OMP_WAIT_POLICY=PASSIVE``
  (the child imports auglift before torch, as the ``auglift`` command does);
* ``libgomp`` -- the OpenMP runtime's own default (variable unset, torch imported first);
* ``ACTIVE`` / ``PASSIVE`` -- set explicitly.

The table gives samples/s quiet and contended and their ratio; a default that "collapses" is one whose
contended throughput falls far below the best contended configuration.

Usage: ``python benchmarks/bench_contention.py [--seconds 5] [--threads 1,2,4] [--policies auglift,libgomp]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time

CHILD = textwrap.dedent("""
    import json, os, sys, time
    if sys.argv[1] == "auglift":
        import auglift  # sets OMP_WAIT_POLICY=PASSIVE when unset, before torch loads OpenMP
    import torch
    from auglift.models import build
    threads, seconds = int(sys.argv[2]), float(sys.argv[3])
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build("simple_baseline", 6, 17, width=1024, num_blocks=2, dropout=0.25)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(512, 1, 17, 6), torch.randn(512, 1, 17, 3)

    def step():
        loss = (model(x) - y).norm(dim=-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    dt = time.perf_counter() - t0
    print(json.dumps({"samples_per_s": n * 512 / dt, "threads": torch.get_num_threads(),
                      "policy": os.environ.get("OMP_WAIT_POLICY")}))
""")

BUSY = "while True: pass"


def measure(policy: str, threads: int, seconds: float, contended: bool) -> dict[str, float]:
    env = dict(os.environ)
    for v in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOMP_SPINCOUNT"):
        env.pop(v, None)
    if policy in ("ACTIVE", "PASSIVE"):
        env["OMP_WAIT_POLICY"] = policy
    busy = subprocess.Popen([sys.executable, "-c", BUSY]) if contended else None
    try:
        time.sleep(0.2 if busy else 0.0)
        out = subprocess.run([sys.executable, "-c", CHILD, policy, str(threads), str(seconds)], env=env,
                             capture_output=True, text=True, check=True)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per measurement")
    ap.add_argument("--threads", default=f"1,2,{os.cpu_count()}", help="torch thread counts (0: torch's default)")
    ap.add_argument("--policies", default="auglift,libgomp,ACTIVE,PASSIVE")
    args = ap.parse_args()
    threads = sorted({int(t) for t in args.threads.split(",")})
    print(f"SimpleBaseline-1024 training, batch 512; {os.cpu_count()} CPUs; one busy process when contended")
    print(f"{'policy':<9} {'threads':>7} {'quiet':>12} {'contended':>12} {'ratio':>6}")
    for policy in args.policies.split(","):
        for t in threads:
            quiet = measure(policy, t, args.seconds, False)
            busy = measure(policy, t, args.seconds, True)
            q, b = quiet["samples_per_s"], busy["samples_per_s"]
            print(f"{policy:<9} {quiet['threads']:>7} {q:>12,.0f} {b:>12,.0f} {b / q:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
