"""Terminal tables that wrap instead of cutting: a path or URL cut to `/work/wt/fir…` cannot be copied."""

from __future__ import annotations

from rich.table import Table


def folded(table: Table) -> Table:
    """`table` with every column folding long cells onto more lines (Rich's default cuts them with an ellipsis)."""
    for column in table.columns:
        column.overflow = "fold"
    return table
