"""Preview pictures of the synthetic world: depth maps with the 2D skeleton, occluded joints marked."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from auglift.poseset import PoseSet
from auglift.skeleton import H36M17

__all__ = ["pick_rows", "preview_grid"]


def pick_rows(ps: PoseSet, n: int, seed: int = 0) -> np.ndarray:
    """``n`` rows spread over the set: one from each of ``n`` different clips where possible, sorted."""
    rng = np.random.default_rng(seed)
    cr = ps.clip_ranges
    nonempty = np.flatnonzero(cr[:, 1] > cr[:, 0])
    clips = rng.permutation(nonempty)[:n] if len(nonempty) >= n else rng.choice(nonempty, n)
    rows = np.array([rng.integers(cr[c, 0], cr[c, 1]) for c in clips], dtype=np.int64)
    return np.unique(rows)


def preview_grid(posesets: PoseSet | Sequence[PoseSet], path: str | os.PathLike[str], *, per_set: int = 4,
                 flavour: str = "metric", long_side: int = 256, seed: int = 0, labels: Sequence[str] | None = None,
                 dpi: int = 80) -> Path:
    """Write a PNG grid: one row of ``per_set`` frames per PoseSet (e.g. one per domain).

    Each panel shows the rendered depth map (``flavour``; as inverse depth, bright = near, with
    a colour range around the subject), the
    ground-truth 2D skeleton, visible joints as green dots, occluded or truncated joints as red
    crosses, and the simulated detections as small white crosses. The PNG is palette-quantised
    (256 colours) to stay small. Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from auglift.datasets.synthetic.render import map_size
    from auglift.datasets.synthetic.world import render_depth
    from auglift.io import atomic_write

    sets = [posesets] if isinstance(posesets, PoseSet) else list(posesets)
    rows_of = [pick_rows(ps, per_set, seed + i).tolist() for i, ps in enumerate(sets)]
    ncol = max(len(rows) for rows in rows_of)
    fig, axes = plt.subplots(len(sets), ncol, figsize=(2.6 * ncol, 3.0 * len(sets)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (ps, rows) in enumerate(zip(sets, rows_of)):
        for col, r in enumerate(rows):
            ax = axes[i, col]
            c = int(ps.clip[r])
            W, H = int(ps.clips.width[c]), int(ps.clips.height[c])
            depth = render_depth(ps, [r], size=map_size(W, H, long_side), flavour=flavour)[0]
            h, w = depth.shape
            z0 = float(ps.kp3d[r, 0, 2])
            if flavour == "relative":  # disparity-like already: bright = near
                img, (lo, hi) = depth, np.percentile(depth, [2, 99.8])
            else:  # show inverse depth so the body's relief stands out against the room
                img, lo, hi = 1.0 / np.maximum(depth, 1e-3), 1.0 / (z0 + 6.0), 1.0 / max(z0 - 0.8, 0.3)
            ax.imshow(img, cmap="magma", vmin=lo, vmax=hi, interpolation="nearest")
            to_map = np.array([w / W, h / H])
            gt = (ps.kp2d_gt[r] + 0.5) * to_map - 0.5
            for j, p in H36M17.bones:
                ax.plot(gt[[j, p], 0], gt[[j, p], 1], color="#7fd4ff", lw=1.2)
            vis = np.asarray(ps.visible[r], dtype=bool)
            ax.scatter(gt[vis, 0], gt[vis, 1], s=9, c="#3ddc4a", zorder=3)
            ax.scatter(gt[~vis, 0], gt[~vis, 1], s=28, c="#ff3030", marker="x", zorder=4, linewidths=1.4)
            det = (ps.kp2d[r] + 0.5) * to_map - 0.5
            ax.scatter(det[:, 0], det[:, 1], s=10, c="white", marker="+", zorder=5, linewidths=0.7)
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
            label = labels[i] if labels else str(ps.meta.get("extra", {}).get("synthetic", {}).get("domain", ""))
            ax.set_title(f"{label} {ps.clips.action[c]} {ps.clips.camera[c]}\nz={z0:.1f} m, "
                         f"{int((~vis).sum())} occluded", fontsize=7)
    fig.tight_layout(pad=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    buf.seek(0)
    from PIL import Image, PngImagePlugin  # matplotlib's own dependency

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "auglift")  # auglift.outputs recognises its own preview by this

    img = Image.open(buf).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    dest = Path(path)
    with atomic_write(dest) as fh:
        img.save(fh, format="PNG", optimize=True, pnginfo=info)
    return dest
