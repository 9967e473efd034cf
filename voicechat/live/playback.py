"""Playback that knows what was heard: the barge-in bookkeeping between the TTS and the sink.

`Playback` writes chunks to a sink in short blocks, at real-time pace when the sink itself does not
block like a speaker does (a WAV in scripted runs), and counts per sentence how much was played, so
that an interrupted reply keeps in history only the words the user heard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voicechat.audio.sinks import AudioSink
from voicechat.events import AudioChunk, Sentence
from voicechat.live.sources import RealTimePacer

BLOCK_SECONDS = 0.05  # barge-in silences playback within one block


@dataclass
class _Progress:
    sentence: Sentence
    synthesized: float = 0.0  # seconds made by the TTS
    played: float = 0.0
    complete: bool = False  # the TTS finished this sentence


@dataclass
class Playback:
    sink: AudioSink
    pace: bool = False
    progress: list[_Progress] = field(default_factory=list)
    _pacer: RealTimePacer | None = None

    def begin_turn(self) -> None:
        self.progress = []
        self._pacer = RealTimePacer() if self.pace else None

    def begin_sentence(self, sentence: Sentence) -> None:
        self.progress.append(_Progress(sentence))

    def end_sentence(self) -> None:
        if self.progress:
            self.progress[-1].complete = True

    async def play(self, chunk: AudioChunk) -> None:
        current = self.progress[-1]
        current.synthesized += chunk.duration
        block = 2 * max(1, int(chunk.sample_rate * BLOCK_SECONDS))
        for start in range(0, len(chunk.pcm), block):
            piece = AudioChunk(chunk.pcm[start : start + block], chunk.sample_rate, chunk.sentence_index,
                               chunk.chunk_index, chunk.character)
            await self.sink.write(piece)
            current.played += piece.duration
            if self._pacer is not None:
                await self._pacer.wait(piece.duration)

    async def interrupt(self) -> None:
        await self.sink.interrupt()

    @property
    def audible(self) -> bool:
        """Some of this turn's reply has been played."""
        return bool(self.progress) and self.progress[0].played > 0

    def spoken(self) -> list[Sentence]:
        """The sentences the user heard: whole ones, then the heard share of the words of a cut one."""
        heard: list[Sentence] = []
        for item in self.progress:
            if item.complete and item.played >= item.synthesized - 1e-6:
                heard.append(item.sentence)
                continue
            if item.played > 0 and item.synthesized > 0:
                words = item.sentence.text.split()
                share = item.played / max(item.synthesized, item.played)
                kept = words[: int(len(words) * share)]
                if kept:
                    heard.append(Sentence(" ".join(kept) + "…", item.sentence.character, item.sentence.voice,
                                          item.sentence.index))
            break
        return heard
