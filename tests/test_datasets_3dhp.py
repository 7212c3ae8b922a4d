"""MPI-INF-3DHP converter: training annot.mat (v5) + camera.calibration, test annot_data.mat (v7.3), P-STMO npz."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from _dataset_fixtures import HP28_TO_17, write_3dhp_test, write_3dhp_train, write_pstmo
from auglift.cli import main
from auglift.datasets.mpi_inf_3dhp import TEST_CAMERAS, convert, parse_calibration, read_mat
from auglift.errors import ConfigError, DataError
from auglift.geometry import project
from auglift.poseset import PoseSet
from auglift.skeleton import to_h36m


def _reproj(ps: PoseSet) -> np.ndarray:
    c = ps.clip
    uv = project(ps.kp3d, ps.clips.intrinsics[c], ps.clips.distortion[c])
    return np.linalg.norm(uv - ps.kp2d_gt, axis=-1)


@pytest.fixture
def raw_root(tmp_path):
    root = tmp_path / "3dhp"
    train = write_3dhp_train(root, "S1", "Seq1", frames=10)
    t1 = write_3dhp_test(root, "TS1", frames=12, seed=1)
    t5 = write_3dhp_test(root, "TS5", frames=12, seed=2)
    return root, train, {"TS1": t1, "TS5": t5}


def test_raw_layout_train_and_test(raw_root, tmp_path, capsys):
    root, train, test = raw_root
    assert main(["prepare", "mpi_inf_3dhp", "--root", str(root), "--out", str(tmp_path / "out"), "--annot3", "annot3",
                 "--no-progress"]) == 0
    assert "median" in capsys.readouterr().out
    tr = PoseSet.load(tmp_path / "out" / "train", validate=True)
    assert tr.clips.camera.tolist() == ["0", "1", "2", "4", "5", "6", "7", "8"]
    assert set(tr.clips.subject) == {"S1"} and set(tr.clips.action) == {"Seq1"} and (tr.clips.fps == 25).all()
    for c, cam in enumerate(tr.clips.camera):
        t = train[int(cam)]
        rows = tr.clip == c
        want3d = to_h36m(t["annot3"] / 1000.0, "mpi_inf_3dhp28")[0]
        np.testing.assert_allclose(tr.kp3d[rows], want3d, atol=1e-5)
        np.testing.assert_allclose(tr.clips.intrinsics[c], np.array(t["intrinsics"])[[0, 1, 2, 3]])
        assert tr.clips.source[c] == f"S1/Seq1/imageSequence/video_{cam}.avi"
    assert _reproj(tr).max() < 1e-2
    te = PoseSet.load(tmp_path / "out" / "test", validate=True)
    assert te.clips.subject.tolist() == ["TS1", "TS5"] and te.clips.action.tolist() == ["GS", "Outdoor"]
    for c, name in enumerate(te.clips.subject):
        t = test[name]
        rows = te.clip == c
        np.testing.assert_array_equal(te.frame[rows], np.flatnonzero(t["valid"]))  # valid frames only
        want3d = to_h36m(t["annot3"][t["valid"]] / 1000.0, "mpi_inf_3dhp17")[0]
        np.testing.assert_allclose(te.kp3d[rows], want3d, atol=1e-5)
        assert (te.clips.width[c], te.clips.height[c]) == TEST_CAMERAS[name]["size"]
    # TS5 has OpenCV lens distortion; the fixture's 2D came from cv2.projectPoints
    assert _reproj(te).max() < 1e-2
    assert te.clips.source[0].format(frame1=1) == "mpi_inf_3dhp_test_set/TS1/imageSequence/img_000001.jpg"
    assert te.meta["extra"]["annot3"] == "annot3" and te.meta["extra"]["reprojection_px"]["max"] < 1e-2


def test_univ_annot3_by_default_and_all_test_frames(raw_root):
    root, train, test = raw_root
    ps = convert(root, test_frames="all", cameras=[3], progress_bar=False)  # univ_annot3: the benchmark's
    assert ps.meta["extra"]["annot3"] == "univ_annot3"
    tr = ps.select(split="train")
    assert tr.clips.camera.tolist() == ["3"]
    np.testing.assert_allclose(tr.kp3d, to_h36m(train[3]["univ_annot3"] / 1000.0, "mpi_inf_3dhp28")[0], atol=1e-5)
    te = ps.select(split="test", subject="TS1")
    assert len(te) == 12
    np.testing.assert_allclose(te.kp3d, to_h36m(test["TS1"]["univ_annot3"] / 1000.0, "mpi_inf_3dhp17")[0],
                               atol=1e-5)
    # the universal skeleton is rescaled about the pelvis: only the root still projects onto the 2D
    err = _reproj(ps)
    assert err[:, 0].max() < 1e-2 and err.max() > 5.0
    np.testing.assert_allclose(te.kp2d_gt, to_h36m(test["TS1"]["annot2"], "mpi_inf_3dhp17")[0], atol=1e-3)
    assert "reprojection_px" not in ps.meta["extra"]


def test_matlab_versions_are_interchangeable(tmp_path):
    """The reader handles the test file as v7.3 (HDF5) or as a v5 .mat with the same MATLAB sizes."""
    root = tmp_path / "3dhp"
    t = write_3dhp_test(root, "TS2", frames=6)
    path = root / "mpi_inf_3dhp_test_set" / "TS2" / "annot_data.mat"
    a = read_mat(path, ["annot3", "valid_frame"])
    assert a["annot3"].shape == (3, 17, 1, 6) and a["valid_frame"].shape == (1, 6)
    ps73 = convert(root, splits=["test"], progress_bar=False)
    scipy.io.savemat(path, {"annot2": t["annot2"].transpose(2, 1, 0)[:, :, None, :],
                            "annot3": t["annot3"].transpose(2, 1, 0)[:, :, None, :],
                            "univ_annot3": t["univ_annot3"].transpose(2, 1, 0)[:, :, None, :],
                            "valid_frame": t["valid"][None, :].astype(float)})
    ps5 = convert(root, splits=["test"], progress_bar=False)
    np.testing.assert_allclose(ps5.kp3d, ps73.kp3d)
    np.testing.assert_array_equal(ps5.frame, ps73.frame)


@pytest.mark.parametrize(("writer", "field"), [("train", "univ_annot3"), ("test", "valid_frame")])
def test_mat_missing_field_is_one_clear_error(tmp_path, capsys, writer, field):
    root = tmp_path / "3dhp"
    if writer == "train":
        write_3dhp_train(root, frames=3, drop=field)
    else:
        write_3dhp_test(root, frames=3, drop=field)
    assert main(["prepare", "3dhp", "--root", str(root), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f": {field}: missing from the .mat file" in err[0]
    assert ("annot.mat" if writer == "train" else "annot_data.mat") in err[0]


def test_pstmo_layout(tmp_path):
    root = tmp_path / "pstmo"
    t = write_pstmo(root, frames=8)
    ps = convert(root, layout="pstmo", progress_bar=False, frame_root=tmp_path / "frames")
    assert ps.meta["frame_root"] == str((tmp_path / "frames").resolve())
    tr = ps.select(split="train")
    assert tr.clips.camera.tolist() == ["0", "1", "8", "0", "1", "8"]
    assert tr.clips.fps.tolist() == [25.0] * 3 + [50.0] * 3
    d = t["train"]["S1 Seq1"][0]["8"]
    np.testing.assert_allclose(tr.select(subject="S1", camera="8").kp3d,
                               to_h36m(d["data_3d"] / 1000.0, "mpi_inf_3dhp17")[0], atol=1e-5)
    assert _reproj(tr).max() < 1e-2  # 2D made from the same (univ) 3D in this fixture
    te = ps.select(split="test")
    assert te.clips.subject.tolist() == ["TS1", "TS5"] and len(te) == 14  # one invalid frame each
    assert te.clips.source[1].startswith("mpi_inf_3dhp_test_set/TS5/")
    with pytest.raises(ConfigError, match="univ_annot3 only"):
        convert(root, layout="pstmo", annot3="annot3", progress_bar=False)


def test_pstmo_train_frame_mismatch(tmp_path):
    root = tmp_path / "pstmo"
    write_pstmo(root, frames=5)
    bad = {"S1 Seq1": [{"0": {"data_2d": np.zeros((5, 17, 2)), "data_3d": np.ones((4, 17, 3))}}, 25]}
    np.savez(root / "data_train_3dhp.npz", data=bad)
    with pytest.raises(DataError, match="data_2d has 5 frames, data_3d 4"):
        convert(root, layout="pstmo", splits=["train"], progress_bar=False)


def test_calibration_parser(tmp_path):
    p = tmp_path / "camera.calibration"
    p.write_text("Skeletool Camera Calibration File V1.0\nname 0\n  size 2048 2048\n"
                 "  intrinsic 1500 0 1000 0 0 1501 1010 0 0 0 1 0 0 0 0 1\n")
    cams = parse_calibration(p)
    assert cams[0]["size"] == (2048, 2048) and cams[0]["K"][1, 1] == 1501
    p.write_text("name 0\n  size 2048 2048\n  intrinsic 1500 0 1000\n")
    with pytest.raises(DataError, match="expected 16 numbers"):
        parse_calibration(p)
    p.write_text("name 0\n  intrinsic 1500 0 1000 0 0 1501 1010 0 0 0 1 0 0 0 0 1\n")
    with pytest.raises(DataError, match="missing the 'size' line"):
        parse_calibration(p)


def test_hp28_to_17_indices_match_the_test_joint_order():
    X = np.random.default_rng(0).normal(size=(2, 28, 3))
    np.testing.assert_allclose(to_h36m(X, "mpi_inf_3dhp28")[0], to_h36m(X[:, HP28_TO_17], "mpi_inf_3dhp17")[0])
