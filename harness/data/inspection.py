"""What `ferbench datasets` and `ferbench datasets check NAME` show.

The overview reads each registered dataset's table (labels and file listings, no pixels), so it
answers in seconds; `check` also decodes every image, because a truncated JPEG or a corrupt PNG is
otherwise found only when a run has already spent time on everything before it. Both return plain
rows; the CLI renders them.
"""

from __future__ import annotations

import re
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from harness.config import Config, Dataset
from harness.data.images import blocks, default_workers, load, map_blocks, row_boxes
from harness.data.table import scan
from harness.errors import FerbenchError

OVERVIEW_HEADER = ("dataset", "data", "samples", "per split", "per class", "problems")
KINDS_HEADER = ("problem", "count")


@dataclass(frozen=True)
class Overview:
    name: str
    root: Path
    present: bool
    samples: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)
    problems: int = 0


def _counts(column: pd.Series, order: tuple[str, ...]) -> dict[str, int]:
    """Count per value, `order` first (zeros included), then any other value; missing values count as `none`."""
    found = column.fillna("none").value_counts()
    names = [*order, *sorted(set(found.index) - set(order))]
    return {name: int(found.get(name, 0)) for name in names}


def overview(dataset: Dataset, root: Path) -> Overview:
    """Sample counts of one dataset, per official split (`none` where it has none) and per class."""
    if not root.is_dir():
        return Overview(dataset.name, root, present=False)
    table, problems = scan(root, dataset)
    splits = {name: n for name, n in _counts(table["split"], ("train", "val", "test")).items() if n}
    return Overview(
        dataset.name, root, present=True, samples=len(table), splits=splits,
        classes=_counts(table["label"], dataset.classes), problems=len(problems),
    )


def overviews(cfg: Config, data_root: Path) -> list[Overview]:
    return [overview(dataset, data_root / name) for name, dataset in sorted(cfg.datasets.items())]


def _listing(counts: dict[str, int]) -> str:
    return " · ".join(f"{name} {n}" for name, n in counts.items())


def overview_rows(items: list[Overview]) -> list[tuple[str, ...]]:
    """One row per dataset under OVERVIEW_HEADER."""
    rows = []
    for item in items:
        if not item.present:
            rows.append((item.name, f"missing ({item.root})", "—", "—", "—", "—"))
            continue
        problems = f"{item.problems} (run `ferbench datasets check {item.name}`)" if item.problems else "none"
        rows.append((item.name, "present", str(item.samples), _listing(item.splits), _listing(item.classes), problems))
    return rows


@dataclass(frozen=True)
class Problem:
    kind: str
    line: str


@dataclass(frozen=True)
class CheckReport:
    dataset: str
    root: Path
    layout: str | None
    table: pd.DataFrame
    decoded: int
    """Samples whose pixels were decoded (0 for video datasets: their frames are not read)."""
    problems: list[Problem]
    notes: list[str]
    """Samples a layout left out on purpose; informative, not problems."""

    def kinds(self) -> list[tuple[str, int]]:
        return Counter(p.kind for p in self.problems).most_common()


UNREADABLE = "unreadable image"
_LOCATION = re.compile(r"^.*?(?::\d+)?: ")
_SPECIFICS = re.compile(r"'[^']*'|\"[^\"]*\"|\([^)]*\)")


def kind_of(line: str) -> str:
    """A listing problem's kind: its first clause without the location, quoted values, parentheses or numbers.

    `labels.txt:7: label '9' out of range (expected 1–7)` → `label out of range`.
    """
    reason = _SPECIFICS.sub("", _LOCATION.sub("", line, count=1)).split(";")[0]
    return " ".join(re.sub(r"\d+", "N", reason).split()) or line


def unreadable(
    root: Path, table: pd.DataFrame, workers: int, progress: Callable[[int, int], None] | None = None
) -> list[str]:
    """Decode every sample fully (a truncated file fails only when its last bytes are read); one line per failure."""
    paths, boxes = table["path"].tolist(), row_boxes(table)

    def probe(rows: np.ndarray) -> tuple[int, list[tuple[int, str]]]:
        failures = []
        for row in rows:
            try:
                load(root, paths[row], boxes[row])
            except FerbenchError as err:
                failures.append((int(row), str(err)))
        return len(rows), failures

    failures, done = [], 0
    with closing(map_blocks(probe, blocks(np.arange(len(paths)), workers), workers)) as finished:
        for count, block_failures in finished:
            failures.extend(block_failures)
            done += count
            if progress is not None:
                progress(done, len(paths))
    return [line for _, line in sorted(failures)]


def check(
    dataset: Dataset, root: Path, workers: int | None = None, progress: Callable[[int, int], None] | None = None
) -> CheckReport:
    """Every problem `scan` finds in the labels and listings, plus every image that cannot be decoded."""
    if not root.is_dir():
        raise FerbenchError(f"{root}: dataset '{dataset.name}' not found (give --dataset-dir or --data-root)")
    table, found = scan(root, dataset)
    problems = [Problem(kind_of(line), line) for line in found]
    decoded = 0
    if not dataset.video and not table.empty:
        problems += [Problem(UNREADABLE, line) for line in unreadable(root, table, workers or default_workers(), progress)]
        decoded = len(table)
    return CheckReport(
        dataset=dataset.name, root=root, layout=table.attrs.get("layout"), table=table, decoded=decoded,
        problems=problems, notes=list(table.attrs.get("notes", [])),
    )


def kind_rows(report: CheckReport) -> list[tuple[str, str]]:
    """Problem kinds with their counts, most frequent first, under KINDS_HEADER."""
    return [(kind, str(n)) for kind, n in report.kinds()]


def split_class_rows(report: CheckReport, classes: tuple[str, ...]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """(header, rows): samples per class (rows, in the dataset's class order) and official split (columns)."""
    table = report.table
    splits = [s for s in ("train", "val", "test") if (table["split"] == s).any()]
    if table["split"].isna().any():
        splits.append("none")
    grid = pd.crosstab(table["label"], table["split"].fillna("none")).reindex(index=list(classes), columns=splits)
    grid = grid.fillna(0).astype(int)
    rows = [(name, *(str(v) for v in grid.loc[name]), str(int(grid.loc[name].sum()))) for name in classes]
    return ("class", *splits, "total"), rows
