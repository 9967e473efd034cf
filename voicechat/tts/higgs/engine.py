"""HiggsTTS: the TextToSpeech engine over boson-multimodal's HiggsAudioServeEngine."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from voicechat.aio import iterate_in_thread
from voicechat.config.models import TTSSettings
from voicechat.events import AudioChunk, Sentence
from voicechat.tts.base import EngineTraits, VoiceLookup, voice_lookup
from voicechat.tts.higgs import loader
from voicechat.tts.higgs.frames import DelayPattern, WindowedDecoder, WindowPlan, to_pcm16
from voicechat.tts.higgs.prompt import VoicePrompt, chat_sample, voice_prompt
from voicechat.tts.higgs.runner import Run
from voicechat.tts.higgs.settings import HiggsSettings


@dataclass(frozen=True)
class OneShot:
    audio: np.ndarray  # float samples
    sample_rate: int
    codes: np.ndarray  # the generated columns, delay pattern included


def generation_params(options: HiggsSettings) -> dict[str, Any]:
    """Keyword arguments for the serve engine's generate / generate_delta_stream."""
    return {
        "max_new_tokens": options.max_new_tokens,
        "temperature": options.temperature,
        "top_k": options.top_k or None,
        "top_p": options.top_p,
        "ras_win_len": options.ras_win_len or None,
        "ras_win_max_num_repeat": options.ras_max_repeat,
        "seed": options.seed if options.seed >= 0 else None,
        "force_audio_gen": True,
    }


def window_plan(options: HiggsSettings) -> WindowPlan:
    return WindowPlan(
        first_frames=options.stream_first_frames,
        chunk_frames=options.stream_chunk_frames,
        left_context=options.stream_left_context,
        lookahead=options.stream_lookahead,
    )


class HiggsTTS:
    name = "higgs"
    traits = EngineTraits(concurrency="one", remote=False, streaming=True)  # one model on one GPU

    def __init__(self, settings: TTSSettings, voices: VoiceLookup | None = None) -> None:
        self.settings = settings
        self.options = settings.higgs
        self._lookup = voice_lookup(voices)
        self._prompts: dict[str, VoicePrompt] = {}

    def loaded(self) -> loader.LoadedHiggs:
        return loader.load(self.options)

    def voice(self, name: str) -> VoicePrompt:
        name = name or self.settings.voice
        if name not in self._prompts:
            self._prompts[name] = voice_prompt(self._lookup(name))
        return self._prompts[name]

    def _prepare(self, voice: str) -> tuple[loader.LoadedHiggs, VoicePrompt]:
        """Load the engine and encode the voice's reference (once: cached) outside the engine's lock."""
        higgs, prompt = self.loaded(), self.voice(voice)
        if prompt.reference_audio is not None:
            higgs.references.codes(prompt.reference_audio)
        return higgs, prompt

    async def prepare(self, voice: str = "") -> None:
        await asyncio.to_thread(self._prepare, voice)

    def generate(self, text: str, voice: str = "") -> OneShot:
        """One-shot synthesis through the engine's own generate() (the reference for streaming)."""
        higgs, prompt = self._prepare(voice)
        sample = chat_sample(text, prompt, self.options.scene)
        with higgs.runner.exclusive():
            response = higgs.engine.generate(sample, **generation_params(self.options))
        audio = response.audio if response.audio is not None else np.zeros(0, dtype=np.float32)
        codes = np.asarray(response.generated_audio_tokens)
        return OneShot(np.asarray(audio, dtype=np.float32), int(response.sampling_rate), codes)

    def synthesize(self, sentence: Sentence, run: Run) -> Iterator[AudioChunk]:
        """Blocking: chunks of the sentence as generation goes on, then the decoder's last frames."""
        higgs, prompt = self._prepare(sentence.voice)
        sample = chat_sample(sentence.text, prompt, self.options.scene)
        delay = DelayPattern(higgs.num_codebooks, higgs.codebook_size)
        decoder = WindowedDecoder(higgs.decode, higgs.samples_per_frame, window_plan(self.options))
        index = 0
        columns = higgs.runner.columns(sample, generation_params(self.options), run)
        # the generation is closed (its threads joined) before this worker counts as done
        with higgs.runner.working(ends_after=True), contextlib.closing(columns):
            for column in columns:
                if run.abandoned:
                    return
                for audio in decoder.push(delay.push(column)):
                    yield self._chunk(audio, higgs.sample_rate, sentence, index)
                    index += 1
            if not run.abandoned:
                yield self._chunk(decoder.finish(), higgs.sample_rate, sentence, index)

    @staticmethod
    def _chunk(audio: np.ndarray, rate: int, sentence: Sentence, index: int) -> AudioChunk:
        return AudioChunk(
            pcm=to_pcm16(audio),
            sample_rate=rate,
            sentence_index=sentence.index,
            chunk_index=index,
            character=sentence.character,
        )

    async def stream(self, sentence: Sentence) -> AsyncIterator[AudioChunk]:
        run = Run()
        try:
            async for chunk in iterate_in_thread(lambda: self.synthesize(sentence, run)):
                yield chunk
        finally:
            run.abandon()  # barge-in: the generation stops at its next step, without waiting for a chunk
