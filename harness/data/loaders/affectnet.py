"""AffectNet manual annotations: `training.csv` and `validation.csv` (`subDirectory_filePath, face_x, face_y,
face_width, face_height, facial_landmarks, expression, valence, arousal`) + the `Manually_Annotated_Images/` crops.

The test set was never released, so the official validation set is the test split. `expression` 8-10 (none,
uncertain, non-face) are not expressions and are left out; affectnet7 also leaves out contempt (7) because it
is not among its classes. Some copies of validation.csv have no header; the column order is then assumed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.config import Dataset
from harness.data.loaders.layout import Layout
from harness.data.loaders.records import csv_rows
from harness.data.loaders.samples import sample, table, within
from harness.data.problems import Problems, where

COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
           "expression", "valence", "arousal")
LISTS = {"training.csv": "train", "validation.csv": "test"}
IMAGES = "Manually_Annotated_Images"


def _lists_folder(root: Path) -> Path:
    """The CSVs sit in the root or, as unpacked from the release, in `Manually_Annotated_file_lists/`."""
    nested = root / "Manually_Annotated_file_lists"
    return nested if (nested / "training.csv").is_file() else root


def _load(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
    rows = []
    for name, split in LISTS.items():
        label_file = _lists_folder(root) / name
        records = csv_rows(label_file, ("subDirectory_filePath", "expression"), problems, headerless=COLUMNS)
        for line, record in records:
            at = where(label_file, line)
            path = within(record["subDirectory_filePath"], at, problems, IMAGES)
            if path is not None:
                rows.append(sample(path, record["expression"], at, split=split))
    return table(rows, "affectnet", problems, root)


LAYOUTS = {
    "affectnet": Layout(
        detect=lambda root: (_lists_folder(root) / "training.csv").is_file() and (root / IMAGES).is_dir(),
        load=_load,
        description="training.csv + validation.csv (in the root or Manually_Annotated_file_lists/) "
                    "+ Manually_Annotated_Images/<subDirectory_filePath>",
        tree="""\
<root>/
├── Manually_Annotated_file_lists/   (or the two CSVs in the root)
│   ├── training.csv     subDirectory_filePath,…,expression,…  (0 neutral … 7 contempt; 8-10 left out) → train
│   └── validation.csv   → test
└── Manually_Annotated_Images/
    └── 689/737db2483489148d783ef278f43f486c0a97e140fc4b6b61b84363ca.jpg""",
    ),
}
