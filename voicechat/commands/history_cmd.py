"""`voicechat history`: list, show, search, export and remove past conversations (the transcripts)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from voicechat.errors import UsageError

if TYPE_CHECKING:
    from voicechat.history.index import HistoryIndex

history_app = typer.Typer(
    help="Past conversations: list, show, search, export, remove (continue one with `talk --continue`).",
    no_args_is_help=True,
)

SHORT_ID = 8
ID_HELP = "Conversation ID from `voicechat history list` (its first characters are enough)."


def _open() -> HistoryIndex:
    from voicechat.history.index import open_default

    return open_default()


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@history_app.command("list")
def history_list(
    count: int = typer.Option(20, "--count", "-n", min=0, help="How many to show, newest first (0: all)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line instead of a table."),
) -> None:
    """List conversations, newest first: when, who, how many turns, and the first words."""
    import json

    from rich.table import Table

    from voicechat.console import err, out
    from voicechat.history.export import local_time

    with _open() as index:
        refreshed = index.refresh()
        found = index.conversations(count or None)
    if refreshed.skipped_lines:
        err().print(f"note: skipped {refreshed.skipped_lines} unreadable transcript line(s)", markup=False)
    if not found:
        err().print(f"no conversations yet in {index.folder}: start one with `voicechat talk`", markup=False)
        return
    if as_json:
        for item in found:
            typer.echo(json.dumps({"conversation_id": item.conversation_id, "started": item.started,
                                   "last": item.last, "characters": list(item.characters), "turns": item.turns,
                                   "first_words": item.first_words, "transcript": item.path}, ensure_ascii=False))
        return
    table = Table(box=None, pad_edge=False)
    for column in ("id", "when", "characters", "turns", "first words"):
        table.add_column(column, no_wrap=column != "first words")
    for item in found:
        table.add_row(item.conversation_id[:SHORT_ID], local_time(item.last), ", ".join(item.characters),
                      str(item.turns), _clip(item.first_words, 60))
    out().print(table, markup=False)


@history_app.command("show")
def history_show(
    conversation: str = typer.Argument(..., help=ID_HELP),
    as_json: bool = typer.Option(False, "--json", help="The conversation as JSON, every turn as transcribed."),
) -> None:
    """Show a conversation: who said what, and when."""
    typer.echo(_rendered(conversation, "json" if as_json else "txt"), nl=False)


@history_app.command("search")
def history_search(
    words: list[str] = typer.Argument(..., help="Words a turn must all contain (any case)."),
    count: int = typer.Option(50, "--count", "-n", min=1, help="Most turns to show, newest first."),
) -> None:
    """Find the turns, across all conversations, that contain every word."""
    from voicechat.console import err
    from voicechat.history.export import local_time

    with _open() as index:
        index.refresh()
        turns = index.search(words, count)
    if not turns:
        err().print(f"no turn contains {' '.join(words)!r}", markup=False)
        raise typer.Exit(1)
    for turn in turns:
        said = [f"{turn.user_name}: {turn.user}"] if turn.user else []
        said += [f"{reply.character}: {reply.text}" for reply in turn.replies]
        typer.echo(f"{turn.conversation_id[:SHORT_ID]}  {local_time(turn.started)}  {_clip(' / '.join(said), 100)}")


@history_app.command("export")
def history_export(
    conversation: str = typer.Argument(..., help=ID_HELP),
    fmt: str = typer.Option("md", "--format", "-f", help="txt, md or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file (default: stdout)."),
) -> None:
    """Export a conversation as plain text, Markdown or JSON."""
    from voicechat.history.export import FORMATS

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}': use one of {', '.join(FORMATS)}")
    if output is not None:
        from voicechat.fileio import check_writable_target

        check_writable_target(output)
    text = _rendered(conversation, fmt)
    if output is None:
        typer.echo(text, nl=False)
        return
    from voicechat.console import err
    from voicechat.fileio import atomic_write_bytes

    atomic_write_bytes(output, text.encode("utf-8"))
    err().print(f"wrote {output}", markup=False)


@history_app.command("rm")
def history_rm(
    conversation: str = typer.Argument(..., help=ID_HELP),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask first (asking happens only at a terminal)."),
) -> None:
    """Remove a conversation: its lines leave the transcripts (a transcript left empty is deleted)."""
    from voicechat.console import err
    from voicechat.history.remove import remove_conversation

    with _open() as index:
        index.refresh()
        full = index.resolve(conversation)
        summary = index.summary(full)
        if not yes and sys.stdin.isatty():
            typer.confirm(f"remove conversation {full[:SHORT_ID]} with {', '.join(summary.characters) or 'nobody'}"
                          f" ({summary.turns} turn(s))?", abort=True)
        removed = remove_conversation(full, index.paths(full))
        index.refresh()
    err().print(f"removed conversation {full} ({removed} line(s) from the transcripts)", markup=False)


@history_app.command("path")
def history_path() -> None:
    """Print where the history index is (a SQLite file you can query) and the transcripts folder it reads."""
    with _open() as index:
        index.refresh()
        typer.echo(str(index.database))
        typer.echo(str(index.folder))


def _rendered(conversation: str, fmt: str) -> str:
    from voicechat.history.export import render

    with _open() as index:
        index.refresh()
        full = index.resolve(conversation)
        return render(index.summary(full), index.turns(full), fmt)
