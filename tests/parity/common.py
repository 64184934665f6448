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


def namespace(script, argv=(), parser_names=None, **names) -> dict:
    """What upstream training scripts import at their top (the parts a training step uses), the script's own
    argparse defaults as `args`, and the CPU as `device`; `names` add or override."""
    import math
    import sys

    import numpy as np
    import torch.nn.functional as F
    from torch import nn
    from torchvision import datasets, transforms

    base = dict(sys=sys, math=math, np=np, torch=torch, nn=nn, F=F, transforms=transforms, datasets=datasets,
                device=torch.device("cpu"))
    if script is not None:
        base["args"] = script.arguments(argv, **(parser_names or {}))
    return {**base, **names}


def pil_images(images: Tensor) -> list:
    """uint8 [B, 3, H, W] → RGB PIL images, what an upstream dataset hands its transform."""
    from PIL import Image

    return [Image.fromarray(image.permute(1, 2, 0).numpy()) for image in images]


class Progress:
    """Stands in for tqdm around an upstream loader: iterates it, accepts `desc` and `set_*` calls."""

    def __init__(self, iterable=(), *args, **kwargs):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __len__(self):
        return len(self.iterable)

    def set_description(self, *args, **kwargs):
        pass

    def set_postfix(self, *args, **kwargs):
        pass
