"""Where an aligned copy lives: one rule for `ferbench align` (where to write) and `ferbench run --aligned`
(where to read), so neither leaves nor needs a half dataset folder.

The rule. By default a copy goes into the folder the dataset is read from, as `aligned_<size>/` (the layouts
never read such folders as data), and only when that folder is `<data-root>/<name>`. A dataset read from
elsewhere (`--dataset-dir`) gets no default place: ferbench never creates `<data-root>/<name>/` holding only
crops (it would pass for a broken dataset) and never writes into a `--dataset-dir` unasked; `--out` names the
place. Each copy's `align.json` records its dataset and source folder, so `run --aligned PATH` finds the raw
dataset again without `--dataset-dir`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.align.manifest import SETTINGS
from harness.errors import FerbenchError


def default_out(data_root: Path, dataset: str, size: int) -> Path:
    """`<data-root>/<dataset>/aligned_<size>`: where `ferbench align` writes by default."""
    return data_root / dataset / f"aligned_{size}"


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def align_target(data_root: Path, name: str, size: int, dataset_dir: Path | None, out: Path | None) -> Path:
    """Where `ferbench align` writes: `--out`, else `<data-root>/<name>/aligned_<size>` when the dataset is read
    from `<data-root>/<name>`; a `--dataset-dir` elsewhere without `--out` is refused with the commands to use."""
    home = data_root / name
    source = (dataset_dir or home).resolve()
    if out is not None:
        out = out.resolve()
        if out.is_relative_to(home.resolve()) and not _same(home, source) and not home.is_dir():
            raise FerbenchError(f"--out {out}: would create {home} holding only crops, which would pass for a broken "
                                f"copy of dataset '{name}'; give a folder outside it", exit_code=2)
        return out
    if dataset_dir is None or (home.is_dir() and _same(home, dataset_dir)):
        return default_out(data_root, name, size).resolve()
    inside = source / f"aligned_{size}"
    where = (f"--out {inside} (inside the dataset folder; its layouts ignore aligned_<size> folders)"
             if os.access(source, os.W_OK) else f"--out PATH on a writable disk ({source} is read-only)")
    raise FerbenchError(
        f"--dataset-dir {source}: the dataset is not read from {home}, so its aligned copy has no default place "
        f"and none is made there; give {where}, then train with `ferbench run --aligned PATH`", exit_code=2)


def run_source(data_root: Path, name: str, aligned: int | Path | None, dataset_dir: Path | None) -> tuple[Path, Path | None]:
    """(raw dataset folder, aligned copy or None) for a run: `--aligned SIZE` reads `aligned_<SIZE>/` in the
    folder the dataset is read from; `--aligned PATH` reads that copy, whose align.json names the raw folder."""
    if aligned is None:
        return (dataset_dir or data_root / name).resolve(), None
    if isinstance(aligned, int):
        raw = (dataset_dir or data_root / name).resolve()
        copy = raw / f"aligned_{aligned}"
        if not copy.is_dir():
            dir_option = f" --dataset-dir {raw}" if dataset_dir is not None else ""
            raise FerbenchError(
                f"{copy}: no aligned copy of '{name}' at size {aligned}; make it with "
                f"`ferbench align {name} --size {aligned}{dir_option}`, or give --aligned PATH for a copy made with --out",
                exit_code=2)
        return raw, copy
    copy = Path(aligned).resolve()
    made = read_settings(copy)
    if made.get("dataset") != name:
        raise FerbenchError(f"{copy / SETTINGS}: an aligned copy of '{made.get('dataset')}', not of '{name}'", exit_code=2)
    return (dataset_dir.resolve() if dataset_dir is not None else Path(made["source"])), copy


def read_settings(copy: Path) -> dict:
    """The copy's align.json (settings, dataset, source folder); an error naming the file when it is not one."""
    try:
        made = json.loads((copy / SETTINGS).read_text())
    except FileNotFoundError:
        raise FerbenchError(f"{copy}: not an aligned copy made by `ferbench align` (no {SETTINGS})", exit_code=2) from None
    except (OSError, ValueError) as error:
        raise FerbenchError(f"{copy / SETTINGS}: unreadable ({error})", exit_code=2) from None
    if not isinstance(made, dict) or "source" not in made or "settings" not in made:
        raise FerbenchError(f"{copy / SETTINGS}: not the settings file of an aligned copy", exit_code=2)
    return made


def align_command(copy: Path) -> str:
    """The `ferbench align` command that resumes `copy`, with the folders it was made from."""
    made = read_settings(copy)
    source, size = Path(made["source"]), made["settings"]["size"]
    out = "" if _same(copy, source / f"aligned_{size}") else f" --out {copy}"
    return f"ferbench align {made['dataset']} --size {size} --dataset-dir {source}{out}"
