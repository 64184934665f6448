"""The adapter contract: what the one training loop needs from a model, and nothing more.

An adapter is plain data with a few callables, so a model file stays short and declarative;
hooks exist only where an upstream's training truly differs from plain supervised learning.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch.nn.functional as F
from torch import Tensor, nn

BatchTransform = Callable[[Tensor], Tensor]
"""Maps a uint8 batch [B, 3, H, W] (already at the model's input size) to the float input the model expects."""


@dataclass(frozen=True)
class BuildContext:
    num_classes: int
    input_size: int
    pretrained: bool
    weights_dir: Path | None = None
    upstream_dir: Path | None = None
    trust_pickle: bool = False


def cross_entropy(outputs: Any, targets: Tensor) -> Tensor:
    return F.cross_entropy(outputs, targets)


def identity(outputs: Any) -> Tensor:
    return outputs


@dataclass(frozen=True)
class Adapter:
    build: Callable[[BuildContext], nn.Module]
    train_transform: Callable[[int], BatchTransform]
    eval_transform: Callable[[int], BatchTransform]
    loss: Callable[[Any, Tensor], Tensor] = cross_entropy
    logits: Callable[[Any], Tensor] = identity
    drop_last: bool = True
    """Upstream loaders drop the last partial batch: BatchNorm fails on a batch of one."""


def model_module_file(model: nn.Module) -> str:
    """The source file of the model's class, recorded so a run proves which code it ran."""
    return inspect.getfile(type(model))
