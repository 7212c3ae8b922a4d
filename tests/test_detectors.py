"""2D detectors: RTMDet + RTMPose on tiny random ONNX models with the real exports' signatures, the
person choice, model-file resolution, and the detected-vs-ground-truth error report."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the detect extra is not installed")
rtmlib = pytest.importorskip("rtmlib", reason="the detect extra is not installed")

from _detector_fixtures import make_rtmdet, make_rtmpose, make_yolox_raw, spread_peaks  # noqa: E402
from auglift.datasets.detections import keypoints_to_h36m  # noqa: E402
from auglift.detectors import (  # noqa: E402
    PersonCandidates,
    build_detector,
    choose_person,
    detection_errors,
    format_detection_errors,
    poseset_ground_truth_2d,
)
from auglift.detectors.model_files import RTM_MODELS, resolve_model, rtmlib_cache_dir  # noqa: E402
from auglift.detectors.report import auroc, person_height_px  # noqa: E402
from auglift.detectors.rtm import RTMPoseDetector  # noqa: E402
from auglift.errors import ConfigError, DataError  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    return {"det": make_rtmdet(d / "rtmdet.onnx", jitter=5.0), "pose": make_rtmpose(d / "rtmpose.onnx", noise=0.3),
            "halpe": make_rtmpose(d / "rtmpose_halpe26.onnx", num_joints=26, size=(384, 288)),
            "det1": make_rtmdet(d / "rtmdet_b1.onnx", jitter=5.0, batch=1),
            "pose1": make_rtmpose(d / "rtmpose_b1.onnx", batch=1, noise=0.3), "dir": d}


def frames(n=4, h=480, w=640, seed=0):
    rng = np.random.default_rng(seed)
    imgs = rng.integers(40, 216, (n, h, w, 3), dtype=np.uint8)
    imgs[1] = 0  # a black frame: the tiny detector finds nobody there
    return imgs


# ----------------------------------------------------------------------------- running the models
def test_rtmpose_outputs_h36m17_for_each_frame_and_nobody_in_a_black_frame(models):
    imgs = frames()
    with build_detector("rtmpose", det_model=models["det"], pose_model=models["pose"], threads=1) as det:
        assert det.joint_set == "coco17" and det.det_sig.size == (640, 640) and det.pose_sig.size == (256, 192)
        out = det(imgs)
    assert out.kp2d.shape == (4, 17, 2) and out.conf.shape == (4, 17) and out.valid.shape == (4,)
    assert out.kp2d.dtype == np.float32 and out.conf.dtype == np.float32
    assert out.valid.tolist() == [True, False, True, True] and out.people[1] == 0 and (out.people[[0, 2, 3]] > 0).all()
    assert np.isnan(out.kp2d[1]).all() and (out.conf[1] == 0).all()  # the stated per-frame outcome
    ok = out.kp2d[out.valid]
    # within the crops (boxes inside the 640x480 frame, enlarged 1.25x and to 3:4): near the frame
    assert np.isfinite(ok).all() and (np.abs(ok - [320, 240]) <= [640, 480]).all()
    assert ((out.conf >= 0) & (out.conf <= 1)).all() and out.joint_valid[out.valid].any()
    assert set(out.timings) == {"detector", "pose", "conversion"} and all(v >= 0 for v in out.timings.values())


def test_batched_runs_equal_rtmlib_single_image_runs(models):
    """Our batched letterbox/crop/decode equals rtmlib's own RTMDet and RTMPose classes run image by image."""
    imgs = frames(3, 720, 1280, seed=3)
    det = RTMPoseDetector(models["det"], models["pose"], threads=1, det_batch=3, pose_batch=5)
    frame, box, _ = det.detect_boxes(imgs)
    kp, score = det.estimate_poses(imgs, frame, box)
    ref_det = rtmlib.RTMDet(str(models["det"]), backend="onnxruntime")
    ref_pose = rtmlib.RTMPose(str(models["pose"]), model_input_size=(192, 256), backend="onnxruntime")
    for f in range(3):
        # rtmlib expects OpenCV's BGR for RTMDet; its RTMPose normalises the channels as given (we give RGB)
        ref = np.clip(ref_det(np.ascontiguousarray(imgs[f][..., ::-1])), 0, [1280, 720, 1280, 720])
        ref = ref[(ref[:, 2] > ref[:, 0]) & (ref[:, 3] > ref[:, 1])]
        mine = box[frame == f]
        assert len(mine) == len(ref)
        np.testing.assert_allclose(np.sort(mine, 0), np.sort(ref, 0), atol=1e-3)
        if len(mine):  # (rtmlib's RTMPose takes the whole image when given no box)
            rk, rs = ref_pose(imgs[f], bboxes=list(mine))
            np.testing.assert_allclose(kp[frame == f], rk, atol=1e-2)
            np.testing.assert_allclose(score[frame == f], rs, rtol=1e-5, atol=1e-4)
    assert (frame == 1).sum() == 0 and (frame != 1).sum() >= 4  # the black frame: nobody, by both


def test_fixed_batch_one_models_run_frame_by_frame_with_the_same_result(models):
    imgs = frames(3)
    a = RTMPoseDetector(models["det"], models["pose"], threads=1)(imgs)
    b = RTMPoseDetector(models["det1"], models["pose1"], threads=1, det_batch=8)(imgs)
    assert b.valid.tolist() == a.valid.tolist()
    np.testing.assert_allclose(b.kp2d, a.kp2d, atol=1e-3)


def test_halpe26_model_at_384x288_converts_with_the_coco_rule(models):
    with RTMPoseDetector(models["det"], models["halpe"], threads=1) as det:
        assert det.joint_set == "halpe26" and det.pose_sig.size == (384, 288)
        imgs = frames(2)
        frame, box, _ = det.detect_boxes(imgs)
        kp, score = det.estimate_poses(imgs, frame, box)
        out = det(imgs)
    assert kp.shape[1:] == (26, 2) and out.kp2d.shape == (2, 17, 2)
    first = int(np.flatnonzero(frame == 0)[np.argmax(score[frame == 0].mean(-1))])
    ref, _ = keypoints_to_h36m(kp[first], score[first], "halpe26")
    np.testing.assert_allclose(out.kp2d[0], ref, atol=1e-4)


def test_letterbox_maps_boxes_and_crops_map_keypoints_back_to_the_image(tmp_path):
    """Known boxes (input px) and keypoints (SimCC bins): they land where the geometry says."""
    base = np.array([[100, 40, 300, 600], [400, 100, 560, 420]], np.float32)  # in the 640x640 letterboxed input
    det_path = make_rtmdet(tmp_path / "det.onnx", base=base, bias=np.array([2.0, 0.0]), gain=0.0)
    peaks = spread_peaks(17, (256, 192))
    pose_path = make_rtmpose(tmp_path / "pose.onnx", peaks=peaks, noise=0.0, score=0.9)
    imgs = np.full((1, 960, 1280, 3), 128, np.uint8)  # letterbox ratio 0.5: image px = input px * 2
    det = RTMPoseDetector(det_path, pose_path, threads=1)
    frame, box, score = det.detect_boxes(imgs)
    np.testing.assert_allclose(box, np.clip(base * 2, 0, [1280, 960, 1280, 960]), atol=1e-3)
    np.testing.assert_allclose(score, 1 / (1 + np.exp(-np.array([2.0, 0.0]))), rtol=1e-5)  # best first
    kp, kscore = det.estimate_poses(imgs, frame, box)
    # crop: the box centre, the box enlarged 1.25x then widened/heightened to 192:256
    for m in range(2):
        (x0, y0, x1, y1) = box[m]
        cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, 1.25 * (x1 - x0), 1.25 * (y1 - y0)
        bw, bh = (bw, bw * 256 / 192) if bw > bh * 192 / 256 else (bh * 192 / 256, bh)
        expect = (peaks / 2.0) / [192, 256] * [bw, bh] + [cx - bw / 2, cy - bh / 2]
        np.testing.assert_allclose(kp[m], expect, atol=1e-2)
    assert np.allclose(kscore, 0.9, atol=1e-5)


# ----------------------------------------------------------------------------- person choice
def _two_people(tmp_path):
    base = np.array([[40, 60, 200, 560], [420, 80, 600, 600]], np.float32)
    det = make_rtmdet(tmp_path / "det.onnx", base=base, bias=np.array([3.0, 2.0]), gain=0.0)
    pose = make_rtmpose(tmp_path / "pose.onnx", peaks=spread_peaks(17, (256, 192)), noise=0.0)
    return RTMPoseDetector(det, pose, threads=1), base


def test_person_choice_follows_the_ground_truth_track_else_the_first_best(tmp_path):
    det, base = _two_people(tmp_path)
    imgs = np.full((3, 640, 640, 3), 90, np.uint8)
    plain = det(imgs)
    assert plain.valid.all() and (plain.people == 2).all()
    assert (plain.kp2d[..., 0] < 320).all()  # equal keypoint scores: the detector's best box (the left one)
    gt = np.full((3, 4), np.nan)
    gt[0] = base[1]  # frame 0: the ground-truth person is the right one
    gt[2] = [1000, 1000, 1100, 1200]  # frame 2: the ground truth overlaps nobody
    out = det(imgs, gt_boxes=gt)
    assert (out.kp2d[0, :, 0] > 320).all() and out.iou[0] > 0.1
    assert out.valid[1] and (out.kp2d[1, :, 0] < 320).all() and np.isnan(out.iou[1])  # no ground truth: by score
    assert not out.valid[2] and out.people[2] == 2 and np.isnan(out.kp2d[2]).all()
    # the same from ground-truth joints instead of boxes
    gt_kp = np.full((3, 17, 2), np.nan)
    gt_kp[0] = np.stack(np.meshgrid(np.linspace(440, 580, 4), np.linspace(100, 580, 5)), -1).reshape(-1, 2)[:17]
    out_kp = det(imgs, gt_kp2d=gt_kp)
    assert (out_kp.kp2d[0, :, 0] > 320).all() and (out_kp.kp2d[1, :, 0] < 320).all()


def test_choose_person_rule_on_candidates():
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 100, (4, 17, 2)).astype(np.float32)
    kp[2:] += 500  # candidates 2 and 3 are far right/down
    score = np.full((4, 17), 0.5, np.float32)
    score[1] = 0.8  # frame 0: candidate 1 scores higher than candidate 0
    score[3] = 0.9
    cand = PersonCandidates(np.array([0, 0, 2, 2]), kp, score, np.zeros((4, 4), np.float32), np.ones(4, np.float32),
                            "coco17")
    out = choose_person(cand, 4)
    assert out.valid.tolist() == [True, False, True, False] and out.people.tolist() == [2, 0, 2, 0]
    np.testing.assert_allclose(out.kp2d[0], keypoints_to_h36m(kp[1], score[1], "coco17")[0])
    kp17 = keypoints_to_h36m(kp, score, "coco17")[0]
    gt = np.full((4, 4), np.nan)
    gt[0] = np.r_[kp17[0].min(0), kp17[0].max(0)]  # candidate 0's extent: it wins although it scores lower
    gt[2] = [0, 0, 100, 100]  # frame 2: both candidates are far away
    out = choose_person(cand, 4, gt)
    np.testing.assert_allclose(out.kp2d[0], kp17[0])
    assert out.iou[0] == pytest.approx(1.0) and not out.valid[2] and out.people[2] == 2


def test_no_people_at_all_is_a_stated_outcome_not_an_error(models):
    det = RTMPoseDetector(models["det"], models["pose"], threads=1, score_threshold=1.01)
    out = det(frames(3))
    assert not out.valid.any() and (out.people == 0).all() and np.isnan(out.kp2d).all()


# ----------------------------------------------------------------------------- bad models, missing files
def test_wrong_signatures_are_one_clear_line(models, tmp_path):
    raw = make_yolox_raw(tmp_path / "yolox_no_nms.onnx")
    for det, pose, name in ((raw, models["pose"], "yolox_no_nms.onnx"), (models["pose"], models["pose"], "rtmpose"),
                            (models["det"], models["det"], "rtmdet")):
        with pytest.raises(DataError) as err:
            RTMPoseDetector(det, pose, threads=1)
        msg = str(err.value)
        assert "\n" not in msg and name in msg and "expected an RTM" in msg
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(DataError, match="cannot load the ONNX model") as err:
        RTMPoseDetector(junk, models["pose"], threads=1)
    assert "\n" not in str(err.value)


def test_a_missing_model_file_names_what_to_pass(models, tmp_path):
    with pytest.raises(DataError) as err:
        RTMPoseDetector(tmp_path / "nope" / "rtmdet.onnx", models["pose"])
    msg = str(err.value)
    assert "\n" not in msg and "model file not found" in msg and "--det-model" in msg and "rtmdet-m" in msg


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return rtmlib_cache_dir()


def test_model_ids_offline_fail_fast_with_one_line(empty_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        resolve_model("rtmpose-l", option="--pose-model")
    assert time.perf_counter() - t0 < 1.0  # no network attempt at all
    msg = str(err.value)
    assert "\n" not in msg and "HF_HUB_OFFLINE" in msg and "--pose-model" in msg and RTM_MODELS["rtmpose-l"] in msg


def test_unreachable_model_server_gives_one_line(empty_cache, monkeypatch):
    for v in ("AUGLIFT_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(ConfigError) as err:  # an unresolvable host: fails within the probe's timeout
        resolve_model("https://models.invalid/rtmdet_m_person.zip", option="--det-model")
    msg = str(err.value)
    assert "\n" not in msg and "cannot be reached" in msg and "--det-model" in msg


def test_cached_model_ids_and_urls_resolve_without_network(empty_cache, monkeypatch, models):
    monkeypatch.setenv("AUGLIFT_OFFLINE", "1")
    empty_cache.mkdir(parents=True)
    name = RTM_MODELS["rtmpose-l"].rsplit("/", 1)[1].split(".")[0] + ".onnx"  # where rtmlib leaves it
    (empty_cache / name).write_bytes(models["pose"].read_bytes())
    assert resolve_model("rtmpose-l") == empty_cache / name
    assert resolve_model(RTM_MODELS["rtmpose-l"]) == empty_cache / name
    det = RTMPoseDetector(models["det"], "rtmpose-l", threads=1)
    assert det.identity()["pose_model"] == "rtmpose-l" and det.identity()["pose_sha256"]


def test_unknown_backend_and_device_are_config_errors(models):
    with pytest.raises(ConfigError, match="rtmpose, mediapipe"):
        build_detector("openpose")
    with pytest.raises(ConfigError, match="device"):
        RTMPoseDetector(models["det"], models["pose"], device="tpu")
    det = RTMPoseDetector(models["det"], models["pose"], threads=1)
    with pytest.raises(DataError, match="images"):
        det(np.zeros((2, 64, 64), np.uint8))
    empty = det(np.zeros((0, 64, 64, 3), np.uint8))
    assert len(empty) == 0 and empty.kp2d.shape == (0, 17, 2)


# ----------------------------------------------------------------------------- error report
def test_auroc_matches_a_hand_computation():
    # positives score 0.9, 0.4; negatives 0.4, 0.1: pairs (0.9>0.4), (0.9>0.1), (0.4=0.4: half), (0.4>0.1)
    assert auroc(np.array([0.9, 0.4, 0.4, 0.1]), np.array([True, True, False, False])) == pytest.approx(3.5 / 4)
    assert np.isnan(auroc(np.array([0.1, 0.2]), np.array([False, False])))


def test_detection_errors_by_hand():
    gt = np.zeros((3, 17, 2))
    gt[:, :, 1] = np.linspace(0, 200, 17)  # 200 px tall: the AUROC threshold is 5% = 10 px
    kp = gt.copy()
    kp[0, :, 0] += 3.0  # frame 0: 3 px everywhere
    kp[1, 0, 0] += 40.0  # frame 1: joint 0 is 40 px off, the rest exact
    kp[1, 5] = np.nan  # and joint 5 is missing
    conf = np.full((3, 17), 0.9)
    conf[1, 0] = 0.2  # the bad joint has low confidence
    conf[1, 5] = 0.0
    valid = np.array([True, True, False])  # frame 2 has no detection
    rep = detection_errors(kp, gt, conf, valid)
    errs = np.r_[np.full(17, 3.0), 40.0, np.zeros(15)]  # 33 evaluated joints
    assert rep["joints"] == 33 and rep["frames_detected"] == 2 and rep["joints_missing"] == 1
    assert rep["mean"] == pytest.approx(errs.mean()) and rep["median"] == pytest.approx(np.median(errs))
    assert rep["pct_over"] == pytest.approx(100 / 33)
    assert rep["auroc"] == pytest.approx(1.0)  # only the 40 px joint is bad (> 10 px) and it has the lowest conf
    assert rep["per_joint"]["pelvis"]["mean"] == pytest.approx(21.5) and rep["per_joint"]["left_knee"]["joints"] == 1
    np.testing.assert_allclose(person_height_px(gt), 200.0)
    text = format_detection_errors(rep)
    assert "AUROC 1.000" in text and "pelvis" in text


def test_report_on_h36m_like_detections_shows_confidence_tracks_error():
    rng = np.random.default_rng(0)
    n = 400
    gt = rng.uniform(300, 700, (n, 17, 2))
    conf = rng.uniform(0.3, 1.0, (n, 17))
    noise = rng.normal(0, 1, (n, 17, 2)) * (2 + 40 * (1 - conf))[..., None]  # less confident, larger error
    rep = detection_errors(gt + noise, gt, conf, np.ones(n, bool))
    assert rep["auroc"] > 0.75 and 3 < rep["median"] < 40 and rep["joints"] == n * 17
    shuffled = detection_errors(gt + noise, gt, rng.permutation(conf.ravel()).reshape(n, 17), np.ones(n, bool))
    assert abs(shuffled["auroc"] - 0.5) < 0.05


def test_mediapipe_backend_without_its_extra_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # as in an environment without the extra
    with pytest.raises(ConfigError, match="mediapipe extra"):
        build_detector("mediapipe")


def test_info_prints_the_error_report_of_a_poseset_with_ground_truth(tmp_path, capsys):
    from auglift.cli import main
    from auglift.datasets.synthetic import generate

    generate("lab", 300, 0, seq_seconds=(0.4, 0.8)).save(tmp_path / "lab")  # simulated detections + kp2d_gt
    assert main(["info", str(tmp_path / "lab")]) == 0
    text = capsys.readouterr().out
    assert "2D error vs kp2d_gt" in text and "AUROC" in text and "right_wrist" in text
    assert main(["info", "--json", str(tmp_path / "lab")]) == 0
    rep = json.loads(capsys.readouterr().out)["detection_errors"]
    # the world's detector model: errors of a few px with a tail, larger where confidence is low
    assert 2 < rep["median"] < 30 and rep["auroc"] > 0.6 and rep["joints"] == 300 * 17


def test_ground_truth_2d_of_a_poseset_from_kp2d_gt_or_projected_kp3d():
    from auglift.datasets.synthetic import generate
    from auglift.poseset import PoseSet

    ps = generate("lab", 120, 0, seq_seconds=(0.4, 0.8))
    rows = np.array([0, 5, 77])
    np.testing.assert_allclose(poseset_ground_truth_2d(ps, rows), ps.kp2d_gt[rows])
    no_gt = PoseSet({k: v for k, v in ps.fields.items() if k != "kp2d_gt"}, ps.clips, ps.meta)
    np.testing.assert_allclose(poseset_ground_truth_2d(no_gt, rows), ps.kp2d_gt[rows], atol=1e-3)  # true projections
    marked = no_gt.with_fields({"extra": {"kp2d_source": "gt"}})
    np.testing.assert_allclose(poseset_ground_truth_2d(marked, rows), ps.kp2d[rows])
