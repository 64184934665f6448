"""SFEW 2.0: the organisers' Train/ and Val/ class folders (Angry … Surprise), as aligned faces or as frames, and
FER-crossval's pooled `sfew_2.0_labels.csv` + `sfew2.0_images/` (or `sfew_labels.csv` + `sfew_images/`).

Test labels were never released, so the official Val set serves as the test split (validation for model
selection is then carved from Train). The unlabelled Test/ folder is ignored.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.config import Dataset
from harness.data import vocabulary
from harness.data.loaders.folders import class_rows
from harness.data.loaders.layout import Layout
from harness.data.loaders.crossval import load_label_csv
from harness.data.loaders.samples import table
from harness.data.problems import Problems

SPLITS = {"Train": "train", "Val": "test"}
CROSSVAL_FILES = (("sfew_2.0_labels.csv", "sfew2.0_images"), ("sfew_labels.csv", "sfew_images"))


def _aligned_folder(root: Path, split: str) -> Path | None:
    """`Train/Train_Aligned_Faces/` as unpacked from the release, or `Train_Aligned_Faces/` in the root."""
    for folder in (root / split / f"{split}_Aligned_Faces", root / f"{split}_Aligned_Faces"):
        if folder.is_dir():
            return folder
    return None


def _has_classes(folder: Path | None) -> bool:
    return folder is not None and any((folder / name).is_dir() for name in vocabulary.ENCODINGS["sfew"])


def _frames_folder(root: Path, split: str) -> Path | None:
    folder = root / split
    return folder if folder.is_dir() else None


def _loader(find):
    def load(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
        rows = []
        for split_folder, split in SPLITS.items():
            base = find(root, split_folder)
            if base is None:
                problems.add(root / split_folder, f"missing the {split_folder} class folders")
                continue
            aligned_beside = frozenset({f"{split_folder}_Aligned_Faces"})
            rows += class_rows(root, base, "sfew", problems, split, ignore=aligned_beside)
        return table(rows, "sfew", problems)
    return load


def _crossval_files(root: Path) -> tuple[str, str]:
    return next(((csv, images) for csv, images in CROSSVAL_FILES if (root / csv).is_file()), CROSSVAL_FILES[0])


def _load_crossval(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
    csv_name, images = _crossval_files(root)
    return load_label_csv(root, csv_name, "image_name", images, "sfew-crossval", problems)


_TREE_CLASSES = """Angry/ Disgust/ Fear/ Happy/ Neutral/ Sad/ Surprise/"""

LAYOUTS = {
    "sfew-aligned": Layout(
        detect=lambda root: all(_has_classes(_aligned_folder(root, s)) for s in SPLITS),
        load=_loader(_aligned_folder),
        description="Train/Train_Aligned_Faces/<Class>/ and Val/Val_Aligned_Faces/<Class>/ "
                    "(or Train_Aligned_Faces/ and Val_Aligned_Faces/ in the root); organiser-aligned faces",
        tree=f"""\
<root>/
├── Train/
│   └── Train_Aligned_Faces/   {_TREE_CLASSES}   (→ train)
└── Val/
    └── Val_Aligned_Faces/     {_TREE_CLASSES}   (→ test)""",
    ),
    "sfew": Layout(
        detect=lambda root: all(_has_classes(_frames_folder(root, s)) for s in SPLITS),
        load=_loader(_frames_folder),
        description="Train/<Class>/ and Val/<Class>/ with Angry … Surprise folders (organiser frames)",
        tree=f"""\
<root>/
├── Train/   {_TREE_CLASSES}   (→ train)
└── Val/     {_TREE_CLASSES}   (→ test)""",
    ),
    "sfew-crossval": Layout(
        detect=lambda root: any((root / csv).is_file() for csv, _ in CROSSVAL_FILES),
        load=_load_crossval,
        description="sfew_2.0_labels.csv + sfew2.0_images/, or sfew_labels.csv + sfew_images/ (FER-crossval; no split)",
        tree="""\
<root>/
├── sfew_2.0_labels.csv   image_name,label  (0 Angry … 6 Surprise, alphabetical)
└── sfew2.0_images/
    └── image_000000.png""",
    ),
}
