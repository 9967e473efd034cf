"""Sentence boundaries with pysbd, which knows "Dr.", "3.5", "e.g." and ellipses are not ends."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=4)
def _segmenter(language: str) -> Any:
    import pysbd

    return pysbd.Segmenter(language=language, clean=False)


def split_sentences(text: str, language: str = "en") -> list[str]:
    """Whole sentences of `text`, stripped, empty ones dropped."""
    pieces = _segmenter(language).segment(text)
    return [piece.strip() for piece in pieces if piece.strip()]
