"""The contract every chat backend keeps, and the messages it is given."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from voicechat.errors import VoicechatError

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


class LLMError(VoicechatError):
    """A turn that produced no reply: the message names the endpoint and the fix."""


class ReplyCut(LLMError):
    """The reply stopped midway (dropped stream, malformed chunk, in-band error); `partial` is what came."""

    def __init__(self, message: str, partial: str) -> None:
        super().__init__(message)
        self.partial = partial


class ReplyTooLong(ReplyCut):
    """The model stopped at the token cap (`llm.max_tokens`, finish_reason "length"): `partial` is all it wrote."""


@runtime_checkable
class ChatModel(Protocol):
    """Streams a reply to `messages` as text pieces, as they arrive.

    Raises `LLMError` when nothing came and `ReplyCut` when the stream broke after some text.
    `notices` are one-line facts the user should hear once (a dropped parameter, a small model).
    """

    name: str
    notices: tuple[str, ...]

    def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class PromptCache(Protocol):
    """A local model that keeps the last prompt it read: `prime` reads messages ahead of the request that
    will begin with them (a remote API would bill it as a request, so only local backends have it)."""

    async def prime(self, messages: Sequence[ChatMessage]) -> None: ...
