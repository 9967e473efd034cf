"""A real OpenAI-style chat-completions server on 127.0.0.1 for tests and benchmarks.

Each POST /v1/chat/completions takes the next queued `Script` (or a short default reply) and plays it as
server-sent events over HTTP/1.1 chunked encoding, the way real servers stream: a scripted reply with an
optional delay per token, an HTTP error (401, 429 with Retry-After, 500), a connection dropped midway, a
malformed chunk, or an in-band error event. Every request body and its headers are recorded.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


def words(text: str) -> list[str]:
    """'Hello there.' -> ['Hello', ' there.']: tokens the size real models stream."""
    return re.findall(r"\s*\S+", text) or [text]


@dataclass
class Script:
    tokens: list[str] = field(default_factory=lambda: ["OK."])
    delay: float = 0.0  # seconds before each token
    status: int = 200
    retry_after: str | None = None
    drop_after: int | None = None  # close the connection after this many tokens, no end of stream
    malformed_after: int | None = None  # then send a chunk that is not JSON
    error_after: int | None = None  # then send {"error": {...}} in the stream
    error_message: str = "upstream model crashed"
    end_after: int | None = None  # then end the body cleanly with no finish_reason and no [DONE]
    finish_reason: str = "stop"  # "length": the reply reached max_tokens

    @classmethod
    def reply(cls, text: str, **options: Any) -> Script:
        return cls(tokens=words(text), **options)

    @classmethod
    def http_error(cls, status: int, retry_after: str | None = None) -> Script:
        return cls(tokens=[], status=status, retry_after=retry_after)


@dataclass
class Request:
    body: dict[str, Any]
    headers: dict[str, str]


class SSEServer:
    """`with SSEServer() as server:` ... `server.queue(Script.reply("Hi."))` ... `server.base_url`."""

    def __init__(self) -> None:
        self.scripts: deque[Script] = deque()
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def queue(self, *scripts: Script) -> None:
        with self._lock:
            self.scripts.extend(scripts)

    def next_script(self, request: Request) -> Script:
        with self._lock:
            self.requests.append(request)
            return self.scripts.popleft() if self.scripts else Script()

    def start(self) -> SSEServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> SSEServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


def _chunk(index: int, content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {}
    if index == 0:
        delta["role"] = "assistant"
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _handler_for(server: SSEServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            script = server.next_script(Request(body, {k.lower(): v for k, v in self.headers.items()}))
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._json(404, {"error": {"message": f"no route {self.path}"}})
            elif script.status != 200:
                self._error(script)
            else:
                self._stream(script)

        def _json(self, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

        def _error(self, script: Script) -> None:
            messages = {401: "invalid API key", 403: "forbidden", 429: "rate limited", 500: "internal error"}
            extra = {"Retry-After": script.retry_after} if script.retry_after else {}
            error = {"message": messages.get(script.status, "error"), "code": script.status}
            self._json(script.status, {"error": error}, extra)

        def _send(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _event(self, payload: dict[str, Any]) -> None:
            self._send(f"data: {json.dumps(payload)}\n\n")

        def _stream(self, script: Script) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for index, token in enumerate(script.tokens):
                if index == script.drop_after:
                    return  # the socket closes without the last chunk: a dropped stream
                if index == script.end_after:
                    break
                if index == script.malformed_after:
                    self._send('data: {"choices": [{"delta": {"content": "x"\n\n')
                if index == script.error_after:
                    self._event({"error": {"message": script.error_message, "code": 502}})
                if script.delay:
                    time.sleep(script.delay)
                self._event(_chunk(index, token))
            if script.end_after is None:
                self._event(_chunk(len(script.tokens), None, script.finish_reason))
                self._send("data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler
