"""Experiment: why the demo's TCN is worse in distribution with the confidence channel (README, demo section).

Runs on the data of a finished default demo (``auglift demo --out DEMO``), with the demo's recipe:

* ``--seeds``: the demo's TCN cells for seeds 0, 1, 2 in ``DEMO`` itself (its finished cells are reused; the
  report in ``DEMO`` is rewritten with three TCN seeds);
* ``--width N``: TCN with ``N`` channels, ``xy+bbox`` and ``xyc+bbox``, seed 0, into ``OUT/tcn_width<N>``;
* ``--epochs N``: the 128-channel TCN trained for ``N`` epochs instead of the demo's 20 (same learning-rate
  decay per epoch), ``xy+bbox`` and ``xyc+bbox``, seed 0, into ``OUT/tcn_epochs<N>``: is the penalty slower
  convergence?
* ``--train-frames N``: the demo's lifter (``--train-lifter``: the 128-channel TCN, or SimpleBaseline) trained on a
  ``lab`` draw of ``N`` frames (the demo's domain and seed, generated with the demo's descriptors into
  ``OUT/train<N>/lab``, reused while its arguments and the domain's calibration are the same; the demo: 20,000) for
  ``--train-epochs`` epochs (the demo's 20), with the ablation's ``xy``, ``xy+bbox``, ``xyc+bbox`` and
  ``uadd+bbox``, seeds 0, 1, 2, tested on the demo's test sets, into ``OUT/train<N>/<lifter>_e<epochs>``: do the
  penalty and the gains change with more training data?
* ``--smooth``: every joint's detector confidence smoothed in time (Gaussian, sd 1.5 frames, in logit space,
  within clips; no detection stays 0) in a copy of the demo's data under ``OUT/conf_smooth/data``, then the
  128-channel TCN with ``xy+bbox`` and ``xyc+bbox``, seed 0. It prints the confidence's frame-to-frame and
  overall sd (in the encoder's ``2c - 1`` units) before and after.
* ``--detector FIELD=VALUE[,FIELD=VALUE]``: the demo's four sets generated again (same domains, seeds and sizes)
  with confidence fields of the detector (``DetectorSpec``) replaced, e.g. ``conf_noise=0`` (the confidence's
  calibration noise, 0.6 logit units in the world) or ``conf_err_slope=0`` (no grading by the actual error),
  under ``OUT/detector_<FIELD><VALUE>.../data``, then the 128-channel TCN with ``xy+bbox`` and ``xyc+bbox``,
  seed 0; one experiment per argument. The keypoints are checked to be bit-identical to the demo's (the
  random draws are made either way): only the confidence changes.

Each run writes a ``report.md`` with the summary table and paired intervals. Usage::

    python benchmarks/bench_tcn_confidence.py --demo runs/demo --out /tmp/tcn_conf --seeds --width 256 --smooth
    python benchmarks/bench_tcn_confidence.py --demo runs/demo --out /tmp/tcn_conf --epochs 40 \
        --detector conf_noise=0 conf_err_slope=0 --train-frames 100000
    python benchmarks/bench_tcn_confidence.py --demo runs/demo --out /tmp/tcn_conf --train-frames 100000 \
        --train-lifter simple_baseline --train-epochs 4
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d

from auglift import demo
from auglift.datasets.synthetic import domains, generate
from auglift.matrix import load_matrix_config, run_matrix
from auglift.poseset import PoseSet
from auglift.report import write_report
from auglift.workers import process_pool

SETS = ("lab", "lab_test", "fitness", "outdoor")


def smoothed_confidence(ps: PoseSet, sd_frames: float = 1.5) -> np.ndarray:
    """``(N, 17)`` float32: each joint's confidence smoothed in time within clips (logit space); zeros kept."""
    c = np.asarray(ps.fields["conf"], dtype=np.float64)
    p = np.clip(c, 1e-4, 1 - 1e-4)
    logit = np.log(p / (1 - p))
    out = np.empty_like(c)
    for seg in np.split(np.arange(len(c)), np.flatnonzero(np.diff(np.asarray(ps.fields["clip"]))) + 1):
        out[seg] = 1 / (1 + np.exp(-gaussian_filter1d(logit[seg], sd_frames, axis=0, mode="nearest")))
    out[c == 0] = 0.0
    return out.astype(np.float32)


def frame_to_frame_sd(conf: np.ndarray, clip: np.ndarray) -> tuple[float, float]:
    """(frame-to-frame sd within clips, overall sd) of ``2c - 1``."""
    same = clip[1:] == clip[:-1]
    return float(np.std(np.diff(2 * conf - 1, axis=0)[same])), float(np.std(2 * conf - 1))


CONF_FIELDS = ("conf_noise", "conf_err_slope", "overconfident_p")


def detector_change(arg: str) -> dict[str, float]:
    """``"conf_noise=0,conf_err_slope=0"`` -> ``{"conf_noise": 0.0, "conf_err_slope": 0.0}`` (confidence fields
    only: the keypoints must not change)."""
    out = {}
    for item in arg.split(","):
        field, _, value = item.partition("=")
        if field not in CONF_FIELDS or not value:
            raise SystemExit(f"--detector: expected FIELD=VALUE with FIELD among {', '.join(CONF_FIELDS)}, "
                             f"got {item!r}")
        out[field] = float(value)
    return out


def print_conf_change(name: str, what: str, before: np.ndarray, after: np.ndarray, clip: np.ndarray) -> None:
    """One line: the confidence's frame-to-frame and overall sd (in ``2c - 1`` units) before and after ``what``."""
    b, a = frame_to_frame_sd(before, clip), frame_to_frame_sd(after, clip)
    print(f"{name}: {what}: 2c-1 frame-to-frame sd {b[0]:.3f} -> {a[0]:.3f}, overall {b[1]:.3f} -> {a[1]:.3f}")


def regenerate(data: Path, out: Path, change: dict[str, float]) -> None:
    """The demo's sets (as in ``data``) generated again into ``out`` with the detector's fields ``change``d;
    their keypoints must equal ``data``'s."""
    preset = demo.SIZES["default"]
    with domains.detector_replaced({d for d, _ in demo.SETS.values()}, **change):
        for name, frames in preset.frames.items():
            dom, offset = demo.SETS[name]
            ps = generate(dom, frames, offset, seq_seconds=preset.seq_seconds)  # the demo's seed 0
            ref = PoseSet.load(data / name)
            if not np.array_equal(np.asarray(ps.kp2d), np.asarray(ref.kp2d), equal_nan=True):
                raise SystemExit(f"{name}: the regenerated keypoints differ from {data / name}'s")
            print_conf_change(name, str(change), np.asarray(ref.fields["conf"]), np.asarray(ps.fields["conf"]),
                              np.asarray(ps.fields["clip"]))
            ps.save(out / name)  # rewritten each run: never a stale copy


def run_lifter(data: Path, out: Path, channels: int, inputs: list[str], seeds: int, jobs: int,
               epochs: int | None = None, train: Path | None = None, lifter: str = "tcn") -> None:
    """The demo's matrix restricted to one lifter (the TCN ``channels`` wide, or the demo's ``lifter``), ``epochs``
    (or the demo's) and ``inputs``, into ``out``; trained on ``train`` (a ``lab`` PoseSet) instead of
    ``data / "lab"`` if given."""
    preset = demo.SIZES["default"]
    kwargs = {"receptive_field": 27, "channels": channels} if lifter == "tcn" else preset.lifters[lifter]
    preset = dataclasses.replace(preset, lifters={lifter: kwargs}, seeds={lifter: seeds})
    if epochs is not None:
        preset = dataclasses.replace(preset, epochs=epochs)
    cfg: dict[str, Any] = demo.demo_matrix_config(data, out, preset, [lifter], 0)
    if train is not None:
        cfg["train_sets"]["lab"]["path"] = str(train)
    cfg["matrix"].update(inputs=inputs, baseline=inputs[0],
                         contrasts=[c for c in demo.CONTRASTS if set(c.split(" vs ")) <= set(inputs)])
    matrix = load_matrix_config(cfg)
    with process_pool(jobs, log=print) as pool:
        res = run_matrix(matrix, progress=False, report=False, log=print, pool=pool)
    title = f"TCN ({channels} channels)" if lifter == "tcn" else lifter
    write_report(res["cells"], out, title=title, baseline=inputs[0], notes=[], contrasts=matrix.contrasts)
    print(f"report: {out / 'report.md'}")


def larger_lab(path: Path, frames: int) -> Path:
    """A ``lab`` draw of ``frames`` frames (the demo's domain, seed and clip lengths) with the demo's descriptors at
    ``path``, generated unless one made with the same arguments and calibration is there."""
    dom, offset = demo.SETS["lab"]
    want = {"domain": dom, "frames": frames, "seed": offset, "seq_seconds": list(demo.SIZES["default"].seq_seconds)}
    if demo.made_with(path, "bench_tcn_confidence", want) is None:
        ps = generate(dom, frames, offset, seq_seconds=demo.SIZES["default"].seq_seconds)
        ps.meta["extra"] = dict(ps.meta.get("extra", {})) | {"bench_tcn_confidence": want}
        ps.save(path)
    demo.ensure_uadd(path, print, False)  # reuses descriptors made for this data
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, required=True, help="a finished default demo run (its data/ is read)")
    ap.add_argument("--out", type=Path, required=True, help="where the experiments' runs go (one folder each)")
    ap.add_argument("--seeds", action="store_true", help="the demo's TCN with seeds 0, 1, 2, in DEMO")
    ap.add_argument("--width", type=int, nargs="*", default=[], help="TCN widths (channels) to run")
    ap.add_argument("--epochs", type=int, nargs="*", default=[], help="TCN epoch counts to run (the demo: 20)")
    ap.add_argument("--detector", nargs="*", default=[], metavar="FIELD=VALUE[,FIELD=VALUE]",
                    help="the TCN on the world generated again with detector confidence fields changed "
                         f"({', '.join(CONF_FIELDS)})")
    ap.add_argument("--train-frames", type=int, nargs="*", default=[],
                    help="lab training frames to run (the demo: 20000)")
    ap.add_argument("--train-lifter", choices=["tcn", "simple_baseline"], default="tcn", help="for --train-frames")
    ap.add_argument("--train-epochs", type=int, default=20, help="for --train-frames (the demo: 20)")
    ap.add_argument("--smooth", action="store_true", help="the TCN on temporally smoothed confidences")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    data = args.demo / "data"
    pair = ["xy+bbox", "xyc+bbox"]
    if args.seeds:
        preset = dataclasses.replace(demo.SIZES["default"], seeds={"simple_baseline": 3, "tcn": 3})
        demo.SIZES["default"] = preset  # run_demo reads the preset by name
        demo.run_demo(args.demo, progress=False, jobs=args.jobs)
        print(f"report: {args.demo / 'report.md'}")
    for channels in args.width:
        run_lifter(data, args.out / f"tcn_width{channels}", channels, pair, 1, args.jobs)
    for epochs in args.epochs:
        run_lifter(data, args.out / f"tcn_epochs{epochs}", 128, pair, 1, args.jobs, epochs=epochs)
    for arg in args.detector:
        change = detector_change(arg)
        base = args.out / ("detector_" + "_".join(f"{k}{v:g}" for k, v in change.items()))
        regenerate(data, base / "data", change)
        run_lifter(base / "data", base / "run", 128, pair, 1, args.jobs)
    for frames in args.train_frames:
        lab = larger_lab(args.out / f"train{frames}" / "lab", frames)
        run_lifter(data, args.out / f"train{frames}" / f"{args.train_lifter}_e{args.train_epochs}", 128,
                   ["xy", *pair, "uadd+bbox"], 3, args.jobs, epochs=args.train_epochs, train=lab,
                   lifter=args.train_lifter)
    if args.smooth:
        sm = args.out / "conf_smooth" / "data"
        for name in SETS:
            ps = PoseSet.load(data / name, mmap=False)
            conf = smoothed_confidence(ps)
            print_conf_change(name, "smoothed", np.asarray(ps.fields["conf"]), conf, np.asarray(ps.fields["clip"]))
            ps.with_fields(conf=conf).save(sm / name)  # rewritten each run: never a stale copy of changed data
        run_lifter(sm, args.out / "conf_smooth" / "run", 128, pair, 1, args.jobs)


if __name__ == "__main__":
    main()
