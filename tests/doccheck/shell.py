"""Shell lines as a user types them, cut into the simple commands that run `voicechat`."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_OPERATOR_CHARS = set("();<>|&")
_WRAPPERS = {"env", "time", "sudo", "exec", "nohup", "command"}
SHELL_LANGS = {"", "bash", "sh", "shell", "console", "zsh", "shell-session"}


@dataclass(frozen=True)
class Invocation:
    """One `voicechat ...` command: the environment set before it, its arguments, its line and comment."""

    env: dict[str, str]
    args: list[str]
    line: str
    comment: str


def strip_comment(line: str) -> tuple[str, str]:
    """Split at an unquoted `#` that starts a word, as a shell does; returns (code, comment)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index], line[index + 1:].strip()
    return line, ""


def simple_commands(code: str) -> list[list[str]]:
    """The words of each command in a pipeline or `&&` / `;` list, with redirections taken out."""
    lexer = shlex.shlex(code, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    commands: list[list[str]] = [[]]
    skip_next = False
    for token in lexer:
        if skip_next:
            skip_next = False
        elif token and set(token) <= _OPERATOR_CHARS:
            if "<" in token or ">" in token:
                skip_next = True  # the file of a redirection
            else:
                commands.append([])
        else:
            commands[-1].append(token)
    return [words for words in commands if words]


def voicechat_args(words: list[str]) -> tuple[dict[str, str], list[str]] | None:
    """(environment, arguments) when the command runs voicechat (also `.venv/bin/voicechat`, `python -m`)."""
    env: dict[str, str] = {}
    rest = list(words)
    while rest and (_ASSIGNMENT.match(rest[0]) or rest[0] in _WRAPPERS):
        name, _, value = rest.pop(0).partition("=")
        if value or name not in _WRAPPERS:
            env[name] = value
    if not rest:
        return None
    program = rest[0].rsplit("/", 1)[-1]
    if rest[1:2] and rest[1].endswith(":"):
        return None  # printed output, such as "voicechat serve: http://127.0.0.1:8765/ ..."
    if rest[0] == "voicechat" or rest[0].endswith("bin/voicechat"):  # not a folder such as ~/.config/voicechat
        return env, rest[1:]
    if re.fullmatch(r"python[\d.]*", program) and rest[1:3] == ["-m", "voicechat"]:
        return env, rest[3:]
    return None


def invocations(line: str) -> list[Invocation]:
    """Every voicechat command on one (already joined) shell line; raises ValueError on unbalanced quotes."""
    code, comment = strip_comment(line)
    found = []
    for words in simple_commands(code):
        parsed = voicechat_args(words)
        if parsed is not None:
            found.append(Invocation(parsed[0], parsed[1], line.strip(), comment))
    return found


def logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join backslash continuations and drop a `$ ` prompt, keeping the number of each first line."""
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in lines:
        text = raw.rstrip()
        if pending is not None:
            number, text = pending[0], pending[1] + " " + text.lstrip()
        if text.endswith("\\"):
            pending = (number, text[:-1])
            continue
        pending = None
        bare = text.lstrip()
        joined.append((number, bare[2:] if bare.startswith("$ ") else bare))
    if pending is not None:
        joined.append(pending)
    return joined
