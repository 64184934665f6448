"""The adapter contract: what the one training loop needs from a model, and nothing more.

An adapter is plain data with a few callables, so a model file stays short and declarative;
hooks exist only where an upstream's training truly differs from plain supervised learning:
a loss with learnable parameters (DAN's centres), two views per sample (LNSU-Net), per-epoch
state (Ada-DF), SAM's two-step update (POSTER, POSTER++) and test-time crops (the baselines).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from harness.config import Recipe

BatchTransform = Callable[[Tensor], Tensor]
"""Maps a uint8 batch [B, 3, H, W] (already at the model's input size) to the float input the model expects."""

Criterion = Callable[[Any, Tensor], Tensor]
"""(model outputs, targets) → scalar loss. An `nn.Module` criterion is moved to the device and its
parameters join the optimizer (DAN's affinity centres)."""


@dataclass(frozen=True)
class BuildContext:
    """What an adapter may know when it builds its model and loss: the task, never the test data."""

    num_classes: int
    input_size: int
    pretrained: bool
    weights_dir: Path | None = None
    upstream_dir: Path | None = None
    weights: Mapping[str, Path] = field(default_factory=dict)
    allowed_globals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per declared file: the globals benchmark.toml lets its pickle reference (`globals`)."""
    """Declared weight files (benchmark.toml name → path), already found and sha256-checked."""
    classes: tuple[str, ...] = ()
    class_counts: tuple[int, ...] = ()
    """Training-split sample count per class (LNSU-Net weights its CAM loss by class frequency)."""
    batch_size: int = 0
    epochs: int = 0
    previous: nn.Module | None = None
    """In a later stage: the previous stage's model, holding its validation-selected weights."""


@dataclass
class EpochState:
    """Handed to the per-epoch hooks: what Ada-DF needs to set its loss weights and rebuild its table."""

    model: nn.Module
    criterion: Criterion
    epoch: int
    epochs: int
    train_images: Tensor | None
    """uint8 [N, 3, S, S]; None for video datasets (clips are sampled per batch)."""
    train_labels: Tensor
    train_transform: BatchTransform
    batch_size: int
    device: Any


def cross_entropy_criterion(ctx: BuildContext) -> Criterion:
    return F.cross_entropy


def identity(outputs: Any) -> Tensor:
    return outputs


def plain_forward(model: nn.Module, images: Tensor) -> Any:
    return model(images)


def training_loss(model: nn.Module, images: Tensor, targets: Tensor, criterion: Criterion) -> Tensor:
    return criterion(model(images), targets)


@dataclass(frozen=True)
class Adapter:
    build: Callable[[BuildContext], nn.Module]
    train_transform: Callable[[int], BatchTransform]
    eval_transform: Callable[[int], BatchTransform]
    criterion: Callable[[BuildContext], Criterion] = cross_entropy_criterion
    """Builds the training loss once per run, from upstream's loss classes."""
    logits: Callable[[Any], Tensor] = identity
    """Model outputs → the [B, C] scores whose argmax is the prediction."""
    train_loss: Callable[[nn.Module, Tensor, Tensor, Criterion], Tensor] = training_loss
    """One training forward: (model, transformed images, targets, criterion) → loss. Called twice per
    step under SAM. LNSU-Net overrides it to add the flipped view."""
    eval_forward: Callable[[nn.Module, Tensor], Any] = plain_forward
    """Evaluation forward on a transformed batch (ten-crop averaging for the WuJie1010 baselines)."""
    eval_forward_given_labels: Callable[[nn.Module, Tensor, Tensor], Any] | None = None
    """A TEST-LABEL LEAK, for reproducing published protocols that commit one: an evaluation forward that takes the
    evaluated batch's true labels as model input, (model, transformed images, labels) → outputs; it replaces
    `eval_forward` on validation and test data. CLIVP-FER's published mode 1 feeds the true class's description as
    a caption. A model whose adapter sets it must say `test_label_input = true` in benchmark.toml; its result.json
    records it and reports name it beside the table and never rank it best."""
    epoch_start: Callable[[EpochState], None] | None = None
    epoch_end: Callable[[EpochState], None] | None = None
    sam: Callable[[BuildContext], type] | None = None
    """Returns upstream's SAM optimizer class; used when the recipe sets `sam_rho`."""
    param_groups: Callable[[nn.Module, Criterion, Recipe], list[dict]] | None = None
    """Optimizer parameter groups, for upstreams that train parts of the model at different rates (DFER-CLIP's
    three learning rates, CEPrompt's layer-wise decay): torch param-group dicts, each with its `params` and its
    own `lr` (derived from `recipe.lr`) and optionally `weight_decay`; the schedule multiplies each group's own lr.
    Only the parameters listed are optimized (and gradient-clipped). None: every parameter of the model and of an
    `nn.Module` criterion, at `recipe.lr`."""
    drop_last: bool = True
    """Upstream loaders drop the last partial batch: BatchNorm fails on a batch of one."""
    stage: str = "train"
    """Name of this (first) training stage; shown only when the adapter has later `stages`."""
    stages: tuple[Stage, ...] = ()
    """Later stages, each trained after the previous one and built from it (CEPrompt's EVA → CAT).
    Their recipes are `[models.NAME.stages.STAGE]` in benchmark.toml; all stages make one run."""


@dataclass(frozen=True)
class Stage:
    name: str
    adapter: Adapter
    """Its `build(ctx)` starts from `ctx.previous`."""


def reads_test_labels(adapter: Adapter) -> bool:
    """Whether evaluation hands the true labels to the model (see `Adapter.eval_forward_given_labels`)."""
    return adapter.eval_forward_given_labels is not None


def model_module_file(model: nn.Module, upstream_dir: Path | None = None) -> str:
    """The source file of the model's class, recorded so a run proves which code it ran. When an adapter
    bundles upstream modules in a wrapper of its own (MFER's backbone and heads), the first submodule
    whose class comes from the upstream checkout is named instead."""
    if upstream_dir is not None:
        root = Path(upstream_dir).resolve()
        for module in model.modules():
            path = Path(inspect.getfile(type(module))).resolve()
            if path.is_relative_to(root):
                return str(path)
    return inspect.getfile(type(model))
