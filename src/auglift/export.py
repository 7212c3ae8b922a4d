"""Export a trained lifter to ONNX, with its input encoding recorded in the model's metadata.

``export_onnx(checkpoint, "model.onnx")`` rebuilds the checkpoint's lifter (eval mode, CPU) and
exports it with PyTorch's ``torch.onnx`` exporter (the ``torch.export``-based one, which needs
``onnxscript``; both are in the ``onnx`` extra):

* input ``x``: ``(batch, T, J, C)`` float32, the batch axis dynamic and the window length ``T``
  fixed to the lifter's receptive field; ``C`` channels encoded exactly as
  :func:`auglift.encoding.encode_arrays` does with the checkpoint's encoder state;
* output ``y``: ``(batch, T_out, J, 3)`` float32 metres (``T_out`` 1 for many-to-one lifters, ``T``
  for many-to-many ones); the lifters do not zero the root joint: subtract joint 0 for
  root-relative poses, as ``auglift eval``/``infer`` do.

Metadata (``metadata_props``, strings; JSON where marked): ``auglift.format``,
``auglift.version``, ``auglift.model`` (JSON: name, kwargs, in/out shapes, receptive field,
many-to-many, causal, window anchor), ``auglift.channels`` (comma-separated), ``auglift.encoder``
(JSON: the encoder state :func:`auglift.encoding.fit` made), ``auglift.depth_model`` (JSON: the
training set's depth model and descriptor options), ``auglift.joint_set``,
``auglift.joint_names`` (JSON), ``auglift.flip_permutation`` (JSON, for a flip test),
``auglift.flip_center``, ``auglift.flip_test`` (JSON), ``auglift.input``/``auglift.output`` (shape
descriptions) and ``auglift.checkpoint`` (file name and SHA-256). :func:`read_onnx_metadata`
decodes them.

The metadata is all that inference needs: :func:`checkpoint_from_onnx` turns it into the
:class:`~auglift.checkpoint.Checkpoint` :func:`auglift.predict.predict` reads, and :class:`OnnxLifter` runs the model
with onnxruntime behind the ``torch.nn.Module`` interface, so ``auglift infer --checkpoint
model.onnx`` lifts with onnxruntime (on CPU about 1.6-2x PyTorch's speed for the transformer
lifters, ``benchmarks/bench_infer.py``).

After writing, the file is run with ``onnxruntime`` on a random batch of another size than the
one traced, and compared with PyTorch (``check=True``: an error above ``atol`` metres).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from auglift import __version__
from auglift.checkpoint import Checkpoint, LifterSpec, Provenance, parse_encoder
from auglift.config import AugmentSection, TrainConfig
from auglift.errors import AugliftError, ConfigError, DataError, need_extra, one_line
from auglift.io import PathLike, sha256_file, write_file
from auglift.outputs import claim
from auglift.skeleton import get_joint_set

__all__ = ["ExportResult", "OnnxLifter", "checkpoint_from_onnx", "export_onnx", "read_onnx_metadata", "run_onnx"]

ONNX_FORMAT = "auglift.onnx-lifter"
_JSON_KEYS = ("auglift.model", "auglift.encoder", "auglift.depth_model", "auglift.joint_names",
              "auglift.flip_permutation", "auglift.flip_test", "auglift.checkpoint")


@dataclass(frozen=True)
class ExportResult:
    """Where the model went, its input shape ``(batch, T, J, C)``, and the onnxruntime-vs-PyTorch check."""

    path: Path
    input_shape: tuple[str | int, ...]
    output_shape: tuple[str | int, ...]
    max_abs_diff: float | None  # metres, None when not checked
    metadata: dict[str, str]


def _need(module: str) -> Any:
    """An optional dependency of the ``onnx`` extra, imported on first use."""
    return need_extra(module, "ONNX export needs", "onnx", "onnx, onnxruntime, onnxscript")


def export_onnx(checkpoint: PathLike | Checkpoint, out: PathLike, *, opset: int | None = None,
                check: bool = True, atol: float = 1e-4, seed: int = 0, overwrite: bool = False) -> ExportResult:
    """Export the checkpoint's lifter to ``out`` (``.onnx``) with the encoding in its metadata (see module doc).

    Args:
        checkpoint: an ``auglift train`` checkpoint (path, or a loaded :class:`~auglift.checkpoint.Checkpoint`).
        out: the ONNX file to write (atomically).
        opset: ONNX opset (default: the exporter's).
        check: run the file with onnxruntime and compare with PyTorch; raise if the largest absolute
            difference exceeds ``atol`` (metres).
        seed: seed of the random inputs used for tracing and checking.
        overwrite: replace an existing ``out`` that is not a model exported by auglift.
    """
    onnx = _need("onnx")
    _need("onnxscript")
    if Path(out).suffix.lower() != ".onnx":
        raise ConfigError(f"--onnx: expected a file name ending in .onnx, got {out}")
    claim(out, "onnx", overwrite=overwrite)  # before any work
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else Checkpoint.load(checkpoint)
    info = ckpt.lifter
    model = ckpt.build_model("cpu")
    shape = (info.receptive_field, info.num_joints, info.in_channels)
    g = torch.Generator().manual_seed(seed)
    dst = Path(out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    proto = onnx.load_from_string(_trace(model, torch.randn(2, *shape, generator=g), opset, ckpt,
                                         dst.parent / f".{dst.name}.export.tmp"))
    meta = _metadata(ckpt)
    onnx.helper.set_model_props(proto, meta)  # replaces the exporter's metadata_props
    proto.producer_name = "auglift"
    proto.producer_version = __version__
    proto.doc_string = (f"auglift lifter {info.name} (input {ckpt.encoder.label}), exported from "
                        f"{meta['auglift.checkpoint']}")
    data = proto.SerializeToString()
    diff = None
    if check:
        xc = torch.randn(3, *shape, generator=g)
        with torch.inference_mode():
            ref = model(xc).numpy()
        got = run_onnx(data, xc.numpy())
        if got.shape != ref.shape:
            raise DataError(dst, "y", f"onnxruntime returned shape {got.shape}, PyTorch {ref.shape}")
        diff = float(np.abs(got - ref).max())
        if not diff <= atol:
            raise DataError(dst, "y", f"onnxruntime output differs from PyTorch by {diff:.3g} m (> {atol:g})")
    write_file(dst, data)
    return ExportResult(dst, ("batch", *shape), ("batch", info.frames_out, info.num_joints, 3), diff, meta)


def _trace(model: torch.nn.Module, x: torch.Tensor, opset: int | None, ckpt: Checkpoint, tmp: Path) -> bytes:
    """The ONNX model of ``model`` traced on ``x (2, T, J, C)`` with a dynamic batch axis, through the temporary
    file ``tmp`` (removed again; the exporter's output is hushed)."""
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            quiet.setLevel(logging.ERROR)  # the exporter logs a line per optional op library it skips
            torch.onnx.export(model, (x,), str(tmp), dynamo=True, input_names=["x"], output_names=["y"],
                              dynamic_shapes=({0: torch.export.Dim("batch")},), external_data=False,
                              opset_version=opset)
        return tmp.read_bytes()
    except AugliftError:
        raise
    except Exception as exc:
        why = one_line(exc, 300) or type(exc).__name__  # torch's messages hold ANSI colours and many lines
        raise DataError(ckpt.path, "model", f"ONNX export of lifter {ckpt.lifter.name!r} failed "
                                            f"({type(exc).__name__}: {why})") from None
    finally:
        quiet.setLevel(level)
        with contextlib.suppress(OSError):
            tmp.unlink()


def _metadata(ckpt: Checkpoint) -> dict[str, str]:
    """The ``auglift.*`` metadata entries (strings; JSON where the module doc says)."""
    info, state, src = ckpt.lifter, ckpt.encoder, ckpt.path
    t, j = info.receptive_field, info.num_joints
    js = get_joint_set(ckpt.provenance.joint_set)
    return {
        "auglift.format": ONNX_FORMAT,
        "auglift.version": __version__,
        "auglift.model": json.dumps(info.to_dict()),
        "auglift.channels": ",".join(state.channels),
        "auglift.encoder": json.dumps(state.to_dict()),
        "auglift.depth_model": json.dumps(ckpt.provenance.depth_model),
        "auglift.joint_set": js.name,
        "auglift.joint_names": json.dumps(list(js.joints)),
        "auglift.flip_permutation": json.dumps(js.flip_permutation.tolist()),
        "auglift.flip_center": ckpt.config.augment.flip_center,
        "auglift.flip_test": json.dumps(ckpt.config.augment.flip_test),
        "auglift.input": f"x: (batch, {t}, {j}, {info.in_channels}) float32, per joint the channels "
                         f"{','.join(state.channels)} encoded by auglift.encoding.encode_arrays with the state in "
                         "auglift.encoder",
        "auglift.output": f"y: (batch, {info.frames_out}, {j}, 3) float32 metres, camera frame; subtract joint 0 "
                          "for root-relative poses",
        "auglift.checkpoint": json.dumps({"file": src.name if src else None,
                                          "sha256": sha256_file(src) if src and src.is_file() else None}),
    }


def _session(model: PathLike | bytes, *, threads: int | None = None, device: str = "cpu") -> Any:
    """An onnxruntime session of ``model`` (its warnings hushed) on the CPU, with CUDA first when ``device`` is a
    CUDA device and onnxruntime has the CUDA provider; ``threads``: intra-op threads (default: all cores)."""
    ort = _need("onnxruntime")
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = int(threads)
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), so, providers=providers)


def run_onnx(model: PathLike | bytes, x: np.ndarray) -> np.ndarray:
    """Run an exported lifter with onnxruntime (CPU) on encoded inputs ``x (B, T, J, C)`` float32."""
    return _session(model).run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]


def read_onnx_metadata(path: PathLike) -> dict[str, Any]:
    """The ``auglift.*`` metadata of an exported model, JSON values decoded (keys without the prefix)."""
    onnx = _need("onnx")
    p = Path(path)
    if not p.is_file():
        raise DataError(p, None, "ONNX file not found")
    try:
        proto = onnx.load(str(p), load_external_data=False)
    except Exception as exc:
        raise DataError(p, None, f"not an ONNX model ({type(exc).__name__})") from None
    props = {m.key: m.value for m in proto.metadata_props}
    if props.get("auglift.format") != ONNX_FORMAT:
        raise DataError(p, "metadata_props", f"not an auglift lifter export (expected auglift.format = {ONNX_FORMAT})")
    out: dict[str, Any] = {}
    for k, v in props.items():
        if not k.startswith("auglift."):
            continue
        try:
            out[k.removeprefix("auglift.")] = json.loads(v) if k in _JSON_KEYS else v
        except (json.JSONDecodeError, RecursionError):
            raise DataError(p, k, "metadata value is not valid JSON") from None
    for key in ("model", "encoder"):
        if key not in out:
            raise DataError(p, f"auglift.{key}", "missing from the model's metadata")
    parse_encoder(out["encoder"], LifterSpec.from_dict(out["model"], p), p)
    return out


def checkpoint_from_onnx(path: PathLike) -> Checkpoint:
    """The checkpoint (lifter, encoder, flip settings, provenance; no weights) an exported model's metadata records."""
    p = Path(path)
    meta = read_onnx_metadata(p)
    lifter = LifterSpec.from_dict(meta["model"], p)
    try:
        augment = AugmentSection(flip_center=meta.get("flip_center", "root"),
                                 flip_test=bool(meta.get("flip_test", True)))
    except ConfigError as exc:
        raise DataError(p, "auglift.flip_center", str(exc)) from None
    return Checkpoint(lifter, parse_encoder(meta["encoder"], lifter, p), TrainConfig(augment=augment), {},
                      Provenance.of(str(meta.get("joint_set", "h36m17")), meta.get("depth_model"), "checkpoint", p),
                      path=p, onnx=True)


class OnnxLifter(torch.nn.Module):
    """An exported lifter run by onnxruntime, as a ``torch.nn.Module``: ``forward(x (B, T, J, C)) -> (B, T_out, J, 3)``.

    Has the lifter attributes ``receptive_field``, ``many_to_many`` and ``causal`` from the metadata, so
    :func:`auglift.predict.predict` and :func:`auglift.infer.infer` use it like the PyTorch model. Runs on
    the CPU (or CUDA when ``device`` is a CUDA device and onnxruntime has the CUDA provider).
    """

    def __init__(self, path: PathLike, *, threads: int | None = None, device: str = "cpu"):
        super().__init__()
        info = checkpoint_from_onnx(path).lifter
        self.receptive_field, self.many_to_many, self.causal = info.receptive_field, info.many_to_many, info.causal
        self.session = _session(path, threads=threads, device=device)
        self.path = Path(path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.session.run(None, {"x": x.detach().to("cpu", torch.float32).contiguous().numpy()})[0]
        return torch.from_numpy(y).to(x.device)
