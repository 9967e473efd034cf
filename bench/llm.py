"""The LLM streamer against the raw `openai` client, and the embedded offline model, in one run.

    .venv/bin/python bench/llm.py [--runs 7] [--tokens 1500] [--delay 0.02] [--skip-embedded]
    .venv/bin/python bench/llm.py --characters [--questions 20]     # only the spoken-reply section

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
Spoken replies (`--characters`): twenty everyday questions to each packaged character on the embedded
model, before (the settings this project shipped until the reply budget: [llm]'s sampling, max_tokens 400,
no stops, no card examples, the raw stream spoken whole) against after (the packaged profile's
[llm.embedded], reply budget and card examples, through Conversation), interleaved question by question in
one run: words per reply (median, max), replies ending on a whole sentence, replies that answer the question
(ANSWERS below), replies that sign off or speak as someone else (OFF_VOICE), and the time from the request
to the first Sentence the SentenceStreamer would speak (the first clause, usually).
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
from voicechat.config.models import Character, EmbeddedSettings, LLMSettings
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


# Everyday questions and the rubric: a reply answers its question when it holds one of the question's
# keywords (lower case, matched as the start of a word, so "sleep" also matches "sleeping").
ANSWERS: dict[str, tuple[str, ...]] = {
    "What should I have for breakfast?": ("breakfast", "egg", "toast", "oat", "porridge", "fruit", "cereal",
                                          "pancake", "yogurt", "coffee", "tea", "bread", "bacon", "muffin"),
    "How can I sleep better?": ("sleep", "bed", "night", "rest", "screen", "dark", "relax", "tired", "pillow"),
    "What's a good way to spend a rainy afternoon?": ("read", "book", "film", "movie", "tea", "game", "puzzle",
                                                       "bake", "indoors", "cosy", "cozy", "blanket", "museum"),
    "Can you recommend a book for me?": ("book", "novel", "read", "story", "author", "tale"),
    "How do I make a good cup of tea?": ("tea", "water", "boil", "steep", "kettle", "leaves", "bag", "milk"),
    "What is your favourite colour?": ("blue", "green", "red", "yellow", "purple", "orange", "grey", "gray",
                                       "black", "white", "pink", "colour", "color", "gold", "silver"),
    "How do I stay motivated to exercise?": ("exercise", "goal", "habit", "walk", "run", "friend", "routine",
                                             "workout", "move", "music", "small", "reward"),
    "What should I name my new cat?": ("name", "call"),
    "Is it better to save money or spend it?": ("save", "saving", "spend", "money", "budget"),
    "How do I calm down after a stressful day?": ("breath", "calm", "relax", "walk", "bath", "music", "rest",
                                                  "tea", "stress", "quiet"),
    "What's a good snack for the afternoon?": ("fruit", "apple", "nut", "yogurt", "cheese", "biscuit", "cookie",
                                               "snack", "banana", "cracker", "chocolate", "tea", "toast"),
    "Why is the sky blue?": ("light", "sun", "scatter", "air", "atmosphere", "wavelength"),
    "How do I learn a new language?": ("practi", "word", "speak", "lesson", "listen", "app", "every day",
                                       "daily", "book", "learn"),
    "What should I pack for a weekend trip?": ("pack", "clothes", "shirt", "toothbrush", "shoe", "jacket",
                                               "charger", "bag", "sock", "coat", "map"),
    "How can I focus better at work?": ("focus", "break", "list", "task", "plan", "phone", "quiet", "one thing",
                                        "priorit"),
    "What's a fun thing to do with friends?": ("game", "picnic", "walk", "dinner", "movie", "film", "cook",
                                               "hike", "play", "party", "music", "trip"),
    "How often should I water my plants?": ("water", "week", "day", "soil", "dry", "often"),
    "What do you do when you feel lonely?": ("friend", "call", "talk", "walk", "read", "book", "write",
                                             "music", "lonely", "alone", "visit"),
    "How do I start running?": ("run", "slow", "walk", "shoe", "minute", "pace", "short", "start"),
    "What's the best way to remember names?": ("name", "repeat", "remember", "say", "write"),
}
# Signing off like a letter, or writing another speaker's line.
OFF_VOICE = re.compile(r"(?im)^\s*(best|sincerely|regards|yours|warmly|love|cheers)\b[^.!?]{0,20},?\s*$"
                       r"|^\s*[-\u2014]\s*\w+\s*$|^\s*(user|ada|assistant|lydia|captain reyes|narrator)\s*:")
WHOLE_END = re.compile("[.!?\u2026][\"'\u201d\u2019)\\]]*$")
# What the embedded model ran with before the reply budget: the default [llm] sampling with llama.cpp's
# top_k / min_p / repeat_penalty filled in, a 400-token cap, no stops.
BEFORE = EmbeddedSettings(temperature=0.8, top_p=0.95, top_k=40, min_p=0.05, repetition_penalty=1.1,
                          max_tokens=400, stop=())


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


def answers(question: str, reply: str) -> bool:
    text = reply.lower()
    return any(re.search(rf"\b{re.escape(word)}", text) for word in ANSWERS[question])


def ends_whole(reply: str) -> bool:
    from voicechat.text.sentences import split_sentences

    pieces = split_sentences(reply)
    return bool(pieces) and bool(WHOLE_END.search(pieces[-1]))


async def spoken_reply(chat: Any, conversation: Conversation, question: str, raw: bool) -> dict[str, Any]:
    """One reply as it would be spoken: the first Sentence's time, the text, and whether it was cut."""
    from voicechat.events import TextDelta
    from voicechat.llm.base import ReplyCut

    splitter = SentenceStreamer()
    start = time.perf_counter()
    first = 0.0
    text = ""
    deltas: Any = (TextDelta(piece, "") async for piece in chat.stream(conversation.messages(question))) \
        if raw else conversation.reply(question)
    try:
        async for delta in deltas:
            text += delta.text
            if splitter.feed(delta) and not first:
                first = time.perf_counter() - start
    except ReplyCut as cut:  # before: a reply at the token cap was spoken up to its last half-word
        text = cut.partial if raw else text
    first = first or time.perf_counter() - start
    return {"text": text.strip(), "first_sentence": first, "question": question}


async def character_replies(count: int) -> dict[str, dict[str, list[dict[str, Any]]]]:
    from voicechat.config.store import load_character, load_profile
    from voicechat.llm.budget import ReplyBudget
    from voicechat.llm.embedded import EmbeddedChat

    profile = load_profile("default").llm
    before_chat = await asyncio.to_thread(EmbeddedChat, profile.model_copy(update={"embedded": BEFORE}))
    after_chat = await asyncio.to_thread(EmbeddedChat, profile)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        for name in ("lydia", "captain", "narrator"):
            card = load_character(name)
            bare = card.model_copy(update={"examples": ()})
            rows = results[card.name] = {"before": [], "after": []}
            await spoken_reply(after_chat, Conversation(after_chat, [card], "Ada"), "Hello!", raw=False)  # warm-up
            for question in list(ANSWERS)[:count]:
                old = Conversation(before_chat, [bare], "Ada", budget=ReplyBudget(0, 0))
                new = Conversation(after_chat, [card], "Ada", budget=ReplyBudget.from_settings(profile))
                rows["before"].append(await spoken_reply(before_chat, old, question, raw=True))
                rows["after"].append(await spoken_reply(after_chat, new, question, raw=False))
    finally:
        await before_chat.aclose()
        await after_chat.aclose()
    return results


def bench_characters(count: int, show: bool) -> None:
    import os

    load = os.getloadavg()
    print(f"\n## spoken replies: {count} everyday questions per character, embedded SmolLM2-135M "
          f"(load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start)\n")
    results = asyncio.run(character_replies(count))
    print("| character | settings | words median | words max | whole last sentence | answers the question | "
          "off voice | first Sentence ms (median) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, sides in results.items():
        for side, rows in sides.items():
            words = [len(r["text"].split()) for r in rows]
            whole = sum(ends_whole(r["text"]) for r in rows)
            answered = sum(answers(r["question"], r["text"]) for r in rows)
            off = sum(bool(OFF_VOICE.search(r["text"])) for r in rows)
            first = statistics.median(r["first_sentence"] for r in rows) * 1e3
            print(f"| {name} | {side} | {statistics.median(words):.0f} | {max(words)} | {whole}/{len(rows)} | "
                  f"{answered}/{len(rows)} | {off}/{len(rows)} | {first:.0f} |")
    load = os.getloadavg()
    print(f"\nload at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if show:
        for name, sides in results.items():
            for row in sides["after"]:
                print(f"\n{name} <- {row['question']}\n  {row['text']!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=1500)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--characters", action="store_true", help="only the spoken-reply section")
    parser.add_argument("--questions", type=int, default=len(ANSWERS))
    parser.add_argument("--show", action="store_true", help="print every reply after the table")
    args = parser.parse_args()
    if args.characters:
        bench_characters(args.questions, args.show)
        return
    bench_streamer(args.runs, args.tokens, args.delay)
    if not args.skip_embedded:
        bench_embedded(args.runs, args.max_tokens)


if __name__ == "__main__":
    main()
