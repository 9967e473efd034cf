"""Speech to text: batch transcription engines behind one protocol, picked by name from `STT_ENGINES`."""
