"""The Session without a microphone: typed turns, and an interrupt in the middle of a played reply."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.sse_server import Script, SSEServer
from voicechat.audio.sinks import WavFileSink
from voicechat.config.models import LLMSettings, TTSSettings
from voicechat.config.store import load_character
from voicechat.events import TurnFinished
from voicechat.live.playback import Playback
from voicechat.llm.conversation import CUT_MARK, Conversation
from voicechat.llm.openai_chat import OpenAIChat
from voicechat.session import Session
from voicechat.tts.piper import PiperTTS

pytestmark = pytest.mark.slow


def make_session(server: SSEServer, target: Path, events: list[object]) -> Session:
    chat = OpenAIChat(LLMSettings(base_url=server.base_url), api_key="k")
    return Session(conversation=Conversation(chat, [load_character("lydia")], "Ada"), listener=None,
                   tts=PiperTTS(TTSSettings()), playback=Playback(WavFileSink(target), pace=True),
                   voices={"Lydia": "lydia"}, default_voice="lydia", observers=[events.append])


def test_typed_turn_then_an_interrupted_one(tmp_path: Path) -> None:
    events: list[object] = []
    long_reply = " ".join(f"Sentence number {n} is here to take some time." for n in range(1, 12))
    with SSEServer() as server:
        server.queue(Script.reply("Hello Ada."), Script.reply(long_reply), Script.reply("Fine."))

        async def run() -> Session:
            session = make_session(server, tmp_path / "out.wav", events)
            async with session:
                await session.submit_text("Hi!")
                assert await session.wait_for_turns(1, timeout=60)
                await session.submit_text("Talk for a while.")
                await asyncio.sleep(2.5)  # a few sentences have played
                await session.interrupt()
                await session.submit_text("Thanks.")
                assert await session.wait_for_turns(3, timeout=60)
            return session

        session = asyncio.run(run())
        history = server.requests[2].body["messages"]
    finished = [e for e in events if isinstance(e, TurnFinished)]
    assert [f.interrupted for f in finished] == [False, True, False]
    heard = " ".join(s.text for s in finished[1].spoken)
    assert heard.startswith("Sentence number 1") and "number 11" not in heard
    assert history[-2]["content"].endswith(CUT_MARK) and "number 11" not in history[-2]["content"]
    assert session.conversation.history[1].cut
