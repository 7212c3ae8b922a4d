"""Bad-input corpus, part 4: ``auglift infer`` (input video/images, keypoint files, checkpoints and
exported ONNX models) and ``auglift export``.

Same contract as parts 1-3: one ``auglift: error:`` line naming the file, exit status 2, no
traceback, no hang, no allocation of a declared size (``_reliability_fixtures.run_cases``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _infer_fixtures import train_lifter, write_npy_keypoints, write_video
from _reliability_fixtures import (
    Case,
    check_clean_error,
    garbage,
    npy_bytes,
    run_cases,
    shared_results,
    symlink_loop,
    truncate,
)

_BASE: dict[str, Any] = {}
FRAMES = 8


def _base(tmp: Path) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    video = write_video(tmp / "walk.mp4", frames=FRAMES, size=(96, 72), focal=96.0)
    _BASE.update(video=video, mp4=tmp / "walk.mp4", npy=write_npy_keypoints(tmp / "kp.npy", video),
                 ckpt=train_lifter(tmp, model="simple_baseline", channels="xy",
                                   kwargs={"width": 16, "num_blocks": 1, "dropout": 0.0}, epochs=1, steps=2))
    try:
        from auglift.export import export_onnx

        _BASE["onnx"] = export_onnx(_BASE["ckpt"], tmp / "sb.onnx", check=False).path
    except Exception:  # pragma: no cover - the onnx extra is part of the test setup
        _BASE["onnx"] = None


def _infer(d: Path, *, inp: Path | None = None, ckpt: Path | None = None, kp: Path | None = None,
           extra: tuple[str, ...] = ()) -> list[str]:
    return ["infer", str(inp or _BASE["mp4"]), "--checkpoint", str(ckpt or _BASE["ckpt"]), "--keypoints",
            str(kp or _BASE["npy"]), "--out", str(d / "out"), "--device", "cpu", "--depth", "none", "--no-progress",
            *extra]


def _case(variant: str) -> Case:
    def build(d: Path) -> tuple[list[str], list[str]]:
        if variant.startswith("video_"):
            v = d / "in.mp4"
            shutil.copy(_BASE["mp4"], v)
            if variant == "video_empty":
                v.write_bytes(b"")
            elif variant == "video_truncated":
                truncate(v, 0.3)
            elif variant == "video_garbage":
                v.write_bytes(garbage(3000))
            elif variant == "video_loop":
                symlink_loop(v)
            elif variant == "video_missing":
                v.unlink()
            elif variant == "video_non_utf8":
                odd = Path(os.fsdecode(bytes(d) + b"/in\xff.mp4"))
                v.rename(odd)
                truncate(odd, 0.2)
                return _infer(d, inp=odd), ["in\udcff.mp4"]
            return _infer(d, inp=v), ["in.mp4"]
        if variant.startswith("images_"):
            folder = d / "imgs"
            folder.mkdir()
            import cv2

            for i in range(FRAMES):
                cv2.imwrite(str(folder / f"f{i:03d}.png"), np.full((72, 96, 3), 40 * i % 255, np.uint8))
            expect = ["imgs"]
            if variant == "images_none":
                for f in folder.iterdir():
                    f.unlink()
            elif variant == "images_sizes":
                cv2.imwrite(str(folder / "f005.png"), np.zeros((70, 96, 3), np.uint8))
                expect = ["f005.png", "96x70"]
            elif variant == "images_corrupt":
                (folder / "f000.png").write_bytes(garbage(400))
                expect = ["f000.png"]
            elif variant == "images_later_corrupt":
                truncate(folder / "f004.png", 0.3)
                expect = ["f004.png"]
            # without depth or rendering frames are not read at all: render them
            extra = ("--render", str(d / "r.mp4")) if variant in ("images_sizes", "images_later_corrupt") else ()
            return _infer(d, inp=folder, extra=extra), expect
        if variant.startswith("kp_"):
            kp = d / "kp.npy"
            if variant == "kp_joints":
                np.save(kp, np.zeros((FRAMES, 16, 3), np.float32))
                expect = ["kp.npy", "16 joints"]
            elif variant == "kp_frames":
                np.save(kp, np.zeros((FRAMES + 3, 17, 3), np.float32))
                expect = ["kp.npy", "frame count"]
            elif variant == "kp_huge":
                kp.write_bytes(npy_bytes((10**12, 17, 3), "<f4"))
                expect = ["kp.npy"]
            elif variant == "kp_strings":
                np.save(kp, np.full((FRAMES, 17, 3), "x"))
                expect = ["kp.npy", "numeric"]
            elif variant == "kp_all_nan":
                np.save(kp, np.full((FRAMES, 17, 3), np.nan, np.float32))
                expect = ["kp.npy"]
            elif variant == "kp_json_deep":
                kp = d / "kp.json"
                kp.write_text("[" * 100_000 + "]" * 100_000)
                expect = ["kp.json"]
            elif variant == "kp_json_names":
                kp = d / "kp.json"
                kp.write_text(json.dumps([{"image_id": "nonumber.jpg", "keypoints": [1.0, 2.0, 0.9] * 17}]))
                expect = ["kp.json", "frame"]
            else:  # pragma: no cover
                raise ValueError(variant)
            return _infer(d, kp=kp), expect
        # checkpoints and exported models
        if variant == "onnx_garbage":
            m = d / "model.onnx"
            m.write_bytes(garbage(2000))
        elif variant.startswith("onnx_meta_"):
            import onnx

            model = onnx.load(str(_BASE["onnx"]))
            props = {p.key: p for p in model.metadata_props}
            if variant == "onnx_meta_invalid_json":
                props["auglift.model"].value = "{not json"
            elif variant == "onnx_meta_no_model":
                model.metadata_props.remove(props["auglift.model"])
            elif variant == "onnx_meta_encoder":
                props["auglift.encoder"].value = json.dumps({"channels": ["x", "q"]})
            elif variant == "onnx_meta_window":
                info = json.loads(props["auglift.model"].value)
                props["auglift.model"].value = json.dumps(info | {"receptive_field": "wide"})
            elif variant == "onnx_meta_foreign":
                del model.metadata_props[:]
            else:  # pragma: no cover
                raise ValueError(variant)
            m = d / "model.onnx"
            onnx.save(model, str(m))
        elif variant == "ckpt_truncated":
            m = d / "best.pt"
            shutil.copy(_BASE["ckpt"], m)
            truncate(m, 0.5)
        elif variant == "export_truncated":
            m = d / "best.pt"
            shutil.copy(_BASE["ckpt"], m)
            truncate(m, 0.4)
            return ["export", str(m), "--onnx", str(d / "m.onnx")], ["best.pt"]
        else:  # pragma: no cover
            raise ValueError(variant)
        return _infer(d, ckpt=m), [m.name]

    return Case(f"infer-{variant}", build)


INPUTS = [_case(v) for v in ("video_empty", "video_truncated", "video_garbage", "video_loop", "video_missing",
                             "video_non_utf8", "images_none", "images_sizes", "images_corrupt",
                             "images_later_corrupt")]
KEYPOINTS = [_case(v) for v in ("kp_joints", "kp_frames", "kp_huge", "kp_strings", "kp_all_nan", "kp_json_deep",
                                "kp_json_names")]
MODELS = [_case(v) for v in ("onnx_garbage", "onnx_meta_invalid_json", "onnx_meta_no_model", "onnx_meta_encoder",
                             "onnx_meta_window", "onnx_meta_foreign", "ckpt_truncated", "export_truncated")]
CASES = INPUTS + KEYPOINTS + MODELS


def _compute(base: Path) -> dict:
    try:
        _base(base / "base")
        return run_cases([c for c in CASES if _BASE["onnx"] or "onnx" not in c.id], base / "cases")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return shared_results(tmp_path_factory, "bad_infer", _compute)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_malformed_infer_input_gives_one_clear_error(case, results):
    assert case.id in results, "the onnx extra is needed for this case"
    problem = check_clean_error(results[case.id])
    assert not problem, problem


def test_case_count():
    """The corpus size reported in docs/reliability.md."""
    assert [len(g) for g in (INPUTS, KEYPOINTS, MODELS)] == [10, 7, 8]
