"""Fit3D converter: IMAR's joints3d_25 and camera_parameters JSON files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from _dataset_fixtures import write_fit3d
from auglift.cli import main
from auglift.datasets.fit3d import convert, read_camera
from auglift.errors import ConfigError, DataError
from auglift.geometry import project
from auglift.poseset import PoseSet


def test_subjects_splits_cameras_and_projection(tmp_path, capsys):
    root = tmp_path / "fit3d"
    truth = write_fit3d(root)
    assert main(["prepare", "fit3d", "--root", str(root), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    capsys.readouterr()
    tr = PoseSet.load(tmp_path / "out" / "train", validate=True)
    te = PoseSet.load(tmp_path / "out" / "test", validate=True)
    assert set(tr.clips.subject) == {"s03"} and set(te.clips.subject) == {"s10"}  # s02 is in neither split
    assert len(tr.clips) == 4 and set(tr.clips.action) == {"squat", "band_pull_apart"}
    for ps in (tr, te):
        assert (ps.clips.fps == 50).all() and (ps.clips.width == 900).all()
        for c in range(len(ps.clips)):
            s, a, cam = ps.clips.subject[c], ps.clips.action[c], ps.clips.camera[c]
            rows = ps.clip == c
            t = truth[(s, a, cam)]
            np.testing.assert_allclose(ps.kp3d[rows], t["cam3d"], atol=1e-5)
            # within a pixel of IMAR's own projection (their tangential model vs our OpenCV order)
            assert np.linalg.norm(ps.kp2d_gt[rows] - t["uv"], axis=-1).max() < 1.0
            assert ps.clips.source[c] == f"train/{s}/videos/{cam}/{a}.mp4"
        uv = project(ps.kp3d, ps.clips.intrinsics[ps.clip], ps.clips.distortion[ps.clip])
        assert np.abs(uv - ps.kp2d_gt).max() < 1e-2
        assert (ps.kp3d[..., 2] > 3.0).all()  # subjects stand ~4.5 m in front of the cameras


def test_options_cameras_subjects_step(tmp_path):
    root = tmp_path / "fit3d"
    write_fit3d(root, frames=9)
    ps = convert(root, cameras=["58860488"], train_subjects=["s02", "s03"], step=2, progress_bar=False)
    assert set(ps.clips.camera) == {"58860488"}
    assert set(ps.select(split="train").clips.subject) == {"s02", "s03"}
    np.testing.assert_array_equal(ps.frame[ps.clip == 0], [0, 2, 4, 6, 8])
    assert (ps.clips.fps == 25).all()
    with pytest.raises(ConfigError, match="both train and test"):
        convert(root, train_subjects=["s10"], progress_bar=False)


def test_camera_json_errors(tmp_path, capsys):
    root = tmp_path / "fit3d"
    write_fit3d(root, subjects=(("train", "s03"),), actions=("squat",), cameras=("50591643",), frames=3)
    cpath = root / "train" / "s03" / "camera_parameters" / "50591643" / "squat.json"
    cam = json.loads(cpath.read_text())
    R, T, intr, dist = read_camera(cpath)
    assert R.shape == (3, 3) and T.shape == (3,) and intr.shape == (4,) and dist.shape == (5,)
    del cam["extrinsics"]["R"]
    cpath.write_text(json.dumps(cam))
    assert main(["prepare", "fit3d", "--root", str(root), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "squat.json: R: missing" in err[0]
    jpath = root / "train" / "s03" / "joints3d_25" / "squat.json"
    jpath.write_text(json.dumps({"joints3d_25": np.zeros((3, 24, 3)).tolist()}))
    with pytest.raises(DataError, match=r"joints3d_25: expected shape \(N, 25, 3\), got \(3, 24, 3\)"):
        convert(root, progress_bar=False)


def test_no_subjects_found(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no Fit3D subjects found"):
        convert(tmp_path / "empty", progress_bar=False)
