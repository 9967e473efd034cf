"""`voicechat serve` at its limits and under faults, on loopback: memory, leaks and responsiveness.

    .venv/bin/python bench/serve_faults.py [limits] [soak] [flood]

The server is the real `voicechat serve` in its own process (embedded Piper, voice lydia), its LLM the
stand-in of tests/sse_server.py; its RSS, threads and open file descriptors are read from /proc.

- limits: RSS idle, with --max-connections (16) conversations open, after one typed turn each, with
  --max-recognizers (4) recognizers running, then with everyone gone; one connection and one recognizer
  past each limit, and what they were told.
- soak: 200 typed turns from 4 clients, every 5th interrupted once its audio starts, every 7th an upstream
  HTTP 400 and every 11th a stream dropped midway; RSS, threads and fds after turn 20 and after turn 200.
- flood (--no-pace, no spoken-reply budget): a client that reads nothing while its 60-sentence reply is made
  (megabytes of audio against --max-queued-bytes 1 MiB), 50 half-sent HTTP requests, 30
  connections past the socket cap, 40 WebSockets past the conversation cap, 2000 malformed frames and 200
  typed turns as fast as they go; /health is asked every 50 ms over one keep-alive connection throughout.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import websockets

from bench.serve import free_port, percentile
from tests.sse_server import Script, SSEServer

SHORT = "Sure. Here you go."
LONG = " ".join(f"Sentence {n} of a long answer goes on for a while." for n in range(60))


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def usage(self) -> tuple[float, int, int]:
        """RSS in MiB, threads, open file descriptors."""
        status = Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        rss = int(fields["VmRSS"].split()[0]) / 1024
        fds = len(os.listdir(f"/proc/{self.process.pid}/fd"))
        return rss, int(fields["Threads"]), fds

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


WHOLE_REPLIES = {"VOICECHAT_LLM_REPLY_SENTENCES": "0", "VOICECHAT_LLM_REPLY_WORDS": "0"}  # no spoken budget


def start(llm: SSEServer, home: str, extra: Sequence[str] = ()) -> Server:
    port = free_port()
    log = Path(home) / "serve.log"
    args = [sys.executable, "-m", "voicechat", "serve", "--port", str(port), "--base-url", llm.base_url, *extra]
    with log.open("wb") as sink:
        env = {**os.environ, "VOICECHAT_HOME": home, **(WHOLE_REPLIES if "--no-pace" in extra else {})}
        if os.environ.get("BENCH_LOOP_DEBUG"):  # the server logs every event-loop step over 100 ms
            env["PYTHONASYNCIODEBUG"] = "1"
        process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    server = Server(process, port, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return server
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"voicechat serve failed: {log.read_text()}") from None
            time.sleep(0.2)
    raise SystemExit("voicechat serve did not answer /health within 120 s")


async def until(ws: Any, *kinds: str, timeout: float = 60) -> dict[str, Any]:
    while True:
        data = await asyncio.wait_for(ws.recv(), timeout)
        if isinstance(data, str) and (event := json.loads(data))["type"] in kinds:
            return dict(event)


async def opened(url: str) -> Any:
    ws = await websockets.connect(url, max_size=None)
    event = await until(ws, "ready", "error")
    if event["type"] == "error":
        await ws.close()
        raise RuntimeError(event["message"])
    return ws


def mib(usage: tuple[float, int, int]) -> str:
    return f"{usage[0]:.0f} MiB, {usage[1]} threads, {usage[2]} fds"


# --- limits -------------------------------------------------------------------------------------------

async def limits(server: Server) -> list[str]:
    from voicechat.live.sources import silence

    lines = [f"idle (after one warm-up turn): {mib(server.usage())}"]
    clients = [await opened(server.url) for _ in range(16)]
    lines.append(f"16 conversations open (the --max-connections default): {mib(server.usage())}")
    for ws in clients:
        await ws.send(json.dumps({"type": "text", "text": "Hello?"}))
    for ws in clients:
        await until(ws, "turn_metrics")
    lines.append(f"after one typed turn each: {mib(server.usage())}")
    try:
        await opened(server.url)
        lines.append("a 17th conversation: opened (no limit!)")
    except RuntimeError as refused:
        lines.append(f"a 17th conversation: refused, told \"{refused}\"")
    for ws in clients[:5]:
        await ws.send(silence(0.1))
    told = []
    for ws in clients[:5]:
        event = await until(ws, "listening", "error", timeout=120)
        told.append(event.get("message", "listening"))
    feeding = asyncio.create_task(feed(clients[:4], 3.0))
    await feeding
    lines.append(f"4 recognizers running (the --max-recognizers default): {mib(server.usage())}")
    lines.append(f"a 5th recognizer: told \"{told[4]}\"")
    for ws in clients:
        await ws.close()
    await asyncio.sleep(5)
    lines.append(f"everyone gone (5 s later): {mib(server.usage())}")
    return lines


async def feed(clients: list[Any], seconds: float) -> None:
    from voicechat.live.sources import silence

    frame = silence(0.032)
    for _ in range(int(seconds / 0.032)):
        await asyncio.gather(*(ws.send(frame) for ws in clients))
        await asyncio.sleep(0.032)


# --- soak ---------------------------------------------------------------------------------------------

def soak_scripts(turns: int) -> list[Script]:
    scripts = []
    for n in range(turns):
        if n % 7 == 3:
            scripts.append(Script.http_error(400))
        elif n % 11 == 5:
            scripts.append(Script.reply("This reply will break off in the middle.", drop_after=3))
        else:
            scripts.append(Script.reply(SHORT))
    return scripts


async def soak_client(server: Server, first: int, count: int, done: list[int],
                      samples: dict[int, tuple[float, int, int]]) -> dict[str, int]:
    outcome = {"interrupted": 0, "failed": 0, "refused": 0}
    ws = await opened(server.url)
    for n in range(first, first + count):
        await ws.send(json.dumps({"type": "text", "text": f"Question {n}?"}))
        if n % 5 == 0:
            event = await until(ws, "audio_start", "turn_metrics", "error")
            if event["type"] == "audio_start":
                await ws.send(json.dumps({"type": "interrupt"}))
                event = await until(ws, "turn_metrics", "error")
        else:
            event = await until(ws, "turn_metrics", "error")
        if event["type"] == "error":
            outcome["refused"] += 1
        else:
            outcome["interrupted"] += bool(event["interrupted"])
            outcome["failed"] += event["error"] is not None
        done[0] += 1
        if done[0] % 20 == 0:
            samples[done[0]] = server.usage()
    await ws.close()
    return outcome


async def soak(server: Server) -> list[str]:
    samples: dict[int, tuple[float, int, int]] = {}
    done = [0]
    outcomes = await asyncio.gather(*(soak_client(server, 50 * c, 50, done, samples) for c in range(4)))
    await asyncio.sleep(3)
    after = server.usage()
    # the last sample with all four clients still connected: at turn 200 some have already left
    first, last = samples[min(samples)], samples[max(samples) - 20]
    totals = {key: sum(o[key] for o in outcomes) for key in outcomes[0]}
    lines = [f"{done[0]} turns: {totals['interrupted']} interrupted, {totals['failed']} failed upstream, "
             f"{totals['refused']} refused by a limit"]
    for turn in sorted(samples):
        lines.append(f"after turn {turn}: {mib(samples[turn])}")
    lines.append(f"3 s after the last: {mib(after)}")
    middle = samples[max(samples) // 2]
    for name, start in ((f"turn {min(samples)}", first), (f"turn {max(samples) // 2}", middle)):
        change = [(b - a) / a * 100 for a, b in zip(start, last, strict=True)]
        lines.append(f"{name} -> {max(samples) - 20}: RSS {change[0]:+.1f} %, threads {change[1]:+.1f} %, "
                     f"fds {change[2]:+.1f} %")
    return lines


# --- flood --------------------------------------------------------------------------------------------

def probe_health(port: int, seconds: float, results: Any) -> None:
    """GET /health every 50 ms over one keep-alive connection; sends back each latency and any failure.
    Run in its own process: a thread here would time this process's own work (the GIL) as well."""
    latencies: list[float] = []
    moments: list[float] = []
    failures: list[str] = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            connection.request("GET", "/health")
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures.append(str(response.status))
        except OSError as error:
            failures.append(type(error).__name__)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        latencies.append(time.perf_counter() - started)
        moments.append(started)
        time.sleep(0.05)
    slow = [f"{latency * 1000:.0f} ms at {at - moments[0]:.1f} s" for latency, at in zip(latencies, moments,
                                                                                     strict=True) if latency > 0.1]
    results.send((latencies, failures, slow))


async def slow_reader(server: Server) -> str:
    """Asks for a long reply and reads nothing for 25 s."""
    ws = await websockets.connect(server.url, max_size=None, max_queue=1)
    ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await ws.send(json.dumps({"type": "text", "text": "Tell me everything."}))
    await asyncio.sleep(25)
    ws.transport.abort()
    ended = [line for line in server.log.read_text().splitlines() if "read nothing" in line]
    return f"read nothing for 25 s; the server's log: {ended[0] if ended else 'no queue limit reached'}"


async def bad_frames(server: Server) -> str:
    ws = await opened(server.url)
    for _ in range(2000):
        await ws.send("[" * 2000)
    for n in range(200):
        await ws.send(json.dumps({"type": "text", "text": f"Flood {n}."}))
    errors = 0
    with_deadline = time.monotonic() + 30
    while errors < 2197 and time.monotonic() < with_deadline:
        data = await asyncio.wait_for(ws.recv(), 30)
        errors += isinstance(data, str) and json.loads(data)["type"] == "error"
    await ws.close()
    return f"{errors} error events for 2000 bad frames and 200 turns (3 turns taken)"


async def too_many_websockets(server: Server) -> str:
    async def one() -> str:
        try:
            ws = await opened(server.url)
        except RuntimeError:
            return "refused at the conversation cap"
        except websockets.InvalidStatus as refused:
            return f"refused with HTTP {refused.response.status_code} (socket cap)"
        except OSError as error:
            return type(error).__name__
        await asyncio.sleep(3)
        await ws.close()
        return "opened"

    results = await asyncio.gather(*(one() for _ in range(40)))
    return "40 WebSockets: " + ", ".join(f"{results.count(r)} {r}" for r in sorted(set(results)))


def half_sent(port: int) -> str:
    held = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        held.append(sock)
    extra = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
    answers = []
    for sock in held + extra:
        sock.settimeout(20)
        try:
            answers.append(sock.recv(40).split(b"\r\n")[0].decode() or "closed")
        except OSError as error:
            answers.append(type(error).__name__)
        sock.close()
    return ", ".join(f"{answers.count(a)} x {a}" for a in sorted(set(answers)))


async def flood(server: Server) -> list[str]:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    probe = context.Process(target=probe_health, args=(server.port, 32.0, sender), daemon=True)
    probe.start()
    await asyncio.sleep(2)  # the probe's process is up and asking
    started = time.monotonic()
    reader = asyncio.create_task(slow_reader(server))
    await asyncio.sleep(0.5)  # its long reply is under way before the rest begins
    results = await asyncio.gather(reader, bad_frames(server), too_many_websockets(server),
                                   asyncio.to_thread(half_sent, server.port))
    spent = time.monotonic() - started
    latencies, failures, slow = await asyncio.to_thread(receiver.recv)
    probe.join()
    ms = [value * 1000 for value in latencies]
    return [f"slow reader: {results[0]}", f"bad frames: {results[1]}", results[2],
            f"half-sent and extra sockets: {results[3]}",
            f"/health every 50 ms for 32 s (the flood took {spent:.0f} s): {len(ms)} answers, p50 "
            f"{statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms, "
            f"not 200: {len(failures)}; over 100 ms: {', '.join(slow) or 'none'} (the flood began at 2 s)",
            f"after: {mib(server.usage())}"]


SCENARIOS = {
    "limits": (limits, []),
    "soak": (soak, ["--max-turn-rate", "50"]),
    "flood": (flood, ["--no-pace", "--max-queued-bytes", str(1024 * 1024)]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    options = parser.parse_args()
    unknown = [name for name in options.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {unknown[0]}: choose from {', '.join(SCENARIOS)}")
    for name in options.scenarios or list(SCENARIOS):
        run, extra = SCENARIOS[name]
        with SSEServer() as llm, tempfile.TemporaryDirectory() as home:
            llm.queue(Script.reply(SHORT))  # the warm-up turn
            if name == "soak":
                llm.queue(*soak_scripts(200))
            elif name == "flood":
                llm.queue(Script.reply(LONG), *(Script.reply(SHORT) for _ in range(10)))  # the slow reader first
            else:
                llm.queue(*(Script.reply(SHORT) for _ in range(100)))
            server = start(llm, home, extra)
            try:
                asyncio.run(warm_up(server))
                load = os.getloadavg()
                print(f"## {name} (serve {' '.join(extra) or 'defaults'}; load average {load[0]:.2f} at start)")
                for line in asyncio.run(run(server)):
                    print(f"- {line}", flush=True)
                lines = server.log.read_text().splitlines()
                print(f"- server log: {len(lines)} lines, {sum('Traceback' in x for x in lines)} tracebacks")
                for line in (x for x in lines if os.environ.get("BENCH_LOOP_DEBUG") and " took " in x):
                    print(f"  - slow loop step: {line[-160:]}")
            finally:
                server.stop()


async def warm_up(server: Server) -> None:
    ws = await opened(server.url)
    await ws.send(json.dumps({"type": "text", "text": "Warm up."}))
    await until(ws, "turn_metrics")
    await ws.close()


if __name__ == "__main__":
    main()
