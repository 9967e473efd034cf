"""An OpenAI-compatible `/v1/audio/transcriptions` endpoint: OpenAI, vLLM, speaches.

Clips go up as 16 kHz mono FLAC (decoded here first, so a bad file fails the same way for every engine),
a few at a time. A server that cannot be reached, or that refuses the key, stops the batch with one
line; an answer about one file (too large, unsupported) fails that file only.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from voicechat.errors import VoicechatError
from voicechat.stt.base import Clip, Outcome, Segment, TranscribeOptions, Transcription, Word, clean_text
from voicechat.stt.models import BUNDLED

if TYPE_CHECKING:
    from voicechat.config.models import STTSettings

DEFAULT_REMOTE_MODEL = "whisper-1"
PARALLEL_REQUESTS = 4


class EngineStopped(VoicechatError):
    """The engine cannot go on with any file (server down, key refused)."""


class OpenAISTT:
    name = "openai"

    def __init__(self, settings: STTSettings) -> None:
        self.settings = settings
        self.model = DEFAULT_REMOTE_MODEL if settings.model == BUNDLED else settings.model
        self._client: Any = None

    def load(self, expected_clips: int = 1) -> None:
        if self._client is not None:
            return
        from voicechat.openai_client import key_from, sync_client

        self._client = sync_client(self.settings.base_url, key_from(self.settings.api_key_env),
                                   self.settings.timeout)

    def transcribe_many(self, clips: Iterable[Clip], options: TranscribeOptions) -> Iterator[Outcome]:
        self.load()
        with ThreadPoolExecutor(PARALLEL_REQUESTS, thread_name_prefix="stt-http") as pool:
            pending: deque[tuple[Clip, Future[Transcription]]] = deque()
            try:
                for clip in clips:
                    pending.append((clip, pool.submit(self._transcribe, clip, options)))
                    if len(pending) >= PARALLEL_REQUESTS:
                        yield self._collect(*pending.popleft())
                while pending:
                    yield self._collect(*pending.popleft())
            finally:
                for _, future in pending:
                    future.cancel()

    def _collect(self, clip: Clip, future: Future[Transcription]) -> Outcome:
        import openai

        try:
            return Outcome(clip, transcript=future.result())
        except openai.AuthenticationError:
            raise EngineStopped(
                f"{self.settings.base_url} refused the API key (401): set {self.settings.api_key_env}"
            ) from None
        except openai.APIConnectionError as error:
            raise EngineStopped(
                f"cannot reach the transcription server at {self.settings.base_url} ({_reason(error)}); "
                "is it running? check --base-url"
            ) from None
        except openai.APIStatusError as error:
            hint = " (check --base-url ends in /v1 and the --model name)" if error.status_code == 404 else ""
            message = f"{clip.source}: the server answered {error.status_code}: {_reason(error)}{hint}"
            return Outcome(clip, error=VoicechatError(message))
        except (ValueError, KeyError, TypeError) as error:
            message = f"{clip.source}: the server's answer is not a transcription ({_reason(error)})"
            return Outcome(clip, error=VoicechatError(message))

    def _transcribe(self, clip: Clip, options: TranscribeOptions) -> Transcription:
        granularities = ["segment", "word"] if options.word_timestamps else ["segment"]
        extra: dict[str, Any] = {"language": options.language} if options.language else {}
        response = self._client.audio.transcriptions.create(
            model=self.model,
            file=("audio.flac", _flac_bytes(clip), "audio/flac"),
            response_format="verbose_json",
            timestamp_granularities=granularities,
            **extra,
        )
        data = response if isinstance(response, dict) else response.model_dump()
        return parse_verbose_json(data, clip, options)


def parse_verbose_json(data: dict[str, Any], clip: Clip, options: TranscribeOptions) -> Transcription:
    """OpenAI's verbose_json; servers that leave out segments or words still give one segment of text."""
    words = [Word(float(w["start"]), float(w["end"]), clean_text(w["word"])) for w in data.get("words") or ()]
    raw_segments = data.get("segments") or []
    if not raw_segments and clean_text(data.get("text", "")):
        raw_segments = [{"start": 0.0, "end": clip.duration, "text": data["text"]}]
    segments = tuple(_segment(raw, words, options.word_timestamps) for raw in raw_segments)
    language = options.language or str(data.get("language") or "")
    return Transcription(clip.source, language, clip.duration, segments)


def _segment(raw: dict[str, Any], words: list[Word], with_words: bool) -> Segment:
    start, end = float(raw["start"]), float(raw["end"])
    inside = tuple(w for w in words if start <= (w.start + w.end) / 2 <= end) if with_words else None
    return Segment(start, end, clean_text(raw["text"]), inside)


def _flac_bytes(clip: Clip) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, clip.samples, clip.sample_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
