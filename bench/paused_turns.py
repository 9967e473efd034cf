"""Thinking pauses through the whole loop: is any question answered by halves, and is any of it lost?

    .venv/bin/python bench/paused_turns.py

The 20 utterances of bench/turn_quality.py with a pause inside ("I was wondering if" ... 0.7 s ... "you
could tell me a story about a dragon."), spoken by Piper and fed at real-time pace into the real Session
on the embedded models (RealtimeSTT over tiny.en with the default profile's turn detection, SmolLM2 on the
local llama.cpp server, Piper), the reply played at the speakers' pace into a sink that only times it.
For each utterance: how many turns it made (more than one: the listener took the pause for the end),
whether a reply to its first half alone was heard, and whether the turn that was answered asked it whole
(both halves' words in its user line). turn_quality.py measures the listener alone; this measures what a
user meets.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.latency import LYDIA, TimingSink, _stt_settings, summary
from bench.turn_quality import PAUSED, paused_pcm
from voicechat.events import TurnFinished, TurnStarted

IDLE = 3.0  # seconds without a new turn or a reply in flight: the utterance is done with


@dataclass
class Outcome:
    head: str
    tail: str
    asked: list[str] = field(default_factory=list)  # each turn's user line
    heard: list[bool] = field(default_factory=list)  # each turn: did any of its reply reach the speakers
    first_audio: float | None = None  # the answered turn's end of speech -> first audio

    @property
    def split(self) -> bool:
        return len(self.asked) > 1

    @property
    def half_answered(self) -> bool:
        """A reply to the words before the pause reached the speakers."""
        return any(heard and not _has(text, self.tail) for text, heard in zip(self.asked, self.heard, strict=True))

    @property
    def asked_whole(self) -> bool:
        """The last turn that was answered asked both halves."""
        answered = [text for text, heard in zip(self.asked, self.heard, strict=True) if heard]
        return bool(answered) and _has(answered[-1], self.head) and _has(answered[-1], self.tail)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def _has(text: str, part: str) -> bool:
    """Most of `part`'s words are in `text` (tiny.en slips on a word now and then)."""
    words, found = _words(part), set(_words(text))
    return sum(word in found for word in words) >= max(1, round(0.6 * len(words)))


async def run(clips: list[bytes]) -> list[Outcome]:
    from voicechat.config.models import LLMSettings, Profile, TTSSettings
    from voicechat.live.listener import RealtimeListener, listener_settings
    from voicechat.live.playback import Playback
    from voicechat.live.scripted import Feeder
    from voicechat.llm.conversation import Conversation
    from voicechat.llm.registry import create_chat_model
    from voicechat.session import Session, SessionOptions
    from voicechat.stt.models import resolve_model
    from voicechat.tts.piper import PiperTTS

    chat = await asyncio.to_thread(create_chat_model, LLMSettings(max_tokens=48), {})
    outcomes = [Outcome(head, tail) for head, tail, _ in PAUSED]
    current: list[Outcome] = []
    last_event = [time.monotonic()]

    def see(event: object) -> None:
        if not current:
            return
        if isinstance(event, TurnStarted):
            current[0].asked.append(event.user_text)
            last_event[0] = time.monotonic()
        elif isinstance(event, TurnFinished):
            heard = event.metrics.first_audio is not None and (not event.interrupted or bool(event.spoken))
            current[0].heard.append(heard)
            if heard:
                current[0].first_audio = event.metrics.first_audio
            last_event[0] = time.monotonic()

    listener = RealtimeListener(listener_settings(_stt_settings(Profile().stt), resolve_model("bundled")))
    session = Session(conversation=Conversation(chat, [LYDIA], "Ada"), listener=listener,
                      tts=PiperTTS(TTSSettings()), playback=Playback(TimingSink(), pace=True),
                      voices={"Lydia": "joe"}, default_voice="joe", options=SessionOptions(full_duplex=True),
                      observers=[see])
    async with session:
        feeder = Feeder(session, whole=False)
        feeding = asyncio.create_task(feeder.run())
        for outcome, clip in zip(outcomes, clips, strict=True):
            current[:] = [outcome]
            feeder.say(clip)
            await feeder.speech_done.wait()
            last_event[0] = time.monotonic()
            while session.replying or time.monotonic() - last_event[0] < IDLE:
                await asyncio.sleep(0.05)
            print(f"  {outcome.asked} heard {outcome.heard}", flush=True)
        feeding.cancel()
    await chat.aclose()
    return outcomes


def main() -> None:
    with TemporaryDirectory() as folder:
        clips = [paused_pcm(a, b, pause, Path(folder), f"p{i}") for i, (a, b, pause) in enumerate(PAUSED)]
        outcomes = asyncio.run(run(clips))
    n = len(outcomes)
    print(f"utterances with a pause inside: {n}")
    print(f"  taken as more than one turn (the listener ended the turn in the pause): {sum(o.split for o in outcomes)}")
    print(f"  a reply to the first half alone was heard: {sum(o.half_answered for o in outcomes)}")
    print(f"  the answered turn asked the whole utterance: {sum(o.asked_whole for o in outcomes)} of {n}")
    firsts = [o.first_audio for o in outcomes if o.first_audio is not None]
    if firsts:
        print(f"  end of speech -> first audio of the answered turn: {summary(firsts)}")
        print(f"  mean {statistics.mean(firsts) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
