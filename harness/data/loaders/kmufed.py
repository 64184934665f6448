"""KMU-FED: full driver frames in one folder, labelled only by the file name
`<subject>_<code>_<person>_<frame>.jpg` with codes AN DI FE HA SA SU.

The release holds byte-identical copies under two subject spellings (`1_AN_mr_*` = `01_AN_mr_*`); subject ids
are normalised to two digits and byte duplicates are removed (the first name in sorted order is kept) with a
note, so one face never sits on both sides of a subject-grouped split.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd

from harness.config import Dataset
from harness.data.loaders.layout import Layout
from harness.data.loaders.samples import image_files, sample, table
from harness.data.problems import Problems

FILE_NAME = re.compile(r"(\d+)_([A-Za-z]{2})_([A-Za-z0-9]+)_(\d+)")


def duplicates(files: list[Path]) -> dict[Path, Path]:
    """Each file whose bytes equal an earlier file's → that earlier file; only files of equal size are read."""
    by_size = defaultdict(list)
    for path in files:
        by_size[path.stat().st_size].append(path)
    copies = {}
    for group in (g for g in by_size.values() if len(g) > 1):
        first_with = {}
        for path in group:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in first_with:
                copies[path] = first_with[digest]
            else:
                first_with[digest] = path
    return copies


def _load(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
    files = image_files(root)
    copies = duplicates(files)
    if copies:
        pairs = ", ".join(f"{c.name} = {o.name}" for c, o in list(copies.items())[:3])
        problems.note(root, f"{len(copies)} byte-duplicate files left out, e.g. {pairs}")
    rows = []
    for image in files:
        if image in copies:
            continue
        match = FILE_NAME.fullmatch(image.stem)
        if match is None:
            problems.add(image, "cannot read the label from the file name "
                         "(expected <subject>_<code>_<person>_<frame>, e.g. 01_AN_mr_005.jpg)")
            continue
        subject = f"{int(match[1]):02d}"
        code, person = match[2], match[3]
        rows.append(sample(image.name, code, str(image), subject=subject, sequence=f"{subject}_{code}_{person}"))
    return table(rows, "kmufed", problems)


LAYOUTS = {
    "kmufed": Layout(
        detect=lambda root: root.is_dir() and any(FILE_NAME.fullmatch(p.stem) for p in image_files(root)),
        load=_load,
        description="one folder of <subject>_<code>_<person>_<frame>.jpg frames (codes AN DI FE HA SA SU)",
        tree="""\
<root>/
├── 01_AN_mr_001.jpg   subject 01, anger, person mr, frame 001
├── 01_HA_mr_001.jpg
└── …""",
    ),
}
