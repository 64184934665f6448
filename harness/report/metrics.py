"""Metric names: what the store records, what `--metric` accepts, and what a table calls it.

Video papers name accuracy WAR (weighted average recall) and balanced accuracy UAR (unweighted average recall);
a video dataset's tables and figures use those names.
"""

from __future__ import annotations

from harness.config import REPORT_METRICS, VIDEO_METRICS
from harness.errors import FerbenchError

METRICS = REPORT_METRICS
POOLED = "pooled_accuracy"
"""A cell-level metric (harness.report.aggregate.pooled): not stored per run, computed from the runs' counts."""
CHOICES = (*METRICS, POOLED)
DEFAULT_METRICS = ("accuracy", "balanced_accuracy", POOLED)
"""The seed's two tables, and the pooled accuracy where a section holds fold-protocol cells."""

IMAGE_LABELS = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "macro_f1": "Macro F1",
                POOLED: "Pooled accuracy"}
VIDEO_LABELS = {"accuracy": "WAR", "balanced_accuracy": "UAR", "macro_f1": "Macro F1", POOLED: "Pooled WAR"}
VIDEO_TITLES = {"accuracy": "WAR (accuracy)", "balanced_accuracy": "UAR (balanced accuracy)", "macro_f1": "Macro F1",
                POOLED: "Pooled WAR (accuracy over all folds' test predictions)"}
IMAGE_TITLES = {**IMAGE_LABELS, POOLED: "Pooled accuracy (over all folds' test predictions)"}


def label(metric: str, video: bool) -> str:
    """Short name for a column or axis: `Accuracy`, or `WAR` on a video dataset."""
    return (VIDEO_LABELS if video else IMAGE_LABELS)[metric]


def title(metric: str, video: bool) -> str:
    """A table's heading."""
    return VIDEO_TITLES[metric] if video else IMAGE_TITLES[metric]


def parse_metrics(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """`--metric` values (repeatable or comma-separated) → stored metric names, in a fixed order."""
    names = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if not names:
        return DEFAULT_METRICS
    chosen = set()
    for name in names:
        stored = VIDEO_METRICS.get(name.lower(), name.lower())
        if stored not in CHOICES:
            valid = ", ".join((*CHOICES, *VIDEO_METRICS))
            raise FerbenchError(f"--metric: unknown metric '{name}'; valid: {valid}", exit_code=2)
        chosen.add(stored)
    return tuple(m for m in CHOICES if m in chosen)
