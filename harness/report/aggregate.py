"""Collect complete runs into a tidy frame and summarise each (protocol, dataset, model) cell."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.errors import FerbenchError
from harness.files import read_json
from harness.run.store import MARKER, complete_runs

METRICS = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy"}


def _dataset_label(config: dict) -> str:
    """Runs on an aligned copy are a row of their own, e.g. `ckplus (aligned_112)`."""
    aligned = config.get("aligned")
    return f"{config['dataset']} ({aligned.rsplit('-', 1)[0]})" if aligned else config["dataset"]


def _model_label(config: dict) -> str:
    """Runs under a shared recipe (`--recipe unified`) are a column of their own, e.g. `dan (unified)`."""
    recipe = config["recipe"].get("name", "upstream")
    return config["model"] if recipe == "upstream" else f"{config['model']} ({recipe})"


def load_runs(results_dir: Path) -> pd.DataFrame:
    rows = []
    for folder in complete_runs(results_dir):
        config, result = read_json(folder / "config.json"), read_json(folder / "result.json")
        rows.append(
            dict(
                splits=config.get("splits", ""),
                finished=read_json(folder / MARKER).get("finished", ""),
                protocol=config["protocol"],
                dataset=_dataset_label(config),
                model=_model_label(config),
                run_id=config["run_id"],
                repeat=config["repeat"],
                seed=config["seed"],
                requested=config["repeats"],
                pretrained=config["pretrained"],
                epochs=config["recipe"]["epochs"],
                selected_epoch=result["selected_epoch"],
                **{metric: result[metric] for metric in (*METRICS, "macro_f1")},
            )
        )
    if not rows:
        raise FerbenchError(f"{results_dir}: no complete runs found; run `ferbench run` or `ferbench demo` first")
    return pd.DataFrame(rows)


CELL = ["protocol", "dataset", "model"]


def current(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split runs into those on each cell's newest data/splits and the superseded rest.

    A changed dataset (new manifest) or fold setting gives new run ids; averaging old and new runs
    together would mix two experiments, so only the splits of the most recently finished run count.
    """
    latest = runs.sort_values("finished").groupby(CELL)["splits"].transform("last").reindex(runs.index)
    keep = runs["splits"] == latest
    return runs[keep], runs[~keep]


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std (ddof=1) and counts per cell; `requested` is the largest repeat count asked for."""
    runs, superseded = current(runs)
    grouped = runs.groupby(CELL, sort=True)
    summary = grouped.agg(
        n=("run_id", "count"),
        requested=("requested", "max"),
        pretrained=("pretrained", "all"),
        **{f"{m}_mean": (m, "mean") for m in METRICS},
        **{f"{m}_std": (m, lambda s: s.std(ddof=1)) for m in METRICS},
    )
    summary["complete"] = summary["n"] >= summary["requested"]
    summary["superseded"] = superseded.groupby(CELL).size().reindex(summary.index, fill_value=0)
    return summary.reset_index()
