"""Where a run's images come from: the dataset as released, or the copy `ferbench align` made of it.

Planning and the worker both resolve the source here, so they agree on the table, its root and its hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.align.manifest import aligned_table, manifest_hash as aligned_hash
from harness.config import Dataset
from harness.data.table import load_table, manifest_hash


@dataclass(frozen=True)
class Source:
    root: Path
    """Folder the table's paths are relative to: the dataset, or the aligned copy."""
    table: pd.DataFrame
    manifest: str
    aligned: str | None
    """sha256 of the aligned set (its settings and every crop), or None for the raw dataset."""


def resolve(dataset: Dataset, raw_root: Path, aligned: Path | None) -> Source:
    table = load_table(raw_root, dataset)
    if aligned is None:
        return Source(raw_root, table, manifest_hash(raw_root, table), None)
    table = aligned_table(table, aligned)
    return Source(aligned, table, manifest_hash(aligned, table), aligned_hash(aligned))
