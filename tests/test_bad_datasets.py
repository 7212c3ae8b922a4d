"""Bad-input corpus, part 2: dataset converters (``auglift prepare``) and detection importers
(``auglift detections import``).

Every case starts from a valid fixture written in the dataset's real format
(``_dataset_fixtures``) and breaks one thing: wrong shapes and joint counts, wrong types,
NaN/inf, empty/truncated/garbage files, unknown or missing keys, archives and MATLAB/HDF5 files
declaring huge sizes, deeply nested JSON, non-UTF-8 text, symlink loops. Each must end as one
``auglift: error:`` line with exit status 2 naming the file, without a hang or an allocation of
the declared size (``_reliability_fixtures.run_cases``).
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _dataset_fixtures import (
    image_poseset,
    write_3dhp_test,
    write_3dhp_train,
    write_3dpw,
    write_evil_pickle,
    write_fit3d,
    write_h36m_mmpose,
    write_h36m_vp3d,
    write_mat73,
    write_pstmo,
)
from _reliability_fixtures import (
    Case,
    check_clean_error,
    mat5_huge,
    npy_bytes,
    npy_of,
    run_cases,
    shared_results,
    sparse_file,
    symlink_loop,
    truncate,
    write_npz,
)


def _prepare(dataset: str, root: Path, *extra: str) -> list[str]:
    return ["prepare", dataset, "--root", str(root), "--out", str(root.parent / "out"), "--no-progress", *extra]


def _npz_replace(path: Path, **members: Any) -> None:
    """Rewrite an .npz with some members replaced (raw bytes) or removed (None)."""
    with np.load(path, allow_pickle=True) as z:
        old = {k: npy_of(z[k]) for k in z.files}
    for k, v in members.items():
        if v is None:
            old.pop(k, None)
        else:
            old[k] = v if isinstance(v, bytes) else npy_of(np.asarray(v))
    path.unlink()
    write_npz(path, old)


# ----------------------------------------------------------------------------- Human3.6M (MMPose layout)
def _h36m_mmpose(variant: str) -> Case:
    def build(d: Path) -> tuple[list[str], list[str]]:
        root = d / "h36m"
        write_h36m_mmpose(root, splits={"train": ["S1"], "test": ["S9"]}, actions=("Directions_1",), frames=4)
        ann = root / "annotation_body3d"
        cams = ann / "cameras.pkl"
        npz = ann / "fps50" / "h36m_train.npz"
        with np.load(npz) as z:
            S, part, names = z["S"], z["part"], z["imgname"]
        expect = ["h36m_train.npz"]
        if variant == "cameras_empty":
            cams.write_bytes(b"")
            expect = ["cameras.pkl"]
        elif variant == "cameras_truncated":
            truncate(cams, 0.5)
            expect = ["cameras.pkl"]
        elif variant == "cameras_list":
            cams.write_bytes(pickle.dumps([1, 2, 3]))
            expect = ["cameras.pkl"]
        elif variant == "cameras_missing_f":
            c = pickle.loads(cams.read_bytes())
            for v in c.values():
                v.pop("f")
            cams.write_bytes(pickle.dumps(c))
            expect = ["cameras.pkl", "f"]
        elif variant == "cameras_f_shape":
            c = pickle.loads(cams.read_bytes())
            for v in c.values():
                v["f"] = np.ones(5)
            cams.write_bytes(pickle.dumps(c))
            expect = ["cameras.pkl", ".f"]
        elif variant == "cameras_width_text":
            c = pickle.loads(cams.read_bytes())
            for v in c.values():
                v["w"] = "wide"
            cams.write_bytes(pickle.dumps(c))
            expect = ["cameras.pkl", "w"]
        elif variant == "cameras_hostile":
            write_evil_pickle(cams)
            expect = ["cameras.pkl", "posix.system"]
        elif variant == "cameras_missing":
            cams.unlink()
            expect = ["cameras.pkl"]
        elif variant == "npz_missing_key":
            _npz_replace(npz, S=None)
            expect += ["S"]
        elif variant == "S_joints":
            _npz_replace(npz, S=S[:, :16])
            expect += ["S", "17"]
        elif variant == "S_strings":
            _npz_replace(npz, S=np.full(S.shape, "x"))
            expect += ["S"]
        elif variant == "part_rows":
            _npz_replace(npz, part=part[:-1])
            expect += ["part"]
        elif variant == "all_nan":
            _npz_replace(npz, S=np.full_like(S, np.nan))
            return _prepare("h36m", root, "--splits", "train"), ["h36m", "no frames"]
        elif variant == "imgname_unparsable":
            _npz_replace(npz, imgname=np.array(["nonsense"] * len(names)))
            expect += ["imgname"]
        elif variant == "imgname_non_utf8":
            _npz_replace(npz, imgname=np.array([b"S1/S1_Dir\xff.54138969/S1_Dir\xff.54138969_000001.jpg"]
                                               * len(names)))
            expect += ["imgname"]
        elif variant == "imgname_object":
            _npz_replace(npz, imgname=np.array([{"x": 1}] * len(names), dtype=object))
            expect += ["imgname"]
        elif variant == "npz_truncated":
            truncate(npz, 0.5)
        elif variant == "npz_empty":
            npz.write_bytes(b"")
        elif variant == "npz_huge_member":
            _npz_replace(npz, S=npy_bytes((10**10, 17, 4), "<f8"))
            expect += ["S"]
        elif variant == "npz_bare_pickle":
            npz.write_bytes(pickle.dumps({"S": 1}))
        elif variant == "npz_loop":
            symlink_loop(npz)
            return _prepare("h36m", root, "--splits", "train"), ["h36m_train.npz"]
        elif variant == "unknown_camera":
            c = pickle.loads(cams.read_bytes())
            c = {k: v for k, v in c.items() if k[0] != "S1"}
            cams.write_bytes(pickle.dumps(c))
            expect = ["cameras.pkl", "S1"]
        else:  # pragma: no cover
            raise ValueError(variant)
        return _prepare("h36m", root), expect

    return Case(f"h36m-mmpose-{variant}", build)


H36M_MMPOSE = [_h36m_mmpose(v) for v in (
    "cameras_empty", "cameras_truncated", "cameras_list", "cameras_missing_f", "cameras_f_shape",
    "cameras_width_text", "cameras_hostile", "cameras_missing", "npz_missing_key", "S_joints", "S_strings",
    "part_rows", "all_nan", "imgname_unparsable", "imgname_non_utf8", "imgname_object", "npz_truncated", "npz_empty",
    "npz_huge_member", "npz_bare_pickle", "npz_loop", "unknown_camera")]


# ----------------------------------------------------------------------------- Human3.6M (VideoPose3D layout)
def _h36m_vp3d(variant: str) -> Case:
    def build(d: Path) -> tuple[list[str], list[str]]:
        root = d / "vp3d"
        write_h36m_vp3d(root, subjects=("S1", "S9"), actions=("Walking",), frames=5)
        p3 = root / "data_3d_h36m.npz"
        p2 = root / "data_2d_h36m_cpn_ft_h36m_dbb.npz"
        extra = ["--layout", "videopose3d"]
        with np.load(p3, allow_pickle=True) as z:
            pos = z["positions_3d"].item()
        expect = ["data_3d_h36m.npz"]
        if variant == "positions_array":
            np.savez(p3, positions_3d=np.zeros((3, 32, 3)))
            expect += ["positions_3d"]
        elif variant == "subject_list":
            pos["S1"] = [np.zeros((5, 32, 3))]
            np.savez(p3, positions_3d=pos)
            expect += ["S1"]
        elif variant == "action_not_array":
            pos["S1"]["Walking"] = "walking"
            np.savez(p3, positions_3d=pos)
            expect += ["positions_3d[S1][Walking]"]
        elif variant == "joints_31":
            pos["S1"]["Walking"] = pos["S1"]["Walking"][:, :31]
            np.savez(p3, positions_3d=pos)
            expect += ["positions_3d[S1][Walking]", "32"]
        elif variant == "unknown_subjects_only":  # subjects outside the H36M splits are skipped: nothing left
            np.savez(p3, positions_3d={"S99": pos["S1"], "X": pos["S9"]})
            return _prepare("h36m", root, *extra), ["vp3d", "no frames"]
        elif variant == "hostile_object":
            write_evil_pickle(root / "evil.pkl")
            blob = npy_bytes((), "|O", (root / "evil.pkl").read_bytes())
            write_npz(p3, {"positions_3d": blob})
            expect += ["posix.system"]
        elif variant == "missing_3d":
            p3.unlink()
        elif variant == "det_joints":
            with np.load(p2, allow_pickle=True) as z:
                pos2 = z["positions_2d"].item()
                meta = z["metadata"].item()
            pos2["S1"]["Walking"] = [a[:, :15] for a in pos2["S1"]["Walking"]]
            np.savez(p2, positions_2d=pos2, metadata=meta)
            return _prepare("h36m", root, *extra, "--keypoints", "cpn_ft_h36m_dbb"), [p2.name, "17"]
        elif variant == "det_short":
            with np.load(p2, allow_pickle=True) as z:
                pos2 = z["positions_2d"].item()
                meta = z["metadata"].item()
            pos2["S1"]["Walking"] = [a[:2] for a in pos2["S1"]["Walking"]]
            np.savez(p2, positions_2d=pos2, metadata=meta)
            return _prepare("h36m", root, *extra, "--keypoints", "cpn_ft_h36m_dbb"), [p2.name, "frames"]
        elif variant == "det_cameras":
            with np.load(p2, allow_pickle=True) as z:
                pos2 = z["positions_2d"].item()
                meta = z["metadata"].item()
            pos2["S1"]["Walking"] = pos2["S1"]["Walking"][:3]
            np.savez(p2, positions_2d=pos2, metadata=meta)
            return _prepare("h36m", root, *extra, "--keypoints", "cpn_ft_h36m_dbb"), [p2.name, "camera"]
        elif variant == "det_layout":
            with np.load(p2, allow_pickle=True) as z:
                pos2 = z["positions_2d"].item()
            np.savez(p2, positions_2d=pos2, metadata={"layout_name": "mpii"})
            return _prepare("h36m", root, *extra, "--keypoints", "cpn_ft_h36m_dbb"), [p2.name, "layout"]
        else:  # pragma: no cover
            raise ValueError(variant)
        return _prepare("h36m", root, *extra), expect

    return Case(f"h36m-vp3d-{variant}", build)


H36M_VP3D = [_h36m_vp3d(v) for v in (
    "positions_array", "subject_list", "action_not_array", "joints_31", "unknown_subjects_only", "hostile_object",
    "missing_3d", "det_joints", "det_short", "det_cameras", "det_layout")]


# ----------------------------------------------------------------------------- MPI-INF-3DHP
def _3dhp(variant: str) -> Case:
    def build(d: Path) -> tuple[list[str], list[str]]:
        import scipy.io

        root = d / "3dhp"
        write_3dhp_train(root, frames=4)
        write_3dhp_test(root, frames=5)
        mat = root / "S1" / "Seq1" / "annot.mat"
        calib = root / "S1" / "Seq1" / "camera.calibration"
        tmat = root / "mpi_inf_3dhp_test_set" / "TS1" / "annot_data.mat"
        expect = ["annot.mat"]
        splits = ["--splits", "train"]
        if variant == "mat_truncated":
            truncate(mat, 0.4)
        elif variant == "mat_empty":
            mat.write_bytes(b"")
        elif variant == "mat_garbage":
            mat.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(range(256)) * 4)
        elif variant == "mat_missing_var":
            m = scipy.io.loadmat(mat)
            scipy.io.savemat(mat, {k: v for k, v in m.items() if k in ("annot2", "frames")})
            expect += ["annot3"]
        elif variant == "mat_width":
            m = scipy.io.loadmat(mat)
            a3 = m["annot3"]
            for i in range(a3.shape[0]):
                a3[i, 0] = a3[i, 0][:, :83]
            scipy.io.savemat(mat, {"annot2": m["annot2"], "annot3": a3})
            expect += ["annot3"]
        elif variant == "mat_strings":
            scipy.io.savemat(mat, {"annot2": "abc", "annot3": "def"})
            expect += ["annot2"]
        elif variant == "mat_huge_dims":
            mat5_huge(mat, "annot3")
        elif variant == "mat_loop":
            symlink_loop(mat)
            return _prepare("mpi_inf_3dhp", root, "--splits", "train"), ["annot.mat"]
        elif variant == "calib_short":
            text = calib.read_text()
            calib.write_text(text.replace(" 0 0 0 1 0 0 0 0 1 \n  extrinsic", " 0 0 0 1 0 0 0 0 \n  extrinsic"))
            expect = ["camera.calibration", "16 numbers"]
        elif variant == "calib_text":
            calib.write_text(calib.read_text().replace("size        2048 2048", "size        big big"))
            expect = ["camera.calibration", "line"]
        elif variant == "calib_non_utf8":
            calib.write_bytes(b"\xff\xfe garbage \x00\x01")
            expect = ["camera.calibration"]
        elif variant == "calib_missing":
            calib.unlink()
            expect = ["camera.calibration"]
        elif variant == "test_huge_dims":  # HDF5 dataset declaring 3x17x1x10^9 doubles, never written
            import h5py

            with h5py.File(tmat, "r+") as f:
                del f["annot3"]
                f.create_dataset("annot3", shape=(10**9, 1, 17, 3), dtype="f8", chunks=(1000, 1, 17, 3))
            return _prepare("mpi_inf_3dhp", root, "--splits", "test", "--annot3", "annot3"), ["annot_data.mat",
                                                                                              "annot3"]
        elif variant == "test_dims":
            write_mat73(tmat, {"annot2": np.zeros((2, 17, 1, 5)), "annot3": np.zeros((2, 17, 1, 5)),
                               "univ_annot3": np.zeros((3, 17, 1, 5)), "valid_frame": np.ones((1, 5))})
            return _prepare("mpi_inf_3dhp", root, "--splits", "test", "--annot3", "annot3"), ["annot_data.mat",
                                                                                              "annot3"]
        elif variant == "test_frames":
            write_mat73(tmat, {"annot2": np.zeros((2, 17, 1, 5)), "annot3": np.ones((3, 17, 1, 5)),
                               "univ_annot3": np.zeros((3, 17, 1, 5)), "valid_frame": np.ones((1, 4))})
            return _prepare("mpi_inf_3dhp", root, "--splits", "test"), ["annot_data.mat", "valid_frame"]
        elif variant == "test_truncated":
            truncate(tmat, 0.6)
            return _prepare("mpi_inf_3dhp", root, "--splits", "test"), ["annot_data.mat"]
        elif variant == "test_group":
            import h5py

            with h5py.File(tmat, "r+") as f:
                del f["annot3"]
                f.create_group("annot3")
            return _prepare("mpi_inf_3dhp", root, "--splits", "test", "--annot3", "annot3"), ["annot_data.mat",
                                                                                              "annot3"]
        elif variant == "pstmo_not_dict":
            p = d / "pstmo"
            write_pstmo(p, frames=4)
            np.savez(p / "data_train_3dhp.npz", data=np.zeros(3))
            return _prepare("mpi_inf_3dhp", p, "--layout", "pstmo", "--splits", "train"), ["data_train_3dhp.npz"]
        elif variant == "pstmo_shape":
            p = d / "pstmo"
            write_pstmo(p, frames=4)
            with np.load(p / "data_test_3dhp.npz", allow_pickle=True) as z:
                data = z["data"].item()
            data["TS1"]["data_3d"] = data["TS1"]["data_3d"][:, :16]
            np.savez(p / "data_test_3dhp.npz", data=data)
            return _prepare("mpi_inf_3dhp", p, "--layout", "pstmo", "--splits", "test"), ["data_test_3dhp.npz",
                                                                                          "data_3d"]
        elif variant == "pstmo_entry":
            p = d / "pstmo"
            write_pstmo(p, frames=4)
            with np.load(p / "data_train_3dhp.npz", allow_pickle=True) as z:
                data = z["data"].item()
            data["S1 Seq1"] = {"oops": 1}
            np.savez(p / "data_train_3dhp.npz", data=data)
            return _prepare("mpi_inf_3dhp", p, "--layout", "pstmo", "--splits", "train"), ["data_train_3dhp.npz"]
        else:  # pragma: no cover
            raise ValueError(variant)
        return _prepare("mpi_inf_3dhp", root, *splits), expect

    return Case(f"3dhp-{variant}", build)


MPI_3DHP = [_3dhp(v) for v in (
    "mat_truncated", "mat_empty", "mat_garbage", "mat_missing_var", "mat_width", "mat_strings", "mat_huge_dims",
    "mat_loop", "calib_short", "calib_text", "calib_non_utf8", "calib_missing", "test_huge_dims", "test_dims",
    "test_frames", "test_truncated", "test_group", "pstmo_not_dict", "pstmo_shape", "pstmo_entry")]


# ----------------------------------------------------------------------------- 3DPW
def _3dpw(variant: str) -> Case:
    def build(d: Path) -> tuple[list[str], list[str]]:
        root = d / "3dpw"
        write_3dpw(root, frames=6)
        pkl = root / "sequenceFiles" / "test" / "downtown_walking_00.pkl"
        seq = pickle.loads(pkl.read_bytes(), encoding="latin1")
        expect = ["downtown_walking_00.pkl"]

        def save(obj: Any) -> None:
            pkl.write_bytes(pickle.dumps(obj, protocol=2))

        if variant == "empty":
            pkl.write_bytes(b"")
        elif variant == "truncated":
            truncate(pkl, 0.5)
        elif variant == "garbage":
            pkl.write_bytes(b"\x80\x02" + bytes(range(200)))
        elif variant == "list":
            save([seq])
        elif variant == "missing_joints":
            seq.pop("jointPositions")
            save(seq)
            expect += ["jointPositions"]
        elif variant == "joints_shape":
            seq["jointPositions"] = [a[:, :69] for a in seq["jointPositions"]]
            save(seq)
            expect += ["jointPositions"]
        elif variant == "joints_number":
            seq["jointPositions"] = 7
            save(seq)
            expect += ["jointPositions"]
        elif variant == "valid_length":
            seq["campose_valid"] = [v[:-1] for v in seq["campose_valid"]]
            save(seq)
            expect += ["campose_valid"]
        elif variant == "valid_number":
            seq["campose_valid"] = 3
            save(seq)
            expect += ["campose_valid"]
        elif variant == "cam_poses":
            seq["cam_poses"] = seq["cam_poses"][:, :3]
            save(seq)
            expect += ["cam_poses"]
        elif variant == "intrinsics_nan":
            seq["cam_intrinsics"] = np.full((3, 3), np.nan)
            save(seq)
            expect += ["cam_intrinsics"]
        elif variant == "frame_ids_text":
            seq["img_frame_ids"] = ["a"] * len(seq["cam_poses"])
            save(seq)
            expect += ["img_frame_ids"]
        elif variant == "poses2d_shape":
            seq["poses2d"] = [p[:, :2] for p in seq["poses2d"]]
            save(seq)
            expect += ["poses2d"]
        elif variant == "hostile":
            write_evil_pickle(pkl)
            expect += ["posix.system"]
        elif variant == "loop":
            symlink_loop(pkl)
            return _prepare("3dpw", root), ["sequenceFiles"]
        else:  # pragma: no cover
            raise ValueError(variant)
        return _prepare("3dpw", root), expect

    return Case(f"3dpw-{variant}", build)


PW3D = [_3dpw(v) for v in (
    "empty", "truncated", "garbage", "list", "missing_joints", "joints_shape", "joints_number", "valid_length",
    "valid_number", "cam_poses", "intrinsics_nan", "frame_ids_text", "poses2d_shape", "hostile",
    "loop")]


# ----------------------------------------------------------------------------- Fit3D
def _fit3d(variant: str) -> Case:
    def build(d: Path) -> tuple[list[str], list[str]]:
        root = d / "fit3d"
        write_fit3d(root, subjects=(("train", "s03"),), actions=("squat",), cameras=("50591643",), frames=4)
        j = root / "train" / "s03" / "joints3d_25" / "squat.json"
        c = root / "train" / "s03" / "camera_parameters" / "50591643" / "squat.json"
        joints = json.loads(j.read_text())
        cam = json.loads(c.read_text())
        expect = ["squat.json"]
        if variant == "joints_empty":
            j.write_text("")
        elif variant == "joints_invalid":
            j.write_text(j.read_text()[:50])
        elif variant == "joints_24":
            j.write_text(json.dumps({"joints3d_25": [f[:24] for f in joints["joints3d_25"]]}))
            expect += ["joints3d_25"]
        elif variant == "joints_ragged":
            joints["joints3d_25"][1] = joints["joints3d_25"][1][:3]
            j.write_text(json.dumps(joints))
            expect += ["joints3d_25"]
        elif variant == "joints_text":
            j.write_text(json.dumps({"joints3d_25": "many"}))
            expect += ["joints3d_25"]
        elif variant == "joints_key":
            j.write_text(json.dumps({"joints": joints["joints3d_25"]}))
            expect += ["joints3d_25"]
        elif variant == "joints_all_nan":
            j.write_text(json.dumps({"joints3d_25": [[[float("nan")] * 3] * 25] * 4}))
            return _prepare("fit3d", root), ["fit3d", "no frames"]
        elif variant == "joints_deep":
            j.write_text("[" * 100_000 + "]" * 100_000)
        elif variant == "joints_huge":
            sparse_file(j, (64 << 20) + 10, b'{"joints3d_25": [')
        elif variant == "joints_non_utf8":
            j.write_bytes(b'{"joints3d_25": "\xff"}')
        elif variant == "camera_no_extrinsics":
            cam.pop("extrinsics")
            c.write_text(json.dumps(cam))
            expect += ["extrinsics"]
        elif variant == "camera_R_shape":
            cam["extrinsics"]["R"] = [[1, 0], [0, 1]]
            c.write_text(json.dumps(cam))
            expect += ["extrinsics.R"]
        elif variant == "camera_k_text":
            cam["intrinsics_w_distortion"]["k"] = "radial"
            c.write_text(json.dumps(cam))
            expect += ["k"]
        elif variant == "camera_f_nan":
            cam["intrinsics_w_distortion"]["f"] = [[float("nan"), 900.0]]
            c.write_text(json.dumps(cam))
            expect += ["intrinsics"]
        elif variant == "camera_list":
            c.write_text(json.dumps([cam]))
            expect += ["extrinsics"]
        elif variant == "camera_missing":
            c.unlink()
        else:  # pragma: no cover
            raise ValueError(variant)
        return _prepare("fit3d", root), expect

    return Case(f"fit3d-{variant}", build)


FIT3D = [_fit3d(v) for v in (
    "joints_empty", "joints_invalid", "joints_24", "joints_ragged", "joints_text", "joints_key", "joints_all_nan",
    "joints_deep", "joints_huge", "joints_non_utf8", "camera_no_extrinsics", "camera_R_shape", "camera_k_text",
    "camera_f_nan", "camera_list", "camera_missing")]


# ----------------------------------------------------------------------------- detections
def _detections(variant: str) -> Case:
    def build(d: Path) -> tuple[list[str], list[str]]:
        ps_dir = image_poseset(n_clips=2, frames=4).save(d / "ps")
        names = [f"imgs/cam{c}/img_{f + 1:06d}.jpg" for c in range(2) for f in range(4)]
        rng = np.random.default_rng(0)

        def coco(joints: int = 17) -> list[dict[str, Any]]:
            return [{"image_id": n, "keypoints": rng.uniform(0, 999, joints * 3).round(2).tolist(), "score": 0.9}
                    for n in names]

        f = d / "det.json"
        fmt: list[str] = []
        expect = ["det.json"]
        if variant == "coco_joints_20":
            f.write_text(json.dumps(coco(20)))
            expect += ["20 joints"]
        elif variant == "coco_ragged":
            recs = coco()
            recs[1]["keypoints"] = recs[1]["keypoints"][:-3]
            f.write_text(json.dumps(recs))
            expect += ["keypoints"]
        elif variant == "coco_text":
            recs = coco()
            recs[0]["keypoints"][4] = "x"
            f.write_text(json.dumps(recs))
            expect += ["keypoints"]
        elif variant == "coco_keypoints_dict":
            recs = coco()
            recs[0]["keypoints"] = {"x": 1}
            f.write_text(json.dumps(recs))
            expect += ["keypoints"]
        elif variant == "coco_no_image_id":
            recs = coco()
            del recs[2]["image_id"]
            f.write_text(json.dumps(recs))
            expect += ["image_id"]
        elif variant == "coco_mixed_ids":
            recs = coco()
            recs[0]["image_id"] = 3
            f.write_text(json.dumps(recs))
            expect += ["image_id"]
        elif variant == "coco_float_ids":
            recs = coco()
            for r in recs:
                r["image_id"] = 1.5
            f.write_text(json.dumps(recs))
            expect += ["image_id"]
        elif variant == "coco_not_list":
            f.write_text(json.dumps("detections"))
        elif variant == "coco_nothing_matches":
            recs = coco()
            for r in recs:
                r["image_id"] = "other/" + r["image_id"].replace("img_", "frame_")
            f.write_text(json.dumps(recs))
            expect += ["matched"]
        elif variant == "coco_all_nan":
            recs = coco()
            for r in recs:
                r["keypoints"] = [float("nan")] * 51
            f.write_text(json.dumps(recs))
            return ["detections", "import", str(f), "--poseset", str(ps_dir), "--format", "coco", "--no-progress"], \
                ["det.json", "detection"]
        elif variant == "coco_images_bad_id":
            recs = coco()
            for i, r in enumerate(recs):
                r["image_id"] = i
            f.write_text(json.dumps(recs))
            (d / "images.json").write_text(json.dumps({"images": [{"id": "abc", "file_name": n} for n in names]}))
            return ["detections", "import", str(f), "--poseset", str(ps_dir), "--images", str(d / "images.json"),
                    "--no-progress"], ["images.json", "id"]
        elif variant == "coco_annotations_dict":
            f.write_text(json.dumps({"annotations": {"a": 1}}))
            expect += ["annotations"]
        elif variant == "halpe_25":
            f.write_text(json.dumps(coco(25)))
            fmt = ["--format", "halpe"]
            expect += ["26"]
        elif variant == "json_empty":
            f.write_text("")
        elif variant == "json_truncated":
            f.write_text(json.dumps(coco())[:100])
        elif variant == "json_deep":
            f.write_text("[" * 100_000 + "]" * 100_000)
        elif variant == "json_huge":
            sparse_file(f, (4 << 30) + 1, b"[")
        elif variant == "json_non_utf8":
            f.write_bytes(b'[{"image_id": "\xff", "keypoints": []}]')
        elif variant == "json_loop":
            symlink_loop(f)
            fmt = ["--format", "coco"]
        elif variant == "mmpose_scores":
            dd = d / "mm"
            for n in names:
                p = dd / Path(n).with_suffix(".json")
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(json.dumps([{"keypoints": [[1.0, 2.0]] * 17, "keypoint_scores": [0.5] * 16}]))
            return ["detections", "import", str(dd), "--poseset", str(ps_dir), "--no-progress"], ["keypoint_scores"]
        elif variant == "mmpose_frame_id_text":
            f.write_text(json.dumps([{"frame_id": "first", "instances": []}]))
            fmt = ["--format", "mmpose"]
            expect += ["frame_id"]
        elif variant == "mmpose_instances_dict":
            f.write_text(json.dumps([{"frame_id": 0, "instances": {"keypoints": 1}}]))
            fmt = ["--format", "mmpose"]
            expect += ["instances"]
        elif variant == "mmpose_keypoints_3d":
            f.write_text(json.dumps([{"keypoints": [[[1.0]]] * 17}]))
            fmt = ["--format", "mmpose"]
            expect += ["keypoints"]
        elif variant == "npy_shape":
            f = d / "det.npy"
            np.save(f, np.zeros((8, 17), np.float32))
            expect = ["det.npy", "keypoints"]
        elif variant == "npy_frames":
            f = d / "det.npy"
            np.save(f, np.zeros((7, 17, 3), np.float32))
            expect = ["det.npy", "frame count"]
        elif variant == "npy_huge":
            f = d / "det.npy"
            f.write_bytes(npy_bytes((10**12, 17, 3), "<f4"))
            expect = ["det.npy"]
        elif variant == "npy_object":
            f = d / "det.npy"
            f.write_bytes(npy_of(np.array([None] * 8, dtype=object)))
            expect = ["det.npy", "pickle"]
        elif variant == "npy_strings":
            f = d / "det.npy"
            np.save(f, np.full((8, 17, 3), "a"))
            expect = ["det.npy", "keypoints"]
        elif variant == "npy_joints":
            f = d / "det.npy"
            np.save(f, np.zeros((8, 21, 3), np.float32))
            expect = ["det.npy", "21 joints"]
        elif variant == "npz_huge_member":
            f = write_npz(d / "det.npz", {"keypoints": npy_bytes((10**11, 17, 3), "<f8")})
            expect = ["det.npz", "keypoints"]
        elif variant == "npz_deflate_bomb":
            big = npy_bytes((1024, 1024, 1024), "<f4")  # header for 4 GB, data: 5 MB of zeros, deflated
            import zipfile

            with zipfile.ZipFile(d / "det.npz", "w", zipfile.ZIP_DEFLATED) as z, z.open("keypoints.npy", "w",
                                                                                        force_zip64=True) as m:
                m.write(big)
                for _ in range(5):
                    m.write(b"\x00" * (1 << 20))
            f = d / "det.npz"
            expect = ["det.npz", "keypoints"]
        elif variant == "npz_no_array":
            f = d / "det.npz"
            np.savez(f, a=np.zeros(3), b=np.zeros((2, 2)))
            expect = ["det.npz"]
        elif variant in ("pattern_width", "source_width"):  # padding to 10^12 characters
            f.write_text(json.dumps(coco()))
            if variant == "pattern_width":
                return ["detections", "import", str(f), "--poseset", str(ps_dir), "--name-pattern",
                        "{frame:999999999999d}.jpg", "--no-progress"], ["name pattern", "64"]
            src = np.load(ps_dir / "clips" / "source.npy")
            np.save(ps_dir / "clips" / "source.npy", np.array(["imgs/{frame1:0999999999999d}.jpg"] * len(src)))
            expect = ["name pattern", "64"]
        elif variant == "npz_vp3d_shape":
            f = d / "det.npz"
            np.savez(f, positions_2d={"S1": {"walk": [np.zeros((4, 17))] * 4}})
            expect = ["det.npz"]
        else:  # pragma: no cover
            raise ValueError(variant)
        return ["detections", "import", str(f), "--poseset", str(ps_dir), "--no-progress", *fmt], expect

    return Case(f"detections-{variant}", build)


DETECTIONS = [_detections(v) for v in (
    "coco_joints_20", "coco_ragged", "coco_text", "coco_keypoints_dict", "coco_no_image_id", "coco_mixed_ids",
    "coco_float_ids", "coco_not_list", "coco_nothing_matches", "coco_all_nan", "coco_images_bad_id",
    "coco_annotations_dict", "halpe_25", "json_empty", "json_truncated", "json_deep", "json_huge", "json_non_utf8",
    "json_loop", "mmpose_scores", "mmpose_frame_id_text", "mmpose_instances_dict", "mmpose_keypoints_3d",
    "npy_shape", "npy_frames", "npy_huge", "npy_object", "npy_strings", "npy_joints", "npz_huge_member",
    "npz_deflate_bomb", "npz_no_array", "npz_vp3d_shape", "pattern_width", "source_width")]

CASES = H36M_MMPOSE + H36M_VP3D + MPI_3DHP + PW3D + FIT3D + DETECTIONS


def _compute(base: Path) -> dict:
    try:
        return run_cases(CASES, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return shared_results(tmp_path_factory, "bad_datasets", _compute)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_malformed_dataset_gives_one_clear_error(case, results):
    problem = check_clean_error(results[case.id])
    assert not problem, problem


def test_case_count():
    """The corpus size reported in docs/reliability.md."""
    assert [len(g) for g in (H36M_MMPOSE, H36M_VP3D, MPI_3DHP, PW3D, FIT3D, DETECTIONS)] == [22, 11, 20, 15, 16, 35]
