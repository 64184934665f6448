"""Collect complete runs into a tidy frame and summarise each (protocol, dataset, model) cell."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.errors import FerbenchError
from harness.files import read_json
from harness.run.store import complete_runs

METRICS = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy"}


def load_runs(results_dir: Path) -> pd.DataFrame:
    rows = []
    for folder in complete_runs(results_dir):
        config, result = read_json(folder / "config.json"), read_json(folder / "result.json")
        rows.append(
            dict(
                protocol=config["protocol"],
                dataset=config["dataset"],
                model=config["model"],
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


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std (ddof=1) and counts per cell; `requested` is the largest repeat count asked for."""
    grouped = runs.groupby(["protocol", "dataset", "model"], sort=True)
    summary = grouped.agg(
        n=("run_id", "count"),
        requested=("requested", "max"),
        pretrained=("pretrained", "all"),
        **{f"{m}_mean": (m, "mean") for m in METRICS},
        **{f"{m}_std": (m, lambda s: s.std(ddof=1)) for m in METRICS},
    )
    summary["complete"] = summary["n"] >= summary["requested"]
    return summary.reset_index()
