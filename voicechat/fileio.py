"""Atomic file writes: a reader (or a crash) never sees half a file, and a failure leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from voicechat.errors import VoicechatError


def check_writable_target(target: Path) -> None:
    """Fail early, with the fix, when `target` cannot be created."""
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise VoicechatError(f"{target} is a directory: give a file name such as {target / 'out.wav'}")
    if not folder.is_dir():
        raise VoicechatError(f"cannot write {target}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise VoicechatError(f"cannot write {target}: folder {folder} is not writable; choose another path")


@contextlib.contextmanager
def atomic_output(target: Path, mode: str = "wb") -> Iterator[IO[bytes]]:
    """Write to a temporary file beside `target` and move it into place only when the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(mode, dir=target.parent, prefix=f".{target.name}.", delete=False)
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handle.name)
        raise


def atomic_write_bytes(target: Path, data: bytes) -> None:
    with atomic_output(target) as handle:
        handle.write(data)
