"""A saved split as CSV (`fold,split,row,path`), so researchers can share it and reuse it outside ferbench.

`fold` is 0-based, as in the split file and run configs; `row` is the 0-based row of the dataset's table, which
for label-file layouts is the file's data-row order (after rows a layout leaves out, e.g. ExpW faces without an
aligned image); `path` is relative to the dataset root (`file.csv#17` for a pixel row on CSV line 17).
"""

from __future__ import annotations

import csv
import io

from harness.data.saved_splits import SavedSplit

COLUMNS = ("fold", "split", "row", "path")


def export_csv(split: SavedSplit) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    paths = split.table["path"].tolist()
    for number, fold in enumerate(split.folds):
        for side in ("train", "val", "test"):
            for row in getattr(fold, side):
                writer.writerow((number, side, row, paths[row]))
    return out.getvalue()
