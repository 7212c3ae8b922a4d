"""Simple multi-person tracking of 2D pose instances over a frame sequence.

Input: person instances of a video, each with a frame index, keypoints ``(J, 2)`` px and
confidences ``(J,)`` (any number per frame). Output: a track id per instance.

Association (frame by frame, in frame order):

* every instance gets a box, the extent of its keypoints with confidence > 0 (finite ones);
* the similarity of a live track (its last instance) and an instance of the current frame is
  ``0.5 * (IoU + OKS)``: the boxes' intersection over union, and an object-keypoint similarity
  ``mean_j exp(-d_j^2 / (2 (0.1 s)^2))`` over joints present in both (``d_j`` the joint
  distance in px, ``s`` the square root of the track's box area);
* pairs are assigned one-to-one by maximum total similarity (Hungarian,
  :func:`scipy.optimize.linear_sum_assignment`), kept when the similarity is at least
  ``min_similarity`` (0.25); unmatched instances start new tracks;
* a track stays live for ``max_gap`` frames (30) after its last instance.

Tracks are numbered by size, 0 = the largest: the sum over its frames of its box area
(px², so a person who is large *and* present for long ranks first). The loop over frames is
sequential by nature but each step works on the few instances of one frame (15-25 k
frames/s for two people, ``benchmarks/bench_infer.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["TrackResult", "box_iou", "interpolate_track", "keypoint_boxes", "keypoint_similarity", "track_instances"]

OKS_SIGMA = 0.1  # keypoint distance scale, as a fraction of the box size


@dataclass(frozen=True)
class TrackResult:
    """``track (M,)`` int64 id per instance (0 = largest track), ``area (K,)`` summed box area per
    track (px², descending), ``frames (K,)`` instance count per track."""

    track: np.ndarray
    area: np.ndarray
    frames: np.ndarray

    @property
    def num_tracks(self) -> int:
        return len(self.area)


def keypoint_boxes(kp: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Boxes ``(M, 4)`` ``[x0, y0, x1, y1]`` px of the keypoints with confidence > 0 (NaN without any)."""
    kp = np.asarray(kp, dtype=np.float64)
    ok = (np.asarray(conf) > 0) & np.isfinite(kp).all(-1)
    pts = np.where(ok[..., None], kp, np.nan)  # fmin/fmax skip NaN; all-NaN (or no joints) stays NaN
    return np.concatenate([np.fmin.reduce(pts, axis=-2, initial=np.nan),
                           np.fmax.reduce(pts, axis=-2, initial=np.nan)], axis=-1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union ``(K, N)`` of boxes ``a (K, 4)`` and ``b (N, 4)`` (0 where undefined)."""
    ix = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    iy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    iou[~np.isfinite(iou)] = 0.0
    return iou


def keypoint_similarity(a: np.ndarray, ca: np.ndarray, b: np.ndarray, cb: np.ndarray, scale: np.ndarray
                        ) -> np.ndarray:
    """OKS-like similarity ``(K, N)`` of keypoints ``a (K, J, 2)`` and ``b (N, J, 2)``.

    Mean over joints present in both (confidence > 0, finite) of ``exp(-d^2 / (2 (0.1 scale_k)^2))``,
    ``scale (K,)`` px; 0 where no joint is shared.
    """
    pa = (ca > 0) & np.isfinite(a).all(-1)
    pb = (cb > 0) & np.isfinite(b).all(-1)
    return _oks(np.where(pa[..., None], a, 0.0), pa, np.where(pb[..., None], b, 0.0), pb, scale)


def _oks(a: np.ndarray, pa: np.ndarray, b: np.ndarray, pb: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """:func:`keypoint_similarity` on cleaned keypoints (finite) and presence masks."""
    d2 = ((a[:, None] - b[None]) ** 2).sum(-1)  # (K, N, J)
    s = np.maximum(OKS_SIGMA * np.asarray(scale, dtype=np.float64), 1.0)[:, None, None]
    both = pa[:, None] & pb[None]
    e = np.where(both, np.exp(-d2 / (2 * s * s)), 0.0)
    n = both.sum(-1)
    return np.where(n > 0, e.sum(-1) / np.maximum(n, 1), 0.0)


def track_instances(frame: np.ndarray, kp: np.ndarray, conf: np.ndarray, *, min_similarity: float = 0.25,
                    max_gap: int = 30) -> TrackResult:
    """Track ids for instances ``frame (M,)`` int, ``kp (M, J, 2)`` px, ``conf (M, J)`` (see the module doc).

    Instances without any confident keypoint get track -1.
    """
    frame = np.asarray(frame, dtype=np.int64)
    kp = np.asarray(kp, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    m = len(frame)
    ids = np.full(m, -1, dtype=np.int64)
    boxes = keypoint_boxes(kp, conf)
    present = (conf > 0) & np.isfinite(kp).all(-1)
    kp0 = np.where(present[..., None], kp, 0.0)
    usable = np.isfinite(boxes).all(-1)
    area = np.where(usable, (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 0.0)
    order = np.flatnonzero(usable)
    order = order[np.argsort(frame[order], kind="stable")]
    if order.size == 0:
        return TrackResult(ids, np.zeros(0), np.zeros(0, np.int64))
    cuts = np.flatnonzero(np.diff(frame[order])) + 1
    last: list[int] = []  # per track: index of its latest instance
    last_frame: list[int] = []
    for group in np.split(order, cuts):
        f = int(frame[group[0]])
        live = [t for t in range(len(last)) if f - last_frame[t] <= max_gap]
        matched: set[int] = set()
        if live:
            li = np.asarray([last[t] for t in live])
            scale = np.sqrt(np.maximum(area[li], 1.0))
            sim = 0.5 * (box_iou(boxes[li], boxes[group])
                         + _oks(kp0[li], present[li], kp0[group], present[group], scale))
            if sim.shape == (1, 1):  # one live track, one instance: nothing to assign
                rows, cols = np.zeros(1, np.int64), np.zeros(1, np.int64)
            else:
                rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows.tolist(), cols.tolist()):
                if sim[r, c] >= min_similarity:
                    t = live[r]
                    ids[group[c]] = t
                    last[t], last_frame[t] = int(group[c]), f
                    matched.add(c)
        for c, inst in enumerate(group.tolist()):
            if c not in matched:
                ids[inst] = len(last)
                last.append(inst)
                last_frame.append(f)
    k = len(last)
    ok = ids >= 0
    total = np.bincount(ids[ok], weights=area[ok], minlength=k)
    count = np.bincount(ids[ok], minlength=k)
    rank = np.argsort(-total, kind="stable")
    ids[ok] = np.argsort(rank)[ids[ok]]  # the inverse permutation: old id -> its rank
    return TrackResult(ids, total[rank], count[rank].astype(np.int64))


def interpolate_track(frames: np.ndarray, kp: np.ndarray, conf: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One track's instances at increasing ``frames (n,)`` -> every frame from the first to the last.

    Returns ``(all_frames (F,), kp (F, J, 2), conf (F, J), detected (F,) bool)``: frames without an
    instance get keypoints and confidences linearly interpolated between the neighbouring
    instances (a joint missing in either neighbour stays NaN with confidence 0).
    """
    frames = np.asarray(frames, dtype=np.int64)
    kp = np.asarray(kp, dtype=np.float32)
    conf = np.asarray(conf, dtype=np.float32)
    if frames.size and (np.diff(frames) <= 0).any():
        raise ValueError("interpolate_track: frames must be strictly increasing")
    allf = np.arange(frames[0], frames[-1] + 1, dtype=np.int64)
    hi = np.searchsorted(frames, allf)  # first instance at or after the frame
    detected = frames[np.minimum(hi, len(frames) - 1)] == allf
    lo = np.where(detected, hi, hi - 1)
    f0, f1 = frames[lo], frames[hi]
    w = np.where(f1 > f0, (allf - f0) / np.maximum(f1 - f0, 1), 0.0).astype(np.float32)
    out_kp = (1 - w)[:, None, None] * kp[lo] + w[:, None, None] * kp[hi]
    out_c = (1 - w)[:, None] * conf[lo] + w[:, None] * conf[hi]
    missing = ~np.isfinite(out_kp).all(-1)
    out_c = np.where(missing, 0.0, out_c).astype(np.float32)
    return allf, out_kp.astype(np.float32), out_c, detected
