"""Fixtures for the inference/export tests: a synthetic video written with OpenCV together with its
2D keypoints in real file formats (COCO-17 keypoint results, ``.npy``), and small lifters trained
in the test through :func:`auglift.train.train`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from _train_fixtures import TEMPLATE, add_uadd, moving_poseset, tiny_config, write_config
from auglift.geometry import project

# COCO-17 order (MS-COCO keypoints): nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles
# taken from H36M-17 joints of the template body (the face points around the H36M head joint).
_COCO_FROM_H36M = [9, 10, 10, 10, 10, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]
_FACE = {1: (0.03, -0.02), 2: (-0.03, -0.02), 3: (0.07, 0.0), 4: (-0.07, 0.0)}  # metres, (x, y)


def people_3d(frames: int, seed: int = 0) -> np.ndarray:
    """``(frames, 2, 17, 3)`` metres: a near walking person (large in the image) and a far one (small)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None]
    out = []
    for k, (x0, z0, vx) in enumerate([(-0.3, 3.2, 0.02), (1.4, 8.0, -0.01)]):
        sway = 0.08 * np.sin(0.3 * t + rng.uniform(0, 6, (1, 17, 3)))
        sway[:, 0] = 0.0
        body = TEMPLATE[None] + sway
        root = np.array([x0, 0.1, z0])[None, None, :] + np.array([vx, 0.0, 0.0]) * t
        out.append(body + root)
        del k
    return np.stack(out, 1)


def write_video(path: Path, frames: int = 24, size: tuple[int, int] = (320, 240), focal: float = 320.0,
                fps: float = 25.0, seed: int = 0) -> dict[str, Any]:
    """Draw two stick figures on a textured background, frame by frame, into ``path`` (mp4v).

    Returns the true 3D joints ``(F, 2, 17, 3)``, their projections ``kp2d (F, 2, 17, 2)`` px and the
    intrinsics used.
    """
    import cv2

    w, h = size
    intr = np.array([focal, focal, (w - 1) / 2, (h - 1) / 2])
    kp3d = people_3d(frames, seed)
    kp2d = project(kp3d, intr).astype(np.float32)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    yy, xx = np.mgrid[0:h, 0:w]
    bones = [(c, p) for c, p in enumerate([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]) if p >= 0]
    for f in range(frames):
        img = np.stack([80 + 40 * np.sin(xx / 23 + f / 7), 90 + 30 * np.cos(yy / 17), 100 + 0 * xx], -1)
        img = np.clip(img, 0, 255).astype(np.uint8)
        for person in range(2):
            p = kp2d[f, person]
            for c, par in bones:
                cv2.line(img, tuple(int(v) for v in p[c]), tuple(int(v) for v in p[par]), (230, 230, 230),
                         4 if person == 0 else 2)
        writer.write(img)
    writer.release()
    return {"kp3d": kp3d, "kp2d": kp2d, "intrinsics": intr, "frames": frames, "size": size, "fps": fps}


def coco_keypoints(kp3d: np.ndarray, intr: np.ndarray) -> np.ndarray:
    """COCO-17 keypoints ``(..., 17, 2)`` px of H36M-17 bodies ``(..., 17, 3)`` (face points around the head)."""
    pts = kp3d[..., _COCO_FROM_H36M, :].copy()
    for i, (dx, dy) in _FACE.items():
        pts[..., i, 0] += dx
        pts[..., i, 1] += dy
    return project(pts, intr).astype(np.float64)


def write_coco_results(path: Path, video: dict[str, Any], *, frames: range | None = None, seed: int = 0,
                       one_based: bool = False) -> Path:
    """COCO keypoint results ``[{image_id, category_id, keypoints, score}]``, two people per frame."""
    rng = np.random.default_rng(seed)
    kp = coco_keypoints(video["kp3d"], video["intrinsics"])  # (F, 2, 17, 2)
    recs = []
    for f in frames if frames is not None else range(video["frames"]):
        for person in (1, 0):  # the small person first: the tracker must still pick the large one
            score = rng.uniform(0.6, 0.98, 17)
            xy = kp[f, person] + rng.normal(0, 1.0, (17, 2))
            flat = np.concatenate([xy, score[:, None]], 1).ravel()
            recs.append({"image_id": int(f + one_based), "category_id": 1,
                         "keypoints": [round(float(v), 3) for v in flat], "score": float(score.mean())})
    path.write_text(json.dumps(recs))
    return path


def write_npy_keypoints(path: Path, video: dict[str, Any], frames: int | None = None) -> Path:
    """``(F, 17, 3)`` H36M-17 keypoints (x, y, score) of the large person, as MMPose's detection ``.npy``."""
    kp = video["kp2d"][:, 0]
    n = kp.shape[0] if frames is None else frames
    arr = np.concatenate([kp[:n], np.full((n, 17, 1), 0.9, np.float32)], -1).astype(np.float32)
    np.save(path, arr)
    return path


def train_lifter(tmp: Path, *, model: str = "tcn", channels: str = "uadd", kwargs: dict[str, Any] | None = None,
                 epochs: int = 2, steps: int = 6, depth_model: Any = "oracle-metric") -> Path:
    """Train a small lifter on moving bodies with synthetic descriptors; returns ``best.pt``."""
    from auglift.train import train

    data = tmp / "train_ps"
    if not data.exists():
        add_uadd(moving_poseset(n_clips=4, frames=40, seed=1), depth_model=depth_model).save(data)
    cfg = tiny_config(data, None, tmp / f"run_{model}_{channels}", model=model, kwargs=kwargs, channels=channels,
                      epochs=epochs, batch=32, extra={"optim": {"steps_per_epoch": steps}})
    return Path(train(write_config(tmp / f"{model}_{channels}.toml", cfg)))
