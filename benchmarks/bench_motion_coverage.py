"""Benchmark: how much of a reference motion set the world's procedural motion covers.

Reference motion: BVH or ASF/AMC files (``--motion DIR``, ``--motion-map`` for skeletons the
retargeter does not recognise), or by default the motion-capture test fixtures
(``tests/_mocap_fixtures.py``: smooth random joint rotations of up to 40 deg on CMU-BVH, Mixamo
and CMU-ASF skeletons -- a check of joint-angle range, not of human behaviour).
Procedural motion: ``procedural_clips(domain, --frames)`` for each domain, pooled.

* **Pose distance to the nearest neighbour**: every frame becomes root-relative, turned to a
  common heading (the hip line's normal along +x) and rebuilt with one set of bone lengths (the
  procedural medians), so the distance is about pose, not body shape; the distance from each
  reference frame to the nearest procedural frame is the RMS over the 15 body joints (neck/nose
  and head are left out: retargeting places them by convention), in mm (median and 90th
  percentile; lower = covered).
* **Joint angles**: knee and elbow flexion, hip flexion and shoulder elevation (limb against the
  trunk's downward axis), trunk tilt from vertical (degrees): 5/50/95th percentiles of both sets
  and the share of reference frames outside the procedural 1-99% range (left and right pooled).

Usage: ``python benchmarks/bench_motion_coverage.py [--frames 30000] [--motion DIR] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from auglift.datasets.mocap import load_motions
from auglift.datasets.synthetic import DOMAINS
from auglift.datasets.synthetic.motion import heading_of
from auglift.datasets.synthetic.world import procedural_clips
from auglift.skeleton import H36M17

ANGLES = {  # name: (joint a, vertex, joint b) pairs per side; None = trunk-down / world-up axis
    "knee flexion": [(1, 2, 3), (4, 5, 6)],
    "elbow flexion": [(11, 12, 13), (14, 15, 16)],
    "hip flexion": [(None, 1, 2), (None, 4, 5)],
    "shoulder elevation": [(None, 14, 15), (None, 11, 12)],
}


def canonical(joints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``(F, 17, 3)`` world joints -> root-relative, heading-aligned, rebuilt with ``lengths (17,)``."""
    j = joints - joints[:, :1]
    yaw = heading_of(joints)
    j = np.einsum("fij,fkj->fki", Rotation.from_euler("z", -yaw.reshape(-1, 1)).as_matrix(), j)
    out = np.zeros_like(j)
    for child, parent in sorted(H36M17.bones, key=lambda b: _depth(b[0])):
        d = j[:, child] - j[:, parent]
        out[:, child] = out[:, parent] + lengths[child] * d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True),
                                                                         1e-9)
    return out


def _depth(k: int) -> int:
    n = 0
    while H36M17.parents[k] >= 0:
        k, n = H36M17.parents[k], n + 1
    return n


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    c = (u * v).sum(-1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1), 1e-12)
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def joint_angles(j: np.ndarray) -> dict[str, np.ndarray]:
    """Degrees per frame (left and right pooled) of world joints ``(F, 17, 3)`` (z up)."""
    down = j[:, 0] - j[:, 8]
    out = {}
    for name, triples in ANGLES.items():
        out[name] = np.concatenate([_angle(down if a is None else j[:, v] - j[:, a], j[:, b] - j[:, v])
                                    for a, v, b in triples])
    out["trunk tilt"] = _angle(j[:, 8] - j[:, 0], np.array([0.0, 0.0, 1.0]))
    return out


def fixture_library(root: Path) -> Path:
    """Write the motion-capture test fixtures (eight copies of tests/test_mocap_synth.py's library) to ``root``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _mocap_fixtures import write_motion_library  # the tests' writer of real BVH / ASF-AMC files

    return write_motion_library(root, np.random.default_rng(11), copies=8)


BODY = np.array([j for j in range(17) if j not in (9, 10)])  # without neck/nose and head


def coverage(reference: np.ndarray, procedural: np.ndarray, lengths: np.ndarray) -> dict:
    tree = cKDTree(canonical(procedural, lengths)[:, BODY].reshape(len(procedural), -1))
    dist, _ = tree.query(canonical(reference, lengths)[:, BODY].reshape(len(reference), -1), k=1)
    rms = 1000.0 * dist / np.sqrt(len(BODY))
    return {"nn_rms_mm": {"median": float(np.median(rms)), "p90": float(np.percentile(rms, 90))}}


def angle_table(reference: np.ndarray, procedural: np.ndarray) -> dict:
    ra, pa = joint_angles(reference), joint_angles(procedural)
    out = {}
    for name in ra:
        lo, hi = np.percentile(pa[name], [1, 99])
        out[name] = {"reference_p5_50_95": np.percentile(ra[name], [5, 50, 95]).round(1).tolist(),
                     "procedural_p5_50_95": np.percentile(pa[name], [5, 50, 95]).round(1).tolist(),
                     "reference_outside_procedural_1_99": float(np.mean((ra[name] < lo) | (ra[name] > hi)))}
    return out


def report(ref: np.ndarray, proc: dict[str, np.ndarray], source: str, frames: int, gen_s: float) -> dict:
    """All numbers for reference frames ``ref`` and procedural frames per domain ``proc`` (world joints)."""
    pooled = np.concatenate(list(proc.values()))
    lengths = np.zeros(17)
    for child, parent in H36M17.bones:
        lengths[child] = np.median(np.linalg.norm(pooled[:, child] - pooled[:, parent], axis=-1))
    return {"reference": source, "reference_frames": len(ref), "procedural_frames_per_domain": frames,
            "procedural_generation_s": gen_s, "pooled": coverage(ref, pooled, lengths),
            "per_domain": {d: coverage(ref, p, lengths) for d, p in proc.items()},
            "angles": angle_table(ref, pooled)}


def load_reference(args: argparse.Namespace) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        src = args.motion or fixture_library(Path(tmp))
        clips = load_motions(src, fps=30.0, mapping=args.motion_map, up=args.motion_up, units=args.motion_units,
                             height=None if args.motion_keep_size else "auto")
        ref = np.concatenate([c.kp3d for c in clips])
    return ref[np.linspace(0, len(ref) - 1, min(len(ref), args.max_reference)).astype(np.int64)]


def show(report: dict) -> None:
    pc = report["pooled"]["nn_rms_mm"]
    print(f"reference: {report['reference']} ({report['reference_frames']:,} frames); procedural "
          f"{report['procedural_frames_per_domain']:,} motion frames per domain "
          f"({report['procedural_generation_s']:.1f} s)")
    per = ", ".join(f"{d} {v['nn_rms_mm']['median']:.0f}/{v['nn_rms_mm']['p90']:.0f}"
                    for d, v in report["per_domain"].items())
    print(f"pose distance to the nearest procedural frame (RMS over 15 body joints): median {pc['median']:.0f} mm, "
          f"90th pct {pc['p90']:.0f} mm; per domain (median/p90) {per}")
    for name, v in report["angles"].items():
        print(f"  {name:19s} reference 5/50/95 {v['reference_p5_50_95']}, procedural {v['procedural_p5_50_95']}; "
              f"reference outside procedural 1-99%: {v['reference_outside_procedural_1_99']:.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=30_000, help="procedural motion frames per domain")
    ap.add_argument("--motion", type=Path, help="reference BVH/ASF-AMC folder (default: the test fixtures)")
    ap.add_argument("--motion-map", type=Path, help="joint mapping for the reference skeleton")
    ap.add_argument("--motion-up", default="auto", help="up axis of the reference files (default auto)")
    ap.add_argument("--motion-units", default="auto", help="length unit of the reference files (default auto)")
    ap.add_argument("--motion-keep-size", action="store_true", help="keep the files' body size (no height rule)")
    ap.add_argument("--max-reference", type=int, default=20_000, help="reference frames used (evenly spaced)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write all numbers to this JSON file")
    args = ap.parse_args()
    ref = load_reference(args)
    t = time.perf_counter()
    proc = {d: np.concatenate([c.joints for c in procedural_clips(d, args.frames, args.seed)])[::2] for d in DOMAINS}
    out = report(ref, proc, str(args.motion or "tests/_mocap_fixtures.py (random rotations)"), args.frames,
                 time.perf_counter() - t)
    show(out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
