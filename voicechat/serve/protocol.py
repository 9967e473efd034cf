"""The WebSocket protocol (docs/protocol.md): client messages as pydantic models, server events as dicts.

Client -> server: binary frames of 16 kHz mono int16 PCM, or JSON text messages with a `type`.
Server -> client: JSON events with a `type`, and binary frames of reply PCM between `audio_start` and
`audio_complete`. Everything a client sends is validated here; what fails becomes one `ProtocolError` line.
"""

from __future__ import annotations

import json
import os
import re
from typing import Annotated, Any, Literal, assert_never

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from voicechat.events import (
    AudioChunk,
    Heard,
    HeardKind,
    Notice,
    ReplyAwaited,
    Sentence,
    SessionEvent,
    TextDelta,
    TurnFinished,
    TurnStarted,
)

INPUT_RATE = 16000
INPUT_ENCODING = "pcm_s16le"
MAX_AUDIO_FRAME = 64 * 1024  # bytes: 2 s of 16 kHz int16; browsers send 32 ms frames
MAX_TEXT_MESSAGE = 16 * 1024  # bytes of one JSON message
MAX_TURN_TEXT = 4000  # characters of one typed turn
WS_MAX_SIZE = 1024 * 1024  # larger WebSocket messages are refused by the server itself (close code 1009)


class ProtocolError(Exception):
    """A message the server cannot take: sent back as an `error` event; the connection stays up."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TextMessage(_Message):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=MAX_TURN_TEXT)


class InterruptMessage(_Message):
    type: Literal["interrupt"]


class ResetMessage(_Message):
    type: Literal["reset"]


class ConfigMessage(_Message):
    type: Literal["config"]
    characters: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(None, max_length=8)
    profile: str | None = Field(None, min_length=1, max_length=64)
    sample_rate: int | None = None  # of the audio the client will send: only 16000 is taken
    encoding: str | None = None  # only pcm_s16le is taken
    continue_: str | None = Field(None, alias="continue", min_length=1, max_length=64)  # a history ID, or "last"


ClientMessage = Annotated[TextMessage | InterruptMessage | ResetMessage | ConfigMessage, Field(discriminator="type")]
_CLIENT = TypeAdapter(ClientMessage)
MESSAGE_TYPES = ("text", "interrupt", "reset", "config")


def parse_message(raw: str) -> TextMessage | InterruptMessage | ResetMessage | ConfigMessage:
    """One JSON text frame -> a client message; anything else raises ProtocolError naming the fix."""
    if len(raw.encode()) > MAX_TEXT_MESSAGE:
        raise ProtocolError(f"message of {len(raw.encode())} bytes is over the {MAX_TEXT_MESSAGE}-byte limit: "
                            "send shorter text turns")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ProtocolError(f"malformed JSON ({error.msg} at character {error.pos}): send one JSON object "
                            "per text frame") from None
    except (RecursionError, ValueError):  # "[" * 2000 nests deeper than the parser goes
        raise ProtocolError("JSON nested too deeply or not parseable: send one flat JSON object per text "
                            "frame") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError('a message must be a JSON object with a "type": one of ' + ", ".join(MESSAGE_TYPES))
    if data["type"] not in MESSAGE_TYPES:
        raise ProtocolError(f"unknown message type '{data['type'][:40]}': use one of {', '.join(MESSAGE_TYPES)}")
    try:
        message = _CLIENT.validate_python(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "message"
        raise ProtocolError(f"bad '{data['type']}' message: {where}: {first['msg']}") from None
    if isinstance(message, ConfigMessage):
        check_audio_format(message)
    return message


def check_audio_format(message: ConfigMessage) -> None:
    if message.sample_rate is not None and message.sample_rate != INPUT_RATE:
        raise ProtocolError(f"audio at {message.sample_rate} Hz is not taken: resample to {INPUT_RATE} Hz mono "
                            "int16 before sending")
    if message.encoding is not None and message.encoding != INPUT_ENCODING:
        raise ProtocolError(f"audio encoding '{message.encoding[:40]}' is not taken: send {INPUT_ENCODING} "
                            "(16-bit little-endian mono PCM)")


def check_audio_frame(frame: bytes) -> None:
    if len(frame) > MAX_AUDIO_FRAME:
        raise ProtocolError(f"audio frame of {len(frame)} bytes is over the {MAX_AUDIO_FRAME}-byte limit: "
                            "send frames of at most 2 s (32 ms is usual)")
    if len(frame) % 2:
        raise ProtocolError(f"audio frame of {len(frame)} bytes is not whole int16 samples: send 16 kHz mono "
                            f"{INPUT_ENCODING} (an even number of bytes)")


REPLY_FAILED = "the reply failed at the server's language model or speech engine (its log has the detail): try again"
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_SECRET_SHAPES = re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{8,}|(?i:bearer)\s+\S+")


def scrub_secrets(text: str) -> str:
    """`text` without the value of any *_KEY / *_TOKEN / *_SECRET variable, nor anything shaped like a key,
    for lines that reach the log (an upstream error body may echo the key it was sent)."""
    for name, value in os.environ.items():
        if len(value) >= 8 and _SECRET_NAME.search(name) and value in text:
            text = text.replace(value, "[redacted]")
    return _SECRET_SHAPES.sub("[redacted]", text)


def error_event(message: str, fatal: bool = False) -> dict[str, Any]:
    return {"type": "error", "message": message, "fatal": fatal}


def session_event(event: SessionEvent) -> dict[str, Any] | None:
    """A Session event as the client sees it; None for audio, which the sink sends as binary frames."""
    match event:
        case Heard(kind=HeardKind.STARTED):
            return {"type": "speech_started"}
        case Heard(kind=HeardKind.FINAL):
            return {"type": "transcript_final", "text": event.text}
        case Heard():
            return {"type": "transcript_update", "text": event.text, "stable": event.kind is HeardKind.STABLE}
        case TurnStarted():
            return {"type": "turn_start", "turn": event.index, "user_text": event.user_text}
        case TextDelta():
            return {"type": "reply_text", "character": event.character, "text": event.text}
        case Sentence():
            return {"type": "sentence", "index": event.index, "character": event.character, "voice": event.voice,
                    "text": event.text}
        case ReplyAwaited():
            return {"type": "reply_awaited", "turn": event.index, "waited": event.waited, "timeout": event.timeout}
        case Notice():
            return {"type": "notice", "text": event.text}
        case TurnFinished():
            return {"type": "turn_metrics", "turn": event.index, "interrupted": event.interrupted,
                    "error": None if event.error is None else REPLY_FAILED, "cut": event.cut,
                    "metrics": dict(vars(event.metrics)),
                    "spoken": [{"character": s.character, "text": s.text} for s in event.spoken]}
        case AudioChunk():
            return None
        case _:
            assert_never(event)
    return None
