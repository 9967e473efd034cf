"""Audio devices through sounddevice, with errors that say what to do."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from voicechat.errors import NoAudioDeviceError, UsageError, VoicechatError


@dataclass(frozen=True)
class AudioDevice:
    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float
    is_default_input: bool
    is_default_output: bool


def _sounddevice() -> ModuleType:
    _quiet_alsa()
    try:
        import sounddevice
    except OSError:
        raise VoicechatError(
            "the PortAudio library is missing: install it (Debian/Ubuntu: sudo apt-get install libportaudio2; "
            "macOS: brew install portaudio)"
        ) from None
    return sounddevice


_ALSA_HANDLER: list[object] = []  # the installed callback, kept alive for as long as ALSA may call it


def _quiet_alsa() -> None:
    """ALSA prints xruns ("underrun occurred") straight to fd 2, under Rich's live view and into piped
    stderr; PortAudio recovers from them by itself, so its messages are dropped."""
    import ctypes
    import ctypes.util

    if _ALSA_HANDLER:
        return
    name = ctypes.util.find_library("asound")
    if name is None:
        return
    try:
        alsa = ctypes.CDLL(name)
        handler = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                                   ctypes.c_char_p)(lambda *_: None)
        alsa.snd_lib_error_set_handler(handler)
    except (OSError, AttributeError):
        return
    _ALSA_HANDLER.append(handler)


def list_devices() -> list[AudioDevice]:
    sd = _sounddevice()
    try:
        raw = sd.query_devices()
        apis = sd.query_hostapis()
        default_in, default_out = sd.default.device
    except sd.PortAudioError:
        return []
    return [
        AudioDevice(
            index=index,
            name=info["name"],
            host_api=apis[info["hostapi"]]["name"],
            max_input_channels=info["max_input_channels"],
            max_output_channels=info["max_output_channels"],
            default_sample_rate=info["default_samplerate"],
            is_default_input=index == default_in,
            is_default_output=index == default_out,
        )
        for index, info in enumerate(raw)
    ]


def resolve_output_device(wanted: int | str | None) -> int:
    """The device index to play on: `wanted` (index or part of a name) or the default output."""
    outputs = [device for device in list_devices() if device.max_output_channels > 0]
    if not outputs:
        raise NoAudioDeviceError("no audio output device found: write the audio to a file with -o out.wav")
    if wanted is None or wanted == "":
        default = next((device for device in outputs if device.is_default_output), outputs[0])
        return default.index
    for device in outputs:
        if str(wanted) == str(device.index) or str(wanted).lower() in device.name.lower():
            return device.index
    names = ", ".join(f"{device.index}: {device.name}" for device in outputs)
    raise UsageError(f"no output device matches '{wanted}': choose one of {names}")
