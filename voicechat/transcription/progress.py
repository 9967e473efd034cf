"""Progress on stderr (files done, pieces of long files done, audio seconds, speed) when stderr is a terminal;
silent otherwise."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any


class BatchProgress:
    def __init__(self, total_files: int, enabled: bool) -> None:
        self.total_files = total_files
        self.enabled = enabled and total_files > 0
        self.audio_seconds = 0.0
        self.pieces_total = 0
        self.pieces_done = 0
        self._file_counted = 0.0
        self.started = time.perf_counter()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> BatchProgress:
        self.started = time.perf_counter()
        if self.enabled:
            self._start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, audio_seconds: float) -> None:
        """One file done, `audio_seconds` long; the part its pieces already counted is not counted again."""
        self.audio_seconds += max(0.0, audio_seconds - self._file_counted)
        self._file_counted = 0.0
        self._show(advance=1)

    def pieces_planned(self, count: int) -> None:
        self.pieces_total += count
        self._show()

    def piece_done(self, seconds: float) -> None:
        self.pieces_done += 1
        self.audio_seconds += seconds
        self._file_counted += seconds  # files finish in order, each after its own pieces
        self._show()

    def _show(self, advance: int = 0) -> None:
        if self._progress is None:
            return
        pieces = f"  {self.pieces_done}/{self.pieces_total} pieces" if self.pieces_total else ""
        self._progress.update(self._task, advance=advance, audio=self.audio_seconds, speed=self.speed(),
                              pieces=pieces)

    def speed(self) -> float:
        """Seconds of audio transcribed per second of wall time."""
        elapsed = time.perf_counter() - self.started
        return self.audio_seconds / elapsed if elapsed > 0 else 0.0

    def _start(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from voicechat.console import err

        self._progress = Progress(
            TextColumn("transcribing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files{task.fields[pieces]}  {task.fields[audio]:.0f} s of audio  "
                       "{task.fields[speed]:.1f}x real time"),
            TimeElapsedColumn(),
            console=err(),
            transient=True,
        )
        self._task = self._progress.add_task("transcribe", total=self.total_files, audio=0.0, speed=0.0,
                                            pieces="")
        self._progress.start()
