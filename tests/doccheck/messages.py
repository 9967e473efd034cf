"""Find a documented error message among the strings the source can print.

Both sides may hold gaps: the docs write `...`, `X` or `URL` for the variable parts, and f-strings in the
source have `{...}` fields. A message is found when some source string and the documented text can print
the same words, with most (70%) of the documented characters matched by the source's own text, not by its gaps.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

GAP = None
Pattern = tuple[str | None, ...]  # characters, and GAP for any text
_DOC_GAPS = re.compile(r"\.\.\.|…|\b(?:X|N|URL|NAME|FILE|PATH|DIR)\b")
MIN_COVERAGE = 0.7  # of the documented characters, matched by the source's own text


def doc_pattern(message: str) -> Pattern:
    """`answered 404: ...` -> the characters with one GAP for each placeholder."""
    pattern: list[str | None] = []
    for index, piece in enumerate(_DOC_GAPS.split(message)):
        if index:
            pattern.append(GAP)
        pattern.extend(piece)
    return tuple(pattern)


def _template(node: ast.AST) -> list[str | None] | None:
    """The printable shape of a string expression: literal characters, GAP for each computed part."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return list(node.value)
    if isinstance(node, ast.JoinedStr):
        shape: list[str | None] = []
        for part in node.values:
            shape.extend(_template(part) or [GAP])
        return shape
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left), _template(node.right)
        if left is not None or right is not None:
            return [*(left or [GAP]), *(right or [GAP])]
    return None


@cache
def source_patterns(root: Path) -> tuple[Pattern, ...]:
    found: set[Pattern] = set()
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            shape = _template(node)
            if shape and any(char is not GAP for char in shape):
                found.add(tuple(shape))
    return tuple(found)


def coverage(doc: Pattern, source: Pattern) -> int:
    """Most documented characters matched by equal source characters when the two patterns meet, or -1.

    The documented text may be part of a longer message: it is matched as `GAP doc GAP`.
    """
    left: Pattern = (GAP, *doc, GAP)
    n, m = len(left), len(source)
    # best[i][j]: the most literal matches for left[i:] against source[j:], -1 when they cannot meet
    best = [[-1] * (m + 1) for _ in range(n + 1)]
    best[n][m] = 0
    for i in range(n, -1, -1):
        for j in range(m, -1, -1):
            if i == n and j == m:
                continue
            options = [-1]
            if i < n and left[i] is GAP:  # the docs' gap ends, or takes the next source character or gap
                options += [best[i + 1][j], best[i][j + 1] if j < m else -1]
            if j < m and source[j] is GAP:
                options += [best[i][j + 1], best[i + 1][j] if i < n else -1]
            if i < n and j < m and left[i] is not GAP and left[i] == source[j] and best[i + 1][j + 1] >= 0:
                options.append(best[i + 1][j + 1] + 1)
            best[i][j] = max(options)
    return best[0][0]


def _words(doc: Pattern) -> set[str]:
    text = "".join(" " if char is GAP else char for char in doc)
    return {word for word in re.findall(r"[\w:-]+", text) if len(word) >= 4}


def found_in(message: str, patterns: Iterable[Pattern]) -> bool:
    doc = doc_pattern(message)
    needed = max(1, MIN_COVERAGE * sum(char is not GAP for char in doc))
    words = _words(doc)
    ranked = []
    for source in patterns:
        text = "".join(char for char in source if char is not GAP)
        shared = sum(word in text for word in words)
        if len(text) >= needed and (shared or not words):  # others cannot reach the coverage
            ranked.append((-shared, len(source), source))
    ranked.sort(key=lambda item: item[:2])
    return any(coverage(doc, source) >= needed for _, _, source in ranked)


def matches(message: str, printed: str) -> bool:
    """The documented message (gaps and all) is part of a message the program really printed."""
    return coverage(doc_pattern(message), tuple(printed)) >= 0
