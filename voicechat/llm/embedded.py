"""The offline ChatModel: SmolLM2-135M-Instruct served by llama-cpp-python on 127.0.0.1, streamed through
the same OpenAI-compatible client as any other endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from voicechat import paths
from voicechat.config.models import LLMSettings
from voicechat.llm.base import ChatMessage, LLMError, ReplyCut, ReplyTooLong
from voicechat.llm.local_server import INSTALL_HINT, MODEL_ALIAS, LocalServer, bundled_model_path
from voicechat.llm.openai_chat import OpenAIChat

SMALL_MODEL_NOTICE = (
    "using the small offline model SmolLM2-135M (expect simple answers): set OPENROUTER_API_KEY, "
    "or pass --base-url for your own server, for a better one"
)


class EmbeddedChat:
    """Starts the local server when made (blocking, a few seconds); `aclose` stops it.

    The server is supervised: a reply broken by its death says so in one line (with its log), and the
    next turn starts it again.
    """

    def __init__(self, settings: LLMSettings, api_key: str | None = None) -> None:
        model_path = bundled_model_path()
        if model_path is None:
            raise LLMError(f"the offline model SmolLM2 is not installed: {INSTALL_HINT}")
        log_dir = paths.user_data_dir() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.server = LocalServer(model_path, n_threads=settings.n_threads, log_path=log_dir / "llama-server.log")
        self.server.start()
        # [llm.embedded] replaces [llm]'s sampling, cap and stops: a 135M model needs its own
        update: dict[str, object] = dict(settings.embedded)
        update.update(base_url=self.server.base_url, model=MODEL_ALIAS)
        local = settings.model_copy(update=update)
        self._chat = OpenAIChat(local, api_key=self.server.api_key, kind="llamacpp")
        self._restarting = asyncio.Lock()
        self.name = f"{MODEL_ALIAS} (offline, {settings.n_threads} thread{'s' if settings.n_threads > 1 else ''})"
        self.notices: tuple[str, ...] = (SMALL_MODEL_NOTICE,)

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        await self._ensure_running()
        received: list[str] = []
        try:
            async for piece in self._chat.stream(messages):
                received.append(piece)
                yield piece
        except ReplyTooLong:
            raise
        except LLMError as error:
            # A crash closes the connection as the process exits: it is reaped by the time the client sees it.
            death = await asyncio.to_thread(self.server.death, 0.3)
            if death is None:
                raise
            line = self.server.describe_death(death)
            raise (ReplyCut(line, "".join(received)) if received else LLMError(line)) from error

    async def prime(self, messages: Sequence[ChatMessage]) -> None:
        """The conversation so far read ahead (between turns), so the next turn's request reads only its
        own line: on two cores a 135M model reads about 120 tokens a second."""
        if self.server.running:
            await asyncio.to_thread(self.server.prime, [{"role": m.role, "content": m.content} for m in messages])

    async def _ensure_running(self) -> None:
        async with self._restarting:  # one restart, however many connections notice the death
            if not self.server.running:
                await asyncio.to_thread(self.server.restart)

    async def aclose(self) -> None:
        try:
            await self._chat.aclose()
        finally:
            self.server.stop()
