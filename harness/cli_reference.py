"""The docs' command reference, rendered from the same command tree as `--help`, so the two cannot drift.

A docs page asks for a command's reference with a line `::: ferbench run` (`::: ferbench` for the global
options and the command list); `mkdocs_hooks.py` replaces each such line with `reference(...)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import typer
import typer.main
from typer.core import TyperArgument

MARKER = re.compile(r"^::: ferbench(?P<path>(?: [a-z][a-z0-9-]*)*)[ \t]*$", re.MULTILINE)
_EXTRA = re.compile(r"^(?P<help>.*?)\s*\[(?P<extra>[^\[\]]*)\]$", re.DOTALL)


@dataclass(frozen=True)
class Entry:
    """One command (or group) of the tree, with the context `--help` would render it in."""

    path: tuple[str, ...]
    command: typer.core.TyperCommand | typer.core.TyperGroup
    ctx: typer.Context

    @property
    def name(self) -> str:
        return " ".join(("ferbench", *self.path))


def commands(app: typer.Typer) -> dict[tuple[str, ...], Entry]:
    """Every command of the app by its path, the root first (path `()`), hidden ones left out."""
    root = typer.main.get_command(app)
    found: dict[tuple[str, ...], Entry] = {}

    def visit(command, path: tuple[str, ...], parent: typer.Context | None) -> None:
        ctx = typer.Context(command, info_name=path[-1] if path else "ferbench", parent=parent)
        found[path] = Entry(path, command, ctx)
        for name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                visit(sub, (*path, name), ctx)

    visit(root, (), None)
    return found


def plain(text: str) -> str:
    """A help text as the terminal shows it: the `\\[` escapes that keep Rich away, undone."""
    return text.replace("\\[", "[")


def _markdown(text: str) -> str:
    """Plain text as markdown: `<data-root>` is not an HTML tag (code spans are left as they are)."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _cell(text: str) -> str:
    return _markdown(" ".join(text.split())).replace("|", "\\|")


def usage(entry: Entry) -> str:
    pieces = entry.command.collect_usage_pieces(entry.ctx)
    if getattr(entry.command, "commands", None) and "COMMAND" not in " ".join(pieces):
        pieces.append("COMMAND [ARGS]...")
    return " ".join((entry.name, *pieces))


def _option_rows(entry: Entry) -> list[str]:
    rows = []
    for param in entry.command.get_params(entry.ctx):
        record = param.get_help_record(entry.ctx)
        if record is None:
            continue
        names, text = record
        if isinstance(param, TyperArgument):
            names = param.display_name_raw
            names += "..." if param.nargs != 1 and not names.endswith("...") else ""
        text = plain(text)
        match = _EXTRA.match(text)
        help_text, extra = (match["help"], match["extra"]) if match else (text, "")
        flag = ", ".join(f"`{part.strip()}`" for part in names.split(", "))
        rows.append(f"| {flag} | {_cell(help_text)}{f' *{_cell(extra)}*' if extra else ''} |")
    return rows


def reference(entry: Entry, pages: dict[tuple[str, ...], str] | None = None) -> str:
    """Markdown for one command: its usage, what it does, its arguments and options, its subcommands."""
    lines = ["```console", f"$ {usage(entry)}", "```", "", _markdown(plain(entry.command.help or "").strip()), ""]
    rows = _option_rows(entry)
    if rows:
        lines += ["| argument or option | meaning |", "|---|---|", *rows, ""]
    subs = getattr(entry.command, "commands", {})
    if subs:
        lines += ["| command | what it does |", "|---|---|"]
        for name, sub in subs.items():
            if sub.hidden:
                continue
            path = (*entry.path, name)
            label = f"`{' '.join(('ferbench', *path))}`"
            if pages and path in pages:
                label = f"[{label}]({pages[path]})"
            summary = plain(sub.get_short_help_str(limit=200))
            lines.append(f"| {label} | {_cell(summary)} |")
        lines.append("")
    return "\n".join(lines)


def markers(markdown: str) -> list[tuple[str, ...]]:
    """The command paths a page asks for, in page order."""
    return [tuple(m["path"].split()) for m in MARKER.finditer(markdown)]


def expand(markdown: str, entries: dict[tuple[str, ...], Entry], pages: dict[tuple[str, ...], str] | None = None) -> str:
    """Replace each `::: ferbench …` line with that command's reference; an unknown command is a KeyError."""
    def one(match: re.Match) -> str:
        path = tuple(match["path"].split())
        if path not in entries:
            raise KeyError(f"`::: {' '.join(('ferbench', *path))}`: no such command")
        return reference(entries[path], pages)

    return MARKER.sub(one, markdown)
