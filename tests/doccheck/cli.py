"""Parse documented command lines with the real Click commands behind the Typer app, without running them.

Typer >= 0.2x carries its own copy of Click (typer._click); older ones use Click itself. Both give commands
with `make_context`, groups with `commands` and `resolve_command`, and the same usage errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import redirect_stdout
from functools import cache
from io import StringIO
from typing import Any

import typer
import typer.main

try:
    from typer._click import exceptions as click_errors
except ImportError:  # a Typer that uses Click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]

_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*(\.\.\.|\.[a-z0-9]+)?$")
ELLIPSIS = "..."
ANY_COMMAND = "COMMAND"
Command = Any  # a Click command of whichever Click the installed Typer uses
Context = Any


class DocError(AssertionError):
    """A documented line that the program does not accept."""


@cache
def root() -> Command:
    from voicechat.cli import app

    return typer.main.get_command(app)


def is_group(command: Command) -> bool:
    return hasattr(command, "commands") and hasattr(command, "resolve_command")


def command_names() -> list[str]:
    return sorted(root().commands)


def is_placeholder(word: str) -> bool:
    """FILE, TEXT, FILE.wav, SECONDS, FILE...: words the docs write for a value of the reader's choosing."""
    return bool(_PLACEHOLDER.match(word))


def find_option(command: Command, name: str) -> Any | None:
    for param in command.params:
        if getattr(param, "param_type_name", "") == "option" and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def takes_value(param: Any) -> bool:
    return not getattr(param, "is_flag", False) and not getattr(param, "count", False)


def drop_placeholder_values(command: Command, args: list[str]) -> list[str]:
    """`--interrupt-after SECONDS` -> nothing: the option exists and takes a value; which value is the reader's."""
    kept: list[str] = []
    index = 0
    while index < len(args):
        param = find_option(command, args[index])
        if param is not None and takes_value(param) and index + 1 < len(args) and is_placeholder(args[index + 1]):
            index += 2
            continue
        kept.append(args[index])
        index += 1
    return kept


def expand(args: list[str]) -> Iterator[list[str]]:
    """Cut at a `...` word (the rest elided); COMMAND in a command position stands for each command."""
    if ELLIPSIS in args:
        args = args[: args.index(ELLIPSIS)]
    if args[:1] == [ANY_COMMAND]:
        for name in command_names():
            yield [name, *args[1:]]
    else:
        yield args


def parse(args: list[str], lenient: bool = False) -> Context | None:
    """The context of the deepest command `voicechat ARGS` reaches (None after --help); DocError if refused.

    `lenient` (prose, not a runnable example) lets placeholders stand for values and accepts a bare group.
    """
    command, name, parent, rest = root(), "voicechat", None, list(args)
    while True:
        if lenient:
            rest = drop_placeholder_values(command, rest)
        try:
            ctx = make_context(command, name, rest, parent, lenient)
        except click_errors.NoArgsIsHelpError:
            if lenient:
                return None
            raise DocError(f"`{name}` needs a command") from None
        if ctx is None or not is_group(command):
            return ctx
        remaining = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if not remaining:
            return ctx
        try:
            name, command, rest = command.resolve_command(ctx, remaining)
        except click_errors.UsageError as error:
            raise DocError(error.format_message()) from None
        parent = ctx


def make_context(command: Command, name: str, args: list[str], parent: Context | None = None,
                 lenient: bool = False) -> Context | None:
    """Click's own parse of ARGS; None when an eager option (--help, --version) ended it successfully.

    `lenient`: a missing argument is no error (prose may name `voicechat transcribe` without its files).
    """
    try:
        with redirect_stdout(StringIO()):
            return command.make_context(name, list(args), parent=parent)
    except typer.Exit as done:
        if done.exit_code:
            raise DocError(f"exits {done.exit_code} while parsing") from None
        return None
    except click_errors.NoArgsIsHelpError:
        raise
    except click_errors.MissingParameter as error:
        if lenient and getattr(error.param, "param_type_name", "") == "argument":
            return None
        raise DocError(error.format_message()) from None
    except click_errors.UsageError as error:
        raise DocError(error.format_message()) from None


def check(args: list[str], lenient: bool = False) -> list[Context]:
    """Parse every expansion of ARGS; the contexts reached (not those --help ended), to check values on."""
    return [ctx for each in expand(args) if (ctx := parse(each, lenient)) is not None]


def check_option_span(command: Command, words: list[str]) -> None:
    """Prose such as `--model ID`, `--format` or `-o -`: each option exists on COMMAND and takes what is shown.

    The kept words are parsed by Click with a stand-in for each required argument (`say TEXT`).
    """
    kept: list[str] = []
    index = 0
    while index < len(words):
        option, has_inline, _ = words[index].partition("=")
        param = find_option(command, option)
        if param is None:
            raise DocError(f"`{command.name}` has no option {option}")
        following = words[index + 1] if index + 1 < len(words) else None
        has_value = following is not None and find_option(command, following) is None
        if not takes_value(param):
            if has_inline or has_value:
                raise DocError(f"{option} of `{command.name}` is a flag and takes no value")
            kept.append(option)
            index += 1
        elif has_inline:
            kept.append(words[index])
            index += 1
        elif has_value and following is not None:
            kept += [] if is_placeholder(following) else [option, following]
            index += 2
        else:
            index += 1  # the name alone: it exists, which is all the prose says
    stand_ins = ["x" for param in command.params
                 if getattr(param, "param_type_name", "") == "argument" and param.required]
    make_context(command, str(command.name), [*kept, *stand_ins])
