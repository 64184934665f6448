"""ExpW: `label/label.lst` has one line per labelled face, so an image with k faces gives k samples, each with
its box and face id: `image_name face_id top left right bottom confidence label` (0 angry … 6 neutral).

`expw` reads the original images (`image/origin/`), and the box says which face to crop. `expw-aligned` reads
FER-crossval's `aligned_image/<image name>` (one aligned crop per image, box not applicable); a line whose
aligned image is absent is an alignment failure, left out with one note rather than an error.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.config import Dataset
from harness.data.loaders.layout import Layout
from harness.data.loaders.records import token_lines
from harness.data.loaders.samples import sample, table, within
from harness.data.problems import Problems, where

LABELS = Path("label/label.lst")
FIELDS = "image_name face_id top left right bottom confidence label"


def _number(text: str, kind=int):
    try:
        return kind(text)
    except ValueError:
        return None


def _faces(root: Path, folder: str, problems: Problems) -> list[dict]:
    label_file = root / LABELS
    rows = []
    for line, tokens in token_lines(label_file, problems):
        at = where(label_file, line)
        if len(tokens) != 8:
            problems.add(at, f"expected 8 fields ({FIELDS}), found {len(tokens)}")
            continue
        name, face_id, top, left, right, bottom, confidence, native = tokens
        numbers = [_number(t) for t in (face_id, top, left, right, bottom)]
        if None in numbers or _number(confidence, float) is None:
            problems.add(at, "face id and box must be integers and the confidence a number")
            continue
        face, top, left, right, bottom = numbers
        if right <= left or bottom <= top:
            problems.add(at, f"empty face box (top {top}, left {left}, right {right}, bottom {bottom})")
            continue
        path = within(name, at, problems, folder)
        if path is not None:
            rows.append(sample(path, native, at, face_id=face, box=(left, top, right, bottom)))
    return rows


def _load_origin(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
    return table(_faces(root, "image/origin", problems), "expw", problems, root)


def _load_aligned(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
    present = {p.name for p in (root / "aligned_image").iterdir()}
    kept, missing = [], []
    for row in _faces(root, "aligned_image", problems):
        name = row["path"].removeprefix("aligned_image/")
        (kept if name in present or (root / row["path"]).is_file() else missing).append({**row, "box": None})
    if missing:
        problems.note(root / "aligned_image", f"{len(missing)} labelled faces have no aligned image (alignment "
                      f"failures) and were left out, e.g. {', '.join(row['path'] for row in missing[:3])}")
    return table(kept, "expw", problems, root)


LAYOUTS = {
    "expw": Layout(
        detect=lambda root: (root / LABELS).is_file() and (root / "image" / "origin").is_dir(),
        load=_load_origin,
        description="label/label.lst + image/origin/<image name> (one sample per labelled face box)",
        tree="""\
<root>/
├── label/
│   └── label.lst   image_name face_id top left right bottom confidence label  (0 angry … 6 neutral)
└── image/
    └── origin/
        └── afraid_African_214.jpg""",
    ),
    "expw-aligned": Layout(
        detect=lambda root: (root / LABELS).is_file() and (root / "aligned_image").is_dir(),
        load=_load_aligned,
        description="label/label.lst + aligned_image/<image name> (FER-crossval aligned crops; no split)",
        tree="""\
<root>/
├── label/
│   └── label.lst
└── aligned_image/
    └── afraid_African_214.jpg   one aligned face per image""",
    ),
}
