"""Protocols turn a dataset table into train/val/test index lists, saved once and shared by every model.

Validation always comes from the training side, so model selection never sees the test set. Every split is
drawn by scikit-learn with a fixed seed and the drawn indices are saved under the results folder, so every
model, every repeat and every later scikit-learn version sees the same samples for as long as the dataset's
manifest is unchanged.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import sklearn
from sklearn.model_selection import GroupKFold, ShuffleSplit, StratifiedGroupKFold, train_test_split

from harness.errors import FerbenchError
from harness.files import read_json, write_json_atomic

SPLIT_SEED = 0
"""Seed of every ferbench-drawn split: every repeat and every model gets the same folds and validation."""

CROSSVAL = dict(n_splits=10, test_size=0.2, random_state=42, val_size=0.25)
"""StevenHSKim/FER-crossval's pooled holdout: ShuffleSplit(10, 0.2, seed 42), then 25 % of train+val as
validation with `random_state` = iteration."""


@dataclass(frozen=True)
class Fold:
    train: list[int]
    val: list[int]
    test: list[int]


class _Unfit(Exception):
    """The data cannot be split this way; the message says why, starting with a verb ('needs …')."""


def _sorted(indices) -> list[int]:
    return sorted(int(i) for i in indices)


def _carve_validation(indices: np.ndarray, labels: np.ndarray, fraction: float) -> tuple[list[int], list[int]]:
    """A stratified slice of `indices`, or a plain random one when a class is too small to stratify."""
    if fraction <= 0:
        return _sorted(indices), []
    if len(indices) < 2:
        raise _Unfit(f"needs at least 2 training samples to carve a validation slice, and a fold has {len(indices)}")
    try:
        train, val = train_test_split(indices, test_size=fraction, random_state=SPLIT_SEED, stratify=labels[indices])
    except ValueError:
        train, val = train_test_split(indices, test_size=fraction, random_state=SPLIT_SEED)
    return _sorted(train), _sorted(val)


def _group_folds(labels: np.ndarray, groups: np.ndarray, k: int) -> tuple[list[np.ndarray], str]:
    """k group-disjoint test folds (positions into `labels`), stratified by label where the classes allow it."""
    positions = np.zeros((len(labels), 1))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        try:
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=SPLIT_SEED)
            tests = [test for _, test in splitter.split(positions, labels, groups)]
        except ValueError:
            tests = []
    if tests and all(len(test) for test in tests):
        return tests, "StratifiedGroupKFold"
    return [test for _, test in GroupKFold(n_splits=k).split(positions, labels, groups)], "GroupKFold"


def _carve_subjects(
    indices: np.ndarray, labels: np.ndarray, subjects: np.ndarray, fraction: float
) -> tuple[list[int], list[int], str]:
    """Validation = one of round(1/fraction) stratified subject groups of `indices`, so no subject is in both."""
    if fraction <= 0:
        return _sorted(indices), [], "none"
    n_subjects = len(np.unique(subjects[indices]))
    if n_subjects < 2:
        raise _Unfit(f"needs 2 training subjects per fold to draw validation subjects, and a fold has {n_subjects}")
    parts = min(max(2, round(1 / fraction)), n_subjects)
    tests, splitter = _group_folds(labels[indices], subjects[indices], parts)
    val = indices[tests[0]]
    return _sorted(np.setdiff1d(indices, val)), _sorted(val), splitter


def official(table: pd.DataFrame, val_fraction: float, k: int) -> tuple[list[Fold], dict]:
    """The dataset's own train/test split; validation is its official val split, else a stratified slice of train."""
    split, labels = table["split"], table["label"].to_numpy()
    train_idx = np.flatnonzero(split.eq("train").to_numpy())
    official_val = np.flatnonzero(split.eq("val").to_numpy())
    if len(official_val):
        train, val = _sorted(train_idx), _sorted(official_val)
    else:
        train, val = _carve_validation(train_idx, labels, val_fraction)
    test = _sorted(np.flatnonzero(split.eq("test").to_numpy()))
    validation = "official val split" if len(official_val) else "stratified slice of train (train_test_split)"
    procedure = dict(validation=validation, val_fraction=val_fraction, val_seed=SPLIT_SEED)
    return [Fold(train=train, val=val, test=test)], procedure


def subject_kfold(table: pd.DataFrame, val_fraction: float, k: int) -> tuple[list[Fold], dict]:
    """k subject-disjoint folds; validation subjects come from the training folds."""
    labels, subjects = table["label"].to_numpy(), table["subject"].astype(str).to_numpy()
    tests, fold_splitter = _group_folds(labels, subjects, k)
    everything = np.arange(len(table))
    folds, val_splitters = [], set()
    for test in tests:
        train, val, val_splitter = _carve_subjects(np.setdiff1d(everything, test), labels, subjects, val_fraction)
        folds.append(Fold(train=train, val=val, test=_sorted(test)))
        val_splitters.add(val_splitter)
    procedure = dict(
        k=k, fold_splitter=fold_splitter, fold_seed=SPLIT_SEED, val_fraction=val_fraction,
        val_subject_parts=max(2, round(1 / val_fraction)) if val_fraction > 0 else 0,
        val_splitter="/".join(sorted(val_splitters)), val_seed=SPLIT_SEED,
    )
    return folds, procedure


def official_folds(table: pd.DataFrame, val_fraction: float, k: int) -> tuple[list[Fold], dict]:
    """Fold i tests the samples of the i-th official fold; validation is a stratified slice of the other folds."""
    fold, labels = table["fold"].astype("Int64").to_numpy(dtype=int), table["label"].to_numpy()
    values = sorted({int(value) for value in fold})
    folds = []
    for value in values:
        train, val = _carve_validation(np.flatnonzero(fold != value), labels, val_fraction)
        folds.append(Fold(train=train, val=val, test=_sorted(np.flatnonzero(fold == value))))
    return folds, dict(fold_values=values, val_fraction=val_fraction, val_seed=SPLIT_SEED)


def crossval_compat(table: pd.DataFrame, val_fraction: float, k: int) -> tuple[list[Fold], dict]:
    """FER-crossval's procedure, reproduced index for index: pooled, unstratified, overlapping test sets."""
    splitter = ShuffleSplit(
        n_splits=CROSSVAL["n_splits"], test_size=CROSSVAL["test_size"], random_state=CROSSVAL["random_state"]
    )
    folds = []
    for iteration, (train_val, test) in enumerate(splitter.split(np.zeros((len(table), 1)))):
        train, val = train_test_split(train_val, test_size=CROSSVAL["val_size"], random_state=iteration)
        folds.append(Fold(train=_sorted(train), val=_sorted(val), test=_sorted(test)))
    return folds, dict(CROSSVAL, val_random_state="iteration")


def _needs_split(table: pd.DataFrame, k: int) -> str | None:
    counts = table["split"].value_counts() if "split" in table else pd.Series(dtype=int)
    n_train, n_test = int(counts.get("train", 0)), int(counts.get("test", 0))
    if not n_train or not n_test:
        return f"needs an official train/test split (column 'split'), and it has {n_train} train, {n_test} test"
    return None


def _needs_subjects(table: pd.DataFrame, k: int) -> str | None:
    missing = int(table["subject"].isna().sum()) if "subject" in table else len(table)
    if missing:
        return f"needs a subject id for every sample, and {missing} of {len(table)} have none"
    n_subjects = table["subject"].astype(str).nunique()
    if n_subjects < k:
        return f"needs at least {k} subjects for {k} folds, and it has {n_subjects}"
    return None


def _needs_folds(table: pd.DataFrame, k: int) -> str | None:
    missing = int(table["fold"].isna().sum()) if "fold" in table else len(table)
    if missing:
        return f"needs an official fold for every sample (column 'fold'), and {missing} of {len(table)} have none"
    if table["fold"].nunique() < 2:
        return "needs at least 2 official folds, and it has 1"
    return None


def _needs_samples(table: pd.DataFrame, k: int) -> str | None:
    return None if len(table) >= 3 else f"needs at least 3 samples, and it has {len(table)}"


@dataclass(frozen=True)
class Protocol:
    """How a protocol draws its folds, what it needs from the table, and which parameters shape its folds."""

    make: Callable[[pd.DataFrame, float, int], tuple[list[Fold], dict]]
    unfit: Callable[[pd.DataFrame, int], str | None]
    uses_k: bool
    uses_val_fraction: bool


PROTOCOLS = {
    "official": Protocol(official, _needs_split, uses_k=False, uses_val_fraction=True),
    "official-folds": Protocol(official_folds, _needs_folds, uses_k=False, uses_val_fraction=True),
    "subject-kfold": Protocol(subject_kfold, _needs_subjects, uses_k=True, uses_val_fraction=True),
    "crossval-compat": Protocol(crossval_compat, _needs_samples, uses_k=False, uses_val_fraction=False),
}


def _protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise FerbenchError(f"unknown protocol '{name}'; valid: {', '.join(PROTOCOLS)}", exit_code=2)
    return PROTOCOLS[name]


def _draw(table: pd.DataFrame, name: str, val_fraction: float, k: int, dataset: str) -> tuple[list[Fold], dict]:
    protocol = _protocol(name)
    try:
        reason = protocol.unfit(table, k)
        if reason is None:
            return protocol.make(table, val_fraction, k)
    except _Unfit as err:
        reason = str(err)
    others = [other for other, p in PROTOCOLS.items() if other != name and p.unfit(table, k) is None]
    where = f"dataset '{dataset}'" if dataset else "the table"
    hint = f"; try --protocol {' or '.join(others)}" if others else ""
    raise FerbenchError(f"{where}: protocol '{name}' {reason}{hint}", exit_code=2)


def make_folds(
    table: pd.DataFrame, protocol: str, val_fraction: float, folds: int = 10, dataset: str = ""
) -> list[Fold]:
    """The folds of `protocol` over `table`; `folds` is k for subject-kfold, `dataset` names it in errors."""
    return _draw(table, protocol, val_fraction, folds, dataset)[0]


def splits_path(
    results_dir: Path, dataset: str, protocol: str, manifest: str, val_fraction: float, folds: int = 10
) -> Path:
    """One file per set of parameters that shapes the folds: a changed manifest, k or val fraction gets a new one."""
    spec = _protocol(protocol)
    parts = [protocol, f"k{folds}" if spec.uses_k else "", f"val{val_fraction:g}" if spec.uses_val_fraction else ""]
    return results_dir / "splits" / dataset / f"{'-'.join(filter(None, [*parts, manifest[:16]]))}.json"


def _inconsistency(saved, n_samples: int, manifest: str) -> str | None:
    if not isinstance(saved, dict) or not isinstance(saved.get("folds"), list) or not saved["folds"]:
        return "it holds no folds"
    if saved.get("manifest") != manifest:
        return "it was drawn for another version of the dataset (its manifest differs)"
    for number, fold in enumerate(saved["folds"]):
        parts = [fold.get(part) if isinstance(fold, dict) else None for part in ("train", "val", "test")]
        if not all(isinstance(part, list) and all(type(i) is int for i in part) for part in parts):
            return f"fold {number} lacks integer train/val/test lists"
        outside = [i for part in parts for i in part if not 0 <= i < n_samples]
        if outside:
            return f"fold {number} has index {outside[0]}, out of range for the dataset's {n_samples} samples"
        if sum(map(len, parts)) != len(set().union(*parts)):
            return f"fold {number} puts a sample in two of train, val and test"
    return None


def _read_saved(path: Path, table: pd.DataFrame, manifest: str) -> list[Fold]:
    try:
        saved = read_json(path)
    except json.JSONDecodeError as err:
        raise FerbenchError(
            f"{path}:{err.lineno}: not a valid split file ({err.msg}); delete it to draw the splits again"
        ) from None
    problem = _inconsistency(saved, len(table), manifest)
    if problem:
        raise FerbenchError(f"{path}: {problem}; delete it to draw the splits again")
    return [Fold(train=fold["train"], val=fold["val"], test=fold["test"]) for fold in saved["folds"]]


def saved_folds(
    table: pd.DataFrame,
    results_dir: Path,
    dataset: str,
    protocol: str,
    manifest: str,
    val_fraction: float,
    folds: int = 10,
) -> tuple[Path, list[Fold]]:
    """Draw the folds once per (dataset, protocol, manifest, parameters) and reuse the saved file afterwards."""
    path = splits_path(results_dir, dataset, protocol, manifest, val_fraction, folds)
    if path.is_file():
        return path, _read_saved(path, table, manifest)
    drawn, procedure = _draw(table, protocol, val_fraction, folds, dataset)
    write_json_atomic(
        path,
        dict(
            dataset=dataset, protocol=protocol, manifest=manifest, samples=len(table),
            procedure={**procedure, "sklearn": sklearn.__version__}, folds=[asdict(fold) for fold in drawn],
        ),
    )
    return path, drawn
