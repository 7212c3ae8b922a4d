"""Benchmark: dataset conversion and detection-import throughput on synthetic fixtures in the real formats.

Writes fixtures of about ``--frames`` frames (default 100,000) per format with the test suite's
writers (``tests/_dataset_fixtures.py``), then times

* ``convert`` (reading the source files, camera transforms, joint mapping, assembly and
  validation into an in-memory PoseSet) and ``save`` for Human3.6M (MMPose and VideoPose3D
  layouts), MPI-INF-3DHP (annot.mat v5 training + annot_data.mat v7.3 test), 3DPW and Fit3D;
* ``auglift detections import`` of a COCO result JSON (one to three people per frame, matched
  by file name) and of an ``.npy`` array.

Fixture writing is not timed. Usage: ``python benchmarks/bench_prepare.py [--frames 100000]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import _dataset_fixtures as fx
from auglift.datasets import fit3d, h36m, mpi_inf_3dhp, pw3d
from auglift.datasets.detections import import_detections
from auglift.poseset import PoseSet


def timed(fn: Callable[[], Any], repeat: int = 2) -> tuple[Any, float]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def report(name: str, ps: PoseSet, t_conv: float, t_save: float) -> dict[str, Any]:
    n = len(ps)
    print(f"{name:<28} {n:>8,} frames {len(ps.clips):>5} clips  convert {t_conv:6.2f} s "
          f"({n / t_conv / 1e3:7.1f} k frames/s)  save {t_save:5.2f} s", flush=True)
    return {"name": name, "frames": n, "clips": len(ps.clips), "convert_s": round(t_conv, 3),
            "frames_per_s": round(n / t_conv), "save_s": round(t_save, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args()
    N = args.frames
    results = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)

        # Human3.6M, MMPose layout: 2 subjects x 4 actions x 4 cameras per split
        per = N // 32
        fx.write_h36m_mmpose(tmp / "mm", splits={"train": ["S1", "S5"]}, frames=per)
        ps, tc = timed(lambda: h36m.convert(tmp / "mm", layout="mmpose", progress_bar=False))
        _, ts = timed(lambda: ps.save(tmp / "out_mm"), 1)
        results.append(report("h36m mmpose", ps, tc, ts))

        # Human3.6M, VideoPose3D layout (+ detections): 3 subjects x A actions x 4 cameras
        n_act = 5
        per = N // (3 * n_act * 4)
        fx.write_h36m_vp3d(tmp / "vp", actions=tuple(f"Walking {i}" for i in range(n_act)), frames=per)
        ps, tc = timed(lambda: h36m.convert(tmp / "vp", layout="videopose3d", keypoints="cpn_ft_h36m_dbb",
                                            progress_bar=False))
        _, ts = timed(lambda: ps.save(tmp / "out_vp"), 1)
        results.append(report("h36m videopose3d +cpn", ps, tc, ts))

        # MPI-INF-3DHP raw: one training sequence (8 of 14 cameras used; S1 Seq2's video has 12,430
        # frames, longer annotations are trimmed to it) + two v7.3 test sequences
        per = int(N * 0.8) // 8
        fx.write_3dhp_train(tmp / "hp", "S1", "Seq2", frames=per)
        fx.write_3dhp_test(tmp / "hp", "TS1", frames=N // 10)
        fx.write_3dhp_test(tmp / "hp", "TS5", frames=N // 10, seed=1)
        ps, tc = timed(lambda: mpi_inf_3dhp.convert(tmp / "hp", test_frames="all", progress_bar=False))
        _, ts = timed(lambda: ps.save(tmp / "out_hp"), 1)
        results.append(report("mpi_inf_3dhp raw (v5+v7.3)", ps, tc, ts))

        # 3DPW: 10 sequences x 2 people
        per = N // 20
        for i in range(10):
            fx.write_3dpw(tmp / "pw", "test", f"seq_{i:02d}", frames=per, seed=i)
        ps, tc = timed(lambda: pw3d.convert(tmp / "pw", progress_bar=False))
        _, ts = timed(lambda: ps.save(tmp / "out_pw"), 1)
        results.append(report("3dpw", ps, tc, ts))

        # Fit3D: 2 subjects x 4 actions x 4 cameras
        per = N // 32
        fx.write_fit3d(tmp / "fit", subjects=(("train", "s03"), ("train", "s10")),
                       actions=("a", "b", "c", "d"), cameras=("c1", "c2", "c3", "c4"), frames=per)
        ps, tc = timed(lambda: fit3d.convert(tmp / "fit", progress_bar=False))
        _, ts = timed(lambda: ps.save(tmp / "out_fit"), 1)
        results.append(report("fit3d", ps, tc, ts))

        # detections: COCO results matched by file name on a 100k-frame image-pattern PoseSet
        clips = 20
        base = fx.image_poseset(n_clips=clips, frames=N // clips)
        base.save(tmp / "det_ps")
        rng = np.random.default_rng(0)
        n = len(base)
        people = rng.integers(1, 4, n)
        row = np.repeat(np.arange(n), people)
        kps = np.concatenate([rng.uniform(0, 1000, (len(row), 17, 2)), rng.uniform(0.1, 1, (len(row), 17, 1))], -1)
        names = [f"/data/imgs/cam{base.clip[r]}/img_{base.frame[r] + 1:06d}.jpg" for r in row]
        res = [{"image_id": nm, "category_id": 1, "keypoints": k.ravel().round(2).tolist(), "score": 0.9}
               for nm, k in zip(names, kps)]
        (tmp / "res.json").write_text(json.dumps(res))
        size_mb = (tmp / "res.json").stat().st_size / 1e6

        def run_import() -> dict[str, Any]:
            base.save(tmp / "det_ps")
            t0 = time.perf_counter()
            s = import_detections(tmp / "det_ps", [tmp / "res.json"], progress_bar=False)
            s["_t"] = time.perf_counter() - t0
            return s

        stats = min((run_import() for _ in range(2)), key=lambda s: s["_t"])
        t = stats["_t"]
        print(f"{'detections import coco':<28} {n:>8,} frames {len(row):>7,} people  {t:6.2f} s "
              f"({n / t / 1e3:7.1f} k frames/s, {size_mb:.0f} MB JSON, incl. save)", flush=True)
        results.append({"name": "detections import coco", "frames": n, "instances": len(row),
                        "seconds": round(t, 3), "frames_per_s": round(n / t)})
        np.save(tmp / "det.npy", kps[np.unique(row, return_index=True)[1]].astype(np.float32))

        def run_npy() -> float:
            base.save(tmp / "det_ps")
            t0 = time.perf_counter()
            import_detections(tmp / "det_ps", [tmp / "det.npy"], joint_set="coco17", progress_bar=False)
            return time.perf_counter() - t0

        t = min(run_npy() for _ in range(2))
        print(f"{'detections import npy':<28} {n:>8,} frames  {t:6.2f} s ({n / t / 1e3:7.1f} k frames/s, incl. save)")
        results.append({"name": "detections import npy", "frames": n, "seconds": round(t, 3),
                        "frames_per_s": round(n / t)})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
