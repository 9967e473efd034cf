"""Keep freed memory in the process during a batch, instead of handing it back to the OS at once.

faster-whisper builds each clip's features over the clip plus 30 s of padding: arrays of tens of MB that
glibc serves with mmap and returns with munmap, so every clip page-faults them in again. Measured on 24
short clips (bench/transcribe.py): 3.1 s of 11 s CPU went to the kernel that way, 0.3 s with this.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30


def retain_freed_memory() -> bool:
    """glibc only (elsewhere a no-op); True when both settings took. Peak memory is unchanged."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))
