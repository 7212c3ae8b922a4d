"""``auglift export``: every lifter (small widths), trained here for a few steps, exports to ONNX with a
dynamic batch axis; onnxruntime matches PyTorch; the encoding travels in the metadata and reproduces
``auglift.evaluate``'s predictions from raw keypoints and descriptors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _infer_fixtures import train_lifter, write_npy_keypoints, write_video
from _train_fixtures import TINY_MODELS, add_uadd, moving_poseset
from auglift.checkpoint import Checkpoint
from auglift.cli import main
from auglift.encoding import encode_arrays
from auglift.errors import ConfigError, DataError
from auglift.export import checkpoint_from_onnx, export_onnx, read_onnx_metadata, run_onnx
from auglift.infer import infer
from auglift.predict import predict

pytestmark = pytest.mark.xdist_group("export")

CHANNELS = {"simple_baseline": "xy", "tcn": "uadd", "poseformer": "xyc", "motionbert": "uadd"}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    torch.set_num_threads(1)
    return {m: train_lifter(d, model=m, channels=CHANNELS[m], kwargs=TINY_MODELS[m], epochs=1, steps=2)
            for m in TINY_MODELS}


@pytest.mark.parametrize("name", list(TINY_MODELS))
def test_every_lifter_exports_and_matches_pytorch(checkpoints, tmp_path, name):
    ckpt = Checkpoint.load(checkpoints[name])
    res = export_onnx(ckpt, tmp_path / f"{name}.onnx")
    assert res.max_abs_diff is not None and res.max_abs_diff < 1e-4
    t, c = ckpt.lifter.receptive_field, ckpt.lifter.in_channels
    assert res.input_shape == ("batch", t, 17, c)
    model = ckpt.build_model()
    g = torch.Generator().manual_seed(1)
    for b in (1, 7):  # the batch axis is dynamic
        x = torch.randn(b, t, 17, c, generator=g)
        with torch.inference_mode():
            ref = model(x).numpy()
        got = run_onnx(tmp_path / f"{name}.onnx", x.numpy())
        assert got.shape == ref.shape == (b, t if ckpt.lifter.many_to_many else 1, 17, 3)
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)
    meta = read_onnx_metadata(tmp_path / f"{name}.onnx")
    assert meta["channels"] == ",".join(ckpt.encoder.channels)
    assert meta["encoder"] == ckpt.encoder
    assert meta["model"]["name"] == name and meta["model"]["receptive_field"] == t
    assert meta["depth_model"] == "oracle-metric" and meta["joint_set"] == "h36m17"
    assert len(meta["joint_names"]) == 17 and sorted(meta["flip_permutation"]) == list(range(17))


def test_metadata_is_enough_to_reproduce_predictions(checkpoints, tmp_path):
    """Encode raw arrays with the stored encoder state, run the ONNX model, compare with predict.predict."""
    path = tmp_path / "tcn.onnx"
    export_onnx(checkpoints["tcn"], path)
    meta = read_onnx_metadata(path)
    ps = add_uadd(moving_poseset(n_clips=1, frames=30, seed=4))
    ckpt = Checkpoint.load(checkpoints["tcn"])
    ref = predict(ckpt, ps, flip_test=False)
    t = meta["model"]["receptive_field"]
    rows = np.clip(np.arange(len(ps))[:, None] + np.arange(t) - t // 2, 0, len(ps) - 1)  # centred, edge-padded
    x = encode_arrays(ps.kp2d[rows], ps.conf[rows], 1000.0, 1000.0, ps.uadd[rows], ps.uadd_valid[rows],
                      state=meta["encoder"])
    y = run_onnx(path, x)[:, 0]
    np.testing.assert_allclose(y - y[:, :1], ref.pred - ref.pred[:, :1], atol=1e-4)


def test_cli_export_and_errors(checkpoints, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(checkpoints["simple_baseline"]), "--onnx", str(out)]) == 0
    text = capsys.readouterr().out
    assert "simple_baseline" in text and "onnxruntime vs PyTorch" in text and out.exists()
    assert main(["export", str(tmp_path / "none.pt"), "--onnx", str(out)]) == 2
    assert capsys.readouterr().err.startswith("auglift: error: ")
    with pytest.raises(ConfigError, match=".onnx"):
        export_onnx(checkpoints["simple_baseline"], tmp_path / "m.bin")
    with pytest.raises(DataError, match="not an auglift lifter export"):
        import onnx

        proto = onnx.load(str(out))
        del proto.metadata_props[:]
        onnx.save(proto, str(tmp_path / "plain.onnx"))
        read_onnx_metadata(tmp_path / "plain.onnx")


@pytest.mark.parametrize("name", ["poseformer", "simple_baseline"])
def test_infer_with_the_exported_model_equals_pytorch(checkpoints, tmp_path, name):
    """``auglift infer --checkpoint model.onnx``: onnxruntime lifts, the metadata supplies the encoding."""
    video = write_video(tmp_path / "v.mp4", frames=12)
    kp = write_npy_keypoints(tmp_path / "v.npy", video)
    export_onnx(checkpoints[name], tmp_path / "m.onnx")
    ck = checkpoint_from_onnx(tmp_path / "m.onnx")
    assert ck.encoder == Checkpoint.load(checkpoints[name]).encoder and ck.config.augment.flip_test
    a = infer(tmp_path / "v.mp4", checkpoints[name], out_dir=tmp_path / "a", keypoints=kp, device="cpu")
    b = infer(tmp_path / "v.mp4", tmp_path / "m.onnx", out_dir=tmp_path / "b", keypoints=kp, device="cpu")
    assert b.meta["lifter_backend"] == "onnxruntime" and a.meta["lifter_backend"] == "pytorch"
    assert len(a) == len(b) == 12
    np.testing.assert_allclose(b.kp3d, a.kp3d, atol=1e-4)
