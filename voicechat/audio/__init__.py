"""Audio in and out: devices, sinks, WAV files."""
