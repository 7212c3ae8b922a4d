"""Benchmark: auglift side by side with the official VideoPose3D and PoseFormer code, same data.

Generates a fake Human3.6M in VideoPose3D's layout (``data/data_3d_h36m.npz`` with 32-joint world
positions, ``data/data_2d_h36m_gt.npz`` with the 2D projections through the real H36M cameras;
training subject S1, test subjects S9 and S11), converts it with ``auglift prepare h36m --layout
videopose3d``, then runs, sides alternated, every process with ``OMP_NUM_THREADS`` threads:

* **TCN-27 training** (filter widths 3,3,3, 1024 channels, batch 1024, flip augmentation):
  VideoPose3D ``run.py -arc 3,3,3 -b 1024 --no-eval`` against ``auglift train`` with the same
  architecture; frames/s of the second epoch (the first one warms up), each side's own epoch
  clock (training loop only);
* **PoseFormer-27 training** (batch 512): PoseFormer ``run_poseformer.py -frame 27 -b 512
  --no-eval`` (its ``--subset`` keeps the epoch short) against ``auglift train`` with
  ``poseformer`` at 27 frames and a matching ``optim.steps_per_epoch``; first epochs on both
  sides (the original cannot run a second epoch with ``--no-eval``: its best-checkpoint logic
  reads an empty validation list after printing the first epoch's time);
* **TCN-27 evaluation with flip test** on ``--eval-frames`` test frames, whole process
  (interpreter start to exit): ``run.py --evaluate`` on the checkpoint its training run wrote,
  against ``auglift eval`` on the checkpoint of auglift's run; frames/s and peak resident memory
  (``/usr/bin/time``).

The official code is run unchanged from the checkouts given (``--videopose3d``, ``--poseformer``;
e.g. ``git --git-dir=.../VideoPose3D.git worktree add /tmp/vp3d HEAD``), with ``--official-python``
(an environment with torch, numpy, matplotlib, and einops + timm for PoseFormer; default: this
interpreter). The project runs through its CLI (``auglift`` of this environment). Usage::

    python benchmarks/bench_vs_official.py --videopose3d /tmp/vp3d --poseformer /tmp/poseformer \\
        --official-python /tmp/offvenv/bin/python [--reps 2] [--only tcn,poseformer,eval]
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import _dataset_fixtures as fx  # the H36M layout writer of the tests: real cameras, VideoPose3D's format

TCN_TOML = """
[data.train]
path = "{ps}"
split = "train"
subjects = ["S1"]
[model]
name = "tcn"
[model.kwargs]
receptive_field = 27
channels = 1024
dropout = 0.25
[input]
channels = "xy"
[optim]
optimizer = "adam"
amsgrad = true
lr = 1e-3
lr_decay = 0.95
epochs = 2
batch_size = 1024
bn_momentum = 0.1
bn_momentum_final = 0.001
[augment]
flip = true
[runtime]
threads = {threads}
progress = false
"""

POSEFORMER_TOML = """
[data.train]
path = "{ps}"
split = "train"
subjects = ["S1"]
[model]
name = "poseformer"
[model.kwargs]
receptive_field = 27
embed_dim_ratio = 32
depth = 4
num_heads = 8
drop_path_rate = 0.1
[input]
channels = "xy"
[optim]
optimizer = "adamw"
lr = 1e-4
weight_decay = 0.05
lr_decay = 0.98
epochs = 1
batch_size = 512
steps_per_epoch = {steps}
[augment]
flip = true
[runtime]
threads = {threads}
progress = false
"""


def write_data(root: Path, train_frames: int, eval_frames: int) -> tuple[int, int]:
    """The fake dataset: S1 x 2 actions x 4 cameras for training, S9/S11 x 2 actions x 4 cameras
    for testing, and a short S5 sequence that the official training runs evaluate on when they
    finish (they always do); returns the frames per training and per test sequence."""
    f_train = max(64, train_frames // 8)
    f_test = max(64, eval_frames // 16)
    fx.write_h36m_vp3d(root / "train_part", subjects=("S1",), actions=("Walking", "Eating"), frames=f_train,
                       detections=None, seed=1)
    fx.write_h36m_vp3d(root / "short_part", subjects=("S5",), actions=("Walking",), frames=64, detections=None,
                       seed=3)
    fx.write_h36m_vp3d(root / "test_part", subjects=("S9", "S11"), actions=("Walking", "Eating"), frames=f_test,
                       detections=None, seed=2)
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, key in (("data_3d_h36m.npz", "positions_3d"), ("data_2d_h36m_gt.npz", "positions_2d")):
        a = np.load(root / "train_part" / name, allow_pickle=True)  # our own files, just written
        b = np.load(root / "test_part" / name, allow_pickle=True)
        c = np.load(root / "short_part" / name, allow_pickle=True)
        merged = {**a[key].item(), **b[key].item(), **c[key].item()}
        extra = {"metadata": a["metadata"]} if "metadata" in a.files else {}
        np.savez(data / name, **{key: merged}, **extra)
    return f_train, f_test


def run(cmd: list[str], cwd: Path, threads: int, log: Path, pythonpath: str | None = None,
        tolerate: str | None = None) -> tuple[float, float, str, float]:
    """Run ``cmd`` under ``/usr/bin/time``; returns (wall s, peak RSS MiB, output, CPU s: user + system).
    A failing process whose output contains ``tolerate`` counts as finished."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    # VideoPose3D's checkpoints hold a NumPy RandomState, which torch >= 2.6's default
    # torch.load(weights_only=True) refuses; these are files its own training run just wrote
    env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    rss = log.with_suffix(".rss")
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", str(rss), *cmd], cwd=cwd, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    log.write_text(out)
    if proc.returncode != 0 and not (tolerate and tolerate in out):
        raise SystemExit(f"bench_vs_official: {' '.join(cmd[:3])} ... failed (exit {proc.returncode}); see {log}")
    peak, user, system = rss.read_text().split()[-3:]
    return wall, int(peak) / 1024.0, out, float(user) + float(system)


def official_epoch_fps(out: str) -> float:
    """Frames/s of the last epoch from VideoPose3D/PoseFormer output ('Training on N frames',
    '[e] time MINUTES ...'). The 2-decimal minute clock is the originals' own."""
    n = int(re.search(r"Training on (\d+) frames", out).group(1))
    minutes = float(re.findall(r"^\[\d+\] time ([\d.]+)", out, re.M)[-1])
    return n / max(minutes * 60.0, 1e-9)


def auglift_epoch_fps(run_dir: Path) -> float:
    """Samples/s of the last epoch from the run's ``history.csv`` (training loop only)."""
    with open(run_dir / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return float(rows[-1]["samples_per_s"])


def checkout(src: Path, work: Path, name: str) -> Path:
    """A fresh copy of the official checkout with ``data`` pointing at the generated dataset."""
    dst = work / name
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".git", "data", "checkpoint"))
    (dst / "data").symlink_to(work / "data")
    return dst


def evaluable_checkpoint(chk_dir: Path) -> str:
    """VideoPose3D's ``--evaluate`` loads ``model_traj`` whenever the key exists, but a supervised
    run saves it as ``None``: write ``eval.bin`` without that key (the weights are unchanged)."""
    import torch  # only here: the rest of the script drives processes

    chk = torch.load(chk_dir / "epoch_1.bin", map_location="cpu", weights_only=False)  # its own fresh file
    if chk.get("model_traj") is None:
        chk.pop("model_traj", None)
    torch.save(chk, chk_dir / "eval.bin")
    return "eval.bin"


def spread(vals: list[float]) -> str:
    med = statistics.median(vals)
    return f"{med:,.0f} ({min(vals):,.0f}-{max(vals):,.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videopose3d", type=Path, help="checkout of facebookresearch/VideoPose3D")
    ap.add_argument("--poseformer", type=Path, help="checkout of zczcwh/PoseFormer")
    ap.add_argument("--official-python", default=sys.executable, help="interpreter for the official code")
    ap.add_argument("--official-pythonpath", help="PYTHONPATH for the official code's processes")
    ap.add_argument("--auglift", default=str(Path(sys.executable).with_name("auglift")), help="the auglift CLI")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2, help="repetitions per side (sides alternate)")
    ap.add_argument("--train-frames", type=int, default=16384, help="TCN training frames per epoch")
    ap.add_argument("--poseformer-frames", type=int, default=2048, help="PoseFormer training frames per epoch")
    ap.add_argument("--eval-frames", type=int, default=65536, help="test frames (S9 + S11)")
    ap.add_argument("--only", default="tcn,poseformer,eval", help="comma-separated: tcn, poseformer, eval")
    ap.add_argument("--work", type=Path, help="work directory (default: a temporary one, removed)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if args.videopose3d is None and args.poseformer is None:  # e.g. under run_all.py (make bench)
        print("bench_vs_official: needs the official checkouts (--videopose3d PATH --poseformer PATH); not run")
        return
    if ({"tcn", "eval"} & only and args.videopose3d is None) or ("poseformer" in only and args.poseformer is None):
        ap.error("--videopose3d is needed for tcn/eval, --poseformer for poseformer")
    tmp = None if args.work else tempfile.TemporaryDirectory()
    work = args.work or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    f_train, f_test = write_data(work, args.train_frames, args.eval_frames)
    subprocess.run([args.auglift, "prepare", "h36m", "--layout", "videopose3d", "--keypoints", "gt", "--root",
                    str(work / "data"), "--out", str(work / "ps"), "--no-progress"], check=True, capture_output=True)
    ps_train, ps_test = work / "ps" / "train", work / "ps" / "test"
    print(f"data: train S1 2 actions x 4 cameras x {f_train} frames = {8 * f_train:,}; test S9+S11 x 2 actions x "
          f"4 cameras x {f_test} = {16 * f_test:,} frames; OMP_NUM_THREADS={args.threads}; {args.reps} reps per "
          f"side, sides alternated; load average at start {os.getloadavg()[0]:.1f}", flush=True)
    res: dict[str, dict[str, list[float]]] = {}

    def add(key: str, side: str, val: float) -> None:
        res.setdefault(key, {}).setdefault(side, []).append(val)

    th, opp = args.threads, args.official_pythonpath
    vp = checkout(args.videopose3d, work, "vp3d") if {"tcn", "eval"} & only else None
    pf = checkout(args.poseformer, work, "poseformer") if "poseformer" in only else None
    for rep in range(args.reps):
        order = ("official", "auglift") if rep % 2 == 0 else ("auglift", "official")
        for side in order:
            if {"tcn", "eval"} & only and side == "official":
                _, _, out, _ = run([args.official_python, "run.py", "-k", "gt", "-arc", "3,3,3", "-b", "1024",
                                    "-e", "2", "--no-eval", "-str", "S1", "-ste", "S5", "-c", "checkpoint",
                                 "--checkpoint-frequency", "1"], vp, th, work / f"vp_train{rep}.log", opp)
                add("tcn_train_fps", side, official_epoch_fps(out))
            if {"tcn", "eval"} & only and side == "auglift":
                cfg = work / "tcn.toml"
                cfg.write_text(TCN_TOML.format(ps=ps_train, threads=th))
                run_dir = work / f"run_tcn{rep}"
                run([args.auglift, "train", str(cfg), "--out", str(run_dir)], work, th, work / f"au_train{rep}.log")
                add("tcn_train_fps", side, auglift_epoch_fps(run_dir))
            if "poseformer" in only and side == "official":
                subset = min(1.0, args.poseformer_frames / (8 * f_train))
                # one epoch: with --no-eval the original fails after its first epoch, in its best-checkpoint
                # logic (losses_3d_valid is empty), after printing the epoch's time
                _, _, out, _ = run([args.official_python, "run_poseformer.py", "-k", "gt", "-frame", "27", "-b", "512",
                                 "-e", "1", "--no-eval", "-str", "S1", "-ste", "S5", "-c", "checkpoint",
                                 "--subset", f"{subset:.6f}"], pf, th, work / f"pf_train{rep}.log", opp,
                                tolerate="losses_3d_valid[-1]")
                add("poseformer_train_fps", side, official_epoch_fps(out))
            if "poseformer" in only and side == "auglift":
                cfg = work / "poseformer.toml"
                cfg.write_text(POSEFORMER_TOML.format(ps=ps_train, threads=th,
                                                      steps=max(1, args.poseformer_frames // 512)))
                run_dir = work / f"run_pf{rep}"
                run([args.auglift, "train", str(cfg), "--out", str(run_dir)], work, th, work / f"au_pf{rep}.log")
                add("poseformer_train_fps", side, auglift_epoch_fps(run_dir))
            if "eval" in only and side == "official":
                wall, rss, _, cpu = run([args.official_python, "run.py", "-k", "gt", "-arc", "3,3,3", "-str", "S1",
                                    "-ste", "S9,S11", "-c", "checkpoint", "--evaluate",
                                    evaluable_checkpoint(vp / "checkpoint")], vp, th,
                                   work / f"vp_eval{rep}.log", opp)
                add("tcn_eval_fps", side, 16 * f_test / wall)
                add("tcn_eval_cpu", side, 16 * f_test / cpu)
                add("tcn_eval_rss", side, rss)
            if "eval" in only and side == "auglift":
                wall, rss, _, cpu = run([args.auglift, "eval", str(work / f"run_tcn{rep}" / "best.pt"), "--data",
                                    str(ps_test)], work, th, work / f"au_eval{rep}.log")
                add("tcn_eval_fps", side, 16 * f_test / wall)
                add("tcn_eval_cpu", side, 16 * f_test / cpu)
                add("tcn_eval_rss", side, rss)
        print(f"rep {rep + 1}/{args.reps} done", flush=True)
    print("\n| measure | auglift | official | ratio (median) |\n|---|---:|---:|---:|")
    labels = {"tcn_train_fps": "TCN-27 training, frames/s (official: VideoPose3D)",
              "poseformer_train_fps": "PoseFormer-27 training, frames/s (official: PoseFormer)",
              "tcn_eval_fps": f"TCN-27 evaluation + flip test, {16 * f_test:,} frames, whole process, frames/s",
              "tcn_eval_cpu": "TCN-27 evaluation + flip test, frames per CPU second (user + system)",
              "tcn_eval_rss": "TCN-27 evaluation, peak memory, MiB"}
    for key, label in labels.items():
        if key in res:
            a, o = res[key]["auglift"], res[key]["official"]
            print(f"| {label} | {spread(a)} | {spread(o)} | {statistics.median(a) / statistics.median(o):.2f} |")
    print(f"(median (min-max) of {args.reps} runs per side; load average at the end {os.getloadavg()[0]:.1f})")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
