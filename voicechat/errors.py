"""The errors a user sees: one line that names the thing and the fix."""

from __future__ import annotations


class VoicechatError(Exception):
    """Failed work: printed as one line, exit code 1."""

    exit_code = 1


class UsageError(VoicechatError):
    """Bad usage (unknown name, bad value, bad flag combination): exit code 2."""

    exit_code = 2


class ConfigError(UsageError):
    """A TOML profile, character or voice that cannot be used as written."""


class NoAudioDeviceError(VoicechatError):
    """No usable audio device for playback or recording."""
