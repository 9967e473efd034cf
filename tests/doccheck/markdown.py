"""The parts of a Markdown file the checks read: fenced code blocks, inline code spans, tables, headings."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


@dataclass(frozen=True)
class Block:
    """A fenced code block: its info string's language and its lines, numbered from 1 in the file."""

    lang: str
    lines: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Span:
    """An inline code span, with its line, the heading it sits under, and the whole line of prose."""

    text: str
    line_no: int
    heading: str
    line: str


@dataclass(frozen=True)
class Table:
    """A pipe table: header cells, body rows of cells (raw Markdown), the prose just before it, its heading."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    line_no: int
    before: str
    heading: str = ""


@dataclass
class Doc:
    path: Path
    blocks: list[Block] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    paragraphs: list[tuple[int, str]] = field(default_factory=list)  # (first line, text on one line)
    paragraph_ends: list[int] = field(default_factory=list)
    headings: list[tuple[int, str]] = field(default_factory=list)

    def where(self, line_no: int) -> str:
        return f"{self.path.name}:{line_no}"


def spans_in(text: str) -> list[str]:
    """The code spans of one line of prose; a `\\|` inside a table cell stands for `|`."""
    return [match.group(2).strip().replace("\\|", "|") for match in _SPAN.finditer(text)]


def cells(row: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in _CELL_SPLIT.split(row.strip().strip("|")))


def parse(path: Path) -> Doc:
    doc = Doc(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    prose = _collect_blocks(doc, lines)
    _collect_prose(doc, prose)
    return doc


def _collect_blocks(doc: Doc, lines: list[str]) -> list[tuple[int, str]]:
    """Fills doc.blocks; returns the numbered lines outside them (blank lines kept as paragraph breaks)."""
    prose: list[tuple[int, str]] = []
    fence: str | None = None
    lang = ""
    body: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence, lang, body = opening.group(1), opening.group(2).lower(), []
        elif fence is not None and _closes(line, fence):
            doc.blocks.append(Block(lang, tuple(body)))
            fence = None
            prose.append((number, ""))
        elif fence is not None:
            body.append((number, line))
        else:
            prose.append((number, line))
    return prose


def _closes(line: str, fence: str) -> bool:
    bare = line.strip()
    return len(bare) >= len(fence) and set(bare) == {fence[0]}


def _collect_prose(doc: Doc, prose: list[tuple[int, str]]) -> None:
    heading = ""
    paragraph: list[tuple[int, str]] = []
    table: list[tuple[int, str]] = []
    for number, line in [*prose, (0, "")]:
        is_row = line.lstrip().startswith("|")
        title = _HEADING.match(line)
        if table and not is_row:
            doc.tables.append(_table(table, _just_before(doc, table[0][0]), heading))
            table = []
        if paragraph and (is_row or title or not line.strip()):
            _add_paragraph(doc, paragraph, heading)
            paragraph = []
        if title:
            heading = title.group(2)
            doc.headings.append((number, heading))
            doc.spans += [Span(text, number, heading, line) for text in spans_in(line)]
        elif is_row:
            table.append((number, line))
            doc.spans += [Span(text, number, heading, line) for text in spans_in(line)]
        elif line.strip():
            paragraph.append((number, line))


def _add_paragraph(doc: Doc, lines: list[tuple[int, str]], heading: str) -> None:
    """The paragraph as one line of text, and its spans (which may wrap onto the next line)."""
    first, joined = lines[0][0], "\n".join(text.strip() for _, text in lines)
    flat = joined.replace("\n", " ")
    doc.paragraphs.append((first, flat))
    doc.paragraph_ends.append(lines[-1][0])
    for match in _SPAN.finditer(joined):
        text = match.group(2).replace("\n", " ").strip().replace("\\|", "|")
        doc.spans.append(Span(text, first + joined.count("\n", 0, match.start()), heading, flat))


def _just_before(doc: Doc, line_no: int) -> str:
    """The paragraph that ends right above a table (a blank line between them allowed)."""
    if not doc.paragraphs:
        return ""
    return doc.paragraphs[-1][1] if line_no - doc.paragraph_ends[-1] <= 2 else ""


def _table(rows: list[tuple[int, str]], before: str, heading: str) -> Table:
    body = [cells(text) for _, text in rows[2:]] if len(rows) > 1 else []
    return Table(cells(rows[0][1]), tuple(body), rows[0][0], before, heading)
