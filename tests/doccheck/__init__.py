"""Checks that the README and docs/*.md tell the truth about the CLI, the settings and the error messages."""
