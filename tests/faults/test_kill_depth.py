"""kill -9 an ``auglift depth`` run at seeded random points, resume, compare with an uninterrupted run.

Two extractions: the synthetic world through the oracle estimator (no frames to decode) and a
real encoded video plus a PNG sequence through a (tiny, randomly initialised) Depth Anything V2
``transformers`` model. Each run is killed several times in a row (at chunk counts and delays
drawn from a seeded generator, the last kill point in or after the merge), the output tree is
checked after every kill (every chunk, PoseSet field and JSON file readable and consistent;
temporary files never read), and the final descriptors must be bit-identical to an
uninterrupted run: chunks are fixed row ranges and the sampling is deterministic.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from _depth_fixtures import make_media_poseset, tiny_transformers_model
from _reliability_fixtures import scan_tree, temp_files
from auglift.depth.extract import CHUNK_DIR, extract_uadd
from auglift.poseset import PoseSet

from ._helpers import Replacements, auglift_cmd, kill_when, run_to_end


def _kill_points(seed: int, n_chunks: int, k: int) -> list[tuple[int, float]]:
    """``k`` increasing chunk counts in [1, n_chunks] (the last one is n_chunks: all chunks written,
    the merge running or done) with random delays of 0-40 ms."""
    rng = np.random.default_rng(seed)
    counts = [*sorted(rng.choice(np.arange(1, n_chunks - 1), size=k - 1, replace=False).tolist()), n_chunks]
    return [(int(c), float(d)) for c, d in zip(counts, rng.uniform(0.0, 0.04, k))]


def _kill_and_resume(ps: Path, args: list[str], n_chunks: int, seed: int, k: int) -> list:
    progress = Replacements(ps, f"{CHUNK_DIR}/*/chunk-*.npz")
    kills = []
    for target, delay in _kill_points(seed, n_chunks, k):
        kill = kill_when(auglift_cmd("depth", str(ps), *args), progress, target, delay)
        kills.append(kill)
        problems = scan_tree(ps)
        assert not problems, (kill, problems)
        PoseSet.load(ps).validate(checksums=True)  # the set itself is always consistent
        if not kill.killed:
            assert kill.returncode == 0, kill.stderr
            break
    # leftovers of killed writes are never read: add junk under the names they would have
    (kdir,) = (ps / CHUNK_DIR).iterdir()
    for junk in (kdir / ".chunk-000003.npz.k1ll3d.tmp", ps / ".uadd.npy.k1ll3d.tmp", ps / ".uadd.npy.staged"):
        junk.write_bytes(b"partial write")
    leftovers = temp_files(ps)
    run_to_end(auglift_cmd("depth", str(ps), *args))
    assert all(p.exists() or p.name.endswith(".staged") for p in leftovers)  # harmless, left in place
    return kills


def _same_descriptors(a: Path, b: Path) -> None:
    pa, pb = PoseSet.load(a).validate(checksums=True), PoseSet.load(b).validate(checksums=True)
    np.testing.assert_array_equal(np.asarray(pa.uadd), np.asarray(pb.uadd))
    np.testing.assert_array_equal(np.asarray(pa.uadd_valid), np.asarray(pb.uadd_valid))
    assert pa.meta["depth_model"] == pb.meta["depth_model"]


def test_kill_oracle_extraction_and_resume(tmp_path):
    from auglift.datasets.synthetic import generate
    from auglift.depth.estimators import OracleEstimator

    ps = generate("lab", 640, 0, seq_seconds=(0.4, 0.8)).save(tmp_path / "ps")
    ref = shutil.copytree(ps, tmp_path / "ref")
    res = extract_uadd(ref, OracleEstimator("metric", size=(48, 48)), chunk_frames=16, batch_size=8, progress=False)
    assert res.chunks_total == 40 and res.merged
    kills = _kill_and_resume(ps, ["--model", "oracle", "--oracle-size", "48x48", "--chunk-frames", "16",
                                  "--no-progress"], 40, seed=2024, k=4)
    print("oracle kill points:", [(k.target, round(k.delay, 3), k.progress, k.killed) for k in kills])
    assert sum(k.killed for k in kills) >= 3, kills  # the run really was interrupted at 3+ points
    _same_descriptors(ps, ref)


def test_kill_video_extraction_and_resume(tmp_path):
    """A real mp4 (OpenCV decoding, sequential reads and seeks after resume) and a PNG sequence."""
    from auglift.depth.estimators import DepthAnythingV2

    ps = make_media_poseset(tmp_path / "data", frames=(150, 90), w=64, h=48, seed=1)
    model = tmp_path / "da_tiny"
    tiny_transformers_model().save_pretrained(model)
    ref = shutil.copytree(ps, tmp_path / "ref")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the child processes run one thread: same kernels, same sums
    try:
        est = DepthAnythingV2.from_pretrained(model, device="cpu", input_size=28, max_batch=6)
        res = extract_uadd(ref, est, chunk_frames=6, batch_size=6, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert res.chunks_total == 40 and res.merged
    kills = _kill_and_resume(ps, ["--model", str(model), "--input-size", "28", "--batch-size", "6",
                                  "--chunk-frames", "6", "--device", "cpu", "--no-progress"], 40, seed=7, k=4)
    print("video kill points:", [(k.target, round(k.delay, 3), k.progress, k.killed) for k in kills])
    assert sum(k.killed for k in kills) >= 3, kills
    _same_descriptors(ps, ref)
