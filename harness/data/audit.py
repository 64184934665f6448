"""Leakage between the train, validation and test sides of a protocol's saved folds.

Checks, each over groups of table rows that must not be split across sides:
- byte-identical images: equal sha256 of the file (of the decoded pixels for a pixel-CSV row, of all frames for
  a video clip), between different files;
- near-duplicates: pairs of rows whose bytes differ and whose 256-bit difference hashes (dHash: a 17×16 grey
  thumbnail, one bit per horizontal gradient sign; of the face crop where the row has a box, of the middle frame
  of a clip) are at most `NEAR_BITS` bits apart. Candidates are found by splitting the hash into `NEAR_BITS + 1`
  bands (two hashes within `NEAR_BITS` bits agree on at least one band), so the search stays near-linear;
- the same subject, the same sequence, and the same photo (several labelled faces of one image file);
- conflicting labels: identical bytes and face box with different labels (a data problem, reported on its own;
  it does not decide the exit code).

A group leaks in a fold when its rows sit on two or more sides; the protocol leaks when any group does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from PIL import Image

from harness.data import images
from harness.data.protocols import Fold

HASH_SIDE = 16
"""dHash grid: 16×16 gradient signs = 256 bits. The common 8×8 (64-bit) hash cannot tell aligned faces apart:
on CK+48 it puts 6,049 pairs of different subjects within 4 bits."""
NEAR_BITS = 10
"""Hamming distance (of 256 bits) up to which two dHashes count as near-duplicates. On CK+48, consecutive frames
of one sequence are a median 9 bits apart and no two images of different subjects are closer than 22."""
SIDES = ("train", "val", "test")
PAIRS = (("train", "test"), ("val", "test"), ("train", "val"))
EXAMPLES = 3


@dataclass(frozen=True)
class Finding:
    check: str
    groups: int
    """Groups that leak in at least one fold."""
    folds: int
    """Folds in which at least one group leaks."""
    pairs: dict[str, int]
    """(group, fold) leaks by side pair, e.g. {'train–test': 12}."""
    examples: tuple[str, ...]
    leak: bool = True
    """False for findings that are data problems rather than leaks (conflicting labels)."""


@dataclass(frozen=True)
class Audit:
    dataset: str
    protocol: str
    splits_file: Path
    samples: int
    folds: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def leaks(self) -> bool:
        return any(f.leak and f.groups for f in self.findings)


def _dhash(image: Image.Image) -> np.ndarray:
    size = (HASH_SIDE + 1, HASH_SIDE)
    grey = np.asarray(image.convert("L").resize(size, Image.Resampling.BILINEAR), dtype=np.int16)
    return (grey[:, 1:] > grey[:, :-1]).ravel()


def _fingerprint(root: Path, path: str, box, frames) -> tuple[str, np.ndarray]:
    """(sha256 of the bytes, dHash of the picture) of one row."""
    if frames is not None and not pd.isna(frames):
        files = sorted(p for p in (root / path).iterdir() if p.is_file())
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.read_bytes())
        return digest.hexdigest(), _dhash(images.load(root, str(files[len(files) // 2].relative_to(root))))
    if "#" in path:
        picture = images.load(root, path)
        return hashlib.sha256(np.asarray(picture).tobytes()).hexdigest(), _dhash(picture.crop(box) if box else picture)
    data = (root / path).read_bytes()
    return hashlib.sha256(data).hexdigest(), _dhash(images.load(root, path, box))


def fingerprints(root: Path, table: pd.DataFrame, progress: Callable[[int, int], None] | None = None):
    """sha256 strings and dHash bits [rows, 256] of every row; `progress(done, total)` after each."""
    boxes, frames = images.row_boxes(table), table["frames"].tolist()
    shas, hashes = [], np.zeros((len(table), HASH_SIDE * HASH_SIDE), dtype=bool)
    for i, path in enumerate(table["path"].tolist()):
        sha, hashes[i] = _fingerprint(root, path, boxes[i], frames[i])
        shas.append(sha)
        if progress:
            progress(i + 1, len(table))
    return shas, hashes


def _groups(keys) -> list[np.ndarray]:
    """Rows sharing a key (missing keys skipped), groups of two rows or more."""
    series = pd.Series(list(keys))
    series = series[series.notna() & series.astype(str).ne("")]
    return [np.asarray(rows) for rows in series.groupby(series.astype(str)).indices.values() if len(rows) > 1]


def near_duplicate_pairs(hashes: np.ndarray, shas: list[str], bits: int = NEAR_BITS) -> list[np.ndarray]:
    """Pairs of rows whose dHashes are within `bits` and whose bytes differ (pairs, not chains: similar-looking
    neighbours must not merge a whole dataset into one group)."""
    found = set()
    edges = np.linspace(0, hashes.shape[1], bits + 2).astype(int)
    for start, end in zip(edges[:-1], edges[1:]):
        keys = [row.tobytes() for row in np.packbits(hashes[:, start:end], axis=1)]
        for rows in pd.Series(keys).groupby(keys).indices.values():
            if len(rows) < 2:
                continue
            block = hashes[rows]
            distance = (block[:, None, :] != block[None, :, :]).sum(axis=-1)
            for a, b in zip(*np.nonzero(np.triu(distance <= bits, k=1))):
                i, j = int(rows[a]), int(rows[b])
                if shas[i] != shas[j]:
                    found.add((i, j))
    return [np.array(pair) for pair in sorted(found)]


def _sides(folds: list[Fold], n: int) -> np.ndarray:
    """side[f, row]: 0 train, 1 val, 2 test, -1 unused in fold f."""
    side = np.full((len(folds), n), -1, dtype=np.int8)
    for f, fold in enumerate(folds):
        for s, name in enumerate(SIDES):
            side[f, getattr(fold, name)] = s
    return side


def leaks(check: str, groups: list[np.ndarray], side: np.ndarray, paths: list[str], describe=None) -> Finding:
    leaking, folds_hit, pairs, examples = set(), set(), {f"{a}–{b}": 0 for a, b in PAIRS}, []
    for g, rows in enumerate(groups):
        for f in range(side.shape[0]):
            present = {SIDES[s] for s in side[f, rows] if s >= 0}
            if len(present) < 2:
                continue
            leaking.add(g)
            folds_hit.add(f)
            for a, b in PAIRS:
                if a in present and b in present:
                    pairs[f"{a}–{b}"] += 1
            if len(examples) < EXAMPLES and g not in {e[0] for e in examples}:
                shown = ", ".join(f"{paths[r]} ({SIDES[side[f, r]]})" for r in rows[:4] if side[f, r] >= 0)
                more = f" … {len(rows) - 4} more" if len(rows) > 4 else ""
                label = f"{describe(rows)}: " if describe else ""
                examples.append((g, f"fold {f}: {label}{shown}{more}"))
    return Finding(check, len(leaking), len(folds_hit), pairs, tuple(text for _, text in examples))


def conflicts(table: pd.DataFrame, shas: list[str]) -> Finding:
    """Identical bytes and box, different labels: wherever they sit, one of the labels is wrong."""
    boxes = images.row_boxes(table)
    keys = [f"{sha}|{box}" for sha, box in zip(shas, boxes)]
    labels, paths = table["label"].tolist(), table["path"].tolist()
    bad = [rows for rows in _groups(keys) if len({labels[r] for r in rows}) > 1]
    examples = tuple(", ".join(f"{paths[r]} ({labels[r]})" for r in rows[:4]) for rows in bad[:EXAMPLES])
    return Finding("conflicting labels (same bytes and box)", len(bad), 0, {}, examples, leak=False)


def audit(dataset: str, protocol: str, splits_file: Path, root: Path, table: pd.DataFrame, folds: list[Fold],
          progress: Callable[[int, int], None] | None = None) -> Audit:
    shas, hashes = fingerprints(root, table, progress)
    side, paths = _sides(folds, len(table)), table["path"].tolist()
    byte_groups = [rows for rows in _groups(shas) if len({paths[r] for r in rows}) > 1]
    findings = [
        leaks("byte-identical images", byte_groups, side, paths),
        leaks(f"near-duplicate pairs (dHash ≤ {NEAR_BITS} of 256 bits)", near_duplicate_pairs(hashes, shas), side, paths),
        leaks("same subject", _groups(table["subject"]), side, paths,
              describe=lambda rows: f"subject {table['subject'].iloc[rows[0]]}"),
        leaks("same sequence", _groups(table["sequence"]), side, paths,
              describe=lambda rows: f"sequence {table['sequence'].iloc[rows[0]]}"),
        leaks("same photo (faces of one image file)", _groups(paths), side, paths),
        conflicts(table, shas),
    ]
    return Audit(dataset, protocol, splits_file, len(table), len(folds), findings)



def summary_table(result: Audit):
    """The audit as a rich table: one row per check, leaking groups, folds hit and (group, fold) leaks per side pair."""
    from rich.table import Table

    table = Table("check", "leaking groups", "folds", *(f"{a}–{b}" for a, b in PAIRS), "verdict",
                  title=f"{result.dataset}, protocol {result.protocol}: {result.samples} samples, {result.folds} folds")
    for f in result.findings:
        verdict = ("LEAK" if f.groups else "ok") if f.leak else ("data problem" if f.groups else "ok")
        table.add_row(f.check, str(f.groups), str(f.folds) if f.leak else "—",
                      *(str(f.pairs.get(f"{a}–{b}", 0)) if f.leak else "—" for a, b in PAIRS), verdict)
    return table
