"""Atomic file writes: a reader (or a crash) never sees half a file, and a failure leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from voicechat.errors import VoicechatError

PRIVATE = 0o600  # transcripts and other private data: the owner only, whatever the umask


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (os.umask alone must set one)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def output_mode() -> int:
    """The mode an ordinary new file gets (0o666 less the umask): what `open()` would have made."""
    return 0o666 & ~current_umask()


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
def atomic_output(target: Path, mode: str = "wb", private: bool = False) -> Iterator[IO[bytes]]:
    """Write to a temporary file beside `target` and move it into place only when the block succeeds.
    The file gets the umask's mode (a temporary file is always 0600), or 0600 when `private`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(mode, dir=target.parent, prefix=f".{target.name}.", delete=False)
    try:
        with handle:
            os.fchmod(handle.fileno(), PRIVATE if private else output_mode())
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handle.name)
        raise


def atomic_write_bytes(target: Path, data: bytes, private: bool = False) -> None:
    with atomic_output(target, private=private) as handle:
        handle.write(data)
