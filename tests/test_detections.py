"""2D detection importer: COCO results, AlphaPose/Halpe, MMPose JSON, npy/npz arrays, VideoPose3D npz."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _dataset_fixtures import H36M_CAMS, image_poseset, write_h36m_vp3d
from auglift.cli import main
from auglift.datasets.detections import (
    Instances,
    apply_detections,
    import_detections,
    keypoints_to_h36m,
    match_detections,
    read_instances,
)
from auglift.datasets.h36m import convert as convert_h36m
from auglift.errors import ConfigError, DataError
from auglift.poseset import PoseSet
from auglift.skeleton import conversion_matrix, to_h36m


@pytest.fixture
def saved(tmp_path):
    ps = image_poseset(n_clips=3, frames=6)
    path = tmp_path / "ps"
    ps.save(path)
    return path, ps


def _name(c: int, f: int) -> str:
    return f"imgs/cam{c}/img_{f + 1:06d}.jpg"


def _coco_results(ps: PoseSet, rng: np.random.Generator, joints: int = 17, *, skip: tuple[int, ...] = (),
                  ids: bool = True) -> tuple[list[dict], dict[int, np.ndarray]]:
    """1-3 people per frame (rows in ``skip`` have none); returns the results and the expected best per row."""
    res, best = [], {}
    for r in range(len(ps)):
        if r in skip:
            continue
        c, f = int(ps.clip[r]), int(ps.frame[r])
        cands = []
        for _ in range(rng.integers(1, 4)):
            kp = np.concatenate([rng.uniform(0, 1000, (joints, 2)), rng.uniform(0.05, 1.0, (joints, 1))], 1)
            cands.append(kp)
            res.append({"image_id": 1000 + r if ids else _name(c, f), "category_id": 1,
                        "keypoints": kp.ravel().tolist(), "score": float(kp[:, 2].mean())})
        best[r] = max(cands, key=lambda k: k[:, 2].mean())
    return res, best


def test_coco_results_with_images_list(saved, tmp_path, capsys):
    path, ps = saved
    rng = np.random.default_rng(0)
    res, best = _coco_results(ps, rng, skip=(2, 7))
    res.append({"image_id": 99999, "category_id": 1, "keypoints": [1.0] * 51, "score": 1.0})
    images = [{"id": 1000 + r, "file_name": _name(int(ps.clip[r]), int(ps.frame[r]))} for r in range(len(ps))]
    images.append({"id": 99999, "file_name": "elsewhere/x.jpg"})
    (tmp_path / "res.json").write_text(json.dumps(res))
    (tmp_path / "images.json").write_text(json.dumps({"images": images}))
    assert main(["detections", "import", str(tmp_path / "res.json"), "--poseset", str(path),
                 "--images", str(tmp_path / "images.json"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "16 of 18 frames" in out and "2 frames without a detection" in out and "1 detections matched no" in out
    new = PoseSet.load(path, validate=True)
    np.testing.assert_array_equal(new.kp2d_gt, ps.kp2d)  # the previous GT kp2d is kept
    assert new.kp2d_valid.tolist() == [r not in (2, 7) for r in range(len(ps))]
    for r, kp in best.items():
        want, conf = to_h36m(kp[:, :2], "coco17", kp[:, 2])
        np.testing.assert_allclose(new.kp2d[r], want, atol=1e-3)
        np.testing.assert_allclose(new.conf[r], conf, atol=1e-6)
    assert np.isnan(new.kp2d[[2, 7]]).all() and (new.conf[[2, 7]] == 0).all()
    extra = new.meta["extra"]
    assert extra["kp2d_source"] == "detections:coco:res.json" and extra["detections"]["frames_with_several_people"] > 0


def test_alphapose_halpe_file_names(saved, tmp_path):
    path, ps = saved
    rng = np.random.default_rng(1)
    res, best = _coco_results(ps, rng, joints=26, ids=False)
    for r in res[::2]:
        r["image_id"] = "/mnt/data/set/" + r["image_id"]  # absolute paths match on their trailing part
    (tmp_path / "alphapose-results.json").write_text(json.dumps(res))
    stats = import_detections(path, [tmp_path / "alphapose-results.json"], progress_bar=False)
    assert stats["format"] == "halpe" and stats["joint_set"] == "halpe26" and stats["frames_with_detection"] == 18
    new = PoseSet.load(path)
    for r, kp in best.items():
        np.testing.assert_allclose(new.kp2d[r], to_h36m(kp[:, :2], "halpe26")[0], atol=1e-3)


def test_mmpose_per_image_files_and_ambiguity(saved, tmp_path):
    path, ps = saved
    rng = np.random.default_rng(2)
    pred = tmp_path / "preds"
    want = {}
    for r in range(len(ps)):
        c, f = int(ps.clip[r]), int(ps.frame[r])
        inst = [{"keypoints": rng.uniform(0, 999, (17, 2)).tolist(),
                 "keypoint_scores": rng.uniform(0.1, 1, 17).tolist(), "bbox": [[0, 0, 10, 10]], "bbox_score": 0.9}
                for _ in range(2)]
        want[r] = max(inst, key=lambda i: np.mean(i["keypoint_scores"]))
        (pred / f"cam{c}").mkdir(parents=True, exist_ok=True)
        (pred / f"cam{c}" / f"img_{f + 1:06d}.json").write_text(json.dumps(inst))
    stats = import_detections(path, [pred], progress_bar=False)
    assert stats["format"] == "mmpose" and stats["frames_with_detection"] == len(ps)
    new = PoseSet.load(path)
    for r, inst in want.items():
        kp, _ = to_h36m(np.array(inst["keypoints"]), "coco17", np.array(inst["keypoint_scores"]))
        np.testing.assert_allclose(new.kp2d[r], kp, atol=1e-3)
    # the same files without their camera folders are ambiguous (img_000001 exists in every clip)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "img_000001.json").write_text((pred / "cam0" / "img_000001.json").read_text())
    with pytest.raises(DataError, match="ambiguous"):
        import_detections(path, [flat], progress_bar=False)


def test_mmpose_video_predictions(tmp_path):
    ps = image_poseset(n_clips=2, frames=5, video=True)
    ps.save(tmp_path / "ps")
    rng = np.random.default_rng(3)
    kp0 = rng.uniform(0, 999, (5, 17, 2))
    inferencer = [{"frame_id": i, "instances": [{"keypoints": kp0[i].tolist(), "keypoint_scores": [0.9] * 17}]}
                  for i in range(5) if i != 3]
    kp1 = rng.uniform(0, 999, (5, 17, 2))
    demo = {"meta_info": {"dataset_name": "coco"},
            "instance_info": [{"frame_id": i + 1, "instances": [{"keypoints": kp1[i].tolist(),
                                                                "keypoint_scores": [0.8] * 17}]} for i in range(5)]}
    (tmp_path / "preds").mkdir()
    (tmp_path / "preds" / "cam0.json").write_text(json.dumps(inferencer))
    (tmp_path / "preds" / "cam1.json").write_text(json.dumps(demo))
    with pytest.raises(DataError, match="mixes per-image and per-video"):
        (tmp_path / "preds" / "z_image.json").write_text("[]")
        import_detections(tmp_path / "ps", [tmp_path / "preds"], progress_bar=False)
    (tmp_path / "preds" / "z_image.json").unlink()
    stats = import_detections(tmp_path / "ps", [tmp_path / "preds"], progress_bar=False)
    assert stats["frames_with_detection"] == 9
    new = PoseSet.load(tmp_path / "ps")
    np.testing.assert_allclose(new.kp2d[:5][[0, 1, 2, 4]], to_h36m(kp0[[0, 1, 2, 4]], "coco17")[0], atol=1e-3)
    assert not new.kp2d_valid[3]
    np.testing.assert_allclose(new.kp2d[5:], to_h36m(kp1, "coco17")[0], atol=1e-3)  # 1-based frame ids


def test_frame_names_for_video_sources_need_a_pattern(tmp_path):
    ps = image_poseset(n_clips=2, frames=4, video=True)
    ps.save(tmp_path / "ps")
    res = [{"image_id": f"frames/cam{c}/{f:06d}.png", "keypoints": [10.0, 20.0, 0.9] * 17}
           for c in range(2) for f in range(4)]
    (tmp_path / "r.json").write_text(json.dumps(res))
    with pytest.raises(ConfigError, match="give --name-pattern"):
        import_detections(tmp_path / "ps", [tmp_path / "r.json"], progress_bar=False)
    stats = import_detections(tmp_path / "ps", [tmp_path / "r.json"], name_pattern="frames/{stem}/{frame:06d}.png",
                              progress_bar=False)
    assert stats["frames_with_detection"] == 8


def test_id_schemes(saved, tmp_path):
    path, ps = saved
    kp = [5.0, 6.0, 1.0] * 17
    rows = [0, 4, 17]
    (tmp_path / "row.json").write_text(json.dumps([{"image_id": r, "keypoints": kp} for r in rows]))
    with pytest.raises(ConfigError, match="need --id-scheme"):
        import_detections(path, [tmp_path / "row.json"], progress_bar=False)
    stats = import_detections(path, [tmp_path / "row.json"], id_scheme="row", out=tmp_path / "o1",
                              progress_bar=False)
    assert np.flatnonzero(PoseSet.load(tmp_path / "o1").kp2d_valid).tolist() == rows
    assert stats["frames_with_detection"] == 3
    ids = [int(ps.clip[r]) * 1000 + int(ps.frame[r]) for r in rows]
    (tmp_path / "cf.json").write_text(json.dumps([{"image_id": i, "keypoints": kp} for i in ids]))
    import_detections(path, [tmp_path / "cf.json"], id_scheme="clip*1000+frame", out=tmp_path / "o2",
                      progress_bar=False)
    assert np.flatnonzero(PoseSet.load(tmp_path / "o2").kp2d_valid).tolist() == rows
    assert PoseSet.load(path).kp2d_valid is None  # --out leaves the original untouched
    with pytest.raises(ConfigError, match="needs a PoseSet with one clip"):
        import_detections(path, [tmp_path / "row.json"], id_scheme="frame", progress_bar=False)


def test_select_closest_to_ground_truth(saved, tmp_path):
    path, ps = saved
    gt = np.asarray(ps.kp2d)  # becomes kp2d_gt on import
    res = []
    for r in range(len(ps)):
        near = np.zeros((17, 3))
        near[:, :2], near[:, 2] = to_coco(gt[r]) + 2.0, 0.5
        far = near.copy()
        far[:, :2] += 300.0
        far[:, 2] = 0.99
        res += [{"image_id": r, "keypoints": k.ravel().tolist()} for k in (near, far)]
    (tmp_path / "r.json").write_text(json.dumps(res))
    import_detections(path, [tmp_path / "r.json"], id_scheme="row", out=tmp_path / "by_score", progress_bar=False)
    assert np.nanmean(np.abs(PoseSet.load(tmp_path / "by_score").kp2d - gt)) > 100
    import_detections(path, [tmp_path / "r.json"], id_scheme="row", select="gt", out=tmp_path / "by_gt",
                      progress_bar=False)
    assert np.nanmedian(np.abs(PoseSet.load(tmp_path / "by_gt").kp2d - gt)) < 5  # the near person each time


def to_coco(h36m: np.ndarray) -> np.ndarray:
    """Rough COCO-17 points from H36M-17 ones (head joints at the head), for the selection test."""
    idx = [10, 10, 10, 10, 10, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]
    return h36m[idx]


def test_npy_rows_wrong_joint_count_and_frame_count(saved, tmp_path):
    path, ps = saved
    rng = np.random.default_rng(4)
    arr = np.concatenate([rng.uniform(0, 999, (len(ps), 17, 2)), rng.uniform(0.1, 1, (len(ps), 17, 1))], -1)
    arr[5] = np.nan  # a frame the detector skipped
    np.save(tmp_path / "det.npy", arr.astype(np.float32))
    stats = import_detections(path, [tmp_path / "det.npy"], progress_bar=False)
    assert stats["joint_set"] == "h36m17" and stats["frames_without_detection"] == 1
    new = PoseSet.load(path, validate=True)
    keep = np.arange(len(ps)) != 5
    np.testing.assert_allclose(new.kp2d[keep], arr[keep, :, :2], atol=1e-3)
    np.testing.assert_allclose(new.conf[keep], arr[keep, :, 2], atol=1e-6)
    assert not new.kp2d_valid[5] and np.isnan(new.kp2d[5]).all()
    np.save(tmp_path / "j16.npy", np.zeros((len(ps), 16, 3), np.float32))
    np.save(tmp_path / "short.npy", np.zeros((len(ps) - 1, 17, 3), np.float32))
    for name, msg in (("j16.npy", "keypoints: 16 joints per person is not a known joint set"),
                      ("short.npy", "mismatched frame count: the array has 17 frames, the PoseSet has 18 rows")):
        out = subprocess.run([sys.executable, "-m", "auglift", "detections", "import", str(tmp_path / name),
                              "--poseset", str(path)], capture_output=True, text=True)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and msg in lines[0], out.stderr


def test_json_wrong_joint_count_is_one_line(saved, tmp_path, capsys):
    path, _ = saved
    (tmp_path / "r.json").write_text(json.dumps([{"image_id": 0, "keypoints": [1.0, 2.0, 0.5] * 16}]))
    assert main(["detections", "import", str(tmp_path / "r.json"), "--poseset", str(path), "--id-scheme", "row"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "r.json: keypoints: 16 joints per person" in err[0]
    (tmp_path / "h.json").write_text(json.dumps([{"image_id": 0, "keypoints": [1.0, 2.0, 0.5] * 17}]))
    assert main(["detections", "import", str(tmp_path / "h.json"), "--poseset", str(path), "--id-scheme", "row",
                 "--format", "halpe"]) == 2
    assert "expected 26 joints per person (halpe26), got 17" in capsys.readouterr().err
    (tmp_path / "ragged.json").write_text(json.dumps([{"image_id": 0, "keypoints": [1.0] * 51},
                                                      {"image_id": 1, "keypoints": [1.0] * 50}]))
    assert main(["detections", "import", str(tmp_path / "ragged.json"), "--poseset", str(path),
                 "--id-scheme", "row"]) == 2
    assert "[1].keypoints: expected [x, y, score] * J" in capsys.readouterr().err


def test_videopose3d_npz_detections(tmp_path):
    truth = write_h36m_vp3d(tmp_path / "vp3d", subjects=("S9",), actions=("Walking", "Greeting"))
    ps = convert_h36m(tmp_path / "vp3d", layout="videopose3d", progress_bar=False, skip_damaged=True, step=2)
    ps.save(tmp_path / "ps")
    stats = import_detections(tmp_path / "ps", [tmp_path / "vp3d" / "data_2d_h36m_cpn_ft_h36m_dbb.npz"],
                              progress_bar=False)
    assert stats["frames_with_detection"] == len(ps) and stats["joint_set"] == "h36m17"
    new = PoseSet.load(tmp_path / "ps")
    for c in range(len(new.clips)):
        ci = H36M_CAMS.index(new.clips.camera[c])
        det = truth["det2d"]["S9"][new.clips.action[c]][ci]
        rows = new.clip == c
        np.testing.assert_allclose(new.kp2d[rows], det[new.frame[rows]], atol=1e-4)
    np.testing.assert_allclose(new.kp2d_gt, ps.kp2d_gt)  # kp2d_gt already existed and is kept


# ----------------------------------------------------------------------------- property tests
@settings(max_examples=40, deadline=None)
@given(st.data())
def test_best_instance_per_frame_property(data):
    n = data.draw(st.integers(1, 12))
    ps = image_poseset(n_clips=1, frames=n)
    m = data.draw(st.integers(0, 30))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    rows = rng.integers(-1, n, m)
    kp = rng.uniform(0, 1000, (m, 17, 2))
    score = rng.uniform(0.01, 1.0, (m, 17))
    inst = Instances(kp=kp, score=score, joint_set="coco17", source="mem", image_id=rows)
    index, matched, _ = match_detections(ps, inst, id_scheme="row")
    res = apply_detections(ps, inst, matched, index=index)
    for r in range(n):
        cands = np.flatnonzero(rows == r)
        if not cands.size:
            assert not res.valid[r] and np.isnan(res.kp2d[r]).all() and (res.conf[r] == 0).all()
            continue
        best = cands[np.argmax(score[cands].mean(axis=1))]
        assert res.valid[r]
        np.testing.assert_allclose(res.kp2d[r], to_h36m(kp[best], "coco17")[0], rtol=1e-5, atol=1e-3)
    assert res.stats["unmatched_instances"] == int((rows < 0).sum())


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 10), joints=st.sampled_from([17, 26, 18, 133, 16, 25]), channels=st.sampled_from([2, 3]),
       extra=st.sampled_from([0, 0, 1]), seed=st.integers(0, 1000))
def test_array_loader_property(n, joints, channels, extra, seed):
    from auglift.datasets.detections import _from_arrays

    ps = image_poseset(n_clips=1, frames=n)
    rng = np.random.default_rng(seed)
    arr = rng.uniform(0.01, 1.0, (n + extra, joints, channels)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "det.npz"
        np.savez(path, keypoints=arr)
        if extra:
            with pytest.raises(DataError, match="mismatched frame count"):
                _from_arrays(ps, path, "npz", None, None, "rows")
            res = _from_arrays(ps, path, "npz", "keypoints", None, "frames") if joints not in (16, 25) else None
            if res is not None:  # indexed by frame number the longer array is fine
                assert res.valid.all()
            return
        if joints in (16, 25):
            with pytest.raises(DataError, match="not a known joint set"):
                _from_arrays(ps, path, "npz", None, None, "rows")
            return
        res = _from_arrays(ps, path, "npz", None, None, "rows")
    js, keep = {17: ("h36m17", 17), 26: ("halpe26", 26), 18: ("openpose18", 18), 133: ("coco17", 17)}[joints]
    score = arr[:, :keep, 2] if channels == 3 else None
    want, conf = keypoints_to_h36m(arr[:, :keep, :2], score, js)
    np.testing.assert_allclose(res.kp2d, want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(res.conf, conf, atol=1e-6)
    assert res.valid.all() and res.stats["joint_set"] == js


@settings(max_examples=60, deadline=None)
@given(js=st.sampled_from(["coco17", "halpe26", "openpose18", "mediapipe33"]), seed=st.integers(0, 10_000),
       drop=st.floats(0.0, 0.9))
def test_confidence_aware_conversion_property(js, seed, drop):
    rng = np.random.default_rng(seed)
    W = conversion_matrix(js)
    J = W.shape[1]
    kp = rng.uniform(0, 1000, (4, J, 2))
    score = rng.uniform(0.1, 1.0, (4, J))
    full, conf_full = keypoints_to_h36m(kp, score, js)
    ref, ref_conf = to_h36m(kp, js, score)
    np.testing.assert_allclose(full, ref, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(conf_full, ref_conf, atol=1e-6)
    score[rng.uniform(size=score.shape) < drop] = 0.0
    out, conf = keypoints_to_h36m(kp, score, js)
    support = (score > 0).astype(float) @ (W.T > 0)  # how many present sources feed each H36M joint
    assert np.array_equal(np.isnan(out).any(-1), support == 0)
    assert (conf[support == 0] == 0).all()
    ok = support > 0
    # present output joints are convex combinations of present sources: inside their bounding box
    for f in range(4):
        for k in np.flatnonzero(ok[f]):
            src = (W[k] > 0) & (score[f] > 0)
            assert (out[f, k] >= kp[f, src].min(0) - 1e-3).all() and (out[f, k] <= kp[f, src].max(0) + 1e-3).all()


def test_read_instances_format_guessing(tmp_path):
    (tmp_path / "coco.json").write_text(json.dumps([{"image_id": 1, "keypoints": [1.0, 2.0, 0.5] * 17}]))
    (tmp_path / "halpe.json").write_text(json.dumps([{"image_id": "a.jpg", "keypoints": [1.0, 2.0, 0.5] * 136}]))
    assert read_instances([tmp_path / "coco.json"]).joint_set == "coco17"
    inst = read_instances([tmp_path / "halpe.json"])
    assert inst.joint_set == "halpe26" and inst.kp.shape == (1, 26, 2) and inst.name == ["a.jpg"]
    (tmp_path / "weird.txt").write_text("x")
    with pytest.raises(ConfigError, match="cannot tell the detection format"):
        read_instances([tmp_path / "weird.txt"])


@settings(max_examples=30, deadline=None)
@given(js=st.sampled_from(["h36m32", "coco17", "halpe26", "smpl24", "mpi_inf_3dhp28", "mpi_inf_3dhp17", "fit3d25"]),
       lead=st.lists(st.integers(1, 4), min_size=0, max_size=2), dim=st.sampled_from([2, 3]), seed=st.integers(0, 99))
def test_fast_joint_mapping_equals_skeleton_to_h36m(js, lead, dim, seed):
    from auglift.datasets.common import joints_to_h36m
    from auglift.skeleton import get_joint_set

    kp = np.random.default_rng(seed).normal(size=(*lead, get_joint_set(js).num_joints, dim))
    np.testing.assert_allclose(joints_to_h36m(kp, js), to_h36m(kp, js)[0], atol=1e-12)


def test_npz_that_is_not_an_archive(saved, tmp_path, capsys):
    import pickle

    path, _ = saved
    (tmp_path / "p.npz").write_bytes(pickle.dumps({"keypoints": np.zeros((18, 17, 3))}))
    np.save(tmp_path / "a.npy", np.zeros((18, 17, 3)))
    (tmp_path / "a.npy").rename(tmp_path / "a.npz")
    for name, msg in (("p.npz", "a bare pickle, not an .npz archive"), ("a.npz", "found a single .npy array")):
        assert main(["detections", "import", str(tmp_path / name), "--poseset", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0]


def test_image_shared_by_two_people_3dpw(tmp_path):
    """3DPW: both people's clips read the same images; --select gt gives each clip its own person."""
    from _dataset_fixtures import write_3dpw
    from auglift.datasets.pw3d import convert as convert_pw3d

    write_3dpw(tmp_path / "3dpw", frames=6)
    ps = convert_pw3d(tmp_path / "3dpw", kp2d="gt", progress_bar=False)
    ps.save(tmp_path / "ps")
    gt = np.asarray(ps.kp2d_gt)
    res = []
    for p in range(2):
        rows = np.flatnonzero(ps.clip == p)
        for r in rows:
            kp = np.zeros((17, 3))
            kp[:, :2], kp[:, 2] = to_coco(gt[r]) + 1.0, 0.6 + 0.3 * p  # person 1 always scores higher
            res.append({"image_id": f"image_{int(ps.frame[r]):05d}.jpg", "keypoints": kp.ravel().tolist()})
    (tmp_path / "ap.json").write_text(json.dumps(res))
    import_detections(tmp_path / "ps", [tmp_path / "ap.json"], out=tmp_path / "score", progress_bar=False)
    by_score = PoseSet.load(tmp_path / "score")
    p0 = by_score.clip == 0
    both = np.isin(by_score.frame, by_score.frame[by_score.clip == 1])
    # by score, person 0's clip receives person 1's detection wherever both are present
    assert np.nanmedian(np.abs(by_score.kp2d[p0 & both] - gt[p0 & both])) > 20
    stats = import_detections(tmp_path / "ps", [tmp_path / "ap.json"], select="gt", out=tmp_path / "gt",
                              progress_bar=False)
    by_gt = PoseSet.load(tmp_path / "gt")
    assert stats["frames_with_detection"] == len(ps) and stats["unmatched_instances"] == 0
    assert np.nanmedian(np.abs(by_gt.kp2d - gt)) < 3
