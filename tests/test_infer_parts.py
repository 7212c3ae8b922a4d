"""Parts of ``auglift infer``: tracking, keypoint-file reading and frame matching, the absolute-root rule
(checked against the synthetic world's exact depth), intrinsics, and the rendering helpers."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _train_fixtures import TEMPLATE
from auglift.errors import ConfigError, DataError
from auglift.geometry import project
from auglift.infer import default_intrinsics, estimate_root
from auglift.keypoints2d import read_keypoints
from auglift.tracking import box_iou, interpolate_track, keypoint_boxes, track_instances
from auglift.video import open_input

INTR = np.array([500.0, 500.0, 320.0, 240.0])


def body_2d(x: float, z: float, frames: np.ndarray, vx: float = 0.0) -> np.ndarray:
    """``(F, 17, 2)`` px of the template body at ``x + vx t`` metres across, ``z`` metres away."""
    pos = np.stack([x + vx * frames, np.zeros(len(frames)), np.full(len(frames), z)], -1)
    return project(TEMPLATE[None] + pos[:, None, :], INTR)


def instances(people: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator | None = None):
    """Flatten per-person ``(frames, kp)`` into instance arrays, optionally shuffled within frames."""
    frame = np.concatenate([f for f, _ in people])
    kp = np.concatenate([k for _, k in people])
    who = np.concatenate([np.full(len(f), i) for i, (f, _) in enumerate(people)])
    order = np.lexsort((rng.random(len(frame)) if rng is not None else who, frame))
    return frame[order], kp[order], np.ones(kp.shape[:2]) * 0.9, who[order]


# ----------------------------------------------------------------------------- tracking
def test_two_people_crossing_keep_their_identities():
    f = np.arange(40)
    near = (f, body_2d(-1.2, 4.0, f, vx=0.06))  # large, walks right
    far = (f, body_2d(1.6, 7.0, f, vx=-0.09))  # small, walks left; the paths cross in the image
    frame, kp, conf, who = instances([far, near], np.random.default_rng(0))
    res = track_instances(frame, kp, conf)
    assert res.num_tracks == 2
    for person in (0, 1):
        assert len(set(res.track[who == person].tolist())) == 1
    assert set(res.track[who == 1].tolist()) == {0}  # the near (larger) person is track 0
    assert res.frames.tolist() == [40, 40] and res.area[0] > res.area[1]


def test_gaps_up_to_max_gap_continue_a_track():
    f = np.concatenate([np.arange(0, 10), np.arange(16, 30)])
    kp = body_2d(0.0, 5.0, f, vx=0.01)
    assert track_instances(f, kp, np.ones(kp.shape[:2]), max_gap=10).num_tracks == 1
    assert track_instances(f, kp, np.ones(kp.shape[:2]), max_gap=5).num_tracks == 2


def test_largest_means_box_area_summed_over_frames():
    short_big = (np.arange(3), body_2d(0.0, 2.5, np.arange(3)))
    long_small = (np.arange(50), body_2d(2.0, 9.0, np.arange(50)))
    frame, kp, conf, who = instances([short_big, long_small])
    res = track_instances(frame, kp, conf)
    assert set(res.track[who == 1].tolist()) == {0}
    assert res.area[0] > res.area[1]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(5, 30), st.integers(0, 2**31 - 1))
def test_instance_order_within_frames_does_not_change_tracks(people, frames, seed):
    rng = np.random.default_rng(seed)
    f = np.arange(frames)
    ps = [(f, body_2d(-3.0 + 2.0 * i, rng.uniform(4, 9), f, vx=rng.uniform(-0.02, 0.02))) for i in range(people)]
    *ordered, who_a = instances(ps)
    a = track_instances(*ordered)
    frame, kp, conf, who = instances(ps, rng)
    b = track_instances(frame, kp, conf)
    assert a.num_tracks == b.num_tracks == people
    # one track per person, and the same (size-ranked) ids whatever the order in the file
    ids_a = {p: set(a.track[who_a == p].tolist()) for p in range(people)}
    assert all(len(v) == 1 for v in ids_a.values())
    assert {p: set(b.track[who == p].tolist()) for p in range(people)} == ids_a


def test_instances_without_confident_keypoints_get_no_track():
    kp = body_2d(0.0, 5.0, np.arange(3))
    conf = np.ones((3, 17))
    conf[1] = 0.0
    res = track_instances(np.arange(3), kp, conf)
    assert res.track.tolist() == [0, -1, 0]


def test_boxes_and_iou():
    kp = np.array([[[0.0, 0.0], [10.0, 20.0], [np.nan, np.nan]]])
    np.testing.assert_array_equal(keypoint_boxes(kp, np.array([[1.0, 1.0, 1.0]])), [[0, 0, 10, 20]])
    assert np.isnan(keypoint_boxes(kp, np.zeros((1, 3)))).all()
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0]])


def test_interpolate_track_fills_gaps_linearly():
    frames = np.array([2, 5, 6])
    kp = np.zeros((3, 17, 2), np.float32)
    kp[:, :, 0] = np.array([0.0, 30.0, 40.0])[:, None]
    kp[1, 3] = np.nan
    conf = np.array([0.3, 0.9, 0.9])[:, None] * np.ones((1, 17), np.float32)
    allf, k, c, det = interpolate_track(frames, kp, conf)
    assert allf.tolist() == [2, 3, 4, 5, 6] and det.tolist() == [True, False, False, True, True]
    np.testing.assert_allclose(k[:, 0, 0], [0, 10, 20, 30, 40])
    np.testing.assert_allclose(c[:, 0], [0.3, 0.5, 0.7, 0.9, 0.9], rtol=1e-6)
    assert np.isnan(k[1:4, 3]).all() and (c[1:4, 3] == 0).all()  # missing in a neighbour: stays missing


# ----------------------------------------------------------------------------- keypoint files
@settings(max_examples=30, deadline=None)
@given(st.integers(1, 12), st.integers(1, 3), st.sampled_from([2, 3]), st.integers(0, 2**31 - 1))
def test_keypoint_arrays_with_absent_people(tmp_path_factory, frames, people, channels, seed):
    rng = np.random.default_rng(seed)
    arr = rng.uniform(0, 500, (frames, people, 17, channels)).astype(np.float32)
    if channels == 3:
        arr[..., 2] = rng.uniform(0.1, 1.0, (frames, people, 17))
    present = rng.random((frames, people)) < 0.7
    arr[~present] = np.nan
    p = tmp_path_factory.mktemp("kp") / "kp.npz"
    np.savez(p, keypoints=arr, fps=np.float32(30))
    det = read_keypoints(p, num_frames=frames)
    assert len(det) == int(present.sum())
    assert det.frame.tolist() == sorted(np.nonzero(present)[0].tolist())
    np.testing.assert_allclose(det.kp, arr[present][..., :2], rtol=1e-6)  # 17 joints in an array: H36M-17
    np.testing.assert_allclose(det.conf, arr[present][..., 2] if channels == 3 else 1.0, rtol=1e-6)


def test_mmpose_video_json_and_numbered_names(tmp_path):
    kp = body_2d(0.0, 5.0, np.arange(6))
    coco = np.zeros((6, 17, 2))
    coco[:, 5:] = kp[:, [11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]]  # COCO shoulders .. ankles
    coco[:, :5] = kp[:, [9, 10, 10, 10, 10]]
    frames = [{"frame_id": i, "instances": [{"keypoints": coco[i].tolist(), "keypoint_scores": [0.8] * 17}]}
              for i in range(6)]
    (tmp_path / "clip.json").write_text(json.dumps(frames))
    det = read_keypoints(tmp_path / "clip.json", num_frames=6)
    assert det.frame.tolist() == list(range(6)) and det.joint_set == "coco17"
    np.testing.assert_allclose(det.kp[:, 11], kp[:, 11], atol=1e-4)  # left shoulder
    np.testing.assert_allclose(det.kp[:, 0], 0.5 * (kp[:, 1] + kp[:, 4]), atol=1e-4)  # pelvis = mean hips
    with pytest.raises(DataError, match="mismatched frame count"):
        read_keypoints(tmp_path / "clip.json", num_frames=5)
    # AlphaPose-style names carrying frame numbers, for a video input
    recs = [{"image_id": f"frames/img_{i + 1:05d}.jpg", "keypoints": np.c_[coco[i], np.full(17, 0.7)].ravel().tolist(),
             "score": 0.7} for i in range(6)]
    (tmp_path / "ap.json").write_text(json.dumps(recs))
    det = read_keypoints(tmp_path / "ap.json", num_frames=6, id_scheme="frame1")
    assert det.frame.tolist() == list(range(6))
    with pytest.raises(DataError, match="frame1"):
        read_keypoints(tmp_path / "ap.json", num_frames=6)


def test_keypoint_file_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_keypoints(tmp_path / "none.json", num_frames=3)
    np.save(tmp_path / "bad.npy", np.zeros((3, 17, 4), np.float32))
    with pytest.raises(DataError, match=r"\(frames, joints, 2\|3\)"):
        read_keypoints(tmp_path / "bad.npy", num_frames=3)
    np.save(tmp_path / "odd.npy", np.zeros((3, 21, 3), np.float32))
    with pytest.raises(DataError, match="21 joints"):
        read_keypoints(tmp_path / "odd.npy", num_frames=3)
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 17, 3)), b=np.zeros((3, 17, 3)))
    with pytest.raises(ConfigError, match="--key"):
        read_keypoints(tmp_path / "two.npz", num_frames=3)
    assert len(read_keypoints(tmp_path / "two.npz", num_frames=3, key="b")) == 0  # all scores 0: nobody
    with pytest.raises(ConfigError, match="id scheme"):
        read_keypoints(tmp_path / "two.npz", num_frames=3, id_scheme="row")


# ----------------------------------------------------------------------------- absolute root
@pytest.mark.parametrize("domain", ["lab", "fitness"])
def test_root_from_exact_depth_on_the_synthetic_world(domain):
    """Joints back-projected at their descriptor depth + the body-surface offset recover the root."""
    from auglift.datasets.synthetic import generate, render_depth
    from auglift.depth.uadd import sample_uadd, to_map_pixels

    ps = generate(domain, frames=120, seed=6)
    rows = np.arange(0, len(ps), 3)
    c = ps.clip[rows]
    maps = render_depth(ps, rows, size=(384, 384), flavour="true")
    kp, kp3d = np.asarray(ps.kp2d_gt[rows]), np.asarray(ps.kp3d[rows], dtype=np.float64)
    conf = np.ones(kp.shape[:2], np.float32)
    kpm, sc = to_map_pixels(kp, np.stack([ps.clips.width[c], ps.clips.height[c]], -1), (384, 384))
    uadd, valid = sample_uadd(maps, kpm, conf, scale=sc)
    root = estimate_root(kp3d - kp3d[:, :1], kp, conf, uadd, valid, ps.clips.intrinsics[c])
    err = np.linalg.norm(root - kp3d[:, 0], axis=-1)
    assert np.median(err) < 0.02 and np.percentile(err, 90) < 0.05
    # no usable joint (low confidence or invalid descriptors): NaN, not a guess
    assert np.isnan(estimate_root(kp3d - kp3d[:, :1], kp, conf * 0.2, uadd, valid, ps.clips.intrinsics[c])).all()


def test_default_intrinsics_rule():
    np.testing.assert_array_equal(default_intrinsics(1920, 1080), [1920, 1920, 959.5, 539.5])
    np.testing.assert_array_equal(default_intrinsics(640, 480, focal=700), [700, 700, 319.5, 239.5])
    with pytest.raises(ConfigError):
        default_intrinsics(640, 480, focal=-1)


def test_open_input_kinds(tmp_path):
    import cv2

    img = np.zeros((30, 40, 3), np.uint8)
    for n in ("b10.png", "b2.png", "a.txt", "b1.jpg"):
        (tmp_path / n).write_bytes(cv2.imencode(".png", img)[1].tobytes() if n != "a.txt" else b"x")
    src = open_input(tmp_path, fps=12)
    assert src.kind == "images" and src.names == ("b1.jpg", "b2.png", "b10.png") and src.fps == 12
    assert (src.width, src.height, src.num_frames) == (40, 30, 3)
    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((31, 40, 3), np.uint8))
    with pytest.raises(DataError, match="40x31"):
        src2 = open_input(tmp_path)
        with src2.reader() as rd:
            rd.read(np.arange(src2.num_frames))
    one = open_input(tmp_path / "b2.png")
    assert one.kind == "image" and one.num_frames == 1


# ----------------------------------------------------------------------------- rendering
def test_render_panels_and_sinks(tmp_path):
    import cv2

    from auglift.render import VideoSink, compose

    frame = np.full((90, 120, 3), 100, np.uint8)
    kp2d = body_2d(0.0, 6.0, np.arange(1))[:, :, :] * 0.2
    pose = TEMPLATE[None].astype(np.float32)
    out = compose(frame, kp2d, np.ones((1, 17)), pose, height=60)
    assert out.shape == (60, 80 + 60, 3)
    assert (out[:, 80:] != 24).any(axis=-1).sum() > 100  # the 3D skeleton and floor were drawn
    empty = compose(frame, np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros((0, 17, 3)), height=60)
    assert (empty[:, 80:] == 24).all()  # nobody: an empty panel
    for suffix in (".mp4", ".gif"):
        sink = VideoSink(tmp_path / f"r{suffix}", fps=10)
        for _ in range(3):
            sink.write(out)
        path = sink.close()
        assert path.exists() and not list(tmp_path.glob(f".r{suffix}*"))
    cap = cv2.VideoCapture(str(tmp_path / "r.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    cap.release()
    with pytest.raises(ConfigError, match="--render"):
        VideoSink(tmp_path / "r.png", fps=10)


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".gif"])
def test_render_into_names_that_are_not_utf8(tmp_path, suffix, monkeypatch):
    # OpenCV crashes (SIGSEGV) on such names: the sink writes through a UTF-8 temporary name/link
    import cv2

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where the link directory goes

    from auglift.render import VideoSink
    from auglift.video import video_capture

    d = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"out-\xff\xfe")))
    target = d / os.fsdecode(b"clip-\xe9" + suffix.encode())
    sink = VideoSink(target, fps=10)
    for k in range(4):
        sink.write(np.full((48, 64, 3), 40 * k, np.uint8))
    assert sink.close() == target
    assert sorted(os.listdir(os.fsencode(d))) == [os.fsencode(target.name)]  # no temporary file or link left
    assert os.listdir(tmp_path / "tmp") == []  # the UTF-8 link directory is gone
    if suffix != ".gif":
        cap = video_capture(str(target))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
        cap.release()
    sink = VideoSink(target.with_name(os.fsdecode(b"x-\xe9" + suffix.encode())), fps=10)
    sink.write(np.zeros((48, 64, 3), np.uint8))
    sink.abort()  # an aborted sink leaves nothing behind either
    assert sorted(os.listdir(os.fsencode(d))) == [os.fsencode(target.name)]
