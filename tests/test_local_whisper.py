"""The recognizer's one in-process model: final transcriptions come first, live text gives way to them."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import bundled_whisper_dir, word_error_rate
from voicechat.live.local_whisper import LiveTextSkipped, LocalWhisper, bytes_to_audio, encoder_window_frames
from voicechat.live.sources import read_speech_file, silence

pytestmark = pytest.mark.slow


def test_final_and_live_text_read_the_speech(make_speech) -> None:  # type: ignore[no-untyped-def]
    whisper = LocalWhisper(bundled_whisper_dir(), "cpu", "int8", cpu_threads=2)
    audio = bytes_to_audio(read_speech_file(make_speech("The harbour map is in drawer nine.", "map.wav")))
    assert "drawer" in whisper.final(audio, "en").text.lower()
    assert "drawer" in whisper.live(audio, "en").text.lower()
    whisper.close()
    with pytest.raises(LiveTextSkipped):
        whisper.live(audio, "en")  # closed: nothing new starts in CTranslate2 at exit


def test_live_text_gives_way_while_a_final_transcription_runs(make_speech) -> None:  # type: ignore[no-untyped-def]
    whisper = LocalWhisper(bundled_whisper_dir(), "cpu", "int8", cpu_threads=1)
    speech = read_speech_file(make_speech("The harbour map is in drawer nine, by the window.", "map.wav"))
    long_audio = bytes_to_audio(speech + silence(1.0) + speech + silence(1.0) + speech)
    finals: list[str] = []
    running = threading.Thread(target=lambda: finals.append(whisper.final(long_audio, "en").text))
    running.start()
    deadline = time.monotonic() + 10
    while not whisper.finals_pending and time.monotonic() < deadline:
        time.sleep(0.001)
    assert whisper.finals_pending, "the final transcription never started"
    with pytest.raises(LiveTextSkipped):
        whisper.live(bytes_to_audio(speech), "en")
    running.join(timeout=60)
    assert finals and "drawer" in finals[0].lower()
    assert "drawer" in whisper.live(bytes_to_audio(speech), "en").text.lower()  # free again


def test_a_short_window_hears_the_words_and_nothing_in_silence(make_speech) -> None:  # type: ignore[no-untyped-def]
    whisper = LocalWhisper(bundled_whisper_dir(), "cpu", "int8", cpu_threads=2)
    full = LocalWhisper(bundled_whisper_dir(), "cpu", "int8", cpu_threads=2, window_seconds=30.0)
    for words in ("What time is it?", "Yesterday I went to the market and bought apples."):
        audio = bytes_to_audio(read_speech_file(make_speech(words, "question.wav")))
        short_text, full_text = whisper.final(audio, "en").text, full.final(audio, "en").text
        # the two windows may differ by a word ("Apple's"/"apples" in one CI-like run): both are held to the words
        assert word_error_rate(words, short_text) <= 0.25 and word_error_rate(words, full_text) <= 0.25
        assert short_text.count(words.split()[0]) == 1, f"the short window repeated itself: {short_text!r}"
    quiet = bytes_to_audio(silence(2.0))
    assert whisper.final(quiet, "en").text == full.final(quiet, "en").text
    assert whisper._model.window_frames == 2000  # what the encoder read last
    twenty = bytes_to_audio(silence(20.0))
    whisper.final(twenty, "en")
    assert whisper._model.window_frames == 2500  # longer audio: the audio and 5 s of quiet


def test_the_window_grows_with_the_audio_up_to_whispers_own() -> None:
    assert encoder_window_frames(16_000 * 2, 20.0) == 2000
    assert encoder_window_frames(16_000 * 20, 20.0) == 2500
    assert encoder_window_frames(16_000 * 40, 20.0) == 3000
    assert encoder_window_frames(16_000 * 2, 30.0) == 3000
