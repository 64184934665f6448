"""Where ferbench reads data and code and writes results; set by global options or environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    data_root: Path = Path("datasets")
    results: Path = Path("results")
    vendor: Path = Path("vendor")
    weights: Path = Path("weights")
