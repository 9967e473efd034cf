"""`voicechat talk`: the live voice loop, scripted turns from audio files, or typed turns with --text.

The typed mode lives here; the audio modes (microphone, --input files) are in live_talk.py.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from voicechat.errors import NoAudioDeviceError, VoicechatError

if TYPE_CHECKING:
    from voicechat.audio.sinks import AudioSink
    from voicechat.config.models import Character, Profile
    from voicechat.events import Sentence, TextDelta
    from voicechat.llm.conversation import Conversation
    from voicechat.transcript import TranscriptWriter
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
        False, "--headphones", help="Full duplex: the microphone stays open while replies play (no echo)."
    ),
    interrupt_after: float | None = typer.Option(
        None, "--interrupt-after", min=0.0,
        help="With several --input files: start each next one this many seconds after the reply's first audio "
        "(a scripted barge-in).",
    ),
) -> None:
    """Talk with one or more characters: by voice (microphone, or --input files) or typed with --text.

    Speaking while a character talks interrupts it (barge-in). Typed: /reset starts over, /quit stops.

    Every finished turn is appended to the transcript.
    """
    from voicechat.config.store import load_character, load_profile
    from voicechat.fileio import check_writable_target
    from voicechat.transcript import TranscriptWriter, default_path

    overrides = {key: value for key, value in (("llm.base_url", base_url), ("llm.model", model)) if value}
    settings = load_profile(profile, overrides)
    names = list(dict.fromkeys(character or [DEFAULT_CHARACTER]))
    characters = [load_character(name) for name in names]
    target = transcript or default_path()
    if transcript:
        check_writable_target(target)
    if not text:
        _talk_by_voice(settings, characters, target, inputs or [], output, input_device, output_device,
                       not no_barge_in, headphones, interrupt_after)
        return
    audio = None if no_audio else _prepare_audio(settings, characters)
    failed = asyncio.run(_session(settings, characters, names, TranscriptWriter(target), audio))
    if failed:
        raise VoicechatError(f"{failed} turn(s) got no full reply (see above); the transcript is {target}")


def _talk_by_voice(settings: Profile, characters: list[Character], target: Path, inputs: list[Path],
                   output: Path | None, input_device: str | None, output_device: str | None, barge_in: bool,
                   headphones: bool, interrupt_after: float | None) -> None:
    from voicechat.commands.live_talk import AudioTalk, run
    from voicechat.errors import UsageError

    if output is not None and not inputs:
        raise UsageError("--output goes with --input (scripted turns); the live loop plays on the speakers")
    failed = run(AudioTalk(settings, characters, target, tuple(inputs), output, input_device, output_device,
                           barge_in, headphones, interrupt_after))
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


async def _session(settings: Profile, characters: list[Character], names: list[str], writer: TranscriptWriter,
                   audio: tuple[TextToSpeech, Callable[[], AudioSink]] | None) -> int:
    from voicechat.config.store import load_character
    from voicechat.console import err
    from voicechat.llm.conversation import Conversation
    from voicechat.llm.registry import create_chat_model

    chat = await asyncio.to_thread(create_chat_model, settings.llm)
    for notice in chat.notices:
        err().print(f"note: {notice}", markup=False, soft_wrap=True)
    conversation = Conversation(chat, characters, settings.user_name, settings.llm.history_turns,
                                settings.llm.history_tokens)
    if sys.stdin.isatty():
        from rich.markup import escape

        cast = escape(", ".join(c.name for c in characters))
        err().print(f"[dim]{cast} via {escape(chat.name)}. /reset starts over, /quit (or Ctrl-D) ends.[/]",
                    soft_wrap=True)
    failed = 0
    try:
        with writer:
            async for line in _user_lines(settings.user_name):
                if line in QUIT:
                    break
                if line == "/reset":
                    conversation.reset([load_character(name) for name in names])
                    err().print("history cleared: a new conversation begins", markup=False)
                    continue
                failed += not await _turn(conversation, line, writer, audio, settings.tts.voice)
    finally:
        await chat.aclose()
    return failed


async def _user_lines(user_name: str) -> AsyncIterator[str]:
    """Lines typed at a prompt (a terminal) or read from stdin (piped), blank ones skipped, until EOF."""
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            from rich.markup import escape

            from voicechat.console import out

            try:
                line = await asyncio.to_thread(out().input, f"[bold green]{escape(user_name)}:[/] ")
            except EOFError:
                return
        else:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return
        if line.strip():
            yield line.strip()


async def _turn(conversation: Conversation, line: str, writer: TranscriptWriter,
                audio: tuple[TextToSpeech, Callable[[], AudioSink]] | None, default_voice: str) -> bool:
    """One exchange, streamed to the screen (and speakers); True when the reply came whole."""
    from voicechat.console import err
    from voicechat.llm.base import LLMError, ReplyCut
    from voicechat.text.streaming import SentenceStreamer

    printer = _ReplyPrinter()
    voices = {c.name: c.voice for c in conversation.characters}
    streamer = SentenceStreamer(voices, default_voice=voices.get(conversation.lead.name, default_voice))
    speaker = _Speaker(*audio) if audio else None
    known_unknowns = len(conversation.unknown_tags)
    ok = False
    try:
        async for delta in conversation.reply(line):
            printer.show(delta)
            if speaker:
                speaker.put_all(streamer.feed(delta))
        ok = True
    except ReplyCut as error:
        printer.end()
        err().print(f"reply cut: {error}; what came is kept in history as cut, go on", markup=False,
                    soft_wrap=True)
    except LLMError as error:
        printer.end()
        err().print(f"error: {error}", markup=False, soft_wrap=True)
    finally:
        printer.end()
        for name in conversation.unknown_tags[known_unknowns:]:
            err().print(f"note: the model tagged lines for '{name}', who is not in this chat; "
                        f"{conversation.lead.name} said them", markup=False, soft_wrap=True)
        if conversation.last_turn is not None:
            writer.write(conversation.last_turn)
        if speaker:
            speaker.put_all(streamer.finish())
            await speaker.finish()
    return ok


class _ReplyPrinter:
    """Each character's part on its own line after a bold name, printed as it arrives; whitespace at the
    edges of a part is held back so a part never ends in a blank line."""

    def __init__(self) -> None:
        from voicechat.console import out

        self.console = out()
        self.character: str | None = None
        self._held = ""

    def show(self, delta: TextDelta) -> None:
        from rich.text import Text

        text = delta.text
        if delta.character != self.character:
            text = text.lstrip()
            if not text:
                return
            self.end()
            self.console.print(Text(f"{delta.character}: ", style="bold cyan"), end="", soft_wrap=True)
            self.character = delta.character
        body = text.rstrip()
        if body:
            self.console.print(self._held + body, end="", markup=False, highlight=False, soft_wrap=True)
            self._held = ""
        self._held += text[len(body):]

    def end(self) -> None:
        if self.character is not None:
            self.console.print()
            self.character = None
        self._held = ""


class _Speaker:
    """Speaks sentences in order as they are put, through `speak`; `finish` waits until all are heard."""

    def __init__(self, tts: TextToSpeech, make_sink: Callable[[], AudioSink]) -> None:
        from voicechat.speak import speak

        self.queue: asyncio.Queue[Sentence | None] = asyncio.Queue()
        self.task = asyncio.create_task(speak(tts, self._sentences(), make_sink()))

    async def _sentences(self) -> AsyncIterator[Sentence]:
        while (sentence := await self.queue.get()) is not None:
            yield sentence

    def put_all(self, sentences: list[Sentence]) -> None:
        for sentence in sentences:
            self.queue.put_nowait(sentence)

    async def finish(self) -> None:
        self.queue.put_nowait(None)
        await self.task
