"""Text-to-speech engines behind one protocol (see base.py) and a registry (see registry.py)."""
