"""The local launcher: planned jobs as worker subprocesses, K at a time, with a rich progress bar.

Complete runs are skipped (unless overwriting), runs another process holds are left to it, an
interrupted run resumes from its last epoch checkpoint, and one failed run never stops the others.
With several GPUs the K workers are spread over them (CUDA_VISIBLE_DEVICES); when several share one
GPU each gets an equal memory cap. A worker dies with its parent, so a killed `ferbench run` leaves
no orphan writing into the store.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from harness.errors import FerbenchError
from harness.run.attempt import attempt
from harness.run.plan import Job
from harness.run.store import is_complete


@dataclass
class Summary:
    done: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[Job, str]] = field(default_factory=list)
    elsewhere: list[tuple[Job, str]] = field(default_factory=list)


def visible_gpus() -> list[str]:
    """GPU ids workers may use: CUDA_VISIBLE_DEVICES when set, else what nvidia-smi lists (none without it)."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [g for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in listed.stdout.splitlines() if line.strip()] if listed.returncode == 0 else []


def slot_environments(workers: int, gpus: list[str]) -> list[dict]:
    """Per worker slot: the GPU it sees and, when several slots share a GPU, its memory fraction."""
    if not gpus:
        return [{} for _ in range(workers)]
    sharing = -(-workers // len(gpus))
    envs = []
    for slot in range(workers):
        env = {"CUDA_VISIBLE_DEVICES": gpus[slot % len(gpus)]}
        if sharing > 1:
            env["FERBENCH_GPU_MEMORY_FRACTION"] = f"{0.95 / sharing:.4f}"
        envs.append(env)
    return envs


def _label(job: Job) -> str:
    fold = f" f{job.spec.fold}" if job.fold_count > 1 else ""
    return f"{job.spec.model}/{job.spec.dataset}{fold} r{job.spec.repeat}"


def execute(jobs: list[Job], console: Console, overwrite: bool = False, workers: int = 1, use_gpus: bool = True) -> Summary:
    summary = Summary()
    todo = []
    for job in jobs:
        (summary.skipped if is_complete(job.run_dir) and not overwrite else todo).append(job)
    if summary.skipped:
        console.print(f"{len(summary.skipped)} of {len(jobs)} runs already complete; skipping them.")
    if not todo:
        return summary
    workers = max(1, min(workers, len(todo)))
    slots: queue.Queue = queue.Queue()
    for env in slot_environments(workers, visible_gpus() if use_gpus else []):
        slots.put(env)
    stopping = threading.Event()
    running: set = set()
    lock = threading.Lock()
    columns = (
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        runs = progress.add_task("runs", total=len(todo), status="")

        def one(job: Job) -> None:
            if stopping.is_set():
                return
            env = slots.get()
            task = progress.add_task(f"  {_label(job)}", total=job.spec.recipe["epochs"], status="starting")

            def on_event(event: dict) -> None:
                if event["event"] == "phase":
                    counts = f" {event['done']}/{event['total']}" if "total" in event else ""
                    progress.update(task, status=event["phase"] + counts)
                    if "epochs" in event:  # a training stage starts (models with several stages restart the bar)
                        progress.update(task, total=event["epochs"], completed=0)
                elif event["event"] == "epoch":
                    score = (event.get("val") or event["test"])["balanced_accuracy"]
                    progress.update(task, completed=event["epoch"], status=f"loss {event['train_loss']:.3f} val bacc {score:.3f}")
                elif event["event"] == "step":
                    progress.update(task, status=f"epoch {event['epoch']} step {event['step']}/{event['steps']} loss {event['train_loss']:.3f}")
                elif event["event"] == "resumed":
                    progress.update(task, completed=event["epoch"], status=f"resumed after epoch {event['epoch']}")

            def started(proc) -> None:
                with lock:
                    running.add(proc)

            try:
                outcome = attempt(job, on_event, overwrite, env, started, stopping.is_set)
            finally:
                slots.put(env)
            with lock:
                if outcome.status == "done":
                    summary.done.append(job)
                elif outcome.status == "skipped":
                    summary.skipped.append(job)
                elif outcome.status == "claimed":
                    summary.elsewhere.append((job, outcome.message))
                elif outcome.status == "failed":
                    summary.failed.append((job, outcome.message))
            colour = {"done": "green", "failed": "red"}.get(outcome.status, "yellow")
            progress.update(task, status=f"[{colour}]{outcome.status}")
            if outcome.status != "interrupted":  # cut short by Ctrl-C: not done, so not counted as one
                progress.advance(runs)

        pool = ThreadPoolExecutor(max_workers=workers)
        futures = [pool.submit(one, job) for job in todo]
        try:
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            stopping.set()
            with lock:
                for proc in running:
                    proc.kill()
            pool.shutdown(wait=True, cancel_futures=True)
            kept = len(summary.done) + len(summary.skipped)
            raise FerbenchError(
                f"interrupted; {kept} complete run(s) are kept, unfinished runs keep their last epoch checkpoint "
                "and the next call resumes", exit_code=130,
            ) from None
        pool.shutdown(wait=True)
    return summary
