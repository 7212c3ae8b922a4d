"""``auglift infer``: a synthetic video written with OpenCV and its keypoints in real formats go through
keypoint matching, tracking, a tiny random Depth Anything V2 (``save_pretrained`` directory), a small
lifter trained here, root estimation, outputs and rendering; plus the clear errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from _depth_fixtures import tiny_transformers_model
from _infer_fixtures import train_lifter, write_coco_results, write_npy_keypoints, write_video
from auglift.checkpoint import Checkpoint, Provenance
from auglift.cli import main
from auglift.depth.estimators import DepthAnythingV2
from auglift.depth.uadd import RESEARCH_STATS, ScaleAdaptiveRadius, descriptor_config, sample_uadd
from auglift.errors import ConfigError, DataError
from auglift.infer import default_intrinsics, depth_settings, infer
from auglift.video import open_input

pytestmark = pytest.mark.xdist_group("infer")

FRAMES = 24


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True, raising=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("infer")
    torch.set_num_threads(1)
    video = write_video(d / "walk.mp4", frames=FRAMES)
    tiny_transformers_model("metric", max_depth=20, seed=1).save_pretrained(d / "da_metric")
    tiny_transformers_model("relative", seed=2).save_pretrained(d / "da_relative")
    return {
        "dir": d, "video": video, "mp4": d / "walk.mp4",
        "coco": write_coco_results(d / "walk_coco.json", video),
        "npy": write_npy_keypoints(d / "walk.npy", video),
        "tcn_uadd": train_lifter(d, model="tcn", channels="uadd"),
        "sb_xy": train_lifter(d, model="simple_baseline", channels="xy"),
        "da_metric": d / "da_metric", "da_relative": d / "da_relative",
    }


def run_cli(args, capsys):
    capsys.readouterr()
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# ----------------------------------------------------------------------------- the whole run
def test_video_with_coco_keypoints_tiny_depth_model_and_trained_lifter(world, tmp_path):
    out = tmp_path / "out"
    res = infer(world["mp4"], world["tcn_uadd"], out_dir=out, keypoints=world["coco"], depth=world["da_metric"],
                depth_input_size=126, render=tmp_path / "walk_3d.mp4", device="cpu", progress=False)
    # the right number of frames, every one detected, finite outputs
    assert len(res) == FRAMES
    assert res.frame.tolist() == list(range(FRAMES))
    assert res.detected.all() and (res.track == 0).all()
    assert np.isfinite(res.kp3d).all() and np.isfinite(res.root).all()
    np.testing.assert_array_equal(res.kp3d[:, 0], 0.0)  # root-relative
    assert (res.root[:, 2] > 0).all()
    assert res.uadd_valid.mean() > 0.9 and np.isfinite(res.uadd[res.uadd_valid]).all()
    # the tracker kept the large (near) person although the file lists the small one first
    truth = world["video"]["kp2d"][:, 0]
    direct = [1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16]  # joints COCO-17 has as such (hips, limbs)
    err = np.linalg.norm(res.kp2d[:, direct] - truth[:, direct], axis=-1)
    assert np.median(err) < 2.5
    # outputs on disk: NumPy without pickle, JSON with the same numbers and the metadata
    with np.load(out / "poses3d.npz", allow_pickle=False) as z:
        for k in ("kp3d", "root", "kp2d", "conf", "uadd", "uadd_valid", "frame", "track", "detected"):
            np.testing.assert_array_equal(z[k], res.arrays[k])
        assert z["kp3d"].shape == (FRAMES, 17, 3) and z["intrinsics"].tolist() == default_intrinsics(320, 240).tolist()
    doc = json.loads((out / "poses3d.json").read_text())
    assert doc["format"] == "auglift.poses3d" and doc["input"]["frames"] == FRAMES
    assert doc["channels"] == ["x", "y", "c", "d", "d_min", "d_max"]
    assert doc["depth_model"]["kind"] == "metric" and doc["root"]["available"]
    np.testing.assert_allclose(np.array(doc["arrays"]["kp3d"], dtype=float), res.kp3d, atol=1e-5)
    for stage in ("2D", "tracking", "depth", "lifter", "render"):
        assert doc["timings"][stage]["frames"] > 0 and doc["timings"][stage]["fps"] > 0, stage
    # the rendering: one output frame per input frame, the frame next to a square 3D panel
    import cv2

    cap = cv2.VideoCapture(str(tmp_path / "walk_3d.mp4"))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    assert (n, w, h) == (FRAMES, 320 + 240, 240)


def test_cli_infer_all_tracks_prints_stage_rates(world, tmp_path, capsys):
    rc, out, err = run_cli(["infer", world["mp4"], "--checkpoint", world["tcn_uadd"], "--keypoints", world["coco"],
                            "--depth", world["da_metric"], "--depth-input-size", 126, "--all", "--device", "cpu",
                            "--out", tmp_path / "o", "--render", tmp_path / "r.gif", "--render-height", 120,
                            "--no-progress"], capsys)
    assert rc == 0, err
    for stage in ("2D", "tracking", "depth", "lifter", "render"):
        assert any(line.startswith(stage + " ") for line in out.splitlines()), out
    with np.load(tmp_path / "o" / "poses3d.npz", allow_pickle=False) as z:
        track, frame = z["track"], z["frame"]
    assert sorted(set(track.tolist())) == [0, 1]
    for t in (0, 1):
        assert frame[track == t].tolist() == list(range(FRAMES))
    assert (tmp_path / "r.gif").stat().st_size > 0
    from PIL import Image

    with Image.open(tmp_path / "r.gif") as im:
        assert im.n_frames == FRAMES and im.size == (160 + 120, 120)


def test_descriptors_are_sampled_as_the_checkpoint_says(world, tmp_path):
    """The training set's descriptor options (recorded in the checkpoint) decide how infer samples."""
    ckpt = Checkpoint.load(world["tcn_uadd"])
    assert ckpt.provenance.depth_model == "oracle-metric"  # train.py records the training set's depth model
    radius = ScaleAdaptiveRadius(k=0.05, r_max=12.0)
    ckpt = dataclasses.replace(ckpt, provenance=Provenance.of("h36m17", {
        "name": "x", "kind": "metric", "descriptor": descriptor_config(radius, RESEARCH_STATS, "fast", 61)}))
    s = depth_settings(ckpt).descriptor
    assert (s.radius, s.stats, s.mode, s.points) == (radius, RESEARCH_STATS, "fast", 61)
    res = infer(world["mp4"], ckpt, out_dir=tmp_path / "o", keypoints=world["npy"], depth=world["da_metric"],
                depth_input_size=126, device="cpu", progress=False)
    assert res.meta["depth_model"]["descriptor"] == ckpt.provenance.depth_model["descriptor"]
    # the same descriptors straight from the depth model's maps of the decoded frames
    est = DepthAnythingV2.from_pretrained(world["da_metric"], device="cpu", input_size=126)
    src = open_input(world["mp4"])
    with src.reader() as rd:
        maps = est.predict(rd.read(np.arange(FRAMES)))
    ref, valid = sample_uadd(maps, res.kp2d, res.conf, radius=radius, stats=RESEARCH_STATS, mode="fast", points=61)
    np.testing.assert_array_equal(valid, res.uadd_valid)
    np.testing.assert_allclose(res.uadd[valid], ref[valid], rtol=1e-5, atol=1e-5)


def test_depth_every_reuses_the_nearest_map(world, tmp_path):
    full = infer(world["mp4"], world["tcn_uadd"], out_dir=tmp_path / "a", keypoints=world["npy"],
                 depth=world["da_metric"], depth_input_size=126, device="cpu", progress=False)
    sub = infer(world["mp4"], world["tcn_uadd"], out_dir=tmp_path / "b", keypoints=world["npy"],
                depth=world["da_metric"], depth_input_size=126, depth_every=4, device="cpu", progress=False)
    assert sub.timings["depth"]["frames"] == FRAMES // 4
    own = np.arange(FRAMES) % 4 == 0  # depth-model frames are described exactly as with every frame
    np.testing.assert_allclose(sub.uadd[own], full.uadd[own], rtol=1e-6, atol=1e-6)
    assert np.isfinite(sub.kp3d).all()


def test_keypoint_array_and_a_checkpoint_without_depth(world, tmp_path):
    """An xy checkpoint needs no depth model: 'auto' loads none; no absolute root then."""
    res = infer(world["mp4"], world["sb_xy"], out_dir=tmp_path / "o", keypoints=world["npy"], device="cpu",
                progress=False)
    assert len(res) == FRAMES and np.isfinite(res.kp3d).all()
    assert np.isnan(res.root).all() and np.isnan(res.uadd).all() and not res.uadd_valid.any()
    assert res.meta["depth_model"] is None and not res.meta["root"]["available"]
    assert "depth" not in res.timings
    np.testing.assert_allclose(res.kp2d, world["video"]["kp2d"][:, 0], atol=1e-4)  # H36M-17 arrays as given
    half = infer(world["mp4"], world["sb_xy"], out_dir=tmp_path / "bf16", keypoints=world["npy"], device="cpu",
                 amp="bf16", progress=False)
    assert half.meta["amp"] == "bf16"
    np.testing.assert_allclose(half.kp3d, res.kp3d, atol=0.02)  # bfloat16 autocast: within 2 cm


def test_relative_depth_gives_no_absolute_root(world, tmp_path):
    res = infer(world["mp4"], world["sb_xy"], out_dir=tmp_path / "o", keypoints=world["npy"],
                depth=world["da_relative"], depth_input_size=126, device="cpu", progress=False)
    assert res.uadd_valid.any() and np.isnan(res.root).all()
    assert res.meta["units"]["uadd"] == "relative"


def test_image_folder_with_file_name_ids_and_single_image(world, tmp_path):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    src = open_input(world["mp4"])
    with src.reader() as rd:
        imgs = rd.read(np.arange(12))
    for i, im in enumerate(imgs):  # frame_1 ... frame_12: natural order, not 1, 10, 11, 12, 2, ...
        cv2.imwrite(str(folder / f"frame_{i + 1}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    recs = json.loads(Path(world["coco"]).read_text())
    for r in recs:
        r["image_id"] = f"frames/frame_{r['image_id'] + 1}.png"
    named = tmp_path / "alphapose.json"
    named.write_text(json.dumps([r for r in recs if int(r["image_id"].split("_")[1].split(".")[0]) <= 12]))
    res = infer(folder, world["sb_xy"], out_dir=tmp_path / "o", keypoints=named, device="cpu", progress=False)
    assert res.meta["input"]["kind"] == "images" and len(res) == 12
    truth = world["video"]["kp2d"][:12, 0]
    assert np.median(np.linalg.norm(res.kp2d[:, 1] - truth[:, 1], axis=-1)) < 2.5  # frame order kept
    one = infer(folder / "frame_3.png", world["tcn_uadd"], out_dir=tmp_path / "one",
                keypoints=write_npy_keypoints(tmp_path / "one.npy", world["video"], frames=1),
                depth=world["da_metric"], depth_input_size=126, device="cpu", progress=False)
    assert len(one) == 1 and np.isfinite(one.kp3d).all()  # a temporal lifter on one frame: edge padding


# ----------------------------------------------------------------------------- clear errors
def one_line_error(rc, err):
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("auglift: error: "), err
    return lines[0]


def test_corrupt_video_is_a_clear_error(world, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    line = one_line_error(*run_cli(["infer", bad, "-c", world["sb_xy"], "-k", world["npy"], "--out", tmp_path / "o"],
                                   capsys)[::2])
    assert "broken.mp4" in line and "video" in line
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(Path(world["mp4"]).read_bytes()[: 3000])  # truncated: the index at the end is gone
    line = one_line_error(*run_cli(["infer", cut, "-c", world["sb_xy"], "-k", world["npy"], "--out", tmp_path / "o"],
                                   capsys)[::2])
    assert "cut.mp4" in line


def test_keypoints_for_another_number_of_frames_are_a_clear_error(world, tmp_path, capsys):
    short = write_npy_keypoints(tmp_path / "short.npy", world["video"], frames=FRAMES - 3)
    line = one_line_error(*run_cli(["infer", world["mp4"], "-c", world["sb_xy"], "-k", short, "--out",
                                    tmp_path / "o"], capsys)[::2])
    assert "short.npy" in line and "mismatched frame count" in line and f"{FRAMES - 3} frames" in line
    longer = write_coco_results(tmp_path / "long.json", {**world["video"], "frames": FRAMES},
                                frames=range(FRAMES), one_based=True)
    line = one_line_error(*run_cli(["infer", world["mp4"], "-c", world["sb_xy"], "-k", longer, "--out",
                                    tmp_path / "o"], capsys)[::2])
    assert "long.json" in line and "mismatched frame count" in line and "--id-scheme frame1" in line
    rc, _, err = run_cli(["infer", world["mp4"], "-c", world["sb_xy"], "-k", longer, "--id-scheme", "frame1",
                          "--out", tmp_path / "o"], capsys)
    assert rc == 0, err


def test_depth_checkpoint_without_depth_model_is_a_clear_error(world, tmp_path, capsys):
    line = one_line_error(*run_cli(["infer", world["mp4"], "-c", world["tcn_uadd"], "-k", world["npy"],
                                    "--depth", "none", "--out", tmp_path / "o"], capsys)[::2])
    assert "needs depth descriptors" in line and "--depth" in line and "uadd" in line
    assert not (tmp_path / "o").exists()  # refused before any work
    # relative depth for a metric checkpoint
    with pytest.raises(ConfigError, match="trained on metric depth"):
        infer(world["mp4"], world["tcn_uadd"], out_dir=tmp_path / "o", keypoints=world["npy"],
              depth=world["da_relative"], device="cpu")
    # the default hub id, offline: tells the user what to pass instead
    line = one_line_error(*run_cli(["infer", world["mp4"], "-c", world["tcn_uadd"], "-k", world["npy"],
                                    "--out", tmp_path / "o"], capsys)[::2])
    assert "Depth-Anything-V2-Metric-Indoor-Large-hf" in line and "save_pretrained directory" in line
    assert ".pth" in line


def test_other_input_errors(world, tmp_path):
    with pytest.raises(DataError, match="input not found"):
        infer(tmp_path / "nope.mp4", world["sb_xy"], out_dir=tmp_path / "o", keypoints=world["npy"])
    with pytest.raises(ConfigError, match="--render"):
        infer(world["mp4"], world["sb_xy"], out_dir=tmp_path / "o", keypoints=world["npy"], render=tmp_path / "x.png")
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    with pytest.raises(DataError, match="no person"):
        infer(world["mp4"], world["sb_xy"], out_dir=tmp_path / "o", keypoints=empty, device="cpu")
    with pytest.raises(DataError, match="no images"):
        (tmp_path / "nothing").mkdir()
        infer(tmp_path / "nothing", world["sb_xy"], out_dir=tmp_path / "o", keypoints=world["npy"])
