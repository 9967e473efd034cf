"""How long a file is, read from its container header without decoding it (for planning replicas)."""

from __future__ import annotations

from pathlib import Path


def duration_seconds(path: Path) -> float | None:
    """The container's stated duration; None when it does not say or the file cannot be opened (the
    decoder reports that later, with the fix)."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if container.duration is not None:
                return float(container.duration) / av.time_base
            stream = next(iter(container.streams.audio), None)
            if stream is None or stream.duration is None or stream.time_base is None:
                return None
            return float(stream.duration * stream.time_base)
    except (av.error.FFmpegError, OSError, ValueError, IndexError):
        return None
