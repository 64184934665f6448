"""RAF-DB (basic) as released: `EmoLabel/list_patition_label.txt` (sic) with 1-based labels, images under `Image/`.

The split is the file-name prefix (`train_` / `test_`); RAF-DB has no official validation set.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.config import Dataset
from harness.data.loaders.layout import Layout
from harness.data.loaders.records import token_lines
from harness.data.loaders.samples import sample, table, within
from harness.data.problems import Problems, where

LABELS = Path("EmoLabel/list_patition_label.txt")
SPLIT_PREFIXES = {"train_": "train", "test_": "test"}


def _aligned(name: str) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}_aligned.{suffix}" if dot else f"{name}_aligned"


def _original(name: str) -> str:
    return name


def _loader(folder: str, image_name):
    def load(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
        label_file = root / LABELS
        rows = []
        for line, tokens in token_lines(label_file, problems):
            at = where(label_file, line)
            if len(tokens) != 2:
                problems.add(at, f"expected '<image> <label>', found {len(tokens)} fields")
                continue
            name, native = tokens
            path = within(image_name(name), at, problems, folder)
            if path is None:
                continue
            split = next((s for prefix, s in SPLIT_PREFIXES.items() if name.startswith(prefix)), None)
            if split is None:
                problems.add(at, f"'{name}' starts with neither train_ nor test_, so its split is unknown")
                continue
            rows.append(sample(path, native, at, split=split))
        return table(rows, "rafdb", problems, root)
    return load


def _detect(folder: str):
    return lambda root: (root / LABELS).is_file() and (root / "Image" / folder).is_dir()


LAYOUTS = {
    "rafdb-aligned": Layout(
        detect=_detect("aligned"),
        load=_loader("Image/aligned", _aligned),
        description="EmoLabel/list_patition_label.txt + Image/aligned/<stem>_aligned.jpg (official aligned faces)",
        tree="""\
<root>/
├── EmoLabel/
│   └── list_patition_label.txt   train_00001.jpg 5  (1-based: 1 surprise … 7 neutral)
└── Image/
    └── aligned/
        ├── train_00001_aligned.jpg
        └── test_0001_aligned.jpg""",
    ),
    "rafdb-original": Layout(
        detect=_detect("original"),
        load=_loader("Image/original", _original),
        description="EmoLabel/list_patition_label.txt + Image/original/<name>.jpg (uncropped images)",
        tree="""\
<root>/
├── EmoLabel/
│   └── list_patition_label.txt
└── Image/
    └── original/
        ├── train_00001.jpg
        └── test_0001.jpg""",
    ),
}
