"""Shared fixtures: small PoseSets built from known poses."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from auglift.geometry import project
from auglift.poseset import ClipTable, PoseSet

# Property tests draw the same examples on every run (derived from each test), so a run is
# reproducible and CI does not turn red by chance; `make test-explore` (HYPOTHESIS_PROFILE=explore)
# draws new examples each run to look for new failures. No per-example deadline: a loaded CI machine
# must not turn a slow example into a failure (speed is measured in benchmarks/).
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def make_poseset(n_clips: int = 3, frames: int | list[int] = 20, seed: int = 0,
                 with_optional: bool = True) -> PoseSet:
    """A small valid PoseSet: random bodies ~4-6 m in front of a 1000x1000 camera."""
    rng = np.random.default_rng(seed)
    counts = [frames] * n_clips if isinstance(frames, int) else list(frames)
    n = sum(counts)
    clip = np.repeat(np.arange(len(counts)), counts).astype(np.int32)
    frame = np.concatenate([np.arange(c) for c in counts]).astype(np.int32) if n else np.zeros(0, np.int32)
    root = np.stack([rng.uniform(-0.5, 0.5, n), rng.uniform(-0.2, 0.2, n), rng.uniform(4, 6, n)], -1)
    kp3d = (root[:, None, :] + rng.normal(0, 0.3, (n, 17, 3))).astype(np.float32)
    kp3d[:, 0] = root
    intr = np.tile([1145.0, 1145.0, 500.0, 500.0], (len(counts), 1))
    kp2d_gt = project(kp3d, intr[clip]).astype(np.float32)
    fields = {
        "clip": clip, "frame": frame,
        "kp2d": kp2d_gt + rng.normal(0, 3, kp2d_gt.shape).astype(np.float32),
        "conf": rng.uniform(0.3, 1.0, (n, 17)).astype(np.float32),
        "kp3d": kp3d,
    }
    if with_optional:
        fields |= {"kp2d_gt": kp2d_gt, "visible": rng.uniform(size=(n, 17)) > 0.2}
    clips = ClipTable(
        subject=[f"S{1 + i % 2}" for i in range(len(counts))],
        action=[("walk", "sit", "wave")[i % 3] for i in range(len(counts))],
        camera=[str(i % 4) for i in range(len(counts))],
        split=["train" if i % 2 == 0 else "test" for i in range(len(counts))],
        width=[1000] * len(counts), height=[1000] * len(counts),
        intrinsics=intr, source=[f"videos/clip{i}.mp4" for i in range(len(counts))],
        fps=[50.0] * len(counts),
    )
    return PoseSet(fields, clips, {"source": "test"})


def synthetic_uadd_sets(root: Path) -> Path:
    """Tiny synthetic ``lab`` (train/test subjects) and ``outdoor`` PoseSets with oracle UADD, under ``root``."""
    from auglift.datasets.synthetic import generate
    from auglift.depth.estimators import OracleEstimator
    from auglift.depth.extract import extract_uadd
    from auglift.depth.uadd import DescriptorSpec

    for domain, frames, seed in (("lab", 900, 0), ("outdoor", 200, 1)):
        generate(domain, frames, seed, seq_seconds=(0.4, 0.8)).save(root / domain)
        extract_uadd(root / domain, OracleEstimator("metric", size=(64, 64)), descriptor=DescriptorSpec(mode="fast"),
                     batch_size=64, chunk_frames=512, progress=False)
    return root


@pytest.fixture
def poseset() -> PoseSet:
    return make_poseset()


@pytest.fixture
def saved_poseset(tmp_path, poseset):
    path = tmp_path / "ps"
    poseset.save(path)
    return path
