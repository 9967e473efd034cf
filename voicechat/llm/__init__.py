"""The LLM stage: a ChatModel over any OpenAI-compatible endpoint (or the embedded offline model),
a Conversation holding history and characters, and a tag parser routing text to characters."""
