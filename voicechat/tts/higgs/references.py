"""Encoded voice references, cached in memory and on disk, keyed by the reference file's content hash.

boson-multimodal encodes the reference recording (HuBERT + the acoustic encoder) on every request; a voice
speaks many sentences, so the codes are kept: in memory for the process, and as .npy files under the user
data dir so the next run starts warm. The key includes the audio tokenizer, whose codes differ per checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voicechat.fileio import atomic_write_bytes

Encode = Callable[[Path], np.ndarray]  # reference file -> codes (codebooks, frames)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class CacheStats:
    encoded: int = 0
    memory_hits: int = 0
    disk_hits: int = 0


@dataclass
class ReferenceCache:
    encode: Encode
    namespace: str  # identifies the audio tokenizer
    folder: Path | None  # None: memory only
    stats: CacheStats = field(default_factory=CacheStats)
    _codes: dict[str, np.ndarray] = field(default_factory=dict)
    _digests: dict[tuple[Path, int, int], str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def codes(self, reference: Path) -> np.ndarray:
        """The reference's codes: from memory, else from disk, else encoded once (and stored)."""
        key = self._key(reference)
        with self._lock:
            if key in self._codes:
                self.stats.memory_hits += 1
                return self._codes[key]
            codes = self._read(key)
            if codes is None:
                codes = np.asarray(self.encode(reference), dtype=np.int64)
                self.stats.encoded += 1
                self._write(key, codes)
            else:
                self.stats.disk_hits += 1
            self._codes[key] = codes
            return codes

    def _key(self, reference: Path) -> str:
        stat = reference.stat()
        identity = (reference.resolve(), stat.st_mtime_ns, stat.st_size)
        if identity not in self._digests:
            self._digests[identity] = file_digest(reference)
        namespace = hashlib.sha256(self.namespace.encode()).hexdigest()[:12]
        return f"{self._digests[identity]}-{namespace}"

    def _path(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{key}.npy"

    def _read(self, key: str) -> np.ndarray | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False).astype(np.int64)
        except (OSError, ValueError):  # a damaged cache file is re-encoded and replaced
            return None

    def _write(self, key: str, codes: np.ndarray) -> None:
        path = self._path(key)
        if path is None:
            return
        buffer = io.BytesIO()
        np.save(buffer, codes.astype(np.int16), allow_pickle=False)
        with contextlib.suppress(OSError):  # a read-only data dir only costs the next run an encode
            atomic_write_bytes(path, buffer.getvalue())
