"""The Slurm launcher: planned runs as one submitit job array.

Each array task makes one claimed attempt at its run (harness/run/attempt.py), exactly as the local
launcher does, so a shared results folder stays consistent however many nodes write to it. On
preemption or a time-limit signal submitit requeues the task (`Checkpointable`), and the new attempt
resumes from the run's last epoch checkpoint. Without Slurm (no `sbatch`), submitit's local executor
runs the same code path, which is how it is tested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import submitit

from harness.config import SlurmLauncher
from harness.files import write_json_atomic
from harness.run.attempt import attempt
from harness.run.plan import Job
from harness.run.store import QUEUED, is_complete


class ClaimedRun(submitit.helpers.Checkpointable):
    """A picklable array task; requeued as itself on preemption (the default `checkpoint`)."""

    def __init__(self, job: dict):
        self.job = job

    def __call__(self) -> str:
        outcome = attempt(Job.from_dict(self.job))
        if outcome.status == "failed":
            raise RuntimeError(outcome.message)
        return f"{outcome.status} {outcome.message}".strip()


@dataclass
class Submission:
    jobs: list[Job]
    handles: list
    cluster: str
    folder: Path


def executor_for(settings: SlurmLauncher, folder: Path, cluster: str | None = None) -> submitit.AutoExecutor:
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    params = dict(
        name="ferbench",
        timeout_min=settings.time_limit_min,
        cpus_per_task=settings.cpus_per_task,
        gpus_per_node=settings.gpus_per_task,
        mem_gb=settings.mem_gb,
        slurm_array_parallelism=settings.max_concurrent,
    )
    if settings.partition:
        params["slurm_partition"] = settings.partition
    if settings.account:
        params["slurm_account"] = settings.account
    if settings.qos:
        params["slurm_qos"] = settings.qos
    if settings.constraint:
        params["slurm_constraint"] = settings.constraint
    if executor.cluster != "slurm":
        params = {k: v for k, v in params.items() if not k.startswith("slurm_") and k != "mem_gb"}
    executor.update_parameters(**params)
    return executor


def submit(jobs: list[Job], settings: SlurmLauncher, folder: Path, overwrite: bool = False,
           cluster: str | None = None) -> Submission:
    """Submit every run not yet complete as one array; write each run's QUEUED record."""
    if overwrite:
        raise ValueError("--overwrite is not supported with --launcher slurm; remove the runs' COMPLETE files instead")
    todo = [job for job in jobs if not is_complete(job.run_dir)]
    executor = executor_for(settings, folder, cluster)
    if not todo:
        return Submission([], [], executor.cluster, folder)
    with executor.batch():
        pending = [executor.submit(ClaimedRun(json.loads(json.dumps(job.to_dict())))) for job in todo]
    now = datetime.now(timezone.utc).isoformat()
    for job, handle in zip(todo, pending):
        job.run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(job.run_dir / QUEUED, dict(job_id=str(handle.job_id), cluster=executor.cluster, submitted=now))
    return Submission(todo, pending, executor.cluster, folder)
