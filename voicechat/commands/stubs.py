"""Commands whose issues are still open: they say so instead of pretending to work."""

from __future__ import annotations

