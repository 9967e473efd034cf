"""The audio modes of `voicechat talk`: the live microphone loop and scripted turns from files.

Both build one Session (listener, conversation, TTS, playback, transcript) and differ only in where the
user's audio comes from and where the replies go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicechat.audio.sinks import AudioSink
    from voicechat.config.models import Character, Profile
    from voicechat.session import Session, SessionOptions


@dataclass(frozen=True)
class AudioTalk:
    settings: Profile
    characters: list[Character]
    transcript: Path
    inputs: tuple[Path, ...] = ()
    output: Path | None = None
    input_device: str | None = None
    output_device: str | None = None
    barge_in: bool = True
    headphones: bool = False
    interrupt_after: float | None = None


def run(talk: AudioTalk) -> int:
    """Run the conversation; the number of scripted inputs that got no reply."""
    from voicechat.live.listener import resolve_model_dir
    from voicechat.live.sources import MicrophoneSource, read_speech_file

    _library_logs_to_file()
    microphone = None if talk.inputs else MicrophoneSource(talk.input_device)  # no device: fails now
    for path in talk.inputs:
        read_speech_file(path)  # a bad input fails before any model loads
    model_dir = resolve_model_dir(talk.settings.stt.model)
    sink_factory = _sink_factory(talk)
    return asyncio.run(_converse(talk, microphone, model_dir, sink_factory))


def _library_logs_to_file() -> None:
    """RealtimeSTT and friends log (and let threads die) with tracebacks: keep those in a file, not the terminal."""
    import logging
    import threading

    from voicechat import paths

    folder = paths.user_data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=folder / "talk.log", level=logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    threading.excepthook = lambda failure: logging.getLogger("voicechat.threads").error(
        "thread %s died", failure.thread.name if failure.thread else "?",
        exc_info=(failure.exc_type, failure.exc_value, failure.exc_traceback))  # type: ignore[arg-type]


def _sink_factory(talk: AudioTalk) -> Callable[[], AudioSink]:
    from voicechat.audio.sinks import SpeakerSink, WavFileSink
    from voicechat.fileio import check_writable_target

    output = talk.output
    if output is not None:
        check_writable_target(output)
        return lambda: WavFileSink(output)
    SpeakerSink(talk.output_device)  # no output device: fails now, with the fix
    return lambda: SpeakerSink(talk.output_device)


async def _converse(talk: AudioTalk, microphone: Any, model_dir: Path, sink_factory: Callable[[], AudioSink]) -> int:
    from voicechat.console import err
    from voicechat.live.listener import ListenerSettings, RealtimeListener
    from voicechat.live.playback import Playback
    from voicechat.llm.conversation import Conversation
    from voicechat.llm.registry import create_chat_model
    from voicechat.session import Session
    from voicechat.transcript import TranscriptWriter
    from voicechat.tts.registry import create_tts

    settings = talk.settings
    chat = await asyncio.to_thread(create_chat_model, settings.llm)
    for notice in chat.notices:
        err().print(f"note: {notice}", markup=False, soft_wrap=True)
    conversation = Conversation(chat, talk.characters, settings.user_name, settings.llm.history_turns,
                                settings.llm.history_tokens)
    listener = RealtimeListener(ListenerSettings(model_dir=model_dir, realtime_model_dir=model_dir,
                                                 language=settings.stt.language,
                                                 post_speech_silence=settings.stt.end_of_turn_silence))
    sink = sink_factory()
    voices = {c.name: c.voice for c in talk.characters}
    session = Session(
        conversation=conversation,
        listener=listener,
        tts=create_tts(settings.tts),
        playback=Playback(sink, pace=talk.output is not None),
        voices=voices,
        default_voice=voices[talk.characters[0].name],
        transcript=TranscriptWriter(talk.transcript).open(),
        options=_options(talk),
    )
    try:
        failed = await (_scripted(session, talk) if talk.inputs else _live(session, microphone))
    except BaseException:
        await sink.abort()
        raise
    finally:
        assert session.transcript is not None
        session.transcript.close()
        await chat.aclose()
    await sink.close()
    return failed


def _options(talk: AudioTalk) -> SessionOptions:
    from voicechat.session import SessionOptions

    # Scripted audio carries no echo of the replies, so it is heard in full duplex like headphones.
    return SessionOptions(barge_in=talk.barge_in, full_duplex=talk.headphones or bool(talk.inputs))


async def _scripted(session: Session, talk: AudioTalk) -> int:
    from voicechat.console import err, out
    from voicechat.live.scripted import run_script
    from voicechat.live.view import PlainView

    session.on_event = PlainView(talk.settings.user_name, out(), err()).handle
    async with session:
        result = await run_script(session, list(talk.inputs), talk.interrupt_after)
    for failure in result.failed_inputs:
        err().print(f"error: {failure}", markup=False, soft_wrap=True)
    return len(result.failed_inputs)


async def _live(session: Session, microphone: Any) -> int:
    import sys

    from rich.live import Live

    from voicechat.console import err, out
    from voicechat.live.view import LiveView, PlainView, ViewState

    if not sys.stderr.isatty():
        session.on_event = PlainView(session.conversation.user_name, out(), err()).handle
        async with session:
            await session.feed_from(microphone.frames())
        return 0
    state = ViewState(user_name=session.conversation.user_name)
    session.on_event = state.handle
    err().print("listening: speak when you like; Ctrl+C ends the conversation", style="dim")
    with Live(LiveView(state), console=err(), refresh_per_second=12, transient=False):
        async with session:
            async for frame in microphone.frames():
                state.level = frame.level
                session.feed(frame)
    return 0

