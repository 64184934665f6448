"""A dataset as one pandas table, whatever its layout on disk.

`scan` finds which of the dataset's accepted layouts the folder is in, reads it and returns the table with
every problem found; `load_table` is the same for callers that need a usable table or one error. The columns
are `COLUMNS` (see `harness.data.loaders.samples`). Samples a layout leaves out on purpose (AffectNet's
non-expressions, classes the dataset does not use, FERPlus images without a majority) are listed in
`table.attrs["notes"]`; `table.attrs["layout"]` names the layout that was read.
The manifest hash identifies exactly which samples, labels and splits a run saw.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import xxhash

from harness.config import Dataset
from harness.data.loaders import LAYOUTS
from harness.data.loaders.fer2013 import SEPARATOR, is_pixel_row
from harness.data.content import ContentHashes
from harness.data.loaders.folders import ALIGNED
from harness.data.loaders.samples import COLUMNS, INTEGER_COLUMNS, escaping, image_files
from harness.data.problems import Problems
from harness.errors import FerbenchError

SHOWN_PROBLEMS = 3


def _empty() -> pd.DataFrame:
    table = pd.DataFrame(columns=COLUMNS)
    for column in INTEGER_COLUMNS:
        table[column] = table[column].astype("Int64")
    return table


def _keep_classes(table: pd.DataFrame, dataset: Dataset, problems: Problems, root: Path) -> pd.DataFrame:
    """Leave out samples whose label is not one of the dataset's classes, and say so in a note."""
    keep = table["label"].isin(dataset.classes)
    if keep.all():
        return table
    left = table.loc[~keep]
    reasons = left["label"].where(left["label"].notna(), "native label '" + left["native_label"] + "'")
    counts = ", ".join(f"{reason} ×{n}" for reason, n in reasons.value_counts(sort=False).items())
    problems.note(root, f"left out {len(left)} samples that are not among the classes of '{dataset.name}': {counts}")
    return table.loc[keep]


def detect(root: Path, dataset: Dataset) -> str | None:
    """The first of the dataset's accepted layouts whose files are in `root`."""
    return next((name for name in dataset.layouts if LAYOUTS[name].detect(root)), None)


def scan(root: Path, dataset: Dataset) -> tuple[pd.DataFrame, list[str]]:
    """(table, problems): every problem found, each one line `path[:line]: reason`; no problems means usable."""
    unknown = [name for name in dataset.layouts if name not in LAYOUTS]
    if unknown:
        raise FerbenchError(
            f"datasets.{dataset.name}.layouts: unknown layout '{unknown[0]}' (known: {', '.join(sorted(LAYOUTS))})",
            exit_code=2,
        )
    if not root.is_dir():
        return _empty(), [f"{root}: dataset '{dataset.name}' not found (give --dataset-dir or --data-root)"]
    layout = detect(root, dataset)
    entries = [p for p in root.iterdir() if not p.name.startswith(".")] if layout is None else []
    copies = sorted(p.name for p in entries if p.is_dir() and ALIGNED.fullmatch(p.name))
    if copies and len(copies) == len(entries):
        return _empty(), [f"{root}: holds only aligned copies ({', '.join(copies)}), not dataset '{dataset.name}' itself "
                          "(an older `ferbench align --dataset-dir` put them here); read the dataset with --dataset-dir "
                          "and move the copies next to it, or remove this folder"]
    if layout is None:
        expected = "; or ".join(f"{name}: {LAYOUTS[name].description}" for name in dataset.layouts)
        return _empty(), [f"{root}: not a layout of dataset '{dataset.name}'; expected {expected}"]
    problems = Problems()
    table = _keep_classes(LAYOUTS[layout].load(root, dataset, problems), dataset, problems, root)
    files = [p.rpartition(SEPARATOR)[0] if is_pixel_row(p) else p for p in table["path"]]
    outside = escaping(root, dict.fromkeys(files))
    for path, real in outside.items():  # `..` in a label file is caught as the loader reads it (samples.within)
        problems.add(root / path, f"escapes the dataset root (it resolves to {real})")
    table = table[~pd.Series(files, index=table.index).isin(outside)]
    if table.empty and not problems.errors:
        problems.add(root, f"no labelled samples found for dataset '{dataset.name}' (layout {layout})")
    table = table[COLUMNS].reset_index(drop=True)
    table.attrs.update(layout=layout, notes=list(problems.notes))
    return table, problems.errors


def check_command(name: str, root: Path) -> str:
    """The `ferbench datasets check` that reads the same folder: hints always name it, so a --dataset-dir is kept."""
    return f"ferbench datasets check {name} --dataset-dir {root}"


def load_table(root: Path, dataset: Dataset) -> pd.DataFrame:
    """The dataset's table, or one FerbenchError summarising every problem found."""
    table, problems = scan(root, dataset)
    if len(problems) == 1:
        raise FerbenchError(problems[0])
    if problems:
        shown = "; ".join(problems[:SHOWN_PROBLEMS])
        more = f"; … {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        raise FerbenchError(
            f"dataset '{dataset.name}' at {root} has {len(problems)} problems: {shown}{more} "
            f"(run `{check_command(dataset.name, root)}` for the full list)"
        )
    return table


def _text(value) -> str:
    return str(value) if isinstance(value, tuple) or not pd.isna(value) else ""


def manifest_hash(root: Path, table: pd.DataFrame) -> str:
    """sha256 over every sample in table order: path, label, the content hash of its file (the CSV's for pixel
    rows, whose path already names the row; every frame file's for a video's frame folder; see
    harness.data.content), and the split, fold, subject, box and face id that protocols read. A file rewritten
    at the same size therefore gives a new manifest: new splits, a new image cache and new run ids."""
    hashes = ContentHashes(root)
    contents: dict[str, str] = {}

    def content(path: str) -> str:
        if path not in contents:
            contents[path] = hashes.of(path)
        return contents[path]

    def frames_content(folder: str) -> str:
        names = [f"{folder}/{image.name}" for image in image_files(root / folder)]
        return xxhash.xxh3_128_hexdigest("".join(f"{name}\t{content(name)}\n" for name in names).encode())

    digest = hashlib.sha256()
    fields = table[["path", "label", "frames", "split", "fold", "subject", "box", "face_id"]]
    for path, label, frames, split, fold, subject, box, face_id in fields.itertuples(index=False, name=None):
        if not pd.isna(frames):
            measure = f"{frames} frames {frames_content(path)}"
        elif is_pixel_row(path):
            measure = content(path.rpartition(SEPARATOR)[0])
        else:
            measure = content(path)
        extra = "\t".join(_text(v) for v in (split, fold, subject, box, face_id))
        digest.update(f"{path}\t{label}\t{measure}\t{extra}\n".encode())
    hashes.save()
    return digest.hexdigest()
