"""Class-folder layouts: `<class>/<image>` and `<split>/<class>/<image>`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.config import Dataset
from harness.errors import FerbenchError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
SPLITS = ("train", "val", "test")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _class_rows(root: Path, base: Path, dataset: Dataset, split: str | None) -> list[dict]:
    rows = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        if folder.name not in dataset.classes:
            raise FerbenchError(
                f"{folder}: folder is not a class of '{dataset.name}' (classes: {', '.join(dataset.classes)})"
            )
        for image in _images(folder):
            rows.append(
                dict(
                    path=image.relative_to(root).as_posix(),
                    label=folder.name,
                    native_label=folder.name,
                    subject=None,
                    split=split,
                )
            )
    return rows


def load_class_folders(root: Path, dataset: Dataset) -> pd.DataFrame:
    return pd.DataFrame(_class_rows(root, root, dataset, None))


def load_split_folders(root: Path, dataset: Dataset) -> pd.DataFrame:
    present = [s for s in SPLITS if (root / s).is_dir()]
    if "train" not in present or "test" not in present:
        raise FerbenchError(f"{root}: expected train/ and test/ folders (layout split-folders)")
    rows = [row for split in present for row in _class_rows(root, root / split, dataset, split)]
    return pd.DataFrame(rows)
