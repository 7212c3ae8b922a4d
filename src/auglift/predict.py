"""Lifting a PoseSet with a trained lifter: the one prediction path of eval, infer, matrix, export and training.

:func:`predict` encodes windows of a PoseSet exactly as training did (the checkpoint's encoder),
runs the lifter in batches of windows (no per-frame Python loop), optionally averages with the
prediction for the left/right-mirrored input (flip test), and maps window predictions back to
PoseSet rows (:class:`Prediction`). Many-to-one lifters get one window per frame (edge padding
at clip ends); many-to-many ones read clips every window length and overlapping predictions
are averaged. :func:`predict_windows` is the batched core, also used for validation during
training. :func:`open_checkpoint` opens a checkpoint or an exported ONNX model and
:func:`lifter_module` makes its runnable lifter; :func:`resolve_device` is the device rule of
every command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from auglift.checkpoint import Checkpoint, LifterSpec
from auglift.encoding import EncoderState, check_compatible, encode, flip_input, flip_pose
from auglift.errors import ConfigError, short
from auglift.export import OnnxLifter, checkpoint_from_onnx
from auglift.heap import reuse_freed_memory
from auglift.io import PathLike, tqdm_disable
from auglift.poseset import PoseSet, Windows
from auglift.skeleton import get_joint_set

__all__ = ["Prediction", "amp_dtype", "auto_batch", "lifter_module", "open_checkpoint", "poseset_name", "predict",
           "predict_windows", "resolve_amp", "resolve_device", "scatter_rows", "windows_for"]


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"runtime.device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"runtime.device: {short(name)} requested but CUDA is not available")
    return dev


def resolve_amp(amp: str, device: torch.device) -> str:
    """``amp`` with ``"auto"`` made concrete for ``device``: ``"bf16"`` where it has bf16 kernels (a CPU
    with oneDNN bf16 support: AVX512-BF16 or AMX; a CUDA GPU with bf16), else ``"none"``."""
    if amp != "auto":
        return amp
    native = (torch.cuda.is_bf16_supported() if device.type == "cuda"
              else device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return "bf16" if native else "none"


def amp_dtype(amp: str) -> torch.dtype | None:
    """The autocast dtype of an ``amp`` setting (``"bf16"``, ``"fp16"``), None for ``"none"``."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)


def open_checkpoint(checkpoint: PathLike | Checkpoint) -> Checkpoint:
    """A checkpoint from a file, from an exported ``.onnx`` model's metadata, or ``checkpoint`` itself."""
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    if Path(checkpoint).suffix.lower() == ".onnx":
        return checkpoint_from_onnx(checkpoint)
    return Checkpoint.load(checkpoint)


def lifter_module(ckpt: Checkpoint, device: str | torch.device = "cpu") -> nn.Module:
    """The checkpoint's lifter on ``device`` in eval mode; onnxruntime behind the ``nn.Module`` interface
    for an exported model."""
    if ckpt.onnx:
        assert ckpt.path is not None
        return OnnxLifter(ckpt.path, device=str(device))
    return ckpt.build_model(device)


def poseset_name(ps: PoseSet) -> str:
    """A PoseSet's name for reports and progress bars: its directory name, else its ``meta["source"]``."""
    return ps.path.name if ps.path is not None else str(ps.meta.get("source", "poseset"))


def auto_batch(window: int, frames: int = 65536) -> int:
    """Windows per inference batch so that a batch holds about ``frames`` frames (at most 4096 windows)."""
    return int(max(1, min(4096, frames // max(1, window))))


CLIP_FRAMES = 2048  # input frames per whole-clip batch (before the flip test doubles it): bounds memory


def predict_windows(
    model: nn.Module,
    state: EncoderState,
    ps: PoseSet,
    windows: Windows,
    sel: np.ndarray | None = None,
    *,
    batch_size: int = 0,
    flip_test: bool = True,
    flip_center: str = "root",
    device: str | torch.device = "cpu",
    amp: str = "none",
    progress: bool | None = False,
    desc: str = "predict",
    clip_frames: int = CLIP_FRAMES,
) -> np.ndarray:
    """Predict windows ``sel`` (indices into ``windows``, default all): ``(M, T_out, J, 3)`` float32 metres.

    ``T_out`` is 1 for many-to-one windows (``windows.target`` set) and the window length for
    many-to-many ones. The model is used as given (call ``model.eval()`` first).

    A lifter with ``whole_clip = True`` (the TCN: ``T`` input frames give ``T - window + 1``
    outputs) predicts runs of consecutive selected windows in one pass over the run's frames,
    edge-padded at clip ends like the windows (VideoPose3D's evaluation), in chunks of at most
    ``clip_frames`` input frames per batch (bounds memory); runs shorter than half a window go
    through per-window batches of ``batch_size`` windows. Both give the same outputs.
    """
    sel = np.arange(len(windows)) if sel is None else np.asarray(sel, dtype=np.int64)
    perm = torch.as_tensor(get_joint_set(ps.meta["joint_set"]).flip_permutation, device=device)
    t_out = 1 if windows.target is not None else windows.length
    out = np.empty((len(sel), t_out, ps.num_joints, 3), dtype=np.float32)
    dtype = amp_dtype(amp)

    def run(rows: np.ndarray) -> np.ndarray:  # encoded rows (B, L) -> predictions (B, L - window + 1, J, 3)
        x = torch.from_numpy(encode(ps, rows, state)).to(device)
        with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            if not flip_test:
                return model(x).float().cpu().numpy()
            xf = flip_input(x, perm, state.channels, center=flip_center, root=state.root)
            y = model(torch.cat([x, xf])).float()
            return (0.5 * (y[:len(x)] + flip_pose(y[len(x):], perm))).cpu().numpy()  # the mirrored half mirrored back

    chunks: list[tuple[np.ndarray, np.ndarray]] = []  # (positions in sel (B, n), input rows (B, n + T - 1))
    single = np.arange(len(sel))
    if windows.target is not None and getattr(model, "whole_clip", False):
        chunks, single = _clip_chunks(windows, sel, clip_frames)
    bs = batch_size or auto_batch(windows.length)
    with torch.inference_mode(), reuse_freed_memory(), tqdm(total=len(sel), desc=desc, unit="win", unit_scale=True,
                                                            disable=tqdm_disable(progress), leave=False) as bar:
        for pos, rows in chunks:
            y = run(rows)
            keep = pos >= 0
            out[pos[keep], 0] = y[keep]
            bar.update(int(keep.sum()))
        for s in range(0, len(single), bs):
            idx = single[s: s + bs]
            y = run(windows.rows(sel[idx]))
            if y.shape[1] != t_out:
                raise ValueError(f"lifter returned {y.shape[1]} frames per window, expected {t_out}")
            out[idx] = y
            bar.update(len(idx))
    return out


def _clip_chunks(windows: Windows, sel: np.ndarray, clip_frames: int
                 ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Whole-clip batches of the many-to-one windows ``sel``: runs of consecutive windows of one clip,
    cut into chunks of at most ``clip_frames - T + 1`` outputs, chunks of equal (rounded-up) length
    batched together up to ``clip_frames`` input frames. Returns ``[(pos (B, n), rows (B, n + T - 1))]``
    (``pos``: positions in ``sel``, -1 where a chunk is padded past its run's end) and the positions
    of windows left to the per-window path (runs shorter than half a window)."""
    t = windows.length
    c, lo = windows.centers[sel], windows.lo[sel]
    order = np.lexsort((c, lo))
    c, lo, hi = c[order], lo[order], windows.hi[sel][order]
    brk = np.flatnonzero((np.diff(c) != 1) | (np.diff(lo) != 0)) + 1
    r_start = np.concatenate([[0], brk]).astype(np.int64)
    r_len = np.diff(np.concatenate([r_start, [len(c)]])).astype(np.int64)
    short = r_len < max(2, t // 2)
    single = order[np.repeat(short, r_len)]
    r_start, r_len = r_start[~short], r_len[~short]
    k_max = max(t, clip_frames - t + 1)
    n_chunks = -(-r_len // k_max)
    first = np.repeat(r_start, n_chunks) + k_max * (np.arange(n_chunks.sum()) - np.repeat(np.cumsum(n_chunks)
                                                                                      - n_chunks, n_chunks))
    n = np.minimum(k_max, np.repeat(r_start + r_len, n_chunks) - first)
    step = 32
    n_pad = -(-n // step) * step
    chunks = []
    for length in np.unique(n_pad):
        ids = np.flatnonzero(n_pad == length)
        per = max(1, clip_frames // int(length + t - 1))
        for s in range(0, len(ids), per):
            k = ids[s: s + per]
            j = np.arange(length)
            inside = j < n[k, None]
            pos = np.where(inside, order[np.minimum(first[k, None] + j, len(c) - 1)], -1)
            start = c[first[k]] + windows.offsets[0]
            rows = np.clip(start[:, None] + np.arange(length + t - 1), lo[first[k], None], hi[first[k], None])
            chunks.append((pos, rows))
    return chunks, single


@dataclass(frozen=True)
class Prediction:
    """Per-row predictions of a PoseSet: ``pred (M, J, 3)`` metres root-relative, for ``rows (M,)``."""

    pred: np.ndarray
    rows: np.ndarray


def windows_for(ps: PoseSet, lifter: LifterSpec, *, clips: np.ndarray | None = None, stride: int = 0) -> Windows:
    """The evaluation windows of a lifter: every frame once (stride 1, or the window length if many-to-many)."""
    if stride <= 0:
        stride = lifter.receptive_field if lifter.anchor == "start" else 1
    return ps.windows(lifter.receptive_field, stride=stride, anchor=lifter.anchor, pad="edge", clips=clips)


def scatter_rows(pred: np.ndarray, windows: Windows, sel: np.ndarray) -> Prediction:
    """Average window predictions ``(M, T_out, J, 3)`` onto the rows they cover (padding repeats skipped)."""
    if windows.target is not None:
        rows = windows.target_rows(sel)
        order = np.argsort(rows, kind="stable")
        return Prediction(pred[order, 0], rows[order])
    rows = windows.rows(sel).ravel()
    keep = windows.valid(sel).ravel()
    rows, p = rows[keep], pred.reshape(-1, *pred.shape[2:])[keep]
    uniq, inv = np.unique(rows, return_inverse=True)
    acc = np.zeros((len(uniq), *p.shape[1:]), dtype=np.float64)
    np.add.at(acc, inv, p)
    cnt = np.bincount(inv, minlength=len(uniq))
    return Prediction((acc / cnt[:, None, None]).astype(np.float32), uniq)


def predict(
    ckpt: Checkpoint,
    ps: PoseSet,
    *,
    model: nn.Module | None = None,
    clips: np.ndarray | None = None,
    batch_size: int = 0,
    flip_test: bool = True,
    device: str | torch.device = "cpu",
    amp: str = "none",
    progress: bool = False,
) -> Prediction:
    """Predict every frame of the selected clips (``clips (C,)`` bool, default all) of ``ps`` with the
    checkpoint's lifter (``model``, default :meth:`Checkpoint.build_model`) and encoder."""
    check_compatible(ckpt.encoder, ps)
    model = model if model is not None else ckpt.build_model(device)
    w = windows_for(ps, ckpt.lifter, clips=clips)
    sel = np.arange(len(w))
    pred = predict_windows(model, ckpt.encoder, ps, w, sel, batch_size=batch_size, flip_test=flip_test,
                           flip_center=ckpt.config.augment.flip_center, device=device, amp=amp, progress=progress,
                           desc=f"predict {poseset_name(ps)}")
    return scatter_rows(pred, w, sel)
