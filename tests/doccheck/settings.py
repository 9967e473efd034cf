"""What the docs say about settings, asked of the real loader: keys, values, defaults, variables."""

from __future__ import annotations

import tomllib
from functools import cache
from typing import Any

from pydantic import BaseModel

from voicechat.config import store
from voicechat.config.models import Character, Profile, Voice
from voicechat.errors import UsageError

MISSING = object()
KINDS: dict[str, type[BaseModel]] = {"profile": Profile, "voice": Voice, "character": Character}


@cache
def packaged_default() -> dict[str, Any]:
    """The `default` profile as it applies with no user file and no environment: packaged file over models."""
    return load("default").model_dump(mode="json", by_alias=True)


def load(name: str = "default", overrides: dict[str, Any] | None = None,
         environ: dict[str, str] | None = None) -> Profile:
    return store.load_profile(name, overrides, environ={} if environ is None else environ)


def lookup(data: dict[str, Any], dotted: str) -> Any:
    """`tts.higgs.top_k` in a dumped model; `openai_speech` and `openai-speech` both name the alias."""
    current: Any = data
    for part in dotted.split("."):
        if not isinstance(current, dict):
            return MISSING
        for spelling in (part, part.replace("_", "-"), part.replace("-", "_")):
            if spelling in current:
                current = current[spelling]
                break
        else:
            return MISSING
    return current


def paths_named(leaf: str, data: dict[str, Any] | None = None, prefix: str = "") -> list[str]:
    """Every dotted key of the default profile whose last part is `leaf`."""
    data = packaged_default() if data is None else data
    found = []
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key == leaf:
            found.append(dotted)
        if isinstance(value, dict):
            found += paths_named(leaf, value, f"{dotted}.")
    return found


def toml_value(text: str) -> Any:
    """A value as the docs write it: a TOML literal, else the bare word as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def same(claimed: Any, actual: Any) -> bool:
    if isinstance(actual, bool) or isinstance(claimed, bool):
        return claimed is actual
    if isinstance(actual, int | float) and isinstance(claimed, int | float):
        return float(claimed) == float(actual)
    if isinstance(actual, list) and isinstance(claimed, list):
        return len(actual) == len(claimed) and all(map(same, claimed, actual))
    return claimed == actual


def assignment_error(dotted: str, value: Any) -> str | None:
    """Why `dotted = value` is refused, through the same path as `--set` and the flags; None when accepted."""
    try:
        load("default", {dotted: value})
    except UsageError as error:
        return str(error)
    return None


def environment_key(variable: str) -> str | None:
    """The profile key a VOICECHAT_SECTION_KEY variable sets, as the loader reads it."""
    keys = list(store.environment_overrides({variable: "x"}))
    return keys[0] if keys else None


def environment_error(variable: str, value: str) -> str | None:
    try:
        load("default", environ={variable: value})
    except UsageError as error:
        return str(error)
    return None


def toml_error(text: str) -> tuple[str, str | None]:
    """(kind, None) for the first of profile, voice, character that accepts the TOML; else the closest
    refusal; ("", None) for TOML that shares no top-level key with any of them (someone else's file)."""
    data = tomllib.loads(text)
    errors = {}
    for kind, model in KINDS.items():
        try:
            store.validate(model, data, f"a {kind}")
            return kind, None
        except UsageError as error:
            errors[kind] = str(error)
    closest = max(KINDS, key=lambda kind: len(set(data) & set(KINDS[kind].model_fields)))
    if not set(data) & set(KINDS[closest].model_fields):
        return "", None
    return closest, errors[closest]


def kind_defaults(kind: str) -> dict[str, Any]:
    """Defaults to compare `# default X` comments with; a character has no defaults worth stating."""
    if kind == "profile":
        return packaged_default()
    return Voice().model_dump(mode="json", by_alias=True) if kind == "voice" else {}
