"""`voicechat talk`: the live voice loop, scripted turns from audio files, or typed turns with --text.

The typed mode lives here; the audio modes (microphone, --input files) are in live_talk.py.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from voicechat.errors import NoAudioDeviceError, VoicechatError

if TYPE_CHECKING:
    from voicechat.audio.sinks import AudioSink
    from voicechat.config.models import Character, Profile
    from voicechat.conversation_log import ConversationLog
    from voicechat.history.resume import Resumed
    from voicechat.session import Session
    from voicechat.tts.base import TextToSpeech

DEFAULT_CHARACTER = "lydia"
QUIT = ("/quit", "/exit")


def talk(
    text: bool = typer.Option(False, "--text", help="Type your turns (or pipe them on stdin), no microphone."),
    no_audio: bool = typer.Option(False, "--no-audio", help="Print the replies only; do not speak them."),
    profile: str = typer.Option(
        "default", "--profile", "-p", envvar="VOICECHAT_PROFILE", help="Profile from `voicechat profiles list`."
    ),
    character: list[str] | None = typer.Option(
        None, "--character", "-c", help="Character card; repeat for several (the first leads). Default: lydia."
    ),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible API URL (overrides the profile)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Model id at the endpoint (overrides the profile)."),
    transcript: Path | None = typer.Option(
        None, "--transcript", help="JSONL file to append each turn to (default: one new file in the data dir)."
    ),
    inputs: list[Path] | None = typer.Option(
        None, "--input", "-i", help="Speak this audio file as a turn instead of using the microphone (repeatable)."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the spoken replies to this WAV instead of playing them."
    ),
    input_device: str | None = typer.Option(
        None, "--input-device", help="Microphone index or name part (see `voicechat devices`)."
    ),
    output_device: str | None = typer.Option(
        None, "--output-device", help="Output device index or name part (see `voicechat devices`)."
    ),
    no_barge_in: bool = typer.Option(False, "--no-barge-in", help="Let replies finish even when you speak."),
    headphones: bool = typer.Option(
        False, "--headphones", help="No echo cancellation: the microphone cannot hear the replies (headphones)."
    ),
    interrupt_after: float | None = typer.Option(
        None, "--interrupt-after", min=0.0,
        help="With several --input files: start each next one this many seconds after the reply's first audio "
        "(a scripted barge-in).",
    ),
    resume: bool = typer.Option(
        False, "--continue", help="Go on with the last conversation, or with the one whose ID follows."
    ),
    conversation_id: str | None = typer.Argument(
        None, metavar="ID", show_default=False,
        help="With --continue: the conversation to go on with (`voicechat history list`; its start is enough).",
    ),
    no_greeting: bool = typer.Option(False, "--no-greeting", help="Start without the characters' greetings."),
) -> None:
    """Talk with one or more characters: by voice (microphone, or --input files) or typed with --text.

    Speaking while a character talks interrupts it (barge-in). Typed: /reset starts over, /quit stops.

    Every finished turn is appended to the transcript. A new conversation opens with the characters'
    greetings; --continue goes on with an earlier one instead, its turns in the model's context.
    """
    from voicechat.config.store import load_character, load_profile
    from voicechat.conversation_log import ConversationLog, default_path
    from voicechat.fileio import check_writable_target

    overrides = {key: value for key, value in (("llm.base_url", base_url), ("llm.model", model)) if value}
    settings = load_profile(profile, overrides)
    resumed = _resumed(resume, conversation_id)
    names = list(dict.fromkeys(character or _cast_of(resumed) or [DEFAULT_CHARACTER]))
    characters = [load_character(name) for name in names]
    target = transcript or (resumed.transcript if resumed else default_path())
    if transcript:
        check_writable_target(target)
    start = Start(resumed, greet=not no_greeting)
    if not text:
        _talk_by_voice(settings, characters, target, inputs or [], output, input_device, output_device,
                       not no_barge_in, headphones, interrupt_after, start)
        return
    audio = None if no_audio else _prepare_audio(settings, characters)
    failed = asyncio.run(_typed(settings, characters, names, ConversationLog(target), audio, start))
    if failed:
        raise VoicechatError(f"{failed} turn(s) got no full reply (see above); the transcript is {target}")


@dataclass(frozen=True)
class Start:
    """How the conversation begins: going on with an earlier one, or new (with greetings unless turned off)."""

    resumed: Resumed | None = None
    greet: bool = True


def _resumed(resume: bool, conversation_id: str | None) -> Resumed | None:
    from voicechat.errors import UsageError
    from voicechat.history.resume import LAST, find

    if conversation_id is not None and not resume:
        raise UsageError(f"'{conversation_id}': talk takes no arguments; to go on with that conversation, "
                         f"pass --continue {conversation_id}")
    return find(conversation_id or LAST) if resume else None


def _cast_of(resumed: Resumed | None) -> list[str]:
    from voicechat.history.resume import character_cards

    return character_cards(resumed) if resumed else []


def _talk_by_voice(settings: Profile, characters: list[Character], target: Path, inputs: list[Path],
                   output: Path | None, input_device: str | None, output_device: str | None, barge_in: bool,
                   headphones: bool, interrupt_after: float | None, start: Start) -> None:
    from voicechat.commands.live_talk import AudioTalk, run
    from voicechat.errors import UsageError

    if output is not None and not inputs:
        raise UsageError("--output goes with --input (scripted turns); the live loop plays on the speakers")
    failed = run(AudioTalk(settings, characters, target, tuple(inputs), output, input_device, output_device,
                           barge_in, headphones, interrupt_after, start.resumed, start.greet))
    if failed:
        raise VoicechatError(f"{failed} input(s) got no reply (see above); the transcript is {target}")


def _prepare_audio(settings: Profile, characters: list[Character]) -> tuple[TextToSpeech, Callable[[], AudioSink]]:
    """The TTS engine and a speaker factory, checked now so a missing device fails before any turn."""
    from voicechat.audio.sinks import SpeakerSink
    from voicechat.config.store import load_voice
    from voicechat.tts.registry import create_tts

    for voice in {settings.tts.voice, *(c.voice for c in characters)}:
        load_voice(voice)
    try:
        SpeakerSink(None)
    except NoAudioDeviceError:
        raise NoAudioDeviceError(
            "no audio output device to speak the replies on: pass --no-audio to only print them"
        ) from None
    return create_tts(settings.tts), lambda: SpeakerSink(None)


async def _typed(settings: Profile, characters: list[Character], names: list[str], writer: ConversationLog,
                 audio: tuple[TextToSpeech, Callable[[], AudioSink]] | None, start: Start) -> int:
    """Typed turns through the same Session as speech; the number of turns that got no full reply."""
    from voicechat.console import err, out
    from voicechat.events import TurnFinished
    from voicechat.session_setup import build_session, open_chat
    from voicechat.typed_view import TypedView

    def notify(notice: str) -> None:
        err().print(f"note: {notice}", markup=False, soft_wrap=True)

    chat = await asyncio.to_thread(open_chat, settings, notify)
    tts, make_sink = audio if audio else (None, None)
    interactive = sys.stdin.isatty()
    failures: list[TurnFinished] = []
    with writer:
        session = build_session(settings, characters, chat, tts=tts, sink=make_sink() if make_sink else None,
                                transcript=writer, resume=start.resumed, greet=start.greet)
        session.observe(TypedView(out(), err(), interactive).handle)
        session.observe(lambda event: failures.append(event)
                        if isinstance(event, TurnFinished) and not event.complete else None)
        if interactive:
            _show_cast(session, chat.name)
        try:
            async with session:
                await _take_lines(session, names, settings.user_name, interactive)
        finally:
            await chat.aclose()
            if session.playback is not None:
                await session.playback.sink.close()
    return len(failures)


def _show_cast(session: Session, chat_name: str) -> None:
    from rich.markup import escape

    from voicechat.console import err

    cast = escape(", ".join(c.name for c in session.conversation.characters))
    err().print(f"[dim]{cast} via {escape(chat_name)}. /reset starts over, /quit (or Ctrl-D) ends; a new line "
                "while a character speaks interrupts it.[/]", soft_wrap=True)


async def _take_lines(session: Session, names: list[str], user_name: str, interactive: bool) -> None:
    """Each line a turn. Piped lines wait for the reply before them; typed ones may interrupt it."""
    from voicechat.config.store import load_character
    from voicechat.console import err

    lines = _LineReader(user_name, interactive)
    expected = await _greeted(session)
    while (line := await lines.next(session)) is not None:
        if line in QUIT:
            break
        if line == "/reset":
            await session.reset([load_character(name) for name in names])
            err().print("history cleared: a new conversation begins", markup=False)
            expected = await _greeted(session)
            continue
        await session.submit_text(line)
        expected += 1
        if not interactive:
            await session.wait_for_turns(expected)
    await session.wait_for_turns(expected)  # the last reply plays out


async def _greeted(session: Session) -> int:
    """The greetings heard out (when the conversation is new); the number of turns finished by then."""
    greeting = session.greet()
    if greeting is not None:
        await asyncio.gather(greeting, return_exceptions=True)  # a greeting cut short is not a failure here
    return session.turns_finished


class _LineReader:
    """Lines from stdin, read in a daemon thread so that a reply streams (and can be interrupted by the next
    line) while the user types; blank lines skipped; None at end of input."""

    def __init__(self, user_name: str, interactive: bool) -> None:
        self.user_name, self.interactive = user_name, interactive
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._wanted = threading.Event()
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._read, name="voicechat-stdin", daemon=True).start()

    def _read(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            line = sys.stdin.readline()
            self._loop.call_soon_threadsafe(self._lines.put_nowait, line if line else None)
            if not line:
                return

    async def next(self, session: Session) -> str | None:
        while True:
            self._wanted.set()
            getter = asyncio.ensure_future(self._lines.get())
            if self.interactive:
                while session.replying and not getter.done():
                    await asyncio.wait({getter}, timeout=0.05)
                if not getter.done():
                    self._prompt()
            line = await getter
            if line is None:
                return None
            if line.strip():
                return line.strip()

    def _prompt(self) -> None:
        from rich.markup import escape

        from voicechat.console import out

        out().print(f"[bold green]{escape(self.user_name)}:[/] ", end="")
