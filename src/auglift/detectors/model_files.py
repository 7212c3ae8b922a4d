"""Where the RTMDet / RTMPose ONNX files come from: a local path, an rtmlib model id, or a URL.

* a path (anything ending in ``.onnx``, or an existing file) is used as it is;
* an id of :data:`RTM_MODELS` (``rtmdet-m``, ``rtmpose-l``, ``rtmpose-l-halpe26``, ...) or an
  ``http(s)://`` URL of an MMDeploy ONNX-SDK zip (the files rtmlib's solutions download) is looked
  up in rtmlib's download cache (``$TORCH_HOME/hub/checkpoints``, default
  ``~/.cache/rtmlib/hub/checkpoints``, where rtmlib keeps ``<zip name>.onnx``), and downloaded
  into it by :func:`rtmlib.tools.file.download_checkpoint` when missing.

Downloads are attempted only when the server answers a HEAD request within
:data:`PROBE_TIMEOUT_S` seconds and no offline switch is set (``AUGLIFT_OFFLINE``,
``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``; rtmlib itself has none). Otherwise one
:class:`~auglift.errors.ConfigError` line names the file to fetch elsewhere and the option to
pass its local ``.onnx`` with.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from auglift.errors import ConfigError, DataError

__all__ = ["OFFLINE_VARIABLES", "PROBE_TIMEOUT_S", "RTM_MODELS", "hub_unavailable", "offline", "resolve_model",
           "rtmlib_cache_dir", "unreachable"]

_SDK = "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/onnx_sdk/"
# id -> MMDeploy ONNX-SDK zip (the RTMPose project's exports; rtmlib's README lists the pose models).
RTM_MODELS: dict[str, str] = {
    "rtmdet-m": _SDK + "rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.zip",  # 640x640, person only
    "rtmpose-t": _SDK + "rtmpose-t_simcc-body7_pt-body7_420e-256x192-026a1439_20230504.zip",
    "rtmpose-s": _SDK + "rtmpose-s_simcc-body7_pt-body7_420e-256x192-acd4a1ef_20230504.zip",
    "rtmpose-m": _SDK + "rtmpose-m_simcc-body7_pt-body7_420e-256x192-e48f03d0_20230504.zip",
    "rtmpose-l": _SDK + "rtmpose-l_simcc-body7_pt-body7_420e-256x192-4dba18fc_20230504.zip",
    "rtmpose-l-384x288": _SDK + "rtmpose-l_simcc-body7_pt-body7_420e-384x288-3f5a1437_20230504.zip",
    "rtmpose-x": _SDK + "rtmpose-x_simcc-body7_pt-body7_700e-384x288-71d7b7e9_20230629.zip",
    "rtmpose-t-halpe26": _SDK + "rtmpose-t_simcc-body7_pt-body7-halpe26_700e-256x192-6020f8a6_20230605.zip",
    "rtmpose-s-halpe26": _SDK + "rtmpose-s_simcc-body7_pt-body7-halpe26_700e-256x192-7f134165_20230605.zip",
    "rtmpose-m-halpe26": _SDK + "rtmpose-m_simcc-body7_pt-body7-halpe26_700e-256x192-4d3e73dd_20230605.zip",
    "rtmpose-l-halpe26": _SDK + "rtmpose-l_simcc-body7_pt-body7-halpe26_700e-256x192-2abb7558_20230605.zip",
    "rtmpose-x-halpe26": _SDK + "rtmpose-x_simcc-body7_pt-body7-halpe26_700e-384x288-7fb6e239_20230606.zip",
}
OFFLINE_VARIABLES = ("AUGLIFT_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
PROBE_TIMEOUT_S = 5.0


def offline() -> bool:
    """True when one of :data:`OFFLINE_VARIABLES` is set to a true value (1, true, yes, on)."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARIABLES)


def rtmlib_cache_dir() -> Path:
    """rtmlib's download directory (the rule of ``rtmlib.tools.file``: ``$TORCH_HOME/hub/checkpoints``,
    else ``$XDG_CACHE_HOME/rtmlib/hub/checkpoints``, else ``~/.cache/rtmlib/hub/checkpoints``)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "rtmlib")
    return Path(home).expanduser() / "hub" / "checkpoints"


def hub_unavailable(url: str | None = None) -> str | None:
    """Why ``url`` (default: the Hugging Face hub, ``$HF_ENDPOINT``) cannot be downloaded from now (an offline switch
    is set, or it does not answer within :data:`PROBE_TIMEOUT_S`), or None: decided at once, not after retries."""
    if offline():
        return f"downloads are off ({', '.join(v for v in OFFLINE_VARIABLES if os.environ.get(v))})"
    url = url or os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    why = unreachable(url)
    return None if why is None else f"{urlparse(url).netloc} cannot be reached ({why})"


def unreachable(url: str) -> str | None:
    """None if ``url`` answers a HEAD request within :data:`PROBE_TIMEOUT_S`, else why not."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT_S):
            return None
    except urllib.error.HTTPError as exc:  # the server answered: only "not there" stops the download
        return f"HTTP {exc.code}" if exc.code in (404, 410) else None
    except OSError as exc:  # urllib's URLError, timeouts, refused connections
        reason = getattr(exc, "reason", exc)
        return " ".join(str(reason).split())[:120] or type(exc).__name__


def resolve_model(spec: str | os.PathLike[str], *, option: str = "--pose-model") -> Path:
    """A local ONNX file for ``spec`` (see the module doc); ``option`` names the CLI option in errors."""
    text = os.fspath(spec)
    path = Path(text).expanduser()
    is_url = text.startswith(("http://", "https://"))
    if not is_url and text not in RTM_MODELS:
        if path.is_file():
            return path
        known = ", ".join(RTM_MODELS)
        why = "is a directory, expected an .onnx file" if path.is_dir() else "model file not found"
        raise DataError(path, None, f"{why}; pass {option} with a local .onnx file, an rtmlib model id ({known}) "
                                    "or an ONNX-SDK zip URL")
    url = text if is_url else RTM_MODELS[text]
    cached = rtmlib_cache_dir() / (os.path.basename(urlparse(url).path).split(".")[0] + ".onnx")  # rtmlib's name
    if cached.is_file():
        return cached
    hint = (f"download {url} elsewhere, unzip it and pass the end2end.onnx inside with {option} "
            f"(or put it at {cached})")
    why = hub_unavailable(url)
    if why is not None:
        raise ConfigError(f"{text}: not in rtmlib's cache and {why}: {hint}")
    try:
        from rtmlib.tools.file import download_checkpoint  # optional dependency (the detect extra)
    except ImportError:
        raise ConfigError("downloading RTMDet/RTMPose models needs rtmlib (pip install 'auglift[detect]'); "
                          f"or {hint}") from None
    try:
        return Path(download_checkpoint(url, dst_dir=str(rtmlib_cache_dir()), progress=True))
    except Exception as exc:  # urllib, zipfile and file-system errors
        raise ConfigError(f"{text}: download failed ({' '.join(str(exc).split())[:160]}): {hint}") from None
