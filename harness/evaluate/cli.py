"""`ferbench evaluate`: resolve what is scored and on what, run the engine, print the record's summary."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.config import Config
from harness.errors import FerbenchError
from harness.evaluate.engine import find_run
from harness.files import read_json
from harness.paths import Paths


def evaluate_command(cfg: Config, paths: Paths, out: Console, err: Console, *, model, dataset, run_id, checkpoint,
                     trained_on, fmt, split, protocol, fold, dataset_dir, aligned, device, overwrite) -> dict:
    from harness.align.placement import run_source
    from harness.evaluate.engine import Target, checkpoint_weights, evaluate, run_weights

    if (run_id is None) == (checkpoint is None):
        raise FerbenchError("give exactly one of --run RUN_ID and --checkpoint FILE", exit_code=2)
    if device not in ("cpu", "cuda", "auto"):
        raise FerbenchError(f"--device: expected cpu, cuda or auto, got '{device}'", exit_code=2)
    cfg.dataset(dataset)
    if run_id is not None:
        weights, _ = run_weights(paths.results, run_id)
        if model is not None and model != weights.model:
            raise FerbenchError(f"--model {model}: run {run_id} trained '{weights.model}'", exit_code=2)
    else:
        if model is None:
            raise FerbenchError("--checkpoint needs --model", exit_code=2)
        cfg.model(model)
        weights = checkpoint_weights(cfg, model, checkpoint, trained_on or _default_trained_on(cfg, model, dataset), fmt)
    aligned_dir = run_source(paths.data_root, dataset, aligned, dataset_dir)[1] if aligned else None
    if weights.kind == "run" and dataset == weights.trained_on:  # by default, the very images the run read
        env = read_json(find_run(paths.results, run_id) / "env.json")
        if aligned_dir is None and env.get("aligned_dir"):
            aligned_dir = Path(env["aligned_dir"])
        if dataset_dir is None and env.get("dataset_root"):
            dataset_dir = Path(env["dataset_root"])
    target = Target(dataset=dataset, root=dataset_dir, aligned=aligned_dir, split=split, protocol=protocol, fold=fold)
    with err.status(f"scoring {weights.model} on {dataset}"):
        record, fresh = evaluate(cfg, paths, weights, target, device, overwrite)
    table = Table("metric", "value", title=f"{weights.model} on {dataset} ({record['samples']} samples, split {split})")
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        table.add_row(key, f"{record[key]:.4f}")
    out.print(table)
    out.print(f"classes: {record['class_mapping']}", markup=False, highlight=False, soft_wrap=True)
    for name, count in record["excluded"].items():
        out.print(f"not scored: {count} sample(s) of {name}", markup=False, highlight=False)
    if record.get("note"):
        out.print(f"note on this checkpoint: {record['note']}", markup=False, highlight=False, soft_wrap=True)
    where = paths.results / "evaluations" / dataset / record["id"]
    out.print(f"{'stored' if fresh else 'already stored'}: {where}", markup=False, highlight=False, soft_wrap=True)
    return record


def _default_trained_on(cfg: Config, model: str, dataset: str) -> str | None:
    """The evaluated dataset when a checkpoint kind is declared for it, else whichever single one is declared."""
    declared = {c.trained_on for c in cfg.checkpoints if c.model == model}
    return dataset if dataset in declared else (next(iter(declared)) if len(declared) == 1 else None)
