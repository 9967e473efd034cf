"""The LLM streamer against the raw `openai` client, and the embedded offline model, in one run.

    .venv/bin/python bench/llm.py [--runs 7] [--tokens 1500] [--delay 0.02] [--skip-embedded]

Streamer vs raw client, both against the same local SSE server (tests/sse_server.py) in this process:
  per-token overhead   (streamer wall - raw wall) / tokens for a reply streamed with no delay; the streamer
                       is the whole stage: OpenAIChat -> Conversation (tag parser) -> SentenceStreamer
  pipeline CPU         tag parser + sentence splitter alone, per token, no network
  first token -> first Sentence
                       with the server pacing tokens `--delay` apart (a 50 token/s model by default): the
                       wall time, and the part of it spent after the token that completed the first clause
                       arrived (what the streamer adds)
Embedded model (SmolLM2-135M Q4_1, llama-cpp-python, n_threads=1): server start, first-token latency and
tokens/s through the server and OpenAIChat, against llama_cpp.Llama streaming in-process (same settings).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sse_server import Script, SSEServer
from voicechat.config.models import Character, LLMSettings
from voicechat.llm.conversation import Conversation
from voicechat.llm.openai_chat import OpenAIChat
from voicechat.llm.tags import TagParser
from voicechat.text.streaming import SentenceStreamer

PARAGRAPH = (
    "Well, the old library on the hill opens at nine, and Dr. Reyes keeps the maps there. "
    "It holds about 3.5 thousand atlases, e.g. the famous sea charts... which nobody reads! "
    "Would you like to visit it tomorrow morning, before the crowds arrive? "
)
CAST = [Character(name="Lydia", persona="A librarian.", voice="lydia"),
        Character(name="Captain Reyes", persona="A captain.", voice="joe")]
PROMPT = "Tell me about the libraries of your town."
QUESTIONS = ["What is your favourite book, and why?", "How do I find a map of the old harbour?",
             "Can you recommend a short story for a rainy evening?", "What did you do last weekend?",
             "Which poet should I read first?", "How are the shelves in your library organised?",
             "What is the oldest thing in the archive?", "Do you like science fiction?"]


def reply_tokens(count: int, tagged: bool) -> list[str]:
    pieces: list[str] = []
    turn = 0
    while len(pieces) < count:
        words = re.findall(r"\s*\S+", PARAGRAPH)
        if tagged:
            name = CAST[turn % 2].name
            words = [f"<{name}>", *words, f"</{name}>"]
        pieces += words
        turn += 1
    return pieces[:count]


async def raw_client(base_url: str) -> tuple[float, float]:
    """(wall seconds, first-token seconds) for one streamed reply through AsyncOpenAI alone."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    start = time.perf_counter()
    first = 0.0
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and not first:
            first = time.perf_counter() - start
    wall = time.perf_counter() - start
    await client.close()
    return wall, first


async def streamer(base_url: str, characters: list[Character]) -> dict[str, Any]:
    """Wall time, first token, first Sentence, and the time from the arrival of the piece that completed
    the first Sentence to the Sentence coming out."""
    chat = OpenAIChat(LLMSettings(base_url=base_url, model="m", max_retries=0), None)
    conversation = Conversation(chat, characters, "Ada")
    splitter = SentenceStreamer({c.name: c.voice for c in characters})
    arrivals: list[float] = []
    original = chat.stream

    async def timed(messages):  # type: ignore[no-untyped-def]
        async for piece in original(messages):
            arrivals.append(time.perf_counter())
            yield piece

    chat.stream = timed  # type: ignore[method-assign]
    start = time.perf_counter()
    first_sentence = added = 0.0
    first_text = ""
    async for delta in conversation.reply(PROMPT):
        if (sentences := splitter.feed(delta)) and not first_sentence:
            now = time.perf_counter()
            first_sentence, added, first_text = now - start, now - arrivals[-1], sentences[0].text
    splitter.finish()
    wall = time.perf_counter() - start
    await chat.aclose()
    return {"wall": wall, "first_token": arrivals[0] - start, "first_sentence": first_sentence, "added": added,
            "text": first_text}


def pipeline_cpu(tokens: list[str], characters: list[Character]) -> float:
    """Seconds per token of tag parsing + sentence splitting alone."""
    start = time.perf_counter()
    parser = TagParser([c.name for c in characters], characters[0].name)
    splitter = SentenceStreamer()
    for token in tokens:
        for delta in parser.feed(token):
            splitter.feed(delta)
    for delta in parser.finish():
        splitter.feed(delta)
    splitter.finish()
    return (time.perf_counter() - start) / len(tokens)


def bench_streamer(runs: int, count: int, delay: float) -> None:
    print(f"## streamer vs raw openai client (local SSE server, {count} tokens, median of {runs} runs)\n")
    print("| reply | raw wall ms | streamer wall ms | overhead us/token | pipeline CPU us/token |")
    print("|---|---|---|---|---|")
    with SSEServer() as server:
        for tagged in (False, True):
            tokens = reply_tokens(count, tagged)
            characters = CAST if tagged else CAST[:1]
            raw, ours = [], []
            asyncio.run(raw_client(server.base_url))  # warm-up (imports, first connection)
            for _ in range(runs):  # interleaved so drift hits both sides alike
                server.queue(Script(tokens=tokens))
                raw.append(asyncio.run(raw_client(server.base_url))[0])
                server.queue(Script(tokens=tokens))
                ours.append(asyncio.run(streamer(server.base_url, characters))["wall"])
            cpu = statistics.median(pipeline_cpu(tokens, characters) for _ in range(runs))
            r, o = statistics.median(raw), statistics.median(ours)
            label = "2 characters, tagged" if tagged else "1 character"
            print(f"| {label} | {r * 1e3:.1f} | {o * 1e3:.1f} | {(o - r) / count * 1e6:.1f} | {cpu * 1e6:.1f} |")

        first_clause = reply_tokens(40, False)
        print(f"\n## first token -> first Sentence (server paces tokens {delay * 1e3:.0f} ms apart)\n")
        print("| run | raw first token ms | first token ms | first Sentence ms | token->Sentence ms | "
              "added after the completing token ms |")
        print("|---|---|---|---|---|---|")
        rows = []
        for run in range(runs):
            server.queue(Script(tokens=first_clause, delay=delay))
            raw_first = asyncio.run(raw_client(server.base_url))[1]
            server.queue(Script(tokens=first_clause, delay=delay))
            got = asyncio.run(streamer(server.base_url, CAST[:1]))
            rows.append((raw_first, got))
            print(f"| {run + 1} | {raw_first * 1e3:.1f} | {got['first_token'] * 1e3:.1f} | "
                  f"{got['first_sentence'] * 1e3:.1f} | {(got['first_sentence'] - got['first_token']) * 1e3:.1f} | "
                  f"{got['added'] * 1e3:.3f} |")
        med: Callable[[str], float] = lambda key: statistics.median(g[key] for _, g in rows)  # noqa: E731
        print(f"| median | {statistics.median(r for r, _ in rows) * 1e3:.1f} | {med('first_token') * 1e3:.1f} | "
              f"{med('first_sentence') * 1e3:.1f} | {(med('first_sentence') - med('first_token')) * 1e3:.1f} | "
              f"{med('added') * 1e3:.3f} |")
        text = rows[0][1]["text"]
        print(f"\nfirst Sentence ({len(text.split())} tokens): {text!r}")


def bench_embedded(runs: int, max_tokens: int) -> None:
    from voicechat.config.store import load_character
    from voicechat.llm.base import ChatMessage
    from voicechat.llm.conversation import system_prompt
    from voicechat.llm.local_server import MODEL_ALIAS, LocalServer, bundled_model_path

    path = bundled_model_path()
    if path is None:
        print("\nembedded model not installed: skipped")
        return
    system = system_prompt([load_character("lydia")], "Ada")
    sampling = {"temperature": 0.0, "top_p": 0.95, "top_k": 40, "min_p": 0.05}
    print(f"\n## embedded SmolLM2-135M (n_threads=1, max_tokens={max_tokens}, temperature 0, median of {runs})\n")
    start = time.perf_counter()
    with LocalServer(path, n_threads=1) as server:
        started = time.perf_counter() - start
        settings = LLMSettings(base_url=server.base_url, model=MODEL_ALIAS, max_tokens=max_tokens,
                               repetition_penalty=1.1, max_retries=0, **sampling)

        async def one(question: str) -> tuple[float, int, float]:
            chat = OpenAIChat(settings, None, kind="llamacpp")
            messages = [ChatMessage("system", system), ChatMessage("user", question)]
            t0 = time.perf_counter()
            stamps = [time.perf_counter() async for _ in chat.stream(messages)]
            await chat.aclose()
            return stamps[0] - t0, len(stamps), (len(stamps) - 1) / (stamps[-1] - stamps[0])

        asyncio.run(one(PROMPT))  # warm-up: the system prompt is cached from here on, as in a conversation
        served = [asyncio.run(one(QUESTIONS[run % len(QUESTIONS)])) for run in range(runs)]
    print(f"server start (process up and answering): {started:.2f} s\n")

    from llama_cpp import Llama

    llama = Llama(model_path=str(path), n_threads=1, n_threads_batch=1, n_ctx=2048, verbose=False)

    def direct(question: str) -> tuple[float, int, float]:
        t0 = time.perf_counter()
        stamps = []
        for chunk in llama.create_chat_completion(
            messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
            stream=True, max_tokens=max_tokens,
            repeat_penalty=1.1, **sampling,  # type: ignore[arg-type]
        ):
            if chunk["choices"][0]["delta"].get("content"):  # type: ignore[index,union-attr]
                stamps.append(time.perf_counter())
        return stamps[0] - t0, len(stamps), (len(stamps) - 1) / (stamps[-1] - stamps[0])

    direct(PROMPT)
    inproc = [direct(QUESTIONS[run % len(QUESTIONS)]) for run in range(runs)]
    print("| path | first token ms | tokens | tokens/s |")
    print("|---|---|---|---|")
    for label, rows in (("server + OpenAIChat (voicechat)", served), ("llama_cpp.Llama in-process", inproc)):
        print(f"| {label} | {statistics.median(r[0] for r in rows) * 1e3:.0f} | "
              f"{statistics.median(r[1] for r in rows):.0f} | {statistics.median(r[2] for r in rows):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=1500)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--skip-embedded", action="store_true")
    args = parser.parse_args()
    bench_streamer(args.runs, args.tokens, args.delay)
    if not args.skip_embedded:
        bench_embedded(args.runs, args.max_tokens)


if __name__ == "__main__":
    main()
