"""From the PATH arguments to jobs: which files to read and where each transcript goes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voicechat.audio.decode import is_audio_name


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path | None  # None: stdout


@dataclass(frozen=True)
class Plan:
    jobs: tuple[Job, ...]
    failures: tuple[str, ...]  # one line each, naming the file and the fix
    skipped: tuple[str, ...]


def expand(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """Files as given, folders replaced by the audio files directly inside them (sorted)."""
    files: list[Path] = []
    failures: list[str] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)  # a missing or unreadable file is reported when it is decoded
            continue
        found = sorted(child for child in path.iterdir() if child.is_file() and is_audio_name(child))
        if not found:
            failures.append(f"{path}: folder has no audio files (wav, flac, mp3, ogg, m4a, ...) directly in it")
        files.extend(found)
    return _unique(files), failures


def plan(paths: Sequence[Path], fmt: str, out_dir: Path | None, to_stdout: bool, overwrite: bool) -> Plan:
    files, failures = expand(paths)
    if to_stdout:
        return Plan(tuple(Job(path, None) for path in files), tuple(failures), ())
    jobs: list[Job] = []
    skipped: list[str] = []
    claimed: dict[Path, Path] = {}
    for source in files:
        target = (out_dir if out_dir is not None else source.parent) / f"{source.stem}.{fmt}"
        problem = _target_problem(source, target, claimed, overwrite, out_dir is not None)
        if problem == "exists":
            skipped.append(f"{source}: kept the existing {target} (pass --overwrite to replace it)")
        elif problem:
            failures.append(problem)
        else:
            claimed[target.resolve()] = source
            jobs.append(Job(source, target))
    return Plan(tuple(jobs), tuple(failures), tuple(skipped))


def _target_problem(source: Path, target: Path, claimed: dict[Path, Path], overwrite: bool, has_out: bool) -> str:
    if not source.exists():
        return ""  # decoding names the missing file
    resolved = target.resolve()
    if resolved == source.resolve():
        return f"{source}: its transcript would replace the input itself; pass -o DIR to write elsewhere"
    if resolved in claimed:
        return f"{source}: {claimed[resolved]} already writes {target}; transcribe them into different -o folders"
    if target.exists() and not overwrite:
        return "exists"
    folder = target.parent
    if not has_out and not os.access(folder, os.W_OK):
        return f"{source}: cannot write {target}: folder {folder} is not writable; pass -o DIR"
    return ""


def _unique(files: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    kept: list[Path] = []
    for path in files:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            kept.append(path)
    return kept
