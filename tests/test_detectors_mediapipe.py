"""MediaPipe Pose behind the 2D-detector interface, on a real photo written as a one-frame image sequence.

Runs in ``.venv-mediapipe`` (``make test-mediapipe``: the mediapipe extra pins numpy<2); skipped
elsewhere, and only for that reason.
"""

from __future__ import annotations

import numpy as np
import pytest

mp = pytest.importorskip("mediapipe", reason="the mediapipe extra is not installed (make test-mediapipe)")

import cv2  # noqa: E402
from skimage import data  # noqa: E402  (scikit-image comes with the mediapipe test environment)

from _infer_fixtures import train_lifter  # noqa: E402
from auglift.cli import main  # noqa: E402
from auglift.detectors import build_detector  # noqa: E402
from auglift.infer import infer  # noqa: E402
from auglift.keypoints2d import MediaPipePose  # noqa: E402
from auglift.poseset import ClipTable, PoseSet  # noqa: E402

pytestmark = [pytest.mark.mediapipe, pytest.mark.xdist_group("mediapipe")]

NOSE, L_SHOULDER, R_SHOULDER = 9, 11, 14


@pytest.fixture(scope="module")
def frame_on_disk(tmp_path_factory):
    """``skimage.data.astronaut()`` written as ``frames/000000.png`` and read back as the pipeline would (RGB)."""
    d = tmp_path_factory.mktemp("astronaut") / "frames"
    d.mkdir()
    cv2.imwrite(str(d / "000000.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    img = cv2.cvtColor(cv2.imread(str(d / "000000.png")), cv2.COLOR_BGR2RGB)
    return d / "000000.png", img


def test_mediapipe_detector_finds_the_astronaut_where_keypoints2d_puts_her(frame_on_disk):
    _, img = frame_on_disk
    with build_detector("mediapipe") as det:
        assert det.joint_set == "mediapipe33" and det.identity()["static_image_mode"] is True
        out = det(img[None])
    with MediaPipePose(static_image_mode=True) as mpp:
        kp, conf, found = mpp(img[None])
    assert out.valid.tolist() == [True] == found.tolist() and out.people.tolist() == [1]
    np.testing.assert_allclose(out.kp2d, kp, atol=1e-3, equal_nan=True)
    np.testing.assert_allclose(out.conf, conf, atol=1e-5)
    # she faces the camera: her left shoulder is on the image's right; the face in the upper left half
    assert out.kp2d[0, L_SHOULDER, 0] > out.kp2d[0, NOSE, 0] > out.kp2d[0, R_SHOULDER, 0]
    assert out.timings["pose"] > 0 and out.timings["detector"] == 0


def test_mediapipe_detector_matches_infers_mediapipe_path(frame_on_disk, tmp_path):
    import torch

    torch.set_num_threads(1)
    path, img = frame_on_disk
    lifter = train_lifter(tmp_path / "lifter", model="simple_baseline", channels="xyc", epochs=1, steps=5)
    res = infer(path.parent, lifter, out_dir=tmp_path / "out", detector="mediapipe", device="cpu", progress=False)
    with build_detector("mediapipe") as det:
        out = det(img[None])
    assert len(res) == 1 and res.detected.all()
    np.testing.assert_allclose(out.kp2d[0], res.kp2d[0], atol=1e-3)


def test_ground_truth_choice_and_empty_frames_with_mediapipe(frame_on_disk):
    _, img = frame_on_disk
    blank = np.full_like(img, 127)
    gt = np.array([[150, 100, 400, 512], [0, 0, 40, 40], [np.nan] * 4], dtype=np.float64)
    with build_detector("mediapipe") as det:
        out = det(np.stack([img, img, blank]), gt_boxes=gt)
    assert out.valid.tolist() == [True, False, False] and out.people.tolist() == [1, 1, 0]
    assert out.iou[0] > 0.1 and np.isnan(out.kp2d[1:]).all() and (out.conf[1:] == 0).all()


def test_detect_on_a_poseset_puts_the_keypoints_where_infers_mediapipe_path_does(frame_on_disk, tmp_path):
    """``auglift detect --detector mediapipe`` on a one-clip PoseSet whose one frame is the photo on disk."""
    path, img = frame_on_disk
    h, w = img.shape[:2]
    clips = ClipTable(subject=["astronaut"], action=["photo"], camera=["0"], split=["test"], width=[w], height=[h],
                      intrinsics=[[500.0, 500.0, w / 2, h / 2]], source=["{frame:06d}.png"])
    fields = {"clip": np.zeros(1, np.int32), "frame": np.zeros(1, np.int32),
              "kp2d": np.full((1, 17, 2), np.nan, np.float32), "conf": np.zeros((1, 17), np.float32)}
    ps_dir = PoseSet(fields, clips, {"source": "photo", "frame_root": str(path.parent),
                                     "extra": {"kp2d_source": "none"}}).save(tmp_path / "ps")
    assert main(["detect", str(ps_dir), "--detector", "mediapipe", "--no-progress"]) == 0
    ps = PoseSet.load(ps_dir, validate=True)
    with MediaPipePose(static_image_mode=True) as mpp:  # what infer runs on an image input
        kp, conf, found = mpp(img[None])
    assert found.tolist() == [True] == np.asarray(ps.kp2d_valid).tolist()
    np.testing.assert_allclose(np.asarray(ps.kp2d), kp, atol=1e-3, equal_nan=True)
    np.testing.assert_allclose(np.asarray(ps.conf), conf, atol=1e-5)
    det = ps.meta["extra"]["detections"]
    assert det["select"] == "score" and det["detector"]["static_image_mode"] is True
    assert ps.meta["extra"]["kp2d_source"].startswith("detect:mediapipe:")
