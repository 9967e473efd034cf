"""What Higgs is asked to say, and in which voice: a reference to clone, or a description of the speaker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voicechat.config.store import VoiceEntry
from voicechat.errors import ConfigError

SYSTEM_INSTRUCTION = "Generate audio following instruction."


@dataclass(frozen=True)
class VoicePrompt:
    name: str
    description: str
    reference_audio: Path | None = None
    reference_text: str = ""


def voice_prompt(entry: VoiceEntry) -> VoicePrompt:
    """Cloning when the voice has a reference recording (and its transcript), else its description."""
    options = entry.voice.higgs
    description = entry.voice.description
    if not options.clone:
        return VoicePrompt(entry.name, description)
    audio = _reference_audio(entry)
    if audio is None:
        return VoicePrompt(entry.name, description)
    text = options.reference_text.strip() or _reference_text(entry, audio)
    return VoicePrompt(entry.name, description, audio, text)


def _reference_audio(entry: VoiceEntry) -> Path | None:
    configured = entry.voice.higgs.reference_audio
    if not configured:
        return entry.reference_audio
    path = Path(configured).expanduser()
    path = path if path.is_absolute() else entry.folder / path
    if not path.is_file():
        raise ConfigError(f"voice '{entry.name}': reference audio {path} not found; fix higgs.reference_audio")
    return path


def _reference_text(entry: VoiceEntry, audio: Path) -> str:
    candidates = [entry.reference_text, audio.with_suffix(".txt")]
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            text = candidate.read_text(encoding="utf-8").strip()
            if text:
                return text
    raise ConfigError(
        f"voice '{entry.name}': reference {audio} has no transcript; write what it says into "
        f"{audio.with_suffix('.txt')} (or set higgs.reference_text)"
    )


def system_message(scene: str, prompt: VoicePrompt) -> str:
    parts = [scene.strip()]
    if prompt.reference_audio is None and prompt.description.strip():
        parts.append(f"SPEAKER0: {prompt.description.strip()}")
    scene_text = "\n\n".join(part for part in parts if part)
    return f"{SYSTEM_INSTRUCTION}\n\n<|scene_desc_start|>\n{scene_text}\n<|scene_desc_end|>"


def chat_sample(text: str, prompt: VoicePrompt, scene: str) -> Any:
    """A boson ChatMLSample: system scene, then (when cloning) the reference as an earlier turn, then the text."""
    from boson_multimodal.data_types import AudioContent, ChatMLSample, Message

    messages = [Message(role="system", content=system_message(scene, prompt))]
    if prompt.reference_audio is not None:
        messages.append(Message(role="user", content=prompt.reference_text))
        messages.append(Message(role="assistant", content=AudioContent(audio_url=str(prompt.reference_audio))))
    messages.append(Message(role="user", content=text))
    return ChatMLSample(messages=messages)
