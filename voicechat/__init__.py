"""voicechat: talk to LLM characters from the terminal and hear them answer."""

__version__ = "0.1.0"
