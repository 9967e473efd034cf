"""Find, read, merge and write the TOML files of profiles, characters and voices.

Packaged files ship in configs/ and voices/; the user's own live in the user config dir (or
$VOICECHAT_HOME) under the same layout and win over packaged ones of the same name.
Profiles merge key by key (packaged < user < environment < command line); characters and voices
are taken whole from the first place that has them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import tomli_w
from pydantic import BaseModel, ValidationError

from voicechat import paths
from voicechat.config.errors import describe_validation_error
from voicechat.config.models import Character, Profile, Voice
from voicechat.errors import ConfigError, UsageError
from voicechat.fileio import atomic_write_bytes

Kind = Literal["profiles", "characters", "voices"]
ModelT = TypeVar("ModelT", bound=BaseModel)
ENV_PREFIX = "VOICECHAT_"


@dataclass(frozen=True)
class ConfigFile:
    kind: Kind
    name: str
    path: Path
    source: Literal["user", "packaged"]


def _files_in(kind: Kind, folder: Path, source: Literal["user", "packaged"]) -> dict[str, ConfigFile]:
    if not folder.is_dir():
        return {}
    return {p.stem: ConfigFile(kind, p.stem, p, source) for p in sorted(folder.glob("*.toml"))}


def list_files(kind: Kind) -> list[ConfigFile]:
    """Every name of a kind, the user's file winning over a packaged one of the same name."""
    found = _files_in(kind, paths.packaged_dir(kind), "packaged")
    found.update(_files_in(kind, paths.user_dir(kind), "user"))
    return [found[name] for name in sorted(found)]


def find_files(kind: Kind, name: str) -> list[ConfigFile]:
    """The files for a name, packaged first then user; raises a UsageError listing the known names."""
    found = [
        files[name]
        for files in (
            _files_in(kind, paths.packaged_dir(kind), "packaged"),
            _files_in(kind, paths.user_dir(kind), "user"),
        )
        if name in files
    ]
    if not found:
        known = ", ".join(f.name for f in list_files(kind)) or "none"
        singular = kind.removesuffix("s")
        raise UsageError(f"unknown {singular} '{name}': known {kind} are {known}")
    return found


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}; fix that line") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None


def validate(model: type[ModelT], data: Mapping[str, Any], source: Path | str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, model, source)) from None


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def dotted_to_nested(pairs: Mapping[str, Any]) -> dict[str, Any]:
    """{"llm.temperature": 0.5} -> {"llm": {"temperature": 0.5}}."""
    nested: dict[str, Any] = {}
    for dotted, value in pairs.items():
        *parents, leaf = dotted.split(".")
        target = nested
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return nested


def parse_assignment(text: str) -> tuple[str, Any]:
    """'llm.temperature=0.5' -> ("llm.temperature", 0.5); the value is read as a TOML value, else a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--set '{text}': write it as KEY=VALUE, for example llm.temperature=0.7")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def environment_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """VOICECHAT_LLM_MODEL=x style variables for every profile key."""
    environ = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    for section, field in Profile.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for key in annotation.model_fields:
                variable = f"{ENV_PREFIX}{section}_{key}".upper()
                if variable in environ:
                    found[f"{section}.{key}"] = environ[variable]
        else:
            variable = f"{ENV_PREFIX}{section}".upper()
            if variable in environ:
                found[section] = environ[variable]
    return found


def load_profile(
    name: str = "default",
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Profile:
    """A profile merged from packaged < user < environment < `overrides` (dotted keys from flags)."""
    data: dict[str, Any] = {}
    last_source: Path | str = name
    for config_file in find_files("profiles", name):
        data = deep_merge(data, read_toml(config_file.path))
        validate(Profile, data, config_file.path)
        last_source = config_file.path
    from_env = environment_overrides(environ)
    if from_env:
        data = deep_merge(data, dotted_to_nested(from_env))
        validate(Profile, data, f"{last_source} with {', '.join(sorted(from_env))} from the environment")
    if overrides:
        data = deep_merge(data, dotted_to_nested(overrides))
        validate(Profile, data, f"{last_source} with command-line settings")
    return Profile.model_validate(data)


def _load_whole(kind: Kind, model: type[ModelT], name: str) -> tuple[ModelT, ConfigFile]:
    config_file = find_files(kind, name)[-1]
    return validate(model, read_toml(config_file.path), config_file.path), config_file


def load_character(name: str) -> Character:
    return _load_whole("characters", Character, name)[0]


@dataclass(frozen=True)
class VoiceEntry:
    """A voice and the files beside its TOML (reference audio and its transcript, for cloning engines)."""

    name: str
    voice: Voice
    folder: Path
    reference_audio: Path | None
    reference_text: Path | None


def load_voice(name: str) -> VoiceEntry:
    voice, config_file = _load_whole("voices", Voice, name)
    folder = config_file.path.parent
    audio = folder / f"{name}.wav"
    text = folder / f"{name}.txt"
    return VoiceEntry(
        name=name,
        voice=voice,
        folder=folder,
        reference_audio=audio if audio.is_file() else None,
        reference_text=text if text.is_file() else None,
    )


def write_user_file(kind: Kind, name: str, data: Mapping[str, Any], overwrite: bool = False) -> Path:
    target = paths.user_dir(kind) / f"{name}.toml"
    if target.exists() and not overwrite:
        raise UsageError(f"{target} already exists: pass --force to replace it")
    atomic_write_bytes(target, tomli_w.dumps(dict(data)).encode())
    return target
