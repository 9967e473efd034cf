"""Make boson-multimodal importable beside any torch build.

boson-multimodal imports torchaudio for a single call, `torchaudio.functional.resample` (24 kHz -> 16 kHz for
the HuBERT features of a voice reference). PyPI only carries CUDA-linked torchaudio builds, tied to one torch
version, which fail to load elsewhere; when torchaudio cannot be imported, a stand-in module with that one
function (soxr, high quality) takes its place. A working torchaudio is always preferred.
"""

from __future__ import annotations

import importlib.machinery
import logging
import sys
import types
import warnings
from typing import Any


def _resample(waveform: Any, orig_freq: int, new_freq: int, *args: Any, **kwargs: Any) -> Any:
    """torchaudio.functional.resample's contract: (..., time) tensor in, same device and dtype out."""
    import soxr
    import torch

    if orig_freq == new_freq:
        return waveform
    shape = waveform.shape
    frames = waveform.detach().reshape(-1, shape[-1]).to("cpu", torch.float32).numpy().T
    resampled = soxr.resample(frames, int(orig_freq), int(new_freq))
    out = torch.from_numpy(resampled.T.copy()).reshape(*shape[:-1], -1)
    return out.to(device=waveform.device, dtype=waveform.dtype)


def _stand_in() -> types.ModuleType:
    package = types.ModuleType("torchaudio")
    functional = types.ModuleType("torchaudio.functional")
    package.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None, is_package=True)
    functional.__spec__ = importlib.machinery.ModuleSpec("torchaudio.functional", None)
    functional.resample = _resample  # type: ignore[attr-defined]
    package.functional = functional  # type: ignore[attr-defined]
    package.__version__ = "0+voicechat.stand-in"  # type: ignore[attr-defined]
    return package


def ensure_torchaudio() -> bool:
    """Import torchaudio, or put the stand-in in its place. True when the real one loaded."""
    current = sys.modules.get("torchaudio")
    if current is not None:
        return not str(getattr(current, "__version__", "")).endswith("stand-in")
    try:
        import torchaudio.functional  # noqa: F401
    except (ImportError, OSError, RuntimeError):  # missing, or a CUDA-linked build for another torch
        for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
            del sys.modules[name]
    else:
        return True
    package = _stand_in()
    sys.modules["torchaudio"] = package
    sys.modules["torchaudio.functional"] = package.functional
    return False


def import_serve_engine() -> type:
    """The HiggsAudioServeEngine class, with torchaudio settled and boson's loguru chatter off."""
    ensure_torchaudio()
    from boson_multimodal.serve.serve_engine import HiggsAudioServeEngine
    from loguru import logger

    logger.disable("boson_multimodal")
    # deprecation notices from the pinned transformers and boson's weight_norm, printed on every load/sentence
    logging.getLogger("transformers.cache_utils").setLevel(logging.ERROR)
    logging.getLogger("huggingface_hub.utils._http").setLevel(logging.ERROR)  # retry chatter; errors still raise
    warnings.filterwarnings("ignore", message=r".*weight_norm.* is deprecated", category=FutureWarning)
    return HiggsAudioServeEngine
