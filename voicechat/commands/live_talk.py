"""The audio modes of `voicechat talk`: the live microphone loop and scripted turns from files.

Both build one Session (listener, conversation, TTS, playback, transcript) and differ only in where the
user's audio comes from and where the replies go.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicechat.audio.sinks import AudioSink
    from voicechat.config.models import Character, Profile
    from voicechat.history.resume import Resumed
    from voicechat.live.echo import EchoCanceller, PlayedAudio
    from voicechat.session import Session, SessionOptions


LISTENING = "listening: speak when you like; Ctrl+C ends the conversation"
CLEANED_GATE = -40.0  # dBFS: with the echo cancelled, a reply's residue stays under this; a voice does not


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
    played = _echo_reference(talk)
    microphone = None
    if not talk.inputs:  # no device: fails now
        microphone = MicrophoneSource(talk.input_device, echo=_canceller(played))
    for path in talk.inputs:
        read_speech_file(path)  # a bad input fails before any model loads
    model_dir = resolve_model(talk.settings.stt.model)
    sink_factory = _sink_factory(talk, played)
    with _ending_on_signals(live=microphone is not None):
        return asyncio.run(_converse(talk, microphone, model_dir, sink_factory, played is not None))


def _echo_reference(talk: AudioTalk) -> PlayedAudio | None:
    """On open speakers, what the speakers play, kept as the echo canceller's reference; None with headphones
    or scripted files (no echo to cancel)."""
    if talk.inputs or talk.headphones:
        return None
    from voicechat.live.echo import PlayedAudio, cancellation_problem

    if cancellation_problem() is not None:
        return None  # half duplex: the microphone is gated while a reply plays (`voicechat doctor` says why)
    return PlayedAudio()


def _canceller(played: PlayedAudio | None) -> EchoCanceller | None:
    if played is None:
        return None
    from voicechat.live.echo import EchoCanceller

    return EchoCanceller(played, mute_while_learning=False)  # the barge-in check judges what leaks meanwhile


@contextlib.contextmanager
def _ending_on_signals(live: bool) -> Iterator[None]:
    """Ctrl+C (SIGINT) and SIGTERM (a service manager, `kill`) end the conversation alike: the session stops,
    the transcript is closed, the exit code is 130 or 143.

    The live loop then leaves without the interpreter's teardown of the speech models' native libraries,
    which takes seconds here; by then every file is closed and RealtimeSTT's workers are joined.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    terminated = []

    def on_term(signum: int, frame: Any) -> None:
        terminated.append(signum)
        signal.raise_signal(signal.SIGINT)  # asyncio.run cancels the conversation on SIGINT

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except KeyboardInterrupt:
        code = 128 + (signal.SIGTERM if terminated else signal.SIGINT)
        if live:
            _exit_now(code)
        raise SystemExit(code) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_now(code: int) -> None:
    """Exit handlers run (multiprocessing's clean-up of RealtimeSTT's semaphores and logging's flush among
    them); the slow part, the teardown of every module, is skipped."""
    import atexit
    import os
    import sys

    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _library_logs_to_file() -> None:
    """RealtimeSTT and friends log (and let threads die) with tracebacks: keep those in a file, not the terminal."""
    import logging
    import os
    import threading

    from voicechat import paths

    folder = paths.user_data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    level = os.environ.get("VOICECHAT_LOG_LEVEL", "WARNING").upper()  # DEBUG: every word heard, and why
    logging.basicConfig(filename=folder / "talk.log", level=getattr(logging, level, logging.WARNING),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    threading.excepthook = lambda failure: logging.getLogger("voicechat.threads").error(
        "thread %s died", failure.thread.name if failure.thread else "?",
        exc_info=(failure.exc_type, failure.exc_value, failure.exc_traceback))  # type: ignore[arg-type]


def _sink_factory(talk: AudioTalk, played: PlayedAudio | None = None) -> Callable[[], AudioSink]:
    from voicechat.audio.sinks import SpeakerSink, WavFileSink
    from voicechat.fileio import check_writable_target

    output = talk.output
    if output is not None:
        check_writable_target(output)
        return lambda: WavFileSink(output)
    SpeakerSink(talk.output_device)  # no output device: fails now, with the fix
    return lambda: SpeakerSink(talk.output_device, played=played)


async def _converse(talk: AudioTalk, microphone: Any, model_dir: Path, sink_factory: Callable[[], AudioSink],
                    cancelling_echo: bool = False) -> int:
    from voicechat.console import err
    from voicechat.conversation_log import ConversationLog
    from voicechat.session_setup import build_session, new_listener, open_chat
    from voicechat.tts.registry import create_tts

    def notify(notice: str) -> None:
        err().print(f"note: {notice}", markup=False, soft_wrap=True)

    settings = talk.settings
    chat = await asyncio.to_thread(open_chat, settings, notify)
    sink = sink_factory()
    session = build_session(settings, talk.characters, chat, tts=create_tts(settings.tts), sink=sink,
                            pace=talk.output is not None, listener=new_listener(settings.stt, model_dir),
                            transcript=ConversationLog(talk.transcript).open(),
                            options=_options(talk, cancelling_echo),
                            resume=talk.resume, greet=talk.greet)
    if cancelling_echo:
        from voicechat.audio.sinks import SpeakerSink
        from voicechat.live.barge_in import BargeInCheck
        from voicechat.live.echo import EchoGuard

        session.echo_guard = EchoGuard()  # the second line, behind the canceller
        if isinstance(sink, SpeakerSink):
            canceller = microphone.echo if microphone is not None else None
            listener = session.listener
            session.barge_check = BargeInCheck(
                session.echo_guard, sink.duck,
                louder_than_echo=canceller.heard_voice_over_echo if canceller is not None else lambda: False,
                recognizing=(lambda: listener.recording) if listener is not None else lambda: False,
                sound_over_echo=canceller.heard_sound_over_echo if canceller is not None else lambda: False)
            if canceller is not None:
                canceller.on_sound = _pause_from_microphone(session, asyncio.get_running_loop())
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


def _pause_from_microphone(session: Session, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """The canceller's hook, in the microphone's thread: a sound over the reply silences it there and then,
    and the event loop takes the pause over when its turn comes (it may be busy with speech)."""

    def pause() -> None:
        check = session.barge_check
        if check is not None and session.replying and check.pause_at_once():
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                loop.call_soon_threadsafe(session.sound_over_reply)

    return pause


async def _finish_output(sink: AudioSink, output: Path | None) -> None:
    """Keep the reply audio that was made; a WAV with no audio at all is not left behind."""
    from voicechat.audio.sinks import WavFileSink
    from voicechat.console import err

    if isinstance(sink, WavFileSink) and sink.data_bytes == 0:
        await sink.abort()
        err().print(f"no reply audio was made, so {output} was not written", markup=False, soft_wrap=True)
        return
    await sink.close()


def _options(talk: AudioTalk, cancelling_echo: bool = False) -> SessionOptions:
    from voicechat.session import SessionOptions

    # Scripted audio carries no echo of the replies, so it is heard in full duplex like headphones.
    if talk.inputs:
        return SessionOptions(barge_in=talk.barge_in, full_duplex=True)
    if talk.headphones:
        return SessionOptions(barge_in=talk.barge_in, full_duplex=True, onset_barge_in=True)
    if cancelling_echo:
        # What the canceller leaves of a reply is quiet but not always silent (it slips when the machine is
        # too busy to keep the streams in step): while a reply plays, sound under CLEANED_GATE is not the user.
        return SessionOptions(barge_in=talk.barge_in, full_duplex=False, barge_in_level=CLEANED_GATE,
                              onset_barge_in=True)
    return SessionOptions(barge_in=talk.barge_in, full_duplex=False)  # half duplex: the -30 dBFS gate


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
            await microphone.open()
            err().print(LISTENING, markup=False)  # scripts wait for this line before they speak
            session.greet()  # speaking over it interrupts it, like any reply
            await session.feed_from(microphone.frames())
        return 0
    from rich.console import Group

    from voicechat.live.keys import LiveKeys

    state = ViewState(user_name=session.conversation.user_name, status="loading the voices and the recognizer")
    session.observe(state.handle)
    keys = LiveKeys(session)
    with Live(Group(LiveView(state), keys.help), console=err(), refresh_per_second=12, transient=False):
        async with session:
            await microphone.open()
            state.status = "listening"
            err().print(LISTENING, style="dim")  # above the live view
            session.greet()
            with keys.reading():
                async for frame in microphone.frames():
                    heard = keys.gate.pass_frame(frame)
                    state.level = heard.level
                    session.feed(heard)
                    if keys.quit.is_set():
                        break
    return 0

