"""Human3.6M -> PoseSet, from MMPose's or VideoPose3D's preprocessed files.

Two layouts are read (see the README section "Real datasets" for the directory trees):

* ``layout="mmpose"``: ``annotation_body3d/fps<N>/h36m_{train,test}.npz`` (MMPose's
  ``tools/dataset_converters/preprocess_h36m.py``) with ``imgname`` (e.g.
  ``S9/S9_Walking_1.54138969/S9_Walking_1.54138969_000001.jpg``: subject, action, camera and
  the 1-based frame number in the 50 Hz video), ``S`` ``(N, 17, 4)`` camera-frame metres plus a
  visibility column, ``part`` ``(N, 17, 3)`` pixels plus visibility, and
  ``annotation_body3d/cameras.pkl`` mapping ``(subject, camera_id)`` to ``R, T, c, f, k, p, w, h``.
  ``S`` is already in the camera frame, so only the intrinsics, distortion and image size are
  taken from the cameras. Frames come from ``images/<dir>/<name>_{frame1:06d}.jpg``.
* ``layout="videopose3d"``: ``data_3d_h36m.npz`` (``positions_3d``: subject -> action ->
  ``(F, 32, 3)`` world metres), optionally ``data_2d_h36m_<keypoints>.npz`` (``positions_2d``:
  subject -> action -> one ``(F, 17, 2|3)`` array per camera, ``metadata`` with ``layout_name``),
  and the public camera parameters (:data:`H36M_CAMERAS`, :data:`H36M_EXTRINSICS`): the
  orientation quaternion ``(w, x, y, z)`` rotates camera axes into the world, the translation
  is the camera centre in millimetres, so ``X_cam = R_c2w^T (X_world - centre)``. Frames come
  from the original videos ``<subject>/Videos/<action>.<camera>.mp4`` under ``video_root``.

Conventions: joints H36M-17 (the 32 mocap joints reduced as VideoPose3D does); actions named
as VideoPose3D names them (``Directions 1``, ``Photo``, ``WalkDog 1``: MMPose's ``Directions_1``,
``TakingPhoto``, ``WalkingDog`` are renamed); split ``train`` = S1, S5, S6, S7, S8 and ``test`` =
S9, S11. Distortion is stored in OpenCV order ``[k1, k2, p1, p2, k3]`` from H36M's radial ``k``
and tangential ``p`` (the model MMPose's camera uses; H36M's own MATLAB projection weighs the
tangential cross terms differently, a sub-pixel difference near the image centre).
Both ``cameras.pkl`` and VideoPose3D's archives are pickles: they are read through
:mod:`auglift.safe_pickle` only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.spatial.transform import Rotation

from auglift.datasets.common import (
    ClipData,
    as_array,
    as_strings,
    assemble,
    check_step_splits,
    joints_to_h36m,
    load_npz,
    pattern_literal,
    progress,
    require,
)
from auglift.datasets.detections import H36M_CAMERA_IDS, keypoints_to_h36m, read_array_file
from auglift.errors import ConfigError, DataError
from auglift.io import PathLike, natural_key
from auglift.poseset import PoseSet
from auglift.safe_pickle import load_pickle
from auglift.skeleton import get_joint_set

__all__ = [
    "DAMAGED",
    "H36M_CAMERAS",
    "H36M_CAMERA_IDS",
    "H36M_EXTRINSICS",
    "SUBJECT_SPLITS",
    "canonical_action",
    "convert",
    "world_to_camera_vp3d",
]

SUBJECT_SPLITS: dict[str, str] = {"S1": "train", "S5": "train", "S6": "train", "S7": "train", "S8": "train",
                                  "S9": "test", "S11": "test"}
# Sequences of S9 whose 3D ground truth is damaged (a global offset; most codebases that evaluate
# absolute or multi-view poses drop them). Names in VideoPose3D's canonical form.
DAMAGED: frozenset[tuple[str, str]] = frozenset({("S9", "Greeting"), ("S9", "SittingDown 1"), ("S9", "Waiting 1")})

# Public intrinsics (pixels) of the four cameras: focal (fx, fy), centre (cx, cy), radial
# (k1, k2, k3), tangential (p1, p2), image width and height.
H36M_CAMERAS: dict[str, dict[str, Any]] = {
    "54138969": {"f": (1145.0494384765625, 1143.7811279296875), "c": (512.54150390625, 515.4514770507812),
                 "k": (-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
                 "p": (-0.0009756988729350269, -0.00142447161488235), "w": 1000, "h": 1002},
    "55011271": {"f": (1149.6756591796875, 1147.5916748046875), "c": (508.8486328125, 508.0649108886719),
                 "k": (-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
                 "p": (-0.0016190266469493508, -0.0027408944442868233), "w": 1000, "h": 1000},
    "58860488": {"f": (1149.1407470703125, 1148.7989501953125), "c": (519.8158569335938, 501.40264892578125),
                 "k": (-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
                 "p": (0.0014843869721516967, -0.0007599993259645998), "w": 1000, "h": 1000},
    "60457274": {"f": (1145.5113525390625, 1144.77392578125), "c": (514.9682006835938, 501.88201904296875),
                 "k": (-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
                 "p": (-0.0005872055771760643, -0.0018133620033040643), "w": 1000, "h": 1002},
}
# Public extrinsics per subject, one entry per camera in H36M_CAMERA_IDS order:
# (orientation quaternion w, x, y, z (camera-to-world rotation), camera centre in world mm).
H36M_EXTRINSICS: dict[str, tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]] = {
    "S1": (((0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088),
            (1841.1070556640625, 4955.28466796875, 1563.4454345703125)),
           ((0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205),
            (1761.278564453125, -5078.0068359375, 1606.2650146484375)),
           ((0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696),
            (-1846.7777099609375, 5215.04638671875, 1491.972412109375)),
           ((0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435),
            (-1794.7896728515625, -3722.698974609375, 1574.8927001953125))),
    "S5": (((0.1467377245426178, -0.162370964884758, -0.7551892995834351, 0.6178938746452332),
            (2097.3916015625, 4880.94482421875, 1605.732421875)),
           ((0.6159758567810059, -0.7626792192459106, -0.15728192031383514, 0.1189815029501915),
            (2031.7008056640625, -5167.93310546875, 1612.923095703125)),
           ((0.14291371405124664, -0.12907841801643372, 0.7678384780883789, -0.6110143065452576),
            (-1620.5948486328125, 5171.65869140625, 1496.43701171875)),
           ((0.5920479893684387, -0.7814217805862427, 0.1274748593568802, -0.15036417543888092),
            (-1637.1737060546875, -3867.3173828125, 1547.033203125))),
    "S6": (((0.1337897777557373, -0.15692396461963654, -0.7571090459823608, 0.6198879480361938),
            (1935.4517822265625, 4950.24560546875, 1618.0838623046875)),
           ((0.6147197484970093, -0.7628812789916992, -0.16174767911434174, 0.11819244921207428),
            (1969.803955078125, -5128.73876953125, 1632.77880859375)),
           ((0.1529948115348816, -0.13529130816459656, 0.7646096348762512, -0.6112781167030334),
            (-1769.596435546875, 5185.361328125, 1476.993408203125)),
           ((0.5916101336479187, -0.7804774045944214, 0.12832270562648773, -0.1561593860387802),
            (-1721.668701171875, -3884.13134765625, 1540.4879150390625))),
    "S7": (((0.1435241848230362, -0.1631336808204651, -0.7548328638076782, 0.6188824772834778),
            (1974.512939453125, 4926.3544921875, 1597.8326416015625)),
           ((0.6141672730445862, -0.7638262510299683, -0.1596645563840866, 0.1177929937839508),
            (1937.0584716796875, -5119.7900390625, 1631.5665283203125)),
           ((0.14550060033798218, -0.12874816358089447, 0.7660516500473022, -0.6127139329910278),
            (-1741.8111572265625, 5208.24951171875, 1464.8245849609375)),
           ((0.5912848114967346, -0.7821764349937439, 0.12445473670959473, -0.15196487307548523),
            (-1734.7105712890625, -3832.42138671875, 1548.5830078125))),
    "S8": (((0.14110587537288666, -0.15589867532253265, -0.7561917304992676, 0.619644045829773),
            (2150.65185546875, 4896.1611328125, 1611.9046630859375)),
           ((0.6169601678848267, -0.7647668123245239, -0.14846350252628326, 0.11158157885074615),
            (2219.965576171875, -5148.453125, 1613.0440673828125)),
           ((0.1471444070339203, -0.13377119600772858, 0.7670128345489502, -0.6100369691848755),
            (-1571.2215576171875, 5137.0185546875, 1498.1761474609375)),
           ((0.5927824378013611, -0.7825870513916016, 0.12147816270589828, -0.14631995558738708),
            (-1476.913330078125, -3896.7412109375, 1547.97216796875))),
    "S9": (((0.15540587902069092, -0.15548215806484222, -0.7532095313072205, 0.6199594736099243),
            (2044.45849609375, 4935.1171875, 1481.2275390625)),
           ((0.618784487247467, -0.7634735107421875, -0.14132238924503326, 0.11933968216180801),
            (1990.959716796875, -5123.810546875, 1568.8048095703125)),
           ((0.13357827067375183, -0.1367100477218628, 0.7689454555511475, -0.6100738644599915),
            (-1670.9921875, 5211.98583984375, 1528.387939453125)),
           ((0.5879399180412292, -0.7823407053947449, 0.1427614390850067, -0.14794869720935822),
            (-1696.04345703125, -3827.099853515625, 1591.4127197265625))),
    "S11": (((0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467),
             (2098.440185546875, 4926.5546875, 1500.278564453125)),
            ((0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085),
             (2083.182373046875, -4912.1728515625, 1561.07861328125)),
            ((0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407),
             (-1609.8153076171875, 5177.3359375, 1537.896728515625)),
            ((0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809),
             (-1590.738037109375, -3854.1689453125, 1578.017578125))),
}

_RENAME = {"TakingPhoto": "Photo", "WalkingDog": "WalkDog"}


def canonical_action(raw: str) -> str:
    """VideoPose3D's action name: ``Directions_1`` -> ``Directions 1``, ``TakingPhoto`` -> ``Photo``."""
    head, _, rest = raw.replace("_", " ").strip().partition(" ")
    return f"{_RENAME.get(head, head)} {rest}".strip()


def world_to_camera_vp3d(X: np.ndarray, orientation: np.ndarray, centre_m: np.ndarray) -> np.ndarray:
    """VideoPose3D's convention: world ``(..., 3)`` metres -> camera frame ``(X - centre) @ R_c2w``, where
    ``R_c2w`` is the rotation of the camera's orientation quaternion ``(w, x, y, z)`` (normalised)."""
    R_c2w = Rotation.from_quat(np.roll(np.asarray(orientation, np.float64), -1, axis=-1)).as_matrix()  # (x, y, z, w)
    return (np.asarray(X, np.float64) - np.asarray(centre_m, np.float64)) @ R_c2w


def _intrinsics(cam: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    f, c, k, p = (np.asarray(cam[key], np.float64).reshape(-1) for key in ("f", "c", "k", "p"))
    return np.array([f[0], f[1], c[0], c[1]]), np.array([k[0], k[1], p[0], p[1], k[2]])


def convert(
    root: PathLike,
    *,
    layout: Literal["mmpose", "videopose3d"] = "mmpose",
    splits: list[str] | tuple[str, ...] | None = None,
    skip_damaged: bool = False,
    step: int = 1,
    keypoints: str | None = None,
    fps_dir: str | None = None,
    video_root: PathLike | None = None,
    progress_bar: bool = True,
) -> PoseSet:
    """Convert Human3.6M at ``root`` into one PoseSet (H36M-17, camera frame, with ``split`` column).

    Args:
        root: dataset directory (MMPose: holds ``annotation_body3d/``; VideoPose3D: holds the ``.npz`` files).
        layout: ``"mmpose"`` or ``"videopose3d"``.
        splits: subset of ``("train", "test")`` to convert (default both).
        skip_damaged: drop the S9 sequences with damaged ground truth (:data:`DAMAGED`).
        step: keep every ``step``-th frame of each clip (``2``: 50 -> 25 Hz).
        keypoints: VideoPose3D only: name of ``data_2d_h36m_<keypoints>.npz`` whose 2D becomes
            ``kp2d``/``conf`` (e.g. ``cpn_ft_h36m_dbb``); default: ``kp2d`` = projected ground truth.
        fps_dir: MMPose only: which ``annotation_body3d/fps<N>`` folder (default ``fps50``, else the only one).
        video_root: VideoPose3D only: the original dataset tree with ``<subject>/Videos/*.mp4``
            (default ``root``); it becomes ``meta["frame_root"]``.
        progress_bar: show a progress bar on stderr.
    """
    root = Path(root)
    explicit = splits is not None
    splits = check_step_splits("Human3.6M", step, splits)
    if layout == "mmpose":
        if keypoints is not None or video_root is not None:
            raise ConfigError("--keypoints and --video-root apply to --layout videopose3d only")
        return _convert_mmpose(root, splits, explicit, skip_damaged, step, fps_dir, progress_bar)
    if layout == "videopose3d":
        if fps_dir is not None:
            raise ConfigError("--fps-dir applies to --layout mmpose only")
        return _convert_vp3d(root, splits, skip_damaged, step, keypoints, video_root, progress_bar)
    raise ConfigError(f"unknown Human3.6M layout {layout!r}; use 'mmpose' or 'videopose3d'")


# ----------------------------------------------------------------------------- MMPose layout
def _load_mmpose_cameras(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    cams = load_pickle(path)
    if not isinstance(cams, dict) or not cams:
        raise DataError(path, None, f"expected a dict mapping (subject, camera_id) to parameters, got "
                                    f"{type(cams).__name__}")
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key, val in cams.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise DataError(path, str(key), "expected keys (subject, camera_id)")
        for need in ("f", "c", "k", "p", "w", "h"):
            require(val, need, path, f"camera {key}")
        for name in ("f", "c"):
            as_array(val[name], path, f"{key}.{name}", (2, 1), finite=True)
        k = as_array(val["k"], path, f"{key}.k", (None,) * np.ndim(val["k"]))
        pt = as_array(val["p"], path, f"{key}.p", (None,) * np.ndim(val["p"]))
        if k.size != 3 or pt.size != 2:
            raise DataError(path, f"{key}.k", "expected 3 radial (k) and 2 tangential (p) coefficients")
        for side in ("w", "h"):
            v = val[side]
            if not (isinstance(v, (int, np.integer)) or (isinstance(v, (float, np.floating)) and float(v).is_integer())
                    ) or isinstance(v, bool) or not 0 < int(v) < 1 << 20:
                raise DataError(path, f"{key}.{side}", f"expected the image {'width' if side == 'w' else 'height'} "
                                                       f"in pixels (a positive integer), got {v!r}")
        out[(str(key[0]), str(key[1]))] = val
    return out


def _convert_mmpose(root: Path, splits: tuple[str, ...], explicit: bool, skip_damaged: bool, step: int,
                    fps_dir: str | None, show: bool) -> PoseSet:
    ann = root / "annotation_body3d"
    if not ann.is_dir():
        raise DataError(ann, None, "MMPose layout: annotation_body3d/ directory not found")
    if fps_dir is None:
        cands = sorted(p.name for p in ann.glob("fps*") if p.is_dir())
        fps_dir = "fps50" if "fps50" in cands else (cands[0] if len(cands) == 1 else None)
        if fps_dir is None:
            raise DataError(ann, None, f"expected one annotation_body3d/fps<N>/ folder, found {cands or 'none'}")
    try:
        row_fps = float(fps_dir.removeprefix("fps"))
    except ValueError:
        raise ConfigError(f"fps_dir must look like 'fps50', got {fps_dir!r}") from None
    cameras = _load_mmpose_cameras(ann / "cameras.pkl")
    if not explicit:  # convert the split files that exist
        splits = tuple(s for s in splits if (ann / fps_dir / f"h36m_{s}.npz").exists()) or splits
    clips: list[ClipData] = []
    empty: list[str] = []
    for split in splits:
        path = ann / fps_dir / f"h36m_{split}.npz"
        data = load_npz(path, ["imgname", "S", "part"])
        names = as_strings(data["imgname"], path, "imgname").reshape(-1)
        n = len(names)
        S = as_array(data["S"], path, "S", (n, 17, 4), np.float32)
        part = as_array(data["part"], path, "part", (n, 17, 3), np.float32)
        if n == 0:  # converts to nothing; noted in meta["extra"]["empty_splits"]
            empty.append(split)
            continue
        head, _, tail = np.char.rpartition(names, "_").T
        try:
            frame1 = np.char.partition(tail, ".")[:, 0].astype(np.int64)
        except ValueError:
            raise DataError(path, "imgname", "expected names like S1/S1_Directions_1.54138969/"
                                             "S1_Directions_1.54138969_000001.jpg") from None
        uniq, first, inv = np.unique(head, return_index=True, return_inverse=True)
        order_clips = np.argsort(first, kind="stable")  # clips in file order
        rows_sorted = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[rows_sorted], np.arange(len(uniq) + 1))
        for k in progress(order_clips, desc=f"h36m {split}", enabled=show):
            rows = rows_sorted[bounds[k]: bounds[k + 1]]
            base = uniq[k].rsplit("/", 1)[-1]
            subj, _, rest = base.partition("_")
            raw_action, _, cam = rest.rpartition(".")
            if not subj or not raw_action or not cam:
                raise DataError(path, "imgname", f"cannot parse subject/action/camera from {names[rows[0]]!r}")
            action = canonical_action(raw_action)
            if skip_damaged and (subj, action) in DAMAGED:
                continue
            camp = cameras.get((subj, cam))
            if camp is None:
                raise DataError(ann / "cameras.pkl", f"({subj!r}, {cam!r})", "camera parameters missing")
            intr, dist = _intrinsics(camp)
            s = S[rows]
            p = part[rows]
            clip = ClipData(
                subject=subj, action=action, camera=cam, split=split,
                width=int(camp["w"]), height=int(camp["h"]), intrinsics=intr, distortion=dist,
                source=f"images/{pattern_literal(uniq[k])}_{{frame1:06d}}.jpg", fps=row_fps,
                frame=frame1[rows] - 1, kp3d=s[..., :3], kp2d_gt=p[..., :2], conf=p[..., 2],
                visible=s[..., 3] > 0, ref2d=p[..., :2],
            )
            clips.append(clip.every(step))
    meta = {"source": f"h36m/mmpose/{fps_dir}", "frame_root": str(root.resolve()),
            "extra": {"dataset": "h36m", "layout": "mmpose", "skip_damaged": skip_damaged, "step": step,
                      "kp2d_source": "gt", **({"empty_splits": empty} if empty else {})}}
    return assemble(clips, meta)


# ----------------------------------------------------------------------------- VideoPose3D layout
def _convert_vp3d(root: Path, splits: tuple[str, ...], skip_damaged: bool, step: int,
                  keypoints: str | None, video_root: PathLike | None, show: bool) -> PoseSet:
    path3d = root / "data_3d_h36m.npz"
    pos3d = load_npz(path3d, ["positions_3d"])["positions_3d"]
    if not isinstance(pos3d, dict):
        raise DataError(path3d, "positions_3d", f"expected a dict subject -> action -> array, got "
                                                f"{type(pos3d).__name__}")
    pos2d: dict[str, Any] | None = None
    joints2d = "h36m17"
    path2d = root / f"data_2d_h36m_{keypoints}.npz" if keypoints else None
    if path2d is not None:
        _array, pos2d, joints2d = read_array_file(path2d, "npz", "positions_2d")
        if pos2d is None:
            raise DataError(path2d, "positions_2d", "expected a dict subject -> action -> list of arrays")
    vroot = Path(video_root) if video_root is not None else root
    for s, acts in pos3d.items():
        if not isinstance(acts, dict) or not all(isinstance(a, str) for a in acts):
            raise DataError(path3d, f"positions_3d[{s}]", "expected a dict mapping action names to (F, 32, 3) arrays, "
                                                          f"got {type(acts).__name__}")
    todo = [(s, a) for s in sorted(pos3d, key=lambda k: natural_key(str(k))) if SUBJECT_SPLITS.get(str(s)) in splits
            for a in sorted(pos3d[s], key=natural_key)]
    clips: list[ClipData] = []
    for subj, action in progress(todo, desc="h36m videopose3d", enabled=show, unit="seq"):
        subj, action = str(subj), str(action)
        if skip_damaged and (subj, action) in DAMAGED:
            continue
        if subj not in H36M_EXTRINSICS:
            raise DataError(path3d, subj, f"no public camera extrinsics for subject {subj}")
        world = as_array(pos3d[subj][action], path3d, f"positions_3d[{subj}][{action}]", (None, 32, 3))
        world17 = joints_to_h36m(world, "h36m32")
        F = len(world17)
        dets = None
        if pos2d is not None:
            assert path2d is not None
            try:
                dets = pos2d[subj][action]
            except (KeyError, TypeError):
                raise DataError(path2d, f"positions_2d[{subj}][{action}]", "missing for this sequence") from None
            if len(dets) != len(H36M_CAMERA_IDS):
                raise DataError(path2d, f"positions_2d[{subj}][{action}]",
                                f"expected one array per camera ({len(H36M_CAMERA_IDS)}), got {len(dets)}")
        for ci, cam in enumerate(H36M_CAMERA_IDS):
            q, centre_mm = H36M_EXTRINSICS[subj][ci]
            kp3d = world_to_camera_vp3d(world17, np.asarray(q), np.asarray(centre_mm) / 1000.0)
            camp = H36M_CAMERAS[cam]
            intr, dist = _intrinsics(camp)
            clip = ClipData(subject=subj, action=action, camera=cam, split=SUBJECT_SPLITS[subj],
                            width=camp["w"], height=camp["h"], intrinsics=intr, distortion=dist,
                            source=_video_source(vroot, subj, action, cam), fps=50.0,
                            frame=np.arange(F), kp3d=kp3d)
            if dets is not None:
                assert path2d is not None
                d = as_array(dets[ci], path2d, f"positions_2d[{subj}][{action}][{ci}]", (None, None, None),
                             np.float32)
                js = get_joint_set(joints2d)
                if d.shape[1] != js.num_joints or d.shape[2] not in (2, 3):
                    raise DataError(path2d, f"positions_2d[{subj}][{action}][{ci}]",
                                    f"expected (F, {js.num_joints}, 2|3) keypoints ({js.name}), got {d.shape}")
                if len(d) < F:
                    raise DataError(path2d, f"positions_2d[{subj}][{action}][{ci}]",
                                    f"has {len(d)} frames but the 3D sequence has {F}")
                d = d[:F]  # VideoPose3D trims longer detection streams the same way
                sc = d[..., 2] if d.shape[2] == 3 else np.ones(d.shape[:2], np.float32)
                clip.kp2d, clip.conf = keypoints_to_h36m(d[..., :2], sc, js.name)
            clips.append(clip.every(step))
    meta = {"source": "h36m/videopose3d", "frame_root": str(vroot.resolve()),
            "extra": {"dataset": "h36m", "layout": "videopose3d", "skip_damaged": skip_damaged, "step": step,
                      "kp2d_source": keypoints or "gt", "keypoints_layout": joints2d}}
    return assemble(clips, meta)


def _video_source(vroot: Path, subject: str, action: str, camera: str) -> str:
    """The video of a sequence: named by its canonical action or, if only that exists, by H36M's raw
    name (``Photo`` -> ``TakingPhoto``)."""
    head, _, rest = action.partition(" ")
    names = [action] + [f"{raw} {rest}".strip() for raw, canon in _RENAME.items() if head == canon]
    cands = [f"{subject}/Videos/{name}.{camera}.mp4" for name in names]
    return next((c for c in cands if (vroot / c).exists()), cands[0])
