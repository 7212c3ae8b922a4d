"""Motion capture filmed in the synthetic world: film_motion, depth agreement, determinism, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from _mocap_fixtures import (
    CMU_BVH_TREE,
    random_channels,
    random_frames,
    tree_skeleton,
    write_motion_library,
    write_tree_bvh,
)
from auglift.cli import main
from auglift.datasets.mocap import load_motions
from auglift.datasets.mocap.source import film_motion, motion_clips, subject_of
from auglift.datasets.synthetic import map_size, render_depth
from auglift.errors import ConfigError, DataError
from auglift.poseset import PoseSet

LIMBS = [(1, 2), (2, 3), (4, 5), (5, 6), (11, 12), (12, 13), (14, 15), (15, 16), (8, 9), (9, 10)]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A small motion library: a CMU BVH, a Mixamo BVH (6 channels per joint, cm) and a CMU ASF/AMC pair."""
    return write_motion_library(tmp_path_factory.mktemp("mocap"), np.random.default_rng(11))


def test_subjects_from_file_names():
    assert subject_of("cmu/86_02.amc") == "mocap:86"
    assert subject_of("x/Walking.bvh") == "mocap:Walking"


@pytest.mark.parametrize("domain", ["lab", "outdoor"])
def test_film_motion_is_an_ordinary_poseset(library, domain):
    ps = film_motion(domain, library, seed=3, fps=30)
    ps.validate()
    views = 4 if domain == "lab" else 1
    # 240 and 180 frames at 120 fps -> 60 and 45 at 30 fps; Walking.bvh is 60 frames at 30 fps
    assert len(ps) == views * (60 + 45 + 60)
    c = ps.clips
    assert sorted(set(c.subject.tolist())) == ["mocap:07", "mocap:86", "mocap:Walking"]
    assert sorted(set(c.action.tolist())) == ["07_03", "86_02", "Walking"]
    assert set(c.split.tolist()) == {"train"} and np.all(c.fps == 30.0)
    assert all(s.startswith("synthetic:") for s in c.source.tolist())
    assert ps.meta["extra"]["synthetic"]["generator"] == "mocap"
    info = {m["action"]: m for m in ps.meta["extra"]["mocap"]}
    assert {k: v["skeleton"] for k, v in info.items()} == {"07_03": "cmu_bvh", "86_02": "cmu_asf",
                                                           "Walking": "mixamo"}
    # filming is a rigid camera transform of the retargeted world motion: limb lengths agree
    world = {c.name: c for c in load_motions(library, fps=30)}
    for k in range(len(c)):
        a, b = ps.clip_ranges[k]
        kp = np.asarray(ps.kp3d[a:b], dtype=np.float64)
        ref = world[c.action[k]].kp3d
        for i, j in LIMBS:
            np.testing.assert_allclose(np.linalg.norm(kp[:, i] - kp[:, j], axis=-1),
                                       np.linalg.norm(ref[:, i] - ref[:, j], axis=-1), atol=2e-6)
    assert np.all(np.asarray(ps.kp3d[:, 0, 2]) > 1.0)          # in front of the cameras


def test_split_override_and_determinism(library):
    a = film_motion("outdoor", library / "07_03.bvh", seed=5, split="test")
    b = film_motion("outdoor", library / "07_03.bvh", seed=5, split="test")
    assert set(a.clips.split.tolist()) == {"test"}
    for f in ("kp2d", "conf", "kp3d", "visible"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    c = film_motion("outdoor", library / "07_03.bvh", seed=6)
    assert not np.array_equal(a.kp2d, c.kp2d)
    with pytest.raises(ConfigError, match="split must be"):
        film_motion("outdoor", library, split="val")


@pytest.mark.parametrize("domain", ["lab", "fitness", "outdoor"])
def test_visible_joints_agree_with_the_depth_map(library, domain):
    """At a visible joint's pixel the rendered (true) depth is the body surface just in front of the
    joint; at occluded joints something lies clearly further in front."""
    ps = film_motion(domain, library, seed=1, fps=30)
    rows = np.arange(0, len(ps), max(1, len(ps) // 48))
    W, H = int(ps.clips.width[0]), int(ps.clips.height[0])
    h, w = map_size(W, H, 256)
    depth = render_depth(ps, rows, size=(h, w), flavour="true")
    uv = np.asarray(ps.kp2d_gt[rows], dtype=np.float64)
    u = np.clip(np.rint((uv[..., 0] + 0.5) * w / W - 0.5).astype(int), 0, w - 1)
    v = np.clip(np.rint((uv[..., 1] + 0.5) * h / H - 0.5).astype(int), 0, h - 1)
    d = depth[np.arange(len(rows))[:, None], v, u]
    z = np.asarray(ps.kp3d[rows][..., 2], dtype=np.float64)
    vis = np.asarray(ps.visible[rows])
    gap = z - d                      # how far in front of the joint the first surface is
    assert 0.5 < vis.mean() < 0.95
    assert np.mean((gap[vis] > -0.05) & (gap[vis] < 0.25)) > 0.98
    assert 0.02 < np.median(gap[vis]) < 0.1
    assert np.median(gap[~vis]) > np.median(gap[vis]) + 0.05
    assert np.mean(gap[~vis] > 0.1) > 0.6


def test_unknown_skeleton_needs_a_mapping_in_the_world(tmp_path):
    rng = np.random.default_rng(0)
    names = {n: f"bone{i}" for i, (n, _, _) in enumerate(CMU_BVH_TREE)}
    sk = tree_skeleton(CMU_BVH_TREE, rename=names, scale=100)
    ch = random_channels(sk, rng)
    write_tree_bvh(tmp_path / "rig.bvh", sk, ch, random_frames(sk, ch, 40, rng, scale=100))
    with pytest.raises(DataError, match=r"rig\.bvh: line 2: unknown skeleton"):
        motion_clips(tmp_path)


def test_cli_films_motion_and_previews(library, tmp_path, capsys):
    out, png = tmp_path / "out", tmp_path / "mocap.png"
    rc = main(["synth", "--motion", str(library), "--motion-fps", "30", "--domain", "outdoor", "--seed", "4",
               "--out", str(out), "--preview", str(png), "--preview-frames", "2", "--map-size", "96",
               "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "outdoor: 165 frames in 3 clips" in text and "preview:" in text
    ps = PoseSet.load(out, validate=True)
    assert len(ps) == 165 and ps.meta["extra"]["synthetic"]["generator"] == "mocap"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    # two domains, one sub-directory each, other options passed through
    rc = main(["synth", "--motion", str(library / "86_02.amc"), "--motion-fps", "50", "--domain", "lab,fitness",
               "--motion-height", "1.9", "--motion-split", "test", "--out", str(tmp_path / "two"), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    lab = PoseSet.load(tmp_path / "two" / "lab")
    assert np.all(lab.clips.fps == 50.0) and set(lab.clips.split.tolist()) == {"test"}
    assert lab.meta["extra"]["mocap"][0]["height_m"] == pytest.approx(1.9)
    assert len(lab) == 4 * 75                                     # 180 frames at 120 fps -> 75 at 50 fps


def test_cli_motion_errors(library, tmp_path, capsys):
    rng = np.random.default_rng(0)
    names = {n: f"bone{i}" for i, (n, _, _) in enumerate(CMU_BVH_TREE)}
    sk = tree_skeleton(CMU_BVH_TREE, rename=names, scale=100)
    ch = random_channels(sk, rng)
    write_tree_bvh(tmp_path / "rig.bvh", sk, ch, random_frames(sk, ch, 40, rng, scale=100))
    base = ["synth", "--domain", "outdoor", "--out", str(tmp_path / "o"), "--no-progress"]
    assert main([*base, "--motion", str(tmp_path / "rig.bvh")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("auglift: error: ") and "rig.bvh: line 2: unknown skeleton" in err
    assert "--motion-map" in err
    table = {"pelvis": 0, "right_hip": 8, "right_knee": 9, "right_foot": 10, "left_hip": 2, "left_knee": 3,
             "left_foot": 4, "spine": 15, "thorax": 16, "neck_nose": 18, "left_shoulder": 21, "left_elbow": 22,
             "left_wrist": 23, "right_shoulder": 26, "right_elbow": 27, "right_wrist": 28}
    mp = tmp_path / "rig.toml"
    mp.write_text("".join(f'{k} = "bone{v}"\n' for k, v in table.items()) + 'head = "bone18_end"\n')
    assert main([*base, "--motion", str(tmp_path / "rig.bvh"), "--motion-map", str(mp)]) == 0
    capsys.readouterr()
    assert main([*base, "--motion", str(tmp_path / "missing")]) == 2
    assert "missing: no such file or directory" in capsys.readouterr().err
    assert main([*base, "--motion", str(library), "--motion-units", "furlong"]) == 2
    assert "--motion-units must be" in capsys.readouterr().err
    assert main([*base, "--motion", str(library), "--motion-fps", "0"]) == 2
    assert "--motion-fps and --amc-fps must be positive" in capsys.readouterr().err
    broken = tmp_path / "broken.bvh"
    broken.write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n")
    assert main([*base, "--motion", str(broken)]) == 2
    assert "broken.bvh: line 4: the file ends inside the hierarchy" in capsys.readouterr().err



def test_motion_files_mix_with_procedural_activities_by_a_ratio(library):
    from auglift.datasets.mocap.source import generate_mixed
    from auglift.datasets.synthetic import DOMAINS, generate

    ps = generate_mixed("lab", 800, seed=2, motion=library, ratio=0.5, seq_seconds=(1.0, 2.0))
    ps.validate()
    assert len(ps) == 800
    from_files = np.char.startswith(ps.clips.subject[ps.clip].astype(str), "mocap:")
    assert abs(from_files.mean() - 0.5) < 0.01
    assert ps.meta["extra"]["synthetic"]["motion_ratio"] == pytest.approx(from_files.mean())
    procedural = ~np.char.startswith(ps.clips.subject.astype(str), "mocap:")
    assert set(ps.clips.action[procedural]) <= set(DOMAINS["lab"].actions)
    assert np.all(ps.clips.fps == 50.0)  # motion files resampled to the domain's frame rate
    plain = generate("lab", 800, seed=2, seq_seconds=(1.0, 2.0))
    none = generate_mixed("lab", 800, seed=2, motion=library, ratio=0.0, seq_seconds=(1.0, 2.0))
    for name, arr in plain.fields.items():
        assert np.array_equal(arr, none.fields[name], equal_nan=True), name
    # all from the files, more frames than the library holds (reused with other cameras), test split
    only = generate_mixed("outdoor", 400, seed=2, motion=library, ratio=1.0, split="test", fps=30)
    assert len(only) == 400 and set(only.clips.split.tolist()) == {"test"}
    assert np.char.startswith(only.clips.subject.astype(str), "mocap:").all()
    with pytest.raises(ConfigError, match="motion ratio"):
        generate_mixed("lab", 100, motion=library, ratio=1.5)


def test_cli_mixes_motion_files_and_sets_the_depth_quality(library, tmp_path, capsys):
    out = tmp_path / "mix"
    assert main(["synth", "--domain", "outdoor", "--frames", "300", "--seed", "1", "--motion", str(library),
                 "--motion-ratio", "0.25", "--seq-seconds", "1", "2", "--depth-quality", "poor", "--out", str(out),
                 "--no-progress"]) == 0
    assert "depth quality poor (severity 2)" in capsys.readouterr().out
    ps = PoseSet.load(out)
    assert len(ps) == 300 and abs(ps.meta["extra"]["synthetic"]["motion_ratio"] - 0.25) < 0.01
    assert ps.meta["extra"]["synthetic"]["depth_quality"] == {"preset": "poor", "severity": 2.0}
    assert main(["synth", "--frames", "10", "--motion-ratio", "0.5", "--out", str(tmp_path / "x")]) == 2
    assert "--motion-ratio needs --motion" in capsys.readouterr().err
    assert main(["synth", "--frames", "10", "--motion", str(library), "--motion-ratio", "2", "--out",
                 str(tmp_path / "y")]) == 2
    assert "motion ratio must lie in [0, 1]" in capsys.readouterr().err
    assert main(["synth", "--frames", "10", "--depth-quality", "awful", "--out", str(tmp_path / "z")]) == 2
    assert "depth quality" in capsys.readouterr().err
