"""``auglift view`` in a real browser: headless Chromium (Debian's chromium + chromium-driver) via Selenium.

One Chromium session serves the whole module. The pages show figures with both arms stretched out
sideways (left wrist animated), so the expected screen position of a joint in the camera view is
the pinhole projection with the clip's focal length, and its colour is the viewer's colour for it.
Without a browser the tests fail when ``CI`` is set and are skipped otherwise.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _browser import console_errors, find_browser, open_page, start_browser, stop_browser
from auglift.cli import main
from auglift.geometry import project
from auglift.poseset import ClipTable, PoseSet
from auglift.predictions import Predictions
from auglift.viewer import write_viewer

FOCAL, SIZE = 1145.0, 1000
LEFT, RIGHT, CENTRE = (41, 140, 230), (255, 140, 41), (89, 199, 89)  # viewer.js SIDE colours, 0-255
RED, WHITE = (255, 0, 51), (235, 235, 235)  # error >= 150 mm, ground truth
LEFT_WRIST, RIGHT_WRIST, HEAD = 13, 16, 10

# H36M-17 standing body, metres, camera axes (x right, y down, z forward), pelvis at 0, arms out sideways
BODY = np.array([
    [0.0, 0.0, 0.0], [-0.13, 0.0, 0.0], [-0.13, 0.45, 0.0], [-0.13, 0.88, 0.0],
    [0.13, 0.0, 0.0], [0.13, 0.45, 0.0], [0.13, 0.88, 0.0],
    [0.0, -0.24, 0.0], [0.0, -0.50, 0.0], [0.0, -0.58, 0.0], [0.0, -0.70, 0.0],
    [0.17, -0.48, 0.0], [0.45, -0.48, 0.0], [0.72, -0.48, 0.0],
    [-0.17, -0.48, 0.0], [-0.45, -0.48, 0.0], [-0.72, -0.48, 0.0],
])


@pytest.fixture(scope="module")
def browser():
    found = find_browser()
    if isinstance(found, str):
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need Chromium in CI: {found}")
        pytest.skip(f"no browser for the viewer tests: {found}")
    b = start_browser(*found)
    yield b
    stop_browser(b)


def figures(frames: int, root: tuple[float, float, float], lift: float) -> np.ndarray:
    """``(frames, 17, 3)`` camera-frame joints: the left forearm swings up by up to ``lift`` rad over the clip."""
    kp = np.repeat(BODY[None], frames, 0) + np.array(root)
    angle = lift * np.arange(frames) / max(frames - 1, 1)
    elbow = kp[:, 12]
    kp[:, 13] = elbow + 0.27 * np.stack([np.cos(angle), -np.sin(angle), np.zeros(frames)], -1)
    return kp.astype(np.float32)


def figure_poseset(counts: tuple[int, ...] = (40, 30)) -> PoseSet:
    """Clip 0 in the middle of the image, clip 1 to the right; uadd = joint depth +- 5 cm."""
    kp3d = np.concatenate([figures(n, (0.9 * c, 0.0, 4.0), 1.2) for c, n in enumerate(counts)])
    clip = np.repeat(np.arange(len(counts)), counts).astype(np.int32)
    intr = np.tile([FOCAL, FOCAL, SIZE / 2, SIZE / 2], (len(counts), 1))
    kp2d = project(kp3d, intr[clip]).astype(np.float32)
    z = kp3d[..., 2]
    fields = {"clip": clip, "frame": np.concatenate([np.arange(n) for n in counts]).astype(np.int32),
              "kp2d": kp2d, "conf": np.full(kp2d.shape[:2], 0.9, np.float32), "kp3d": kp3d,
              "uadd": np.stack([z - 0.05, z - 0.1, z], -1).astype(np.float32),
              "uadd_valid": np.ones(z.shape, bool)}
    k = len(counts)
    clips = ClipTable(subject=["S1"] * k, action=["wave", "reach"][:k], camera=["0"] * k, split=["test"] * k,
                      width=[SIZE] * k, height=[SIZE] * k, intrinsics=intr, fps=[25.0] * k)
    return PoseSet(fields, clips, {"source": "viewer test", "units": {"uadd": "m"}})


# ----------------------------------------------------------------------------- helpers
def screenshot(browser) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")).astype(np.int32)


def canvas_rect(browser, selector: str = "#view3d canvas") -> list[float]:
    return browser.execute_script(f"const r = document.querySelector('{selector}').getBoundingClientRect();"
                                  "return [r.left, r.top, r.width, r.height];")


def camera_pixel(browser, point: np.ndarray) -> tuple[int, int]:
    """Where the camera view draws ``point`` (camera frame, metres): pinhole with the clip's focal
    length, the image height filling the canvas height, principal point at the canvas centre."""
    left, top, width, height = canvas_rect(browser)
    s = height / SIZE
    return (round(left + width / 2 + FOCAL * s * point[0] / point[2]),
            round(top + height / 2 + FOCAL * s * point[1] / point[2]))


def colour_near(img: np.ndarray, xy: tuple[int, int], colour: tuple[int, int, int], radius: int = 2) -> float:
    """Smallest RGB distance to ``colour`` among the pixels within ``radius`` of ``xy``."""
    x, y = xy
    patch = img[y - radius:y + radius + 1, x - radius:x + radius + 1]
    return float(np.sqrt(((patch - np.array(colour)) ** 2).sum(-1)).min())


def settle(browser, condition: str, timeout: float = 10.0) -> None:
    """Wait until the JavaScript ``condition`` holds, then for two more animation frames (drawn)."""
    end = time.monotonic() + timeout
    while not browser.execute_script(f"return !!({condition})"):
        assert time.monotonic() < end, f"timed out waiting for {condition}"
        time.sleep(0.02)
    browser.execute_async_script("const done = arguments[0];"
                                 "requestAnimationFrame(() => requestAnimationFrame(() => done()));")


def select(browser, element_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, element_id)).select_by_value(value)


# ----------------------------------------------------------------------------- PoseSet
@pytest.fixture(scope="module")
def poseset_page(tmp_path_factory):
    d = tmp_path_factory.mktemp("viewer")
    ps = figure_poseset()
    ps.save(d / "figures")
    return write_viewer(d / "figures", d / "figures.html"), ps


def test_poseset_page_draws_the_skeleton_where_the_camera_sees_it(browser, poseset_page):
    res, ps = poseset_page
    assert res.kind == "poseset" and res.clips == 2 and res.frames == 70 and res.stride == 1
    open_page(browser, res.path)
    img = screenshot(browser)
    left, top, width, height = (round(v) for v in canvas_rect(browser))
    view = img[top:top + height, left:left + width]
    for colour in (LEFT, RIGHT, CENTRE):  # world view: every side of the body is drawn
        assert (np.abs(view - colour).max(-1) < 12).sum() > 50, colour
    browser.execute_script("auglift.setView('camera')")
    settle(browser, "auglift.state.view === 'camera'")
    img = screenshot(browser)
    kp3d = np.asarray(ps.kp3d)
    for joint, colour in ((LEFT_WRIST, LEFT), (RIGHT_WRIST, RIGHT), (HEAD, CENTRE)):
        assert colour_near(img, camera_pixel(browser, kp3d[0, joint]), colour) < 30, joint
    # the 2D panel draws the keypoints at their pixels (scaled to the panel)
    left2, top2, width2, _ = canvas_rect(browser, "#view2d")
    u, v = kp3d[0, RIGHT_WRIST, :2] / kp3d[0, RIGHT_WRIST, 2] * FOCAL + SIZE / 2
    assert colour_near(img, (round(left2 + u * width2 / SIZE), round(top2 + v * width2 / SIZE)), RIGHT, 3) < 40
    assert console_errors(browser) == []


def test_scrubbing_moves_the_pose_and_a_clip_switch_shows_the_other_clip(browser, poseset_page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    res, ps = poseset_page
    open_page(browser, res.path)
    browser.execute_script("auglift.setView('camera')")
    kp3d = np.asarray(ps.kp3d)
    slider = browser.find_element(By.ID, "scrub")
    ActionChains(browser).click_and_hold(slider).move_by_offset(slider.size["width"] // 2, 0).release().perform()
    settle(browser, "auglift.state.i > 25")
    i = browser.execute_script("return auglift.state.i")
    assert browser.find_element(By.ID, "frame").text.startswith(f"frame {i} ")
    img = screenshot(browser)
    moved, before = camera_pixel(browser, kp3d[i, LEFT_WRIST]), camera_pixel(browser, kp3d[0, LEFT_WRIST])
    assert np.hypot(moved[0] - before[0], moved[1] - before[1]) > 30  # the forearm swung up
    assert colour_near(img, moved, LEFT) < 30
    assert colour_near(img, before, LEFT, radius=1) > 60
    select(browser, "clip", "1")
    settle(browser, "auglift.state.ci === 1")
    img = screenshot(browser)
    i = browser.execute_script("return auglift.state.i")
    clip1 = kp3d[ps.clip_ranges[1, 0]:]
    assert colour_near(img, camera_pixel(browser, clip1[i, RIGHT_WRIST]), RIGHT) < 30
    assert colour_near(img, camera_pixel(browser, clip1[i, HEAD]), CENTRE) < 30
    assert browser.find_element(By.ID, "clip").get_attribute("value") == "1"
    assert console_errors(browser) == []


def test_play_hover_and_the_decoded_arrays(browser, poseset_page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    res, ps = poseset_page
    open_page(browser, res.path)
    renders = browser.execute_script("return auglift.stats.renders")
    browser.find_element(By.ID, "play").click()
    settle(browser, "auglift.state.i >= 5")  # playing advances the frames (25 fps clip)
    browser.find_element(By.ID, "play").click()
    assert browser.execute_script("return auglift.state.playing") is False
    paused = browser.execute_script("return auglift.state.i")
    time.sleep(0.3)
    assert browser.execute_script("return auglift.state.i") == paused
    assert browser.execute_script("return auglift.stats.renders") > renders + 5
    # hovering the left wrist shows its name and depth descriptor
    browser.execute_script("auglift.setView('camera'); auglift.setFrame(0)")
    settle(browser, "auglift.state.i === 0")
    x, y = camera_pixel(browser, np.asarray(ps.kp3d)[0, LEFT_WRIST])
    canvas = browser.find_element(By.CSS_SELECTOR, "#view3d canvas")
    left, top, width, height = canvas_rect(browser)
    ActionChains(browser).move_to_element_with_offset(canvas, x - left - width / 2, y - top - height / 2).perform()
    text = browser.find_element(By.ID, "hover").text
    assert "left_wrist" in text and "depth descriptor" in text and "(m)" in text
    assert f"{ps.uadd[0, LEFT_WRIST, 0]:.3f}" in text
    # the page's decoder returns the stored arrays (quantised to < 0.1 mm on a 2 m body)
    data = browser.execute_async_script(
        "const done = arguments[1]; auglift.clipData(arguments[0]).then((d) => done(Object.fromEntries("
        "Object.entries(d).map(([k, v]) => [k, Array.from(v, (x) => Number.isNaN(x) ? null : x)]))));", 1)
    rows = slice(*ps.clip_ranges[1])
    kp3d = np.asarray(ps.kp3d[rows], dtype=np.float64)
    np.testing.assert_allclose(np.reshape(data["pose0"], (-1, 17, 3)), kp3d - kp3d[:, :1], atol=1e-4)
    np.testing.assert_allclose(np.reshape(data["root"], (-1, 3)), kp3d[:, 0], atol=1e-4)
    np.testing.assert_allclose(np.reshape(data["kp2d"], (-1, 17, 2)), ps.kp2d[rows], atol=0.02)
    np.testing.assert_array_equal(data["frame"], ps.frame[rows])
    assert console_errors(browser) == []


# ----------------------------------------------------------------------------- predictions
@pytest.fixture(scope="module")
def predictions_page(tmp_path_factory):
    """Ground truth, prediction A (left wrist 5 cm off, 50 cm at clip 1 frame 10) and prediction B (1 cm noise)."""
    d = tmp_path_factory.mktemp("viewer_pred")
    ps = figure_poseset()
    ps.save(d / "figures")
    ps = PoseSet.load(d / "figures")
    rows = np.arange(len(ps))
    pred = np.array(ps.kp3d, dtype=np.float32)
    pred[:, LEFT_WRIST, 0] += 0.05
    spike = ps.clip_ranges[1, 0] + 10
    pred[spike, LEFT_WRIST, 0] += 0.45
    a = Predictions.from_poseset(pred, rows, ps, label="A", checkpoint="a.pt").save(d / "a.npz")
    noise = np.random.default_rng(0).normal(0, 0.01, pred.shape).astype(np.float32)
    b = Predictions.from_poseset(np.asarray(ps.kp3d) + noise, rows, ps, label="B").save(d / "b.npz")
    return write_viewer([a, b], d / "pred.html"), ps, pred, spike


def test_predictions_overlaid_coloured_by_error_and_worst_frames_clickable(browser, predictions_page):
    from selenium.webdriver.common.by import By

    res, ps, pred, spike = predictions_page
    assert res.kind == "predictions" and res.frames == 70
    open_page(browser, res.path)
    labels = browser.execute_script("return auglift.state && Array.from(document.querySelectorAll('#layers label'),"
                                    " (l) => l.textContent.trim())")
    assert labels == ["ground truth", "A", "B"]
    worst = browser.find_elements(By.CSS_SELECTOR, "#worst ol")[0].find_elements(By.TAG_NAME, "a")
    assert "S1/reach/0, frame 10" in worst[0].text
    worst[0].click()
    settle(browser, "auglift.state.ci === 1 && auglift.state.i === 10")
    browser.find_elements(By.CSS_SELECTOR, "#layers input")[2].click()  # hide B
    browser.execute_script("auglift.setView('camera')")
    settle(browser, "auglift.state.view === 'camera'")
    img = screenshot(browser)
    assert colour_near(img, camera_pixel(browser, pred[spike, LEFT_WRIST]), RED) < 40  # 500 mm: red
    assert colour_near(img, camera_pixel(browser, np.asarray(ps.kp3d)[spike, LEFT_WRIST]), WHITE) < 40  # truth
    assert console_errors(browser) == []


# ----------------------------------------------------------------------------- infer output
@pytest.fixture(scope="module")
def infer_page(tmp_path_factory):
    """A real ``auglift infer`` run (video + keypoint .npy + a small trained xy lifter), viewed by the CLI."""
    import torch

    from _infer_fixtures import train_lifter, write_npy_keypoints, write_video
    from auglift.infer import infer

    d = tmp_path_factory.mktemp("viewer_infer")
    torch.set_num_threads(1)
    video = write_video(d / "walk.mp4", frames=24)
    ckpt = train_lifter(d, model="simple_baseline", channels="xy", epochs=1, steps=1)
    infer(d / "walk.mp4", ckpt, out_dir=d / "walk_3d", keypoints=write_npy_keypoints(d / "walk.npy", video),
          device="cpu", progress=False)
    return d, video


def test_infer_output_shows_the_video_frames_with_their_keypoints(browser, infer_page, capsys):
    d, video = infer_page
    out = d / "walk.html"
    assert main(["view", str(d / "walk_3d"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "infer, 1 clip(s), 24 frames, 24 frames embedded" in printed
    open_page(browser, out)
    assert browser.execute_script("return auglift.state.clip.name") == "track 0"
    browser.execute_script("auglift.setFrame(12)")
    settle(browser, "auglift.state.i === 12")
    time.sleep(0.3)  # the JPEG decodes asynchronously, then redraws the panel
    img = screenshot(browser)
    left, top, width, height = (round(v) for v in canvas_rect(browser, "#view2d"))
    panel = img[top:top + height, left:left + width]
    assert height == round(width * 240 / 320)
    blank = (np.abs(panel - (0x22, 0x26, 0x2B)).max(-1) < 4).mean()
    assert blank < 0.05  # the video frame fills the panel
    # the video's textured background at a spot away from the people
    frame = np.asarray(video["kp2d"][12, 0])
    assert panel.std() > 5 and frame.shape == (17, 2)
    u, v = frame[RIGHT_WRIST] * width / 320
    assert colour_near(img, (round(left + u), round(top + v)), RIGHT, 3) < 60  # 2D keypoint drawn on the frame
    assert console_errors(browser) == []


def test_every_page_works_without_a_network_and_from_any_folder(browser, poseset_page, tmp_path):
    """The file is self-contained: a copy elsewhere opens the same (no sibling files, no URLs)."""
    res, _ps = poseset_page
    copy = tmp_path / "elsewhere" / "copy.html"
    copy.parent.mkdir()
    copy.write_bytes(Path(res.path).read_bytes())
    open_page(browser, copy)
    assert browser.execute_script("return auglift.state.clip.frames") == 40
    assert browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)") == []
    assert console_errors(browser) == []
