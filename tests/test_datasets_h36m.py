"""Human3.6M converters: MMPose and VideoPose3D layouts, built from known poses in the real formats."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from _dataset_fixtures import (
    H36M17_FROM_32,
    H36M_CAMS,
    _Evil,
    write_h36m_mmpose,
    write_h36m_vp3d,
)
from auglift.cli import main
from auglift.datasets.h36m import H36M_CAMERAS, canonical_action, convert, world_to_camera_vp3d
from auglift.geometry import project
from auglift.poseset import PoseSet
from auglift.skeleton import to_h36m


def _reproj(ps: PoseSet) -> np.ndarray:
    c = ps.clip
    uv = project(ps.kp3d, ps.clips.intrinsics[c], ps.clips.distortion[c])
    return np.linalg.norm(uv - ps.kp2d_gt, axis=-1)


def test_mmpose_layout_joints_cameras_splits(tmp_path, capsys):
    truth = write_h36m_mmpose(tmp_path / "h36m")
    assert main(["prepare", "h36m", "--root", str(tmp_path / "h36m"), "--out", str(tmp_path / "out"),
                 "--layout", "mmpose", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "reprojection of kp3d vs the dataset's 2D" in text and "wrote" in text
    for split, subjects in (("train", {"S1", "S5"}), ("test", {"S9"})):
        ps = PoseSet.load(tmp_path / "out" / split, validate=True)
        t = truth[split]
        assert set(ps.clips.subject) == subjects and set(ps.clips.split) == {split}
        assert len(ps.clips) == len(subjects) * 4 * 4
        assert set(ps.clips.action) == {"Directions 1", "Photo", "Greeting", "SittingDown 1"}
        # rows keep the file's order, so MMPose-aligned detection arrays stay aligned
        np.testing.assert_allclose(ps.kp3d, t["S"][..., :3], atol=1e-6)
        np.testing.assert_allclose(ps.kp2d_gt, t["part"][..., :2], atol=1e-4)
        np.testing.assert_array_equal(ps.kp2d, ps.kp2d_gt)
        assert ps.visible.all() and (np.asarray(ps.conf) == 1).all()
        # camera frame: projecting kp3d with the clip's intrinsics + distortion lands on the 2D
        assert _reproj(ps).max() < 1.0
        # frame sources rebuild every image name
        names = [f"images/{t['imgname'][i]}" for i in range(len(ps))]
        rebuilt = [ps.clips.source[c].format(frame=f, frame1=f + 1) for c, f in zip(ps.clip, ps.frame)]
        assert rebuilt == names
        cam = ps.clips.camera.tolist().index("54138969")
        assert (ps.clips.width[cam], ps.clips.height[cam]) == (1000, 1002)
        cp = H36M_CAMERAS["54138969"]
        np.testing.assert_allclose(ps.clips.intrinsics[cam], [*cp["f"], *cp["c"]])
        np.testing.assert_allclose(ps.clips.distortion[cam], [cp["k"][0], cp["k"][1], *cp["p"], cp["k"][2]])
        assert ps.meta["frame_root"] == str((tmp_path / "h36m").resolve())
        assert ps.meta["extra"]["reprojection_px"]["max"] < 1.0 and ps.meta["extra"]["kp2d_source"] == "gt"


def test_mmpose_skip_damaged_and_subsampling(tmp_path):
    write_h36m_mmpose(tmp_path / "h36m", frames=10)
    ps = convert(tmp_path / "h36m", splits=["test"], skip_damaged=True, step=2, progress_bar=False)
    assert set(ps.clips.action) == {"Directions 1", "Photo"}  # S9 Greeting and SittingDown 1 dropped
    assert (ps.clips.fps == 25.0).all()
    np.testing.assert_array_equal(ps.frame[ps.clip == 0], [0, 2, 4, 6, 8])
    full = convert(tmp_path / "h36m", splits=["test"], progress_bar=False)
    assert len(full.clips) == 16 and len(full) == 4 * len(ps)  # twice the clips, twice the frames


def test_mmpose_other_fps_folder(tmp_path):
    write_h36m_mmpose(tmp_path / "h36m", frames=20, sample_rate=5, splits={"train": ["S1"]})
    ps = convert(tmp_path / "h36m", splits=["train"], progress_bar=False)
    assert ps.meta["source"] == "h36m/mmpose/fps10" and (ps.clips.fps == 10.0).all()
    np.testing.assert_array_equal(ps.frame[ps.clip == 0], [0, 5, 10, 15])


def test_videopose3d_layout_world_to_camera(tmp_path):
    truth = write_h36m_vp3d(tmp_path / "vp3d")
    assert main(["prepare", "h36m", "--root", str(tmp_path / "vp3d"), "--out", str(tmp_path / "out"),
                 "--layout", "videopose3d", "--no-progress"]) == 0
    train = PoseSet.load(tmp_path / "out" / "train", validate=True)
    test = PoseSet.load(tmp_path / "out" / "test", validate=True)
    assert set(train.clips.subject) == {"S1"} and set(test.clips.subject) == {"S9", "S11"}
    for ps in (train, test):
        assert _reproj(ps).max() < 1e-3  # kp2d_gt is our projection
        for c in range(len(ps.clips)):
            s, a, cam = ps.clips.subject[c], ps.clips.action[c], ps.clips.camera[c]
            ci = H36M_CAMS.index(cam)
            rows = ps.clip == c
            # camera frame computed independently (scipy quaternions) agrees
            np.testing.assert_allclose(ps.kp3d[rows], truth["cam3d"][(s, a, ci)], atol=2e-5)
            # and our OpenCV-order projection is within a pixel of VideoPose3D's own 2D ground truth
            err = np.linalg.norm(ps.kp2d_gt[rows] - truth["gt2d"][s][a][ci], axis=-1)
            assert err.max() < 1.0
            assert ps.clips.source[c].startswith(f"{s}/Videos/")
    assert "Photo 1" in set(test.clips.action)
    src = test.clips.source[test.clips.action.tolist().index("Photo 1")]
    assert src == "S9/Videos/Photo 1.54138969.mp4"


def test_videopose3d_detections_trimmed_and_video_names(tmp_path):
    truth = write_h36m_vp3d(tmp_path / "vp3d", subjects=("S9",), actions=("Photo 1",))
    vids = tmp_path / "vp3d" / "S9" / "Videos"
    vids.mkdir(parents=True)
    (vids / "TakingPhoto 1.55011271.mp4").write_bytes(b"")
    ps = convert(tmp_path / "vp3d", layout="videopose3d", keypoints="cpn_ft_h36m_dbb", progress_bar=False)
    assert ps.meta["extra"]["kp2d_source"] == "cpn_ft_h36m_dbb"
    for c in range(len(ps.clips)):
        ci = H36M_CAMS.index(ps.clips.camera[c])
        det = truth["det2d"]["S9"]["Photo 1"][ci]
        np.testing.assert_allclose(ps.kp2d[ps.clip == c], det[:10], atol=1e-5)  # longer stream trimmed
    assert "S9/Videos/TakingPhoto 1.55011271.mp4" in set(ps.clips.source)  # raw name found on disk


def test_videopose3d_coco_layout_detections(tmp_path):
    write_h36m_vp3d(tmp_path / "vp3d", subjects=("S11",), actions=("Walking",), detections=None)
    rng = np.random.default_rng(1)
    coco = {"S11": {"Walking": [rng.uniform(0, 1000, (10, 17, 3)).astype(np.float32) for _ in range(4)]}}
    for arr in coco["S11"]["Walking"]:
        arr[..., 2] = rng.uniform(0.2, 1.0, (10, 17))
    np.savez(tmp_path / "vp3d" / "data_2d_h36m_detectron_pt_coco.npz", positions_2d=coco,
             metadata={"layout_name": "coco", "num_joints": 17})
    ps = convert(tmp_path / "vp3d", layout="videopose3d", keypoints="detectron_pt_coco", progress_bar=False)
    arr = coco["S11"]["Walking"][0]
    kp, conf = to_h36m(arr[..., :2], "coco17", arr[..., 2])
    np.testing.assert_allclose(ps.kp2d[ps.clip == 0], kp, atol=1e-4)
    np.testing.assert_allclose(ps.conf[ps.clip == 0], conf, atol=1e-6)


def test_videopose3d_short_detections_is_an_error(tmp_path, capsys):
    write_h36m_vp3d(tmp_path / "vp3d", subjects=("S1",), actions=("Walking",), detections=None)
    short = {"S1": {"Walking": [np.zeros((4, 17, 2), np.float32)] * 4}}
    np.savez(tmp_path / "vp3d" / "data_2d_h36m_short.npz", positions_2d=short, metadata={})
    code = main(["prepare", "h36m", "--root", str(tmp_path / "vp3d"), "--out", str(tmp_path / "o"),
                 "--layout", "videopose3d", "--keypoints", "short", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "has 4 frames but the 3D sequence has 10" in err[0]


def test_hostile_cameras_pickle_is_refused(tmp_path):
    write_h36m_mmpose(tmp_path / "h36m", frames=3, splits={"test": ["S9"]})
    with open(tmp_path / "h36m" / "annotation_body3d" / "cameras.pkl", "wb") as fh:
        pickle.dump({("S9", "54138969"): _Evil()}, fh)
    out = subprocess.run([sys.executable, "-m", "auglift", "prepare", "h36m", "--root", str(tmp_path / "h36m"),
                          "--out", str(tmp_path / "o"), "--no-progress"], capture_output=True, text=True)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1
    assert "cameras.pkl" in lines[0] and "posix.system" in lines[0] and "not allowed" in lines[0]


def test_hostile_videopose3d_archive_is_refused(tmp_path, capsys):
    (tmp_path / "vp3d").mkdir()
    np.savez(tmp_path / "vp3d" / "data_3d_h36m.npz", positions_3d={"S1": {"Walking": _Evil()}})
    assert main(["prepare", "h36m", "--root", str(tmp_path / "vp3d"), "--out", str(tmp_path / "o"),
                 "--layout", "videopose3d", "--no-progress"]) == 2
    assert "not allowed" in capsys.readouterr().err


def test_bad_options_are_config_errors(tmp_path, capsys):
    write_h36m_mmpose(tmp_path / "h36m", frames=2, splits={"test": ["S9"]})
    root = str(tmp_path / "h36m")
    assert main(["prepare", "h36m", "--root", root, "--out", str(tmp_path / "o"), "--kp2d", "gt"]) == 2
    assert "option 'kp2d' does not apply to dataset h36m" in capsys.readouterr().err
    assert main(["prepare", "h36m", "--root", root, "--out", str(tmp_path / "o"), "--keypoints", "cpn"]) == 2
    assert "videopose3d only" in capsys.readouterr().err
    assert main(["prepare", "nope", "--root", root, "--out", str(tmp_path / "o")]) == 2
    assert "unknown dataset" in capsys.readouterr().err
    assert main(["prepare", "h36m", "--root", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2


def test_missing_npz_field(tmp_path, capsys):
    write_h36m_mmpose(tmp_path / "h36m", frames=2, splits={"test": ["S9"]})
    path = tmp_path / "h36m" / "annotation_body3d" / "fps50" / "h36m_test.npz"
    z = dict(np.load(path))
    z.pop("S")
    np.savez(path, **z)
    assert main(["prepare", "h36m", "--root", str(tmp_path / "h36m"), "--out", str(tmp_path / "o")]) == 2
    assert "h36m_test.npz: S: missing from the archive" in capsys.readouterr().err
    assert main(["prepare", "h36m", "--root", str(tmp_path / "h36m"), "--out", str(tmp_path / "o"),
                 "--splits", "train"]) == 2  # asked for explicitly, so its absence is an error
    assert "h36m_train.npz: file not found" in capsys.readouterr().err


def test_canonical_action_names():
    assert canonical_action("Directions_1") == "Directions 1"
    assert canonical_action("TakingPhoto") == "Photo"
    assert canonical_action("WalkingDog_1") == "WalkDog 1"
    assert canonical_action("Walking 1") == "Walking 1"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=4, max_size=4).filter(
    lambda q: np.linalg.norm(q) > 0.1))
def test_quaternion_matches_scipy(q):
    w, x, y, z = np.asarray(q) / np.linalg.norm(q)  # the rotation matrix of a (w, x, y, z) quaternion, by hand
    hand = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    np.testing.assert_allclose(hand, Rotation.from_quat([x, y, z, w]).as_matrix(), atol=1e-9)
    X, c = np.array([[0.3, -1.2, 2.0], [1.0, 0.5, -0.7]]), np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(world_to_camera_vp3d(X, np.array(q), c), (X - c) @ hand, atol=1e-9)


def test_h36m32_reduction_matches_videopose3d_joint_list():
    X = np.random.default_rng(0).normal(size=(3, 32, 3))
    np.testing.assert_array_equal(to_h36m(X, "h36m32")[0], X[:, H36M17_FROM_32])


def test_info_shows_2d_source_and_reprojection(tmp_path, capsys):
    write_h36m_mmpose(tmp_path / "h36m", frames=3, splits={"test": ["S9"]})
    assert main(["prepare", "h36m", "--root", str(tmp_path / "h36m"), "--out", str(tmp_path / "o"),
                 "--combined", "--json", "--no-progress"]) == 0
    assert '"written"' in capsys.readouterr().out
    assert main(["info", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "kp2d        gt" in text and "reprojection of kp3d vs the dataset's 2D: median" in text
    assert "1000x1002" in text and "S9" in text
