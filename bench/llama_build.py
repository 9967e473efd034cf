"""Which llama-cpp-python build the offline model should run on: speed of each build on this CPU.

Each variant runs in its own fresh interpreter (a venv holding that build), in turn, several rounds, and
streams the same SmolLM2 completions with one thread: first-token time (prompt processing) and decode
tokens per second. Variants: the portable AVX2 build scripts/setup makes, a -march=native build, and the
native build with llama.cpp's extra buffer types (the AMX repack path) turned off.

    .venv/bin/python bench/llama_build.py --variant portable=.venv/bin/python \\
        --variant native=/tmp/native/venv/bin/python --variant native-no-extra-bufts=/tmp/native/venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MEASURE = r"""
import json, sys, time
import llama_cpp.llama_cpp as native
if sys.argv[3] == "no-extra-bufts":
    made = native.llama_model_default_params
    def params():
        p = made(); p.use_extra_bufts = False; return p
    native.llama_model_default_params = params
from llama_cpp import Llama
model = Llama(sys.argv[1], n_threads=1, n_threads_batch=1, n_ctx=2048, verbose=False)
prompt = ("<|im_start|>system\nYou are Lydia, a friendly librarian. Answer in two short spoken sentences."
          "<|im_end|>\n<|im_start|>user\nWhat should I read on a rainy weekend?<|im_end|>\n<|im_start|>assistant\n")
results = []
for run in range(int(sys.argv[2]) + 1):
    model.reset()
    started = time.perf_counter(); first = None; tokens = 0
    for _ in model.create_completion(prompt, max_tokens=64, temperature=0.0, stream=True):
        now = time.perf_counter(); first = first or now; tokens += 1
    ended = time.perf_counter()
    if run:  # the first run warms up
        results.append({"first_token_ms": (first - started) * 1000,
                        "tokens_per_s": (tokens - 1) / (ended - first) if tokens > 1 else 0.0})
print(json.dumps(results))
"""


def measure(python: str, mode: str, model: Path, runs: int) -> list[dict[str, float]]:
    done = subprocess.run([python, "-c", MEASURE, str(model), str(runs), mode], capture_output=True, text=True,
                          timeout=600)
    if done.returncode != 0:
        return [{"crashed": float(done.returncode)}]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    sys.path.insert(0, str(REPO))
    from voicechat.llm.local_server import bundled_model_path

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", required=True, help="NAME=PYTHON (no-extra-bufts in NAME "
                        "turns extra buffer types off)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model = bundled_model_path()
    assert model is not None, "SmolLM2 is not installed"
    variants = [item.split("=", 1) for item in args.variant]
    collected: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
    for round_index in range(args.rounds):
        order = variants[round_index % len(variants):] + variants[: round_index % len(variants)]
        for name, python in order:
            mode = "no-extra-bufts" if "no-extra-bufts" in name else "default"
            collected[name] += measure(python, mode, model, args.runs)
    print(f"{'variant':28} {'first token ms (median)':>24} {'tokens/s (median)':>18}")
    for name, results in collected.items():
        if any("crashed" in r for r in results):
            print(f"{name:28} crashed (exit {results[0]['crashed']:.0f})")
            continue
        first = statistics.median(r["first_token_ms"] for r in results)
        speed = statistics.median(r["tokens_per_s"] for r in results)
        print(f"{name:28} {first:24.1f} {speed:18.1f}")


if __name__ == "__main__":
    main()
