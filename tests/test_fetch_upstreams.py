"""Contract: every pin in benchmark.toml can be fetched from the real upstreams (or the user's mirrors).

Honours the user's git config, so `url.<base>.insteadOf` mirrors count as reachable; skips
when the registry or the upstreams are not available here.
"""

from __future__ import annotations

import io
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from harness import fetch as F

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
REGISTRY = Path(__file__).resolve().parents[1] / "benchmark.toml"


@dataclass(frozen=True)
class Upstream:
    name: str
    url: str
    commit: str
    licence: str
    optional_paths: tuple[str, ...] = ()


def registry_upstreams() -> list[Upstream]:
    if not REGISTRY.is_file():
        pytest.skip(f"{REGISTRY} does not exist yet")
    table = tomllib.loads(REGISTRY.read_text(encoding="utf-8")).get("upstreams")
    if not table:
        pytest.skip(f"{REGISTRY} has no [upstreams.<name>] sections yet")
    return [
        Upstream(name, u["url"], u["commit"], u["licence"], tuple(u.get("optional_paths", ())))
        for name, u in table.items()
    ]


def reachable(url: str) -> bool:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(["git", "ls-remote", url, "HEAD"], capture_output=True, env=env, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def test_every_pin_fetches(tmp_path: Path) -> None:
    upstreams = registry_upstreams()
    with ThreadPoolExecutor(max_workers=len(upstreams)) as pool:
        answers = list(pool.map(lambda u: reachable(u.url), upstreams))
    unreachable = [u.url for u, ok in zip(upstreams, answers) if not ok]
    if unreachable:
        pytest.skip(f"upstreams not reachable (no network and no insteadOf mirror): {', '.join(unreachable)}")

    vendor = tmp_path / "vendor"
    outcomes = F.fetch(upstreams, vendor, console=Console(file=io.StringIO(), width=200))
    failed = {o.name: o.error for o in outcomes if not o.ok}
    assert not failed
    for u, o in zip(upstreams, outcomes):
        assert set(o.absent_optional) <= set(u.optional_paths), u.name
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=vendor / u.name, capture_output=True, text=True)
        assert head.stdout.strip() == u.commit, u.name
    statuses = F.check(upstreams, vendor)
    assert [s.status for s in statuses] == ["ok"] * len(upstreams)
    again = F.fetch(upstreams, vendor, console=Console(file=io.StringIO()))
    assert [o.action for o in again] == ["up to date"] * len(upstreams)
