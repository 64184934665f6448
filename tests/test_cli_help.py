"""`--help` for every command: bracketed text survives, metavars are real, every command has one docs page."""

import re
from pathlib import Path

import pytest
import typer
import typer.rich_utils

from harness.cli import app, main
from harness.cli_help import HelpGroup, escape_markup
from harness.cli_reference import commands, expand, markers, plain, reference

DOCS = Path(__file__).resolve().parents[1] / "docs"
ENTRIES = commands(app)
BOX = re.compile(r"[│╭╮╰╯─]+")


def rendered_help(path, monkeypatch, capsys) -> str:
    """What `ferbench PATH --help` prints on a wide terminal, with the box drawing and wrapping removed."""
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 400)
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code == 0
    return " ".join(BOX.sub(" ", capsys.readouterr().out).split())


@pytest.mark.parametrize("path", list(ENTRIES), ids=lambda p: " ".join(("ferbench", *p)))
def test_help_keeps_brackets_and_shows_real_metavars(path, monkeypatch, capsys):
    shown = rendered_help(path, monkeypatch, capsys)
    entry = ENTRIES[path]
    texts = [entry.command.help or ""] + [getattr(p, "help", None) or "" for p in entry.command.params]
    for text in texts:
        for bracketed in re.findall(r"\[[^\[\]]*\]", plain(text)):
            assert " ".join(bracketed.split()) in shown, f"{bracketed!r} lost from `{' '.join(path)} --help`"
    for typer_type in ("<bool>", "<list[", "<str>", "<int", "<path>", "<float", "(default )", "......"):
        assert typer_type not in shown, f"`{' '.join(path)} --help` shows {typer_type!r}"
    assert not re.search(r"\{[A-Z_]+\}", shown), f"`{' '.join(path)} --help` shows a {{NAME}} argument"


def test_brackets_are_escaped_once_and_metavars_follow_the_type(monkeypatch, capsys):
    assert escape_markup("a [recipes.NAME] and \\[kept]") == "a \\[recipes.NAME] and \\[kept]"
    demo = typer.Typer(cls=HelpGroup, add_completion=False)

    @demo.command()
    def go(
        name: list[str] = typer.Option([], help="Repeatable, see [section.KEY]."),
        flag: bool = typer.Option(False, "--flag", help="A flag."),
        size: int = typer.Option(3, help="A number."),
        where: Path = typer.Option(Path("."), help="A folder."),
    ) -> None:
        """Uses [brackets] too."""

    @demo.command()
    def other() -> None:
        """A second command, so `go` is a subcommand."""

    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 400)
    with pytest.raises(SystemExit):
        demo(["go", "--help"], prog_name="demo")
    shown = " ".join(BOX.sub(" ", capsys.readouterr().out).split())
    assert "--name TEXT Repeatable, see [section.KEY]." in shown
    assert "--flag A flag." in shown
    assert "--size INTEGER" in shown and "--where PATH" in shown
    assert "Uses [brackets] too." in shown


def test_bare_datasets_command_says_it_lists_the_datasets(monkeypatch, capsys):
    shown = rendered_help(("datasets",), monkeypatch, capsys)
    assert "Without a command: list every registered dataset" in shown


def test_every_command_is_documented_on_exactly_one_page():
    found: dict[tuple[str, ...], list[str]] = {}
    for page in DOCS.rglob("*.md"):
        for path in markers(page.read_text(encoding="utf-8")):
            found.setdefault(path, []).append(str(page.relative_to(DOCS)))
    for path in ENTRIES:
        assert len(found.get(path, [])) == 1, f"ferbench {' '.join(path)}: documented on {found.get(path, [])}"
    assert set(found) <= set(ENTRIES), f"pages name unknown commands: {set(found) - set(ENTRIES)}"


def test_reference_lists_every_option_with_its_plain_help():
    for path, entry in ENTRIES.items():
        text = reference(entry)
        for param in entry.command.params:
            for opt in param.opts if param.param_type_name == "option" else []:
                assert opt in text, f"{opt} missing from the reference of ferbench {' '.join(path)}"
    run = reference(ENTRIES[("run",)])
    assert "[recipes.NAME]" in run and "\\[" not in run
    assert "instead of &lt;data-root&gt;/NAME" in run
    with pytest.raises(KeyError, match="no such command"):
        expand("::: ferbench no-such-command\n", ENTRIES)
