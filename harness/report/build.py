"""Runs → the report's content, independent of the output format: tables of cells with their marks,
paper and reference comparisons per protocol, the provenance footer, and the cells to draw."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

import harness
from harness.config import Published, Reference
from harness.report import metrics as metric_names
from harness.report.aggregate import CELL, current, pooled, protocol_key, summarise
from harness.report.metrics import DEFAULT_METRICS, POOLED
from harness.report.provenance import missing_cells, provenance
from harness.report.published import PaperRow, ReferenceTable, paper_rows, reference_tables
from harness.report.significance import TESTS, best_model, compare


PROTOCOL_NOTES = {
    "crossval-compat": (
        "crossval-compat pools the official train and test data and draws ten overlapping random test sets, "
        "as FER-crossval does: compare these numbers only with that reference, never with papers or other protocols."
    ),
}


@dataclass(frozen=True)
class Options:
    metrics: tuple[str, ...] = DEFAULT_METRICS
    ci: bool = False
    test: str = "ttest"
    alpha: float = 0.05


@dataclass(frozen=True)
class Cell:
    """One table cell. `mark`: `ns` (not significantly different from the row's best), `untested` (too few
    paired runs), or empty (the best, significantly worse than it, or a row without a best)."""

    mean: float
    std: float
    n: int
    requested: int
    complete: bool
    best: bool = False
    mark: str = ""
    ci: float = math.nan
    p: float = math.nan
    folds: int = 0
    """Folds present, of `fold_count`, in a fold-protocol cell (0 elsewhere): fewer is marked `(3/10 folds)`."""
    fold_count: int = 0
    runs: int = 0
    runs_requested: int = 0
    predictions: int = 0
    """Test predictions pooled per seed (pooled accuracy only)."""


@dataclass(frozen=True)
class Table:
    metric: str
    title: str
    video: bool
    models: list[str]
    rows: list[tuple[str, list[Cell | None]]]


FOLD_NOTE = (
    "Every fold is a test set: a cell gives the mean ± sample std over folds (each fold the mean of its seeds); "
    "(k/N folds) marks a cell missing folds, never bold. Pooled accuracy: the accuracy over all test "
    "predictions of one seed's folds together (a sample tested twice counts twice), mean ± std over seeds, "
    "with the number of test predictions pooled."
)


@dataclass
class Section:
    protocol: str
    tables: list[Table]
    papers: list[PaperRow]
    references: list[ReferenceTable]
    label_input: tuple[str, ...] = ()
    """Columns whose model reads the test labels as input (benchmark.toml `test_label_input`)."""
    folded: bool = False
    """The section holds cells of a fold protocol (more than one fold)."""

    @property
    def note(self) -> str:
        leak = ""
        if self.label_input:
            names = ", ".join(self.label_input)
            leak = (f"{names} {'takes' if len(self.label_input) == 1 else 'take'} each test sample's TRUE LABEL as "
                    "input (CLIVP-FER's published mode 1: the true class's description is the caption, at test time "
                    "too), so these numbers do not measure recognition from the image and are never ranked best; "
                    "compare with the same model's image-only column.")
        fold = FOLD_NOTE if self.folded else ""
        return " ".join(part for part in (fold, PROTOCOL_NOTES.get(self.protocol, ""), leak) if part)


@dataclass
class Report:
    sections: list[Section]
    provenance: dict
    missing: list[str]
    unfinished: int
    options: Options
    runs: pd.DataFrame = field(repr=False)
    summary: pd.DataFrame = field(repr=False)
    version: str = harness.__version__
    unreadable: list[str] = field(default_factory=list)
    """`unreadable: PATH: reason` per complete run whose files failed validation (left out of every table)."""
    cost: list[dict] = field(default_factory=list)
    """`ferbench report --cost`: harness.report.cost rows."""

    @property
    def test_name(self) -> str:
        return TESTS[self.options.test]

    def cells(self):
        """(protocol, dataset, model, runs) for every cell, in report order: protocol, dataset, model."""
        groups = dict(iter(self.runs.groupby(CELL, sort=True)))
        for key in sorted(groups, key=lambda k: (protocol_key(k[0]), k[1], k[2])):
            yield (*key, groups[key])


def _mark(comparison, alpha: float) -> str:
    if comparison is None:
        return ""
    if not comparison.tested:
        return "untested"
    return "" if comparison.significant(alpha) else "ns"


def _table(cells: pd.DataFrame, metric: str, video: bool, comparisons: dict, options: Options) -> Table:
    models = sorted(cells["model"].unique())
    rows = []
    for dataset, group in cells.groupby("dataset", sort=True):
        by_model = {r.model: r for r in group.itertuples()}
        best = best_model(group, metric)
        row = []
        for model in models:
            r = by_model.get(model)
            if r is None:
                row.append(None)
                continue
            comparison = comparisons.get((r.protocol, dataset, model))
            is_pooled = metric == POOLED
            row.append(
                Cell(
                    mean=getattr(r, f"{metric}_mean"), std=getattr(r, f"{metric}_std"),
                    n=r.seeds if is_pooled else r.n, requested=r.repeats if is_pooled else r.requested,
                    complete=bool(r.complete), best=model == best, mark=_mark(comparison, options.alpha),
                    ci=getattr(r, f"{metric}_ci") if options.ci else math.nan,
                    p=comparison.p if comparison else math.nan,
                    folds=int(r.folds) if r.folded else 0, fold_count=int(r.fold_count) if r.folded else 0,
                    runs=int(r.runs), runs_requested=int(r.runs_requested),
                    predictions=int(r.predictions) if is_pooled and r.predictions == r.predictions else 0,
                )
            )
        rows.append((dataset, row))
    return Table(metric, metric_names.title(metric, video), video, models, rows)


def build(
    runs: pd.DataFrame,
    options: Options = Options(),
    published: tuple[Published, ...] = (),
    references: dict[str, Reference] | None = None,
    unfinished: int = 0,
    unreadable: tuple = (),
    models: dict | None = None,
) -> Report:
    """Everything a report shows, from the (already filtered) runs; `models` (the registry's model records)
    give the published-number notes each model's initialisation and reproducibility flags."""
    summary = summarise(runs)
    shown, _ = current(runs)
    comparisons = {
        m: compare(pooled(runs) if m == POOLED else runs, summary, m, options.test) for m in options.metrics
    }
    sections, grids = [], []
    for protocol in sorted(summary["protocol"].unique(), key=protocol_key):
        cells = summary[summary["protocol"] == protocol]
        tables = []
        for metric in options.metrics:
            if metric == POOLED and not cells["folded"].any() and "accuracy" in options.metrics:
                continue  # on single splits the pooled accuracy is the accuracy table again
            for video in (False, True):
                part = cells[cells["video"] == video]
                if not part.empty:
                    table = _table(part, metric, video, comparisons[metric], options)
                    tables.append(table)
                    grids.append((protocol, table))
        sections.append(
            Section(
                protocol=protocol,
                tables=tables,
                papers=paper_rows(cells, published, options.metrics, models),
                references=reference_tables(cells, references or {}, options.metrics),
                label_input=tuple(sorted(cells.loc[cells["test_label_input"].astype(bool), "model"].unique()))
                if "test_label_input" in cells else (),
                folded=bool(cells["folded"].any()),
            )
        )
    footer = provenance(shown, summary, TESTS[options.test], options.alpha, options.ci)
    return Report(
        sections=sections, provenance=footer, missing=missing_cells(summary, grids), unfinished=unfinished,
        options=options, runs=shown, summary=summary, unreadable=[bad.line for bad in unreadable],
    )
