"""Execute planned jobs, each in its own worker subprocess, with a rich progress bar.

Complete runs are skipped (unless overwriting), incomplete leftovers are cleared and redone,
and one failed run never stops the others. A worker dies with its parent (PR_SET_PDEATHSIG),
so a killed `ferbench run` leaves no orphan writing into the store.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from harness.errors import FerbenchError
from harness.files import write_json_atomic
from harness.run.plan import Job
from harness.run.store import is_complete, reset
from harness.run.worker import EVENT_PREFIX

LOG_NAME = "worker.log"


@dataclass
class Summary:
    done: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[Job, str]] = field(default_factory=list)


def _die_with_parent() -> None:
    """Linux: deliver SIGKILL to the worker when the parent process dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        pass


def _last_error(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()] if log.exists() else []
    return lines[-1] if lines else "worker exited without output"


def run_job(job: Job, on_event) -> tuple[int, str]:
    """Run one job in a subprocess; return (exit code, last error line)."""
    reset(job.run_dir)
    job.run_dir.mkdir(parents=True)
    job_file = job.run_dir / "job.json"
    write_json_atomic(job_file, job.to_dict())
    log = job.run_dir / LOG_NAME
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "a", encoding="utf-8") as log_handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.run.worker", str(job_file)],
            stdout=subprocess.PIPE,
            stderr=log_handle,
            text=True,
            env=env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        try:
            for line in proc.stdout:
                if line.startswith(EVENT_PREFIX):
                    on_event(json.loads(line[len(EVENT_PREFIX):]))
                else:
                    log_handle.write(line)
                    log_handle.flush()
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return code, ("" if code == 0 else _last_error(log))


def execute(jobs: list[Job], console: Console, overwrite: bool = False) -> Summary:
    summary = Summary()
    todo = []
    for job in jobs:
        if is_complete(job.run_dir) and not overwrite:
            summary.skipped.append(job)
        else:
            todo.append(job)
    if summary.skipped:
        console.print(f"{len(summary.skipped)} of {len(jobs)} runs already complete; skipping them.")
    if not todo:
        return summary
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        runs = progress.add_task("runs", total=len(todo), status="")
        for job in todo:
            label = f"{job.spec.model}/{job.spec.dataset} r{job.spec.repeat}"
            epochs = progress.add_task(f"  {label}", total=job.spec.recipe["epochs"], status="starting")

            def on_event(event: dict, task=epochs) -> None:
                if event["event"] == "phase":
                    counts = f" {event['done']}/{event['total']}" if "total" in event else ""
                    progress.update(task, status=event["phase"] + counts)
                    if "epochs" in event:  # a training stage starts (models with several stages restart the bar)
                        progress.update(task, total=event["epochs"], completed=0)
                elif event["event"] == "epoch":
                    score = (event.get("val") or event["test"])["balanced_accuracy"]
                    progress.update(
                        task, completed=event["epoch"], status=f"loss {event['train_loss']:.3f} val bacc {score:.3f}"
                    )

            try:
                code, error = run_job(job, on_event)
            except KeyboardInterrupt:
                raise FerbenchError(
                    f"interrupted during {label}; {len(summary.done) + len(summary.skipped)} complete run(s) are kept "
                    "and the next call resumes", exit_code=130,
                ) from None
            if code == 0 and is_complete(job.run_dir):
                summary.done.append(job)
                progress.update(epochs, status="[green]done")
            else:
                summary.failed.append((job, error or f"exit code {code}"))
                progress.update(epochs, status="[red]failed")
            progress.advance(runs)
    return summary
