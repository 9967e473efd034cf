"""Transcripts as txt, srt, vtt (written by pysubs2) and json."""

from __future__ import annotations

import json
from typing import Any, Literal

from voicechat.stt.base import Segment, Transcription, Word

Format = Literal["txt", "srt", "vtt", "json"]
FORMATS: tuple[Format, ...] = ("txt", "srt", "vtt", "json")


def render(transcript: Transcription, fmt: Format, *, compact: bool = False) -> str:
    """The whole output file for one transcript. `compact` JSON is one line (JSON Lines on stdout)."""
    if fmt == "txt":
        return transcript.text + "\n"
    if fmt == "json":
        indent = None if compact else 2
        return json.dumps(to_json(transcript), ensure_ascii=False, indent=indent) + "\n"
    return _subtitles(transcript, fmt)


def to_json(transcript: Transcription) -> dict[str, Any]:
    return {
        "file": transcript.source,
        "language": transcript.language,
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
        "segments": [_segment_json(segment) for segment in transcript.segments],
    }


def _segment_json(segment: Segment) -> dict[str, Any]:
    data: dict[str, Any] = {"start": round(segment.start, 3), "end": round(segment.end, 3), "text": segment.text}
    if segment.words is not None:
        data["words"] = [_word_json(word) for word in segment.words]
    return data


def _word_json(word: Word) -> dict[str, Any]:
    data: dict[str, Any] = {"start": round(word.start, 3), "end": round(word.end, 3), "word": word.text}
    if word.probability is not None:
        data["probability"] = round(word.probability, 4)
    return data


def _subtitles(transcript: Transcription, fmt: Literal["srt", "vtt"]) -> str:
    import pysubs2

    subs = pysubs2.SSAFile()
    for segment in transcript.segments:
        if not segment.text:
            continue
        event = pysubs2.SSAEvent(start=_ms(segment.start), end=max(_ms(segment.end), _ms(segment.start) + 1))
        event.plaintext = _plain(segment.text)
        subs.append(event)
    text: str = subs.to_string(fmt)
    return text


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _plain(text: str) -> str:
    # SSA reads {...} as override tags and \N as a line break; keep spoken text literal.
    return text.replace("{", "(").replace("}", ")").replace("\\", "/")
