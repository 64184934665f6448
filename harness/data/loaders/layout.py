"""What a layout is: how to recognise a dataset folder in it, and how to read it into the common table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from harness.config import Dataset
from harness.data.problems import Problems


@dataclass(frozen=True)
class Layout:
    """`detect` looks only for the files that identify the layout (cheap, no parsing); `load` reads every label
    and records each problem it finds in `Problems` instead of stopping at the first. `description` names the
    files the layout expects (it is shown when no accepted layout is found); `tree` is an ASCII tree for the README.
    """

    detect: Callable[[Path], bool]
    load: Callable[[Path, Dataset, Problems], pd.DataFrame]
    description: str
    tree: str
