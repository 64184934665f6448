"""FER2013 as a CSV of pixels: Kaggle `fer2013.csv` (`emotion`, `pixels`, `Usage`) and FER-crossval's
`fer2013_modified.csv` (the same without `Usage`, so without a split).

There are no image files: a sample's `path` is `<csv name>#<line>`, the CSV line holding its pixels (the header
is line 1). `read_pixels(root, path)` decodes such a sample to a 48×48 uint8 array; `is_pixel_row(path)` tells
these paths apart from image files.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from harness.config import Dataset
from harness.data.loaders.layout import Layout
from harness.data.loaders.records import csv_rows
from harness.data.loaders.samples import sample, table
from harness.data.problems import Problems, describe, where
from harness.errors import FerbenchError

SIDE = 48
SEPARATOR = "#"
USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def is_pixel_row(path: str) -> bool:
    name, separator, line = path.rpartition(SEPARATOR)
    return bool(separator) and name.endswith(".csv") and line.isdigit()


def pixel_path(csv_name: str, line: int) -> str:
    return f"{csv_name}{SEPARATOR}{line}"


def _count_ok(pixels: str) -> bool:
    return pixels.count(" ") + 1 == SIDE * SIDE or len(pixels.split()) == SIDE * SIDE


def _loader(csv_name: str, with_usage: bool):
    columns = ("emotion", "pixels", "Usage") if with_usage else ("emotion", "pixels")

    def load(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
        csv_file = root / csv_name
        rows = []
        for line, record in csv_rows(csv_file, columns, problems):
            at = where(csv_file, line)
            if not _count_ok(record["pixels"]):
                problems.add(at, f"pixels: expected {SIDE * SIDE} space-separated values")
                continue
            split = None
            if with_usage:
                split = USAGE.get(record["Usage"])
                if split is None:
                    problems.add(at, f"Usage '{record['Usage']}' is not one of {', '.join(USAGE)}")
                    continue
            rows.append(sample(pixel_path(csv_name, line), record["emotion"], at, split=split))
        return table(rows, "fer2013", problems)
    return load


@lru_cache(maxsize=1)
def _decoded(csv_file: Path, size: int, mtime_ns: int) -> tuple[dict[int, int], np.ndarray, Problems]:
    """Every row of one pixel CSV decoded once: line number → index into an (N, 48, 48) uint8 array, and the
    rows that could not be decoded."""
    problems = Problems()
    lines, images = {}, []
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy warns, and stops early, on a non-number
        for line, record in csv_rows(csv_file, ("pixels",), problems):
            try:
                values = np.fromstring(record["pixels"], dtype=np.int64, sep=" ")
            except (ValueError, DeprecationWarning):
                values = np.empty(0)
            if values.size != SIDE * SIDE or values.min() < 0 or values.max() > 255:
                problems.add(where(csv_file, line), f"pixels: expected {SIDE * SIDE} values from 0 to 255")
                continue
            lines[line] = len(images)
            images.append(values.astype(np.uint8).reshape(SIDE, SIDE))
    return lines, np.stack(images) if images else np.empty((0, SIDE, SIDE), np.uint8), problems


def read_pixels(root: Path, path: str) -> np.ndarray:
    """The 48×48 uint8 grey image of a `<csv name>#<line>` sample; the CSV is decoded once and kept."""
    name, _, line = path.rpartition(SEPARATOR)
    csv_file = Path(root) / name
    try:
        stat = csv_file.stat()
    except OSError:
        raise FerbenchError(f"{csv_file}: pixel file is missing") from None
    lines, images, problems = _decoded(csv_file, stat.st_size, stat.st_mtime_ns)
    if line.isdigit() and int(line) in lines:
        return images[lines[int(line)]]
    at = describe(where(csv_file, line))
    reason = next((e for e in problems.errors if e.startswith(f"{at}: ") or e.startswith(f"{csv_file}: ")), None)
    raise FerbenchError(reason or f"{at}: no pixel row there (sample '{path}')")


LAYOUTS = {
    "fer2013": Layout(
        detect=lambda root: (root / "fer2013.csv").is_file(),
        load=_loader("fer2013.csv", with_usage=True),
        description="fer2013.csv with columns emotion, pixels, Usage (Kaggle release)",
        tree="""\
<root>/
└── fer2013.csv   emotion,pixels,Usage  (0 angry … 6 neutral; Training/PublicTest/PrivateTest)""",
    ),
    "fer2013-crossval": Layout(
        detect=lambda root: (root / "fer2013_modified.csv").is_file(),
        load=_loader("fer2013_modified.csv", with_usage=False),
        description="fer2013_modified.csv with columns emotion, pixels (FER-crossval; no split)",
        tree="""\
<root>/
└── fer2013_modified.csv   emotion,pixels  (0 angry … 6 neutral)""",
    ),
}
