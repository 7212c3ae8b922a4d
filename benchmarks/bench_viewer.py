"""``auglift view`` in headless Chromium: page open time of a 100,000-frame PoseSet and playback rate of a
10,000-frame clip.

Data: the embedded world's ``lab`` domain (``generate``; 100,000 frames in 156 clips of ~640 frames,
simulated detections) with a descriptor ``uadd`` = joint depth -/+ a few cm and noise, so every array
the viewer embeds is there. Measured:

* writing the page (Python) and its size;
* open time: from navigation start to the first clip drawn (``performance.now()`` when the page sets
  ``auglift.ready``), the median of ``--repeats`` fresh loads, and the time to switch to a clip
  that was not decoded yet;
* playback: a 10,000-frame clip played at 1x (and 4x) for ``--seconds``: frames drawn per second
  (requestAnimationFrame rate with the work done), pose updates per second, and the JavaScript time
  per update and per render (what limits the rate on a slower machine).

Needs Debian's ``chromium`` and ``chromium-driver`` (see ``tests/_browser.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _browser import console_errors, find_browser, open_page, start_browser, stop_browser
from auglift.datasets.synthetic import generate
from auglift.poseset import ClipTable, PoseSet
from auglift.viewer import write_viewer


def with_uadd(ps: PoseSet, seed: int = 0) -> PoseSet:
    """``ps`` plus a plausible descriptor: (z - 3 cm, z - 8 cm, z + 2 cm) with 1 cm noise."""
    rng = np.random.default_rng(seed)
    z = np.asarray(ps.kp3d[..., 2])
    uadd = np.stack([z - 0.03, z - 0.08, z + 0.02], -1) + rng.normal(0, 0.01, (*z.shape, 3))
    return ps.with_fields(uadd=uadd.astype(np.float32), uadd_valid=np.ones(z.shape, bool))


def one_long_clip(ps: PoseSet, frames: int) -> PoseSet:
    """The first ``frames`` rows of ``ps`` as one clip (frames 0..n-1) with the first clip's camera."""
    rows = np.arange(frames)
    fields = {k: np.asarray(v[rows]) for k, v in ps.fields.items()}
    fields["clip"] = np.zeros(frames, np.int32)
    fields["frame"] = rows.astype(np.int32)
    return PoseSet(fields, ClipTable(ps.clips[0].columns), ps.meta)


def measure_open(browser, page: Path, repeats: int) -> dict:
    opens, walls = [], []
    for _ in range(repeats):
        browser.get("about:blank")
        t = time.perf_counter()
        opens.append(open_page(browser, page))
        walls.append(time.perf_counter() - t)
    switch = browser.execute_async_script(
        "const done = arguments[0]; const t = performance.now();"
        "auglift.selectClip(auglift.state.clip ? 77 : 0).then(() => done(performance.now() - t));")
    return {"open_ms_median": statistics.median(opens), "open_ms_all": opens,
            "wall_s_median": statistics.median(walls), "clip_switch_ms": switch}


def measure_playback(browser, page: Path, seconds: float, speed: float) -> dict:
    open_page(browser, page)
    browser.execute_script(f"auglift.state.speed = {speed}; Object.assign(auglift.stats, "
                           "{renders: 0, updates: 0, updateMs: 0, renderMs: 0}); auglift.play(true);"
                           "window.benchStart = performance.now();")
    time.sleep(seconds)
    s = browser.execute_script("auglift.play(false); return Object.assign({elapsed: performance.now() - "
                               "window.benchStart, frame: auglift.state.i}, auglift.stats);")
    sec = s["elapsed"] / 1000
    return {"speed": speed, "seconds": sec, "drawn_fps": s["renders"] / sec, "pose_updates_per_s": s["updates"] / sec,
            "update_ms": s["updateMs"] / max(s["updates"], 1), "render_ms": s["renderMs"] / max(s["renders"], 1),
            "frame_reached": s["frame"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100_000, help="frames of the large PoseSet")
    ap.add_argument("--clip-frames", type=int, default=10_000, help="frames of the playback clip")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args()
    found = find_browser()
    if isinstance(found, str):
        sys.exit(f"bench_viewer: {found}")
    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ps = with_uadd(generate("lab", args.frames, 0))
        ps.save(d / "lab")
        t = time.perf_counter()
        big = write_viewer(d / "lab", d / "lab.html")
        report["write"] = {"frames": big.frames, "clips": big.clips, "stride": big.stride, "seconds":
                           time.perf_counter() - t, "mb": big.bytes / 1e6}
        one_long_clip(ps, args.clip_frames).save(d / "long")
        long = write_viewer(d / "long", d / "long.html")
        browser = start_browser(*found)
        try:
            report["open"] = measure_open(browser, big.path, args.repeats)
            report["playback"] = [measure_playback(browser, long.path, args.seconds, s) for s in (1.0, 4.0)]
            report["console_errors"] = console_errors(browser)
        finally:
            stop_browser(browser)
    w, o = report["write"], report["open"]
    print(f"write: {w['frames']:,} frames in {w['clips']} clips (stride {w['stride']}) -> {w['mb']:.1f} MB page "
          f"in {w['seconds']:.1f} s")
    print(f"open: first clip drawn {o['open_ms_median']:.0f} ms after navigation start (median of {args.repeats}; "
          f"all {', '.join(f'{v:.0f}' for v in o['open_ms_all'])}); driver wall {o['wall_s_median']:.2f} s; "
          f"switch to an undecoded clip {o['clip_switch_ms']:.0f} ms")
    for p in report["playback"]:
        print(f"playback {args.clip_frames:,}-frame clip at {p['speed']:g}x: {p['drawn_fps']:.1f} frames drawn/s, "
              f"{p['pose_updates_per_s']:.1f} pose updates/s, {p['update_ms']:.3f} ms per update, "
              f"{p['render_ms']:.3f} ms per render (frame {p['frame_reached']} reached)")
    print(f"console errors: {len(report['console_errors'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
