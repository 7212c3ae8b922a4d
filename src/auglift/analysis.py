"""Post-hoc analyses of a matrix run ("where does depth help?") and depth-descriptor diagnostics.

The computations are pure, vectorised functions of arrays (``M`` test frames, ``J`` joints):

* **pose novelty**: :func:`pose_prototypes` clusters root-relative training poses with k-means
  (``scipy.cluster.vq.kmeans2``); :func:`novelty` is each test pose's RMS joint distance to
  its nearest prototype (mm); frames are put in tiers by quartiles of that distance.
* **occlusion**: :func:`occluded_fraction` per frame (``1 - mean(visible)``), binned by
  :data:`OCCLUSION_EDGES`; per joint, occluded vs visible error (:func:`bucket_means` with the
  ``(M, J)`` visibility as bucket).
* **2D error**: :func:`error_2d` per joint (px); frames in quartiles (per test set) of their
  mean 2D error.
* **per joint**: mean error per joint.
* **descriptors** (the input, no lifter): :func:`descriptor_depth_error`, the per-joint error
  of the root-relative descriptor depth ``d_j - d_root`` against ``z_j - z_root`` (mm; relative
  depth first mapped to metres by a per-frame least-squares affine fit), and
  :func:`ordering_accuracy`, the share of joint pairs whose front/back order the descriptor gets
  right (pairs closer than ``min_gap`` in true depth are not counted).

:func:`matrix_analyses` gathers per-frame errors of every finished cell of a matrix run
(predicting its test sets again with the cell's best checkpoint; cached per cell as
``posthoc_<test>.npz``), computes the tables (:func:`analyse`), and :func:`render` writes them
as markdown and bar plots (categorical axes). :func:`append_to_report` is the hook
:func:`auglift.report.write_report` calls: it appends the section to ``report.md`` when the
report directory holds a matrix run, and does nothing otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy.cluster.vq import kmeans2

from auglift.checkpoint import Checkpoint
from auglift.encoding import depth_kind_of, target
from auglift.errors import DataError
from auglift.io import PathLike, atomic_write, json_safe, read_json, write_file, write_json
from auglift.outputs import resolve_recorded
from auglift.poseset import PoseSet
from auglift.predict import Prediction, predict
from auglift.predictions import compute_errors
from auglift.skeleton import H36M17

__all__ = ["OCCLUSION_EDGES", "FrameErrors", "analyse", "append_to_report", "bucket_means", "cache_cell_errors",
           "descriptor_depth_error",
           "error_2d", "matrix_analyses", "novelty", "occluded_fraction", "ordering_accuracy", "pose_prototypes",
           "quantile_buckets", "render", "save_png"]

# per-frame occluded share: none, up to 15 %, 15-30 %, more than 30 % of the joints
OCCLUSION_EDGES = (1e-9, 0.15, 0.30)
OCCLUSION_LABELS = ("0 %", "<= 15 %", "15-30 %", "> 30 %")
QUARTILE_LABELS = ("Q1", "Q2", "Q3", "Q4")
# a descriptor depth this far (mm) from the joint's true relative depth reads another surface (background)
OFF_BODY_MM = 500.0
_MAX_TRAIN_POSES = 5000  # evenly spaced training frames the prototypes are fitted on
_CACHE_VERSION = 1


# --------------------------------------------------------------------------- computations
def pose_prototypes(poses: np.ndarray, k: int = 32, *, seed: int = 0) -> np.ndarray:
    """``(k', J, 3)`` k-means centres of root-relative poses ``(N, J, 3)`` (metres); ``k' = min(k, N)``.

    Frames with a non-finite joint are left out; deterministic for a given ``seed``.
    """
    x = np.asarray(poses, dtype=np.float64).reshape(len(poses), -1)
    x = x[np.isfinite(x).all(1)]
    if len(x) == 0:
        raise DataError(None, "kp3d", "no finite training pose to fit prototypes on")
    k = int(min(k, len(x)))
    centres, _ = kmeans2(x, k, minit="++", seed=np.random.default_rng(seed))
    return centres.reshape(k, *np.shape(poses)[1:])


def novelty(poses: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """``(M,)`` mm: RMS over joints of the distance from each pose ``(M, J, 3)`` m to its nearest prototype.

    Non-finite joints count as 0 distance (a frame without any finite joint gets NaN).
    """
    p = np.asarray(poses, dtype=np.float64)
    ok = np.isfinite(p).all(-1)
    p = np.where(ok[..., None], p, 0.0).reshape(len(p), -1)
    c = np.asarray(prototypes, dtype=np.float64).reshape(len(prototypes), -1)
    d2 = (p * p).sum(1)[:, None] - 2.0 * p @ c.T + (c * c).sum(1)[None, :]  # (M, k) squared distance
    n = ok.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.sqrt(np.maximum(d2.min(1), 0.0) / np.maximum(n, 1)) * 1000.0, np.nan)


def quantile_buckets(values: np.ndarray, q: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Buckets ``(M,)`` int in ``[0, q)`` by the ``q``-quantiles of the finite ``values (M,)``, and the
    ``(q - 1,)`` inner edges. NaN values go to the last bucket."""
    v = np.asarray(values, dtype=np.float64)
    fin = v[np.isfinite(v)]
    edges = np.quantile(fin, np.arange(1, q) / q) if fin.size else np.zeros(q - 1)
    b = np.searchsorted(edges, v, side="right")
    return np.where(np.isfinite(v), b, q - 1).astype(np.int64), edges


def bucket_means(errors: np.ndarray, buckets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``errors (M, J)`` per bucket: ``(n,)`` means (NaN for an empty bucket) and ``(n,)`` joint counts.

    ``buckets`` is ``(M,)`` (per frame: all its joints) or ``(M, J)`` (per joint) ints in ``[0, n)``;
    NaN errors are left out.
    """
    e = np.asarray(errors, dtype=np.float64)
    b = np.broadcast_to(np.asarray(buckets)[:, None] if np.ndim(buckets) == 1 else np.asarray(buckets), e.shape)
    ok = np.isfinite(e)
    sums = np.bincount(b[ok], weights=e[ok], minlength=n)[:n]
    cnt = np.bincount(b[ok], minlength=n)[:n]
    return np.where(cnt > 0, sums / np.maximum(cnt, 1), np.nan), cnt


def occluded_fraction(visible: np.ndarray) -> np.ndarray:
    """``(M,)`` share of the frame's joints that are occluded (``visible (M, J)`` bool False)."""
    return 1.0 - np.asarray(visible, dtype=bool).mean(-1)


def error_2d(kp2d: np.ndarray, kp2d_gt: np.ndarray) -> np.ndarray:
    """``(M, J)`` px: distance of the 2D input ``(M, J, 2)`` px to the ground truth (NaN where missing)."""
    return np.linalg.norm(np.asarray(kp2d, np.float64) - np.asarray(kp2d_gt, np.float64), axis=-1)


def descriptor_depth_error(uadd: np.ndarray, kp3d: np.ndarray, valid: np.ndarray, *, root: int = 0,
                           relative: bool = False) -> np.ndarray:
    """``(M, J)`` mm: ``|(d_j - d_root) - (z_j - z_root)|`` of descriptors ``uadd (M, J, 3)`` against the
    camera-frame joints ``kp3d (M, J, 3)`` m; NaN where the joint's or the root's descriptor is not
    ``valid (M, J)``. ``relative=True``: descriptors are relative depth, first fitted per frame (affine,
    least squares over the valid joints) to the true depth."""
    d = np.asarray(uadd, np.float64)[..., 0]
    z = np.asarray(kp3d, np.float64)[..., 2]
    ok = np.asarray(valid, bool) & np.isfinite(d) & np.isfinite(z)
    ok &= ok[:, root: root + 1]
    if relative:  # per-frame fit z ~ a d + b over the usable joints
        w = ok.astype(np.float64)
        n = np.maximum(w.sum(1), 1.0)
        dz, zz = np.where(ok, d, 0.0), np.where(ok, z, 0.0)
        md, mz = dz.sum(1) / n, zz.sum(1) / n
        cov = (w * (dz - md[:, None]) * (zz - mz[:, None])).sum(1)
        var = (w * (dz - md[:, None]) ** 2).sum(1)
        a = np.where(var > 1e-12, cov / np.maximum(var, 1e-12), 0.0)
        d = a[:, None] * d
    return np.abs(np.where(ok, (d - d[:, root: root + 1]) - (z - z[:, root: root + 1]), np.nan)) * 1000.0


def ordering_accuracy(d: np.ndarray, z: np.ndarray, valid: np.ndarray, *, min_gap: float = 0.05,
                      larger_is_nearer: bool = False) -> tuple[float, np.ndarray]:
    """Front/back order of joint pairs: ``(overall, per_joint (J,))`` shares in ``[0, 1]`` (NaN: no pair).

    ``d (M, J)`` descriptor depth (``larger_is_nearer`` for disparity), ``z (M, J)`` true depth in
    metres, ``valid (M, J)``. A pair ``(i, j)`` of valid joints counts when ``|z_i - z_j| > min_gap``
    metres; it is right when ``d`` orders the two as ``z`` does (a tie in ``d`` is wrong). A joint's
    share is over the pairs it belongs to.
    """
    d = np.asarray(d, np.float64) * (-1.0 if larger_is_nearer else 1.0)
    z = np.asarray(z, np.float64)
    ok = np.asarray(valid, bool) & np.isfinite(d) & np.isfinite(z)
    dz = z[:, :, None] - z[:, None, :]
    dd = d[:, :, None] - d[:, None, :]
    use = ok[:, :, None] & ok[:, None, :] & (np.abs(dz) > min_gap)  # symmetric: every pair counted twice
    right = use & (np.sign(dd) == np.sign(dz))
    n_use, n_right = use.sum((0, 2)), right.sum((0, 2))
    per_joint = np.where(n_use > 0, n_right / np.maximum(n_use, 1), np.nan)
    total = int(use.sum())
    return (float(right.sum() / total) if total else float("nan")), per_joint


# --------------------------------------------------------------------------- gathering a matrix run
@dataclass(frozen=True)
class FrameErrors:
    """Per-frame errors of one trained cell on one test set: ``errors (M, J)`` mm for PoseSet ``rows (M,)``."""

    lifter: str
    input: str
    train: str
    test: str
    in_distribution: bool
    test_path: str
    train_rows_of: tuple[str, str | None]  # (training PoseSet path, split) the prototypes are fitted on
    rows: np.ndarray
    errors: np.ndarray

    @property
    def group(self) -> str:
        return f"{self.lifter}/{self.input}"


def _cell_errors(cell_json: Path, posesets: dict[str, PoseSet]) -> list[FrameErrors]:
    """Per-frame errors of a finished cell on each of its test sets (cached next to ``cell.json``)."""
    info = read_json(cell_json, "cell")
    cdir = cell_json.parent
    ckpt = Checkpoint.load(resolve_recorded(str(info.get("checkpoint", "")), cdir))
    tr = ckpt.config.data.train
    out = []
    for res in info.get("results") or []:
        test = str(res["test"])
        ev_path = cdir / f"eval_{test}.json"
        if not ev_path.exists():
            continue
        ev = read_json(ev_path, "eval")
        path, sel = str(ev["datasets"][0]["path"]), ev.get("selection") or {}
        if path not in posesets:
            posesets[path] = PoseSet.load(path)
        ps = posesets[path]
        fingerprint = str(info.get("fingerprint"))
        cache = _cache_path(cdir, test)
        rows = errors = None
        if cache.exists():
            with np.load(cache, allow_pickle=False) as z:
                if "key" in z and str(z["key"]) == _cache_key(fingerprint):
                    rows, errors = z["rows"], z["errors"]
        if rows is None:
            m = ps.clips.mask(split=sel.get("split"), subject=sel.get("subjects") or None,
                              action=sel.get("actions") or None)
            pred = predict(ckpt, ps, clips=m, flip_test=bool(ev.get("flip_test", True)))
            rows, errors = write_cell_errors(cdir, test, fingerprint, ps, pred)
        out.append(FrameErrors(str(res["lifter"]), str(res["input"]), str(res["train"]), test,
                               bool(res["in_distribution"]), path, (str(tr.path), tr.split), np.asarray(rows),
                               np.asarray(errors, dtype=np.float32)))
    return out


def _cache_path(cell_dir: Path, test: str) -> Path:
    return cell_dir / f"posthoc_{test}.npz"


def _cache_key(fingerprint: str) -> str:
    return f"{_CACHE_VERSION}:{fingerprint}"


def write_cell_errors(cell_dir: Path, test: str, fingerprint: str, ps: PoseSet, pred: Prediction
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Cache the per-frame errors of a cell's predictions ``pred`` on its test set ``test`` (PoseSet ``ps``) in
    ``cell_dir/posthoc_<test>.npz``, valid for the cell's ``fingerprint``; returns ``(rows (M,), errors (M, J))``,
    errors in metres."""
    rows, errors = pred.rows, compute_errors(pred.pred, target(ps.kp3d[pred.rows]))
    with atomic_write(_cache_path(cell_dir, test), "wb") as fh:
        np.savez_compressed(fh, key=np.array(_cache_key(fingerprint)), rows=rows, errors=errors)
    return rows, errors


def cache_cell_errors(cell_json: PathLike) -> None:
    """Compute and cache a finished cell's per-frame errors on its test sets (``posthoc_<test>.npz``); the
    matrix calls it in the process that trained the cell, so the report's analyses read caches only."""
    _cell_errors(Path(cell_json), {})


def _bars(records: Sequence[FrameErrors], labels: Sequence[str], buckets: Callable[[FrameErrors], np.ndarray],
          errors: Callable[[FrameErrors], np.ndarray] = lambda r: r.errors) -> dict[str, Any]:
    """``{"labels", "bars": {group: {"ID": (n,), "OOD": (n,)}}}``: the mean of ``errors(record)`` per bucket
    ``buckets(record)`` (:func:`bucket_means`; ``n = len(labels)``), joint-weighted over the records of each
    group and distribution."""
    n = len(labels)
    acc: dict[str, dict[str, np.ndarray]] = {}
    for r in records:
        mean, cnt = bucket_means(errors(r), buckets(r), n)
        slot = acc.setdefault(r.group, {}).setdefault("ID" if r.in_distribution else "OOD", np.zeros((2, n)))
        slot += np.stack([np.nan_to_num(mean) * cnt, cnt])
    order = ("xy", "xyc", "xycd", "uadd")  # the baseline first, then more channels

    def rank(g: str) -> tuple[str, int, bool, str]:
        lifter, _, inp = g.partition("/")
        base = inp.partition("+")[0]  # "uadd+bbox": channels + the cell's scale normalisation
        return lifter, order.index(base) if base in order else len(order), "+" in inp, inp

    bars = {g: {k: np.where(v[1] > 0, v[0] / np.maximum(v[1], 1), np.nan).tolist() for k, v in sorted(d.items())}
            for g, d in sorted(acc.items(), key=lambda kv: rank(kv[0]))}
    return {"labels": list(labels), "bars": bars}


def _joint_of(r: FrameErrors) -> np.ndarray:
    """Per-joint buckets ``(M, J)`` of a record: each error's joint index."""
    return np.broadcast_to(np.arange(r.errors.shape[1]), r.errors.shape)


def analyse(records: Sequence[FrameErrors], posesets: Mapping[str, PoseSet], *, k: int = 32, seed: int = 0
            ) -> dict[str, Any]:
    """The tables of every analysis from per-frame errors (see the module docstring); JSON-ready."""
    out: dict[str, Any] = {"joints": list(H36M17.joints)}
    # pose novelty: prototypes per training set, tiers by the quartiles of all its test frames' distances
    tiers: dict[tuple[Any, str], np.ndarray] = {}
    edges_out = {}
    for train in {r.train_rows_of for r in records}:
        tps = posesets.get(train[0]) or PoseSet.load(train[0])
        rows = tps.rows_of(tps.clips.mask(split=train[1]))
        rows = rows[np.linspace(0, len(rows) - 1, min(len(rows), _MAX_TRAIN_POSES)).astype(np.int64)]
        protos = pose_prototypes(target(tps.kp3d[rows]), k, seed=seed)
        nov: dict[str, np.ndarray] = {}  # test set -> novelty of its frames
        for r in records:
            if r.train_rows_of == train and r.test not in nov:
                nov[r.test] = novelty(target(posesets[r.test_path].kp3d[r.rows]), protos)
        buckets, edges = quantile_buckets(np.concatenate(list(nov.values())))
        edges_out[train[0]] = edges.tolist()
        tiers.update(zip([(train, t) for t in nov], np.split(buckets, np.cumsum([len(v) for v in nov.values()])[:-1])))
    out["novelty"] = {"edges_mm": edges_out,
                      **_bars(records, QUARTILE_LABELS, lambda r: tiers[(r.train_rows_of, r.test)])}
    out["per_joint"] = _bars(records, H36M17.joints, _joint_of)
    q2d: dict[str, np.ndarray] = {}
    for r in records:
        ps = posesets[r.test_path]
        if r.test not in q2d and ps.has("kp2d_gt"):
            e2 = error_2d(ps.kp2d[r.rows], ps.kp2d_gt[r.rows])
            q2d[r.test] = quantile_buckets(np.nanmean(np.where(np.isfinite(e2), e2, np.nan), 1))[0] \
                if np.isfinite(e2).any() else np.full(len(r.rows), 3)
    if q2d:
        out["error_2d"] = _bars([r for r in records if r.test in q2d], QUARTILE_LABELS, lambda r: q2d[r.test])
    occ = [r for r in records if posesets[r.test_path].has("visible")]
    if occ:
        def vis(r: FrameErrors) -> np.ndarray:
            return np.asarray(posesets[r.test_path].visible[r.rows], dtype=bool)

        out["occlusion"] = _bars(occ, OCCLUSION_LABELS,
                                 lambda r: np.searchsorted(OCCLUSION_EDGES, occluded_fraction(vis(r))))
        for name, want in (("occluded_joints", False), ("visible_joints", True)):
            out[name] = _bars(occ, H36M17.joints, _joint_of,
                              lambda r, want=want: np.where(vis(r) == want, r.errors, np.nan))
    out["descriptors"] = _descriptor_tables(records, posesets)
    return out


def _descriptor_tables(records: Sequence[FrameErrors], posesets: Mapping[str, PoseSet]) -> dict[str, Any]:
    """Per test set (ID and OOD): per-joint descriptor depth error (mm) and front/back ordering accuracy."""
    out: dict[str, Any] = {}
    for r in records:
        ps = posesets[r.test_path]
        if r.test in out or not ps.has("uadd", "kp3d"):
            continue
        rows = r.rows[:: max(1, len(r.rows) // 4000)]  # pairs are (M, J, J): a few thousand frames suffice
        uadd, kp3d = np.asarray(ps.uadd[rows]), np.asarray(ps.kp3d[rows])
        valid = np.asarray(ps.uadd_valid[rows]) if ps.has("uadd_valid") else np.isfinite(uadd).all(-1)
        rel = depth_kind_of(ps) == "relative"
        err = descriptor_depth_error(uadd, kp3d, valid, relative=rel)
        acc, acc_j = ordering_accuracy(uadd[..., 0], kp3d[..., 2], valid, larger_is_nearer=rel)
        with warnings.catch_warnings():  # NumPy's floating-point warnings are RuntimeWarnings too
            warnings.simplefilter("ignore", RuntimeWarning)  # a joint never valid has no median: NaN
            out[r.test] = {"in_distribution": r.in_distribution, "frames": len(rows),
                           "depth_error_mm": np.nanmedian(err, 0).tolist(),
                           "mean_depth_error_mm": np.nanmean(err, 0).tolist(),
                           "median_depth_error_mm": float(np.nanmedian(err)),
                           "off_share": float(np.mean(err[np.isfinite(err)] > OFF_BODY_MM)),
                           "ordering": acc, "ordering_per_joint": acc_j.tolist()}
    return out


def matrix_analyses(out_dir: PathLike) -> dict[str, Any] | None:
    """The :func:`analyse` tables of a matrix run directory (``None`` when it holds no finished cell)."""
    cells = sorted(Path(out_dir).glob("cells/**/cell.json"))
    if not cells:
        return None
    posesets: dict[str, PoseSet] = {}
    records = [fe for c in cells for fe in _cell_errors(c, posesets)]
    return analyse(records, posesets) if records else None


# --------------------------------------------------------------------------- rendering
def _bar_panel(ax: Any, labels: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str, title: str
               ) -> None:
    groups = list(series)
    width = 0.8 / max(1, len(groups))
    xs = np.arange(len(labels))
    for i, g in enumerate(groups):
        ax.bar(xs + (i - (len(groups) - 1) / 2) * width, series[g], width * 0.95, label=g)
    ax.set_xticks(xs, labels, rotation=60 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center",
                  fontsize=7)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)


def _figure(labels: Sequence[str], bars: Mapping[str, Mapping[str, Sequence[float]]], ylabel: str, xlabel: str
            ) -> Figure:
    """One panel per distribution (ID, OOD): bars per bucket, one colour per lifter/input."""
    dists = [d for d in ("ID", "OOD") if any(d in v for v in bars.values())]
    wide = len(labels) > 6
    fig = Figure(figsize=((9 if wide else 4.2) * (1 if wide else len(dists)), 3.2 * (len(dists) if wide else 1)),
                 layout="constrained")
    axes = fig.subplots(len(dists) if wide else 1, 1 if wide else len(dists), squeeze=False).ravel()
    for ax, d in zip(axes, dists, strict=True):
        _bar_panel(ax, labels, {g: v.get(d, [np.nan] * len(labels)) for g, v in bars.items()}, ylabel,
                   f"{'in' if d == 'ID' else 'out of'} distribution")
        ax.set_xlabel(xlabel, fontsize=8)
    handles, names = axes[0].get_legend_handles_labels()
    # below the panels, not over the bars (a matrix has ten or more lifter/input groups)
    fig.legend(handles, names, loc="outside lower center", ncol=min(len(names), 5), fontsize=7)
    return fig


def _table(labels: Sequence[str], bars: Mapping[str, Mapping[str, Sequence[float]]]) -> list[str]:
    rows = ["| lifter/input | set | " + " | ".join(labels) + " |", "|---|---|" + "---:|" * len(labels)]
    for g, v in bars.items():
        for d in ("ID", "OOD"):
            if d in v:
                rows.append(f"| {g} | {d} | " + " | ".join("-" if not np.isfinite(x) else f"{x:.1f}" for x in v[d])
                            + " |")
    return rows


_SECTIONS = (
    ("novelty", "Pose novelty", "novelty tier (distance to the nearest training prototype)",
     "Test frames in quartile tiers (Q1 familiar ... Q4 novel) of the RMS joint distance of their root-relative "
     "pose to the nearest of 32 k-means prototypes of the training poses (camera frame, so a new view counts "
     "as novel too). MPJPE (mm) per tier."),
    ("occlusion", "Occlusion", "share of occluded joints in the frame",
     "Frames binned by the share of their joints that are occluded (the world's ray-cast visibility). "
     "MPJPE (mm) per bin."),
    ("occluded_joints", "Occluded joints", "joint", "MPJPE (mm) of each joint where it is occluded."),
    ("visible_joints", "Visible joints", "joint", "MPJPE (mm) of each joint where it is visible."),
    ("error_2d", "2D error", "quartile of the frame's mean 2D error (per test set)",
     "Frames in quartiles (per test set) of the mean distance of their 2D input keypoints to the ground truth. "
     "MPJPE (mm) per quartile."),
    ("per_joint", "Per joint", "joint", "MPJPE (mm) per joint."),
)


def save_png(fig: Figure, path: Path, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG to ``path``, atomically; returns ``path``."""
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi)
    return path


def render(tables: Mapping[str, Any], out_dir: PathLike) -> tuple[str, list[Path]]:
    """Markdown (a ``## Where does depth help?`` section) and PNG bar plots (written atomically into
    ``out_dir`` as ``posthoc_<analysis>.png``) of :func:`analyse` tables."""
    out = Path(out_dir)
    md = ["## Where does depth help? (post-hoc analyses)", "",
          "Per-frame errors of every cell pooled over its seeds and test sets, in- (ID) and out-of-distribution "
          "(OOD) apart.", ""]
    paths = []
    for key, title, xlabel, text in _SECTIONS:
        if key not in tables:
            continue
        t = tables[key]
        p = save_png(_figure(t["labels"], t["bars"], "MPJPE (mm)", xlabel), out / f"posthoc_{key}.png")
        paths.append(p)
        md += [f"### {title}", "", text, "", *_table(t["labels"], t["bars"]), "", f"![{key}]({p.name})", ""]
    desc = tables.get("descriptors") or {}
    if desc:
        md += ["### Depth descriptors against the ground truth", "",
               "Per test set: error of the root-relative descriptor depth `d_j - d_root` against `z_j - z_root` "
               f"(mm; median over joints and frames; the share off by more than {OFF_BODY_MM:.0f} mm, i.e. reading "
               "another surface) and the share of joint pairs (more than 50 mm apart in depth) whose front/back order "
               "the descriptor gets right. The plot shows the median error per joint.", "",
               "| test set | set | median depth error (mm) | off > 0.5 m (%) | ordering accuracy (%) |",
               "|---|---|---:|---:|---:|"]
        md += [f"| {t} | {'ID' if v['in_distribution'] else 'OOD'} | {v['median_depth_error_mm']:.1f} | "
               f"{100 * v['off_share']:.1f} | {100 * v['ordering']:.1f} |" for t, v in desc.items()]
        fig = Figure(figsize=(9, 5.6), layout="constrained")
        ax1, ax2 = fig.subplots(2, 1)
        _bar_panel(ax1, tables["joints"], {t: v["depth_error_mm"] for t, v in desc.items()},
                   "median depth error (mm)", "root-relative descriptor depth vs ground truth, per joint")
        _bar_panel(ax2, tables["joints"], {t: 100 * np.asarray(v["ordering_per_joint"]) for t, v in desc.items()},
                   "ordering accuracy (%)", "front/back order of the joint's pairs")
        ax1.legend(fontsize=7)
        p = save_png(fig, out / "posthoc_descriptors.png")
        paths.append(p)
        md += ["", f"![descriptors]({p.name})", ""]
    return "\n".join(md) + "\n", paths


def append_to_report(out_dir: PathLike) -> list[Path]:
    """The report hook: append the post-hoc section to ``<out_dir>/report.md`` when ``out_dir`` is a matrix
    run with finished cells (also writes ``posthoc.json`` and the plots); returns the plots' paths."""
    out = Path(out_dir)
    tables = matrix_analyses(out)
    if tables is None or not (out / "report.md").exists():
        return []
    md, paths = render(tables, out)
    write_json(out / "posthoc.json", json_safe(tables))
    text = (out / "report.md").read_text()
    write_file(out / "report.md", text + "\n" + md)
    return paths
