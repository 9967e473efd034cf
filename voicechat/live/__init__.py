"""The live voice loop's parts: audio sources, the realtime listener, paced playback, the Rich view."""
