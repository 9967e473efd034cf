"""`voicechat profiles|characters|voices`: list, show and create the TOML-described settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from voicechat.errors import UsageError

profiles_app = typer.Typer(help="Model profiles: LLM endpoint and sampling, STT and TTS engines.", no_args_is_help=True)
characters_app = typer.Typer(help="Character cards: name, persona, voice, greeting.", no_args_is_help=True)
voices_app = typer.Typer(help="Voices: what each TTS engine needs to speak in that voice.", no_args_is_help=True)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # used with fullmatch: `$` lets a final newline in


def _print_list(kind: str, describe: Any) -> None:
    from rich.table import Table

    from voicechat.config.store import list_files
    from voicechat.console import out

    table = Table(box=None, pad_edge=False)
    for column in ("name", "source", "about"):
        table.add_column(column)
    for config_file in list_files(kind):  # type: ignore[arg-type]
        table.add_row(config_file.name, config_file.source, describe(config_file.name))
    out().print(table)


def _print_toml(data: dict[str, Any], sources: list[str]) -> None:
    import tomli_w

    from voicechat.console import out

    for source in sources:
        out().print(f"# from {source}", markup=False, soft_wrap=True)  # a path is never wrapped
    out().print(tomli_w.dumps(data).rstrip(), markup=False)


def _first_line(text: str, width: int = 60) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


@profiles_app.command("list")
def profiles_list() -> None:
    """List the profiles (yours override packaged ones of the same name)."""
    from voicechat.config.store import load_profile

    def about(name: str) -> str:
        try:
            profile = load_profile(name, environ={})
        except UsageError as error:
            return f"[red]broken:[/] {error}"
        return f"llm {profile.llm.model} · stt {profile.stt.engine} · tts {profile.tts.engine}/{profile.tts.voice}"

    _print_list("profiles", about)


@profiles_app.command("keys")
def profiles_keys(
    prefix: str = typer.Argument("", help="Only keys that start with this, e.g. llm or tts.higgs."),
) -> None:
    """Every profile key with its type, default and what it does (the settings models' own descriptions)."""
    from voicechat.config.models import Profile
    from voicechat.console import out

    keys = [key for key in setting_keys(Profile) if key[0].startswith(prefix)]
    if not keys:
        raise UsageError(f"no profile key starts with '{prefix}': see `voicechat profiles keys`")
    width = max(len(f"{key} = {default}") for key, _, default, _ in keys)
    for key, kind, default, about in keys:
        out().print(f"{f'{key} = {default}':<{width}}  ({kind}) {about}", markup=False, highlight=False,
                    soft_wrap=True)


def setting_keys(model: Any, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, description) for each leaf field of a settings model, as TOML spells them."""
    from pydantic import BaseModel

    rows: list[tuple[str, str, str, str]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            rows += setting_keys(kind, key + ".")
            continue
        default = field.get_default(call_default_factory=True)
        shown = "required" if field.is_required() else repr(default) if isinstance(default, str) else str(default)
        kind_name = getattr(kind, "__name__", None) or str(kind).replace("typing.", "")
        rows.append((key, kind_name, shown, field.description or ""))
    return rows


@profiles_app.command("show")
def profiles_show(name: str = typer.Argument("default", help="Profile name.")) -> None:
    """Show a profile as it applies now: packaged file, your file and VOICECHAT_* variables merged."""
    from voicechat.config.store import environment_overrides, find_files, load_profile

    profile = load_profile(name)
    sources = [str(f.path) for f in find_files("profiles", name)]
    sources += [f"environment: VOICECHAT_{key.replace('.', '_').upper()}" for key in environment_overrides()]
    _print_toml(profile.model_dump(mode="json"), sources)


@profiles_app.command("new")
def profiles_new(
    name: str = typer.Argument(..., help="Name of the new profile."),
    base: str = typer.Option("default", "--from", help="Profile to start from."),
    settings: list[str] = typer.Option([], "--set", help="KEY=VALUE, e.g. llm.temperature=0.5 (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing profile of yours."),
) -> None:
    """Create a profile in your config dir from another one, with changed settings."""
    from voicechat.config.models import Profile
    from voicechat.config.store import (
        deep_merge,
        dotted_to_nested,
        load_profile,
        parse_assignment,
        validate,
        write_user_file,
    )
    from voicechat.console import err

    if not _NAME.fullmatch(name):
        raise UsageError(f"profile name '{name}': use letters, digits, '-', '_' or '.' (up to 64)")
    changes = dict(parse_assignment(item) for item in settings)
    base_profile = load_profile(base, environ={})
    data = deep_merge(base_profile.model_dump(mode="json"), dotted_to_nested(changes))
    validate(Profile, data, f"profile '{name}' (--from {base} with --set)")
    path = write_user_file("profiles", name, data, overwrite=force)
    err().print(f"wrote {path}")


@characters_app.command("list")
def characters_list() -> None:
    """List the character cards."""
    from voicechat.config.store import load_character

    def about(name: str) -> str:
        try:
            character = load_character(name)
        except UsageError as error:
            return f"[red]broken:[/] {error}"
        return f"{character.name} (voice {character.voice}): {_first_line(character.persona)}"

    _print_list("characters", about)


@characters_app.command("show")
def characters_show(name: str = typer.Argument(..., help="Character name.")) -> None:
    """Show a character card."""
    from voicechat.config.store import find_files, load_character

    character = load_character(name)
    _print_toml(character.model_dump(mode="json"), [str(find_files("characters", name)[-1].path)])


@voices_app.command("list")
def voices_list() -> None:
    """List the voices."""
    from voicechat.config.store import load_voice

    def about(name: str) -> str:
        try:
            entry = load_voice(name)
        except UsageError as error:
            return f"[red]broken:[/] {error}"
        reference = " · reference audio" if entry.reference_audio else ""
        return f"piper {entry.voice.piper.model}{reference} · {_first_line(entry.voice.description, 40)}"

    _print_list("voices", about)


@voices_app.command("show")
def voices_show(name: str = typer.Argument(..., help="Voice name.")) -> None:
    """Show a voice and the reference files beside it."""
    from voicechat.config.store import find_files, load_voice

    entry = load_voice(name)
    sources = [str(find_files("voices", name)[-1].path)]
    sources += [f"reference: {path}" for path in (entry.reference_audio, entry.reference_text) if path]
    _print_toml(entry.voice.model_dump(mode="json", exclude_none=True), sources)


@voices_app.command("new")
def voices_new(
    name: str = typer.Argument(..., help="Name of the new voice."),
    source: Path | None = typer.Option(None, "--from", help="A recording of the voice (wav, flac, mp3, ogg, m4a...)."),
    seconds: float | None = typer.Option(
        None, "--record", min=5.0, max=60.0, help="Record this many seconds from the microphone instead."
    ),
    text: str | None = typer.Option(None, "--text", help="What the recording says (default: Whisper hears it)."),
    description: str = typer.Option("", "--description", help="How the voice sounds, in words."),
    input_device: str | None = typer.Option(
        None, "--input-device", help="Microphone index or name part for --record (see `voicechat devices`)."
    ),
    profile: str = typer.Option(
        "default", "--profile", "-p", envvar="VOICECHAT_PROFILE", help="Profile whose STT settings transcribe it."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a voice of yours with this name."),
) -> None:
    """Make a voice for cloning engines (Higgs) from 5-20 s of clean speech: NAME.wav, NAME.txt and NAME.toml."""
    from voicechat import voices_new as new

    if not _NAME.fullmatch(name):
        raise UsageError(f"voice name '{name}': use letters, digits, '-', '_' or '.' (up to 64)")
    if (source is None) == (seconds is None):
        raise UsageError("give the voice's audio: --from FILE (a recording) or --record SECONDS (the microphone)")
    new.target_folder(name, force)  # an existing voice fails before any recording
    from voicechat.config.store import load_profile

    stt = load_profile(profile).stt
    if source is not None:
        samples, rate = new.from_file(source)
        label = str(source)
    else:
        from voicechat.audio.record import record

        samples, rate = record(seconds or 0.0, input_device)
        label = "the recording"
    new.report(new.make_voice(name, samples, rate, label, text, stt, description, force))
