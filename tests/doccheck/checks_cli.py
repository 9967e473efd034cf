"""Documented command lines, option names and the command table, against the real CLI."""

from __future__ import annotations

import re

from tests.doccheck import cli, settings
from tests.doccheck.markdown import Doc, Span, spans_in
from tests.doccheck.shell import SHELL_LANGS, Invocation, invocations, logical_lines, simple_commands
from voicechat.config import store

_OPTION_SPAN = re.compile(r"^-{1,2}[A-Za-z][\w-]*(?:[ =]|$)")
_URL = re.compile(r"https?://(\[[0-9a-fA-F:]+\]|[\w.-]+):(\d+)")


def code_invocations(docs: list[Doc]) -> tuple[list[tuple[str, Invocation]], list[str]]:
    """Every voicechat command in the docs' shell code blocks, and the lines that could not be split."""
    found, problems = [], []
    for doc in docs:
        for block in doc.blocks:
            if block.lang not in SHELL_LANGS:
                continue
            hint = "" if block.lang else " (a block of output, not commands? mark it ```text)"
            for number, line in logical_lines(list(block.lines)):
                try:
                    found += [(doc.where(number) + hint, each) for each in invocations(line)]
                except ValueError as error:
                    if "voicechat" in line:
                        problems.append(f"{doc.where(number)}: cannot split `{line}` as a shell does: {error}")
    return found, problems


def command_line_problems(docs: list[Doc]) -> list[str]:
    found, problems = code_invocations(docs)
    for where, invocation in found:
        try:
            contexts = cli.check(invocation.args)
        except cli.DocError as error:
            problems.append(f"{where}: `{invocation.line}`: {error}")
            continue
        for ctx in contexts:
            problems += [f"{where}: `{invocation.line}`: {text}" for text in value_problems(ctx, invocation)]
    return problems


def value_problems(ctx: cli.Context, invocation: Invocation) -> list[str]:
    """What the parse accepted but the program would refuse or the line's comment gets wrong."""
    problems = []
    for param in ctx.command.params:
        if "--set" in param.opts:
            for item in ctx.params.get(param.name or "", ()) or ():
                key, value = store.parse_assignment(item)
                if error := settings.assignment_error(key, value):
                    problems.append(f"--set {item}: {error}")
    url = _URL.search(invocation.comment)
    if url and {"host", "port"} <= set(ctx.params):
        host, port = url.group(1).strip("[]"), int(url.group(2))
        if (str(ctx.params["host"]), ctx.params["port"]) != (host, port):
            problems.append(f"the comment says {url.group(0)} but it listens on "
                            f"{ctx.params['host']}:{ctx.params['port']}")
    return problems


def inline_command_problems(docs: list[Doc]) -> list[str]:
    """`voicechat ...` in prose, tables and headings: as a code line, but placeholders (TEXT, FILE...) may
    stand in."""
    problems = []
    for doc in docs:
        titles = [(number, text) for number, text in doc.headings if text.startswith("voicechat ")]
        for number, text in [*((span.line_no, span.text) for span in doc.spans), *titles]:
            try:
                found = invocations(text)
            except ValueError:
                continue
            for invocation in found:
                try:
                    for ctx in cli.check(invocation.args, lenient=True):
                        problems += [f"{doc.where(number)}: `{text}`: {each}"
                                     for each in value_problems(ctx, invocation)]
                except cli.DocError as error:
                    problems.append(f"{doc.where(number)}: `{text}`: {error}")
    return problems


def command_in(text: str) -> cli.Command | None:
    """The command a heading or span names: `voicechat talk --text` -> talk."""
    words = text.replace("`", " ").split()
    if "voicechat" not in words:
        return None
    command: cli.Command = cli.root()
    for word in words[words.index("voicechat") + 1:]:
        if not cli.is_group(command) or word not in command.commands:
            break
        command = command.commands[word]
    return None if command is cli.root() else command


def commands_named(line: str) -> list[cli.Command]:
    """Commands a line of prose mentions, as `voicechat say ...` or a bare `say`."""
    named = []
    for text in spans_in(line):
        command = command_in(text) or cli.root().commands.get(text)
        if command is not None:
            named.append(command)
    return named


def option_span_problems(docs: list[Doc]) -> list[str]:
    """`--model ID` in a command's section is an option of that command (or of one of its subcommands, or of
    a command the same line names)."""
    problems = []
    for doc in docs:
        for span in doc.spans:
            command = command_in(span.heading)
            if command is None or not _OPTION_SPAN.match(span.text):
                continue
            if error := _option_error(span, command):
                problems.append(f"{doc.where(span.line_no)}: `{span.text}` under '{span.heading}': {error}")
    return problems


def _option_error(span: Span, command: cli.Command) -> str | None:
    words = simple_commands(span.text)[0]
    first_error = None
    subcommands = list(command.commands.values()) if cli.is_group(command) else []
    for candidate in [command, *subcommands, *commands_named(span.line)]:
        try:
            cli.check_option_span(candidate, words)
            return None
        except cli.DocError as error:
            first_error = first_error or str(error)
    return first_error


def command_table_problems(docs: list[Doc]) -> list[str]:
    """A table headed `command` lists every command the program has."""
    problems = []
    for doc in docs:
        for table in doc.tables:
            if not table.header or table.header[0].lower() != "command":
                continue
            listed = set()
            for row in table.rows:
                for text in spans_in(row[0]):
                    words = text.split()
                    listed.add(words[1] if words[0] == "voicechat" and len(words) > 1 else words[0])
            missing = sorted(set(cli.command_names()) - listed)
            if missing:
                problems.append(f"{doc.where(table.line_no)}: the command table leaves out {', '.join(missing)}")
    return problems


def option_table_problems(docs: list[Doc]) -> list[str]:
    """A table headed by an option (`--format`) whose row says "(default)" names the option's real default."""
    problems = []
    for doc in docs:
        for table in doc.tables:
            command = command_in(table.heading)
            header = spans_in(table.header[0]) if table.header else []
            param = cli.find_option(command, header[0].split()[0]) if command and header else None
            if param is None or param.default is None:
                continue
            for row in table.rows:
                values = spans_in(row[0])
                if "(default)" in row[0] and values and values[0] != str(param.default):
                    problems.append(f"{doc.where(table.line_no)}: `{values[0]}` is marked the default of "
                                    f"{header[0]}, which defaults to {param.default!r}")
    return problems


def option_default_problems(docs: list[Doc]) -> list[str]:
    """"the default `--host 127.0.0.1`" in a command's section is that option's real default."""
    problems = []
    for doc in docs:
        for span in doc.spans:
            command = command_in(span.heading)
            option, _, value = span.text.partition(" ")
            if command is None or f"default `{span.text}`" not in span.line or not value:
                continue
            param = cli.find_option(command, option)
            if param is not None and str(param.default) != value:
                problems.append(f"{doc.where(span.line_no)}: {option} defaults to {param.default!r}, not {value!r}")
    return problems
