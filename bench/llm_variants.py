"""Variants of the offline model's [llm.embedded] settings side by side, on bench/llm.py's questions and rubric.

    .venv/bin/python bench/llm_variants.py '{"t03": {"temperature": 0.3}, "bare": {"examples": false}}' [10]

Each variant is a set of [llm.embedded] keys over the packaged profile's, plus two of its own:
"examples": false sends the cards without their example exchanges, and "style": "..." adds a sentence to
the system prompt's spoken-style line. Every variant gets its own server; they answer the first N
questions (default 10) for each packaged character in turn, through Conversation and the reply budget.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.llm as llm_bench
import voicechat.llm.conversation as conversation_module
from voicechat.config.store import load_character, load_profile
from voicechat.llm.budget import ReplyBudget
from voicechat.llm.conversation import Conversation
from voicechat.llm.embedded import EmbeddedChat

BASE_STYLE = conversation_module.SPOKEN_STYLE


async def compare(variants: dict[str, dict[str, Any]], count: int) -> dict[str, list[dict[str, Any]]]:
    profile = load_profile("default").llm
    budget = ReplyBudget.from_settings(profile)
    chats, styles, examples = {}, {}, {}
    for name, keys in variants.items():
        keys = dict(keys)
        styles[name], examples[name] = keys.pop("style", ""), keys.pop("examples", True)
        settings = profile.model_copy(update={"embedded": profile.embedded.model_copy(update=keys)})
        chats[name] = await asyncio.to_thread(EmbeddedChat, settings)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    try:
        for character in ("lydia", "captain", "narrator"):
            for question in list(llm_bench.ANSWERS)[:count]:
                for name, chat in chats.items():  # interleaved, so load drift hits every variant alike
                    conversation_module.SPOKEN_STYLE = f"{BASE_STYLE} {styles[name]}".strip()
                    card = load_character(character)
                    card = card if examples[name] else card.model_copy(update={"examples": ()})
                    conversation = Conversation(chat, [card], "Ada", budget=budget)
                    rows[name].append(await llm_bench.spoken_reply(chat, conversation, question, raw=False))
    finally:
        conversation_module.SPOKEN_STYLE = BASE_STYLE
        for chat in chats.values():
            await chat.aclose()
    return rows


def main() -> None:
    variants = json.loads(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    rows = asyncio.run(compare(variants, count))
    print("| variant | words median | words max | whole last sentence | answers the question | first Sentence ms |")
    print("|---|---|---|---|---|---|")
    for name, replies in rows.items():
        words = [len(r["text"].split()) for r in replies]
        whole = sum(llm_bench.ends_whole(r["text"]) for r in replies)
        answered = sum(llm_bench.answers(r["question"], r["text"]) for r in replies)
        first = statistics.median(r["first_sentence"] for r in replies) * 1e3
        print(f"| {name} | {statistics.median(words):g} | {max(words)} | {whole}/{len(replies)} | "
              f"{answered}/{len(replies)} | {first:.0f} |")


if __name__ == "__main__":
    main()
