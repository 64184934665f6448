"""Is a model's gap to the best of its row real? A paired test over runs on the same splits.

Two runs are paired when they share the split file, the fold and the seed (`aggregate.PAIR`): the same
train/validation/test samples and the same seed, so the difference is the models' alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.report.aggregate import CELL, PAIR, current

TESTS = {
    "ttest": "paired t-test, scipy.stats.ttest_rel",
    "wilcoxon": "Wilcoxon signed-rank test, scipy.stats.wilcoxon (exact for small samples; needs 6 pairs to reach p < 0.05)",
}
MIN_PAIRS = 2


@dataclass(frozen=True)
class Comparison:
    """The best cell of a row against one other: paired runs, mean difference (best − other), p-value."""

    best: str
    pairs: int
    difference: float
    p: float

    def significant(self, alpha: float) -> bool:
        return self.pairs >= MIN_PAIRS and not math.isnan(self.p) and self.p < alpha

    @property
    def tested(self) -> bool:
        return self.pairs >= MIN_PAIRS and not math.isnan(self.p)


def paired_p(a: np.ndarray, b: np.ndarray, test: str = "ttest") -> float:
    """Two-sided p-value of `a` vs `b` (paired); NaN below two pairs.

    Identical differences have no spread: p = 1 when they are all zero, 0 otherwise (t would be infinite).
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < MIN_PAIRS:
        return math.nan
    diff = a - b
    if np.all(diff == 0):
        return 1.0
    if test == "wilcoxon":
        return float(stats.wilcoxon(a, b, alternative="two-sided").pvalue)
    if np.allclose(diff, diff[0], rtol=0, atol=1e-12):
        return 0.0
    return float(stats.ttest_rel(a, b).pvalue)


def pair_up(best: pd.DataFrame, other: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Runs of two cells matched on (split file, fold, seed); columns `best` and `other`."""
    left = best[[*PAIR, metric]].rename(columns={metric: "best"})
    right = other[[*PAIR, metric]].rename(columns={metric: "other"})
    return left.merge(right, on=PAIR, how="inner")


def compare(runs: pd.DataFrame, summary: pd.DataFrame, metric: str, test: str = "ttest") -> dict[tuple, Comparison]:
    """For every row (protocol, dataset) with a best complete cell, compare it with each other cell.

    Returns {(protocol, dataset, model): Comparison} for the non-best cells.
    """
    runs, _ = current(runs)
    by_cell = {key: group for key, group in runs.groupby(CELL)}
    out = {}
    for (protocol, dataset), row in summary.groupby(["protocol", "dataset"], sort=True):
        best = best_model(row, metric)
        if best is None:
            continue
        best_runs = by_cell[(protocol, dataset, best)]
        for model in row["model"]:
            if model == best:
                continue
            pairs = pair_up(best_runs, by_cell[(protocol, dataset, model)], metric)
            p = paired_p(pairs["best"].to_numpy(), pairs["other"].to_numpy(), test)
            difference = float((pairs["best"] - pairs["other"]).mean()) if len(pairs) else math.nan
            out[(protocol, dataset, model)] = Comparison(best=best, pairs=len(pairs), difference=difference, p=p)
    return out


def best_model(row: pd.DataFrame, metric: str) -> str | None:
    """The model with the highest mean among the row's complete cells (the first, on a tie); a model that reads
    the test labels (CLIVP-FER's label caption) is never the best."""
    complete = row[row["complete"] & row[f"{metric}_mean"].notna()]
    if "test_label_input" in complete:
        complete = complete[~complete["test_label_input"].astype(bool)]
    if complete.empty:
        return None
    return complete.loc[complete[f"{metric}_mean"].idxmax(), "model"]
