"""Provenance cannot lie: a modified vendor tree stops `ferbench run` unless allowed, and is then recorded."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness.config import parse
from harness.errors import FerbenchError
from harness.paths import Paths
from harness.run.plan import Request, grid
from tests.conftest import TINY_TOML


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def toy(workspace):
    """vendor/toy: a git checkout at its pin, and a registry whose baseline model names it as its upstream."""
    tree = workspace / "vendor" / "toy"
    tree.mkdir(parents=True)
    git("init", "-q", cwd=tree)
    (tree / "model.py").write_text("WIDTH = 4\n")
    git("add", "model.py", cwd=tree)
    git("commit", "-q", "-m", "pin", cwd=tree)
    pin = git("rev-parse", "HEAD", cwd=tree)
    toml = TINY_TOML.replace('adapter = "baseline"\n', 'adapter = "baseline"\nupstream = "toy"\n') + (
        f'\n[upstreams.toy]\nurl = "https://example.org/toy"\ncommit = "{pin}"\nlicence = "MIT"\n'
    )
    (workspace / "benchmark.toml").write_text(toml)
    return tree, parse(toml), pin


def plan(workspace, cfg, **kw):
    paths = Paths(data_root=Path(__import__("os").environ["FERBENCH_DATA_ROOT"]), results=workspace / "results",
                  vendor=workspace / "vendor", weights=workspace / "weights")
    return grid(cfg, paths, Request(repeats=1, **kw), ["baseline"], ["synthetic"])[0]


def test_a_clean_tree_runs_with_the_pinned_ids(toy, workspace):
    _, cfg, _ = toy
    (job,) = plan(workspace, cfg)
    assert job.spec.upstream == "toy" and job.spec.upstream_diff is None


@pytest.mark.parametrize("change", ["edited", "untracked", "other commit"])
def test_a_modified_tree_is_refused_naming_the_files(toy, workspace, change):
    tree, cfg, pin = toy
    if change == "edited":
        (tree / "model.py").write_text("WIDTH = 8\n")
        named = "1 changed: model.py"
    elif change == "untracked":
        (tree / "patch.py").write_text("print('hi')\n")
        named = "1 untracked: patch.py"
    else:
        (tree / "model.py").write_text("WIDTH = 16\n")
        git("commit", "-q", "-am", "local", cwd=tree)
        named = f"not the pinned {pin[:12]}"
    with pytest.raises(FerbenchError) as caught:
        plan(workspace, cfg)
    message = str(caught.value)
    assert message.startswith(f"{tree}: upstream 'toy' is not its pinned commit") and named in message
    assert "--allow-modified-upstream" in message and "\n" not in message
    (job,) = plan(workspace, cfg, allow_modified_upstream=True)
    assert job.spec.upstream_diff and len(job.spec.upstream_diff) == 64 and job.allow_modified_upstream


def test_the_diff_hash_follows_the_change(toy, workspace):
    tree, cfg, _ = toy
    (tree / "model.py").write_text("WIDTH = 8\n")
    (first,) = plan(workspace, cfg, allow_modified_upstream=True)
    (tree / "model.py").write_text("WIDTH = 9\n")
    (second,) = plan(workspace, cfg, allow_modified_upstream=True)
    git("checkout", "model.py", cwd=tree)
    (pinned,) = plan(workspace, cfg)
    assert len({first.spec.run_id, second.spec.run_id, pinned.spec.run_id}) == 3


@pytest.mark.slow
def test_an_allowed_modified_run_is_recorded_and_labelled(toy, workspace, capsys):
    from harness.cli import main

    tree, _, _ = toy
    (tree / "notes.txt").write_text("local experiment\n")
    with pytest.raises(SystemExit) as done:
        main(["run", "--model", "baseline", "--dataset", "synthetic", "--repeats", "1", "--allow-modified-upstream"])
    assert (done.value.code or 0) == 0, capsys.readouterr().err
    (env_file,) = (workspace / "results").rglob("env.json")
    env = json.loads(env_file.read_text())
    assert env["upstream_dirty"] is True and env["upstream_untracked"] == ["notes.txt"]
    assert len(env["upstream_diff_sha256"]) == 64
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["report"])
    out = capsys.readouterr().out
    assert "baseline (modified upstream)" in out and "modified upstream: see env.json" in out
