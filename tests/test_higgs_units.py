"""The Higgs engine's parts that need no model: delay pattern, windows, reference cache, voices, settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voicechat.config.models import TTSSettings, Voice
from voicechat.config.store import load_profile, load_voice
from voicechat.errors import ConfigError, UsageError, VoicechatError
from voicechat.tts.higgs.frames import DelayPattern, WindowedDecoder, WindowPlan, to_pcm16
from voicechat.tts.higgs.prompt import system_message, voice_prompt
from voicechat.tts.higgs.references import ReferenceCache
from voicechat.tts.higgs.settings import HiggsSettings

K, BOS, EOS, SIZE = 8, 1024, 1025, 1024


def delayed_columns(frames: np.ndarray) -> np.ndarray:
    """What Higgs emits for `frames` (K, n): a BOS column, codebook k shifted by k steps, then EOS fill."""
    n = frames.shape[1]
    columns = np.full((K, n + K + 1), BOS, dtype=np.int64)
    for k in range(K):
        columns[k, 1 + k : 1 + k + n] = frames[k]
        columns[k, 1 + k + n :] = EOS
    return columns


def test_higgs_delay_pattern_recovers_frames_as_they_complete() -> None:
    frames = np.random.default_rng(1).integers(0, SIZE, size=(K, 20))
    columns = delayed_columns(frames)
    delay, out = DelayPattern(K, SIZE), []
    for index in range(columns.shape[1]):
        got = delay.push(columns[:, index])
        out.append(got)
        # frame j (1-based after BOS) is released once column j + K has arrived
        assert sum(o.shape[1] for o in out) == max(0, index + 1 - K - 1)
    assert np.array_equal(np.concatenate(out, axis=1), frames)


def test_higgs_delay_pattern_matches_boson_revert() -> None:
    utils = pytest.importorskip("boson_multimodal.model.higgs_audio.utils")
    import torch

    columns = np.random.default_rng(2).integers(0, SIZE + 2, size=(K, 40))  # BOS/EOS anywhere: clipped
    expected = utils.revert_delay_pattern(torch.from_numpy(columns)).clip(0, SIZE - 1)[:, 1:-1].numpy()
    delay = DelayPattern(K, SIZE)
    got = np.concatenate([delay.push(columns[:, i]) for i in range(columns.shape[1])], axis=1)
    assert np.array_equal(got, expected)


def smear(codes: np.ndarray) -> np.ndarray:
    """A stand-in decoder whose samples depend on 3 frames either side (4 samples per frame)."""
    signal = np.repeat(codes.sum(axis=0).astype(np.float64), 4)
    padded = np.pad(signal, 12)
    return np.convolve(padded, np.ones(25) / 25, mode="same")[12:-12]


@pytest.mark.parametrize(("left", "lookahead", "exact"), [(3, 3, True), (8, 4, True), (0, 0, False), (3, 1, False)])
def test_higgs_windows_are_exact_once_context_covers_the_receptive_field(
    left: int, lookahead: int, exact: bool
) -> None:
    codes = np.random.default_rng(3).integers(0, SIZE, size=(K, 57))
    decoder = WindowedDecoder(smear, 4, WindowPlan(5, 10, left, lookahead))
    chunks = list(decoder.push(codes[:, :30])) + list(decoder.push(codes[:, 30:])) + [decoder.finish()]
    streamed = np.concatenate(chunks)
    assert len(streamed) == 57 * 4
    assert np.allclose(streamed, smear(codes)) is exact
    assert [len(c) for c in chunks[:2]] == [5 * 4, 10 * 4]  # first chunk short, then chunk_frames


def test_higgs_window_waits_for_lookahead_and_counts_its_cost() -> None:
    decoder = WindowedDecoder(smear, 4, WindowPlan(5, 10, 2, 3))
    zeros = np.zeros((K, 1), dtype=np.int64)
    assert list(decoder.push(np.repeat(zeros, 7, axis=1))) == []  # the first 5 frames need 3 more after them
    assert [len(c) for c in decoder.push(zeros)] == [5 * 4]
    assert decoder.decoded_frames == 8  # frames 0..7: the chunk and its lookahead
    assert [len(c) for c in decoder.push(np.repeat(zeros, 12, axis=1))] == [10 * 4]  # frames 5..14
    assert decoder.decoded_frames == 8 + 15  # 2 left + 10 + 3 lookahead
    assert len(decoder.finish()) == 5 * 4  # frames 15..19, no lookahead owed at the end
    assert decoder.decoded_frames == 8 + 15 + 7
    assert len(decoder.finish()) == 0


def test_higgs_pcm16_clips_and_scales() -> None:
    pcm = np.frombuffer(to_pcm16(np.array([0.0, 0.5, -2.0, 2.0])), dtype="<i2")
    assert pcm.tolist() == [0, 16383, -32767, 32767]


def fake_reference(folder: Path, content: bytes = b"RIFF-fake") -> Path:
    path = folder / "voice.wav"
    path.write_bytes(content)
    return path


def test_higgs_reference_cache_encodes_once_then_reads_disk(tmp_path: Path) -> None:
    calls: list[Path] = []

    def encode(path: Path) -> np.ndarray:
        calls.append(path)
        return np.arange(16).reshape(8, 2) + len(path.read_bytes())

    reference = fake_reference(tmp_path)
    cache = ReferenceCache(encode, "tokenizer-a", tmp_path / "cache")
    first = cache.codes(reference)
    assert np.array_equal(cache.codes(reference), first)
    assert (len(calls), cache.stats.memory_hits) == (1, 1)

    restarted = ReferenceCache(encode, "tokenizer-a", tmp_path / "cache")
    assert np.array_equal(restarted.codes(reference), first)
    assert (len(calls), restarted.stats.disk_hits) == (1, 1)

    other_tokenizer = ReferenceCache(encode, "tokenizer-b", tmp_path / "cache")
    other_tokenizer.codes(reference)
    assert len(calls) == 2  # codes differ per audio tokenizer

    reference.write_bytes(b"RIFF-another-recording")  # a new file under the same name
    assert not np.array_equal(restarted.codes(reference), first)
    assert len(calls) == 3


def test_higgs_reference_cache_replaces_a_damaged_file(tmp_path: Path) -> None:
    calls: list[int] = []
    reference = fake_reference(tmp_path)

    def encode(path: Path) -> np.ndarray:
        calls.append(1)
        return np.ones((8, 3))

    ReferenceCache(encode, "t", tmp_path / "cache").codes(reference)
    for stored in (tmp_path / "cache").glob("*.npy"):
        stored.write_bytes(b"garbage")
    assert ReferenceCache(encode, "t", tmp_path / "cache").codes(reference).shape == (8, 3)
    assert len(calls) == 2


def test_higgs_voice_clones_when_reference_and_transcript_exist(voicechat_home: Path) -> None:
    voices = voicechat_home / "voices"
    voices.mkdir()
    (voices / "ada.toml").write_text('description = "bright"\n')
    (voices / "ada.wav").write_bytes(b"RIFF")
    (voices / "ada.txt").write_text("  What the recording says.\n")
    prompt = voice_prompt(load_voice("ada"))
    assert prompt.reference_audio == voices / "ada.wav"
    assert prompt.reference_text == "What the recording says."
    assert "SPEAKER0" not in system_message("A quiet room.", prompt)

    (voices / "ada.txt").unlink()
    with pytest.raises(ConfigError, match=r"no transcript; write what it says into .*ada.txt"):
        voice_prompt(load_voice("ada"))


def test_higgs_voice_without_reference_is_described(voicechat_home: Path) -> None:
    prompt = voice_prompt(load_voice("lydia"))  # packaged: a description, no recording
    assert prompt.reference_audio is None
    message = system_message("Audio is recorded from a quiet room.", prompt)
    assert "<|scene_desc_start|>\nAudio is recorded from a quiet room.\n\nSPEAKER0: A warm, clear" in message
    assert message.endswith("<|scene_desc_end|>")


def test_higgs_voice_clone_off_and_missing_reference_file(voicechat_home: Path) -> None:
    voices = voicechat_home / "voices"
    voices.mkdir()
    (voices / "bo.toml").write_text('[higgs]\nclone = false\n')
    (voices / "bo.wav").write_bytes(b"RIFF")
    assert voice_prompt(load_voice("bo")).reference_audio is None
    (voices / "cy.toml").write_text('[higgs]\nreference_audio = "nope.wav"\n')
    with pytest.raises(ConfigError, match=r"cy.*nope.wav not found; fix higgs.reference_audio"):
        voice_prompt(load_voice("cy"))


def test_higgs_settings_from_toml_with_the_dashed_section(voicechat_home: Path) -> None:
    (voicechat_home / "profiles").mkdir()
    (voicechat_home / "profiles" / "gpu.toml").write_text(
        '[tts]\nengine = "higgs"\n[tts.higgs]\ntemperature = 0.5\nkv_cache_lengths = [2048]\nseed = 3\n'
        '[tts.openai-speech]\nbase_url = "http://box:8000/v1"\n'
    )
    tts = load_profile("gpu").tts
    assert (tts.higgs.temperature, tts.higgs.kv_cache_lengths, tts.higgs.seed) == (0.5, (2048,), 3)
    assert tts.openai_speech.base_url == "http://box:8000/v1"
    voice = Voice.model_validate({"openai-speech": {"voice": "nova"}})
    assert voice.openai_speech.voice == "nova"


@pytest.mark.parametrize(("key", "value"), [("temperature", 3.0), ("kv_cache_lengths", [10]),
                                            ("device", "gpu"), ("stream_chunk_frames", 0)])
def test_higgs_settings_reject_bad_values(key: str, value: object) -> None:
    with pytest.raises(UsageError, match=f"higgs.{key}"):
        load_profile("default", {f"tts.higgs.{key}": value})


def test_higgs_defaults_are_the_measured_windows() -> None:
    settings = HiggsSettings()
    assert (settings.stream_left_context, settings.stream_lookahead) == (12, 10)
    assert TTSSettings().higgs == settings


def test_higgs_device_auto_without_cuda_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    from voicechat.tts.higgs.loader import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(VoicechatError, match=r"needs a CUDA GPU.*--engine openai-speech.*device = \"cpu\""):
        resolve_device("auto")
    with pytest.raises(VoicechatError, match="sees no CUDA GPU"):
        resolve_device("cuda:1")
    assert resolve_device("cpu") == "cpu"


def test_higgs_missing_local_weights_name_the_setting(tmp_path: Path) -> None:
    from voicechat.tts.higgs.loader import check_location

    with pytest.raises(VoicechatError, match=r"model not found: .*weights is not a folder.*tts.higgs.model"):
        check_location(str(tmp_path / "weights"), "model", "model")
    check_location("bosonai/higgs-audio-v2-generation-3B-base", "model", "model")  # a hub name: the loader's


def test_higgs_torchaudio_stand_in_resamples_like_a_resampler() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("soxr")
    from voicechat.tts.higgs.compat import _resample

    t = torch.arange(24000) / 24000
    tone = torch.sin(2 * torch.pi * 440 * t).reshape(1, 1, -1)
    out = _resample(tone, 24000, 16000)
    assert out.shape == (1, 1, 16000) and out.dtype == tone.dtype
    spectrum = np.abs(np.fft.rfft(out[0, 0].numpy()))
    assert int(np.argmax(spectrum)) == 440  # 1 s at 16 kHz: bin = Hz


def test_higgs_cli_imports_nothing_heavy() -> None:
    code = (
        "import sys, voicechat.cli, voicechat.tts.registry, voicechat.tts.higgs;"
        "print([m for m in ('torch', 'boson_multimodal', 'numpy', 'transformers', 'openai') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_higgs_weights_not_cached_offline_fail_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = pytest.importorskip("huggingface_hub.constants")
    from voicechat.tts.higgs.loader import check_hub

    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(VoicechatError, match=r"weights org/model, bosonai/hubert_base are not in the Hugging Face "
                                             r"cache and HF_HUB_OFFLINE is set: download them"):
        check_hub([str(tmp_path), "org/model", "bosonai/hubert_base", "org/model"])
    check_hub([str(tmp_path)])  # local folders are not the hub's business


def test_higgs_settings_print_as_toml_and_read_back(voicechat_home: Path) -> None:
    import tomllib

    from tests.conftest import run_cli

    result = run_cli("profiles", "show", "default")
    assert result.returncode == 0, result.stderr.decode()
    text = result.stdout.decode()
    assert "[tts.higgs]" in text and "stream_lookahead = 10" in text
    shown = tomllib.loads("\n".join(line for line in text.splitlines() if not line.startswith("#")))
    (voicechat_home / "profiles").mkdir()
    (voicechat_home / "profiles" / "copy.toml").write_text(text)
    assert load_profile("copy").tts == load_profile("default").tts
    assert shown["tts"]["higgs"]["seed"] == -1
