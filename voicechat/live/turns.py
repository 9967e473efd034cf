"""When has the user finished speaking? Smart Turn v3.2 on the audio, the words of the live transcript, a fallback.

Each pause in speech gets a wait: short when the turn sounds finished and its words read finished,
patient after trailing words ("I was wondering if"), words that a small chat model does not read as a
whole message ("Can you tell me.", `text_turn.py`), or a turn that sounds unfinished, and the profile's
`end_of_turn_silence` when the voice sounds unfinished but the words end a sentence. The listener applies
the wait to RealtimeSTT's own silence counter, so the silence timeout stays the fallback whatever the
model says.

Smart Turn is the ONNX file shipped inside the `pipecat-ai` wheel, loaded with onnxruntime: pipecat itself
is never imported (it needs loguru and much else).
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voicechat.live.text_turn import TextTurn

log = logging.getLogger(__name__)

SMART_TURN_FILE = Path("audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")
SMART_TURN_RATE = 16000
SMART_TURN_SECONDS = 8  # the model sees the last 8 s, zero-padded in front

# Words a finished sentence rarely ends on: conjunctions, prepositions, articles, fillers. No verbs: a live
# transcript that lags the voice often stops on one ("what time is").
TRAILING_WORDS = frozenset((
    "a", "an", "the", "and", "or", "but", "so", "because", "if", "when", "while", "whether", "that", "which",
    "whose", "to", "of", "in", "on", "at", "for", "from", "with", "about", "into", "onto", "than", "as", "like",
    "my", "your", "his", "her", "our", "their", "um", "uh", "er", "erm",
))

# Words that open a dependent clause: a statement made of one such clause alone waits for its main clause.
SUBORDINATORS = frozenset((
    "if", "when", "whenever", "before", "after", "because", "since", "while", "although", "though", "unless",
    "until", "once",
))

MODALS = frozenset(("can", "could", "would", "will", "shall", "may", "might"))

# Words that make a whole reply on their own ("Okay.", "Yes, please.", "Thank you!"): the text judge, which
# learned that a message says something, reads most of them as cut off (-4 to -8) and they waited 1.0 s.
SHORT_REPLY_WORDS = frozenset((
    "yes", "yeah", "yep", "yup", "no", "nope", "nah", "okay", "ok", "sure", "right", "alright", "fine", "great",
    "good", "cool", "nice", "perfect", "thanks", "thank", "you", "please", "hi", "hello", "hey", "bye",
    "goodbye", "sorry", "wow", "absolutely", "exactly", "definitely", "indeed", "agreed", "correct", "true",
    "of", "course", "very", "much", "so", "not", "really", "maybe", "oh", "ah", "night", "morning",
    "thing", "me", "too",
))
SHORT_REPLY_MAX_WORDS = 4


@dataclass(frozen=True)
class TurnSettings:
    mode: str = "smart"  # "smart": Smart Turn + words, silence as fallback; "silence": a fixed silence
    silence: float = 0.45  # "silence" mode's wait; in "smart" mode, the wait when the signals disagree
    complete_wait: float = 0.15  # after a turn that sounds and reads finished
    patience: float = 1.5  # after trailing words or a turn that sounds unfinished: the fallback
    threshold: float = 0.5  # Smart Turn probability above which a turn sounds finished
    judge_words: bool = True  # "smart": the bundled SmolLM2 reads the pause's transcription (where installed)
    words_wait: float = 1.0  # after words the judge does not read as a whole message (it misjudges statements)


class WordsVerdict(Enum):
    NONE = "none"  # no text judge: the voice and the trailing-word list decide
    PENDING = "pending"  # a judge, and the pause's words not judged yet
    FINISHED = "finished"
    UNFINISHED = "unfinished"


@dataclass(frozen=True)
class TurnDecision:
    wait: float  # seconds of silence, counted from the pause's start, that end this turn
    reason: str
    probability: float | None = None


def smart_turn_path() -> Path:
    """The Smart Turn ONNX inside the installed pipecat-ai wheel, found without importing pipecat."""
    from voicechat.errors import VoicechatError

    spec = importlib.util.find_spec("pipecat")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / SMART_TURN_FILE
        if path.is_file():
            return path
    raise VoicechatError("the Smart Turn model is missing (pipecat-ai not installed): run scripts/setup, "
                         "or set stt.turn_detection = \"silence\"")


class SmartTurn:
    """Probability that the speech in a 16 kHz clip is a finished turn (one ONNX call, ~40 ms on one core)."""

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path or smart_turn_path()), sess_options=options,
                                                     providers=["CPUExecutionProvider"])
        self._features = FeatureExtractor(feature_size=80, chunk_length=SMART_TURN_SECONDS)

    def probability(self, pcm: bytes) -> float:
        import numpy as np

        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        size = SMART_TURN_RATE * SMART_TURN_SECONDS
        samples = samples[-size:]
        samples = np.pad(samples, (size - samples.size, 0))
        samples = (samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)  # as Whisper's extractor normalizes
        features = self._features(samples, padding=0)[:, : size // 160]
        (output,) = self._session.run(None, {"input_features": features[np.newaxis].astype(np.float32)})
        return float(np.asarray(output).reshape(-1)[0])

    def warm_up(self) -> None:
        self.probability(bytes(2 * SMART_TURN_RATE))


def words_trail(text: str) -> bool | None:
    """True: the text stops mid-phrase; False: it ends a sentence; None: the words do not say."""
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.endswith(("...", "…", ",", "-", "—")):
        return True
    words = re.findall(r"[a-z']+", stripped.lower())
    if words and words[-1] in TRAILING_WORDS:
        return True
    if words and words[0] in SUBORDINATORS and stripped.endswith(".") and "," not in stripped:
        return True  # "When you get a chance.": a dependent clause alone, the main one still to come
    if len(words) == 3 and words[0] in MODALS and words[2] == "please":
        return True  # "Could you please?": Whisper's question mark, but the verb is still to come
    if stripped[-1] in ".?!":
        return False
    return None


def short_reply(text: str) -> bool:
    """ "Okay." "Yes, please." "Thank you so much!": a whole reply though it says little. Not one that
    trails ("So," "Okay..."), and not a lone filler word ("So.", "Oh.")."""
    if words_trail(text) is not False:
        return False
    words = re.findall(r"[a-z']+", text.lower())
    if not 0 < len(words) <= SHORT_REPLY_MAX_WORDS or not set(words) <= SHORT_REPLY_WORDS:
        return False
    return not (len(words) == 1 and words[0] in NOT_ALONE)


def joined_utterance(head: str, tail: str) -> str:
    """One utterance from two that a pause split: "Could you please?" + "Remind me to call." ->
    "Could you please... Remind me to call." (the head's end mark was Whisper's guess, the pause is real)."""
    head, tail = head.strip(), tail.strip()
    if not head or not tail:
        return head or tail
    return f"{head.rstrip('.?!…,;: ')}... {tail}"


NOT_ALONE = frozenset(("so", "oh", "ah", "of", "very", "much", "not", "really", "you", "course", "me", "too",
                       "thing", "thank"))


class TurnDetector:
    """Pure decisions: the wait for a pause, given what Smart Turn heard and the transcript reads."""

    def __init__(self, settings: TurnSettings) -> None:
        self.settings = settings

    def decide(self, probability: float | None, text: str, words: WordsVerdict = WordsVerdict.NONE) -> TurnDecision:
        """`words`: what the text judge made of the pause's own transcription (NONE: there is no judge)."""
        s = self.settings
        if s.mode == "silence":
            return TurnDecision(s.silence, "silence")
        trailing = words_trail(text)
        if trailing:  # "...wondering if": the words outrank the voice, which synthetic speech fools often
            return TurnDecision(s.patience, "trailing", probability)
        if words is WordsVerdict.UNFINISHED:  # "Can you tell me.": a period, but no end of a message
            return TurnDecision(max(s.words_wait, s.complete_wait), "words unfinished", probability)
        if probability is None:  # the model has not answered yet (40 ms on a quiet core, a second under load)
            return TurnDecision(s.patience, "waiting")
        if probability < s.threshold:
            sentence_ends = (trailing is False and words is not WordsVerdict.PENDING) or words is WordsVerdict.FINISHED
            return TurnDecision(s.silence if sentence_ends else s.patience, "unfinished", probability)
        if words is WordsVerdict.PENDING:  # the pause's words are still being transcribed or judged
            return TurnDecision(s.patience, "waiting for words", probability)
        return TurnDecision(s.complete_wait, "complete", probability)


class EndOfTurn:
    """Per pause: runs Smart Turn (and the text judge, on the pause's own transcription) off the audio
    thread and hands each new wait to `apply` (seconds).

    `hold()` keeps any pause from ending the turn (a scripted file still being fed) until `release()`.
    Callbacks come from RealtimeSTT's threads; a generation counter drops answers about a pause that ended.
    """

    def __init__(self, settings: TurnSettings, apply: Callable[[float], None],
                 model: SmartTurn | None = None, on_decision: Callable[[TurnDecision], None] | None = None,
                 words_model: TextTurn | None = None) -> None:
        self.detector = TurnDetector(settings)
        self.model = model
        self.words_model = words_model if settings.mode == "smart" else None
        self._apply = apply
        self._on_decision = on_decision or (lambda decision: None)
        self._lock = threading.Lock()
        self._generation = 0
        self._in_pause = False
        self._held = False
        self._probability: float | None = None
        self._text = ""
        self._words = WordsVerdict.NONE
        self._pause_text = ""
        self._work = threading.Condition(self._lock)
        self._job: tuple[int, bytes] | None = None
        self._words_job: tuple[int, str] | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        if settings.mode == "smart" and (model is not None or self.words_model is not None):
            self._thread = threading.Thread(target=self._run_models, name="voicechat-turns", daemon=True)
            self._thread.start()

    @property
    def in_pause(self) -> bool:
        return self._in_pause

    def pause_started(self, recent_audio: bytes) -> None:
        with self._lock:
            self._new_pause_locked(in_pause=True)
            if self.model is not None and self._thread is not None:
                self._job = (self._generation, recent_audio)
                self._work.notify()
            self._decide_locked()

    def speech_resumed(self) -> None:
        with self._lock:
            self._new_pause_locked(in_pause=False)
            self._apply_locked(self.detector.settings.patience)  # until the next pause is judged

    def transcript(self, text: str) -> None:
        with self._lock:
            self._text = text
            if self._in_pause:
                self._decide_locked()

    def pause_transcript(self, text: str) -> None:
        """The whole utterance as transcribed in this pause: the text judge reads it, and its words count."""
        with self._lock:
            if not self._in_pause or not text.strip():
                return
            self._pause_text = text
            if self.words_model is not None and short_reply(text):
                self._words = WordsVerdict.FINISHED  # no need to ask the judge, which reads these as cut off
            elif self.words_model is not None:
                self._words_job = (self._generation, text)
                self._work.notify()
            self._decide_locked()

    def turn_ended(self) -> None:
        with self._lock:
            self._new_pause_locked(in_pause=False)
            self._text = ""

    def hold(self) -> None:
        with self._lock:
            self._held = True
            self._apply_locked(HELD_WAIT)

    def release(self) -> None:
        with self._lock:
            self._held = False
            if self._in_pause:
                self._decide_locked()
            else:
                self._apply_locked(self.detector.settings.patience)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._work.notify()
        if self._thread is not None:
            self._thread.join(timeout=2.0)  # a judgement in flight finishes before its owner frees the models

    def _new_pause_locked(self, in_pause: bool) -> None:
        self._generation += 1
        self._in_pause, self._probability, self._pause_text = in_pause, None, ""
        self._words = WordsVerdict.PENDING if self.words_model is not None else WordsVerdict.NONE
        self._job = self._words_job = None

    def _decide_locked(self) -> None:
        decision = self.detector.decide(self._probability, self._pause_text or self._text, self._words)
        self._apply_locked(decision.wait)
        if not self._held:
            self._on_decision(decision)

    def _apply_locked(self, wait: float) -> None:
        self._apply(HELD_WAIT if self._held else wait)

    def _run_models(self) -> None:
        while True:
            with self._lock:
                while self._job is None and self._words_job is None and not self._closed:
                    self._work.wait()
                if self._closed:
                    return
                audio_job, words_job = self._job, None
                if audio_job is not None:  # the voice first: it is asked for as the pause begins
                    self._job = None
                else:
                    words_job, self._words_job = self._words_job, None
            if audio_job is not None:
                self._answer_audio(*audio_job)
            elif words_job is not None:
                self._answer_words(*words_job)

    def _answer_audio(self, generation: int, audio: bytes) -> None:
        assert self.model is not None
        probability = _safe_probability(self.model, audio)
        with self._lock:
            if generation == self._generation and self._in_pause:
                self._probability = probability
                self._decide_locked()

    def _answer_words(self, generation: int, text: str) -> None:
        assert self.words_model is not None
        verdict = _safe_verdict(self.words_model, text)
        log.debug("turn words %r: %s", text, verdict.value)
        with self._lock:
            if generation == self._generation and self._in_pause:
                self._words = verdict
                self._decide_locked()


HELD_WAIT = 3600.0  # seconds: "never", for RealtimeSTT's silence counter


def _safe_probability(model: Any, audio: bytes) -> float | None:
    try:
        return float(model.probability(audio))
    except Exception:  # a failed call leaves the words and the fallback in charge
        return None


def _safe_verdict(model: Any, text: str) -> WordsVerdict:
    try:
        return WordsVerdict.FINISHED if model.finished(text) else WordsVerdict.UNFINISHED
    except Exception:  # a failed judge leaves the voice and the fallback in charge
        log.debug("the text judge failed", exc_info=True)
        return WordsVerdict.NONE
