"""3DPW converter: sequence pickles (protocol 2, latin-1 byte buffers) through the restricted unpickler."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

from _dataset_fixtures import pinhole, write_3dpw, write_evil_pickle
from auglift.cli import main
from auglift.datasets.detections import keypoints_to_h36m
from auglift.datasets.pw3d import convert
from auglift.errors import DataError
from auglift.geometry import project
from auglift.poseset import PoseSet
from auglift.skeleton import to_h36m


def test_per_person_clips_camera_frame_and_openpose_2d(tmp_path, capsys):
    root = tmp_path / "3dpw"
    t = write_3dpw(root, "test", frames=10, image=True)
    write_3dpw(root, "train", "outdoors_fencing_01", persons=1, frames=6, seed=3)
    assert main(["prepare", "3dpw", "--root", str(root), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    capsys.readouterr()
    ps = PoseSet.load(tmp_path / "out" / "test", validate=True)
    assert ps.clips.subject.tolist() == ["downtown_walking_00/p0", "downtown_walking_00/p1"]
    assert set(ps.clips.action) == {"downtown_walking"} and (ps.clips.fps == 30).all()
    # campose_valid respected: person 1 loses its last two frames
    np.testing.assert_array_equal(ps.frame[ps.clip == 0], np.arange(10))
    np.testing.assert_array_equal(ps.frame[ps.clip == 1], np.arange(8))
    K = t["K"]
    np.testing.assert_allclose(ps.clips.intrinsics[0], [K[0, 0], K[1, 1], K[0, 2], K[1, 2]])
    assert (ps.clips.width[0], ps.clips.height[0]) == (1080, 1920)  # read from the image header
    for p in range(2):
        rows = ps.clip == p
        keep = t["valid"][p].astype(bool)
        want = to_h36m(t["cam3d"][p][keep], "smpl24")[0]
        np.testing.assert_allclose(ps.kp3d[rows], want, atol=1e-5)
        np.testing.assert_allclose(ps.kp2d_gt[rows], pinhole(want, K[0, 0], K[1, 1], K[0, 2], K[1, 2]), atol=1e-2)
        op = t["poses2d"][p][keep].transpose(0, 2, 1)
        kp, _ = keypoints_to_h36m(op[..., :2], op[..., 2], "openpose18")
        found = op[..., 2].max(axis=1) > 0
        np.testing.assert_array_equal(ps.kp2d_valid[rows], found)
        np.testing.assert_allclose(ps.kp2d[rows][found], kp[found], atol=1e-4)
        assert np.isnan(ps.kp2d[rows][~found]).all() and (ps.conf[rows][~found] == 0).all()
        # frame 0: the left hip is missing, so the pelvis is the right hip alone, at half confidence
        np.testing.assert_allclose(ps.kp2d[rows][0, 0], op[0, 8, :2], atol=1e-4)
        assert ps.conf[rows][0, 0] == pytest.approx(op[0, 8, 2] / 2, rel=1e-5)
    uv = project(ps.kp3d, ps.clips.intrinsics[ps.clip], ps.clips.distortion[ps.clip])
    assert np.abs(uv - ps.kp2d_gt).max() < 1e-2
    assert ps.meta["extra"]["kp2d_source"] == "3dpw_openpose"
    tr = PoseSet.load(tmp_path / "out" / "train")
    assert tr.clips.subject.tolist() == ["outdoors_fencing_01/p0"] and set(tr.clips.split) == {"train"}


def test_ground_truth_2d_option_and_portrait_fallback(tmp_path):
    root = tmp_path / "3dpw"
    write_3dpw(root, "validation", frames=5)
    ps = convert(root, kp2d="gt", progress_bar=False)
    np.testing.assert_array_equal(ps.kp2d, ps.kp2d_gt)
    assert "kp2d_valid" not in ps.fields and (ps.clips.split == "validation").all()
    assert (ps.clips.width[0], ps.clips.height[0]) == (1080, 1920)  # no images: from the principal point


def test_malicious_pickle_is_refused(tmp_path):
    root = tmp_path / "3dpw"
    write_evil_pickle(root / "sequenceFiles" / "test" / "evil_00.pkl")
    out = subprocess.run([sys.executable, "-m", "auglift", "prepare", "3dpw", "--root", str(root),
                          "--out", str(tmp_path / "o"), "--no-progress"], capture_output=True, text=True)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert lines[0].startswith("auglift: error: ") and "evil_00.pkl" in lines[0]
    assert "posix.system" in lines[0] and "not allowed" in lines[0]
    assert not (tmp_path / "o").exists()


def test_missing_field_and_wrong_shapes(tmp_path):
    root = tmp_path / "3dpw"
    write_3dpw(root, "test", frames=4)
    path = root / "sequenceFiles" / "test" / "downtown_walking_00.pkl"
    with open(path, "rb") as fh:
        d = pickle.load(fh, encoding="latin1")
    del d["cam_poses"]
    with open(path, "wb") as fh:
        pickle.dump(d, fh, protocol=2)
    with pytest.raises(DataError, match="cam_poses: missing"):
        convert(root, progress_bar=False)
    d["cam_poses"] = np.tile(np.eye(4), (4, 1, 1))
    d["jointPositions"][0] = np.zeros((4, 69))
    with open(path, "wb") as fh:
        pickle.dump(d, fh, protocol=2)
    with pytest.raises(DataError, match=r"jointPositions\[0\]: expected shape \(4, 72\)"):
        convert(root, progress_bar=False)
