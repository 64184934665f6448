"""Render summaries with Jinja: markdown tables like the FER-crossval seed's, or tidy CSV."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

import harness
from harness.report.aggregate import METRICS

TEMPLATES = Path(__file__).resolve().parent / "templates"


def format_cell(mean: float, std: float, n: int, requested: int) -> str:
    """`0.960 ± 0.013`; `(7/10)` when repeats are missing; no ± when one run cannot give a std."""
    text = f"{mean:.3f}" if n < 2 or math.isnan(std) else f"{mean:.3f} ± {std:.3f}"
    if n < requested:
        text += f" ({n}/{requested})"
    elif n < 2:
        text += " (n=1)"
    return text


def _table(cells: pd.DataFrame, metric: str) -> dict:
    models = sorted(cells["model"].unique())
    rows = []
    for dataset, group in cells.groupby("dataset", sort=True):
        complete = group[group["complete"]]
        best = complete[f"{metric}_mean"].max() if not complete.empty else None
        by_model = {row.model: row for row in group.itertuples()}
        row = []
        for model in models:
            cell = by_model.get(model)
            if cell is None:
                row.append("–")
                continue
            mean = getattr(cell, f"{metric}_mean")
            text = format_cell(mean, getattr(cell, f"{metric}_std"), cell.n, cell.requested)
            row.append(f"**{text}**" if cell.complete and best is not None and mean == best else text)
        rows.append((dataset, row))
    return dict(title=METRICS[metric], models=models, rows=rows)


def render_markdown(summary: pd.DataFrame) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True)
    sections = []
    for protocol, cells in summary.groupby("protocol", sort=True):
        sections.append(dict(protocol=protocol, tables=[_table(cells, metric) for metric in METRICS]))
    random_init = sorted(summary.loc[~summary["pretrained"], "model"].unique())
    stale = summary[summary["superseded"] > 0]
    superseded = [f"{r.model} on {r.dataset} ({r.protocol}): {r.superseded}" for r in stale.itertuples()]
    return env.get_template("report.md.j2").render(
        sections=sections, version=harness.__version__, random_init=random_init, superseded=superseded
    )


def render_csv(summary: pd.DataFrame) -> str:
    return summary.to_csv(index=False, float_format="%.6f")
