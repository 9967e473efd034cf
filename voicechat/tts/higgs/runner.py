"""One generation at a time on the serve engine, streamed as code columns, and stoppable mid-way.

`HiggsAudioServeEngine.generate_delta_stream` runs `model.generate` in a thread of its own and feeds an
asyncio queue; it has no stop hook. So:
- a "pump" thread runs that async generator in a private event loop (which must keep running, or the
  engine's streamer drops tokens) and hands the audio columns to a plain queue for the decoding thread;
- a forward pre-hook on the model raises `GenerationCancelled` at the next step once the run is cancelled,
  which ends boson's generation thread (its traceback is filtered out of `threading.excepthook`); any other
  error in that thread is handed to the consumer instead of leaving it waiting;
- the engine lock is released only after the generation thread has ended, so the next sentence starts on a
  free engine with clean KV caches.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import queue
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STOP_TIMEOUT = 30.0  # seconds to wait for a generation step to finish after a cancel


class GenerationCancelled(Exception):
    """Raised inside boson's generation thread to end it at the next step."""


_END = object()


@dataclass
class Run:
    """One sentence's generation: the columns it made, and the switch that stops it."""

    stop: threading.Event = field(default_factory=threading.Event)
    columns: queue.Queue[Any] = field(default_factory=queue.Queue)
    steps: int = 0  # model forward passes so far
    abandoned: bool = False  # the consumer went away: nothing more is wanted, not even the tail
    generation_thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _task: asyncio.Task[None] | None = None

    def cancel(self) -> None:
        """Stop at the next generation step and wake whoever waits for columns."""
        self.stop.set()
        self._wake_pump()

    def abandon(self) -> None:
        self.abandoned = True
        self.cancel()

    def fail(self, error: BaseException) -> None:
        self.columns.put(error)
        self.cancel()

    def _wake_pump(self) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(task.cancel)


class Runner:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.last_run: Run | None = None
        self._busy = threading.Lock()
        self._idle = threading.Condition()
        self._working = 0
        self._workers: list[threading.Thread] = []
        self._active: Run | None = None
        engine.model.register_forward_pre_hook(self._before_step)
        _install_excepthook_filter(self)
        atexit.register(self.shutdown)

    def shutdown(self) -> None:
        """Stop the run in flight and wait for it, so no thread is inside torch when the interpreter exits."""
        run = self._active
        if run is not None:
            run.abandon()
        with self._idle:
            self._idle.wait_for(lambda: self._working == 0, timeout=STOP_TIMEOUT)
            workers, self._workers = self._workers, []
        for worker in workers:  # past `working`, only their unwinding is left: let it end before finalization
            if worker is not threading.current_thread():
                worker.join(STOP_TIMEOUT)

    @contextlib.contextmanager
    def working(self, ends_after: bool = False) -> Iterator[None]:
        """Marks a thread that uses the engine (decoding included) until it is done, for `shutdown`.

        `ends_after`: the thread ends right after (a streaming worker), so `shutdown` also joins it.
        """
        with self._idle:
            self._working += 1
            if ends_after:
                self._workers = [w for w in self._workers if w.is_alive()] + [threading.current_thread()]
        try:
            yield
        finally:
            with self._idle:
                self._working -= 1
                self._idle.notify_all()

    def _before_step(self, module: Any, args: Any) -> None:
        run = self._active
        if run is None:
            return
        if run.generation_thread is None:
            run.generation_thread = threading.current_thread()
        elif run.generation_thread is not threading.current_thread():
            return
        run.steps += 1
        if run.stop.is_set():
            raise GenerationCancelled

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """The engine to oneself (for one-shot generate), after any streamed sentence has stopped."""
        with self._busy, self.working():
            yield

    def columns(self, sample: Any, params: dict[str, Any], run: Run) -> Generator[np.ndarray, None, None]:
        """Audio code columns (codebooks,) as they are generated; closing the iterator stops the generation."""
        with self._busy:
            self._active = self.last_run = run
            pump = threading.Thread(target=self._pump, args=(sample, params, run), name="higgs-pump", daemon=True)
            pump.start()
            try:
                yield from _drain(run)
            finally:
                run.cancel()
                pump.join(STOP_TIMEOUT)
                if run.generation_thread is not None:
                    run.generation_thread.join(STOP_TIMEOUT)
                self._active = None

    def _pump(self, sample: Any, params: dict[str, Any], run: Run) -> None:
        try:
            asyncio.run(self._consume(sample, params, run))
        except asyncio.CancelledError:
            pass
        except BaseException as error:  # handed to the consumer, raised there
            run.columns.put(error)
        finally:
            run.columns.put(_END)

    async def _consume(self, sample: Any, params: dict[str, Any], run: Run) -> None:
        run._loop, run._task = asyncio.get_running_loop(), asyncio.current_task()
        if run.stop.is_set():
            return
        audio_started = False
        async for delta in self.engine.generate_delta_stream(sample, **params):
            if delta.audio_tokens is not None:
                audio_started = True
                run.columns.put(delta.audio_tokens.numpy())
            elif audio_started:  # text after the audio: the speech is over, the rest is not needed
                run.stop.set()
                return


def _drain(run: Run) -> Iterator[np.ndarray]:
    while True:
        item = run.columns.get()
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


_filter_lock = threading.Lock()
_runners: list[Runner] = []


def _install_excepthook_filter(runner: Runner) -> None:
    """Keep cancelled generations quiet, and route real generation errors to the run that waits on them."""
    with _filter_lock:
        _runners.append(runner)
        if getattr(threading.excepthook, "_voicechat_higgs", False):
            return
        previous = threading.excepthook

        def hook(args: threading.ExceptHookArgs) -> None:
            if isinstance(args.exc_value, GenerationCancelled):
                return
            for candidate in list(_runners):
                run = candidate._active
                if run is not None and args.thread is not None and _is_generation_thread(run, args.thread):
                    run.fail(args.exc_value or RuntimeError("Higgs generation failed"))
                    return
            previous(args)

        hook._voicechat_higgs = True  # type: ignore[attr-defined]
        threading.excepthook = hook


def _is_generation_thread(run: Run, thread: threading.Thread) -> bool:
    if run.generation_thread is not None:
        return thread is run.generation_thread
    return thread.name.endswith("(generate)")  # boson's unnamed Thread(target=model.generate)
