"""Peak memory of a real `voicechat talk` on the embedded models: the talk process and its children.

    .venv/bin/python bench/talk_memory.py [--questions 5]

Runs `voicechat talk --input q1.wav ... --output answer.wav` (offline defaults: tiny.en, SmolLM2 through the
local llama.cpp server, Piper) on Piper-spoken questions, and samples the resident memory (VmRSS) of the
talk process and of each of its child processes (the LLM server; before this round also RealtimeSTT's
transcription worker) every 0.2 s. Reports the peak of their sum, the peak of their summed PSS (shared
pages split between the processes that map them), and the voice-to-voice line talk prints
per turn.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.latency import QUESTIONS
from tests.conftest import synthesize_wav


def _proc_mb(path: str, field: str) -> int:
    """A kB field of a /proc file, in MB (0 once the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def resident_mb(pid: int) -> int:
    return _proc_mb(f"/proc/{pid}/status", "VmRSS:")


def proportional_mb(pid: int) -> int:
    """PSS: pages shared with another process (the GGUF that talk's turn judge and the LLM server both map)
    count half to each, so the sum over processes is the memory they really take together."""
    return _proc_mb(f"/proc/{pid}/smaps_rollup", "Pss:")


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        inputs = [synthesize_wav(question, Path(folder) / f"q{index}.wav")
                  for index, question in enumerate(QUESTIONS[: args.questions])]
        command = [sys.executable, "-m", "voicechat", "talk", *[f"--input={path}" for path in inputs],
                   "--output", str(Path(folder) / "answer.wav")]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peak, peak_pss = (0, 0, 0), 0
        while process.poll() is None:
            pids = [process.pid, *children(process.pid)]
            own = resident_mb(process.pid)
            others = sum(resident_mb(child) for child in pids[1:])
            if own + others > peak[0]:
                peak = (own + others, own, others)
            peak_pss = max(peak_pss, sum(proportional_mb(pid) for pid in pids))
            time.sleep(0.2)
        report = process.stderr.read() if process.stderr else ""
    print(f"talk exited {process.returncode}; peak RSS {peak[0]} MB (talk {peak[1]} MB, its children {peak[2]} MB); "
          f"peak PSS {peak_pss} MB")
    for line in report.splitlines():
        if line.startswith("end of speech"):
            print(f"  {line}")


if __name__ == "__main__":
    main()
