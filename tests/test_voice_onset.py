"""The fast barge-in signal: Silero VAD on the microphone's frames finds where a voice begins."""

from __future__ import annotations

from voicechat.live.sources import read_speech_file, silence
from voicechat.live.voice_onset import VoiceOnset


def onsets(detector: VoiceOnset, pcm: bytes, block: int = 962) -> list[float]:
    """Seconds into `pcm` at which the detector reported an onset, fed in blocks of uneven size."""
    found = []
    for start in range(0, len(pcm), block):
        if detector.heard(pcm[start : start + block]):
            found.append((start + block) / 32000)
    return found


def test_each_utterance_has_one_onset_near_its_start_and_silence_none(make_speech) -> None:  # type: ignore[no-untyped-def]
    speech = read_speech_file(make_speech("Stop. Tell me about Mars instead.", "stop.wav"))
    detector = VoiceOnset()
    assert onsets(detector, silence(2.0)) == []
    found = onsets(detector, silence(1.0) + speech + silence(1.0) + speech)
    first, second = 1.0, 2.0 + len(speech) / 32000
    assert len(found) == 2, found  # the short pause inside ("Stop. Tell") does not start a new voice
    assert first < found[0] < first + 0.4, found
    assert second < found[1] < second + 0.4, found


def test_reset_forgets_a_voice_in_progress(make_speech) -> None:  # type: ignore[no-untyped-def]
    speech = read_speech_file(make_speech("Tell me about Mars.", "mars.wav"))
    joined = onsets(VoiceOnset(), silence(0.5) + speech + silence(0.1) + speech)
    assert len(joined) == 1, joined  # 0.1 s between: one voice going on, no second onset
    detector = VoiceOnset()
    assert len(onsets(detector, silence(0.5) + speech + silence(0.1))) == 1
    detector.reset()  # the reply ended: the voice that goes on is new to the next reply
    assert len(onsets(detector, speech)) == 1
