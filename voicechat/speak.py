"""The one speaking path: sentences -> speech, the next sentence synthesized while the current one plays.

`synthesized` turns sentences (a list for `say`, or a stream that a reply fills) into speech items in
order: each sentence, its audio chunks, then its end. Synthesis runs ahead of whoever consumes the items by
a bounded queue, so when one sentence has played the next is ready: no gap at the speaker. `speak` plays
them into a sink (`say`); the Session consumes them through its Playback bookkeeping (talk, serve).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass

from voicechat.aio import read_ahead
from voicechat.audio.sinks import AudioSink
from voicechat.events import AudioChunk, Sentence
from voicechat.tts.base import TextToSpeech

# Items held ahead of the consumer: a sentence marker, its chunks and its end; enough for the next sentence
# to be synthesized in full while the current one plays (Piper makes one chunk per sentence).
AHEAD_ITEMS = 6


@dataclass(frozen=True)
class SentenceSpoken:
    """All of `sentence`'s audio has been handed on."""

    sentence: Sentence


SpeechItem = Sentence | AudioChunk | SentenceSpoken


def sentences_for(text: str, voice: str, character: str = "") -> list[Sentence]:
    """Whole sentences of `text` to speak one after another.

    Unlike a streamed reply, the first sentence is not split at a clause: Piper pays a near-fixed cost per
    call (about 100 ms here), so an extra call doubles the work for 40 ms earlier audio (docs/benchmarks.md).
    """
    from voicechat.text.sentences import split_sentences

    return [Sentence(line, character, voice, index) for index, line in enumerate(split_sentences(text))]


async def synthesized(tts: TextToSpeech, sentences: Iterable[Sentence] | AsyncIterable[Sentence],
                      ahead: int = AHEAD_ITEMS) -> AsyncIterator[SpeechItem]:
    """Each sentence, its audio, and its end, in order; synthesis runs up to `ahead` items in front.

    Leaving the loop early (barge-in, an error) cancels the synthesis in flight; a TTS error is raised to
    the consumer as soon as it happens.
    """
    async def items() -> AsyncIterator[SpeechItem]:
        async for sentence in _each(sentences):
            yield sentence
            async for chunk in tts.stream(sentence):
                yield chunk
            yield SentenceSpoken(sentence)

    async with contextlib.aclosing(read_ahead(items(), ahead)) as spoken:
        async for item in spoken:
            yield item


@dataclass(frozen=True)
class SpeechResult:
    sentences: int
    audio_seconds: float
    first_audio_after: float | None  # seconds from the start to the first chunk reaching the sink
    elapsed: float


async def speak(
    tts: TextToSpeech, sentences: Iterable[Sentence] | AsyncIterable[Sentence], sink: AudioSink
) -> SpeechResult:
    """Speak every sentence into the sink, which is closed at the end, or aborted on error."""
    started = time.perf_counter()
    count, audio_seconds, first_audio = 0, 0.0, None
    try:
        async for item in synthesized(tts, sentences):
            if isinstance(item, Sentence):
                count += 1
            elif isinstance(item, AudioChunk):
                first_audio = first_audio if first_audio is not None else time.perf_counter() - started
                await sink.write(item)
                audio_seconds += item.duration
    except BaseException:
        await sink.abort()
        raise
    await sink.close()
    return SpeechResult(count, audio_seconds, first_audio, time.perf_counter() - started)


async def _each(sentences: Iterable[Sentence] | AsyncIterable[Sentence]) -> AsyncIterator[Sentence]:
    if isinstance(sentences, AsyncIterable):
        async for sentence in sentences:
            yield sentence
    else:
        for sentence in sentences:
            yield sentence
