"""``auglift view`` without a browser: reading the three inputs, clip selection and thinning, the page's
array encoding (decoded here as the page's script does), output-file safety and CLI errors."""

from __future__ import annotations

import base64
import json
import re
import zlib
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auglift.cli import main
from auglift.errors import ConfigError, DataError
from auglift.predictions import Predictions
from auglift.viewer import default_output, write_viewer
from auglift.viewer.inputs import plan, read_inputs
from auglift.viewer.page import encode_block
from conftest import make_poseset


def decode_block(text: str, layout: list[dict]) -> dict[str, np.ndarray]:
    """What viewer.js does: inflate, undo the frame differences per channel, map levels to values."""
    raw = zlib.decompress(base64.b64decode(text))
    out = {}
    for a in layout:
        shape, n = a["shape"], a["shape"][0]
        size = int(np.prod(shape))
        dtype = "<u2" if a["kind"] == "u16" else "<i4"
        cols = np.frombuffer(raw, dtype, size, a["offset"]).reshape(-1, n) if n else np.zeros((0, 0))
        if a["kind"] == "u16":
            q = np.cumsum(cols.astype(np.int64), axis=1) % 65536
            v = np.where(q == 65535, np.nan, a["lo"] + q * a["step"])
        else:
            v = np.cumsum(cols.astype(np.int64), axis=1).astype(np.int32)
        out[a["name"]] = v.T.reshape(shape)
    return out


def page_meta(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'<script type="application/json" id="auglift-meta">(.*?)</script>', text,
                                re.S).group(1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(floats=hnp.arrays(np.float32, st.tuples(st.integers(1, 40), st.integers(1, 5)),
                         elements=st.one_of(st.floats(-1e4, 1e4, width=32), st.just(float("nan")))),
       ints=hnp.arrays(np.int32, st.integers(1, 40), elements=st.integers(-2**31, 2**31 - 1)))
def test_encoded_arrays_decode_to_within_half_a_level(floats, ints):
    text, layout = encode_block({"f": floats, "i": ints[: len(floats)]})
    back = decode_block(text, layout)
    np.testing.assert_array_equal(np.isnan(back["f"]), np.isnan(floats))
    step = layout[0]["step"]
    ok = ~np.isnan(floats)
    assert np.all(np.abs(back["f"][ok] - floats[ok]) <= step / 2 * 1.001 + 1e-6)
    np.testing.assert_array_equal(back["i"], ints[: len(floats)])  # integers exact, even with wrap-around deltas
    assert all(a["offset"] % 4 == 0 for a in layout)


def test_plan_selects_by_pattern_or_index_and_thins_to_max_frames():
    names = ["S9/walk/0", "S9/walk/1", "S11/sit/0"]
    chosen, stride = plan(names, [100, 100, 50], ["S9/*"], None)
    assert chosen.tolist() == [0, 1] and stride == 1
    chosen, stride = plan(names, [100, 100, 50], ["2", "S9/walk/1"], 60)
    assert chosen.tolist() == [1, 2] and stride == 3
    with pytest.raises(ConfigError, match="no clip matches"):
        plan(names, [100, 100, 50], ["S1/*"], None)
    with pytest.raises(ConfigError, match="max-frames"):
        plan(names, [100, 100, 50], None, 0)


def test_poseset_page_thinned_and_selected(tmp_path, capsys):
    ps = make_poseset(n_clips=3, frames=[40, 30, 20], seed=4)
    ps.save(tmp_path / "set")
    res = write_viewer(tmp_path / "set", tmp_path / "all.html", max_frames=25)
    assert res.stride == 4 and res.frames == 10 + 8 + 5 and res.clips == 3
    assert any("one frame in 4" in n for n in res.notes)
    meta = page_meta(res.path)
    assert [c["name"] for c in meta["clips"]] == ["S1/walk/0", "S2/sit/1", "S1/wave/2"]
    assert meta["clips"][0]["stride"] == 4 and meta["layers"] == [{"label": "3D pose", "role": "pose"}]
    text = res.path.read_text(encoding="utf-8")
    block = re.search(r'id="clip-1">(.*?)</script>', text).group(1)
    back = decode_block(block, meta["clips"][1]["arrays"])
    rows = np.arange(40, 70, 4)
    np.testing.assert_array_equal(back["frame"], ps.frame[rows])
    kp3d = np.asarray(ps.kp3d[rows], dtype=np.float64)
    np.testing.assert_allclose(back["pose0"], kp3d - kp3d[:, :1], atol=1e-4)
    np.testing.assert_allclose(back["root"], kp3d[:, 0], atol=1e-4)
    assert main(["view", str(tmp_path / "set"), "--clip", "S2/*", "--out", str(tmp_path / "one.html")]) == 0
    out = capsys.readouterr().out
    assert "poseset, 1 clip(s), 30 frames" in out
    assert [c["name"] for c in page_meta(tmp_path / "one.html")["clips"]] == ["S2/sit/1"]


def test_predictions_overlay_matches_frames_by_clip_name_and_lists_the_worst(tmp_path):
    ps = make_poseset(n_clips=2, frames=20, seed=5)
    ps.save(tmp_path / "set")
    kp3d = np.asarray(ps.kp3d)
    off = np.zeros_like(kp3d)
    off[:, 3, 0] = 0.01 * np.arange(len(ps))  # error grows with the row: the worst frames are the last
    a = Predictions.from_poseset(kp3d + off, np.arange(len(ps)), ps, label="A").save(tmp_path / "a.npz")
    half = np.arange(20, 40)  # B covers clip 1 only, in another clip order
    b = Predictions.from_poseset(kp3d[half], half, ps, label="B").save(tmp_path / "b.npz")
    data = read_inputs([a, b])
    assert data.layers == [("ground truth", "gt"), ("A", "pred"), ("B", "pred")]
    c0, c1 = data.clips
    assert np.isnan(c0.poses[2]).all() and np.isfinite(c1.poses[2]).all()  # B has no frame of clip 0
    np.testing.assert_allclose(c1.poses[2], c1.poses[0], atol=1e-6)  # B is exact on clip 1
    (label_a, worst_a), (label_b, worst_b) = data.worst
    assert label_a == "A" and [w[:2] for w in worst_a[:3]] == [(1, 19), (1, 18), (1, 17)]
    assert worst_a[0][2] == pytest.approx(390.0 / 17, rel=1e-4)  # 39 cm on one joint of 17
    assert label_b == "B" and all(w[0] == 1 for w in worst_b)
    res = write_viewer([a, b], tmp_path / "ab.html", clips=["S2/*"])
    meta = page_meta(res.path)
    assert [c["name"] for c in meta["clips"]] == ["S2/sit/1"]
    assert meta["worst"][0]["frames"][0] == {"clip": 0, "frame": 19, "index": 19, "mm": pytest.approx(22.94, 1e-3)}


def test_infer_output_reader_and_its_errors(tmp_path):
    out = tmp_path / "walk_3d"
    out.mkdir()
    rng = np.random.default_rng(0)
    n = 12
    arrays = {"kp3d": rng.normal(0, 0.3, (n, 17, 3)).astype(np.float32), "root": np.full((n, 3), np.nan, np.float32),
              "kp2d": rng.uniform(0, 300, (n, 17, 2)).astype(np.float32), "conf": np.full((n, 17), 0.8, np.float32),
              "uadd": np.full((n, 17, 3), np.nan, np.float32), "frame": np.tile(np.arange(6), 2).astype(np.int32),
              "track": np.repeat([0, 1], 6).astype(np.int32), "intrinsics": np.array([320.0, 320, 159.5, 119.5]),
              "image_size": np.array([320, 240], np.int32)}
    np.savez(out / "poses3d.npz", **arrays)
    (out / "poses3d.json").write_text(json.dumps({"input": {"path": str(tmp_path / "gone.mp4"), "fps": 25.0}}))
    res = write_viewer(out, tmp_path / "walk.html", clips=["track 1"])
    assert res.kind == "infer" and res.clips == 1 and res.frames == 6 and res.images == 0
    assert any("gone.mp4 is not there" in n for n in res.notes)
    assert any("3D size matches its 2D size" in n for n in res.notes)  # no metric root: estimated
    assert default_output(out / "poses3d.npz") == Path("walk_3d.html")
    (out / "poses3d.json").write_text(json.dumps({"input": [1, 2], "units": "m", "fps": "fast"}))  # odd: defaults
    assert write_viewer(out, tmp_path / "walk.html").frames == 12
    odd = {"kp3d": {k: v for k, v in arrays.items() if k != "kp3d"},
           "image_size": arrays | {"image_size": np.array(["wide", "tall"])},
           "intrinsics": arrays | {"intrinsics": np.array([np.inf, 320, 159.5, 119.5])},
           "track": arrays | {"track": np.zeros((n, 2), np.int32)},
           "pickle": arrays | {"track": np.array([None] * n, dtype=object)}}
    for member, content in odd.items():
        np.savez(out / "poses3d.npz", **content)
        with pytest.raises(DataError) as err:
            write_viewer(out, tmp_path / "walk.html")
        assert str(out / "poses3d.npz") in str(err.value) and (member == "pickle" or err.value.field == member)
    (out / "poses3d.json").write_text("{not json")
    np.savez(out / "poses3d.npz", **arrays)
    with pytest.raises(DataError, match="poses3d.json"):
        write_viewer(out, tmp_path / "walk.html")


def test_output_safety_and_input_errors(tmp_path, capsys):
    ps = make_poseset(n_clips=1, frames=5)
    ps.save(tmp_path / "set")
    mine = write_viewer(tmp_path / "set", tmp_path / "page.html").path
    assert write_viewer(tmp_path / "set", mine).path == mine  # its own page is replaced
    notes = tmp_path / "notes.html"
    notes.write_text("<html>my notes</html>")
    p = Predictions.from_poseset(np.asarray(ps.kp3d), np.arange(5), ps).save(tmp_path / "p.npz")
    cases = [
        (["view", str(tmp_path / "set"), "--out", str(notes)], "not written by auglift view"),
        (["view", str(tmp_path / "set"), str(p)], "predictions files"),
        (["view", str(tmp_path / "set"), str(tmp_path / "set")], "give one path"),
        (["view", str(tmp_path)], "not a PoseSet directory"),
        (["view", str(tmp_path / "nope")], "file not found"),
        (["view", str(tmp_path / "set"), "--clip", "S7/*"], "no clip matches"),
        (["view", str(tmp_path / "set"), "--out", str(tmp_path)], "is a directory"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("auglift: error: ") and message in err[0], (args, err)
    assert notes.read_text() == "<html>my notes</html>"


def test_names_from_data_cannot_break_out_of_the_page(tmp_path):
    ps = make_poseset(n_clips=1, frames=4)
    ps.clips.columns["subject"] = np.array(['</script><script>alert("x")</script>'])
    ps.save(tmp_path / "set")
    res = write_viewer(tmp_path / "set", tmp_path / "p.html", title="<b>title</b>")
    text = res.path.read_text(encoding="utf-8")
    assert "alert" in text and '<script>alert("x")' not in text and "<b>title</b>" not in text
    assert page_meta(res.path)["clips"][0]["name"].startswith('</script><script>alert("x")')


def test_poseset_without_3d_shows_its_2d(tmp_path):
    ps = make_poseset(n_clips=1, frames=6)
    fields = {k: v for k, v in ps.fields.items() if k not in ("kp3d",)}
    type(ps)(fields, ps.clips, ps.meta).save(tmp_path / "only2d")
    res = write_viewer(tmp_path / "only2d", tmp_path / "2d.html")
    meta = page_meta(res.path)
    assert meta["layers"] == [] and res.frames == 6 and any("only the 2D" in n for n in res.notes)
    assert {a["name"] for a in meta["clips"][0]["arrays"]} == {"frame", "root", "kp2d", "conf"}
