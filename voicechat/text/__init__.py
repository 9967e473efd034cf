"""Text handling between the LLM and the voice."""
