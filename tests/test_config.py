"""Profiles, characters and voices: precedence, validation messages, and `profiles new`."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from voicechat.config.models import Profile
from voicechat.config.store import (
    environment_overrides,
    list_files,
    load_character,
    load_profile,
    load_voice,
    parse_assignment,
)
from voicechat.errors import ConfigError, UsageError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_packaged_default_profile_matches_the_documented_defaults() -> None:
    assert load_profile("default", environ={}) == Profile()


def test_user_profile_overrides_packaged_key_by_key(voicechat_home: Path) -> None:
    write(voicechat_home / "profiles" / "default.toml", "[llm]\ntemperature = 0.3\n")
    profile = load_profile("default", environ={})
    assert profile.llm.temperature == 0.3
    assert profile.llm.top_p == Profile().llm.top_p  # untouched keys still come from the packaged file


def test_precedence_flag_over_environment_over_user_file(voicechat_home: Path) -> None:
    write(voicechat_home / "profiles" / "default.toml", '[llm]\nmodel = "from-file"\ntemperature = 0.3\n')
    environ = {"VOICECHAT_LLM_MODEL": "from-env", "VOICECHAT_LLM_TEMPERATURE": "0.4"}
    assert load_profile("default", environ=environ).llm.model == "from-env"
    assert load_profile("default", environ=environ).llm.temperature == 0.4
    flagged = load_profile("default", {"llm.model": "from-flag"}, environ=environ)
    assert flagged.llm.model == "from-flag"
    assert flagged.llm.temperature == 0.4


def test_environment_overrides_cover_top_level_and_section_keys() -> None:
    found = environment_overrides({"VOICECHAT_USER_NAME": "Ada", "VOICECHAT_TTS_VOICE": "joe", "OTHER": "x"})
    assert found == {"user_name": "Ada", "tts.voice": "joe"}


def test_broken_toml_names_the_file_and_line(voicechat_home: Path) -> None:
    path = write(voicechat_home / "profiles" / "broken.toml", '[llm]\nmodel = "x"\ntemperature = = 2\n')
    with pytest.raises(ConfigError) as caught:
        load_profile("broken", environ={})
    message = str(caught.value)
    assert str(path) in message
    assert "line 3" in message


def test_unknown_key_is_named_with_the_known_ones(voicechat_home: Path) -> None:
    write(voicechat_home / "profiles" / "typo.toml", "[llm]\ntemprature = 0.5\n")
    with pytest.raises(ConfigError, match=r"unknown key 'llm\.temprature' \(known keys: model, base_url"):
        load_profile("typo", environ={})


def test_value_out_of_range_names_key_and_allowed_range(voicechat_home: Path) -> None:
    path = write(voicechat_home / "profiles" / "hot.toml", "[llm]\ntemperature = 5.0\n")
    with pytest.raises(ConfigError) as caught:
        load_profile("hot", environ={})
    message = str(caught.value)
    assert str(path) in message
    assert "llm.temperature = 5.0" in message
    assert "allowed: 0.0 <= temperature <= 2.0" in message


def test_bad_environment_value_is_blamed_on_the_environment(voicechat_home: Path) -> None:
    with pytest.raises(ConfigError, match=r"VOICECHAT_LLM_TOP_P|llm\.top_p from the environment"):
        load_profile("default", environ={"VOICECHAT_LLM_TOP_P": "7"})


def test_unknown_tts_engine_lists_the_known_ones(voicechat_home: Path) -> None:
    write(voicechat_home / "profiles" / "odd.toml", '[tts]\nengine = "nope"\n')
    with pytest.raises(ConfigError, match=r"tts\.engine = 'nope': unknown TTS engine; choose one of piper"):
        load_profile("odd", environ={})


def test_unknown_profile_lists_known_names() -> None:
    with pytest.raises(UsageError, match=r"unknown profile 'missing': known profiles are .*default"):
        load_profile("missing", environ={})


def test_user_character_replaces_packaged_one(voicechat_home: Path) -> None:
    write(voicechat_home / "characters" / "lydia.toml", 'name = "Lyd"\npersona = "Short."\n')
    character = load_character("lydia")
    assert character.name == "Lyd"
    assert character.voice == "lydia"  # the default voice
    sources = {f.name: f.source for f in list_files("characters")}
    assert sources["lydia"] == "user"
    assert sources["captain"] == "packaged"


def test_packaged_characters_and_voices_all_load() -> None:
    characters = [load_character(f.name) for f in list_files("characters")]
    assert len(characters) >= 3
    voices = {f.name for f in list_files("voices")}
    assert {"lydia", "joe"} <= voices
    for character in characters:
        assert character.voice in voices
    assert load_voice("lydia").voice.description


def test_voice_reference_files_are_found_beside_the_toml(voicechat_home: Path) -> None:
    folder = voicechat_home / "voices"
    write(folder / "ada.toml", 'description = "test"\n')
    (folder / "ada.wav").write_bytes(b"RIFF")
    write(folder / "ada.txt", "reference words")
    entry = load_voice("ada")
    assert entry.reference_audio == folder / "ada.wav"
    assert entry.reference_text == folder / "ada.txt"
    assert load_voice("joe").reference_audio is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("llm.temperature=0.5", ("llm.temperature", 0.5)),
        ("llm.top_k = 40", ("llm.top_k", 40)),
        ("llm.model=openai/gpt-4o-mini", ("llm.model", "openai/gpt-4o-mini")),
        ('user_name="Ada Lovelace"', ("user_name", "Ada Lovelace")),
    ],
)
def test_parse_assignment(text: str, expected: tuple[str, object]) -> None:
    assert parse_assignment(text) == expected


def test_parse_assignment_rejects_missing_equals() -> None:
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_assignment("llm.temperature")


def test_profiles_new_writes_a_loadable_profile(cli, voicechat_home: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("profiles", "new", "calm", "--from", "ollama", "--set", "llm.temperature=0.2",
                 "--set", "tts.voice=joe")
    assert result.returncode == 0, result.stderr
    path = voicechat_home / "profiles" / "calm.toml"
    data = tomllib.loads(path.read_text())
    assert data["llm"]["temperature"] == 0.2
    assert data["llm"]["base_url"] == "http://127.0.0.1:11434/v1"  # carried over from --from
    assert load_profile("calm", environ={}).tts.voice == "joe"

    again = cli("profiles", "new", "calm")
    assert again.returncode == 2
    assert b"--force" in again.stderr


def test_profiles_new_with_a_bad_value_writes_nothing(cli, voicechat_home: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("profiles", "new", "bad", "--set", "llm.top_p=3")
    assert result.returncode == 2
    assert b"llm.top_p = 3" in result.stderr
    assert not (voicechat_home / "profiles" / "bad.toml").exists()
