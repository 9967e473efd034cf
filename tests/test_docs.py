"""The README and docs/*.md against the program: commands, options, settings, defaults and error texts.

No models load; every check asks the real CLI (Click's parser behind the Typer app) or the real config
loader, so a doc line that stops being true fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.doccheck import checks_cli, checks_messages, checks_settings, cli, markdown, messages, shell
from tests.doccheck.markdown import Doc

REPO = Path(__file__).resolve().parent.parent
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
Check = Callable[[list[Doc]], list[str]]

CHECKS: dict[str, Check] = {
    "command lines in code blocks": checks_cli.command_line_problems,
    "voicechat commands in prose": checks_cli.inline_command_problems,
    "options named in a command's section": checks_cli.option_span_problems,
    "the command table": checks_cli.command_table_problems,
    "defaults in option tables": checks_cli.option_table_problems,
    "option defaults in prose": checks_cli.option_default_problems,
    "profile keys and values": checks_settings.key_problems,
    "defaults stated in prose": checks_settings.prose_default_problems,
    "defaults tables": checks_settings.defaults_table_problems,
    "TOML examples": checks_settings.toml_problems,
    "VOICECHAT_* variables": checks_settings.environment_problems,
    "ports of packaged profiles": checks_settings.profile_port_problems,
    "packaged names": checks_settings.packaged_list_problems,
    "troubleshooting messages": checks_messages.troubleshooting_problems,
}


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    return [markdown.parse(path) for path in DOC_FILES]


def _fake_doc(tmp_path: Path, text: str) -> list[Doc]:
    path = tmp_path / "README.md"
    path.write_text(text, encoding="utf-8")
    return [markdown.parse(path)]


@pytest.mark.parametrize("name", list(CHECKS))
def test_docs_tell_the_truth(docs: list[Doc], name: str) -> None:
    problems = CHECKS[name](docs)
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_the_docs_hold_command_lines_to_check(docs: list[Doc]) -> None:
    found, _ = checks_cli.code_invocations(docs)
    assert len(found) >= 20, "the code-block scan found too few voicechat lines: is the parser broken?"
    assert {args[0] for _, invocation in found if (args := invocation.args)} >= {"say", "transcribe", "talk"}


# --- the checker itself: made-up things fail it ---

@pytest.mark.parametrize("args, complaint", [
    (["say", "hi", "--loudness", "3"], "--loudness"),
    (["sing", "hi"], "sing"),
    (["profiles", "frobnicate"], "frobnicate"),
    (["serve", "--port", "eighty"], "--port"),
    (["talk", "--interrupt-after", "-1"], "--interrupt-after"),
    (["transcribe"], "paths"),
    (["say", "hi", "there"], "there"),
])
def test_cli_check_refuses_what_the_program_refuses(args: list[str], complaint: str) -> None:
    with pytest.raises(cli.DocError, match=complaint):
        cli.check(args)


@pytest.mark.parametrize("args, reached", [
    (["say", "hi", "-o", "-"], ["say"]),
    (["profiles", "new", "x", "--set", "a=b"], ["new"]),
    (["transcribe", "a.wav", "-f", "json", "--word-timestamps"], ["transcribe"]),
    (["--help"], []), (["talk", "--help"], []), (["--version"], []),  # parsed, then ended by the eager option
])
def test_cli_check_accepts_real_lines(args: list[str], reached: list[str]) -> None:
    assert [ctx.command.name for ctx in cli.check(args)] == reached


def test_prose_placeholders_stand_for_values_and_commands() -> None:
    cli.check(["talk", "--interrupt-after", "SECONDS"], lenient=True)
    cli.check(["COMMAND", "--help"], lenient=True)
    cli.check(["profiles"], lenient=True)
    cli.check(["profiles", "new", "gpu", "...", "--whatever"], lenient=True)
    with pytest.raises(cli.DocError):
        cli.check(["COMMAND", "--bogus"], lenient=True)


def test_shell_lines_split_into_voicechat_invocations() -> None:
    line = ('VOICECHAT_PROFILE=fast .venv/bin/voicechat say "a # b" -o - | aplay && '
            'voicechat talk --text > out.txt  # a comment')
    found = shell.invocations(line)
    assert [(each.env, each.args) for each in found] == [
        ({"VOICECHAT_PROFILE": "fast"}, ["say", "a # b", "-o", "-"]),
        ({}, ["talk", "--text"]),
    ]
    assert found[0].comment == "a comment"
    assert shell.invocations("python -m voicechat devices; echo done")[0].args == ["devices"]
    assert shell.invocations("pip install voicechat-extra") == []
    assert shell.invocations("voicechat serve: http://127.0.0.1:8765/ (piper); Ctrl+C stops") == []


def test_a_made_up_option_or_command_in_a_readme_fails(tmp_path: Path) -> None:
    docs = _fake_doc(tmp_path, "\n".join([
        "## voicechat say --loud", "", "```bash",
        "voicechat say hi -o x.wav   # fine",
        "echo hi | voicechat say - --loudness 3 | aplay",
        "voicechat sing hi",
        "```", "",
        "Use `--shout` for more, or `voicechat talk --nope`.", "",
    ]))
    problems = checks_cli.command_line_problems(docs) + checks_cli.inline_command_problems(docs)
    problems += checks_cli.option_span_problems(docs)
    assert len(problems) == 5, problems
    for word, problem in zip(["--loudness", "sing", "--nope", "--loud", "--shout"], problems, strict=True):
        assert word in problem


def test_a_span_wrapped_onto_the_next_line_is_read_whole(tmp_path: Path) -> None:
    docs = _fake_doc(tmp_path, "Say it with `voicechat say hi\n--bogus`, or `voicechat talk\n--text`.\n")
    assert [(span.text, span.line_no) for span in docs[0].spans] == [
        ("voicechat say hi --bogus", 1), ("voicechat talk --text", 2)]
    assert ["--bogus" in problem for problem in checks_cli.inline_command_problems(docs)] == [True]


def test_wrong_settings_claims_fail(tmp_path: Path) -> None:
    docs = _fake_doc(tmp_path, "\n".join([
        "**Settings** (`[tts.higgs]`):", "",
        "| key | default | what |", "|---|---|---|",
        "| `top_k`, `seed` | 50, 7 | sampling |", "",
        "Your turn ends after `stt.end_of_turn_silence` seconds (0.6 by default). Set `llm.temprature`,",
        "or `llm.top_p = 3.0`, or `VOICECHAT_LLM_TOPP=1`.", "",
        "```toml", "[llm]", "temprature = 0.5", "```", "",
        "```toml", "[tts.openai-speech]", 'model = "x"   # default tts-1', "```", "",
        "```bash", "voicechat serve  # http://127.0.0.1:9999/", "```", "",
        "## voicechat transcribe", "", "| `--format` | what |", "|---|---|", "| `srt` (default) | subtitles |", "",
        "## voicechat serve", "", "On the default `--port 8000` it listens.", "",
        "| symptom | fix |", "|---|---|",
        "| `Higgs needs a GPU badly` | buy one |",
        "| `unknown key 'llm.temperature' (known keys: ...)` | fix |", "",
    ]))
    problems = [problem for check in CHECKS.values() for problem in check(docs)]
    for expected in ["`seed`", "0.6", "llm.temprature", "llm.top_p = 3.0", "VOICECHAT_LLM_TOPP",
                     "no valid profile", "tts-1", "9999", "`srt`", "not '8000'", "Higgs needs a GPU badly",
                     "llm.temperature"]:
        assert any(expected in problem for problem in problems), (expected, problems)


def test_true_statements_of_every_kind_pass(tmp_path: Path) -> None:
    docs = _fake_doc(tmp_path, "\n".join([
        "## voicechat profiles", "",
        "`talk` speaks with Piper by default; `stt.beam_size` 5 by default. `list` has no options.", "",
        "```toml", "[project]", 'name = "not-voicechat"', "```", "",
        "```toml", "[llm]", "temperature = 0.5", "[stt]", "end_of_turn_silence = 0.45   # default 0.45", "```", "",
        "```console", "$ VOICECHAT_STT_END_OF_TURN_SILENCE=0.3 voicechat talk --text \\", "    --no-audio",
        "$ voicechat profiles new x --from default --set llm.top_k=40 && voicechat profiles show x", "```", "",
        "Use `--from` and `--set KEY=VALUE`; `voicechat say TEXT -o -` or `voicechat COMMAND --help`.", "",
        "| symptom | fix |", "|---|---|", "| `unknown voice 'x': known voices are ...` | pick one |", "",
        "In a voice's `[piper]`:", "", "| key | default |", "|---|---|", "| `length_scale` | 1.0 |", "",
    ]))
    problems = [problem for check in CHECKS.values() for problem in check(docs)]
    assert not problems, problems


def test_message_search_fills_gaps_on_both_sides(tmp_path: Path) -> None:
    (tmp_path / "code.py").write_text(
        'def fail(name, known):\n    raise ValueError(f"unknown voice \'{name}\': known voices are {known}")\n'
    )
    sources = messages.source_patterns(tmp_path)
    assert messages.found_in("unknown voice 'x': known voices are ...", sources)
    assert not messages.found_in("unknown voice 'x': try one of ...", sources)
    assert messages.matches("answered 404: ...", "server at URL answered 404: not found")
    assert not messages.matches("answered 404: ...", "server answered 500: oops")
