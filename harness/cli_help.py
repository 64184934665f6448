"""What `--help` shows: real metavars and literal brackets, for every command at once.

Typer prints flags as `<bool>` and lists as `<list[str]>`, and reads help texts as Rich markup, so a
literal `[recipes.NAME]` vanishes. `HelpGroup` fixes both when the command tree is built, so each
option's help text stays a plain sentence (the docs' command reference is generated from the same tree).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

# Click's names for the value types, as metavars.
_METAVARS = {int: "INTEGER", float: "FLOAT", str: "TEXT", Path: "PATH"}
_UNESCAPED_BRACKET = re.compile(r"(?<!\\)\[")


def escape_markup(text: str | None) -> str | None:
    """`[` → `\\[` unless already escaped: help texts are plain prose, never Rich markup."""
    return None if text is None else _UNESCAPED_BRACKET.sub(r"\\[", text)


def metavar(param) -> str | None:
    """The metavar `--help` should show: none for a flag, the value's type name otherwise (None: Typer's choice list)."""
    if getattr(param, "is_flag", False):
        return ""
    described = param.type_descriptor
    if described.is_choice:
        return None
    annotation = get_args(described.annotation)[0] if described.is_list else described.annotation
    return _METAVARS.get(annotation, (param.name or "value").upper())


def tidy(command) -> None:
    """Give every parameter of `command` and its subcommands a metavar and escape their help texts."""
    for param in command.params:
        if isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = metavar(param)
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        param.help = escape_markup(getattr(param, "help", None))
    help_option = command.get_help_option(typer.Context(command))  # built once and cached by the command
    if help_option is not None:
        help_option.metavar = ""
    command.help = escape_markup(command.help)
    command.short_help = escape_markup(command.short_help)
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)


class _Argument(TyperArgument):
    """An argument shown by its name alone (`NAME`, `[NAME]...`), without Typer's `<str>` or `{NAME}`."""

    def display_type_rich(self, ctx) -> None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 and not name.endswith("...") else "")


class HelpGroup(TyperGroup):
    """The root command group: tidies the whole command tree once it is assembled."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        tidy(self)
