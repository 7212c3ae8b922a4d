"""Benchmark: motion-capture reading, forward kinematics and retargeting throughput (frames/s).

Writes a CMU-style BVH (32 joints with end sites, 84 channels, 120 fps) and a CMU-style
ASF/AMC pair (26 bones) of ``--frames`` frames to a temporary directory, then times

* ``read_bvh`` / AMC parsing (text -> channel arrays);
* ``to_motion`` / ``load_amc`` (Euler angles -> local rotation matrices, scipy);
* ``forward_kinematics`` (batched over frames and tree levels), against a naive per-frame,
  per-joint loop on a slice for comparison;
* ``resample`` 120 -> 30 and 120 -> 50 fps (slerp) and the whole ``load_motion`` (read, FK,
  retarget to H36M-17 at 30 fps).

Usage: ``python benchmarks/bench_mocap.py [--frames 20000]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from auglift.datasets.mocap import (
    Skeleton,
    format_bvh,
    forward_kinematics,
    load_amc,
    load_motion,
    read_bvh,
    resample,
    to_motion,
)
from auglift.datasets.mocap.asf_amc import parse_amc, read_asf

# CMU-BVH-like tree: (name, parent, offset in CMU units ~ 5.6 cm)
TREE = [
    ("Hips", -1, (0, 0, 0)), ("LHipJoint", 0, (0, 0, 0)), ("LeftUpLeg", 1, (1.6, -1.1, 0.8)),
    ("LeftLeg", 2, (2.4, -6.5, 0)), ("LeftFoot", 3, (2.5, -7.0, 0)), ("LeftToeBase", 4, (0.2, -0.4, 1.9)),
    ("LeftToeBase_end", 5, (0, 0, 1.0)), ("RHipJoint", 0, (0, 0, 0)), ("RightUpLeg", 7, (-1.6, -1.1, 0.8)),
    ("RightLeg", 8, (-2.4, -6.5, 0)), ("RightFoot", 9, (-2.5, -7.0, 0)), ("RightToeBase", 10, (-0.2, -0.4, 1.9)),
    ("RightToeBase_end", 11, (0, 0, 1.0)), ("LowerBack", 0, (0, 0, 0)), ("Spine", 13, (0, 2.0, 0)),
    ("Spine1", 14, (0, 2.0, 0)), ("Neck", 15, (0, 2.0, 0)), ("Neck1", 16, (0, 1.6, 0)), ("Head", 17, (0, 1.6, 0)),
    ("Head_end", 18, (0, 3.0, 0)), ("LeftShoulder", 15, (0, 2.0, 0)), ("LeftArm", 20, (3.4, 0, 0)),
    ("LeftForeArm", 21, (5.0, 0, 0)), ("LeftHand", 22, (4.4, 0, 0)), ("LeftFingerBase", 23, (0.7, 0, 0)),
    ("LeftFingerBase_end", 24, (0.8, 0, 0)), ("RightShoulder", 15, (0, 2.0, 0)), ("RightArm", 26, (-3.4, 0, 0)),
    ("RightForeArm", 27, (-5.0, 0, 0)), ("RightHand", 28, (-4.4, 0, 0)), ("RightFingerBase", 29, (-0.7, 0, 0)),
    ("RightFingerBase_end", 30, (-0.8, 0, 0)),
]

ASF_BONES = [  # (name, parent, direction, length in CMU units, axis, dof)
    ("lhipjoint", "root", (0.6, -0.7, 0.38), 2.3, "0 0 0", ""),
    ("lfemur", "lhipjoint", (0.34, -0.94, 0), 7.4, "0 0 20", "rx ry rz"),
    ("ltibia", "lfemur", (0.34, -0.94, 0), 7.3, "0 0 20", "rx"),
    ("lfoot", "ltibia", (0, 0, 1), 2.3, "-90 7 20", "rx rz"), ("ltoes", "lfoot", (0, 0, 1), 1.1, "-90 7 20", "rx"),
    ("rhipjoint", "root", (-0.6, -0.7, 0.38), 2.3, "0 0 0", ""),
    ("rfemur", "rhipjoint", (-0.34, -0.94, 0), 7.4, "0 0 -20", "rx ry rz"),
    ("rtibia", "rfemur", (-0.34, -0.94, 0), 7.3, "0 0 -20", "rx"),
    ("rfoot", "rtibia", (0, 0, 1), 2.3, "-90 -7 -20", "rx rz"), ("rtoes", "rfoot", (0, 0, 1), 1.1, "-90 -7 -20", "rx"),
    ("lowerback", "root", (0, 1, 0), 2.0, "0 0 0", "rx ry rz"), ("upperback", "lowerback", (0, 1, 0), 2.1, "0 0 0",
                                                                   "rx ry rz"),
    ("thorax", "upperback", (0, 1, 0), 2.1, "0 0 0", "rx ry rz"), ("lowerneck", "thorax", (0, 1, 0), 1.8, "0 0 0",
                                                                    "rx ry rz"),
    ("upperneck", "lowerneck", (0, 1, 0), 1.8, "0 0 0", "rx ry rz"), ("head", "upperneck", (0, 1, 0), 1.8, "0 0 0",
                                                                       "rx ry rz"),
    ("lclavicle", "thorax", (0.9, 0.1, 0), 3.2, "0 0 -30", "ry rz"),
    ("lhumerus", "lclavicle", (1, 0, 0), 5.0, "0 0 -90", "rx ry rz"), ("lradius", "lhumerus", (1, 0, 0), 4.4,
                                                                        "0 0 -90", "rx"),
    ("lwrist", "lradius", (1, 0, 0), 0.5, "0 0 -90", "ry"), ("lhand", "lwrist", (1, 0, 0), 1.4, "0 0 -90", "rx rz"),
    ("rclavicle", "thorax", (-0.9, 0.1, 0), 3.2, "0 0 30", "ry rz"),
    ("rhumerus", "rclavicle", (-1, 0, 0), 5.0, "0 0 90", "rx ry rz"), ("rradius", "rhumerus", (-1, 0, 0), 4.4,
                                                                        "0 0 90", "rx"),
    ("rwrist", "rradius", (-1, 0, 0), 0.5, "0 0 90", "ry"), ("rhand", "rwrist", (-1, 0, 0), 1.4, "0 0 90", "rx rz"),
]


def write_bvh_file(path: Path, frames: int, rng: np.random.Generator) -> None:
    names = tuple(n for n, _, _ in TREE)
    sk = Skeleton(names, np.array([p for _, p, _ in TREE]), np.array([o for _, _, o in TREE], float),
                  np.array([n.endswith("_end") for n in names]), tuple(range(1, len(TREE) + 1)))
    rot = ("Zrotation", "Yrotation", "Xrotation")
    chans = [("Xposition", "Yposition", "Zposition", *rot)] + [() if e else rot for e in sk.end_site[1:]]
    n_cols = sum(len(c) for c in chans)
    t = np.arange(frames)[:, None] / 120.0
    data = 40 * np.sin(2 * np.pi * rng.uniform(0.2, 2, n_cols) * t + rng.uniform(0, 6, n_cols))
    data[:, 1] = 17.0
    path.write_text(format_bvh(sk, chans, data, 1 / 120))


def write_asf_amc(asf: Path, amc: Path, frames: int, rng: np.random.Generator) -> None:
    lines = [":version 1.10", ":name VICON", ":units", "  mass 1.0", "  length 0.45", "  angle deg",
             ":root", "   order TX TY TZ RX RY RZ", "   axis XYZ", "   position 0 0 0", "   orientation 0 0 0",
             ":bonedata"]
    for i, (name, _, d, length, axis, dof) in enumerate(ASF_BONES):
        d = np.asarray(d) / np.linalg.norm(d)
        lines += ["  begin", f"     id {i + 1}", f"     name {name}", "     direction " + " ".join(map(str, d)),
                  f"     length {length}", f"     axis {axis} XYZ"] + ([f"    dof {dof}"] if dof else []) + ["  end"]
    lines += [":hierarchy", "  begin"]
    kids: dict[str, list[str]] = {}
    for name, parent, *_ in ASF_BONES:
        kids.setdefault(parent, []).append(name)
    lines += [f"    {p} {' '.join(c)}" for p, c in kids.items()] + ["  end", ""]
    asf.write_text("\n".join(lines))
    t = np.arange(frames)[:, None] / 120.0
    block = [("root", 6)] + [(n, len(dof.split())) for n, _, _, _, _, dof in ASF_BONES if dof]
    n_cols = sum(k for _, k in block)
    vals = 30 * np.sin(2 * np.pi * rng.uniform(0.2, 2, n_cols) * t + rng.uniform(0, 6, n_cols))
    vals[:, 1] = 17.0
    out = [":FULLY-SPECIFIED", ":DEGREES"]
    for f in range(frames):
        out.append(str(f + 1))
        c = 0
        for name, k in block:
            out.append(name + " " + " ".join(f"{v:.5f}" for v in vals[f, c:c + k]))
            c += k
    amc.write_text("\n".join(out) + "\n")


def naive_fk(rot: np.ndarray, tr: np.ndarray, parents: np.ndarray) -> np.ndarray:
    out = np.zeros(tr.shape)
    for f in range(rot.shape[0]):
        Rw = [None] * len(parents)
        for k, p in enumerate(parents):
            if p < 0:
                Rw[k], out[f, k] = rot[f, k], tr[f, k]
            else:
                Rw[k] = Rw[p] @ rot[f, k]
                out[f, k] = out[f, p] + Rw[p] @ tr[f, k]
    return out


def timed(fn, repeat: int = 3):
    best, res = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t)
    return best, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20_000)
    args = ap.parse_args()
    n = args.frames
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        bvh = Path(tmp) / "cmu.bvh"
        write_bvh_file(bvh, n, rng)
        mb = bvh.stat().st_size / 1e6
        dt, parsed = timed(lambda: read_bvh(bvh))
        print(f"BVH {n:,} frames x {parsed.frames.shape[1]} channels ({mb:.1f} MB), "
              f"{parsed.skeleton.num_joints} joints incl. end sites")
        print(f"  read_bvh (parse)          {dt:7.3f} s  {n / dt:12,.0f} frames/s")
        dt, motion = timed(lambda: to_motion(parsed))
        print(f"  to_motion (Euler->matrix) {dt:7.3f} s  {n / dt:12,.0f} frames/s")
        dt, pos = timed(lambda: forward_kinematics(motion.rotations, motion.translations, motion.skeleton))
        print(f"  forward_kinematics        {dt:7.3f} s  {n / dt:12,.0f} frames/s "
              f"({n * motion.skeleton.num_joints / dt / 1e6:.1f} M joints/s)")
        m = min(n, 500)
        dtn, ref = timed(lambda: naive_fk(motion.rotations[:m], motion.translations[:m], motion.skeleton.parents), 1)
        assert np.allclose(ref, pos[:m])
        print(f"  naive per-frame/joint FK  {dtn:7.3f} s  {m / dtn:12,.0f} frames/s  (on {m} frames; "
              f"batched is {(n / dt) / (m / dtn):.0f}x faster)")
        for fps in (30.0, 50.0):
            dt, _ = timed(lambda fps=fps: resample(motion, fps))
            print(f"  resample 120 -> {fps:2.0f} fps     {dt:7.3f} s  {n / dt:12,.0f} input frames/s")
        dt, clip = timed(lambda: load_motion(bvh, fps=30), 1)
        print(f"  load_motion (all, 30 fps) {dt:7.3f} s  {n / dt:12,.0f} input frames/s -> {clip.kp3d.shape}")

        asf, amc = Path(tmp) / "86.asf", Path(tmp) / "86_01.amc"
        write_asf_amc(asf, amc, n, rng)
        skel = read_asf(asf)
        text = amc.read_text()
        print(f"ASF/AMC {n:,} frames, {len(skel.bones)} bones ({amc.stat().st_size / 1e6:.1f} MB)")
        dt, _ = timed(lambda: parse_amc(text, skel, amc))
        print(f"  parse_amc                 {dt:7.3f} s  {n / dt:12,.0f} frames/s")
        dt, am = timed(lambda: load_amc(amc, skel))
        print(f"  load_amc (parse+matrices) {dt:7.3f} s  {n / dt:12,.0f} frames/s")
        dt, _ = timed(lambda: forward_kinematics(am.rotations, am.translations, am.skeleton))
        print(f"  forward_kinematics        {dt:7.3f} s  {n / dt:12,.0f} frames/s "
              f"({n * am.skeleton.num_joints / dt / 1e6:.1f} M joints/s)")
        dt, clip = timed(lambda: load_motion(amc, fps=30), 1)
        print(f"  load_motion (all, 30 fps) {dt:7.3f} s  {n / dt:12,.0f} input frames/s -> {clip.kp3d.shape}")


if __name__ == "__main__":
    main()
