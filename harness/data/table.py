"""A dataset as one pandas table, whatever its layout on disk.

Columns: `path` (relative to the dataset root, POSIX), `label` (canonical class name),
`native_label` (as the release encodes it), `subject` (or None) and `split` (official split or None).
The manifest hash identifies exactly which files and labels a run saw.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import pandas as pd

from harness.config import Dataset
from harness.data.loaders import folders
from harness.errors import FerbenchError

COLUMNS = ["path", "label", "native_label", "subject", "split"]

LOADERS: dict[str, Callable[[Path, Dataset], pd.DataFrame]] = {
    "split-folders": folders.load_split_folders,
    "class-folders": folders.load_class_folders,
}


def load_table(root: Path, dataset: Dataset) -> pd.DataFrame:
    if not root.is_dir():
        raise FerbenchError(f"{root}: dataset '{dataset.name}' not found (give --dataset-dir or --data-root)")
    loader = LOADERS.get(dataset.layout)
    if loader is None:
        raise FerbenchError(f"datasets.{dataset.name}.layout: unknown layout '{dataset.layout}'", exit_code=2)
    table = loader(root, dataset)
    if table.empty:
        raise FerbenchError(f"{root}: no labelled images found for dataset '{dataset.name}'")
    return table[COLUMNS].reset_index(drop=True)


def manifest_hash(root: Path, table: pd.DataFrame) -> str:
    """sha256 over (path, label, file size) of every sample, in table order."""
    digest = hashlib.sha256()
    for path, label in zip(table["path"], table["label"]):
        digest.update(f"{path}\t{label}\t{(root / path).stat().st_size}\n".encode())
    return digest.hexdigest()
