"""Collect every problem a loader finds, so one pass over a dataset reports all of them, not just the first.

`errors` make a dataset unusable (a malformed line, a missing image); `notes` record what a loader left out
on purpose (FERPlus images without a majority label, KMU-FED byte duplicates), so nothing is dropped silently.
Both are one-line strings `path:line: reason` (the line is left out where there is none); errors come sorted
by file and line, whatever order the checks found them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

Where = tuple[str, "int | None"]
"""(file, line) a problem is reported at; the line is None for a file or folder as a whole."""


def where(path: Path | str, line: int | None = None) -> Where:
    return str(path), line


def describe(at: Where | Path | str) -> str:
    """`path:line` (or `path`) for a message."""
    path, line = at if isinstance(at, tuple) else (str(at), None)
    return f"{path}:{line}" if line is not None else path


@dataclass
class Problems:
    found: list[tuple[Where, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, at: Where | Path | str, reason: str) -> None:
        self.found.append((at if isinstance(at, tuple) else where(at), reason))

    def note(self, at: Where | Path | str, reason: str) -> None:
        self.notes.append(f"{describe(at)}: {reason}")

    @property
    def errors(self) -> list[str]:
        ordered = sorted(self.found, key=lambda item: (item[0][0], -1 if item[0][1] is None else item[0][1]))
        return [f"{describe(at)}: {reason}" for at, reason in ordered]
