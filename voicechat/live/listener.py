"""Speech -> Heard events with RealtimeSTT (faster-whisper + Silero/WebRTC VAD), fed frames we read.

We read the microphone ourselves and feed RealtimeSTT (`use_microphone=False`): that gives one path for
microphones and scripted files, our own device errors, a level meter, and half-duplex gating. The model
runs in this process (live/local_whisper.py), not in RealtimeSTT's worker process.
RealtimeSTT's pitfalls: its constructor hangs when a model cannot load, so paths are checked first and
the start has a timeout; it writes a log file unless told not to; it wants real-time feeding.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicechat.errors import VoicechatError
from voicechat.events import Heard, HeardKind
from voicechat.live.local_whisper import DEFAULT_WINDOW_SECONDS
from voicechat.live.sources import STT_RATE
from voicechat.live.turns import SMART_TURN_SECONDS, EndOfTurn, TurnDecision, TurnSettings

if TYPE_CHECKING:
    from voicechat.config.models import STTSettings
    from voicechat.live.local_whisper import LocalWhisper, Result
    from voicechat.live.text_turn import TextTurn

log = logging.getLogger("voicechat.listener")
FINAL_WAIT = 3.0  # seconds after a recording stops in which its final transcript is still expected
# the audio Smart Turn looks at, in the smallest pieces fed: the echo canceller hands on 10 ms steps
RECENT_FRAMES = SMART_TURN_SECONDS * STT_RATE // 160
MAX_THREADS = 4  # CTranslate2 threads for a tiny model's one transcription at a time: more do not pay
# RealtimeSTT logs to "realtimestt" (which does not propagate), "RealtimeSTT.*", and from some modules to
# the root logger: the start watches all three, and takes only records of RealtimeSTT's own code.
REALTIMESTT_LOGGERS = ("", "realtimestt", "RealtimeSTT")


@dataclass(frozen=True)
class ListenerSettings:
    model_dir: Path
    language: str = "en"
    post_speech_silence: float = 0.45  # "silence" turn detection's wait; "smart": when the signals disagree
    early_transcription: float = 0.02  # start the final transcription this far into the silence
    start_timeout: float = 60.0
    device: str = "auto"  # faster-whisper: auto, cpu or cuda
    compute_type: str = "default"  # default: int8 on CPU, float16 on CUDA
    beam_size: int = 1
    turns: TurnSettings | None = None  # None: smart detection with post_speech_silence as its middle wait
    vad_confirmation: float = 0.0  # silence RealtimeSTT must see before it counts a pause (its default: 0.16)
    window_seconds: float = DEFAULT_WINDOW_SECONDS  # the shortest audio window Whisper's encoder reads (its own: 30 s)

    @property
    def turn_settings(self) -> TurnSettings:
        return self.turns if self.turns is not None else TurnSettings(silence=self.post_speech_silence)


def listener_settings(stt: STTSettings, model_dir: Path) -> ListenerSettings:
    """The profile's [stt] table as the live listener's settings."""
    turns = TurnSettings(mode=stt.turn_detection, silence=stt.end_of_turn_silence,
                         complete_wait=stt.turn_complete_wait, patience=stt.turn_patience,
                         threshold=stt.turn_threshold, judge_words=stt.turn_judge_words,
                         words_wait=stt.turn_words_wait)
    return ListenerSettings(model_dir=model_dir, language=stt.language,
                            post_speech_silence=stt.end_of_turn_silence, device=stt.device,
                            compute_type=stt.compute_type, beam_size=stt.live_beam_size, turns=turns,
                            window_seconds=stt.live_window)


class RealtimeListener:
    """Runs RealtimeSTT in its threads and posts STARTED/UPDATE/STABLE/FINAL events to an asyncio queue."""

    def __init__(self, settings: ListenerSettings,
                 on_decision: Callable[[TurnDecision], None] | None = None) -> None:
        self.settings = settings
        self.events: asyncio.Queue[Heard] = asyncio.Queue()
        self._recorder: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._reader: threading.Thread | None = None
        self._recent: deque[bytes] = deque(maxlen=RECENT_FRAMES)
        self._recent_lock = threading.Lock()
        self._on_decision = on_decision
        self._turns: EndOfTurn | None = None
        self._held = False
        # speculation (voicechat.live.speculation), called on the event loop: the user went quiet after
        # these words / spoke again
        self.on_quiet: Callable[[str], None] | None = None
        self.on_voice: Callable[[], None] | None = None
        self._pause_at = 0.0  # time.monotonic() of the latest pause's start
        self._last_live_at = 0.0  # and of the latest live text
        self._whisper: LocalWhisper | None = None  # the model, in this process, for live and final text
        self._resumed_at = 0.0  # when the user last spoke on after a pause
        self._finals = 0  # final transcripts so far
        self._awaiting_final = False  # a recording began whose final transcript has not come yet
        self._stopped_at = 0.0  # when the recognizer last stopped recording

    @property
    def recording(self) -> bool:
        """The recognizer is recording an utterance, or transcribing the one it recorded: its final
        transcript is still to come."""
        if self._recorder is not None and self._recorder.is_recording:
            return True
        return self._awaiting_final and time.monotonic() - self._stopped_at < FINAL_WAIT

    def _recording_started(self, *_: Any) -> None:
        log.debug("the recognizer starts recording")
        self._awaiting_final = True

    def _recording_stopped(self, *_: Any) -> None:
        log.debug("the recognizer stops recording")
        self._stopped_at = time.monotonic()

    def _post(self, kind: HeardKind) -> Callable[..., None]:
        def post(text: str = "", *_: Any) -> None:
            if self._loop is not None and not self._stopping.is_set():
                event = Heard(text=str(text or "").strip(), kind=kind, timestamp=time.monotonic())
                with contextlib.suppress(RuntimeError):  # the loop closed under us
                    self._loop.call_soon_threadsafe(self.events.put_nowait, event)

        return post

    def _construct(self) -> Any:
        from RealtimeSTT import AudioToTextRecorder

        from voicechat.live.local_whisper import LocalWhisper
        from voicechat.stt.faster_whisper import _compute_type, _device, usable_cores

        turns = self.settings.turn_settings
        device = _device(self.settings.device)
        compute_type = _compute_type(self.settings.compute_type, device)
        logging.getLogger("realtimestt").setLevel(logging.ERROR)
        self._whisper = LocalWhisper(self.settings.model_dir, device, compute_type,
                                     cpu_threads=min(usable_cores(), MAX_THREADS), beam_size=self.settings.beam_size,
                                     window_seconds=self.settings.window_seconds)
        return AudioToTextRecorder(
            model=str(self.settings.model_dir),
            language=self.settings.language,
            device=device,
            compute_type=compute_type,
            # our model, in this process: no worker process with a second copy, and the early transcription
            # of each pause (the likely final transcript) reaches the speculative reply
            transcription_executor=self._transcribe_final,
            realtime_transcription_executor=self._whisper.live,
            use_microphone=False,
            spinner=False,
            no_log_file=True,
            level=logging.ERROR,
            silero_backend="auto",
            enable_realtime_transcription=True,
            # EndOfTurn moves this per pause; the patient wait holds until the first pause is judged
            post_speech_silence_duration=turns.patience if turns.mode == "smart" else turns.silence,
            deactivity_silence_confirmation_duration=self.settings.vad_confirmation,
            silero_deactivity_detection=True,  # Silero, not WebRTC, says when a pause starts: fewer false ones
            early_transcription_on_silence=self.settings.early_transcription,  # seconds, despite its int hint
            on_vad_start=self._on_speech_start,
            on_recording_start=self._recording_started,
            on_recording_stop=self._recording_stopped,
            on_realtime_transcription_update=self._on_live_text(HeardKind.UPDATE),
            on_realtime_transcription_stabilized=self._on_live_text(HeardKind.STABLE),
            on_turn_detection_start=self._on_pause,
            on_turn_detection_stop=self._on_pause_end,
        )

    def _transcribe_final(self, audio: Any, language: str | None = None, use_prompt: bool = True,
                          **options: Any) -> Result:
        """RealtimeSTT's final transcriptions, the early one of each pause included: that one is also the
        guess a speculative reply starts from."""
        assert self._whisper is not None
        in_pause = self._turns is not None and self._turns.in_pause
        deliver = self._guess_delivery() if in_pause and self.on_quiet is not None else None
        result = self._whisper.final(audio, language, use_prompt, **options)
        if in_pause and self._turns is not None:
            self._turns.pause_transcript(result.text)
        if deliver is not None:
            deliver(result.text)
        return result

    def _on_speech_start(self, *_: Any) -> None:
        if self._turns is not None:
            self._turns.turn_ended()  # a new recording: the last one's words no longer count
        self._post(HeardKind.STARTED)()

    def _on_live_text(self, kind: HeardKind) -> Callable[..., None]:
        post = self._post(kind)

        def on_text(text: str = "", *_: Any) -> None:
            if self._turns is not None:
                self._turns.transcript(str(text or ""))
                # the worker snapshots its audio after the previous text came: if that was in this pause,
                # this text covers everything said before it (a likely final transcript)
                if kind is HeardKind.UPDATE and self._last_live_at >= self._pause_at > 0:
                    self._report_quiet(str(text or "").strip())
            if kind is HeardKind.UPDATE:  # STABLE follows each UPDATE: one per transcription
                self._last_live_at = time.monotonic()
            post(text)

        return on_text

    def _on_pause(self, *_: Any) -> None:
        self._pause_at = time.monotonic()
        if self._turns is not None:
            with self._recent_lock:
                recent = b"".join(self._recent)
            self._turns.pause_started(recent)

    def _guess_delivery(self) -> Callable[[str], None]:
        """Where the guess for this pause goes: to on_quiet, unless by then the user spoke on, another pause
        began, or the final transcript already came (the turn's own request is out)."""
        pause, finals = self._pause_at, self._finals

        def deliver(text: str) -> None:
            from voicechat.live.turns import words_trail

            current = self._pause_at == pause and self._finals == finals and self._resumed_at < pause
            log.debug("pause guess %r (%s)", text, "offered" if current else "too late")
            if text and current and not self._held and not words_trail(text):
                self._call_soon(self.on_quiet, text)

        return deliver

    def _on_pause_end(self, *_: Any) -> None:
        if self._turns is not None:
            was_pause = self._turns.in_pause
            self._turns.speech_resumed()
            if was_pause and self._recorder is not None and self._recorder.is_recording:
                self._resumed_at = time.monotonic()
                self._call_soon(self.on_voice)  # the same recording goes on: the user did not finish

    def _report_quiet(self, text: str) -> None:
        """Words heard in a pause that may end the turn: worth a speculative reply (not trailing, not held)."""
        from voicechat.live.turns import words_trail

        in_pause = self._turns is not None and self._turns.in_pause
        if text and in_pause and not self._held and not words_trail(text):
            self._call_soon(self.on_quiet, text)

    def _call_soon(self, callback: Callable[..., None] | None, *args: Any) -> None:
        if callback is not None and self._loop is not None and not self._stopping.is_set():
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                self._loop.call_soon_threadsafe(callback, *args)

    def _set_wait(self, seconds: float) -> None:
        recorder = self._recorder
        if recorder is not None:
            recorder.post_speech_silence_duration = seconds  # read by its recording loop on every frame

    def _make_turns(self) -> EndOfTurn:
        """Smart Turn loaded and warmed (its first call is slow) before the first pause needs it."""
        from voicechat.live.turns import SmartTurn

        turns = self.settings.turn_settings
        model = words_model = None
        if turns.mode == "smart":
            model = SmartTurn()
            model.warm_up()
        if turns.mode == "smart" and turns.judge_words:
            words_model = _text_judge()
        return EndOfTurn(turns, self._set_wait, model, self._on_decision, words_model)

    def hold_turn(self) -> None:
        """No pause ends the turn until release_turn(): a scripted file is heard whole, however it pauses."""
        self._held = True
        if self._turns is not None:
            self._turns.hold()

    def release_turn(self) -> None:
        self._held = False
        if self._turns is not None:
            self._turns.release()

    async def start(self) -> None:
        """Construct RealtimeSTT in a worker thread; fail at its first logged error instead of its hang."""
        self._loop = asyncio.get_running_loop()
        if self.settings.turn_settings.mode == "smart":
            from voicechat.live.turns import smart_turn_path

            smart_turn_path()  # a missing model fails here, before anything starts
        # faster_whisper is imported by RealtimeSTT, Smart Turn's features and our model, each in its own
        # thread: imported here first, or two threads importing it at once can fail with a _DeadlockError
        yield_idle_threads()
        await asyncio.to_thread(importlib.import_module, "faster_whisper")
        making_turns = asyncio.ensure_future(asyncio.to_thread(self._make_turns))
        errors = _FirstError()
        for name in REALTIMESTT_LOGGERS:  # its own only: another connection's errors are not this recognizer's
            logging.getLogger(name).addHandler(errors)
        construct = self._construct_in_daemon_thread()
        try:
            deadline = time.monotonic() + self.settings.start_timeout
            while not construct.done() and errors.message is None and time.monotonic() < deadline:
                await asyncio.wait({construct}, timeout=0.1)
        finally:
            for name in REALTIMESTT_LOGGERS:
                logging.getLogger(name).removeHandler(errors)
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
        self._turns = await making_turns
        if self._held:
            self._turns.hold()
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
        post_final = self._post(HeardKind.FINAL)
        while not self._stopping.is_set():
            text = self._recorder.text()
            if text and text.strip():
                self._finals += 1
                post_final(text)
            self._awaiting_final = False

    def feed(self, pcm: bytes) -> None:
        """16 kHz mono int16 audio, at real-time pace (RealtimeSTT's VAD counts on it)."""
        with self._recent_lock:
            self._recent.append(pcm)
        self._recorder.feed_audio(pcm, STT_RATE)

    async def stop(self) -> None:
        self._stopping.set()
        if self._turns is not None:
            self._turns.close()
        if self._recorder is not None:
            recorder, self._recorder = self._recorder, None
            await asyncio.to_thread(_quiet_shutdown, recorder)
        if self._whisper is not None:
            await asyncio.to_thread(self._whisper.close)  # nothing of CTranslate2 still running at exit
        if self._turns is not None and self._turns.words_model is not None:
            self._turns.words_model.close()


class _FirstError(logging.Handler):
    """Keeps the first ERROR record RealtimeSTT logs (it logs model failures, then waits forever)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.message: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.message is None and _from_realtimestt(record):
            self.message = record.getMessage()


def _text_judge() -> TextTurn | None:
    """The bundled SmolLM2 as the judge of each pause's words, warmed; None where it is not installed."""
    from voicechat.live.text_turn import TextTurn

    try:
        judge = TextTurn.bundled()
    except Exception as error:  # a model that will not load leaves the voice and the word list in charge
        log.warning("turn detection goes on without the text judge: %s", error)
        return None
    if judge is not None:
        judge.warm_up()
    return judge


def yield_idle_threads() -> None:
    """OpenMP threads that sleep when their work is done instead of spinning for it, unless the user chose.

    In `talk` the final transcription, Smart Turn, Silero, the text judge and the LLM take turns on a few
    cores; libgomp's spinning threads (CTranslate2's, torch's) keep a core busy after each of their steps.
    On a 2-core Zen 1 the pause's transcription took 1.4-1.8 s this way, where one pass alone takes 0.8 s.
    libgomp reads this once, when it loads: before faster_whisper and torch are imported.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _from_realtimestt(record: logging.LogRecord) -> bool:
    """Another connection's (or any other code's) error is not this recognizer's failure."""
    return (record.name.split(".")[0].lower() == "realtimestt"
            or f"{os.sep}RealtimeSTT{os.sep}" in record.pathname)


def _quiet_shutdown(recorder: Any) -> None:
    """RealtimeSTT prints to stdout and logs a harmless close() error on shutdown: keep stdout for replies."""
    logging.getLogger("realtimestt").setLevel(logging.CRITICAL)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(Exception):
        recorder.shutdown()
    pipe = getattr(recorder, "parent_stdout_pipe", None)  # its reader thread lives until this closes
    if pipe is not None:
        with contextlib.suppress(Exception):
            pipe.close()
