"""MediaPipe 2D keypoints on a real photo (``skimage.data.astronaut()``, bundled with scikit-image) and on
to a 3D pose with a small lifter trained here.

The ``mediapipe`` extra pins ``numpy<2``, so these tests run in their own environment
(``make test-mediapipe`` builds ``.venv-mediapipe`` and runs them; ``make test`` calls it after the
main suite). In an environment without the extra they are skipped, and only for that reason.
"""

from __future__ import annotations

import numpy as np
import pytest

mp = pytest.importorskip("mediapipe", reason="the mediapipe extra is not installed (make test-mediapipe)")

from skimage import data  # noqa: E402  (scikit-image comes with the mediapipe test environment)

from _infer_fixtures import train_lifter  # noqa: E402
from auglift.infer import infer  # noqa: E402
from auglift.keypoints2d import MediaPipePose  # noqa: E402

pytestmark = [pytest.mark.mediapipe, pytest.mark.xdist_group("mediapipe")]

# H36M-17 indices
PELVIS, R_HIP, R_KNEE, R_FOOT, L_HIP, L_KNEE, L_FOOT = 0, 1, 2, 3, 4, 5, 6
THORAX, NOSE, HEAD, L_SHOULDER, L_ELBOW, R_SHOULDER, R_ELBOW = 8, 9, 10, 11, 12, 14, 15


@pytest.fixture(scope="module")
def photo():
    img = data.astronaut()  # (512, 512, 3) RGB: Eileen Collins, head and upper body, cut at the waist
    assert img.shape == (512, 512, 3)
    return img


def test_mediapipe_finds_the_astronaut_and_places_her_joints_plausibly(photo):
    assert mp.__version__ == "0.10.21"
    with MediaPipePose(static_image_mode=True) as det:
        kp, conf, found = det(photo[None])
    assert found.tolist() == [True]
    kp, conf = kp[0], conf[0]
    upper = [THORAX, NOSE, HEAD, L_SHOULDER, R_SHOULDER]
    assert (conf[upper] > 0.9).all(), conf
    assert (conf > 0.5).sum() >= 6  # the upper body; the photo ends at her waist
    assert (conf[[R_KNEE, R_FOOT, L_KNEE, L_FOOT]] < 0.2).all()  # legs are outside the picture
    assert np.isfinite(kp[upper]).all() and ((kp[upper] >= 0) & (kp[upper] < 512)).all()
    # plausible placement: head above nose above thorax above the hips; she faces the camera, so her
    # left shoulder is on the image's right; shoulders about a head-width apart or more
    assert kp[HEAD, 1] < kp[THORAX, 1] and kp[NOSE, 1] < kp[THORAX, 1]
    assert kp[THORAX, 1] < kp[L_HIP, 1] and kp[THORAX, 1] < kp[R_HIP, 1]
    assert kp[L_SHOULDER, 0] > kp[NOSE, 0] > kp[R_SHOULDER, 0]
    width = kp[L_SHOULDER, 0] - kp[R_SHOULDER, 0]
    assert 120 < width < 300
    assert abs(kp[THORAX, 0] - kp[NOSE, 0]) < 0.3 * width  # head roughly over the chest
    # the face: 120-220 px from the top of this portrait, in the left half of the image
    assert 60 < kp[NOSE, 1] < 220 and 150 < kp[NOSE, 0] < 280


@pytest.fixture(scope="module")
def lifter(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    return train_lifter(tmp_path_factory.mktemp("mp"), model="simple_baseline", channels="xyc", epochs=3, steps=20)


def test_astronaut_photo_to_a_3d_pose(photo, lifter, tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "astronaut.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    res = infer(tmp_path / "astronaut.png", lifter, out_dir=tmp_path / "out", detector="mediapipe",
                render=tmp_path / "astronaut_3d.mp4", device="cpu", progress=False)
    assert len(res) == 1 and res.meta["keypoints"]["source"] == "mediapipe"
    assert np.isfinite(res.kp3d).all() and np.isnan(res.root).all()  # no depth model: no absolute root
    pose = res.kp3d[0]
    assert pose[HEAD, 1] < pose[THORAX, 1] < pose[PELVIS, 1] + 1e-6  # upright (y down)
    assert 0.3 < np.linalg.norm(pose[HEAD] - pose[PELVIS]) < 1.2  # a human-sized torso, metres
    assert res.timings["2D"]["fps"] > 0 and (tmp_path / "astronaut_3d.mp4").exists()


def test_mediapipe_on_a_video_tracks_the_person(photo, lifter, tmp_path):
    import cv2

    path = tmp_path / "pan.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (448, 448))
    for i in range(8):  # a slow pan over the photo
        w.write(cv2.cvtColor(np.ascontiguousarray(photo[20 + 4 * i: 468 + 4 * i, 30 + 3 * i: 478 + 3 * i]),
                             cv2.COLOR_RGB2BGR))
    w.release()
    res = infer(path, lifter, out_dir=tmp_path / "out", device="cpu", progress=False)
    assert len(res) == 8 and res.detected.all() and np.isfinite(res.kp3d).all()
    nose = res.kp2d[:, NOSE]
    assert (np.diff(nose[:, 1]) < 0).mean() >= 0.7  # the camera pans down: the face moves up
