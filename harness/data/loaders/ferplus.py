"""FERPlus: microsoft/FERPlus `fer2013new.csv` (10 taggers' votes per FER2013 image) with the PNGs its
`generate_training_data.py` writes into FER2013Train/ FER2013Valid/ FER2013Test/, labelled by the official
majority rule; and FER-crossval's `FERPlus_Label_modified.csv` (plurality labels, pooled) + `FERPlus_Image/`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.config import Dataset
from harness.data.loaders.crossval import load_label_csv
from harness.data.loaders.layout import Layout
from harness.data.loaders.records import csv_rows
from harness.data.loaders.samples import sample, table, within
from harness.data.problems import Problems, where

VOTES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
FOLDERS = {"Training": ("FER2013Train", "train"), "PublicTest": ("FER2013Valid", "val"),
           "PrivateTest": ("FER2013Test", "test")}


def majority(votes: list[int]) -> str | None:
    """microsoft/FERPlus `ferplus.py` majority mode: single votes are dropped, then an emotion must hold more
    than half of the remaining votes; None when none does. The winner may be `unknown` or `NF`."""
    kept = [v if v > 1 else 0 for v in votes]
    top = max(kept)
    if top == 0 or top <= sum(kept) / 2:
        return None
    return VOTES[kept.index(top)]


def _image_base(root: Path) -> str:
    """The three image folders sit in the root or, as the FERPlus repository generates them, in `data/`."""
    return "" if (root / "FER2013Train").is_dir() else "data"


def _detect_official(root: Path) -> bool:
    return (root / "fer2013new.csv").is_file() and (root / _image_base(root) / "FER2013Train").is_dir()


def _load_official(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
    label_file = root / "fer2013new.csv"
    base = _image_base(root)
    rows, unnamed, undecided = [], 0, 0
    for line, record in csv_rows(label_file, ("Usage", "Image name", *VOTES), problems):
        at = where(label_file, line)
        name = record["Image name"]
        if not name:
            unnamed += 1
            continue
        if record["Usage"] not in FOLDERS:
            problems.add(at, f"Usage '{record['Usage']}' is not one of {', '.join(FOLDERS)}")
            continue
        folder, split = FOLDERS[record["Usage"]]
        if not all(record[v].isdigit() for v in VOTES):
            problems.add(at, "votes must be whole numbers ≥ 0")
            continue
        path = within(name, at, problems, f"{base}/{folder}" if base else folder)
        if path is None:
            continue
        winner = majority([int(record[v]) for v in VOTES])
        if winner is None:
            undecided += 1
            continue
        rows.append(sample(path, winner, at, split=split))
    if unnamed:
        problems.note(label_file, f"{unnamed} rows have no image name (the release has no image for them)")
    if undecided:
        problems.note(label_file, f"{undecided} images have no majority label (official FERPlus rule), left out")
    return table(rows, "ferplus-votes", problems, root)


def _load_crossval(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
    return load_label_csv(root, "FERPlus_Label_modified.csv", "Image name", "FERPlus_Image", "ferplus-crossval", problems)


LAYOUTS = {
    "ferplus": Layout(
        detect=_detect_official,
        load=_load_official,
        description="fer2013new.csv (votes) + FER2013Train/ FER2013Valid/ FER2013Test/ PNGs (in the root or data/)",
        tree="""\
<root>/
├── fer2013new.csv   Usage,Image name,neutral,happiness,…,contempt,unknown,NF  (vote counts)
├── FER2013Train/    fer0000000.png …   (Usage Training → train)
├── FER2013Valid/    (PublicTest → val)
└── FER2013Test/     (PrivateTest → test)   the three folders may also sit in data/""",
    ),
    "ferplus-crossval": Layout(
        detect=lambda root: (root / "FERPlus_Label_modified.csv").is_file(),
        load=_load_crossval,
        description="FERPlus_Label_modified.csv (Image name,label) + FERPlus_Image/ (FER-crossval; no split)",
        tree="""\
<root>/
├── FERPlus_Label_modified.csv   Image name,label  (0 neutral, 1 happiness, … 7 contempt)
└── FERPlus_Image/
    └── fer0000000.png""",
    ),
}
