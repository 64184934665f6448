"""The README is a front door: short, every link resolves, every command it shows links to its docs page."""

import re
from pathlib import Path

from harness.cli import app
from harness.cli_reference import commands, markers

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
LINKS = re.findall(r"\]\(([^)\s]+)\)", README)


def test_readme_is_short():
    assert len(README.splitlines()) <= 200


def test_relative_links_resolve():
    for link in LINKS:
        if not re.match(r"[a-z]+:", link):
            assert (REPO / link.split("#")[0]).exists(), link


def test_every_command_shown_links_to_the_page_documenting_it():
    pages = {}
    for page in (REPO / "docs").rglob("*.md"):
        for path in markers(page.read_text(encoding="utf-8")):
            pages[path] = page.relative_to(REPO).as_posix()
    known = {path[0] for path in commands(app) if path}
    shown = {name for name in re.findall(r"ferbench ([a-z]+)", README) if name in known}
    assert {"align", "run", "report", "demo"} <= shown
    for name in shown:
        assert pages[(name,)] in LINKS, f"`ferbench {name}` appears in the README without a link to {pages[(name,)]}"


def test_dataset_table_matches_the_registry():
    from harness.config import load

    config = load(REPO / "benchmark.toml")
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (\d+) \| `([a-z-]+)`", README, flags=re.M)
    assert {name for name, _, _ in rows} == set(config.datasets)
    for name, classes, protocol in rows:
        dataset = config.datasets[name]
        assert (int(classes), protocol) == (len(dataset.classes), dataset.protocol), name
