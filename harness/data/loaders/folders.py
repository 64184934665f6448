"""Class-folder layouts whose folders carry canonical names: `<class>/<image>` and `<split>/<class>/<image>`."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from harness.config import Dataset
from harness.data import vocabulary
from harness.data.loaders.layout import Layout
from harness.data.loaders.samples import image_files, sample, table
from harness.data.problems import Problems

SPLITS = ("train", "val", "test")
ALIGNED = re.compile(r"aligned_\d+")
"""`ferbench align` writes `aligned_<size>/` into the dataset folder by default; it is never a class."""


def class_rows(
    root: Path, base: Path, encoding: str, problems: Problems, split: str | None = None, ignore: frozenset = frozenset()
) -> list[dict]:
    """One row per image in each class folder of `base`; a folder that is neither a class of `encoding` nor
    named in `ignore` nor an aligned copy (`aligned_<size>`) is a problem."""
    accepted = vocabulary.ENCODINGS[encoding]
    rows = []
    folders = [p for p in base.iterdir() if p.is_dir() and p.name not in ignore and not ALIGNED.fullmatch(p.name)]
    for folder in sorted(folders):
        if folder.name not in accepted:
            problems.add(folder, f"folder is not a class (expected one of {vocabulary.expected(encoding)})")
            continue
        for image in image_files(folder):
            rel = image.relative_to(root).as_posix()
            rows.append(sample(rel, folder.name, str(image), split=split))
    return rows


def _load_class_folders(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
    return table(class_rows(root, root, "canonical", problems), "canonical", problems)


def _load_split_folders(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
    rows = [row for split in SPLITS if (root / split).is_dir()
            for row in class_rows(root, root / split, "canonical", problems, split)]
    return table(rows, "canonical", problems)


def _has_class_folders(root: Path) -> bool:
    return any((root / name).is_dir() for name in vocabulary.CANONICAL)


LAYOUTS = {
    "split-folders": Layout(
        detect=lambda root: (root / "train").is_dir() and (root / "test").is_dir(),
        load=_load_split_folders,
        description="train/ and test/ (and optionally val/), each with one folder per class named canonically",
        tree="""\
<root>/
├── train/
│   ├── happy/  *.png|*.jpg
│   └── …       one folder per class (canonical names)
├── val/        (optional)
└── test/""",
    ),
    "class-folders": Layout(
        detect=_has_class_folders,
        load=_load_class_folders,
        description="one folder per class named canonically (happy/, sad/, …), images inside; no official split",
        tree="""\
<root>/
├── happy/  *.png|*.jpg
└── …       one folder per class (canonical names)""",
    ),
}
