"""DFEW, FERV39k and MAFW as DFER-CLIP's annotation lists: lines `<frame folder> <frame count> <0-based label>`.

One sample per clip; its `path` is the frame folder. The lists sit in `annotation/` or in the dataset root, and
their paths should be relative to the root. The published lists carry the authors' absolute cluster paths
(`/data/…/DFEW/DFEW_Frame_Face/00001`); those are accepted by keeping the part from the release's own frame
folder (`DFEW_Frame_Face/`) on. DFEW and MAFW come as 5 folds: a clip's `fold` is the set whose test list holds
it. FERV39k has one train/test split. DFER-CLIP reads frames by index into the sorted folder listing, so the
listed frame count must equal the frames in the folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.config import Dataset
from harness.data.loaders.layout import Layout
from harness.data.loaders.records import token_lines
from harness.data.loaders.samples import IMAGE_SUFFIXES, inside, sample, table
from harness.data.problems import Problems, Where, describe, where


@dataclass(frozen=True)
class Release:
    encoding: str
    frames_folder: str
    """The release's own folder of frame folders, where relative paths start (e.g. `DFEW_Frame_Face`)."""
    lists: tuple[tuple[str, int | None, str], ...]
    """(list file, set number or None, "train" | "test")."""


def _folded(prefix: str) -> tuple[tuple[str, int, str], ...]:
    return tuple((f"{prefix}_set_{k}_{part}.txt", k, part) for k in range(1, 6) for part in ("train", "test"))


RELEASES = {
    "dfew": Release("dfew", "DFEW_Frame_Face", _folded("DFEW")),
    "ferv39k": Release("ferv39k", "2_ClipsforFaceCrop",
                       (("FERV39K_train.txt", None, "train"), ("FERV39K_test.txt", None, "test"))),
    "mafw": Release("mafw", "data/faces", _folded("MAFW")),
}


def lists_folder(root: Path, release: Release) -> Path:
    nested = root / "annotation"
    return nested if (nested / release.lists[0][0]).is_file() else root


def clip_path(raw: str, frames_folder: str) -> str | None:
    """A list's frame-folder path relative to the root; an absolute one is cut to start at `frames_folder`."""
    text = raw.replace("\\", "/")
    if not (text.startswith("/") or text[1:2] == ":"):
        return inside(text)
    parts, anchor = text.split("/"), frames_folder.split("/")
    for i in range(len(parts) - len(anchor) + 1):
        if parts[i:i + len(anchor)] == anchor:
            return inside("/".join(parts[i:]))
    return None


def _frame_count(folder: Path) -> int | None:
    try:
        with os.scandir(folder) as entries:
            return sum(1 for e in entries if e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES)
    except OSError:
        return None


@dataclass
class _Clip:
    where: Where
    native: str
    frames: int
    tests: list
    trains: list


def _read_lists(root: Path, release: Release, problems: Problems) -> dict[str, _Clip]:
    clips: dict[str, _Clip] = {}
    folder = lists_folder(root, release)
    for name, number, part in release.lists:
        list_file = folder / name
        for line, tokens in token_lines(list_file, problems):
            at = where(list_file, line)
            if len(tokens) != 3:
                problems.add(at, f"expected '<frame folder> <frame count> <label>', found {len(tokens)} fields")
                continue
            raw, count, native = tokens
            if not count.isdigit() or int(count) == 0:
                problems.add(at, f"frame count '{count}' is not a positive integer")
                continue
            path = clip_path(raw, release.frames_folder)
            if path is None:
                problems.add(at, f"path '{raw}' escapes the dataset root (write it relative to the root, "
                             f"e.g. {release.frames_folder}/<clip>)")
                continue
            clip = clips.setdefault(path, _Clip(at, native, int(count), [], []))
            if (clip.native, clip.frames) != (native, int(count)):
                problems.add(at, f"'{path}' is listed with another label or frame count at {describe(clip.where)}")
            (clip.tests if part == "test" else clip.trains).append(number)
    return clips


def _assign(path: str, clip: _Clip, folded: bool, problems: Problems) -> dict | None:
    """{fold: …} (folded releases) or {split: …}, or None after reporting why the clip has neither."""
    if folded:
        if len(clip.tests) != 1:
            lists = f"the test lists of sets {' and '.join(map(str, clip.tests))}" if clip.tests else "no test list"
            problems.add(clip.where, f"'{path}' is in {lists}; a clip needs exactly one fold")
            return None
        if clip.tests[0] in clip.trains:
            problems.add(clip.where, f"'{path}' is in both the train and the test list of set {clip.tests[0]}")
            return None
        return dict(fold=clip.tests[0])
    if clip.tests and clip.trains:
        problems.add(clip.where, f"'{path}' is in both the train and the test list")
        return None
    return dict(split="test" if clip.tests else "train")


def _loader(release: Release):
    folded = release.lists[0][1] is not None

    def load(root: Path, dataset: Dataset, problems: Problems) -> pd.DataFrame:
        rows = []
        for path, clip in _read_lists(root, release, problems).items():
            placement = _assign(path, clip, folded, problems)
            if placement is None:
                continue
            found = _frame_count(root / path)
            if found is None:
                problems.add(clip.where, f"frame folder '{path}' is missing")
                continue
            if found != clip.frames:
                problems.add(clip.where, f"'{path}' is listed with {clip.frames} frames but holds {found}")
                continue
            rows.append(sample(path, clip.native, clip.where, frames=clip.frames, **placement))
        return table(rows, release.encoding, problems)
    return load


def _layout(key: str, tree: str) -> Layout:
    release = RELEASES[key]
    first = release.lists[0][0]
    return Layout(
        detect=lambda root: (lists_folder(root, release) / first).is_file(),
        load=_loader(release),
        description=f"DFER-CLIP lists ({first} …) in annotation/ or the root + frame folders under "
                    f"{release.frames_folder}/",
        tree=tree,
    )


LAYOUTS = {
    "dfew": _layout("dfew", """\
<root>/
├── annotation/
│   ├── DFEW_set_1_train.txt   DFEW_Frame_Face/00002 70 2   (folder, frame count, 0 happiness … 6 fear)
│   ├── DFEW_set_1_test.txt    a clip's fold is the set whose test list holds it
│   └── …                      DFEW_set_{1..5}_{train,test}.txt
└── DFEW_Frame_Face/
    └── 00001/   00001.jpg 00002.jpg …"""),
    "ferv39k": _layout("ferv39k", """\
<root>/
├── annotation/
│   ├── FERV39K_train.txt   2_ClipsforFaceCrop/Action/Happy/0267 29 0
│   └── FERV39K_test.txt
└── 2_ClipsforFaceCrop/
    └── <scene>/<Class>/<clip>/   frames"""),
    "mafw": _layout("mafw", """\
<root>/
├── annotation/
│   ├── MAFW_set_1_train.txt   data/faces/00025 47 3   (0 happiness … 6 fear, 7 contempt … 10 disappointment)
│   └── …                      MAFW_set_{1..5}_{train,test}.txt
└── data/
    └── faces/
        └── 00025/   frames"""),
}
