"""Where voicechat finds its packaged profiles/characters/voices and the user's own."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "voicechat"
HOME_ENV = "VOICECHAT_HOME"

_PACKAGE_DIR = Path(__file__).resolve().parent


def packaged_root() -> Path:
    """The folder holding `configs/` and `voices/`: inside the wheel, or the repository root in a checkout."""
    bundled = _PACKAGE_DIR / "_data"
    if (bundled / "configs").is_dir():
        return bundled
    return _PACKAGE_DIR.parent


def user_root() -> Path:
    """The user's override folder: $VOICECHAT_HOME when set, else the platform's user config dir."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_config_path

    return user_config_path(APP_NAME)


def user_data_dir() -> Path:
    """Where transcripts and caches go: $VOICECHAT_HOME/data when set, else the platform's user data dir."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser() / "data"
    from platformdirs import user_data_path

    return user_data_path(APP_NAME)


def packaged_dir(kind: str) -> Path:
    """Packaged folder for a kind: profiles and characters under configs/, voices at the top."""
    root = packaged_root()
    return root / "voices" if kind == "voices" else root / "configs" / kind


def user_dir(kind: str) -> Path:
    return user_root() / kind
