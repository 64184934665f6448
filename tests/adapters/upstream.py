"""What the adapter unit tests share: the fetched upstream (or a skip saying how to get it) and an
isolated import path, since upstreams reuse top-level names (`networks`, `models`, `clip`, ...)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest import REPO


def fetched(name: str) -> tuple[Path, pytest.MarkDecorator]:
    """(vendor/<name>, a module-level skip mark for when it is not fetched)."""
    folder = REPO / "vendor" / name
    return folder, pytest.mark.skipif(not folder.is_dir(), reason=f"vendor/{name} not fetched; run `ferbench fetch {name}`")


def purge(top_level: tuple[str, ...], private_prefix: str = "") -> None:
    for module in list(sys.modules):
        if module.split(".")[0] in top_level or (private_prefix and module.startswith(private_prefix)):
            del sys.modules[module]


def on_path(folder: Path, top_level: tuple[str, ...] = (), private_prefix: str = "", cleanup=lambda: None) -> Iterator[None]:
    """Body of a module-scoped fixture: the upstream first on sys.path, as the worker does, and none of
    another upstream's modules before or after."""
    saved = list(sys.path)
    purge(top_level, private_prefix)
    cleanup()
    sys.path.insert(0, str(folder))
    yield
    sys.path[:] = saved
    purge(top_level, private_prefix)
    cleanup()


def drop_pkg_resources_stub() -> None:
    """The CLIP adapters register a stand-in `pkg_resources` when setuptools has none; tests remove it."""
    stub = sys.modules.get("pkg_resources")
    if stub is not None and getattr(stub, "__file__", None) is None:
        del sys.modules["pkg_resources"]
