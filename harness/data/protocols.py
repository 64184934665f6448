"""Protocols turn a dataset table into train/val/test index lists, saved once and shared by every model.

Validation always comes from the training side, so model selection never sees the test set.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from harness.errors import FerbenchError
from harness.files import write_json_atomic

SPLIT_SEED = 0
"""Fixed seed of the validation slice: every repeat and every model gets the same one."""


@dataclass(frozen=True)
class Fold:
    train: list[int]
    val: list[int]
    test: list[int]


def _carve_validation(indices: np.ndarray, labels: pd.Series, fraction: float) -> tuple[list[int], list[int]]:
    if fraction <= 0:
        return sorted(indices.tolist()), []
    y = labels.iloc[indices].to_numpy()
    _, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 else None
    train, val = train_test_split(indices, test_size=fraction, random_state=SPLIT_SEED, stratify=stratify)
    return sorted(train.tolist()), sorted(val.tolist())


def official(table: pd.DataFrame, val_fraction: float) -> list[Fold]:
    """The dataset's own train/test split; validation is a stratified slice of train."""
    if table["split"].isna().all():
        raise FerbenchError("protocol 'official' needs an official split, and this dataset has none")
    train_idx = np.flatnonzero(table["split"].eq("train").to_numpy())
    test_idx = np.flatnonzero(table["split"].eq("test").to_numpy())
    official_val = np.flatnonzero(table["split"].eq("val").to_numpy())
    if len(train_idx) == 0 or len(test_idx) == 0:
        raise FerbenchError("protocol 'official': the table has no train or no test samples")
    train, val = _carve_validation(train_idx, table["label"], val_fraction)
    if len(official_val):
        val = sorted(official_val.tolist())
        train = sorted(train_idx.tolist())
    return [Fold(train=train, val=val, test=sorted(test_idx.tolist()))]


PROTOCOLS = {"official": official}


def make_folds(table: pd.DataFrame, protocol: str, val_fraction: float) -> list[Fold]:
    if protocol not in PROTOCOLS:
        raise FerbenchError(f"unknown protocol '{protocol}'; valid: {', '.join(PROTOCOLS)}", exit_code=2)
    return PROTOCOLS[protocol](table, val_fraction)


def splits_path(results_dir: Path, dataset: str, protocol: str, manifest: str, val_fraction: float) -> Path:
    return results_dir / "splits" / dataset / f"{protocol}-val{val_fraction:g}-{manifest[:16]}.json"


def saved_folds(
    table: pd.DataFrame, results_dir: Path, dataset: str, protocol: str, manifest: str, val_fraction: float
) -> tuple[Path, list[Fold]]:
    """Generate the folds once per (dataset, protocol, manifest) and reuse the saved file afterwards."""
    path = splits_path(results_dir, dataset, protocol, manifest, val_fraction)
    if path.is_file():
        saved = json.loads(path.read_text())
        return path, [Fold(**fold) for fold in saved["folds"]]
    folds = make_folds(table, protocol, val_fraction)
    write_json_atomic(
        path,
        dict(dataset=dataset, protocol=protocol, manifest=manifest, val_fraction=val_fraction,
             split_seed=SPLIT_SEED, folds=[asdict(f) for f in folds]),
    )
    return path, folds
