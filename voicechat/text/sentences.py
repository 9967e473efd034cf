"""Sentence boundaries with pysbd, which knows "Dr.", "3.5", "e.g." and ellipses are not ends."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=4)
def _segmenter(language: str) -> Any:
    import pysbd

    return pysbd.Segmenter(language=language, clean=False)


ELLIPSES = ("...", "…")


def split_sentences(text: str, language: str = "en") -> list[str]:
    """Whole sentences of `text`, stripped, empty ones dropped; an ellipsis never ends a sentence."""
    return [piece.strip() for piece in segment(text, language) if piece.strip()]


def segment(text: str, language: str = "en") -> list[str]:
    """pysbd's segments, unstripped (joined they give `text` back), with a piece ending in an ellipsis
    joined to the one after it: pysbd ends a sentence at "Well..." and speech should not pause there."""
    merged: list[str] = []
    for piece in _segmenter(language).segment(text):
        if merged and merged[-1].rstrip().endswith(ELLIPSES):
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged
