"""The cross-dataset protocol (CD-FER-Benchmark, Chen et al., TPAMI 2022): train on a source dataset, test each
repeat's selected model on other datasets.

Training is an ordinary run of the source (its own protocol and saved split, `--save-model` implied), so a
source run is shared with the in-dataset table and adding a target later trains nothing: targets are scored from
each run's model.safetensors as evaluation records (harness/evaluate/record.py). A target is scored on its test
split, or whole when it has no official split (subject-k-fold sets such as CK+ and KMU-FED, as CD-FER does), over
the classes source and target share (classmap.py). Each model's evaluations run in one subprocess, with only its
own upstream importable, as training does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.config import Config
from harness.errors import FerbenchError
from harness.paths import Paths

CROSS_DATASET = "cross-dataset"
WHOLE_TARGET_PROTOCOLS = frozenset({"subject-kfold"})
"""Datasets without an official test split are scored whole as targets."""
EVENT = "@ferbench-eval "


@dataclass(frozen=True)
class TargetSpec:
    dataset: str
    path: Path | None = None


def parse_targets(values: list[str], cross_dataset: bool = False) -> list[TargetSpec] | None:
    """`--target NAME` / `--target NAME=PATH` → specs; [] means every dataset present (`--protocol cross-dataset`
    alone); None: no cross-dataset evaluation asked for."""
    if not values and not cross_dataset:
        return None
    specs = []
    for value in values:
        name, _, path = value.partition("=")
        if not name or (value.count("=") and not path):
            raise FerbenchError(f"--target: expected DATASET or DATASET=PATH, got '{value}'", exit_code=2)
        specs.append(TargetSpec(name.strip(), Path(path).expanduser().resolve() if path else None))
    return specs


def check_targets(cfg: Config, paths: Paths, specs: list[TargetSpec] | None) -> None:
    """Before any training: every target is registered and its folder exists."""
    for spec in specs or []:
        dataset = cfg.dataset(spec.dataset)
        folder = spec.path or paths.data_root / dataset.name
        if not folder.is_dir():
            raise FerbenchError(f"--target {spec.dataset}: {folder} is not a folder (give --target {spec.dataset}=PATH)",
                                exit_code=2)


def default_split(dataset) -> str:
    return "all" if dataset.protocol in WHOLE_TARGET_PROTOCOLS else "test"


def targets_for(cfg: Config, paths: Paths, source: str, specs: list[TargetSpec]) -> list[TargetSpec]:
    """The targets of one source: those named (never the source itself), or every other dataset of the same
    modality present under the data root."""
    if specs:
        for spec in specs:
            cfg.dataset(spec.dataset)
        return [s for s in specs if s.dataset != source]
    video = cfg.dataset(source).video
    return [TargetSpec(name) for name, d in sorted(cfg.datasets.items())
            if name != source and d.video == video and (paths.data_root / name).is_dir()]


def _requests(cfg: Config, paths: Paths, jobs: list, specs: list[TargetSpec]) -> dict[str, list[dict]]:
    by_model: dict[str, list[dict]] = {}
    for job in jobs:
        if not (job.run_dir / "model.safetensors").is_file():
            continue
        for target in targets_for(cfg, paths, job.spec.dataset, specs):
            dataset = cfg.dataset(target.dataset)
            by_model.setdefault(job.spec.model, []).append(dict(
                run_id=job.spec.run_id, dataset=target.dataset, root=str(target.path) if target.path else None,
                split=default_split(dataset),
            ))
    return by_model


def evaluate_targets(cfg: Config, paths: Paths, jobs: list, specs: list[TargetSpec], device: str, console: Console,
                     overwrite: bool = False) -> int:
    """Score every complete run of `jobs` on its targets; return how many evaluations failed."""
    by_model = _requests(cfg, paths, jobs, specs)
    total = sum(len(v) for v in by_model.values())
    if not total:
        console.print("cross-dataset: no complete run with a saved model, or no target; nothing to evaluate.")
        return 0
    failures = 0
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("cross-dataset targets", total=total, status="")
        for model, requests in by_model.items():
            job = dict(config_path=str(Path(cfg.source).resolve()), results=str(paths.results), data_root=str(paths.data_root),
                       vendor=str(paths.vendor), weights=str(paths.weights), device=device, overwrite=overwrite,
                       requests=requests)
            for event in _run_batch(job):
                if event.get("error"):
                    failures += 1
                    console.print(f"[red]failed[/red] {model} run {event['run_id']} on {event['dataset']}: {event['error']}",
                                  highlight=False, soft_wrap=True)
                else:
                    progress.update(task, status=f"{model} → {event['dataset']}: accuracy {event['accuracy']:.4f}")
                progress.advance(task)
    console.print(f"cross-dataset: {total - failures} of {total} target evaluation(s) stored under "
                  f"{paths.results / 'evaluations'}; `ferbench report` shows the source × target table.", highlight=False)
    if failures:
        raise FerbenchError(f"{failures} cross-dataset evaluation(s) failed (lines above)")
    return failures


def _run_batch(job: dict):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
    try:  # one pipe for both streams, so a chatty stderr can never block the worker
        proc = subprocess.Popen([sys.executable, "-m", "harness.evaluate.batch", handle.name], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        other: list[str] = []
        for line in proc.stdout:
            if line.startswith(EVENT):
                yield json.loads(line[len(EVENT):])
            elif line.strip():
                other = (other + [line.strip()])[-20:]
        if proc.wait() != 0:
            raise FerbenchError(f"cross-dataset evaluation worker failed: {other[-1] if other else proc.returncode}")
    finally:
        os.unlink(handle.name)
