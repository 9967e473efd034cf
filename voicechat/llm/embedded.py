"""The offline ChatModel: SmolLM2-135M-Instruct served by llama-cpp-python on 127.0.0.1, streamed through
the same OpenAI-compatible client as any other endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from voicechat import paths
from voicechat.config.models import LLMSettings
from voicechat.llm.base import ChatMessage, LLMError
from voicechat.llm.local_server import INSTALL_HINT, MODEL_ALIAS, LocalServer, bundled_model_path
from voicechat.llm.openai_chat import OpenAIChat

# llama.cpp's own defaults, used where the profile leaves a parameter neutral: without them the small
# model soon repeats itself
SMALL_MODEL_SAMPLING = {"top_k": (0, 40), "min_p": (0.0, 0.05), "repetition_penalty": (1.0, 1.1)}
SMALL_MODEL_NOTICE = (
    "using the small offline model SmolLM2-135M (expect simple answers): set OPENROUTER_API_KEY, "
    "or pass --base-url for your own server, for a better one"
)


class EmbeddedChat:
    """Starts the local server when made (blocking, a few seconds); `aclose` stops it."""

    def __init__(self, settings: LLMSettings, api_key: str | None = None) -> None:
        model_path = bundled_model_path()
        if model_path is None:
            raise LLMError(f"the offline model SmolLM2 is not installed: {INSTALL_HINT}")
        log_dir = paths.user_data_dir() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.server = LocalServer(model_path, n_threads=settings.n_threads, log_path=log_dir / "llama-server.log")
        self.server.start()
        update: dict[str, object] = {name: tuned for name, (neutral, tuned) in SMALL_MODEL_SAMPLING.items()
                  if getattr(settings, name) == neutral}
        update.update(base_url=self.server.base_url, model=MODEL_ALIAS)
        local = settings.model_copy(update=update)
        self._chat = OpenAIChat(local, api_key=None, kind="llamacpp")
        self.name = f"{MODEL_ALIAS} (offline, {settings.n_threads} thread{'s' if settings.n_threads > 1 else ''})"
        self.notices: tuple[str, ...] = (SMALL_MODEL_NOTICE,)

    def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        return self._chat.stream(messages)

    async def aclose(self) -> None:
        try:
            await self._chat.aclose()
        finally:
            self.server.stop()
