"""Speech -> TranscriptEvents with RealtimeSTT (faster-whisper + Silero/WebRTC VAD), fed frames we read.

We read the microphone ourselves and feed RealtimeSTT (`use_microphone=False`): that gives one path for
microphones and scripted files, our own device errors, a level meter, and half-duplex gating.
RealtimeSTT's pitfalls (DESIGN.md): its constructor hangs when a model cannot load, so paths are checked
first and the start has a timeout; it writes a log file unless told not to; it wants real-time feeding.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicechat.errors import VoicechatError
from voicechat.events import TranscriptEvent, TranscriptKind
from voicechat.live.sources import STT_RATE


@dataclass(frozen=True)
class ListenerSettings:
    model_dir: Path
    realtime_model_dir: Path
    language: str = "en"
    post_speech_silence: float = 0.45  # seconds of silence that end a turn
    early_transcription: float = 0.15  # start the final transcription this far into the silence
    start_timeout: float = 60.0


def resolve_model_dir(model: str) -> Path:
    """The profile's stt.model as a local folder, checked before RealtimeSTT (which hangs on a bad one) sees it."""
    from voicechat.stt.models import resolve_model

    return resolve_model(model)


class RealtimeListener:
    """Runs RealtimeSTT in its threads and posts STARTED/UPDATE/STABLE/FINAL events to an asyncio queue."""

    def __init__(self, settings: ListenerSettings) -> None:
        self.settings = settings
        self.events: asyncio.Queue[TranscriptEvent] = asyncio.Queue()
        self._recorder: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._reader: threading.Thread | None = None

    def _post(self, kind: TranscriptKind) -> Callable[..., None]:
        def post(text: str = "", *_: Any) -> None:
            if self._loop is not None and not self._stopping.is_set():
                event = TranscriptEvent(text=str(text or "").strip(), kind=kind, timestamp=time.monotonic())
                with contextlib.suppress(RuntimeError):  # the loop closed under us
                    self._loop.call_soon_threadsafe(self.events.put_nowait, event)

        return post

    def _construct(self) -> Any:
        from RealtimeSTT import AudioToTextRecorder

        logging.getLogger("realtimestt").setLevel(logging.ERROR)
        return AudioToTextRecorder(
            model=str(self.settings.model_dir),
            realtime_model_type=str(self.settings.realtime_model_dir),
            language=self.settings.language,
            device="cpu",
            compute_type="int8",
            use_microphone=False,
            spinner=False,
            no_log_file=True,
            level=logging.ERROR,
            silero_backend="auto",
            enable_realtime_transcription=True,
            # one model in memory when live and final transcription use the same one
            use_main_model_for_realtime=self.settings.model_dir == self.settings.realtime_model_dir,
            post_speech_silence_duration=self.settings.post_speech_silence,
            early_transcription_on_silence=self.settings.early_transcription,  # seconds, despite its int hint
            on_vad_start=self._post(TranscriptKind.STARTED),
            on_realtime_transcription_update=self._post(TranscriptKind.UPDATE),
            on_realtime_transcription_stabilized=self._post(TranscriptKind.STABLE),
            beam_size=1,
            beam_size_realtime=1,
        )

    async def start(self) -> None:
        """Construct RealtimeSTT in a worker thread; fail at its first logged error instead of its hang."""
        self._loop = asyncio.get_running_loop()
        errors = _FirstError()
        logging.getLogger().addHandler(errors)
        construct = self._construct_in_daemon_thread()
        try:
            deadline = time.monotonic() + self.settings.start_timeout
            while not construct.done() and errors.message is None and time.monotonic() < deadline:
                await asyncio.wait({construct}, timeout=0.1)
        finally:
            logging.getLogger().removeHandler(errors)
        failure = errors.message
        if failure is None and construct.done() and construct.exception() is not None:
            failure = str(construct.exception())
        if failure is not None:
            raise VoicechatError(f"the speech recognizer could not load {self.settings.model_dir}: "
                                 f"{failure.splitlines()[0]}; fix stt.model or use 'bundled'")
        if not construct.done():
            raise VoicechatError(
                f"the speech recognizer did not start within {self.settings.start_timeout:.0f} s: "
                f"check stt.model ({self.settings.model_dir}) with `voicechat doctor`"
            )
        self._recorder = construct.result()
        self._reader = threading.Thread(target=self._read_finals, name="voicechat-stt", daemon=True)
        self._reader.start()

    def _construct_in_daemon_thread(self) -> asyncio.Future[Any]:
        """A daemon thread, not the default executor: a constructor that hangs must not hold the exit."""
        assert self._loop is not None
        loop, future = self._loop, self._loop.create_future()

        def settle(method: Callable[[Any], None], value: Any) -> None:
            if not future.done():
                method(value)

        def build() -> None:
            try:
                recorder = self._construct()
            except BaseException as error:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(settle, future.set_exception, error)
                return
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, future.set_result, recorder)

        threading.Thread(target=build, name="voicechat-stt-start", daemon=True).start()
        return future

    def _read_finals(self) -> None:
        post_final = self._post(TranscriptKind.FINAL)
        while not self._stopping.is_set():
            text = self._recorder.text()
            if text and text.strip():
                post_final(text)

    def feed(self, pcm: bytes) -> None:
        """16 kHz mono int16 audio, at real-time pace (RealtimeSTT's VAD counts on it)."""
        self._recorder.feed_audio(pcm, STT_RATE)

    async def stop(self) -> None:
        self._stopping.set()
        if self._recorder is not None:
            recorder, self._recorder = self._recorder, None
            await asyncio.to_thread(_quiet_shutdown, recorder)


class _FirstError(logging.Handler):
    """Keeps the first ERROR record logged anywhere (RealtimeSTT logs model failures, then waits forever)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.message is None:
            self.message = record.getMessage()


def _quiet_shutdown(recorder: Any) -> None:
    """RealtimeSTT prints to stdout and logs a harmless close() error on shutdown: keep stdout for replies."""
    logging.getLogger("realtimestt").setLevel(logging.CRITICAL)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
        recorder.shutdown()
    pipe = getattr(recorder, "parent_stdout_pipe", None)  # its reader thread lives until this closes
    if pipe is not None:
        with contextlib.suppress(Exception):
            pipe.close()
