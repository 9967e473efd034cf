"""`voicechat serve` under load: N concurrent scripted clients on loopback, typed turns.

    .venv/bin/python bench/serve.py [--clients 1 2 4 8] [--turns 8] [--pace]

The server is the real `voicechat serve` in its own process (embedded Piper TTS), its LLM an instant
stand-in (tests/sse_server.py, no delay, a two-sentence reply). Each client connects, then sends a typed
turn, waits for its `turn_metrics`, and sends the next. Reported per N: turns per second over all clients
(first send to last `turn_metrics`) and time to first audio byte (text sent -> first binary frame, at the
client) p50/p90. By default the server sends audio as fast as it is made (`--no-pace`: its capacity);
`--pace` keeps the served default, audio at real-time pace, where a turn lasts as long as its reply speaks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import websockets

from tests.sse_server import Script, SSEServer

REPLY = "Sure, that is a fine question. Here is a short answer for you."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def client(url: str, turns: int, start: asyncio.Event) -> list[float]:
    """One scripted client: `turns` typed turns in a row; time to first audio byte of each."""
    firsts: list[float] = []
    async with websockets.connect(url, max_size=None) as ws:
        while json.loads(await ws.recv())["type"] != "ready":
            pass
        await start.wait()
        for turn in range(turns):
            sent = time.perf_counter()
            await ws.send(json.dumps({"type": "text", "text": f"Question number {turn}, please?"}))
            first: float | None = None
            while True:
                data = await ws.recv()
                if isinstance(data, bytes):
                    first = first or time.perf_counter() - sent
                elif json.loads(data)["type"] == "turn_metrics":
                    break
            assert first is not None, "a turn came back without audio"
            firsts.append(first)
    return firsts


async def load(url: str, clients: int, turns: int) -> tuple[float, list[float]]:
    start = asyncio.Event()
    tasks = [asyncio.create_task(client(url, turns, start)) for _ in range(clients)]
    await asyncio.sleep(0.5)  # every client connected and ready
    began = time.perf_counter()
    start.set()
    results = await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    return clients * turns / elapsed, [value for firsts in results for value in firsts]


def start_server(llm: SSEServer, port: int, pace: bool, home: str,
                 extra: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "voicechat", "serve", "--port", str(port), "--base-url", llm.base_url, *extra]
    env = {**os.environ, "VOICECHAT_HOME": home}
    process = subprocess.Popen([*args, *([] if pace else ["--no-pace"])], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            if process.poll() is not None:
                detail = process.stderr.read().decode() if process.stderr else ""
                raise SystemExit(f"voicechat serve failed: {detail}") from None
            time.sleep(0.2)
    raise SystemExit("voicechat serve did not answer /health within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--turns", type=int, default=8, help="turns per client")
    parser.add_argument("--pace", action="store_true", help="the server paces audio in real time (its default)")
    options = parser.parse_args()
    port = free_port()
    with SSEServer() as llm, tempfile.TemporaryDirectory() as home:
        llm.queue(*(Script.reply(REPLY) for _ in range(10_000)))
        server = start_server(llm, port, options.pace, home)
        try:
            url = f"ws://127.0.0.1:{port}/ws"
            asyncio.run(load(url, 1, 2))  # warm-up: the first synthesis pays for lazy set-up
            print(f"voicechat serve, {'paced' if options.pace else 'unpaced (--no-pace)'} audio, "
                  f"{options.turns} typed turns per client, instant stand-in LLM, Piper; {os.cpu_count()} CPUs")
            print("| clients | turns/s | first audio byte p50 | p90 |\n|---|---|---|---|")
            for count in options.clients:
                rate, firsts = asyncio.run(load(url, count, options.turns))
                print(f"| {count} | {rate:.2f} | {statistics.median(firsts) * 1000:.0f} ms "
                      f"| {percentile(firsts, 0.9) * 1000:.0f} ms |", flush=True)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(30)


if __name__ == "__main__":
    main()
