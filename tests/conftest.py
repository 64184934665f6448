"""Shared fixtures: a small registry and a tiny synthetic dataset, made fresh for each test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

TINY_TOML = """
[defaults]
repeats = 2
base_seed = 0
device = "cpu"
val_fraction = 0.2

[models.baseline]
adapter = "baseline"
input_size = 32
[models.baseline.recipe]
optimizer = "adam"
lr = 1e-3
schedule = "cosine"
epochs = 1
batch_size = 8

[datasets.synthetic]
classes = ["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"]
layouts = ["split-folders"]
"""


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """data root holding `synthetic` with 8 images per class at 32 px."""
    from harness.data.synth import generate

    root = tmp_path_factory.mktemp("data")
    generate(root / "synthetic", images_per_class=8, size=32, seed=0)
    return root


@pytest.fixture
def workspace(tmp_path, tiny_dataset, monkeypatch) -> Path:
    """A working directory with a tiny registry; the CLI's paths point into it."""
    (tmp_path / "benchmark.toml").write_text(TINY_TOML)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FERBENCH_CONFIG", str(tmp_path / "benchmark.toml"))
    monkeypatch.setenv("FERBENCH_DATA_ROOT", str(tiny_dataset))
    monkeypatch.setenv("FERBENCH_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("FERBENCH_VENDOR_DIR", str(tmp_path / "vendor"))
    return tmp_path


def cli(*args: str) -> int:
    """Run `ferbench ARGS` in-process and return its exit code (0 when it returns normally)."""
    from harness.cli import main

    try:
        main(list(args))
    except SystemExit as done:
        return done.code or 0
    return 0


def ferbench_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", *args]


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(autouse=True, scope="session")
def _content_hash_cache(tmp_path_factory):
    """Dataset content hashes are cached per user (harness.data.content); tests keep theirs to themselves."""
    os.environ["FERBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("ferbench-cache"))
