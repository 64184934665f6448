"""Rows of the common table, shared by every layout: building them, keeping paths inside the root, label lookup.

The table contract (one row per sample):
`path` (POSIX, relative to the dataset root; a frame folder for video; `<file>.csv#<line>` for pixels stored
in a CSV), `label` (canonical name), `native_label` (as the release writes it), `subject`, `sequence`, `split`
("train" / "val" / "test" or None), `fold` (official fold whose test list holds the sample, or None),
`box` ((left, top, right, bottom) or None), `face_id`, `frames` (frame count of a video sample).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import pandas as pd

from harness.data import vocabulary
from harness.data.problems import Problems, Where, describe

COLUMNS = ["path", "label", "native_label", "subject", "sequence", "split", "fold", "box", "face_id", "frames"]
INTEGER_COLUMNS = ("fold", "face_id", "frames")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def sample(path: str, native: str, where: Where | str, **fields) -> dict:
    """One row; `where` ((file, line), or the image itself) is where a problem with it is reported."""
    unknown = set(fields) - set(COLUMNS)
    if unknown:
        raise TypeError(f"not table columns: {', '.join(sorted(unknown))}")
    return {**dict.fromkeys(COLUMNS), **fields, "path": path, "native_label": str(native), "where": where}


def inside(raw: str) -> str | None:
    """`raw` as a normalised POSIX path inside the dataset root, or None if it is absolute or climbs out."""
    text = raw.replace("\\", "/")
    if not text or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        return None
    norm = posixpath.normpath(text)
    if norm == ".." or norm.startswith("../") or norm == ".":
        return None
    return norm


def within(raw: str, where: Where | str, problems: Problems, folder: str = "") -> str | None:
    """`folder/raw` for a path `raw` that a label file lists relative to `folder`; a path that is absolute or
    climbs out of `folder` is reported as a problem at `where` and gives None."""
    path = inside(raw)
    if path is None:
        problems.add(where, f"path '{raw}' escapes the dataset root")
        return None
    return f"{folder}/{path}" if folder else path


def escaping(root: Path, paths) -> dict[str, Path]:
    """Listed paths that resolve outside `root` through a symlink (a file or any folder on the way), with where
    they lead. One `realpath` per folder and per symlinked entry, not per image."""
    top = Path(os.path.realpath(root))
    folders: dict[str, Path] = {}
    links: dict[str, set[str]] = {}
    out = {}
    for path in paths:
        folder, _, name = path.rpartition("/")
        if folder not in folders:
            folders[folder] = Path(os.path.realpath(root / folder))
            try:
                with os.scandir(root / folder) as entries:
                    links[folder] = {e.name for e in entries if e.is_symlink()}
            except OSError:
                links[folder] = set()
        real = Path(os.path.realpath(root / path)) if name in links[folder] else folders[folder] / name
        if not real.is_relative_to(top):
            out[path] = real
    return out


def image_files(folder: Path) -> list[Path]:
    """The images directly in `folder`, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class _Listings:
    """Names of the files in each folder, listed once: one `scandir` per folder instead of one `stat` per image."""

    def __init__(self, root: Path):
        self.root = root
        self.folders: dict[str, set[str]] = {}

    def has(self, path: str) -> bool:
        folder, _, name = path.rpartition("/")
        if folder not in self.folders:
            try:
                with os.scandir(self.root / folder) as entries:
                    self.folders[folder] = {e.name for e in entries if e.is_file()}
            except OSError:
                self.folders[folder] = set()
        return name in self.folders[folder]


def table(rows: list[dict], encoding: str, problems: Problems, root: Path | None = None) -> pd.DataFrame:
    """Rows → the common table: native labels looked up in `encoding` (out of range → a problem, row left out;
    a defined non-expression → label None, left out later with a note); with `root`, each listed file must exist."""
    mapping = vocabulary.ENCODINGS[encoding]
    listings = _Listings(root) if root is not None else None
    kept, seen = [], {}
    for row in rows:
        native = row["native_label"]
        if native not in mapping:
            expected = vocabulary.expected(encoding)
            problems.add(row["where"], f"label '{native}' out of range (expected one of {expected})")
            continue
        key = (row["path"], row["face_id"], row["box"])  # one image may hold several faces (ExpW)
        first = seen.setdefault(key, row)
        if first["native_label"] != native:  # the same label twice is kept: row order is what some splits index
            problems.add(row["where"], f"'{row['path']}' is listed again with label '{native}' "
                                       f"(label '{first['native_label']}' at {describe(first['where'])})")
            continue
        if listings is not None and not listings.has(row["path"]):
            problems.add(row["where"], f"listed image '{row['path']}' is missing")
            continue
        kept.append({**row, "label": mapping[native]})
    frame = pd.DataFrame(kept, columns=COLUMNS)
    for column in INTEGER_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    return frame
