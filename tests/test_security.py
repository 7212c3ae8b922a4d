"""Security: no unrestricted unpickling anywhere in ``src/``, hostile pickles and checkpoints are
refused without running their payload, and names read from data or configs cannot make auglift
write outside its output directory.

Every hostile payload here would ``touch`` a marker file when unpickled (or imported); each test
asserts the marker does not exist afterwards, i.e. the side effect did not happen.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from _dataset_fixtures import image_poseset, write_3dpw, write_h36m_mmpose, write_h36m_vp3d, write_pstmo
from _depth_fixtures import make_media_poseset, tiny_transformers_model
from _reliability_fixtures import env_for_child, npy_bytes, tree_snapshot, write_npz
from _train_fixtures import add_uadd, moving_poseset, tiny_config, write_config
from auglift.cli import main
from auglift.errors import DataError
from auglift.poseset import ClipTable, PoseSet

SRC = Path(__file__).resolve().parents[1] / "src" / "auglift"


# ----------------------------------------------------------------------------- the grep/AST rule
def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    """Every call as (dotted callee, node), e.g. ("torch.load", ...), ("np.load", ...), ("pickle.loads", ...)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts = []
            f: ast.AST = node.func
            while isinstance(f, ast.Attribute):
                parts.append(f.attr)
                f = f.value
            parts.append(f.id if isinstance(f, ast.Name) else "<expr>")  # model.to(d).eval() is "<expr>.eval"
            out.append((".".join(reversed(parts)), node))
    return out


def _kw(node: ast.Call, name: str) -> Any:
    for k in node.keywords:
        if k.arg == name:
            return k.value.value if isinstance(k.value, ast.Constant) else "<expr>"
    return "<absent>"


def test_no_unrestricted_unpickling_in_src():
    """``pickle.load(s)``/``Unpickler`` only inside ``auglift.safe_pickle``; every ``torch.load`` passes
    ``weights_only=True`` (a literal); every ``np.load`` passes ``allow_pickle=False``; no
    ``allow_pickle=True``, no other deserialisers of code (marshal, shelve, dill, joblib, yaml.load),
    no ``eval``/``exec``, and no ``from torch/pickle/numpy import load`` aliasing around the rule."""
    problems: list[str] = []
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 40
    checked = {"torch.load": 0, "np.load": 0}
    for f in files:
        text = f.read_text()
        rel = f.relative_to(SRC.parent)
        if "allow_pickle=True" in text:
            problems.append(f"{rel}: allow_pickle=True")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("pickle", "torch", "numpy", "_pickle", "dill",
                                                                   "joblib", "marshal", "shelve", "yaml"):
                bad = [a.name for a in node.names if a.name in ("load", "loads", "Unpickler", "unsafe_load")]
                if bad:
                    problems.append(f"{rel}:{node.lineno}: from {node.module} import {', '.join(bad)}")
            if isinstance(node, ast.Import):
                bad = [a.name for a in node.names if a.name in ("dill", "joblib", "marshal", "shelve", "cloudpickle",
                                                               "_pickle")]
                if bad:
                    problems.append(f"{rel}:{node.lineno}: import {', '.join(bad)}")
        for callee, node in _calls(tree):
            where = f"{rel}:{node.lineno}: {callee}"
            if callee in ("pickle.load", "pickle.loads", "_pickle.load", "_pickle.loads", "yaml.load",
                          "yaml.unsafe_load", "marshal.load", "marshal.loads", "eval", "exec"):
                problems.append(where)
            elif callee.endswith("Unpickler") and rel.name != "safe_pickle.py":
                problems.append(f"{where} (an Unpickler outside auglift.safe_pickle)")
            elif callee in ("torch.load", "torch.serialization.load"):
                checked["torch.load"] += 1
                if _kw(node, "weights_only") is not True:
                    problems.append(f"{where} without weights_only=True")
            elif callee in ("np.load", "numpy.load"):
                checked["np.load"] += 1
                if _kw(node, "allow_pickle") is not False:
                    problems.append(f"{where} without allow_pickle=False")
    assert not problems, "\n".join(problems)
    assert checked["torch.load"] >= 3 and checked["np.load"] >= 3  # the rule is actually looking at calls


def test_the_rule_catches_violations():
    """The checker above flags the patterns it is meant to forbid (so a passing run means something)."""
    bad = ("import pickle\npickle.loads(b'')\n", "import torch\ntorch.load('x')\n",
           "import torch\ntorch.load('x', weights_only=False)\n", "import numpy as np\nnp.load('x')\n",
           "from pickle import loads\n", "eval('1')\n")
    for src in bad:
        tree = ast.parse(src)
        hits = [c for c, n in _calls(tree) if c in ("pickle.loads", "eval") or
                (c == "torch.load" and _kw(n, "weights_only") is not True) or
                (c == "np.load" and _kw(n, "allow_pickle") is not False)]
        imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and any(a.name == "loads"
                                                                                      for a in n.names)]
        assert hits or imports, src


# ----------------------------------------------------------------------------- hostile pickles
class _Payload:
    """Unpickling runs ``fn(*args)``; ``fn`` is a callable that would leave a marker."""

    def __init__(self, fn: Any, args: tuple[Any, ...]):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def _payloads(marker: Path) -> dict[str, bytes]:
    """Pickles that would create ``marker`` through several routes and opcodes."""
    import subprocess as sp

    touch = f"touch {marker}"
    out = {
        "os.system/p2": pickle.dumps({"sequence": "x", "jointPositions": [_Payload(os.system, (touch,))]}, protocol=2),
        "os.system/p5": pickle.dumps({"jointPositions": _Payload(os.system, (touch,))}, protocol=5),
        "subprocess.Popen": pickle.dumps([_Payload(sp.Popen, (["touch", str(marker)],))], protocol=2),
        "builtins.exec": pickle.dumps(_Payload(exec, (f"open({str(marker)!r}, 'w').close()",)), protocol=2),
        "builtins.eval": pickle.dumps(_Payload(eval, (f"open({str(marker)!r}, 'w')",)), protocol=0),
        # protocol 0 INST opcode: class lookup plus instantiation in one step
        "INST os.system": b"(S'" + touch.encode() + b"'\nios\nsystem\n.",
        # getattr chain: builtins.getattr(builtins.object, "__subclasses__")() walks to any class
        "getattr": b"cbuiltins\ngetattr\n(cbuiltins\nobject\nS'__subclasses__'\ntR)R.",
    }
    return out


@pytest.mark.parametrize("route", ["os.system/p2", "os.system/p5", "subprocess.Popen", "builtins.exec",
                                   "builtins.eval", "INST os.system", "getattr"])
def test_hostile_pickles_are_refused_by_the_safe_unpickler(tmp_path, route):
    from auglift.safe_pickle import load_pickle

    marker = tmp_path / "pwned"
    f = tmp_path / "seq.pkl"
    f.write_bytes(_payloads(marker)[route])
    with pytest.raises(DataError, match="not allowed"):
        load_pickle(f)
    assert not marker.exists()


def test_hostile_3dpw_pickle_through_the_cli(tmp_path, capsys):
    marker = tmp_path / "pwned"
    root = tmp_path / "3dpw"
    write_3dpw(root, frames=4)
    pkl = root / "sequenceFiles" / "test" / "downtown_walking_00.pkl"
    pkl.write_bytes(_payloads(marker)["os.system/p2"])
    rc = main(["prepare", "3dpw", "--root", str(root), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "downtown_walking_00.pkl" in err[0] and "posix.system" in err[0], err
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_hostile_dataset_pickles_in_other_containers(tmp_path, capsys):
    """MMPose's cameras.pkl, an object member of VideoPose3D's .npz and of P-STMO's .npz."""
    marker = tmp_path / "pwned"
    evil = _payloads(marker)["os.system/p2"]
    h36m = tmp_path / "h36m"
    write_h36m_mmpose(h36m, splits={"test": ["S9"]}, actions=("Directions_1",), frames=3)
    (h36m / "annotation_body3d" / "cameras.pkl").write_bytes(evil)
    vp3d = tmp_path / "vp3d"
    write_h36m_vp3d(vp3d, subjects=("S9",), actions=("Walking",), frames=3, detections=None)
    write_npz(vp3d / "data_3d_h36m.npz", {"positions_3d": npy_bytes((), "|O", evil)})
    pstmo = tmp_path / "pstmo"
    write_pstmo(pstmo, frames=3)
    write_npz(pstmo / "data_test_3dhp.npz", {"data": npy_bytes((), "|O", evil)})
    for args in (["h36m", "--root", str(h36m)], ["h36m", "--root", str(vp3d), "--layout", "videopose3d"],
                 ["mpi_inf_3dhp", "--root", str(pstmo), "--layout", "pstmo", "--splits", "test"]):
        rc = main(["prepare", *args, "--out", str(tmp_path / "out"), "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "posix.system" in err[0], err
    assert not marker.exists()


# ----------------------------------------------------------------------------- hostile checkpoints
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    from auglift.train import train

    d = tmp_path_factory.mktemp("trained")
    ps = add_uadd(moving_poseset(n_clips=2, frames=12)).save(d / "ps")
    cfg = write_config(d / "c.toml", tiny_config(ps, None, d / "run", kwargs={"width": 16, "num_blocks": 1,
                                                                            "dropout": 0.0}, epochs=1, batch=8))
    return {"ps": ps, "ckpt": train(cfg)}


def test_hostile_checkpoints_are_refused(tmp_path, trained, capsys):
    """A torch file whose pickle runs os.system: auglift eval, load_official, a depth .pth and a
    transformers directory with a pickled pytorch_model.bin all refuse it; the command never runs."""
    from auglift.depth.estimators import DepthAnythingV2
    from auglift.models import load_official

    marker = tmp_path / "pwned"
    evil = _Payload(os.system, (f"touch {marker}",))
    ck = tmp_path / "best.pt"
    torch.save({"format": "auglift.checkpoint", "model": evil, "model_state": {}, "encoder": {}, "config": {}}, ck)
    rc = main(["eval", str(ck), "--data", str(trained["ps"]), "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "best.pt" in err[0] and "posix.system" in err[0], err
    off = tmp_path / "pretrained_h36m_cpn.bin"
    torch.save({"model_pos": {"expand_conv.weight": evil}}, off)
    with pytest.raises(DataError, match="refused to unpickle .*posix.system"):
        load_official("tcn", off)
    pth = tmp_path / "depth_anything_v2_vits.pth"
    torch.save({"pretrained.cls_token": evil}, pth)
    with pytest.raises(DataError, match="posix.system"):
        DepthAnythingV2.from_official(pth)
    hf = tmp_path / "hf"
    tiny_transformers_model().save_pretrained(hf)
    (hf / "model.safetensors").unlink()
    torch.save({"head.conv3.bias": evil}, hf / "pytorch_model.bin")
    with pytest.raises(DataError, match="hf"):
        DepthAnythingV2.from_pretrained(hf)
    assert not marker.exists()


def test_a_checkpoint_cannot_import_code(tmp_path, trained):
    """``model.name = "module:callable"`` in a checkpoint file is refused before anything is imported:
    a module that would leave a marker when imported sits on the path, and stays unimported."""
    marker = tmp_path / "imported"
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "rogue_lifter.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef Lifter(**kw): raise SystemExit\n")
    ck = torch.load(trained["ckpt"], weights_only=True)
    torch.save(ck | {"model": ck["model"] | {"name": "rogue_lifter:Lifter"}}, tmp_path / "rogue.pt")
    env = env_for_child()
    env["PYTHONPATH"] = os.pathsep.join([str(mods), env["PYTHONPATH"]])
    out = subprocess.run([sys.executable, "-m", "auglift", "eval", str(tmp_path / "rogue.pt"), "--data",
                          str(trained["ps"]), "--device", "cpu"], capture_output=True, text=True, env=env, timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr
    assert "model.name" in lines[0] and "rogue_lifter:Lifter" in lines[0] and "register" in lines[0]
    assert not marker.exists()
    # the same lifter registered by the user's own code is built as before
    from auglift.checkpoint import Checkpoint
    from auglift.models import MODELS, register

    register("tiny_sb", "auglift.models.simple_baseline:SimpleBaseline")
    try:
        c = Checkpoint.load(trained["ckpt"])
        c = dataclasses.replace(c, lifter=dataclasses.replace(c.lifter, name="tiny_sb"))
        assert c.build_model() is not None
    finally:
        MODELS.pop("tiny_sb")


# ----------------------------------------------------------------------------- writes stay inside the output
HOSTILE = "../../../escaped"


def _hostile_poseset(root: Path, *, source: str | None = None) -> Path:
    """A small synthetic-world PoseSet whose clip names try to walk out of any directory built from them."""
    from auglift.datasets.synthetic import generate

    ps = generate("lab", 60, 0, seq_seconds=(0.4, 0.6))
    c = ps.clips
    n = len(c)
    cols = {k: v for k, v in c.columns.items()}
    cols |= {"subject": np.array([HOSTILE] * n), "action": np.array([f"/abs{HOSTILE}"] * n),
             "camera": np.array([".."] * n), "split": np.array(["train"] * (n - 1) + ["test"])}
    if source is not None:
        cols["source"] = np.array([source] * n)
    return PoseSet(ps.fields, ClipTable(cols), ps.meta).save(root)


def _escaped(tmp_path: Path) -> list[Path]:
    """Anything created where a traversal from the directories under tmp_path would land."""
    hits = []
    for base in {tmp_path, tmp_path.parent, tmp_path.parent.parent, Path("/abs")}:
        for name in ("escaped", "abs"):
            if (base / name).exists():
                hits.append(base / name)
    return hits


def test_hostile_clip_names_cannot_write_outside(tmp_path, capsys):
    """Subjects/actions/cameras named ``../../../escaped`` and ``/abs/...`` through synth-like data, depth
    extraction (with --save-maps), detections import, train, eval --out and info: every file written is
    inside the PoseSet or the run directory."""
    ps = _hostile_poseset(tmp_path / "work" / "ps")
    before = tree_snapshot(tmp_path, exclude=[tmp_path / "work"])
    assert main(["depth", str(ps), "--model", "oracle", "--oracle-size", "32x32", "--mode", "fast", "--save-maps",
                 "--no-progress"]) == 0
    assert (ps / ".depth_chunks").is_dir()
    det = tmp_path / "work" / "det.npy"
    np.save(det, np.asarray(PoseSet.load(ps).kp2d_gt))
    assert main(["detections", "import", str(det), "--poseset", str(ps), "--format", "npy", "--out",
                 str(tmp_path / "work" / "ps_det"), "--no-progress"]) == 0
    cfg = write_config(tmp_path / "work" / "c.toml", tiny_config(ps, ps, tmp_path / "work" / "run", epochs=1,
                                                                 batch=16, kwargs={"width": 16, "num_blocks": 1}))
    assert main(["train", str(cfg)]) == 0
    assert main(["eval", str(tmp_path / "work" / "run" / "best.pt"), "--data", str(ps), "--out",
                 str(tmp_path / "work" / "eval"), "--device", "cpu"]) == 0
    assert main(["info", str(ps)]) == 0
    capsys.readouterr()
    assert tree_snapshot(tmp_path, exclude=[tmp_path / "work"]) == before
    assert not _escaped(tmp_path)
    report = json.loads((tmp_path / "work" / "eval" / "eval.json").read_text())
    assert HOSTILE in json.dumps(report)  # the names are reported as data, not used as paths


def test_hostile_names_from_dataset_files_cannot_write_outside(tmp_path, capsys):
    """Human3.6M image names and a 3DPW sequence name with ``..`` components, and detection file
    names pointing outside: prepare/import write only under --out."""
    root = tmp_path / "in"
    write_h36m_mmpose(root / "h36m", splits={"test": ["S9"]}, actions=("Directions_1",), frames=3)
    npz = root / "h36m" / "annotation_body3d" / "fps50" / "h36m_test.npz"
    with np.load(npz) as z:
        data = {k: z[k] for k in z.files}
    data["imgname"] = np.array([f"../../../escaped/{n}" for n in data["imgname"]])
    np.savez(npz, **data)
    write_3dpw(root / "3dpw", frames=4)
    pkl = root / "3dpw" / "sequenceFiles" / "test" / "downtown_walking_00.pkl"
    seq = pickle.loads(pkl.read_bytes(), encoding="latin1")
    pkl.write_bytes(pickle.dumps(seq | {"sequence": "../../../escaped/{frame:99999999999d}"}, protocol=2))
    names = [{"image_id": f"../../../../escaped/{i}.jpg", "keypoints": [1.0, 2.0, 1.0] * 17} for i in range(3)]
    (root / "det.json").write_text(json.dumps(names))
    before = tree_snapshot(tmp_path, exclude=[tmp_path / "out"])
    for ds in ("h36m", "3dpw"):
        assert main(["prepare", ds, "--root", str(root / ds), "--out", str(tmp_path / "out" / ds), "--no-progress"]) \
            == 0, capsys.readouterr().err
    ps3 = PoseSet.load(tmp_path / "out" / "3dpw" / "test")
    src = str(ps3.clips.source[0])
    assert "{{frame:99999999999d}}" in src  # the name stays literal inside the image pattern
    img_ps = image_poseset(1, 3).save(tmp_path / "out" / "img")
    rc = main(["detections", "import", str(root / "det.json"), "--poseset", str(img_ps), "--no-progress"])
    assert rc == 2  # nothing matches: a clean error, nothing written
    capsys.readouterr()
    assert tree_snapshot(tmp_path, exclude=[tmp_path / "out"]) == before
    assert not _escaped(tmp_path)


def test_hostile_splits_and_matrix_names_are_refused(tmp_path, trained, capsys):
    from auglift.datasets.common import write_splits
    from auglift.matrix import load_matrix_config

    ps = PoseSet.load(trained["ps"])
    cols = dict(ps.clips.columns) | {"split": np.array([HOSTILE] * len(ps.clips))}
    bad = PoseSet(ps.fields, ClipTable(cols), ps.meta)
    with pytest.raises(DataError, match="cannot name an output directory"):
        write_splits(bad, tmp_path / "out")
    for table, key in (("train_sets", HOSTILE), ("test_sets", "..")):
        cfg = {"matrix": {"out": str(tmp_path / "run"), "lifters": ["simple_baseline"], "inputs": ["xy"]},
               "train_sets": {"lab": {"path": str(trained["ps"])}}, "test_sets": {"lab": {"path": str(trained["ps"])}}}
        cfg[table] = {key: {"path": str(trained["ps"])}}
        with pytest.raises(Exception, match="cannot be used as a name"):
            load_matrix_config(cfg)
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists() and not _escaped(tmp_path)


def test_frames_from_absolute_and_parent_sources_are_read_as_documented(tmp_path, capsys):
    """Reading frames through an absolute ``source``, a ``..`` source or an absolute ``frame_root`` is
    allowed (README: relative sources are relative to ``frame_root``, which converters store as an
    absolute path); the extraction still writes only inside the PoseSet."""
    media_ps = make_media_poseset(tmp_path / "data", frames=(4, 3), w=32, h=24)
    meta = json.loads((media_ps / "meta.json").read_text())
    media = Path(meta["frame_root"])
    src = np.load(media_ps / "clips" / "source.npy")
    # clip 0 by absolute path, clip 1 through "..": frame_root = media/sub
    (media / "sub").mkdir()
    np.save(media_ps / "clips" / "source.npy", np.array([str(media / src[0]), f"../{src[1]}"]))
    meta["frame_root"] = str(media / "sub")
    (media_ps / "meta.json").write_text(json.dumps(meta))
    from _depth_fixtures import ShadeEstimator
    from auglift.depth.extract import extract_uadd

    before = tree_snapshot(tmp_path, exclude=[media_ps])
    res = extract_uadd(media_ps, ShadeEstimator(), chunk_frames=2, progress=False)
    assert res.merged and res.rows == 7
    assert tree_snapshot(tmp_path, exclude=[media_ps]) == before

