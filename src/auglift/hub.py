"""Shareable trained lifters in the Hugging Face convention: a directory with three files.

==================== =====================================================================
file                 content
==================== =====================================================================
``model.safetensors`` the lifter's weights (``safetensors``: tensors only, no pickle)
``config.json``       everything else a :class:`~auglift.checkpoint.Checkpoint` holds, as
                      :meth:`Checkpoint.to_dict` writes it: the lifter (``model``), the fitted
                      input encoder (``encoder``), the training config, the training set's joint
                      set and depth model with its descriptor options (``depth_model``), epochs,
                      history and best validation result (no optimiser state)
``README.md``         a model card: what it lifts, the training data, the metrics, how to use it
==================== =====================================================================

:func:`save_pretrained` writes such a directory (atomically, file by file; a directory holding a
``config.json`` that is not an auglift lifter's is refused); :func:`load_pretrained` reads one
back into a :class:`Checkpoint` through :meth:`Checkpoint.from_dict` (the one owner of checking
and migrating), from a local directory or a Hugging Face hub id (downloaded with
``huggingface_hub`` into its cache; offline, an id not in the cache is one clear error). Both
need the ``hub`` extra (``pip install 'auglift[hub]'``: ``huggingface_hub``, ``safetensors``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auglift import __version__
from auglift.checkpoint import Checkpoint
from auglift.errors import ConfigError, DataError, need_extra
from auglift.io import PathLike, json_safe, read_json, write_file, write_json

__all__ = ["CARD", "CONFIG", "WEIGHTS", "is_hub_id", "load_pretrained", "model_card", "save_pretrained"]

WEIGHTS, CONFIG, CARD = "model.safetensors", "config.json", "README.md"
LIBRARY = "auglift"


def _need(module: str) -> Any:
    """An optional dependency of the ``hub`` extra, imported on first use."""
    return need_extra(module, "pretrained lifters need", "hub", "huggingface_hub, safetensors")


def is_hub_id(spec: PathLike) -> bool:
    """Whether ``spec`` reads as a hub id (``owner/name``) rather than a local path."""
    s = os.fspath(spec)
    return not Path(s).exists() and s.count("/") == 1 and not s.startswith((".", "/", "~")) and "\\" not in s


def save_pretrained(ckpt: Checkpoint, directory: PathLike, *, metrics: Mapping[str, Any] | None = None) -> Path:
    """Write ``ckpt`` to ``directory`` as ``model.safetensors``, ``config.json`` and a ``README.md`` model card.

    ``metrics``: an :func:`auglift.evaluate.evaluate` result whose per-dataset metrics go into the
    card (optional). Returns the directory.
    """
    st = _need("safetensors.torch")
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise ConfigError(f"{d}: expected a directory for the pretrained lifter, found a file")
    if (d / CONFIG).is_file():
        prev = read_json(d / CONFIG, "config")
        if not isinstance(prev, Mapping) or prev.get("library_name") != LIBRARY:
            raise ConfigError(f"{d / CONFIG}: exists and is not an auglift lifter's; not overwriting it")
    d.mkdir(parents=True, exist_ok=True)
    raw = dataclasses.replace(ckpt, training=None).to_dict(weights=False)
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in ckpt.weights.items()}
    write_file(d / WEIGHTS, st.save(weights, metadata={"format": "pt", "library": LIBRARY}))
    write_json(d / CONFIG, json_safe({"library_name": LIBRARY, "model_type": ckpt.lifter.name, **raw}))
    write_file(d / CARD, model_card(ckpt, metrics))
    return d


def load_pretrained(spec: PathLike, *, revision: str | None = None) -> Checkpoint:
    """The checkpoint of a :func:`save_pretrained` directory, or of a hub id (``owner/name``, fetched with
    ``huggingface_hub`` into its cache; ``revision``: branch, tag or commit)."""
    d = Path(spec)
    if not d.is_dir() and is_hub_id(spec):
        d = _download(os.fspath(spec), revision)
    if not d.is_dir():
        raise DataError(d, None, "no such directory (expected a save_pretrained directory or a hub id owner/name)")
    st = _need("safetensors.torch")
    raw = read_json(d / CONFIG, "config")
    if not isinstance(raw, dict) or raw.get("library_name") != LIBRARY:
        raise DataError(d / CONFIG, "library_name", f"not an auglift lifter (expected library_name {LIBRARY!r})")
    if not (d / WEIGHTS).is_file():
        raise DataError(d / WEIGHTS, None, "weights file not found")
    try:
        weights = st.load((d / WEIGHTS).read_bytes())
    except Exception as exc:  # safetensors raises its own error type for any malformed file
        why = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise DataError(d / WEIGHTS, None, f"cannot read safetensors weights ({why})") from None
    return Checkpoint.from_dict(raw, d, weights=weights)


def _download(repo_id: str, revision: str | None) -> Path:
    hf = _need("huggingface_hub")
    try:
        return Path(hf.snapshot_download(repo_id, revision=revision, allow_patterns=[CONFIG, WEIGHTS, CARD]))
    except Exception as exc:  # offline, unknown repo, network: every failure is the same advice
        why = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise DataError(repo_id, None, "cannot load this hub id: it is not in the local Hugging Face cache and the "
                                       "hub cannot be reached or has no such lifter (offline? HF_HUB_OFFLINE is "
                                       f"{os.environ.get('HF_HUB_OFFLINE', 'unset')}); pass a local save_pretrained "
                                       f"directory ({type(exc).__name__}: {why})") from None


def model_card(ckpt: Checkpoint, metrics: Mapping[str, Any] | None = None) -> str:
    """The ``README.md`` of a pretrained directory: front matter, lifter, training data, metrics, usage."""
    lifter, enc, cfg, prov = ckpt.lifter, ckpt.encoder, ckpt.config, ckpt.provenance
    train = cfg.data.train
    lines = ["---", f"library_name: {LIBRARY}", "tags:", "- 3d-human-pose-estimation", "- pose-lifting",
             f"- {lifter.name}", "---", "", f"# auglift lifter `{lifter.name}`, input `{enc.label}`", "",
             f"A 2D-to-3D human pose lifter trained with auglift {ckpt.auglift_version or __version__}: "
             f"{lifter.num_joints} joints ({prov.joint_set}) over a window of {lifter.receptive_field} frame(s) "
             f"({'many-to-many' if lifter.many_to_many else 'anchor ' + lifter.anchor}); input channels "
             f"{', '.join(enc.channels)}; output root-relative 3D joints in metres, camera frame.", "",
             "## Training data", "",
             f"- training set: `{train.path}` (split {train.split or 'all'}"
             + (f", subjects {', '.join(train.subjects)}" if train.subjects else "") + ")",
             f"- depth model: `{prov.depth_model}` (recorded in {prov.recorded_in})",
             f"- descriptor options: {prov.descriptor.to_dict() if prov.descriptor is not None else 'none'}",
             f"- epochs: {ckpt.epoch} of {cfg.optim.epochs}, seed {cfg.runtime.seed}", "", "## Metrics", ""]
    best = ckpt.best or {}
    if best.get("val_mpjpe_mm") is not None:
        lines += [f"Validation MPJPE {best['val_mpjpe_mm']:.1f} mm at epoch {best['epoch']}.", ""]
    if metrics and metrics.get("datasets"):
        lines += [f"Evaluation (flip test {'on' if metrics.get('flip_test') else 'off'}), mm / %:", ""]
        lines += ["| dataset | frames | MPJPE | P-MPJPE | N-MPJPE | PCK@150 | AUC |", "|---|---|---|---|---|---|---|"]
        for ds in metrics["datasets"]:
            cells = [ds["name"], ds["frames"], *(_num(ds["metrics"].get(k)) for k in
                                                 ("mpjpe", "p_mpjpe", "n_mpjpe", "pck150", "auc"))]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
        lines.append("")
    elif not best.get("val_mpjpe_mm"):
        lines += ["No metrics recorded (pass an `auglift eval` result to include them).", ""]
    lines += ["## Use", "", "```python", "from auglift import Lifter", "",
              'lifter = Lifter.from_pretrained("THIS_DIRECTORY_OR_HUB_ID")',
              "poses = lifter.predict(kp2d, conf, uadd, image_size=(width, height))  # (T, 17, 3) metres",
              "```", ""]
    return "\n".join(lines)


def _num(v: Any) -> str:
    return "-" if v is None else f"{v:.1f}"
