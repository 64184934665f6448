"""Published numbers beside reproduced ones: each paper's headline figure, and the seed's repeated-run table.

Matching is by base names (`dan` matches the `dan (unified)` column and `rafdb` the `rafdb (aligned_112)` row);
every difference between the paper's setting and ours is spelt out in the row's note.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.config import Published, Reference
from harness.data.protocols import split_variant
from harness.report import metrics as metric_names


@dataclass(frozen=True)
class Ours:
    """A reproduced cell: mean, spread (sample or population std, as the table says) and repeat counts."""

    mean: float
    std: float
    n: int
    requested: int


@dataclass(frozen=True)
class PaperRow:
    model: str
    dataset: str
    metric: str
    paper: float
    ours: Ours
    note: str
    source: str

    @property
    def difference(self) -> float:
        return self.ours.mean - self.paper


@dataclass(frozen=True)
class ReferenceCell:
    ours: Ours
    mean: float
    std: float

    @property
    def difference(self) -> float:
        return self.ours.mean - self.mean


@dataclass(frozen=True)
class ReferenceTable:
    name: str
    metric: str
    title: str
    models: list[str]
    rows: list[tuple[str, list[ReferenceCell | None]]]
    reference: Reference
    excluded: tuple[str, ...] = ()
    """Cells left out because their runs drew another split variant than the reference's script did."""


def protocol_note(record: Published, cell) -> str:
    """What differs between the paper's number and ours: split, epoch selection, recipe, image set."""
    parts = []
    if record.protocol != cell.protocol:
        parts.append(f"split: paper {record.protocol}, ours {cell.protocol}")
    ours = cell.selection.replace("validation ", "validation-selected ")
    if record.selection != cell.selection:
        parts.append(f"epoch: paper {record.selection}, ours {ours}")
    if cell.recipe != "upstream":
        parts.append(f"recipe: ours {cell.recipe}")
    if cell.dataset != cell.dataset_name:
        parts.append(f"images: ours {cell.dataset.removeprefix(cell.dataset_name).strip(' ()')}")
    if not parts:
        parts.append("same split and selection")
    if record.note:
        parts.append(record.note)
    return "; ".join(parts)


def _variant_matches(protocol: str, cell) -> bool:
    """A reference cell compares only with runs on the split variant of the reference's own script."""
    expected = split_variant(protocol, cell.dataset_name, cell.model_name) if protocol == cell.protocol else None
    return expected is None or cell.split_variant == expected


def paper_rows(cells: pd.DataFrame, published: tuple[Published, ...], metrics: tuple[str, ...]) -> list[PaperRow]:
    """Rows for the cells of one protocol that have a published number in one of `metrics`."""
    rows = []
    for cell in cells.sort_values(["dataset", "model"]).itertuples():
        for record in published:
            if (record.model, record.dataset) != (cell.model_name, cell.dataset_name) or record.measure not in metrics:
                continue
            m = record.measure
            ours = Ours(getattr(cell, f"{m}_mean"), getattr(cell, f"{m}_std"), cell.n, cell.requested)
            rows.append(
                PaperRow(
                    model=cell.model, dataset=cell.dataset, metric=metric_names.label(m, cell.video),
                    paper=record.value, ours=ours, note=protocol_note(record, cell), source=record.source,
                )
            )
    return rows


def reference_tables(cells: pd.DataFrame, references: dict[str, Reference], metrics: tuple[str, ...]) -> list[ReferenceTable]:
    """Cell-by-cell tables against each reference recorded for this protocol; ours with the reference's std."""
    tables = []
    if cells.empty:
        return tables
    protocol = cells["protocol"].iloc[0]
    for name, reference in sorted(references.items()):
        if reference.protocol != protocol:
            continue
        ddof_column = "pstd" if reference.std == "population" else "std"
        for metric in metrics:
            table = reference.table(metric)
            listed = cells[[(r.dataset_name in table and r.model_name in table[r.dataset_name]) for r in cells.itertuples()]]
            same = [_variant_matches(reference.protocol, r) for r in listed.itertuples()]
            mine = listed[same]
            excluded = tuple(
                f"{r.model} on {r.dataset} (ours {r.split_variant or 'unrecorded'}, "
                f"reference {split_variant(reference.protocol, r.dataset_name, r.model_name)})"
                for r, ok in zip(listed.itertuples(), same) if not ok
            )
            if mine.empty:
                continue
            models = sorted(mine["model"].unique())
            rows = []
            for dataset, group in mine.groupby("dataset", sort=True):
                by_model = {r.model: r for r in group.itertuples()}
                row = []
                for model in models:
                    cell = by_model.get(model)
                    if cell is None:
                        row.append(None)
                        continue
                    ref_mean, ref_std = table[cell.dataset_name][cell.model_name]
                    ours = Ours(getattr(cell, f"{metric}_mean"), getattr(cell, f"{metric}_{ddof_column}"), cell.n, cell.requested)
                    row.append(ReferenceCell(ours=ours, mean=ref_mean, std=ref_std))
                rows.append((dataset, row))
            title = f"{metric_names.title(metric, False)} against {name}"
            tables.append(ReferenceTable(name, metric, title, models, rows, reference, excluded))
    return tables
