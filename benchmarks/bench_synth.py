"""Benchmark: the embedded synthetic world -- generation speed, depth-rendering speed, domain statistics.

Measures, per domain (``lab``, ``fitness``, ``outdoor``):

* generating poses + detections (``generate``, incl. occlusion ray tests) for ``--frames`` rows;
* rendering depth maps at the default size (256 px on the long side) for ``--render`` rows in
  each flavour (``true``, ``metric``, ``relative``), batch 128;
* statistics that show how the domains differ and how the error models are calibrated: root
  depth, image size, occlusion and truncation rates, detection error on visible vs occluded
  joints (px and % of person height), outliers, confidences, depth AbsRel of the metric flavour
  (all pixels nearer than 20 m, and person pixels), the per-image scale error on the person, and
  how much the maps say about the pose: the correlation between the map's depth at visible joints
  (relative to the pelvis pixel) and the joints' true relative depth;
* the depth model's failure modes as they come out: the median scale of the body (metric over
  true depth on body pixels), the relief factor (slope of metric on true depth inside the body),
  the share of frames with a lost thin limb or an arm/leg order swap (swaps by view), and how
  much of a 16 px disk around visible wrists and ankles lies on the body.

Usage: ``python benchmarks/bench_synth.py [--frames 100000] [--render 2000] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.ndimage import binary_erosion
from scipy.stats import spearmanr

from auglift.datasets.synthetic import DOMAINS, generate, map_size, render_depth
from auglift.datasets.synthetic.depth_failures import draw_body_failures, view_of
from auglift.datasets.synthetic.world import decode_source


def depth_model_stats(ps, rows: np.ndarray) -> dict:  # type: ignore[no-untyped-def]
    """The failure modes of the metric depth model on ``rows`` (see the module docstring)."""
    W, H = int(ps.clips.width[0]), int(ps.clips.height[0])
    h, w = map_size(W, H, 128)
    body = np.zeros((len(rows), h, w), bool)
    true = render_depth(ps, rows, size=(h, w), flavour="true", body_out=body)
    metric = render_depth(ps, rows, size=(h, w), flavour="metric")
    scale, slope = [], []
    for i in range(len(rows)):
        inner = binary_erosion(body[i], iterations=2)
        if inner.sum() < 30:
            continue
        t, m = true[i][inner], metric[i][inner]
        scale.append(np.median(m / t))
        slope.append(((t - t.mean()) * (m - m.mean())).sum() / ((t - t.mean()) ** 2).sum())
    kp = ps.kp3d[rows].astype(np.float64)
    scenes = [decode_source(str(ps.clips.source[c])) for c in ps.clip[rows]]
    fail = draw_body_failures(kp, np.stack([s.capsule_radii for s in scenes]), [s.error for s in scenes],
                              ps.frame[rows] / ps.clips.fps[ps.clip[rows]], ps.clips.intrinsics[ps.clip[rows], 0],
                              float(max(ps.clips.width[0], ps.clips.height[0])))
    view = view_of(kp)
    vv, uu = np.mgrid[0:h, 0:w]
    disk = {}
    for name, joints in (("wrists", (13, 16)), ("ankles", (3, 6))):
        frac = []
        for i, r in enumerate(rows):
            for j in joints:
                if ps.visible[r, j]:
                    u, v = (ps.kp2d_gt[r, j] + 0.5) * (w / W, h / H) - 0.5
                    frac.append(body[i][(uu - u) ** 2 + (vv - v) ** 2 <= (16 * w / W) ** 2].mean())
        disk[name] = float(np.mean(frac))
    return {"body_scale_median": float(np.median(scale)), "relief_slope_median": float(np.median(slope)),
            "lost_limb_frames": float((fail.limb != 0).any(axis=1).mean()),
            "swap_frames_by_view": {v: float(fail.swap[view == k].any(axis=1).mean()) if (view == k).any() else None
                                    for k, v in enumerate(("front", "side", "back"))},
            "disk_on_body_16px": disk}


def stats(ps, rows_depth: np.ndarray) -> dict:  # type: ignore[no-untyped-def]
    W = ps.clips.width[ps.clip][:, None]
    H = ps.clips.height[ps.clip][:, None]
    gt, det = ps.kp2d_gt, ps.kp2d
    inside = (gt[..., 0] >= -0.5) & (gt[..., 0] <= W - 0.5) & (gt[..., 1] >= -0.5) & (gt[..., 1] <= H - 0.5)
    ok = ps.kp2d_valid[:, None]
    vis = ps.visible & ok
    occ = inside & ~ps.visible & ok
    err = np.linalg.norm(det - gt, axis=-1)
    person = np.maximum(np.ptp(gt[..., 0], axis=1), np.ptp(gt[..., 1], axis=1))[:, None]
    rel = 100 * err / person
    z = ps.kp3d[:, 0, 2].astype(np.float64)
    true = render_depth(ps, rows_depth, flavour="true")
    metric = render_depth(ps, rows_depth, flavour="metric")
    zr = ps.kp3d[rows_depth, 0, 2][:, None, None]
    body = np.abs(true - zr) < 0.6
    near = true < 20.0
    absrel = np.abs(metric - true) / true
    ratio = np.array([np.median(metric[i][body[i]] / true[i][body[i]]) for i in range(len(rows_depth))
                      if body[i].any()])
    # depth information about the pose: depth at visible joints relative to the pelvis vs the truth
    h, w = true.shape[1:]
    uv = gt[rows_depth]
    um = np.clip(np.round((uv[..., 0] + 0.5) * w / W[rows_depth] - 0.5).astype(int), 0, w - 1)
    vm = np.clip(np.round((uv[..., 1] + 0.5) * h / H[rows_depth] - 0.5).astype(int), 0, h - 1)
    bi = np.arange(len(rows_depth))[:, None]
    rel_true = ps.kp3d[rows_depth, :, 2] - ps.kp3d[rows_depth, :1, 2]
    m = ps.visible[rows_depth] & ps.visible[rows_depth, :1]
    m[:, [0, 9, 10]] = False  # pelvis is the reference; head joints sit on the silhouette
    relief, rank = {}, {}
    for name, maps in (("true", true), ("metric", metric)):
        d = maps[bi, vm, um]
        relief[name] = float(np.corrcoef((d - d[:, :1])[m], rel_true[m])[0, 1])
        rank[name] = float(spearmanr((d - d[:, :1])[m], rel_true[m])[0])  # robust to the few gross failures
    return {
        "root_depth_m": {"mean": z.mean(), "sd": z.std(), "p5": np.percentile(z, 5), "p95": np.percentile(z, 95)},
        "image": f"{int(ps.clips.width[0])}x{int(ps.clips.height[0])}",
        "person_height_px": float(np.median(person)),
        "occluded_rate": float(occ.sum() / inside.sum()),
        "truncated_rate": float(1 - inside.mean()),
        "no_detection_frames": float(1 - ps.kp2d_valid.mean()),
        "det_err_visible_px": {"mean": err[vis].mean(), "median": np.median(err[vis]),
                               "pct_person": np.median(rel[vis]), "over_30px": np.mean(err[vis] > 30),
                               "over_10pct_person": np.mean(rel[vis] > 10)},
        "det_err_occluded_px": {"mean": err[occ].mean(), "median": np.median(err[occ]),
                                "pct_person": np.median(rel[occ]), "over_30px": np.mean(err[occ] > 30),
                                "over_10pct_person": np.mean(rel[occ] > 10)},
        "conf_visible": float(ps.conf[vis].mean()),
        "conf_occluded": float(ps.conf[occ].mean()),
        "depth_absrel_all": float(absrel[near].mean()),
        "depth_absrel_person": float(absrel[body].mean()),
        "person_scale_err": {"mean_abs": float(np.abs(ratio - 1).mean()),
                             "p90": float(np.percentile(np.abs(ratio - 1), 90))},
        "joint_relief_corr": relief,
        "joint_relief_rank_corr": rank,
        "depth_model": depth_model_stats(ps, rows_depth),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--render", type=int, default=2000)
    ap.add_argument("--stats-maps", type=int, default=300, help="depth maps used for the AbsRel statistics")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write all numbers to this JSON file")
    args = ap.parse_args()
    report: dict = {}
    for d in DOMAINS:
        generate(d, 2000, args.seed)  # warm-up (imports, caches)
        t = time.perf_counter()
        ps = generate(d, args.frames, args.seed)
        gen = time.perf_counter() - t
        rows = np.linspace(0, len(ps) - 1, min(args.render, len(ps))).astype(np.int64)
        fps = {}
        for flavour in ("true", "metric", "relative"):
            render_depth(ps, rows[:128], flavour=flavour)  # warm-up
            t = time.perf_counter()
            maps = render_depth(ps, rows, flavour=flavour)
            fps[flavour] = len(rows) / (time.perf_counter() - t)
        s = stats(ps, np.linspace(0, len(ps) - 1, args.stats_maps).astype(np.int64))
        report[d] = {"generate_s": gen, "generate_frames_per_s": args.frames / gen, "map": list(maps.shape[1:]),
                     "render_fps": fps, **s}
        print(f"{d}: generate {args.frames:,} frames (poses + detections) in {gen:.1f} s "
              f"({args.frames / gen:,.0f} frames/s); depth {maps.shape[1]}x{maps.shape[2]}: "
              + ", ".join(f"{k} {v:.0f} fps" for k, v in fps.items()))
        rd = s["root_depth_m"]
        dv, do = s["det_err_visible_px"], s["det_err_occluded_px"]
        print(f"  image {s['image']}, person {s['person_height_px']:.0f} px, root depth {rd['mean']:.2f} m "
              f"(sd {rd['sd']:.2f}, 5-95% {rd['p5']:.1f}-{rd['p95']:.1f}); occluded {s['occluded_rate']:.1%}, "
              f"truncated {s['truncated_rate']:.2%}, frames without detection {s['no_detection_frames']:.2%}")
        print(f"  2D error visible: mean {dv['mean']:.1f} px, median {dv['median']:.1f} px "
              f"({dv['pct_person']:.1f}% of person), >30 px {dv['over_30px']:.1%}, >10% person "
              f"{dv['over_10pct_person']:.1%}; occluded: mean {do['mean']:.1f} px, median {do['median']:.1f} px "
              f"({do['pct_person']:.1f}%), >30 px {do['over_30px']:.1%}; conf visible {s['conf_visible']:.2f}, "
              f"occluded {s['conf_occluded']:.2f}")
        print(f"  metric depth AbsRel {s['depth_absrel_all']:.3f} (all < 20 m), {s['depth_absrel_person']:.3f} "
              f"(person); per-image person scale error mean {s['person_scale_err']['mean_abs']:.1%}, "
              f"90th pct {s['person_scale_err']['p90']:.1%}; corr(depth at visible joints - pelvis, true "
              f"relative z) true {s['joint_relief_corr']['true']:.2f}, metric {s['joint_relief_corr']['metric']:.2f} "
              f"(rank corr. {s['joint_relief_rank_corr']['true']:.2f} / {s['joint_relief_rank_corr']['metric']:.2f})")
        dm = s["depth_model"]
        sw = ", ".join(f"{k} {v:.1%}" for k, v in dm["swap_frames_by_view"].items() if v is not None)
        print(f"  depth model: body scale metric/true {dm['body_scale_median']:.3f}, relief slope "
              f"{dm['relief_slope_median']:.2f}, frames with a lost limb {dm['lost_limb_frames']:.1%}, order swaps "
              f"({sw}); 16 px disks on the body: wrists {dm['disk_on_body_16px']['wrists']:.2f}, ankles "
              f"{dm['disk_on_body_16px']['ankles']:.2f}")
    if args.json:
        def plain(x):  # type: ignore[no-untyped-def]
            if isinstance(x, dict):
                return {k: plain(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return [plain(v) for v in x]
            return x.item() if isinstance(x, np.generic) else x

        with open(args.json, "w") as fh:
            json.dump(plain(report), fh, indent=2)


if __name__ == "__main__":
    main()
