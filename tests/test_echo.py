"""The echo canceller's parts without devices: the played-audio timeline, stream placement, AEC3 on a
simulated room with real speech, and the transcript guard."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from voicechat.live.echo import (
    AEC_FRAME,
    RATE,
    REFERENCE_LEAD,
    SETTLE_SECONDS,
    EchoCanceller,
    EchoGuard,
    PlayedAudio,
    StreamClock,
    TimedResampler,
)


def test_played_audio_is_found_at_the_moment_it_played_and_silence_elsewhere() -> None:
    played = PlayedAudio(seconds=1.0)
    block = np.arange(1, 161, dtype=np.int16)
    played.publish(block, start=10.0)
    at = round(10.0 * RATE)
    assert np.array_equal(played.take(at, 160), block)
    assert np.array_equal(played.take(at + 80, 160)[:80], block[80:])
    assert not played.take(at + 80, 160)[80:].any()  # not played yet: silence
    assert not played.take(at - 1000, 160).any()  # before anything played


def test_played_audio_forgets_what_the_ring_no_longer_holds() -> None:
    played = PlayedAudio(seconds=0.5)
    first = np.full(160, 7, dtype=np.int16)
    played.publish(first, start=1.0)
    for step in range(1, 60):  # 0.6 s more: the first block falls out of the ring
        played.publish(np.full(160, 1, dtype=np.int16), start=1.0 + step * 0.01)
    assert not played.take(round(1.0 * RATE), 160).any()


def test_stream_clock_counts_samples_and_takes_the_median_of_reported_times() -> None:
    clock = StreamClock()
    reported = [5.0 + 0.03] + [5.0 + i * 0.01 + 0.0005 * (-1) ** i for i in range(1, 100)]  # a late first block
    places = [clock.place(t, 160) for t in reported]
    settled = round(SETTLE_SECONDS * 100)  # 10 ms blocks
    steps = np.diff(places[settled:])
    assert (steps == 160).all()  # counted, contiguous, once settled
    assert abs(places[settled] - round((5.0 + settled * 0.01) * RATE)) < 20  # the outlier did not place it


def test_stream_clock_places_the_stream_again_after_an_xrun() -> None:
    clock = StreamClock()
    for i in range(30):
        clock.place(2.0 + i * 0.01, 160)
    after = clock.place(2.0 + 30 * 0.01 + 0.5, 160, xrun=True)  # half a second was lost
    assert abs(after - round(2.8 * RATE)) < 2


def test_timed_resampler_gives_16k_and_the_time_of_its_first_output_sample() -> None:
    resample = TimedResampler(48000)
    tone = (np.sin(2 * np.pi * 440 * np.arange(48000) / 48000) * 8000).astype(np.int16)
    outputs = [resample(tone[i : i + 1536], 1.0 + i / 48000) for i in range(0, 48000, 1536)]
    samples = np.concatenate([out for out, _ in outputs])
    assert abs(samples.size - 16000) < 600
    starts = [start for out, start in outputs if out.size]
    counted = np.cumsum([0, *[out.size for out, _ in outputs if out.size][:-1]]) / RATE
    assert np.allclose(np.array(starts) - starts[0], counted, atol=0.002)  # the times follow the samples


def _speech_16k(make_speech, text: str, name: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    import soxr

    path = make_speech(text, name)
    with wave.open(str(path)) as handle:
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), dtype=np.int16)
        rate = handle.getframerate()
    return soxr.resample(pcm, rate, RATE).astype(np.int16)


def _room(far: np.ndarray, delay: float, gain_db: float) -> np.ndarray:
    shift = int(delay * RATE)
    echo = np.zeros_like(far, dtype=np.float32)
    echo[shift:] = far[: far.size - shift] * 10 ** (gain_db / 20)
    return echo


def _run_canceller(far: np.ndarray, near: np.ndarray, lead: float = REFERENCE_LEAD) -> np.ndarray:
    """Blocks of 512 microphone samples with their capture times, the reference published ahead."""
    played, start = PlayedAudio(), 100.0
    canceller = EchoCanceller(played)
    played.publish(far[: int(lead * RATE) + 1024], start)
    out = []
    for i in range(0, near.size - 512, 512):
        ahead = i + int(lead * RATE) + 1024
        played.publish(far[ahead : ahead + 512], start + ahead / RATE)
        out.append(np.frombuffer(canceller.process(near[i : i + 512].tobytes(), start + i / RATE), dtype=np.int16))
    return np.concatenate(out)


def _db(samples: np.ndarray) -> float:
    x = samples.astype(np.float64)
    return float(10 * np.log10(np.mean(x * x) + 1e-9))


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="issue 11: words spoken over a reply are sometimes misheard (0.83 once "
                   "in a CI-like run: 'Scott, drumming it up to Mars instead.'); the echo part holds")
def test_aec_removes_a_replys_echo_and_keeps_the_users_voice(make_speech, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import transcribe_file, word_error_rate

    reply = ("Once upon a time there was a small boat on a wide grey sea. The sailor in it had lost his map. "
             "He watched the stars every night to find his way home. One night a storm came and threw the "
             "waves high.")  # long enough that the user speaks after LEARN_SECONDS, when the microphone opens
    far = _speech_16k(make_speech, reply, "reply.wav")
    user_text = "Stop. Tell me about Mars instead."
    user = _speech_16k(make_speech, user_text, "user.wav")
    echo = _room(far, delay=0.07, gain_db=-12)
    user_at = far.size - user.size - RATE  # the user talks over the reply's last seconds
    near = echo.copy()
    near[user_at : user_at + user.size] += user  # the user, nearer the microphone than the speakers
    near_pcm = np.clip(near, -32768, 32767).astype(np.int16)

    clean = _run_canceller(far, near_pcm)
    assert clean.size >= near_pcm.size - 2 * 512 and clean.size % AEC_FRAME == 0
    settled = slice(2 * RATE, user_at)  # echo alone, once AEC3 has converged
    erle = _db(near_pcm[settled]) - _db(clean[settled])
    assert erle > 15, f"only {erle:.1f} dB of echo removed"

    words = slice(user_at - RATE // 2, user_at + user.size + RATE // 2)
    raw_wer = word_error_rate(user_text, transcribe_file(_wav(near_pcm[words], tmp_path / "raw.wav")))
    heard = transcribe_file(_wav(clean[words], tmp_path / "heard.wav"))
    # double talk: the user is understood better than without AEC (Piper's voice varies from run to run and
    # the first word, spoken over the reply, may slip)
    clean_wer = word_error_rate(user_text, heard)
    assert clean_wer < raw_wer and clean_wer <= 0.67, (heard, clean_wer, raw_wer)


def test_the_canceller_calls_its_hook_on_a_voice_over_the_echo_and_never_on_the_echo_alone(make_speech) -> None:  # type: ignore[no-untyped-def]
    from voicechat.live.echo import LEARN_SECONDS

    reply = ("Once upon a time there was a small boat on a wide grey sea. The sailor in it had lost his map. "
             "He watched the stars every night to find his way home. One night a storm came and threw the "
             "waves high.")
    far = _speech_16k(make_speech, reply, "reply.wav")
    user = _speech_16k(make_speech, "Stop. Tell me about Mars instead.", "user.wav")
    near = _room(far, delay=0.07, gain_db=-12)
    user_at = far.size - user.size - RATE // 2  # the user talks over the reply's last seconds
    assert user_at > (LEARN_SECONDS + 2) * RATE  # AEC3 and the gate have learned the room by then
    near[user_at : user_at + user.size] += user
    near_pcm = np.clip(near, -32768, 32767).astype(np.int16)
    voice_at = user_at + int(np.argmax(np.abs(user) > 0.02 * 32768))  # the first audible sample of the voice

    played, start = PlayedAudio(), 100.0
    canceller = EchoCanceller(played, mute_while_learning=False)
    calls: list[int] = []  # the microphone sample at the end of each block that called the hook
    lead = int(REFERENCE_LEAD * RATE) + 1024
    played.publish(far[:lead], start)
    for i in range(0, near_pcm.size - 512, 512):
        played.publish(far[i + lead : i + lead + 512], start + (i + lead) / RATE)
        canceller.on_sound = lambda end=i + 512: calls.append(end)
        canceller.process(near_pcm[i : i + 512].tobytes(), start + i / RATE)
    assert calls, "the voice over the reply never reached the hook"
    assert all(end > voice_at for end in calls), "the echo alone called the hook"
    assert calls[0] - voice_at < 0.1 * RATE, f"the hook came {(calls[0] - voice_at) / RATE:.3f} s into the voice"


def _wav(samples: np.ndarray, path: Path) -> Path:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(samples.tobytes())
    return path


def test_without_its_reference_aec_removes_nothing(make_speech) -> None:  # type: ignore[no-untyped-def]
    far = _speech_16k(make_speech, "The sailor watched the stars every night to find his way home.", "r.wav")
    near = _room(far, delay=0.07, gain_db=-12).astype(np.int16)
    clean = _run_canceller(np.zeros_like(far), near)
    assert abs(_db(near[RATE : clean.size]) - _db(clean[RATE:])) < 3


@pytest.mark.parametrize(("transcript", "echo"), [
    ("That earned.", False),  # words that were not played are the user's
    ("the sailor in it had lost his map", True),
    ("Lost his map.", True),
    ("Stop. Tell me about Mars instead.", False),
    ("...", True),
])
def test_echo_guard_knows_the_replys_own_words(transcript: str, echo: bool) -> None:
    played = ["Once upon a time there was a small boat on a wide grey sea.", "The sailor in it had lost his map."]
    assert EchoGuard().is_echo(transcript, played) is echo


def test_echo_guard_with_nothing_played_takes_every_transcript() -> None:
    assert EchoGuard().is_echo("Tell me about Mars.", []) is False


def test_echo_guard_holds_a_final_made_of_the_reply_while_it_plays_and_just_after(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import voicechat.live.echo as echo_module
    from voicechat.events import Heard, HeardKind

    now = [100.0]
    monkeypatch.setattr("time.monotonic", lambda: now[0])
    guard = echo_module.EchoGuard(tail=3.0)
    played = ["The sailor in it had lost his map."]
    started = Heard("", HeardKind.STARTED, timestamp=now[0])
    echo = Heard("lost his map", HeardKind.FINAL, timestamp=now[0])
    assert guard.hears_echo(started, True, played) is False  # only finals are judged
    now[0] += 2.0  # the reply ended; its echo's transcript comes late
    assert guard.hears_echo(echo, False, played) is True
    assert guard.hears_echo(Heard("Tell me about Mars.", HeardKind.FINAL), False, played) is False
    now[0] += 5.0  # long after the reply: the same words are the user's
    assert guard.hears_echo(echo, False, played) is False


def test_doctor_says_which_mode_talk_uses_on_speakers(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys

    from voicechat.doctor import check_echo_mode

    working = check_echo_mode()
    assert working.ok and "echo cancellation" in working.detail and "--headphones" in working.detail
    monkeypatch.setitem(sys.modules, "pywebrtc_audio", None)  # as if it were not installed
    fallback = check_echo_mode()
    assert not fallback.ok and not fallback.required
    assert fallback.detail.startswith("half duplex") and "pywebrtc-audio" in fallback.fix


def test_residue_gate_tells_residue_from_a_sound_and_from_a_voice_louder_than_any_echo() -> None:
    from voicechat.live.echo import ResidueGate

    rng = np.random.default_rng(3)

    def noise(db: float) -> np.ndarray:
        return (rng.standard_normal(160) * 32768 * 10 ** (db / 20)).clip(-32768, 32767).astype(np.int16)

    gate = ResidueGate()
    for _ in range(50):  # learning: the echo arrives 12 dB under what plays
        assert gate.passes(noise(-22), noise(-10), noise(-22), learning=True)
    residue, faint, echo_loud, voice = noise(-40), noise(-30), noise(-20), noise(-12)
    assert not gate.passes(noise(-22), noise(-10), residue, learning=False) and not gate.over_echo
    assert not gate.sound
    assert gate.passes(noise(-22), noise(-10), faint, learning=False) and not gate.sound  # a slip, or far away
    assert gate.passes(noise(-20), noise(-10), echo_loud, learning=False) and not gate.over_echo
    assert gate.sound  # as loud as the whole echo: AEC3 never leaves that much, so the reply is held
    assert gate.passes(noise(-20), noise(-10), noise(-26), learning=False) and gate.sound  # 6 dB under it too
    assert gate.passes(noise(-12), noise(-10), voice, learning=False) and gate.over_echo and gate.sound


def test_residue_gate_takes_a_sound_that_begins_late_in_a_block_at_once() -> None:
    from voicechat.live.echo import ResidueGate

    rng = np.random.default_rng(5)

    def noise(db: float, samples: int = 480) -> np.ndarray:
        return (rng.standard_normal(samples) * 32768 * 10 ** (db / 20)).clip(-32768, 32767).astype(np.int16)

    gate = ResidueGate()
    for _ in range(50):  # learning: the echo arrives 12 dB under what plays
        gate.passes(noise(-22), noise(-10), noise(-22), learning=True)
    late = np.concatenate([noise(-40, 320), noise(-25, 160)])  # residue, then the last 10 ms 3 dB under the echo
    assert gate.passes(noise(-22), noise(-10), late, learning=False)
    assert gate.sound  # the block as a whole is 8 dB under the echo (under the line), its last 10 ms are not
    assert not gate.over_echo
