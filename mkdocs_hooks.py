"""MkDocs hook: fill each `::: ferbench …` line with that command's reference (harness/cli_reference.py).

Every command must be documented on exactly one page; a missing or doubled one fails `mkdocs build --strict`.
"""

from __future__ import annotations

import logging
import posixpath

from harness.cli import app
from harness.cli_reference import commands, expand, markers

log = logging.getLogger("mkdocs.plugins.ferbench")
_ENTRIES = {}
_PAGES: dict[tuple[str, ...], str] = {}


def on_files(files, config):
    _ENTRIES.clear()
    _ENTRIES.update(commands(app))
    _PAGES.clear()
    seen: dict[tuple[str, ...], list[str]] = {}
    for file in files.documentation_pages():
        for path in markers(file.content_string):
            seen.setdefault(path, []).append(file.src_uri)
    for path in _ENTRIES:
        name = " ".join(("ferbench", *path))
        pages = seen.get(path, [])
        if not pages:
            log.warning(f"command `{name}` is documented on no page: add a line `::: {name}` to one")
        elif len(pages) > 1:
            log.warning(f"command `{name}` is documented on {len(pages)} pages ({', '.join(pages)}): keep one")
        else:
            _PAGES[path] = pages[0]
    for path, pages in seen.items():
        if path not in _ENTRIES:
            log.warning(f"{pages[0]}: `::: {' '.join(('ferbench', *path))}`: no such command")
    return files


def on_page_markdown(markdown, page, config, files):
    if not markers(markdown):
        return markdown
    here = posixpath.dirname(page.file.src_uri)
    links = {path: posixpath.relpath(src, here or ".") for path, src in _PAGES.items() if src != page.file.src_uri}
    try:
        return expand(markdown, _ENTRIES, links)
    except KeyError as error:
        log.warning(f"{page.file.src_uri}: {error.args[0]}")
        return markdown
