"""Writers of small dataset fixtures in the real source formats, generated from known 3D poses.

Each writer returns the ground truth it encoded, so tests can check a converter against values
computed here independently (rotations via scipy, each dataset's own projection formula).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from auglift.datasets.h36m import H36M_CAMERA_IDS, H36M_CAMERAS, H36M_EXTRINSICS

H36M_CAMS = H36M_CAMERA_IDS


# ----------------------------------------------------------------------------- poses and projections
def body(frames: int, joints: int, rng: np.random.Generator, centre: Any, *, spread: float = 0.3,
         motion: float = 0.15) -> np.ndarray:
    """A moving cloud of ``joints`` points ``(F, J, 3)`` metres around ``centre`` (joint 0 = root)."""
    off = rng.normal(0.0, spread, (joints, 3))
    off[0] = 0.0
    t = np.linspace(0.0, 2 * np.pi, frames)
    root = np.asarray(centre, float) + motion * np.stack([np.sin(t), 0.3 * np.cos(2 * t), np.cos(t)], -1)
    return root[:, None, :] + off[None] + rng.normal(0.0, 0.01, (frames, joints, 3))


def pinhole(X: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.stack([fx * X[..., 0] / X[..., 2] + cx, fy * X[..., 1] / X[..., 2] + cy], -1)


def h36m_matlab_project(X: np.ndarray, f: Any, c: Any, k: Any, p: Any) -> np.ndarray:
    """Human3.6M's (and IMAR's) own projection: radial k1..k3, tangential terms p(1) y + p(2) x."""
    f, c, k, p = (np.asarray(a, float).reshape(-1) for a in (f, c, k, p))
    x = X[..., :2] / X[..., 2:3]
    r2 = (x**2).sum(-1)
    radial = 1 + k[0] * r2 + k[1] * r2**2 + k[2] * r2**3
    tan = p[0] * x[..., 1] + p[1] * x[..., 0]
    xd = x * (radial + tan)[..., None] + r2[..., None] * np.array([p[1], p[0]])
    return f * xd + c


def vp3d_project(X: np.ndarray, f: Any, c: Any, k: Any, p: Any) -> np.ndarray:
    """VideoPose3D's ``project_to_2d`` in pixel units."""
    f, c, k, p = (np.asarray(a, float).reshape(-1) for a in (f, c, k, p))
    x = np.clip(X[..., :2] / X[..., 2:3], -1, 1)
    r2 = (x**2).sum(-1, keepdims=True)
    radial = 1 + (k * np.concatenate([r2, r2**2, r2**3], -1)).sum(-1, keepdims=True)
    tan = (p * x).sum(-1, keepdims=True)
    return f * (x * (radial + tan) + p * r2) + c


def opencv_project(X: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    import cv2

    pts, _ = cv2.projectPoints(X.reshape(-1, 3).astype(np.float64), np.zeros(3), np.zeros(3),
                               np.asarray(K, np.float64), np.asarray(dist, np.float64))
    return pts.reshape(*X.shape[:-1], 2)


# ----------------------------------------------------------------------------- Human3.6M
H36M17_FROM_32 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]


def write_h36m_mmpose(root: Path, *, splits: dict[str, list[str]] | None = None,
                      actions: tuple[str, ...] = ("Directions_1", "TakingPhoto", "Greeting", "SittingDown_1"),
                      frames: int = 12, sample_rate: int = 1, seed: int = 0) -> dict[str, Any]:
    """MMPose's ``annotation_body3d/fps<50/sr>/h36m_<split>.npz`` + ``cameras.pkl``."""
    rng = np.random.default_rng(seed)
    splits = splits or {"train": ["S1", "S5"], "test": ["S9"]}
    ann = root / "annotation_body3d"
    out_dir = ann / f"fps{50 // sample_rate}"
    out_dir.mkdir(parents=True, exist_ok=True)
    cams: dict[tuple[str, str], dict[str, Any]] = {}
    for s in ("S1", "S5", "S6", "S7", "S8", "S9", "S11"):
        for i, cam in enumerate(H36M_CAMS):
            cp = H36M_CAMERAS[cam]
            cams[(s, cam)] = {"R": np.eye(3), "T": np.zeros((3, 1)), "c": np.array(cp["c"]).reshape(2, 1),
                              "f": np.array(cp["f"]).reshape(2, 1), "k": np.array(cp["k"]).reshape(3, 1),
                              "p": np.array(cp["p"]).reshape(2, 1), "w": cp["w"], "h": cp["h"],
                              "name": f"camera{i + 1}", "id": cam}
    with open(ann / "cameras.pkl", "wb") as fh:
        pickle.dump(cams, fh)
    truth: dict[str, Any] = {}
    for split, subjects in splits.items():
        names, S, part = [], [], []
        for s in subjects:
            for a in actions:
                for cam in H36M_CAMS:
                    cp = H36M_CAMERAS[cam]
                    X = body(frames, 17, rng, (0.2, 0.1, 5.0))[::sample_rate]
                    uv = h36m_matlab_project(X, cp["f"], cp["c"], cp["k"], cp["p"])
                    base = f"{s}_{a}.{cam}"
                    fr = np.arange(0, frames, sample_rate)
                    names += [f"{s}/{base}/{base}_{i + 1:06d}.jpg" for i in fr]
                    S.append(np.concatenate([X, np.ones((len(X), 17, 1))], -1))
                    part.append(np.concatenate([uv, np.ones((len(X), 17, 1))], -1))
        S_arr, part_arr = np.concatenate(S), np.concatenate(part)
        np.savez(out_dir / f"h36m_{split}.npz", imgname=np.array(names), center=part_arr[:, 0, :2],
                 scale=np.ones(len(names)), part=part_arr, S=S_arr)
        truth[split] = {"imgname": np.array(names), "S": S_arr, "part": part_arr}
    return truth


def world_to_cam_scipy(X: np.ndarray, quat_wxyz: Any, centre_mm: Any) -> np.ndarray:
    w, x, y, z = quat_wxyz
    R_c2w = Rotation.from_quat([x, y, z, w]).as_matrix()
    return (X - np.asarray(centre_mm) / 1000.0) @ R_c2w


def write_h36m_vp3d(root: Path, *, subjects: tuple[str, ...] = ("S1", "S9", "S11"),
                    actions: tuple[str, ...] = ("Walking", "Greeting", "Photo 1"), frames: int = 10,
                    seed: int = 0, detections: str | None = "cpn_ft_h36m_dbb", coco: bool = False) -> dict[str, Any]:
    """VideoPose3D's ``data_3d_h36m.npz``, ``data_2d_h36m_gt.npz`` and a detection file."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    pos3d: dict[str, dict[str, np.ndarray]] = {}
    gt2d: dict[str, dict[str, list[np.ndarray]]] = {}
    det2d: dict[str, dict[str, list[np.ndarray]]] = {}
    cam3d: dict[tuple[str, str, int], np.ndarray] = {}
    for s in subjects:
        pos3d[s], gt2d[s], det2d[s] = {}, {}, {}
        for a in actions:
            world = body(frames, 32, rng, (rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 0.9), spread=0.25)
            pos3d[s][a] = world.astype(np.float32)
            gt2d[s][a], det2d[s][a] = [], []
            for ci, cam in enumerate(H36M_CAMS):
                q, centre = H36M_EXTRINSICS[s][ci]
                Xc = world_to_cam_scipy(world.astype(np.float32).astype(np.float64), q, centre)
                cam3d[(s, a, ci)] = Xc[:, H36M17_FROM_32]
                cp = H36M_CAMERAS[cam]
                uv = vp3d_project(Xc[:, H36M17_FROM_32], cp["f"], cp["c"], cp["k"], cp["p"]).astype(np.float32)
                gt2d[s][a].append(uv)
                noisy = uv + rng.normal(0, 3, uv.shape).astype(np.float32)
                extra = np.repeat(noisy[-1:], 3, axis=0)  # detection streams may run a few frames longer
                det2d[s][a].append(np.concatenate([noisy, extra]).astype(np.float32))
    np.savez(root / "data_3d_h36m.npz", positions_3d=pos3d)
    meta = {"num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    np.savez(root / "data_2d_h36m_gt.npz", positions_2d=gt2d, metadata=meta)
    if detections:
        np.savez(root / f"data_2d_h36m_{detections}.npz", positions_2d=det2d, metadata=meta | {"layout_name": "h36m"})
    return {"positions_3d": pos3d, "gt2d": gt2d, "det2d": det2d, "cam3d": cam3d}


# ----------------------------------------------------------------------------- MPI-INF-3DHP
# 28-joint order of annot.mat -> the test set's 17 joints
HP28_TO_17 = [7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6]


def calibration_text(cams: dict[int, tuple[float, float, float, float]], size: tuple[int, int] = (2048, 2048)) -> str:
    lines = ["Skeletool Camera Calibration File V1.0"]
    for c, (fx, fy, cx, cy) in cams.items():
        lines += [f"name          {c}", "  sensor      10 10", f"  size        {size[0]} {size[1]}",
                  "  animated    0",
                  f"  intrinsic   {fx} 0 {cx} 0 0 {fy} {cy} 0 0 0 1 0 0 0 0 1 ",
                  "  extrinsic   1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1 ", "  radial      0"]
    return "\n".join(lines) + "\n"


def univ(X: np.ndarray, root: int, scale: float = 0.93) -> np.ndarray:
    r = X[..., root:root + 1, :]
    return r + scale * (X - r)


def write_3dhp_train(root: Path, subject: str = "S1", seq: str = "Seq1", *, frames: int = 10, seed: int = 0,
                     drop: str | None = None) -> dict[str, Any]:
    """``S<k>/Seq<m>/annot.mat`` (MATLAB v5) + ``camera.calibration`` with 14 cameras."""
    import scipy.io

    rng = np.random.default_rng(seed)
    d = root / subject / seq
    d.mkdir(parents=True, exist_ok=True)
    intr = {c: (1495.0 + c, 1496.0 + c, 1000.0 + 3 * c, 1010.0 - 2 * c) for c in range(14)}
    (d / "camera.calibration").write_text(calibration_text(intr))
    a2, a3, u3 = (np.empty((14, 1), dtype=object) for _ in range(3))
    truth = {}
    for c in range(14):
        X = body(frames, 28, rng, (0.1, 0.2, 4.0)) * 1000.0  # mm, pelvis = joint 4
        X[:, [0, 4]] = X[:, [4, 0]]
        uv = pinhole(X, *intr[c])
        a3[c, 0] = X.reshape(frames, 84)
        u3[c, 0] = univ(X, 4).reshape(frames, 84)
        a2[c, 0] = uv.reshape(frames, 56)
        truth[c] = {"annot3": X, "univ_annot3": univ(X, 4), "annot2": uv, "intrinsics": intr[c]}
    data = {"annot2": a2, "annot3": a3, "univ_annot3": u3, "frames": np.arange(frames).reshape(-1, 1),
            "cameras": np.arange(14, dtype=np.uint8).reshape(1, 14)}
    if drop:
        data.pop(drop)
    scipy.io.savemat(d / "annot.mat", data)
    return truth


def write_mat73(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A MATLAB v7.3 file: HDF5 with the 512-byte MATLAB header and ``MATLAB_class`` attributes.

    Arrays are given in MATLAB's dimension order and stored transposed, as MATLAB does.
    """
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, a in arrays.items():
            ds = f.create_dataset(name, data=np.asarray(a, np.float64).T)
            ds.attrs["MATLAB_class"] = np.bytes_("double")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")


def write_3dhp_test(root: Path, name: str = "TS1", *, frames: int = 12, seed: int = 0,
                    drop: str | None = None) -> dict[str, Any]:
    """``mpi_inf_3dhp_test_set/TS<k>/annot_data.mat`` (MATLAB v7.3) with 17 joints."""
    from auglift.datasets.mpi_inf_3dhp import TEST_CAMERAS

    rng = np.random.default_rng(seed)
    cam = TEST_CAMERAS[name]
    fx, fy, cx, cy = cam["intrinsics"]
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    X = body(frames, 17, rng, (0.1, 0.1, 4.5)) * 1000.0  # mm, pelvis = joint 14 of the 17
    X[:, [0, 14]] = X[:, [14, 0]]
    uv = opencv_project(X, K, np.array(cam["distortion"]))
    U = univ(X, 14)
    valid = np.ones(frames)
    valid[[i for i in (1, 4, 5) if i < frames]] = 0
    mat = {"annot2": uv.transpose(2, 1, 0)[:, :, None, :], "annot3": X.transpose(2, 1, 0)[:, :, None, :],
           "univ_annot3": U.transpose(2, 1, 0)[:, :, None, :], "valid_frame": valid[None, :],
           "activity_annotation": np.ones((1, frames))}
    if drop:
        mat.pop(drop)
    write_mat73(root / "mpi_inf_3dhp_test_set" / name / "annot_data.mat", mat)
    return {"annot3": X, "univ_annot3": U, "annot2": uv, "valid": valid.astype(bool)}


def write_pstmo(root: Path, *, frames: int = 8, seed: int = 0) -> dict[str, Any]:
    """P-STMO's ``data_train_3dhp.npz`` and ``data_test_3dhp.npz`` (object arrays of dicts)."""
    from auglift.datasets.mpi_inf_3dhp import TEST_CAMERAS, TRAIN_INTRINSICS

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    train: dict[str, Any] = {}
    for key, fps in (("S1 Seq1", 25), ("S2 Seq2", 50)):
        cams = {}
        for c in (0, 1, 8):
            X = body(frames, 17, rng, (0.0, 0.2, 4.0)) * 1000.0
            X[:, [0, 14]] = X[:, [14, 0]]
            cams[str(c)] = {"data_2d": pinhole(univ(X, 14), *TRAIN_INTRINSICS[c]).astype(np.float32),
                            "data_3d": univ(X, 14).astype(np.float32)}
        train[key] = [cams, fps]
    test: dict[str, Any] = {}
    for name in ("TS1", "TS5"):
        cam = TEST_CAMERAS[name]
        X = body(frames, 17, rng, (0.0, 0.1, 4.5)) * 1000.0
        X[:, [0, 14]] = X[:, [14, 0]]
        valid = np.ones(frames)
        valid[2] = 0
        test[name] = {"data_2d": pinhole(X, *cam["intrinsics"]), "data_3d": univ(X, 14), "valid": valid}
    np.savez(root / "data_train_3dhp.npz", data=train)
    np.savez(root / "data_test_3dhp.npz", data=test)
    return {"train": train, "test": test}


# ----------------------------------------------------------------------------- 3DPW
def _op18_from_smpl(J: np.ndarray) -> np.ndarray:
    """A plausible OpenPose-18 3D skeleton from SMPL-24 joints (for projecting fake 2D detections)."""
    idx = {"neck": 12, "r_sh": 17, "r_el": 19, "r_wr": 21, "l_sh": 16, "l_el": 18, "l_wr": 20, "r_hip": 2,
           "r_kn": 5, "r_an": 8, "l_hip": 1, "l_kn": 4, "l_an": 7, "head": 15}
    head = J[:, idx["head"]]
    side = np.array([0.04, 0.0, 0.0])
    pts = [head + np.array([0, 0.02, 0]), J[:, idx["neck"]], J[:, idx["r_sh"]], J[:, idx["r_el"]], J[:, idx["r_wr"]],
           J[:, idx["l_sh"]], J[:, idx["l_el"]], J[:, idx["l_wr"]], J[:, idx["r_hip"]], J[:, idx["r_kn"]],
           J[:, idx["r_an"]], J[:, idx["l_hip"]], J[:, idx["l_kn"]], J[:, idx["l_an"]], head - side, head + side,
           head - 2 * side, head + 2 * side]
    return np.stack(pts, 1)


def write_3dpw(root: Path, split: str = "test", seq: str = "downtown_walking_00", *, persons: int = 2,
               frames: int = 10, seed: int = 0, image: bool = False) -> dict[str, Any]:
    """``sequenceFiles/<split>/<seq>.pkl`` (pickle protocol 2: Python-2-style latin-1 byte buffers)."""
    rng = np.random.default_rng(seed)
    d = root / "sequenceFiles" / split
    d.mkdir(parents=True, exist_ok=True)
    K = np.array([[1961.0, 0, 540.0], [0, 1969.0, 960.0], [0, 0, 1]])
    Rs = Rotation.from_euler("y", np.linspace(-0.2, 0.2, frames)[:, None]).as_matrix()
    ts = np.stack([np.linspace(-0.3, 0.3, frames), np.full(frames, 0.2), np.full(frames, 3.5)], -1)
    cam_poses = np.tile(np.eye(4), (frames, 1, 1))
    cam_poses[:, :3, :3], cam_poses[:, :3, 3] = Rs, ts
    joints, poses2d, valid, cam3d = [], [], [], []
    for p in range(persons):
        W = body(frames, 24, rng, (0.4 * p - 0.2, 0.0, 0.0), spread=0.25)
        Xc = np.einsum("fij,fkj->fki", Rs, W) + ts[:, None]
        op = pinhole(_op18_from_smpl(Xc), K[0, 0], K[1, 1], K[0, 2], K[1, 2])
        conf = rng.uniform(0.3, 1.0, (frames, 18))
        conf[0, 11] = 0.0  # a missing left hip in frame 0
        op[0, 11] = 0.0
        if frames > 3:
            conf[3] = 0.0  # no detection at all in frame 3
            op[3] = 0.0
        poses2d.append(np.concatenate([op, conf[..., None]], -1).transpose(0, 2, 1))
        v = np.ones(frames, dtype=bool)
        v[-2:] = p == 0  # the second person's last two camera poses are invalid
        joints.append(W.reshape(frames, 72))
        valid.append(v.astype(np.float64))
        cam3d.append(Xc)
    data = {"sequence": seq, "genders": ["m", "f"][:persons], "betas": [np.zeros(10)] * persons,
            "poses": [np.zeros((frames, 72))] * persons, "trans": [np.zeros((frames, 3))] * persons,
            "jointPositions": joints, "poses2d": poses2d, "cam_poses": cam_poses, "cam_intrinsics": K,
            "campose_valid": valid, "img_frame_ids": np.arange(frames)}
    with open(d / f"{seq}.pkl", "wb") as fh:
        pickle.dump(data, fh, protocol=2)
    if image:
        from PIL import Image

        img_dir = root / "imageFiles" / seq
        img_dir.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (1080, 1920), (90, 90, 90)).save(img_dir / "image_00000.jpg", quality=50)
    return {"K": K, "cam3d": cam3d, "poses2d": poses2d, "valid": valid}


class _Evil:
    def __reduce__(self):  # a payload that would run a shell command when unpickled
        import os

        return (os.system, ("echo pwned > /dev/null",))


def write_evil_pickle(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump({"sequence": "evil", "jointPositions": [_Evil()]}, fh, protocol=2)


# ----------------------------------------------------------------------------- Fit3D
FIT3D_DIST = {"k": [[-0.2, 0.24, -0.003]], "p": [[-0.001, -0.0014]]}


def write_fit3d(root: Path, *, subjects: tuple[tuple[str, str], ...] = (("train", "s03"), ("train", "s10"),
                                                                       ("train", "s02")),
                actions: tuple[str, ...] = ("squat", "band_pull_apart"), cameras: tuple[str, ...] = ("50591643",
                                                                                                    "58860488"),
                frames: int = 10, seed: int = 0) -> dict[str, Any]:
    """IMAR's Fit3D tree: ``joints3d_25/<action>.json`` and ``camera_parameters/<cam>/<action>.json``."""
    rng = np.random.default_rng(seed)
    truth: dict[str, Any] = {}
    for split, subj in subjects:
        sdir = root / split / subj
        (sdir / "joints3d_25").mkdir(parents=True, exist_ok=True)
        for a in actions:
            world = body(frames, 25, rng, (0.0, 0.0, 1.0), spread=0.3)
            (sdir / "joints3d_25" / f"{a}.json").write_text(json.dumps({"joints3d_25": world.tolist()}))
            for ci, cam in enumerate(cameras):
                yaw = 0.6 * ci - 0.3
                R = Rotation.from_euler("xyz", [-np.pi / 2, yaw, 0.0]).as_matrix()
                centre = np.array([0.0, 0.0, 1.0]) - 4.5 * R[2]  # 4.5 m in front of the subject along the view
                f, c = [[900.0 + 10 * ci, 901.0]], [[450.0, 452.0]]
                cam_json = {"extrinsics": {"R": R.tolist(), "T": [centre.tolist()]},
                            "intrinsics_w_distortion": {"f": f, "c": c, **FIT3D_DIST},
                            "intrinsics_wo_distortion": {"f": f, "c": c}}
                cpath = sdir / "camera_parameters" / cam / f"{a}.json"
                cpath.parent.mkdir(parents=True, exist_ok=True)
                cpath.write_text(json.dumps(cam_json))
                Xc = (world - centre) @ R.T
                uv = h36m_matlab_project(Xc[:, :17], f, c, FIT3D_DIST["k"], FIT3D_DIST["p"])
                truth[(subj, a, cam)] = {"cam3d": Xc[:, :17], "uv": uv}
    return truth


# ----------------------------------------------------------------------------- PoseSets for detection imports
def image_poseset(n_clips: int = 3, frames: int = 6, seed: int = 0, *, video: bool = False):
    """A PoseSet whose clips read frames from ``imgs/cam<c>/img_{frame1:06d}.jpg`` (or ``videos/cam<c>.mp4``),
    with ground-truth ``kp2d`` (conf 1) and no ``kp2d_gt`` field yet."""
    from auglift.poseset import ClipTable, PoseSet

    rng = np.random.default_rng(seed)
    n = n_clips * frames
    kp3d = body(n, 17, rng, (0.0, 0.0, 4.0)).astype(np.float32)
    intr = np.tile([1000.0, 1000.0, 500.0, 500.0], (n_clips, 1))
    clip = np.repeat(np.arange(n_clips), frames).astype(np.int32)
    kp2d = pinhole(kp3d, 1000.0, 1000.0, 500.0, 500.0).astype(np.float32)
    fields = {"clip": clip, "frame": np.tile(np.arange(frames), n_clips).astype(np.int32), "kp2d": kp2d,
              "conf": np.ones((n, 17), np.float32), "kp3d": kp3d}
    src = [f"videos/cam{c}.mp4" if video else f"imgs/cam{c}/img_{{frame1:06d}}.jpg" for c in range(n_clips)]
    clips = ClipTable(subject=["S1"] * n_clips, action=["walk"] * n_clips, camera=[str(c) for c in range(n_clips)],
                      split=["test"] * n_clips, width=[1000] * n_clips, height=[1000] * n_clips, intrinsics=intr,
                      source=src)
    return PoseSet(fields, clips, {"source": "test", "extra": {"kp2d_source": "gt"}})
