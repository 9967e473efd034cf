"""The error texts quoted in troubleshooting tables: printed by the program, as documented."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.doccheck import messages, settings
from tests.doccheck.markdown import Doc, spans_in
from voicechat.config import store
from voicechat.errors import UsageError

SOURCE = Path(__file__).resolve().parents[2] / "voicechat"

# Messages printed by other packages (voicechat passes them on); the row's fix must name the package.
FOREIGN = {
    "operator torchvision::nms does not exist": "torchvision",
    "Could not load this library": "torchaudio",
}


def _refusal(action: Callable[[], object]) -> str | None:
    try:
        action()
    except UsageError as error:
        return str(error)
    return None


def _broken_toml() -> str | None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "broken.toml"
        path.write_text("[llm]\ntemperature = \n", encoding="utf-8")
        return _refusal(lambda: store.read_toml(path))


def printed_for(message: str) -> str | None:
    """For a documented config error, the message the loader really prints on that input; else None."""
    if key := re.match(r"^unknown key '([\w.-]+)'", message):
        return settings.assignment_error(key.group(1), 1) or f"(accepted: {key.group(1)} is a real key)"
    if assigned := re.match(r"^([a-z]+(?:\.[\w-]+)+) = (\S+?):", message):
        value = settings.toml_value(assigned.group(2))
        return settings.assignment_error(assigned.group(1), value) or f"(accepted: {assigned.group(0)})"
    if unknown := re.match(r"^unknown (profile|character|voice) '([^']+)'", message):
        kind, name = unknown.group(1) + "s", unknown.group(2)
        return _refusal(lambda: store.find_files(kind, name)) or f"(accepted: {kind} {name} exists)"  # type: ignore[arg-type]
    if "not valid TOML" in message:
        return _broken_toml()
    return None


def message_problem(message: str, fix: str) -> str | None:
    printed = printed_for(message)
    if printed is not None:
        return None if messages.matches(message, printed) else f"the program prints {printed!r}"
    if any(message.startswith(start) and package in fix for start, package in FOREIGN.items()):
        return None
    if messages.found_in(message, messages.source_patterns(SOURCE)):
        return None
    return "no message like it in voicechat/ (write the parts that vary as ..., X, N or URL)"


def troubleshooting_problems(docs: list[Doc]) -> list[str]:
    problems = []
    for doc in docs:
        for table in doc.tables:
            if not table.header or table.header[0].lower() != "symptom":
                continue
            for row in table.rows:
                fix = " ".join(row[1:])
                for message in spans_in(row[0]):
                    if error := message_problem(message, fix):
                        problems.append(f"{doc.where(table.line_no)}: `{message}`: {error}")
    return problems
