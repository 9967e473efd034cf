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
    from voicechat.history.resume import Resumed
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
    resume: Resumed | None = None  # go on with this earlier conversation
    greet: bool = True  # a new conversation opens with the characters' greetings


def run(talk: AudioTalk) -> int:
    """Run the conversation; the number of scripted inputs that got no full reply."""
    from voicechat.live.sources import MicrophoneSource, read_speech_file
    from voicechat.stt.models import resolve_model

    _library_logs_to_file()
    microphone = None if talk.inputs else MicrophoneSource(talk.input_device)  # no device: fails now
    for path in talk.inputs:
        read_speech_file(path)  # a bad input fails before any model loads
    model_dir = resolve_model(talk.settings.stt.model)
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
    from voicechat.session_setup import build_session, new_listener, open_chat
    from voicechat.transcript import TranscriptWriter
    from voicechat.tts.registry import create_tts

    def notify(notice: str) -> None:
        err().print(f"note: {notice}", markup=False, soft_wrap=True)

    settings = talk.settings
    chat = await asyncio.to_thread(open_chat, settings, notify)
    sink = sink_factory()
    session = build_session(settings, talk.characters, chat, tts=create_tts(settings.tts), sink=sink,
                            pace=talk.output is not None, listener=new_listener(settings.stt, model_dir),
                            transcript=TranscriptWriter(talk.transcript).open(), options=_options(talk),
                            resume=talk.resume, greet=talk.greet)
    try:
        failed = await (_scripted(session, talk) if talk.inputs else _live(session, microphone))
    except BaseException:
        await sink.abort()
        raise
    finally:
        assert session.transcript is not None
        session.transcript.close()
        await chat.aclose()
    await _finish_output(sink, talk.output)
    return failed


async def _finish_output(sink: AudioSink, output: Path | None) -> None:
    """Keep the reply audio that was made; a WAV with no audio at all is not left behind."""
    from voicechat.audio.sinks import WavFileSink
    from voicechat.console import err

    if isinstance(sink, WavFileSink) and sink.data_bytes == 0:
        await sink.abort()
        err().print(f"no reply audio was made, so {output} was not written", markup=False, soft_wrap=True)
        return
    await sink.close()


def _options(talk: AudioTalk) -> SessionOptions:
    from voicechat.session import SessionOptions

    # Scripted audio carries no echo of the replies, so it is heard in full duplex like headphones.
    return SessionOptions(barge_in=talk.barge_in, full_duplex=talk.headphones or bool(talk.inputs))


async def _scripted(session: Session, talk: AudioTalk) -> int:
    from voicechat.console import err, out
    from voicechat.live.scripted import run_script
    from voicechat.live.view import PlainView

    session.observe(PlainView(talk.settings.user_name, out(), err()).handle)
    async with session:
        greeting = session.greet()
        if greeting is not None:  # heard out before the first input is spoken
            await asyncio.gather(greeting, return_exceptions=True)
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
        session.observe(PlainView(session.conversation.user_name, out(), err()).handle)
        async with session:
            session.greet()  # speaking over it interrupts it, like any reply
            await session.feed_from(microphone.frames())
        return 0
    state = ViewState(user_name=session.conversation.user_name)
    session.observe(state.handle)
    err().print("listening: speak when you like; Ctrl+C ends the conversation", style="dim")
    with Live(LiveView(state), console=err(), refresh_per_second=12, transient=False):
        async with session:
            session.greet()
            async for frame in microphone.frames():
                state.level = frame.level
                session.feed(frame)
    return 0

