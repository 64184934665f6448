"""What happened to each image of an aligned set, kept so that an interrupted align resumes and a run can name
the exact set it read.

An aligned folder holds the crops (same relative paths as the samples, `.png`), `align.json` (the settings, and
where and how the set was made) and `manifest.csv` (one row per sample, table order). While an align is running,
each finished chunk of samples is appended to `manifest.jsonl`, a journal that survives a kill; the end of a run
merges it into `manifest.csv` (written atomically) and deletes it. `manifest_hash` covers the settings and
every row (landmarks and each crop's sha256 included), so it changes whenever any aligned pixel could have.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path, PurePosixPath

import pandas as pd

from harness.data.loaders.fer2013 import SEPARATOR, is_pixel_row
from harness.errors import FerbenchError
from harness.files import read_json, write_text_atomic

MANIFEST, JOURNAL, SETTINGS = "manifest.csv", "manifest.jsonl", "align.json"
STATUSES = ("ok", "multi-face", "no-face-fallback", "skipped", "error")
WRITTEN = frozenset({"ok", "multi-face", "no-face-fallback"})
"""Statuses whose sample has a crop in the aligned folder."""
POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
COLUMNS = (
    "path", "face_id", "output", "status", "mode", "search", "score", "faces",
    "box_left", "box_top", "box_right", "box_bottom", *(f"{p}_{axis}" for p in POINTS for axis in "xy"),
    "sha256", "reason",
)
"""`mode`: detect or resize; `search`: fast or full (which detection pass found the faces); `faces`: how many
were detected; box and landmarks (source pixels) are those of the chosen face; `reason` says why a sample is
not plain ok."""

Key = tuple[str, str]


def key(path: str, face_id) -> Key:
    """A sample's identity in the manifest: its path and its face id ('' where it has none)."""
    return path, "" if face_id is None or pd.isna(face_id) else str(int(face_id))


def output_name(path: str, face_id) -> str:
    """Where a sample's crop goes, relative to the aligned folder: its own path as `.png`; ExpW faces
    `<stem>_face<face id>.png`; a pixel-CSV row `fer2013.csv#17` → `fer2013/17.png`."""
    if is_pixel_row(path):
        container, _, line = path.rpartition(SEPARATOR)
        return (PurePosixPath(container).with_suffix("") / f"{line}.png").as_posix()
    source = PurePosixPath(path)
    face = key(path, face_id)[1]
    stem = f"{source.stem}_face{face}" if face else source.stem
    return source.with_name(f"{stem}.png").as_posix()


def _text(value) -> str:
    return "" if value is None else str(value)


def read_settings(out: Path) -> dict | None:
    file = out / SETTINGS
    if not file.is_file():
        return None
    try:
        return read_json(file)
    except (OSError, ValueError) as err:
        raise FerbenchError(f"{file}: cannot read the aligned set's settings: {err}") from None


def prepare(out: Path, wanted: dict, overwrite: bool) -> None:
    """Check that `out` holds no set or one made with the `wanted` settings; with `overwrite`, delete one made
    with others (its crops, manifest and settings)."""
    recorded = read_settings(out)
    if recorded is None or recorded.get("settings") == wanted:
        return
    if not overwrite:
        old = recorded.get("settings", {})
        keys = ["mode"] if old.get("mode") != wanted["mode"] else sorted(set(old) | set(wanted))
        changed = ", ".join(f"{k} {old.get(k)} → {wanted.get(k)}" for k in keys if old.get(k) != wanted.get(k))
        raise FerbenchError(f"{out / SETTINGS}: this folder holds a set aligned with other settings ({changed}); "
                            "pass --overwrite to replace it or --out to write elsewhere", exit_code=2)
    for record in read_records(out).values():
        if record.get("output"):
            (out / record["output"]).unlink(missing_ok=True)
    for name in (MANIFEST, JOURNAL, SETTINGS):
        (out / name).unlink(missing_ok=True)


def append(out: Path, records: list[dict]) -> None:
    """Add records to the journal and push them to disk, so a kill after this keeps them."""
    if not records:
        return
    with open(out / JOURNAL, "a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        handle.flush()
        os.fsync(handle.fileno())


def read_records(out: Path) -> dict[Key, dict]:
    """Every record of the set: `manifest.csv`, then the journal (later records win). A journal line cut short
    by a kill is ignored."""
    records: dict[Key, dict] = {}
    manifest, journal = out / MANIFEST, out / JOURNAL
    if manifest.is_file():
        with open(manifest, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                records[(row["path"], row["face_id"])] = row
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            records[(row["path"], _text(row["face_id"]))] = row
    return records


def write_manifest(out: Path, records: list[dict]) -> None:
    """`manifest.csv` with these records (atomically), then the journal is no longer needed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([_text(r.get(c)) for c in COLUMNS] for r in records)
    write_text_atomic(out / MANIFEST, buffer.getvalue())
    (out / JOURNAL).unlink(missing_ok=True)


def manifest_hash(out: Path) -> str:
    """sha256 of the aligned set at `out`: its settings and its manifest (every sample's status, landmarks and
    crop sha256)."""
    settings, manifest = read_settings(out), out / MANIFEST
    if settings is None or not manifest.is_file():
        raise FerbenchError(f"{out}: not an aligned set (no {SETTINGS} and {MANIFEST}); run `ferbench align`")
    digest = hashlib.sha256(json.dumps(settings["settings"], sort_keys=True).encode() + b"\n")
    digest.update(manifest.read_bytes())
    return digest.hexdigest()


def _resume(out: Path) -> str:
    """The align command that finishes the copy at `out`, folders included (plain `ferbench align` without them)."""
    from harness.align.placement import align_command

    try:
        return align_command(out)
    except FerbenchError:
        return "ferbench align"


def aligned_table(table: pd.DataFrame, out: Path) -> pd.DataFrame:
    """`table` (a dataset's table, as `load_table` reads it) with each sample's path replaced by its crop in the
    aligned set at `out` (paths relative to `out`, box cleared); samples the align skipped or could not read are
    left out, with a note in `attrs["notes"]`. A sample the set has no record of is an error: the align has not
    finished."""
    if (out / JOURNAL).is_file() or not (out / MANIFEST).is_file():
        raise FerbenchError(f"{out}: the aligned set is not finished (no {MANIFEST}, or an interrupted run left "
                            f"{JOURNAL}); run `{_resume(out)}` again to complete it")
    records = read_records(out)
    outputs, dropped, missing = [], {}, []
    for path, face_id in zip(table["path"], table["face_id"]):
        record = records.get(key(path, face_id))
        if record is None:
            missing.append(path)
            outputs.append(None)
        elif record["status"] in WRITTEN:
            outputs.append(record["output"])
        else:
            dropped[record["status"]] = dropped.get(record["status"], 0) + 1
            outputs.append(None)
    if missing:
        raise FerbenchError(f"{out / MANIFEST}: {len(missing)} samples of the dataset are not in the aligned set "
                            f"(e.g. {missing[0]}); run `{_resume(out)}` without --limit to align them")
    aligned = table.assign(path=outputs, box=None)
    aligned = aligned.loc[aligned["path"].notna()].reset_index(drop=True)
    notes = list(table.attrs.get("notes", []))
    if dropped:
        counts = ", ".join(f"{status} ×{n}" for status, n in sorted(dropped.items()))
        notes.append(f"{out / MANIFEST}: left out {sum(dropped.values())} samples without an aligned crop: {counts}")
    aligned.attrs.update(table.attrs, notes=notes, aligned=str(out))
    return aligned
