"""The results store: one folder per run, files written atomically, a completion marker last.

A run folder without the marker is incomplete (killed, crashed, or still running: see its CLAIM)
and is resumed from its last epoch checkpoint by the next attempt; a folder with it is never
recomputed unless asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from harness.files import write_json_atomic

MARKER = "COMPLETE"
FAILED = "FAILED"
"""Written by the launcher when the worker failed: exit code, last log line, time."""
QUEUED = "QUEUED"
"""Written by the Slurm launcher at submission: the array job id."""
CHECKPOINTS = "checkpoints"
"""Epoch checkpoints of a run in progress; removed when the run completes."""
RESULT_FILES = ("config.json", "result.json", "predictions.csv", "env.json")


def run_dir(results_dir: Path, dataset: str, model: str, protocol: str, run_id: str) -> Path:
    return results_dir / dataset / model / protocol / run_id


def is_complete(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def mark_complete(folder: Path, payload: dict) -> None:
    missing = [name for name in RESULT_FILES if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(f"{folder}: cannot mark complete, missing {', '.join(missing)}")
    write_json_atomic(folder / MARKER, payload)


def complete_runs(results_dir: Path) -> Iterator[Path]:
    """Every complete run folder under the store, in a stable order."""
    if not results_dir.is_dir():
        return
    for marker in sorted(results_dir.glob(f"*/*/*/*/{MARKER}")):
        yield marker.parent
