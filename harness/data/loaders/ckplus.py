"""CK+: the CK+48 release (class folders anger … surprise, files `S<subject>_<sequence>_<frame>.png`, so subject
and sequence come from the name) and FER-crossval's `ckplus_labels.csv` + `ckplus_images/` (subjects lost).

CK+ is small and every subject contributes several frames of each sequence, so folds must group by subject:
that is why the subject is read here and a name it cannot be read from is a problem.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from harness.config import Dataset
from harness.data import vocabulary
from harness.data.loaders.folders import class_rows
from harness.data.loaders.layout import Layout
from harness.data.loaders.crossval import load_label_csv
from harness.data.loaders.samples import table
from harness.data.problems import Problems

FILE_NAME = re.compile(r"(S\d+)_(\d+)_\d+")


def _load_folders(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
    rows = []
    for row in class_rows(root, root, "ckplus48", problems):
        match = FILE_NAME.fullmatch(Path(row["path"]).stem)
        if match is None:
            problems.add(row["where"], "cannot read subject and sequence from the file name "
                         "(expected S<subject>_<sequence>_<frame>, e.g. S010_004_00000017.png)")
            continue
        rows.append({**row, "subject": match[1], "sequence": f"{match[1]}_{match[2]}"})
    return table(rows, "ckplus48", problems)


def _load_crossval(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
    return load_label_csv(root, "ckplus_labels.csv", "image_name", "ckplus_images", "ckplus-crossval", problems)


LAYOUTS = {
    "ckplus-folders": Layout(
        detect=lambda root: any((root / name).is_dir() for name in vocabulary.ENCODINGS["ckplus48"]),
        load=_load_folders,
        description="CK+48 class folders anger/ contempt/ disgust/ fear/ happy/ sadness/ surprise/ "
                    "with S<subject>_<sequence>_<frame>.png files",
        tree="""\
<root>/
├── anger/      S010_004_00000017.png …   (subject S010, sequence S010_004)
├── contempt/
├── disgust/
├── fear/
├── happy/
├── sadness/    (→ sad)
└── surprise/""",
    ),
    "ckplus-crossval": Layout(
        detect=lambda root: (root / "ckplus_labels.csv").is_file(),
        load=_load_crossval,
        description="ckplus_labels.csv (image_name,label) + ckplus_images/ (FER-crossval; no subjects, no split)",
        tree="""\
<root>/
├── ckplus_labels.csv   image_name,label  (0 anger, 1 contempt, 2 disgust, 3 fear, 4 happy, 5 sadness, 6 surprise)
└── ckplus_images/
    └── image_000000.png""",
    ),
}
