"""Name -> backend class maps that import the backend only when it is asked for.

Each backend family (TTS, STT, LLM) keeps one `Registry`; a profile's `engine = "..."` picks the entry.
Entries are "module:attribute" strings so that listing names never imports torch or a model runtime.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

from voicechat.errors import UsageError


class Registry:
    def __init__(self, family: str, entries: dict[str, str]) -> None:
        self.family = family
        self._entries = dict(entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def check(self, name: str) -> str:
        if name not in self._entries:
            known = ", ".join(self._entries)
            raise UsageError(f"unknown {self.family} engine '{name}': choose one of {known}")
        return name

    def load(self, name: str) -> Any:
        module_name, _, attribute = self._entries[self.check(name)].partition(":")
        return getattr(importlib.import_module(module_name), attribute)
