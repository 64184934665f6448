"""Where every run in the store stands, read from its folder alone (works for any launcher and host).

done: COMPLETE, its files valid · unreadable: COMPLETE, but a file fails its schema · running: a live CLAIM · failed: FAILED (the last attempt's exit and log line) ·
queued: QUEUED by the Slurm launcher and not started · interrupted: started, not running now (its
epoch checkpoints let the next attempt resume).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.files import read_json
from harness.run.claims import CLAIM, is_claimed
from harness.run.records import Unreadable, read_run
from harness.run.store import CHECKPOINTS, FAILED, MARKER, QUEUED

STATES = ("done", "running", "queued", "failed", "interrupted", "unreadable")


@dataclass(frozen=True)
class RunState:
    folder: Path
    state: str
    detail: str = ""

    @property
    def cell(self) -> tuple[str, str, str]:
        dataset, model, protocol = self.folder.parts[-4:-1]
        return dataset, model, protocol


def _read(path: Path) -> dict:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return {}


def run_state(folder: Path) -> RunState:
    if (folder / MARKER).is_file():
        record = read_run(folder)
        if isinstance(record, Unreadable):  # complete, but its files fail their schemas: the report leaves it out
            return RunState(folder, "unreadable", f"{record.path}: {record.reason}")
        return RunState(folder, "done")
    if is_claimed(folder):
        return RunState(folder, "running", _read(folder / CLAIM).get("host", ""))
    if (folder / FAILED).is_file():
        return RunState(folder, "failed", _read(folder / FAILED).get("message", ""))
    if (folder / QUEUED).is_file():
        return RunState(folder, "queued", f"job {_read(folder / QUEUED).get('job_id', '?')}")
    epochs = sorted(p.stem for p in (folder / CHECKPOINTS).glob("*.pt"))
    return RunState(folder, "interrupted", f"checkpoint: {', '.join(epochs)}" if epochs else "no checkpoint")


def scan(results_dir: Path) -> list[RunState]:
    """Every run folder (results/<dataset>/<model>/<protocol>/<run-id>/ holding a job or a result)."""
    if not results_dir.is_dir():
        return []
    folders = {p.parent for pattern in ("*/*/*/*/job.json", f"*/*/*/*/{MARKER}", f"*/*/*/*/{QUEUED}")
               for p in results_dir.glob(pattern)}
    return [run_state(folder) for folder in sorted(folders)]


def counts(states: list[RunState]) -> dict[tuple[str, str, str], Counter]:
    table: dict[tuple[str, str, str], Counter] = {}
    for state in states:
        table.setdefault(state.cell, Counter())[state.state] += 1
    return table
