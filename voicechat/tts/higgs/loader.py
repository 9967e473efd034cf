"""Load the Higgs serve engine once per process (per set of settings), with clear errors when it cannot run.

Model and tokenizer locations are Hugging Face names (downloaded into the hub cache on first use) or local
folders. `device = "auto"` means the CUDA GPU; without one Higgs runs far slower than real time, so that is
an error that names the ways out rather than a silent crawl.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from voicechat import paths
from voicechat.errors import VoicechatError
from voicechat.tts.higgs.references import ReferenceCache
from voicechat.tts.higgs.runner import Runner
from voicechat.tts.higgs.settings import HiggsSettings


@dataclass(frozen=True)
class EngineSpec:
    model: str
    audio_tokenizer: str
    tokenizer: str
    device: str
    dtype: str
    kv_cache_lengths: tuple[int, ...]


@dataclass(frozen=True)
class LoadedHiggs:
    engine: Any  # HiggsAudioServeEngine with cached references
    runner: Runner
    references: ReferenceCache
    sample_rate: int
    samples_per_frame: int
    num_codebooks: int
    codebook_size: int

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes (codebooks, frames) -> float samples, frames * samples_per_frame of them."""
        import torch

        with torch.inference_mode():
            tensor = torch.from_numpy(np.ascontiguousarray(codes)).unsqueeze(0)
            return np.asarray(self.engine.audio_tokenizer.decode(tensor)[0, 0], dtype=np.float32)


_engines: dict[EngineSpec, LoadedHiggs] = {}
_load_lock = threading.Lock()


def load(settings: HiggsSettings) -> LoadedHiggs:
    """The engine for these settings, loaded on first use and shared by every voice afterwards."""
    spec = engine_spec(settings)
    with _load_lock:
        if spec not in _engines:
            _engines[spec] = _load(spec, settings.cache_references)
        return _engines[spec]


def engine_spec(settings: HiggsSettings) -> EngineSpec:
    device = resolve_device(settings.device)
    dtype = settings.dtype if settings.dtype != "auto" else ("bfloat16" if device.startswith("cuda") else "float32")
    return EngineSpec(
        model=settings.model,
        audio_tokenizer=settings.audio_tokenizer,
        tokenizer=settings.tokenizer or settings.model,
        device=device,
        dtype=dtype,
        kv_cache_lengths=tuple(settings.kv_cache_lengths),
    )


def resolve_device(requested: str) -> str:
    import torch

    has_cuda = torch.cuda.is_available()
    if requested == "auto":
        if has_cuda:
            return "cuda"
        raise VoicechatError(
            "Higgs needs a CUDA GPU and torch sees none: use `--engine openai-speech` against a GPU server, "
            "or set tts.higgs.device = \"cpu\" to run it here anyway (far slower than real time)"
        )
    if requested.startswith("cuda") and not has_cuda:
        raise VoicechatError(
            f"tts.higgs.device is {requested} but torch sees no CUDA GPU (a CPU-only torch build?): "
            "install a CUDA build of torch, or set tts.higgs.device = \"cpu\""
        )
    return requested


def check_location(location: str, what: str, setting: str) -> None:
    """A local-looking location must be a folder with config.json; hub names are left to the loader."""
    path = Path(location).expanduser()
    looks_local = location.startswith((".", "/", "~")) or path.exists() or location.count("/") != 1
    if not looks_local:
        return
    if not (path / "config.json").is_file():
        raise VoicechatError(
            f"Higgs {what} not found: {path} is not a folder with config.json; set tts.higgs.{setting} to the "
            f"downloaded folder or to a Hugging Face name"
        )


HUBERT = "bosonai/hubert_base"  # the audio tokenizer always loads it from the hub


def is_hub_name(location: str) -> bool:
    return location.count("/") == 1 and not location.startswith((".", "/", "~")) and not Path(location).exists()


def check_hub(locations: list[str]) -> None:
    """Fail fast, in one line, when weights are not cached and cannot be downloaded (instead of minutes of retries)."""
    from huggingface_hub import constants, try_to_load_from_cache

    missing = [name for name in dict.fromkeys(locations)
               if is_hub_name(name) and not isinstance(try_to_load_from_cache(name, "config.json"), str)]
    if not missing:
        return
    names = ", ".join(missing)
    fix = ("download them where there is a network (`huggingface-cli download NAME`, then copy the hub cache), "
           "or set tts.higgs.model / audio_tokenizer to local folders")
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        raise VoicechatError(
            f"Higgs weights {names} are not in the Hugging Face cache and HF_HUB_OFFLINE is set: {fix}"
        )
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        raise VoicechatError(f"Higgs weights {names} are not downloaded and {host} cannot be reached: {fix}") from None


def _load(spec: EngineSpec, cache_references: bool) -> LoadedHiggs:
    import torch

    from voicechat.tts.higgs.compat import import_serve_engine

    check_location(spec.model, "model", "model")
    check_location(spec.audio_tokenizer, "audio tokenizer", "audio_tokenizer")
    check_hub([spec.model, spec.tokenizer, spec.audio_tokenizer, HUBERT])
    engine_class = _with_cached_references(import_serve_engine())
    try:
        engine = engine_class(
            spec.model,
            spec.audio_tokenizer,
            tokenizer_name_or_path=spec.tokenizer,
            device=spec.device,
            torch_dtype=getattr(torch, spec.dtype),
            kv_cache_lengths=list(spec.kv_cache_lengths),
        )
    except (OSError, ValueError) as error:
        raise VoicechatError(_load_failure(spec, error)) from error
    except torch.OutOfMemoryError as error:
        raise VoicechatError(
            f"Higgs does not fit on {spec.device}: {error}. Use smaller tts.higgs.kv_cache_lengths or "
            "dtype = \"bfloat16\", or free the GPU"
        ) from error
    tokenizer = engine.audio_tokenizer
    folder = paths.user_data_dir() / "higgs" / "references" if cache_references else None
    references = ReferenceCache(_encoder(tokenizer), namespace=f"{spec.audio_tokenizer}", folder=folder)
    engine.reference_codes = references.codes
    return LoadedHiggs(
        engine=engine,
        runner=Runner(engine),
        references=references,
        sample_rate=int(tokenizer.sampling_rate),
        samples_per_frame=int(engine.samples_per_token),
        num_codebooks=int(engine.audio_num_codebooks),
        codebook_size=int(engine.audio_codebook_size),
    )


def _load_failure(spec: EngineSpec, error: BaseException) -> str:
    names = ", ".join(sorted({spec.model, spec.audio_tokenizer}))
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"Higgs weights could not be loaded ({first_line}); check {names}: a local folder, or a Hugging Face name "
        "that can be downloaded here (`huggingface-cli download NAME`; the audio tokenizer also needs "
        "bosonai/hubert_base)"
    )


def _encoder(tokenizer: Any) -> Callable[[Path], np.ndarray]:
    def encode(reference: Path) -> np.ndarray:
        import librosa
        import torch

        samples, _ = librosa.load(str(reference), sr=tokenizer.sampling_rate, mono=True)
        with torch.inference_mode():
            codes = tokenizer.encode(samples, tokenizer.sampling_rate)
        return np.asarray(codes.squeeze(0).cpu().numpy(), dtype=np.int64)

    return encode


def _with_cached_references(base: type) -> type:
    """The serve engine, taking reference codes from our cache instead of encoding them per request."""

    class CachedReferenceEngine(base):
        reference_codes: Callable[[Path], np.ndarray]

        def _prepare_inputs(self, chat_ml_sample: Any, force_audio_gen: bool = False) -> dict[str, Any]:
            return _prepare_inputs(self, chat_ml_sample, force_audio_gen)

    return CachedReferenceEngine


def _prepare_inputs(engine: Any, sample: Any, force_audio_gen: bool) -> dict[str, Any]:
    import torch
    from boson_multimodal.dataset.chatml_dataset import ChatMLDatasetSample, prepare_chatml_sample

    tokens, _, audio_contents, _ = prepare_chatml_sample(sample, engine.tokenizer)
    if tokens is None:
        raise VoicechatError("Higgs could not tokenize the prompt; check the voice's reference text")
    reply = "<|start_header_id|>assistant<|end_header_id|>\n\n" + ("<|audio_out_bos|>" if force_audio_gen else "")
    tokens = tokens + engine.tokenizer.encode(reply, add_special_tokens=False)
    codes = [torch.from_numpy(engine.reference_codes(Path(content.audio_url))) for content in audio_contents]
    starts = np.cumsum([0] + [c.shape[1] for c in codes])[:-1]
    batch = engine.collator([
        ChatMLDatasetSample(
            input_ids=torch.LongTensor(tokens),
            label_ids=None,
            audio_ids_concat=torch.cat(codes, dim=1) if codes else None,
            audio_ids_start=torch.tensor(starts, dtype=torch.long) if codes else None,
            audio_waveforms_concat=None,
            audio_waveforms_start=None,
            audio_sample_rate=None,
            audio_speaker_indices=None,
        )
    ])
    device = engine.model.device
    return {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in asdict(batch).items()}
