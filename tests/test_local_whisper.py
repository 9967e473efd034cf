"""The recognizer's one in-process model: final transcriptions come first, live text gives way to them."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import bundled_whisper_dir
from voicechat.live.local_whisper import LiveTextSkipped, LocalWhisper, bytes_to_audio
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
