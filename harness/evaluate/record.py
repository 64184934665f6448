"""Evaluation records in the results store: `evaluations/<dataset>/<id>/` with evaluation.json and predictions.csv.

An evaluation scores fixed weights (a run's saved model or an upstream checkpoint) on a dataset split; its id is
the hash of the weights' sha256, the dataset manifest and the split, so the same question is answered once and a
changed file or dataset gets a new record. evaluation.json is written last: a folder without it is unfinished.
Evaluation folders sit two levels deep, apart from run folders (four levels), so run scans never see them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterator

from harness.files import read_json, write_json_atomic, write_text_atomic

FOLDER = "evaluations"
RECORD = "evaluation.json"
PREDICTIONS = "predictions.csv"


def evaluation_id(weights_sha256: str, manifest: str, split: dict, reading: dict) -> str:
    """The same file, data and split read another way (another model, class order or input size: another
    `[[checkpoints]]` entry) is another evaluation, never the stored one."""
    canonical = json.dumps(dict(weights=weights_sha256, manifest=manifest, split=split, reading=reading), sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def folder(results: Path, dataset: str, eval_id: str) -> Path:
    return results / FOLDER / dataset / eval_id


def existing(results: Path, dataset: str, eval_id: str) -> dict | None:
    path = folder(results, dataset, eval_id) / RECORD
    return read_json(path) if path.is_file() else None


def write(results: Path, record: dict, predictions_csv: str) -> Path:
    out = folder(results, record["dataset"], record["id"])
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / PREDICTIONS, predictions_csv)
    write_json_atomic(out / RECORD, record)
    return out


def records(results: Path) -> Iterator[dict]:
    """Every finished evaluation record, in a stable order."""
    base = results / FOLDER
    if not base.is_dir():
        return
    for path in sorted(base.glob(f"*/*/{RECORD}")):
        yield read_json(path)
