"""Published numbers beside reproduced ones: each paper's headline figure, and the seed's repeated-run table.

Matching is by base names (`dan` matches the `dan (unified)` column and `rafdb` the `rafdb (aligned_112)` row);
every difference between the paper's setting and ours is spelt out in the row's note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from harness.config import Model, Published, Reference
from harness.data.protocols import split_variant
from harness.report import metrics as metric_names


@dataclass(frozen=True)
class Ours:
    """A reproduced cell: mean, spread (sample or population std, as the table says) and repeat counts."""

    mean: float
    std: float
    n: int
    requested: int
    folded: bool = False
    """`n` and `requested` count folds (a fold-protocol cell), not repeats."""


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


def _percent(share: float) -> str:
    return f"{100 * share:.0f} %"


def _initialisation(record: Published, model: Model | None) -> str:
    if record.initialisation:
        return record.initialisation
    if model is None:
        return ""
    return "pretrained" if model.pretrained else "random init"


def protocol_note(record: Published, cell, model: Model | None = None) -> str:
    """Every difference between the paper's number and ours: split, training share, epoch selection, recipe,
    images, initialisation; then what of the paper's setting cannot be reproduced (the model's flags)."""
    parts, same = [], []
    if record.protocol != cell.protocol:
        parts.append(f"split: paper {record.protocol}, ours {cell.protocol}")
    else:
        same.append("split")
    share = getattr(cell, "training_share", math.nan)
    if not math.isnan(share):
        if abs(share - record.training_share) > 0.005:
            held = f" ({_percent(1 - share)} held out for epoch selection)" if share < 1 else ""
            parts.append(f"training share: paper {_percent(record.training_share)} of the training split, ours {_percent(share)}{held}")
        else:
            same.append("training share")
    ours = cell.selection.replace("validation ", "validation-selected ")
    if record.selection != cell.selection:
        parts.append(f"epoch: paper {record.selection}, ours {ours}")
    else:
        same.append("selection")
    if cell.recipe != "upstream":
        parts.append(f"recipe: ours {cell.recipe}")
    aligned = cell.dataset.removeprefix(cell.dataset_name).strip(" ()") if cell.dataset != cell.dataset_name else ""
    if record.images:
        parts.append(f"images: paper {record.images}, ours {aligned or 'raw (not aligned)'}")
    elif aligned:
        parts.append(f"images: ours {aligned}")
    theirs = _initialisation(record, model)
    mine = "pretrained" if cell.pretrained else "random init"
    if theirs and (theirs == "random init") != (mine == "random init"):
        parts.append(f"initialisation: paper {theirs}, ours {mine}")
    if not parts:
        parts.append(f"same {', '.join(same[:-1])} and {same[-1]}" if len(same) > 1 else "same split and selection")
    if record.note:
        parts.append(record.note)
    for flag in model.not_reproducible if model else ():
        parts.append(f"not reproducible: {flag.what} ({flag.why})")
    return "; ".join(parts)


def _variant_matches(protocol: str, cell) -> bool:
    """A reference cell compares only with runs on the split variant of the reference's own script."""
    expected = split_variant(protocol, cell.dataset_name, cell.model_name) if protocol == cell.protocol else None
    return expected is None or cell.split_variant == expected


def paper_rows(
    cells: pd.DataFrame, published: tuple[Published, ...], metrics: tuple[str, ...], models: dict[str, Model] | None = None
) -> list[PaperRow]:
    """Rows for the cells of one protocol that have a published number in one of `metrics`."""
    rows = []
    for cell in cells.sort_values(["dataset", "model"]).itertuples():
        for record in published:
            if (record.model, record.dataset) != (cell.model_name, cell.dataset_name) or record.measure not in metrics:
                continue
            m = record.measure
            ours = Ours(getattr(cell, f"{m}_mean"), getattr(cell, f"{m}_std"), cell.n, cell.requested, bool(cell.folded))
            rows.append(
                PaperRow(
                    model=cell.model, dataset=cell.dataset, metric=metric_names.label(m, cell.video),
                    paper=record.value, ours=ours, note=protocol_note(record, cell, (models or {}).get(cell.model_name)), source=record.source,
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
