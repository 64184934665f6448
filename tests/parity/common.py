"""What every parity test module shares: the model's recipe from the repository's benchmark.toml and the build
context the worker would hand the adapter."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from adapters.contract import BuildContext
from harness import config
from tests.conftest import REPO


def recipe(model: str):
    """The model's own (`upstream`) recipe, as `ferbench run` resolves it."""
    cfg = config.load(REPO / "benchmark.toml")
    return cfg.recipe(cfg.model(model))


def context(upstream: Path, input_size: int, num_classes: int = 7, **kw) -> BuildContext:
    """Random init (`--no-pretrained`), as the worker builds it."""
    return BuildContext(num_classes=num_classes, input_size=input_size, pretrained=False, upstream_dir=upstream, **kw)


def labels(batch: int = 2) -> Tensor:
    return torch.tensor([3, 6, 0, 4][:batch])
