"""Body-scaled descriptors: the torso radius rule (depth/uadd.py) and the torso normalisation of relative depth
(encoding.py), checked with the synthetic world's relative-depth oracle."""

import numpy as np
import pytest
import torch

from auglift.datasets.synthetic import generate
from auglift.depth.estimators import OracleEstimator
from auglift.depth.extract import describe
from auglift.depth.uadd import DescriptorSpec, LinearRadius, TorsoRadius
from auglift.encoding import TORSO_JOINTS, EncoderState, encode_arrays, make_state
from auglift.errors import ConfigError


def _pose(torso_px: float) -> torch.Tensor:
    kp = torch.full((1, 17, 2), 500.0)
    kp[0, 8, 1] -= torso_px  # thorax straight above the pelvis
    return kp


def test_torso_radius_scales_with_person_size():
    rule = TorsoRadius()
    conf = torch.tensor([[1.0, 0.0] + [0.5] * 15])
    near, far = rule.radii(conf, _pose(270.0)), rule.radii(conf, _pose(100.0))
    assert far[0, :2].tolist() == pytest.approx([3.0, 30.0])  # the linear rule's 3-30 px at a 100 px torso
    assert (near / far).flatten().tolist() == pytest.approx([2.7] * 17)  # 2.7x larger person, 2.7x larger disk
    lin = LinearRadius()
    assert lin.radii(conf, _pose(270.0)).tolist() == lin.radii(conf, _pose(100.0)).tolist()
    missing = _pose(100.0)
    missing[0, 0] = float("nan")  # no pelvis: the fallback torso length
    assert rule.radii(conf, missing)[0, :2].tolist() == pytest.approx([3.0, 30.0])
    with pytest.raises(ConfigError, match="torso rule"):
        rule.radii(conf[:, :5], _pose(100.0)[:, :5])


def test_torso_radius_spec_round_trip():
    spec = DescriptorSpec(TorsoRadius(0.05, 0.4), mode="fast")
    d = spec.to_dict()
    assert d["radius"]["rule"] == "torso_linear" and d["radius_units"] == "torso lengths"
    assert DescriptorSpec.from_dict(d) == spec
    # an older spec (pixel rule, no units key) reads back unchanged
    old = {"radius": {"r_min": 3.0, "r_max": 30.0, "rule": "linear"},
           "stats": {"center": "median", "low": 0.0, "high": 1.0}, "mode": "exact"}
    assert DescriptorSpec.from_dict(old).radius == LinearRadius()


def _relief_slopes(norm: str, uadd: np.ndarray, valid: np.ndarray, kp3d: np.ndarray) -> np.ndarray:
    """Per frame, the least-squares slope (normalised units per metre) of the encoded ``d`` of the torso joints
    against their true root-relative depth (sign: nearer = larger disparity)."""
    n = len(kp3d)
    state = make_state({"channels": "d", "depth_kind": "relative", "relative_norm": norm, "relative_clip": 1e6})
    enc = encode_arrays(np.zeros((n, 17, 2)), np.ones((n, 17)), 1000, 1000, uadd, valid, state=state)[..., 0]
    t = list(TORSO_JOINTS[1:])
    z = (kp3d[:, t, 2] - kp3d[:, :1, 2]).astype(np.float64)
    e = -enc[:, t].astype(np.float64)
    ok = valid[:, t] & valid[:, :1]
    den = np.where(ok, z * z, 0).sum(1)
    good = den > 3 * 0.03 ** 2
    return np.where(ok, e * z, 0).sum(1)[good] / den[good]


def test_torso_normalisation_keeps_the_body_relief_under_the_oracle():
    ps = generate("lab", 240, seed=5, seq_seconds=(2.0, 4.0))
    uadd, valid, _ = describe(ps, OracleEstimator("relative"), descriptor=DescriptorSpec(mode="fast"), batch_size=60,
                              progress=False)
    kp3d = np.asarray(ps.kp3d)
    body = np.abs(kp3d[..., 2] - kp3d[..., 2].mean(1, keepdims=True)).mean(1)  # the body's true spread, m
    relief = {}
    for norm in ("spread", "torso"):
        k = _relief_slopes(norm, uadd, valid, kp3d)
        relief[norm] = float(np.median(k) * np.median(body))  # the body's relief in normalised units
        k = k[k > 0]
        relief[norm + "_logsd"] = float(np.std(np.log(k)))
    # the all-joint spread shrinks the body's relief ~10x; the torso spread keeps it near one unit
    assert relief["torso"] > 4 * relief["spread"]
    assert 0.4 < relief["torso"] < 2.5
    assert relief["torso_logsd"] < relief["spread_logsd"]


def test_torso_normalisation_is_affine_invariant_and_falls_back():
    rng = np.random.default_rng(1)
    d = rng.uniform(0.2, 0.4, (3, 17))
    uadd = np.repeat(d[..., None], 3, -1)
    valid = np.ones((3, 17), bool)
    state = make_state({"channels": "d", "depth_kind": "relative", "relative_norm": "torso", "relative_clip": 1e6})
    a = encode_arrays(np.zeros((3, 17, 2)), np.ones((3, 17)), 100, 100, uadd, valid, state=state)
    b = encode_arrays(np.zeros((3, 17, 2)), np.ones((3, 17)), 100, 100, 5.0 * uadd + 2.0, valid, state=state)
    assert np.allclose(a, b, atol=1e-4)
    t = np.array(TORSO_JOINTS)
    assert np.abs(a[..., 0][:, t] - a[..., 0][:, t].mean(1, keepdims=True)).mean(1) == pytest.approx([1.0] * 3)
    few = valid.copy()
    few[:, t[1:]] = False  # one torso joint left: the all-joint spread is used
    spread = make_state({"channels": "d", "depth_kind": "relative", "relative_clip": 1e6})
    c = encode_arrays(np.zeros((3, 17, 2)), np.ones((3, 17)), 100, 100, uadd, few, state=state)
    assert np.allclose(c, encode_arrays(np.zeros((3, 17, 2)), np.ones((3, 17)), 100, 100, uadd, few, state=spread))


def test_relative_norm_is_stored_only_when_it_changes_the_encoding():
    torso = make_state({"channels": "uadd", "relative_norm": "torso"})
    assert torso.to_dict()["relative_norm"] == "torso" and EncoderState.of(torso.to_dict()) == torso
    spread = make_state({"channels": "uadd"})
    assert "relative_norm" not in spread.to_dict()  # stored as states of earlier versions were
    assert EncoderState.of(spread.to_dict()).relative_norm == "spread"
