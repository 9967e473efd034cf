"""Engines declare what they can do and take their voices from whoever builds them; every profile key is
listed, with its default and description, by `voicechat profiles keys`."""

from __future__ import annotations

import asyncio
import tomllib

from tests.conftest import REPO, run_cli
from voicechat.config.models import TTSSettings
from voicechat.config.store import load_voice
from voicechat.events import Sentence
from voicechat.tts.registry import TTS_ENGINES, engine_traits


def test_every_engine_declares_its_traits() -> None:
    for name in TTS_ENGINES:
        traits = engine_traits(name)
        assert traits.concurrency in ("per-core", "one", "unbounded")
    assert engine_traits("openai-speech").remote and not engine_traits("piper").remote


def test_an_engine_speaks_the_voice_its_builder_hands_it() -> None:
    from voicechat.tts.piper import PiperTTS

    asked: list[str] = []

    def lookup(name: str):  # type: ignore[no-untyped-def]
        asked.append(name)
        return load_voice("joe")

    tts = PiperTTS(TTSSettings(), voices=lookup)

    async def speak() -> int:
        return sum([len(chunk.pcm) async for chunk in tts.stream(Sentence("Hi there.", voice="someone-else"))])

    assert asyncio.run(speak()) > 0
    assert asked == ["someone-else"]


def test_profiles_keys_lists_every_key_of_the_packaged_profile_with_its_default() -> None:
    result = run_cli("profiles", "keys")
    assert result.returncode == 0
    lines = result.stdout.decode().splitlines()
    assert any(line.startswith("llm.temperature = 0.8") and "sampling temperature" in line for line in lines)
    assert any(line.startswith("tts.openai-speech.model = 'gpt-4o-mini-tts'") for line in lines)
    listed = {line.split(" = ")[0] for line in lines}
    packaged = tomllib.loads((REPO / "configs" / "profiles" / "default.toml").read_text())

    def leaves(table: dict, prefix: str = "") -> list[str]:  # type: ignore[type-arg]
        found = []
        for key, value in table.items():
            found += leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [f"{prefix}{key}"]
        return found

    assert set(leaves(packaged)) <= listed


def test_profiles_keys_with_an_unknown_prefix_says_so() -> None:
    result = run_cli("profiles", "keys", "nope")
    assert result.returncode == 2 and b"no profile key starts with 'nope'" in result.stderr
