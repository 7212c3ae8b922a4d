"""The synthetic detector's 2D-noise scale: it multiplies the noise sd and the outlier and swap rates by
about the stated factor, with the same random draws at every scale; scale 1 is the calibrated detector."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from auglift.datasets.synthetic import generate
from auglift.datasets.synthetic.detections import _BASE, noise2d_scale, simulate_detections
from auglift.datasets.synthetic.domains import DOMAINS, detector_replaced
from auglift.errors import ConfigError

N = 20_000


def _frames() -> tuple[np.ndarray, np.ndarray]:
    """``N`` frames of one person in the middle of a 1000x1000 image, every joint visible."""
    rng = np.random.default_rng(5)
    gt = np.zeros((N, 17, 2))
    gt[:, :, 0] = 500 + 120 * np.linspace(-1, 1, 17) + rng.normal(0, 5, (N, 17))
    gt[:, :, 1] = 500 + 160 * np.sin(np.arange(17)) + rng.normal(0, 5, (N, 17))
    gt[:, 4, 0], gt[:, 1, 0] = 560.0, 440.0  # facing the camera
    return gt, np.ones((N, 17), bool)


def _detect(scale: float):
    gt, vis = _frames()
    res = simulate_detections(gt, vis, np.full(N, 1000), np.full(N, 1000), np.repeat(np.arange(20), N // 20),
                              DOMAINS["lab"].detector, np.random.default_rng(1), scale)
    return gt, res


def test_noise_sd_and_gross_error_rates_scale_by_about_the_stated_factor():
    gt, r1 = _detect(1.0)
    stats = {}
    for s in (0.5, 1.0, 2.0, 3.0):
        _, r = _detect(s) if s != 1.0 else (gt, r1)
        err = np.linalg.norm(r.kp2d[:, _BASE] - gt[:, _BASE], axis=-1)
        clean = ~r.outlier[:, _BASE] & ~r.swapped[:, None]  # the Gaussian part alone
        stats[s] = (float(np.median(err[clean])), float(r.outlier.mean()), float(r.swapped.mean()))
    for s in (0.5, 2.0, 3.0):
        assert stats[s][0] / stats[1.0][0] == pytest.approx(s, rel=0.03)  # the same draws: the sd scales exactly
        assert stats[s][1] / stats[1.0][1] == pytest.approx(s, rel=0.15)
        assert stats[s][2] / stats[1.0][2] == pytest.approx(s, rel=0.3)  # events last several frames
    # the same draws: outliers and swap events of a lower scale are among those of a higher one
    _, r3 = _detect(3.0)
    assert not (r1.outlier & ~r3.outlier).any()
    assert not (r1.swapped & ~r3.swapped).any()
    # a noisier detector is less confident (confidence grades the error against the calibrated sd)
    assert r3.conf[:, _BASE].mean() < r1.conf[:, _BASE].mean() - 0.05


def test_scale_zero_is_exact_2d_and_one_is_the_default():
    gt, r0 = _detect(0.0)
    assert not r0.outlier.any() and not r0.swapped.any()
    np.testing.assert_allclose(r0.kp2d[:, _BASE], gt[:, _BASE], atol=1e-3)  # float32 rounding only
    a = generate("lab", 400, seed=4, seq_seconds=(1.0, 2.0))
    b = generate("lab", 400, seed=4, seq_seconds=(1.0, 2.0), noise2d=1.0)
    c = generate("lab", 400, seed=4, seq_seconds=(1.0, 2.0), noise2d=2.0)
    assert np.array_equal(a.kp2d, b.kp2d, equal_nan=True) and np.array_equal(a.conf, b.conf)
    assert a.meta["extra"]["synthetic"]["noise2d"] == 1.0 and c.meta["extra"]["synthetic"]["noise2d"] == 2.0
    # the 2D noise changes the detections only: 3D, ground-truth 2D and visibility are the same
    assert np.array_equal(a.kp3d, c.kp3d) and np.array_equal(a.kp2d_gt, c.kp2d_gt)
    assert np.array_equal(a.visible, c.visible)
    ea = np.nanmedian(np.linalg.norm(a.kp2d - a.kp2d_gt, axis=-1))
    ec = np.nanmedian(np.linalg.norm(c.kp2d - c.kp2d_gt, axis=-1))
    assert 1.6 < ec / ea < 2.4


@pytest.mark.parametrize("bad", [-0.1, 5.5, "x", True, float("nan")])
def test_bad_scales_fail_with_one_line(bad):
    with pytest.raises(ConfigError, match="2D noise scale"):
        noise2d_scale(bad)


def _second_difference_sd(x: np.ndarray, clip: np.ndarray) -> float:
    """sd of ``x[t] - (x[t-1] + x[t+1]) / 2`` within clips, frames first."""
    same = (clip[2:] == clip[1:-1]) & (clip[1:-1] == clip[:-2])
    return float(np.std((x[1:-1] - 0.5 * (x[2:] + x[:-2]))[same]))


@pytest.mark.parametrize("white_share", [0.01, 0.5])
def test_white_share_sets_the_frame_to_frame_jitter_of_positions_and_confidence(white_share):
    """A still person, no outliers or swaps: the detections' frame-to-frame jitter (sd of the second difference,
    relative to the noise's sd) is sqrt(1.5 w + 0.031 (1 - w)) for a white share w and the 1.5-frame smooth
    remainder (autocorrelation exp(-k^2 / 9)); the confidence's calibration noise follows the same model."""
    spec = dataclasses.replace(DOMAINS["lab"].detector, white_share=white_share, outlier_p=0.0,
                               outlier_p_occluded=0.0, swap_p=0.0, border_gain=0.0, conf_err_slope=0.0)
    gt = np.broadcast_to(_frames()[0][:1], (N, 17, 2)).copy()
    clip = np.repeat(np.arange(20), N // 20)
    r = simulate_detections(gt, np.ones((N, 17), bool), np.full(N, 1000), np.full(N, 1000), clip, spec,
                            np.random.default_rng(2))
    rho1, rho2 = np.exp(-1 / 9), np.exp(-4 / 9)
    expected = np.sqrt(white_share * 1.5 + (1 - white_share) * (1.5 - 2 * rho1 + 0.5 * rho2))
    noise = (r.kp2d - gt)[:, [2, 3, 5, 6, 15, 16]]  # knees, ankles, wrists: detected joints
    assert _second_difference_sd(noise, clip) / noise.std() == pytest.approx(expected, rel=0.1)
    logit = np.log(r.conf / (1 - r.conf))[:, [2, 3, 5, 6, 15, 16]].astype(np.float64)
    assert _second_difference_sd(logit, clip) / logit.std() == pytest.approx(expected, rel=0.1)
    assert logit.std() == pytest.approx(spec.conf_noise, rel=0.1)


def test_a_replaced_detector_changes_only_what_it_names_and_is_restored():
    """What the confidence experiments rely on: a world generated with the confidence's noise switched off has
    the same keypoints (the random draws are made either way) and a less noisy confidence; the domain is
    restored afterwards, also when the block raises."""
    before = DOMAINS["lab"]
    ref = generate("lab", 400, 3)
    with detector_replaced(["lab"], conf_noise=0.0):
        assert DOMAINS["lab"].detector.conf_noise == 0.0 and DOMAINS["lab"].rig == before.rig
        quiet = generate("lab", 400, 3)
    assert DOMAINS["lab"] is before
    np.testing.assert_array_equal(quiet.kp2d, ref.kp2d)
    np.testing.assert_array_equal(quiet.kp3d, ref.kp3d)
    assert not np.array_equal(quiet.conf, ref.conf)
    seen = np.asarray(ref.visible) & np.asarray(ref.kp2d_valid)[:, None]
    logit_ref, logit_quiet = (np.log(c / (1 - c)).astype(np.float64) for c in (ref.conf, quiet.conf))
    # the only difference is the calibration noise: conf_noise x unit noise
    assert np.std((logit_ref - logit_quiet)[seen]) == pytest.approx(before.detector.conf_noise, rel=0.15)
    with pytest.raises(RuntimeError), detector_replaced(["lab", "outdoor"], white_share=0.5):
        raise RuntimeError("inside")
    assert DOMAINS["lab"] is before and DOMAINS["outdoor"].detector.white_share == 0.01

