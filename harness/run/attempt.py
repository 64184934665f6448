"""One attempt at one run: claim it, run the worker subprocess, record the outcome.

Shared by the local launcher (threads) and the Slurm launcher (a submitit task), so both give the
same guarantees on a shared results folder: a claimed run is never started twice, a complete run is
never redone, a failed run leaves a FAILED record, and an interrupted one keeps its epoch checkpoints
for the next attempt to resume from.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from harness.files import write_json_atomic
from harness.run.claims import read_claim, try_claim
from harness.run.plan import Job
from harness.run.store import CHECKPOINTS, FAILED, MARKER, QUEUED, RESULT_FILES, is_complete
from harness.run.worker import EVENT_PREFIX

LOG_NAME = "worker.log"


@dataclass(frozen=True)
class Outcome:
    status: str
    """done | skipped (already complete) | claimed (a live process holds it) | failed | interrupted"""
    message: str = ""


def _die_with_parent() -> None:
    """Linux: deliver SIGKILL to the worker when the parent process dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        pass


def _last_error(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()] if log.exists() else []
    return lines[-1] if lines else "worker exited without output"


def prepare(folder: Path, overwrite: bool) -> None:
    """Clear what an earlier attempt left, except its epoch checkpoints (kept for resuming) unless overwriting."""
    for name in (MARKER, FAILED, QUEUED, *RESULT_FILES):
        (folder / name).unlink(missing_ok=True)
    if overwrite:
        shutil.rmtree(folder / CHECKPOINTS, ignore_errors=True)


def run_worker(job: Job, on_event, env_extra: dict | None = None, on_start: Callable = lambda proc: None) -> tuple[int, str]:
    """Run the worker subprocess for a prepared job folder; return (exit code, last error line)."""
    job_file = job.run_dir / "job.json"
    write_json_atomic(job_file, job.to_dict())
    log = job.run_dir / LOG_NAME
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
    with open(log, "a", encoding="utf-8") as log_handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.run.worker", str(job_file)],
            stdout=subprocess.PIPE,
            stderr=log_handle,
            text=True,
            env=env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        on_start(proc)
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


def attempt(
    job: Job,
    on_event=lambda event: None,
    overwrite: bool = False,
    env_extra: dict | None = None,
    on_start: Callable = lambda proc: None,
    interrupted: Callable[[], bool] = lambda: False,
) -> Outcome:
    if is_complete(job.run_dir) and not overwrite:
        return Outcome("skipped")
    claim = try_claim(job.run_dir)
    if claim is None:
        owner = read_claim(job.run_dir) or {}
        return Outcome("claimed", f"running on {owner.get('host', '?')} (pid {owner.get('pid', '?')})")
    with claim:
        if is_complete(job.run_dir) and not overwrite:
            return Outcome("skipped")  # another process finished it between our check and our claim
        prepare(job.run_dir, overwrite)
        code, error = run_worker(job, on_event, env_extra, on_start)
        if code == 0 and is_complete(job.run_dir):
            return Outcome("done")
        if interrupted() or code in (-signal.SIGINT, 130):
            return Outcome("interrupted", "interrupted")
        message = error or f"exit code {code}"
        write_json_atomic(
            job.run_dir / FAILED,
            dict(exit_code=code, message=message, log=str(job.run_dir / LOG_NAME),
                 finished=datetime.now(timezone.utc).isoformat()),
        )
        return Outcome("failed", message)
