"""``auglift detect`` end to end: a PoseSet whose clips are an mp4 video, a PNG sequence and a dark PNG
sequence (nobody there), tiny random-weight RTMDet/RTMPose ONNX models with the real signatures;
equality with the detector run on the decoded frames, kill -9 and resume, shards, a crash inside
the merge, and bad input (missing frames, a short video, a wrong ONNX, nobody anywhere)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the detect extra is not installed")
pytest.importorskip("rtmlib", reason="the detect extra is not installed")
cv2 = pytest.importorskip("cv2", reason="the video extra is not installed")

from _depth_fixtures import decode_all, write_images, write_video  # noqa: E402
from _detector_fixtures import make_rtmdet, make_rtmpose, make_yolox_raw, spread_peaks  # noqa: E402
from _reliability_fixtures import env_for_child  # noqa: E402
from auglift.cli import main  # noqa: E402
from auglift.datasets.detections import import_detections  # noqa: E402
from auglift.detectors.rtm import RTMPoseDetector  # noqa: E402
from auglift.detectors.run import CHUNK_DIR, detect_poseset  # noqa: E402
from auglift.poseset import ClipTable, PoseSet  # noqa: E402

W, H = 64, 48
FRAMES = (10, 8, 4)  # video, PNG sequence, dark PNG sequence
# two people in detector-input px (a 320x320 input: the 64x48 frame is scaled 5x): one in the middle, a bystander
DET_SIZE, SCALE = (320, 320), 5.0
PERSON, BYSTANDER = np.array([100, 50, 220, 210]), np.array([0, 0, 75, 100])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("onnx")
    return {"det": make_rtmdet(d / "rtmdet.onnx", base=np.stack([PERSON, BYSTANDER]), bias=np.zeros(2),
                                      size=DET_SIZE),
            "pose": make_rtmpose(d / "rtmpose.onnx", peaks=spread_peaks(17, (256, 192)), noise=0.05),
            "wrong": make_yolox_raw(d / "yolox_raw.onnx")}


def make_poseset(root: Path, *, video_frames: int | None = None) -> Path:
    """Three clips with frames on disk and ground-truth 2D (a standing figure on PERSON; the last two
    frames of clip 1 on BYSTANDER), plus UADD descriptors sampled at those keypoints."""
    media = root / "media"
    media.mkdir(parents=True)
    write_video(media / "clip0.mp4", video_frames or FRAMES[0], W, H, clip=0)
    seq = write_images(media / "seq1", FRAMES[1], W, H, clip=1)
    (media / "dark").mkdir()
    for f in range(FRAMES[2]):
        cv2.imwrite(str(media / "dark" / f"{f:06d}.png"), np.zeros((H, W, 3), np.uint8))
    n = sum(FRAMES)
    clip = np.repeat(np.arange(3), FRAMES).astype(np.int32)
    frame = np.concatenate([np.arange(k) for k in FRAMES]).astype(np.int32)
    rng = np.random.default_rng(0)
    unit = rng.uniform(0.1, 0.9, (17, 2))  # a figure inside its box, (x, y) fractions
    boxes = np.tile(PERSON / SCALE, (n, 1))
    boxes[FRAMES[0] + FRAMES[1] - 2: FRAMES[0] + FRAMES[1]] = BYSTANDER / SCALE
    kp = boxes[:, None, :2] + unit[None] * (boxes[:, None, 2:] - boxes[:, None, :2])
    fields = {"clip": clip, "frame": frame, "kp2d": kp.astype(np.float32), "conf": np.ones((n, 17), np.float32),
              "uadd": rng.uniform(2, 4, (n, 17, 3)).astype(np.float32), "uadd_valid": np.ones((n, 17), bool)}
    clips = ClipTable(subject=["S1", "S2", "S3"], action=["walk", "wave", "dark"], camera=["0", "1", "2"],
                      split=["test"] * 3, width=[W] * 3, height=[H] * 3,
                      intrinsics=np.tile([60.0, 60.0, W / 2, H / 2], (3, 1)),
                      source=["clip0.mp4", seq, "dark/{frame:06d}.png"], fps=[25.0] * 3)
    meta = {"source": "test", "frame_root": str(media), "extra": {"kp2d_source": "gt"},
            "depth_model": {"name": "oracle", "kind": "metric"}}
    return PoseSet(fields, clips, meta).save(root / "ps")


def reference(ps_dir: Path, models) -> dict[str, np.ndarray]:
    """The detector run directly on every clip's frames (decoded with OpenCV), with the ground truth."""
    ps = PoseSet.load(ps_dir)
    frames = decode_all(ps_dir)
    out = {"kp2d": [], "conf": [], "valid": []}
    with RTMPoseDetector(models["det"], models["pose"], threads=1) as det:
        for c in range(3):
            rows = np.flatnonzero(np.asarray(ps.clip) == c)
            res = det(frames[c][np.asarray(ps.frame)[rows]], gt_kp2d=np.asarray(ps.kp2d)[rows])
            out["kp2d"].append(res.kp2d)
            out["conf"].append(res.conf)
            out["valid"].append(res.valid)
    return {k: np.concatenate(v) for k, v in out.items()}


def detect_args(ps: Path, models, *extra: str) -> list[str]:
    return ["detect", str(ps), "--det-model", str(models["det"]), "--pose-model", str(models["pose"]),
            "--threads", "1", "--batch-size", "3", "--chunk-frames", "4", "--no-progress", *extra]


def same_keypoints(a: Path, b: Path) -> None:
    pa, pb = PoseSet.load(a, validate=True), PoseSet.load(b, validate=True)
    for name in ("kp2d", "conf", "kp2d_valid", "kp2d_gt"):
        np.testing.assert_array_equal(np.asarray(getattr(pa, name)), np.asarray(getattr(pb, name)), err_msg=name)
    assert pa.meta["extra"] == pb.meta["extra"] and not pa.has("uadd") and not pb.has("uadd")


# ----------------------------------------------------------------------------- end to end
def test_detect_writes_the_detector_keypoints_of_the_ground_truth_person(tmp_path, models, capsys):
    ps_dir = make_poseset(tmp_path)
    gt = np.asarray(PoseSet.load(ps_dir).kp2d).copy()
    ref = reference(ps_dir, models)
    assert main(detect_args(ps_dir, models, "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    ps = PoseSet.load(ps_dir, validate=True)
    # the detector's keypoints of the person the ground truth marks; nobody in the dark clip
    np.testing.assert_allclose(np.asarray(ps.kp2d), ref["kp2d"], atol=1e-3)
    np.testing.assert_allclose(np.asarray(ps.conf), ref["conf"], atol=1e-5)
    assert np.asarray(ps.kp2d_valid).tolist() == ref["valid"].tolist()
    valid = np.asarray(ps.kp2d_valid)
    assert valid[:FRAMES[0] + FRAMES[1]].all() and not valid[-FRAMES[2]:].any()
    assert np.isnan(np.asarray(ps.kp2d)[~valid]).all() and (np.asarray(ps.conf)[~valid] == 0).all()
    centre = np.nanmean(np.asarray(ps.kp2d)[valid], axis=1)
    boxes = np.where(np.arange(len(ps))[valid, None] >= FRAMES[0] + FRAMES[1] - 2, BYSTANDER, PERSON) / SCALE
    assert ((centre >= boxes[:, :2]) & (centre <= boxes[:, 2:])).all()  # inside the ground truth's person
    # the ground truth stays in kp2d_gt; descriptors of the old keypoints are gone; the run is recorded
    np.testing.assert_array_equal(np.asarray(ps.kp2d_gt), gt)
    assert not ps.has("uadd") and not ps.has("uadd_valid") and ps.meta["depth_model"] is None
    det = ps.meta["extra"]["detections"]
    assert ps.meta["extra"]["kp2d_source"] == f"detect:rtmdet+rtmpose:{out['key']}"
    assert det["frames_with_detection"] == FRAMES[0] + FRAMES[1] and det["select"] == "gt-iou"
    assert det["dropped_fields"] == ["uadd", "uadd_valid"] and det["clips_without_detection"] == ["clip 2 (S3/dark/2)"]
    assert det["detector"]["pose_sha256"] and det["frames_with_several_people"] == FRAMES[0] + FRAMES[1]
    assert out["merged"] and out["frames"] == len(ps) and out["chunks"] == 6
    assert set(out["stage_frames_per_s"]) == {"decode", "detector", "pose", "conversion"}
    assert out["detection_errors"]["frames_detected"] == FRAMES[0] + FRAMES[1]
    # a second run finds every chunk and the PoseSet written: nothing to do
    assert main(detect_args(ps_dir, models, "--json")) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["computed"] == 0 and again["skipped"] == 6 and again["key"] == out["key"]
    # info prints the 2D error report
    assert main(["info", str(ps_dir)]) == 0
    assert "AUROC" in capsys.readouterr().out


def test_two_shards_then_the_last_writes_the_same_as_one_run(tmp_path, models):
    one, two = make_poseset(tmp_path / "a"), make_poseset(tmp_path / "b")
    kw = {"batch_size": 2, "chunk_frames": 3, "progress": False}
    with RTMPoseDetector(models["det"], models["pose"], threads=1) as det:
        r1 = detect_poseset(one, det, **kw)
        a = detect_poseset(two, det, shard=(0, 2), **kw)
        assert r1.merged and r1.chunks_done == 8 and not a.merged and a.chunks_missing == 4
        assert PoseSet.load(two).has("uadd")  # not written before every chunk exists
        b = detect_poseset(two, det, shard=(1, 2), **kw)
    assert b.merged and b.chunks_done == 4 and b.key == r1.key
    same_keypoints(one, two)


def test_a_crash_inside_the_merge_then_resume_equals_an_uninterrupted_run(tmp_path, models, monkeypatch):
    clean, ps_dir = make_poseset(tmp_path / "clean"), make_poseset(tmp_path / "crash")
    with RTMPoseDetector(models["det"], models["pose"], threads=1) as det:
        detect_poseset(clean, det, progress=False)
        write_field = PoseSet.write_field

        def dies_after_kp2d(path, name, array, meta_updates=None):
            if name == "conf":
                raise OSError(28, "No space left on device")
            write_field(path, name, array, meta_updates)

        monkeypatch.setattr(PoseSet, "write_field", staticmethod(dies_after_kp2d))
        with pytest.raises(OSError):
            detect_poseset(ps_dir, det, progress=False)
        half = PoseSet.load(ps_dir)
        assert half.meta["extra"]["kp2d_source"].endswith("(incomplete)") and not half.has("uadd")
        np.testing.assert_array_equal(np.asarray(half.kp2d_gt), np.asarray(PoseSet.load(clean).kp2d_gt))
        monkeypatch.setattr(PoseSet, "write_field", staticmethod(write_field))
        res = detect_poseset(ps_dir, det, progress=False)
    assert res.chunks_done == 0 and res.merged
    same_keypoints(clean, ps_dir)


KILL_SCRIPT = """
import time
from auglift.detectors.rtm import RTMPoseDetector
from auglift.detectors.run import detect_poseset

class Slow(RTMPoseDetector):
    def find_people(self, images, timings):
        time.sleep(0.2)
        return super().find_people(images, timings)

detect_poseset({ps!r}, Slow({det!r}, {pose!r}, threads=1), batch_size=2, chunk_frames=2, progress=False)
"""


def test_kill_9_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path, models):
    clean, ps_dir = make_poseset(tmp_path / "clean"), make_poseset(tmp_path / "killed")
    code = KILL_SCRIPT.format(ps=str(ps_dir), det=str(models["det"]), pose=str(models["pose"]))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env_for_child(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(ps_dir.glob(f"{CHUNK_DIR}/*/chunk-*.npz"))) >= 3:
                break
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    done = sorted(ps_dir.glob(f"{CHUNK_DIR}/*/chunk-*.npz"))
    assert 3 <= len(done) < 11  # killed mid-run (11 chunks in all)
    assert PoseSet.load(ps_dir).meta["extra"]["kp2d_source"] == "gt"  # the PoseSet is untouched so far
    before = {p.name: p.read_bytes() for p in done}
    with RTMPoseDetector(models["det"], models["pose"], threads=1) as det:
        res = detect_poseset(ps_dir, det, batch_size=2, chunk_frames=2, progress=False)
        ref = detect_poseset(clean, det, batch_size=2, chunk_frames=2, progress=False)
    assert res.chunks_skipped == len(done) and res.chunks_done == 11 - len(done) and res.merged
    assert all(p.read_bytes() == before[p.name] for p in done)  # finished chunks were not redone
    assert ref.chunks_done == 11 and ref.key == res.key
    same_keypoints(clean, ps_dir)


def test_detections_import_also_drops_the_descriptors_of_the_old_keypoints(tmp_path):
    ps_dir = make_poseset(tmp_path)
    ps = PoseSet.load(ps_dir)
    arr = np.concatenate([np.asarray(ps.kp2d) + 1.5, np.full((len(ps), 17, 1), 0.8, np.float32)], -1)
    np.save(tmp_path / "dets.npy", arr)
    stats = import_detections(ps_dir, [tmp_path / "dets.npy"], progress_bar=False)
    new = PoseSet.load(ps_dir, validate=True)
    assert stats["dropped_fields"] == ["uadd", "uadd_valid"] and stats["kept_previous_kp2d_as_gt"]
    assert not new.has("uadd") and not new.has("uadd_valid") and new.meta["depth_model"] is None
    np.testing.assert_allclose(np.asarray(new.kp2d), np.asarray(ps.kp2d) + 1.5)


# ----------------------------------------------------------------------------- bad input: one line
def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("auglift: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_a_missing_frame_names_the_clip_and_frame_and_keeps_finished_chunks(tmp_path, models, capsys):
    ps_dir = make_poseset(tmp_path)
    (tmp_path / "media" / "seq1" / "img_0004.png").unlink()
    assert main(detect_args(ps_dir, models)) == 2
    assert "clip 1 (S2/wave/1), frame 3" in _one_line(capsys)
    assert len(list(ps_dir.glob(f"{CHUNK_DIR}/*/chunk-*.npz"))) == 3  # rows 0-11 finished before the failure
    assert PoseSet.load(ps_dir).meta["extra"]["kp2d_source"] == "gt"


def test_a_video_shorter_than_the_poseset_is_one_line(tmp_path, models, capsys):
    ps_dir = make_poseset(tmp_path, video_frames=6)
    assert main(detect_args(ps_dir, models)) == 2
    assert "clip 0 (S1/walk/0), frame 6" in _one_line(capsys)


def test_an_onnx_with_the_wrong_signature_is_one_line(tmp_path, models, capsys):
    ps_dir = make_poseset(tmp_path)
    args = detect_args(ps_dir, models)
    args[args.index("--det-model") + 1] = str(models["wrong"])
    assert main(args) == 2
    assert "yolox_raw.onnx" in _one_line(capsys)
    assert not (ps_dir / CHUNK_DIR).exists()


def test_nobody_in_any_frame_writes_nothing_and_says_so(tmp_path, models, capsys):
    ps_dir = PoseSet.load(make_poseset(tmp_path)).select(clips=[2]).save(tmp_path / "dark")
    assert main(detect_args(ps_dir, models)) == 2
    assert "no frame of the PoseSet" in _one_line(capsys)
    assert PoseSet.load(ps_dir).has("uadd") and PoseSet.load(ps_dir).meta["extra"]["kp2d_source"] == "gt"


def test_bad_options_are_one_line(tmp_path, models, capsys):
    ps_dir = make_poseset(tmp_path)
    assert main(detect_args(ps_dir, models, "--batch-size", "0")) == 2
    assert "batch_size" in _one_line(capsys)
    assert main(["detect", str(ps_dir), "--detector", "mediapipe", "--device", "cuda"]) == 2
    _one_line(capsys)
    assert main(["detect", str(tmp_path / "nope"), "--det-model", str(models["det"]),
                 "--pose-model", str(models["pose"])]) == 2
    assert "nope" in _one_line(capsys)
