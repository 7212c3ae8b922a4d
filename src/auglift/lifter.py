"""A trained lifter in one object: ``Lifter.from_checkpoint(path).predict(kp2d, conf, uadd, image_size=...)``.

:class:`Lifter` holds a checkpoint (an ``auglift train`` ``.pt``, an ``auglift export`` ``.onnx`` run by
onnxruntime, or a :meth:`save_pretrained` directory / hub id), its runnable lifter and the
prediction settings (device, flip test, batch size, mixed precision). :meth:`Lifter.predict` lifts
arrays of any length; :meth:`Lifter.predict_poseset` lifts PoseSet clips. Both go through
:func:`auglift.predict.predict` (windowing with edge padding, encoding with the checkpoint's
encoder, batching, flip test, many-to-many averaging): ``auglift eval`` and ``auglift infer`` use
this object, so arrays, PoseSets, evaluation and inference share one prediction path.

Example::

    from auglift import Lifter
    lifter = Lifter.from_checkpoint("runs/tcn/best.pt")          # or .onnx, or Lifter.from_pretrained(dir)
    poses = lifter.predict(kp2d, conf, uadd, image_size=(1000, 1000))  # (T, 17, 3) metres, root-relative
    lifter.save_pretrained("my-lifter")                           # model.safetensors + config.json + README.md
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from auglift.checkpoint import Checkpoint
from auglift.encoding import required_fields
from auglift.errors import ConfigError
from auglift.hub import is_hub_id, load_pretrained, save_pretrained
from auglift.io import PathLike
from auglift.poseset import ClipTable, PoseSet, default_intrinsics
from auglift.predict import Prediction, lifter_module, open_checkpoint, predict, resolve_device

__all__ = ["Lifter", "open_any"]

_FILES = (".pt", ".pth", ".onnx")  # checkpoint file suffixes (a missing one is "file not found", not a hub id)


@dataclass(repr=False, eq=False)
class Lifter:
    """A trained lifter ready to predict (see the module doc). Build it with :meth:`from_checkpoint`.

    ``flip_test``: average with the prediction for the mirrored input; ``batch_size``: windows per
    batch (0: about 65,536 frames); ``amp``: ``"none"``, ``"bf16"`` or ``"fp16"`` autocast (PyTorch
    lifters only).
    """

    checkpoint: Checkpoint
    model: nn.Module
    device: torch.device
    flip_test: bool = True
    batch_size: int = 0
    amp: str = "none"

    def __repr__(self) -> str:
        ck = self.checkpoint
        return (f"Lifter({ck.lifter.name}, input {ck.encoder.label!r}, window {ck.lifter.receptive_field}, "
                f"{'onnxruntime' if ck.onnx else self.device}, flip_test={self.flip_test}, from {ck.where})")

    @classmethod
    def from_checkpoint(cls, checkpoint: PathLike | Checkpoint, *, device: str | torch.device = "auto",
                        flip_test: bool | None = None, batch_size: int = 0, amp: str = "none") -> Lifter:
        """Open an ``auglift train`` checkpoint, an exported ``.onnx`` model, or a :meth:`save_pretrained`
        directory. ``flip_test`` None: the checkpoint's ``augment.flip_test`` (as validation used)."""
        ckpt = open_any(checkpoint)
        if amp not in ("none", "bf16", "fp16"):
            raise ConfigError(f"amp: expected none, bf16 or fp16, got {amp!r}")
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        flip = ckpt.config.augment.flip_test if flip_test is None else bool(flip_test)
        return cls(ckpt, lifter_module(ckpt, dev), dev, flip, int(batch_size), "none" if ckpt.onnx else amp)

    @classmethod
    def from_pretrained(cls, directory_or_hub_id: PathLike, **kwargs: Any) -> Lifter:
        """A lifter from a :meth:`save_pretrained` directory or a Hugging Face hub id (``kwargs``: as
        :meth:`from_checkpoint`)."""
        return cls.from_checkpoint(load_pretrained(directory_or_hub_id), **kwargs)

    def save_pretrained(self, directory: PathLike, *, metrics: Mapping[str, Any] | None = None) -> Path:
        """Write ``model.safetensors``, ``config.json`` and a ``README.md`` model card (``metrics``: an
        :func:`auglift.evaluate.evaluate` result for the card) to ``directory``; see :mod:`auglift.hub`."""
        if self.checkpoint.onnx:
            raise ConfigError(f"{self.checkpoint.where}: an ONNX model has no PyTorch weights to save; "
                              "save the .pt checkpoint it was exported from")
        return save_pretrained(self.checkpoint, directory, metrics=metrics)

    def predict_poseset(self, ps: PoseSet, *, clips: np.ndarray | None = None, progress: bool | None = False
                        ) -> Prediction:
        """Predictions ``(M, J, 3)`` metres for every frame of the selected clips (``clips (C,)`` bool) of ``ps``
        (``progress``: a bar; None: on a terminal only)."""
        return predict(self.checkpoint, ps, model=self.model, clips=clips, batch_size=self.batch_size,
                       flip_test=self.flip_test, device=self.device, amp=self.amp, progress=progress)

    def predict(self, kp2d: Any, conf: Any = None, uadd: Any = None, *, image_size: tuple[int, int],
                fps: float = 50.0) -> np.ndarray:
        """Lift one person's 2D keypoints over ``T`` consecutive frames (any ``T >= 1``) to 3D.

        Args:
            kp2d: ``(T, J, 2)`` pixels, the lifter's joint set (H36M-17); NaN for missing joints.
            conf: ``(T, J)`` confidences in [0, 1] (default 1).
            uadd: ``(T, J, 3)`` depth descriptors ``(d, d_min, d_max)`` of the depth model (metric
                or relative) the lifter was trained with; NaN where a joint has none. Needed
                exactly when the lifter's input has depth channels.
            image_size: ``(width, height)`` pixels of the frames.
            fps: frame rate of the sequence (recorded; lifters read consecutive frames).

        Returns:
            ``(T, J, 3)`` float32 metres, root-relative (pelvis = 0), camera frame.
        """
        ps = self._poseset(kp2d, conf, uadd, image_size, fps)
        pred = self.predict_poseset(ps)
        out = np.full((len(ps), ps.num_joints, 3), np.nan, dtype=np.float32)
        out[pred.rows] = pred.pred
        return out - out[:, :1]  # root-relative (the lifters do not zero the root joint)

    def _poseset(self, kp2d: Any, conf: Any, uadd: Any, image_size: tuple[int, int], fps: float) -> PoseSet:
        """The arrays as a one-clip PoseSet in memory (what :func:`auglift.predict.predict` reads)."""
        j = self.checkpoint.lifter.num_joints
        kp = _array("kp2d", kp2d, (j, 2))
        t = len(kp)
        c = np.ones((t, j), np.float32) if conf is None else _array("conf", conf, (j,), t)
        try:
            w, h = (int(v) for v in image_size)
        except (TypeError, ValueError):
            raise ConfigError(f"image_size: expected (width, height) in pixels, got {image_size!r}") from None
        if w <= 0 or h <= 0:
            raise ConfigError(f"image_size: expected positive (width, height), got {image_size!r}")
        fields: dict[str, np.ndarray] = {"clip": np.zeros(t, np.int32), "frame": np.arange(t, dtype=np.int32),
                                         "kp2d": kp, "conf": c}
        meta: dict[str, Any] = {"source": "Lifter.predict", "joint_set": self.checkpoint.provenance.joint_set}
        if "uadd" in required_fields(self.checkpoint.encoder):
            if uadd is None:
                raise ConfigError(f"{self.checkpoint.where}: input {self.checkpoint.encoder.label!r} needs depth "
                                  "descriptors: pass uadd=(T, J, 3)")
            u = _array("uadd", uadd, (j, 3), t)
            fields |= {"uadd": u, "uadd_valid": np.isfinite(u).all(-1)}
            meta["depth_model"] = {"kind": self.checkpoint.encoder.depth_kind}
        # intrinsics are not read by the encoder: infer's default (a ~53 degree field of view)
        clips = ClipTable(subject=["input"], action=["predict"], camera=["0"], split=["predict"], width=[w],
                          height=[h], intrinsics=default_intrinsics(w, h)[None], fps=[fps])
        return PoseSet(fields, clips, meta)


def open_any(checkpoint: PathLike | Checkpoint) -> Checkpoint:
    """The checkpoint of an ``auglift train`` file, an exported ``.onnx`` model, a :meth:`Lifter.save_pretrained`
    directory or a hub id (``owner/name``), or ``checkpoint`` itself."""
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    if Path(checkpoint).is_dir() or (is_hub_id(checkpoint) and Path(checkpoint).suffix.lower() not in _FILES):
        return load_pretrained(checkpoint)
    return open_checkpoint(checkpoint)


def _array(name: str, value: Any, tail: tuple[int, ...], length: int | None = None) -> np.ndarray:
    """``value`` as float32 ``(T, *tail)`` (``T`` = ``length`` when given), else a ConfigError naming it."""
    a = np.asarray(value, dtype=np.float32)
    want = "(" + ", ".join(["T", *map(str, tail)]) + ")"
    if a.ndim != 1 + len(tail) or a.shape[1:] != tail or (length is not None and len(a) != length) or not len(a):
        raise ConfigError(f"{name}: expected shape {want}" + (f" with T = {length}" if length else " with T >= 1")
                          + f", got {a.shape}")
    if np.isinf(a).any():
        raise ConfigError(f"{name}: expected finite values or NaN, found inf")
    return a
