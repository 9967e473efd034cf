"""Settings as the docs state them: keys, values, defaults, TOML examples, variables, ports, packaged names."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.doccheck import settings
from tests.doccheck.markdown import Doc, Table, spans_in
from voicechat import paths

REPO = Path(__file__).resolve().parents[2]
_ENV_NAME = re.compile(r"\bVOICECHAT_[A-Z0-9_]*[A-Z0-9]\b")
_ENV_VALUE = re.compile(r"\b(VOICECHAT_[A-Z0-9_]*[A-Z0-9])=([^\s`'\"]+)")
_SECTION_SPAN = re.compile(r"^\[([\w.-]+)\]$")
_DEFAULT_CLAIM = re.compile(
    r"`(?P<key>[a-z_]+(?:\.[\w-]+)*)`[^`.;]{0,40}?(?:`(?P<quoted>[^`]+)`|(?P<bare>[-\w.]+))\s+by default"
)
_DEFAULT_COMMENT = re.compile(r"^\s*(?P<key>[\w-]+)\s*=.*#\s*default\s+(?P<value>[^\s:]+)\s*$")
_PACKAGED = re.compile(r"Packaged (profiles|characters|voices): ([^.;]*)")
_PORT = re.compile(r"(?:--port[ =]|(?:127\.0\.0\.1|localhost|\[::1\]):)(\d{2,5})\b")


def _sections() -> set[str]:
    return {key for key, value in settings.packaged_default().items() if isinstance(value, dict)}


def key_span(text: str) -> tuple[str, str | None] | None:
    """`stt.model`, `[tts.higgs]` or `llm.backend = "embedded"` -> (key, value or None)."""
    match = re.fullmatch(r"\[?([a-z]+(?:\.[\w-]+)+)\]?(?:\s*=\s*(\S+|\"[^\"]*\"))?", text)
    if not match or match.group(1).split(".")[0] not in _sections():
        return None
    return match.group(1), match.group(2)


def key_problems(docs: list[Doc]) -> list[str]:
    """Every profile key the docs name exists; every value they assign to one is accepted."""
    problems = []
    for doc in docs:
        for span in doc.spans:
            found = key_span(span.text)
            if found is None:
                continue
            key, value = found
            where = f"{doc.where(span.line_no)}: `{span.text}`"
            if settings.lookup(settings.packaged_default(), key) is settings.MISSING:
                problems.append(f"{where}: no such profile key")
            elif value is not None and (error := settings.assignment_error(key, settings.toml_value(value))):
                problems.append(f"{where}: {error}")
    return problems


def _default_problem(key: str, claimed_text: str, defaults: dict[str, Any] | None = None,
                     bare_may_be_prose: bool = False) -> str | None:
    """None when `key` (dotted, or a bare name found in some section) defaults to the claimed value.

    `bare_may_be_prose`: in running text "`talk` speaks with Piper by default" names no key at all.
    """
    defaults = settings.packaged_default() if defaults is None else defaults
    claimed = settings.toml_value(claimed_text)
    keys = [key] if "." in key else settings.paths_named(key, defaults)
    actual = [settings.lookup(defaults, each) for each in keys]
    if not any(value is not settings.MISSING for value in actual):
        return None if bare_may_be_prose and "." not in key else f"no such key {key}"
    if any(settings.same(claimed, value) for value in actual):
        return None
    return f"{key} defaults to {' / '.join(repr(value) for value in actual)}, not {claimed!r}"


def prose_default_problems(docs: list[Doc]) -> list[str]:
    """"`stt.beam_size` 5 by default" and the like, in running text."""
    problems = []
    for doc in docs:
        for line_no, text in doc.paragraphs:
            for claim in _DEFAULT_CLAIM.finditer(text):
                value = claim.group("quoted") if claim.group("quoted") is not None else claim.group("bare")
                if error := _default_problem(claim.group("key"), value, bare_may_be_prose=True):
                    problems.append(f"{doc.where(line_no)}: '{claim.group(0)}': {error}")
    return problems


def defaults_table_problems(docs: list[Doc]) -> list[str]:
    """Tables with `key` and `default` columns, under the `[section]` the text before them names."""
    problems = []
    for doc in docs:
        for table in doc.tables:
            header = [cell.lower() for cell in table.header]
            if "key" in header and "default" in header:
                problems += _check_defaults_table(doc, table, header.index("key"), header.index("default"))
    return problems


def _check_defaults_table(doc: Doc, table: Table, key_col: int, default_col: int) -> list[str]:
    sections = [m.group(1) for text in spans_in(table.before) if (m := _SECTION_SPAN.match(text))]
    prefix = f"{sections[-1]}." if sections else ""
    problems, checked = [], 0
    for row in table.rows:
        keys = spans_in(row[key_col])
        values = _table_values(row[default_col], len(keys))
        for key, value in zip(keys, values or [], strict=False):
            checked += 1
            full = key if key.split(".")[0] in _sections() else prefix + key
            if error := _default_problem(full, value, _defaults_holding(full)):
                problems.append(f"{doc.where(table.line_no)}: defaults table row `{key}`: {error}")
    if not checked:
        problems.append(f"{doc.where(table.line_no)}: a defaults table whose defaults could not be read")
    return problems


def _defaults_holding(key: str) -> dict[str, Any]:
    """The defaults of a profile, or of a voice when only a voice has the key (a table of NAME.toml keys)."""
    profile, voice = settings.packaged_default(), settings.kind_defaults("voice")
    return voice if _has_key(voice, key) and not _has_key(profile, key) else profile


def _has_key(data: dict[str, Any], key: str) -> bool:
    if "." in key:
        return settings.lookup(data, key) is not settings.MISSING
    return bool(settings.paths_named(key, data))


def _table_values(cell: str, count: int) -> list[str] | None:
    """The TOML literals in a default cell (`""` (the model's) -> ['""']); None when it is prose."""
    text = re.sub(r"\s*\([^)]*\)$", "", cell).replace("`", "").strip()
    if "..." in text or not text:
        return None
    if count > 1:
        try:
            items = tomllib.loads(f"v = [{text}]")["v"]
        except tomllib.TOMLDecodeError:
            return None
        return [_as_toml(item) for item in items] if len(items) == count else None
    if isinstance(settings.toml_value(text), str) and not re.fullmatch(r"[\w.:/-]+|\"[^\"]*\"", text):
        return None
    return [text]


def _as_toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, int | float) else f'"{value}"'


def toml_problems(docs: list[Doc]) -> list[str]:
    """TOML examples validate as a profile, voice or character; their `# default X` comments are true."""
    problems = []
    for doc in docs:
        for block in doc.blocks:
            if block.lang != "toml":
                continue
            where = doc.where(block.lines[0][0] if block.lines else 0)
            text = "\n".join(line for _, line in block.lines)
            try:
                kind, error = settings.toml_error(text)
            except tomllib.TOMLDecodeError as decode:
                problems.append(f"{where}: not valid TOML: {decode}")
                continue
            if not kind:
                continue  # not one of voicechat's files
            if error:
                problems.append(f"{where}: the example is no valid {kind}: {error}")
                continue
            problems += [f"{where}: {each}" for each in _comment_defaults(block.lines, kind)]
    return problems


def _comment_defaults(lines: tuple[tuple[int, str], ...], kind: str) -> list[str]:
    problems, section = [], ""
    for number, line in lines:
        if header := re.match(r"^\s*\[([\w.-]+)\]", line):
            section = header.group(1) + "."
        elif claim := _DEFAULT_COMMENT.match(line):
            key = section + claim.group("key")
            if error := _default_problem(key, claim.group("value"), settings.kind_defaults(kind)):
                problems.append(f"line {number}, `{line.strip()}`: {error}")
    return problems


def _source_text() -> str:
    files = [*sorted((REPO / "voicechat").rglob("*.py")), *sorted((REPO / "scripts").glob("*"))]
    return "\n".join(path.read_text(encoding="utf-8", errors="replace") for path in files if path.is_file())


def environment_problems(docs: list[Doc]) -> list[str]:
    """Each VOICECHAT_* variable sets a profile key or is read by the code; values given are accepted."""
    source = _source_text()
    problems = []
    for doc in docs:
        text = doc.path.read_text(encoding="utf-8")
        for name in sorted(set(_ENV_NAME.findall(text))):
            if settings.environment_key(name) is None and name not in source:
                problems.append(f"{doc.path.name}: {name} is neither a profile variable nor read by the code")
        for name, value in sorted(set(_ENV_VALUE.findall(text))):
            error = settings.environment_error(name, value) if settings.environment_key(name) else None
            if error and "..." not in value:
                problems.append(f"{doc.path.name}: {name}={value}: {error}")
    return problems


def profile_port_problems(docs: list[Doc]) -> list[str]:
    """A line that runs a packaged profile and names a port agrees with that profile's llm.base_url."""
    packaged = {path.stem for path in paths.packaged_dir("profiles").glob("*.toml")}
    problems = []
    for doc in docs:
        for number, line in enumerate(doc.path.read_text(encoding="utf-8").splitlines(), start=1):
            names = set(re.findall(r"--profile[ =]([\w.-]+)", line)) & packaged
            ports = set(_PORT.findall(line))
            if len(names) != 1 or len(ports) != 1:
                continue
            name, port = names.pop(), int(ports.pop())
            base_url = settings.load(name).llm.base_url
            if urlsplit(base_url).port != port:
                problems.append(f"{doc.where(number)}: profile {name} talks to {base_url}, not port {port}")
    return problems


def packaged_list_problems(docs: list[Doc]) -> list[str]:
    """"Packaged voices: `lydia` and `joe`" names exactly the files shipped."""
    problems = []
    for doc in docs:
        for line_no, text in doc.paragraphs:
            for claim in _PACKAGED.finditer(text):
                kind = claim.group(1)
                listed = set(spans_in(claim.group(2)))
                shipped = {path.stem for path in paths.packaged_dir(kind).glob("*.toml")}
                if listed != shipped:
                    problems.append(f"{doc.where(line_no)}: packaged {kind} listed {sorted(listed)}, "
                                    f"shipped {sorted(shipped)}")
    return problems
