"""FER-crossval label CSVs: one `<image name column>,label` row per image in a flat image folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.data.loaders.records import csv_rows
from harness.data.loaders.samples import sample, table, within
from harness.data.problems import Problems, where


def load_label_csv(
    root: Path, csv_name: str, name_column: str, images: str, encoding: str, problems: Problems
) -> pd.DataFrame:
    label_file = root / csv_name
    rows = []
    for line, record in csv_rows(label_file, (name_column, "label"), problems):
        at = where(label_file, line)
        path = within(record[name_column], at, problems, images)
        if path is not None:
            rows.append(sample(path, record["label"], at))
    return table(rows, encoding, problems, root)
