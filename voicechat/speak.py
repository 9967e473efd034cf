"""Speak a sequence of sentences into a sink, synthesis running ahead of playback by a few chunks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass

from voicechat.audio.sinks import AudioSink
from voicechat.events import AudioChunk, Sentence
from voicechat.tts.base import TextToSpeech

PREFETCH_CHUNKS = 2


def sentences_for(text: str, voice: str, character: str = "") -> list[Sentence]:
    """Whole sentences of `text` to speak one after another.

    Unlike a streamed reply, the first sentence is not split at a clause: Piper pays a near-fixed cost per
    call (about 100 ms here), so an extra call doubles the work for 40 ms earlier audio (docs/benchmarks.md).
    """
    from voicechat.text.sentences import split_sentences

    return [Sentence(line, character, voice, index) for index, line in enumerate(split_sentences(text))]


@dataclass(frozen=True)
class SpeechResult:
    sentences: int
    audio_seconds: float
    first_audio_after: float | None  # seconds from the start to the first chunk reaching the sink
    elapsed: float


async def speak(
    tts: TextToSpeech, sentences: Iterable[Sentence] | AsyncIterable[Sentence], sink: AudioSink
) -> SpeechResult:
    """Synthesize sentence after sentence while the sink consumes; the sink is closed, or aborted on error.

    `sentences` may be a list (`say`) or arrive over time (a reply being streamed).
    """
    queue: asyncio.Queue[AudioChunk | None] = asyncio.Queue(maxsize=PREFETCH_CHUNKS)
    started = time.perf_counter()
    count = 0

    async def produce() -> None:
        nonlocal count
        async for sentence in _each(sentences):
            count += 1
            async for chunk in tts.stream(sentence):
                await queue.put(chunk)
        await queue.put(None)

    producer = asyncio.create_task(produce())
    first_audio: float | None = None
    audio_seconds = 0.0
    try:
        while (chunk := await _next_chunk(queue, producer)) is not None:
            if first_audio is None:
                first_audio = time.perf_counter() - started
            await sink.write(chunk)
            audio_seconds += chunk.duration
        await producer
    except BaseException:
        producer.cancel()
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


async def _next_chunk(queue: asyncio.Queue[AudioChunk | None], producer: asyncio.Task[None]) -> AudioChunk | None:
    """The next chunk, or the producer's exception as soon as it fails (never a wait on a dead producer)."""
    getter = asyncio.ensure_future(queue.get())
    done, _ = await asyncio.wait({getter, producer}, return_when=asyncio.FIRST_COMPLETED)
    if getter in done:
        return getter.result()
    getter.cancel()
    producer.result()  # raises the producer's error
    return queue.get_nowait() if not queue.empty() else None
