"""The saved split of (dataset, protocol, model) as a run would use it: the same table, manifest and split file,
drawn and saved first if no run has drawn it yet. `ferbench audit` and `ferbench splits export` read splits here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.config import Config
from harness.data.protocols import Fold, saved_folds
from harness.paths import Paths
from harness.run.sources import resolve


@dataclass(frozen=True)
class SavedSplit:
    dataset: str
    protocol: str
    root: Path
    table: pd.DataFrame
    file: Path
    folds: list[Fold]


def saved_split(cfg: Config, paths: Paths, dataset: str, protocol: str | None = None, model: str = "",
                dataset_dir: Path | None = None) -> SavedSplit:
    """`protocol` defaults to the dataset's; `model` picks crossval-compat's FER-crossval variant."""
    spec = cfg.dataset(dataset)
    if model:
        cfg.model(model)
    protocol = protocol or spec.protocol
    root = (dataset_dir or paths.data_root / spec.name).resolve()
    source = resolve(spec, root, None)
    file, folds = saved_folds(source.table, paths.results, spec.name, protocol, source.manifest,
                              cfg.defaults.val_fraction, folds=spec.folds, model=model)
    return SavedSplit(spec.name, protocol, root, source.table, file, folds)
