"""Benchmark: the flip convention, image-centre mirroring (VideoPose3D, PoseFormer, MotionBERT) against
mirroring around the root joint, in identical trainings.

Generates one synthetic PoseSet (``auglift synth``, lab domain: train and test clips), then trains the
same TCN (``--receptive-field``, ``--channels``, 2D detections as input, flip augmentation and flip
test) with ``augment.flip_center = "image"`` and ``"root"`` for every seed, sides alternated, and
prints the validation MPJPE / P-MPJPE (mm) of the last epoch of each run and the mean per convention.
Usage: ``python benchmarks/bench_flip_center.py [--frames 20000] [--epochs 4] [--seeds 0,1]``
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIG = """
[data.train]
path = "{ps}"
split = "train"
[data.val]
path = "{ps}"
split = "test"
[model]
name = "tcn"
[model.kwargs]
receptive_field = {rf}
channels = {channels}
dropout = 0.25
[input]
channels = "xy"
[optim]
optimizer = "adam"
amsgrad = true
lr = 1e-3
lr_decay = 0.95
epochs = {epochs}
batch_size = 512
[augment]
flip = true
flip_test = true
flip_center = "{center}"
[runtime]
seed = {seed}
threads = 2
progress = false
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--receptive-field", type=int, default=27)
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--work", type=Path, help="work directory (default: a temporary one)")
    args = ap.parse_args()
    tmp = None if args.work else tempfile.TemporaryDirectory()
    work = args.work or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "auglift"]
    ps = work / "lab"
    if not ps.exists():
        subprocess.run([*cli, "synth", "--domain", "lab", "--frames", str(args.frames), "--out", str(ps),
                        "--no-progress"], check=True, capture_output=True)
    res: dict[str, list[tuple[float, float]]] = {"image": [], "root": []}
    for i, seed in enumerate(int(s) for s in args.seeds.split(",")):
        for center in (("image", "root") if i % 2 == 0 else ("root", "image")):
            cfg = work / f"{center}{seed}.toml"
            cfg.write_text(CONFIG.format(ps=ps, rf=args.receptive_field, channels=args.channels, epochs=args.epochs,
                                         center=center, seed=seed))
            out = work / f"run_{center}{seed}"
            subprocess.run([*cli, "train", str(cfg), "--out", str(out)], check=True, capture_output=True)
            with open(out / "history.csv", newline="") as f:
                last = list(csv.DictReader(f))[-1]
            res[center].append((float(last["val_mpjpe_mm"]), float(last["val_p_mpjpe_mm"])))
            print(f"seed {seed} flip_center {center:<5}: val MPJPE {res[center][-1][0]:.1f} mm, "
                  f"P-MPJPE {res[center][-1][1]:.1f} mm", flush=True)
    for center, v in res.items():
        print(f"flip_center {center:<5}: mean val MPJPE {statistics.mean(a for a, _ in v):.1f} mm, "
              f"P-MPJPE {statistics.mean(b for _, b in v):.1f} mm over {len(v)} seeds")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
