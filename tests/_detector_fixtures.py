"""Tiny randomly initialised ONNX models with the signatures of MMDeploy's RTMDet and RTMPose exports.

* :func:`make_rtmdet`: ``input (N|1, 3, H, W)`` float32 -> ``dets (N, K, 5)`` ``[x0, y0, x1, y1,
  score]`` in input pixels, ``labels (N, K)`` int64. Box ``k`` is ``base[k]`` plus a random
  linear function of the image's channel means (``jitter``); its score is
  ``sigmoid(gain * mean(input) + bias[k])``, so a dark frame scores near 0 (nobody) and a bright
  one near 1 when ``bias`` is small.
* :func:`make_rtmpose`: ``input (N|1, 3, h, w)`` -> ``simcc_x (N, J, 2w)``, ``simcc_y (N, J, 2h)``:
  random linear maps of a 2x2 average-pooled crop, plus ``peaks`` (a bump of height ``score`` at
  the given bins) when a test needs keypoints at known crop positions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(nodes: list, inputs: list, outputs: list, inits: dict[str, np.ndarray], path: Path) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs,
                              [numpy_helper.from_array(np.asarray(v), name=k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_rtmdet(path: Path, *, base: np.ndarray | None = None, bias: np.ndarray | None = None, gain: float = 10.0,
                jitter: float = 0.0, size: tuple[int, int] = (640, 640), batch: int | str = "N", num: int = 6,
                seed: int = 0, output_names: tuple[str, str] = ("dets", "labels")) -> Path:
    """An RTMDet-like end-to-end detector (see the module doc); ``base (K, 4)`` boxes in input px."""
    rng = np.random.default_rng(seed)
    h, w = size
    if base is None:
        x0 = rng.uniform(0, w * 0.6, num)
        y0 = rng.uniform(0, h * 0.6, num)
        base = np.stack([x0, y0, x0 + rng.uniform(40, w * 0.4, num), y0 + rng.uniform(80, h * 0.4, num)], -1)
    base = np.asarray(base, dtype=np.float32)
    k = len(base)
    bias = rng.normal(0, 1, k) if bias is None else np.asarray(bias)
    inits = {"base": base[None], "proj": (jitter * rng.normal(0, 1, (3, k * 4))).astype(np.float32),
             "shape_k4": np.array([-1, k, 4], np.int64), "gain": np.array(gain, np.float32),
             "bias": bias.astype(np.float32)[None],
             "axis2": np.array([2], np.int64), "zero": np.array(0.0, np.float32)}
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled4"]),
        helper.make_node("Flatten", ["pooled4"], ["pooled"]),  # (N, 3) channel means
        helper.make_node("MatMul", ["pooled", "proj"], ["jit_flat"]),
        helper.make_node("Reshape", ["jit_flat", "shape_k4"], ["jit"]),
        helper.make_node("Add", ["base", "jit"], ["boxes"]),  # (N, K, 4)
        helper.make_node("ReduceMean", ["pooled"], ["m"], axes=[1], keepdims=1),  # (N, 1)
        helper.make_node("Mul", ["m", "gain"], ["mg"]),
        helper.make_node("Add", ["mg", "bias"], ["logit"]),  # (N, K)
        helper.make_node("Sigmoid", ["logit"], ["score"]),
        helper.make_node("Unsqueeze", ["score", "axis2"], ["score3"]),
        helper.make_node("Concat", ["boxes", "score3"], [output_names[0]], axis=2),
        helper.make_node("Mul", ["score", "zero"], ["zeros"]),
        helper.make_node("Cast", ["zeros"], [output_names[1]], to=TensorProto.INT64),
    ]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, h, w])]
    outputs = [helper.make_tensor_value_info(output_names[0], TensorProto.FLOAT, [batch, k, 5]),
               helper.make_tensor_value_info(output_names[1], TensorProto.INT64, [batch, k])]
    return _save(nodes, inputs, outputs, inits, path)


def spread_peaks(num_joints: int, size: tuple[int, int], ratio: float = 2.0) -> np.ndarray:
    """``(J, 2)`` SimCC bins (x, y) that put the joints on a grid over the middle of a ``size (h, w)`` crop."""
    h, w = size
    gx = np.linspace(0.3, 0.7, 4)
    gy = np.linspace(0.2, 0.8, -(-num_joints // 4))
    xy = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)[:num_joints]
    return np.round(xy * [w * ratio, h * ratio]).astype(np.int64)


def make_rtmpose(path: Path, *, num_joints: int = 17, size: tuple[int, int] = (256, 192), batch: int | str = "N",
                 peaks: np.ndarray | None = None, score: float = 0.9, noise: float = 0.05, seed: int = 0,
                 output_names: tuple[str, str] = ("simcc_x", "simcc_y")) -> Path:
    """An RTMPose-like SimCC model (see the module doc); ``peaks (J, 2)`` bins (x, y) or None."""
    rng = np.random.default_rng(seed)
    h, w = size
    wx, wy = 2 * w, 2 * h
    bx = rng.uniform(0, 0.3, (num_joints, wx)).astype(np.float32)
    by = rng.uniform(0, 0.3, (num_joints, wy)).astype(np.float32)
    if peaks is not None:
        bx[np.arange(num_joints), peaks[:, 0]] = score
        by[np.arange(num_joints), peaks[:, 1]] = score
    inits = {"wx": (noise * rng.normal(0, 1, (12, num_joints * wx))).astype(np.float32),
             "wy": (noise * rng.normal(0, 1, (12, num_joints * wy))).astype(np.float32),
             "bx": bx[None], "by": by[None],
             "shape_x": np.array([-1, num_joints, wx], np.int64), "shape_y": np.array([-1, num_joints, wy], np.int64)}
    nodes = [
        helper.make_node("AveragePool", ["input"], ["pool"], kernel_shape=[h // 2, w // 2], strides=[h // 2, w // 2]),
        helper.make_node("Flatten", ["pool"], ["feat"]),  # (N, 12)
        helper.make_node("MatMul", ["feat", "wx"], ["fx"]),
        helper.make_node("Reshape", ["fx", "shape_x"], ["rx"]),
        helper.make_node("Add", ["rx", "bx"], [output_names[0]]),
        helper.make_node("MatMul", ["feat", "wy"], ["fy"]),
        helper.make_node("Reshape", ["fy", "shape_y"], ["ry"]),
        helper.make_node("Add", ["ry", "by"], [output_names[1]]),
    ]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, h, w])]
    outputs = [helper.make_tensor_value_info(output_names[0], TensorProto.FLOAT, [batch, num_joints, wx]),
               helper.make_tensor_value_info(output_names[1], TensorProto.FLOAT, [batch, num_joints, wy])]
    return _save(nodes, inputs, outputs, inits, path)


def make_yolox_raw(path: Path, *, size: tuple[int, int] = (640, 640)) -> Path:
    """A detector exported without NMS (``(N, A, 4)`` boxes, ``(N, A, 80)`` class scores): the wrong signature."""
    h, w = size
    inits = {"shape_a4": np.array([-1, 300, 4], np.int64), "shape_a80": np.array([-1, 300, 80], np.int64),
             "pw": np.ones((3, 1200), np.float32), "cw": np.ones((3, 24000), np.float32)}
    nodes = [helper.make_node("GlobalAveragePool", ["input"], ["p4"]), helper.make_node("Flatten", ["p4"], ["p"]),
             helper.make_node("MatMul", ["p", "pw"], ["b"]), helper.make_node("Reshape", ["b", "shape_a4"], ["boxes"]),
             helper.make_node("MatMul", ["p", "cw"], ["c"]),
             helper.make_node("Reshape", ["c", "shape_a80"], ["scores"])]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, h, w])]
    outputs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", 300, 4]),
               helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 300, 80])]
    return _save(nodes, inputs, outputs, inits, path)
