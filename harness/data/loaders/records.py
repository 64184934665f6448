"""Label files read line by line with their line numbers, so a malformed line is reported and the rest still read."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator, Sequence

from harness.data.problems import Problems, where


def _open(path: Path, problems: Problems):
    try:
        return path.open(encoding="utf-8-sig", errors="replace", newline="")
    except FileNotFoundError:
        problems.add(path, "label file is missing")
    except OSError as err:
        problems.add(path, f"cannot read the label file: {err.strerror}")
    return None


def token_lines(path: Path, problems: Problems) -> Iterator[tuple[int, list[str]]]:
    """(line number, whitespace-separated tokens) of each non-blank line."""
    handle = _open(path, problems)
    if handle is None:
        return
    with handle:
        for number, line in enumerate(handle, 1):
            tokens = line.split()
            if tokens:
                yield number, tokens


def csv_rows(
    path: Path, columns: Sequence[str], problems: Problems, headerless: Sequence[str] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: stripped value}) of each data row; the header must name every one of `columns`.

    With `headerless`, a file whose first row is not such a header is read as data with those column names.
    """
    handle = _open(path, problems)
    if handle is None:
        return
    with handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None:
            problems.add(path, "label file is empty")
            return
        names = [cell.strip() for cell in first]
        pending = None
        if not set(columns) <= set(names):
            if headerless is None:
                missing = ", ".join(c for c in columns if c not in names)
                problems.add(where(path, 1), f"missing column(s) {missing} (header: {', '.join(names)})")
                return
            names, pending = list(headerless), first
        rows = reader if pending is None else _prepend(pending, reader)
        for row in rows:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                problems.add(where(path, number), f"expected {len(names)} fields, found {len(row)}")
                continue
            yield number, {name: cell.strip() for name, cell in zip(names, row)}


def _prepend(first: list[str], rest) -> Iterator[list[str]]:
    yield first
    yield from rest
