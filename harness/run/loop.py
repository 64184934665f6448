"""The one training loop every adapter runs through.

Each epoch trains, then evaluates validation and test. The kept ("selected") epoch is chosen on
validation only; test figures of every epoch are recorded so that the final epoch and the
optimistic best-on-test number (what upstream papers report) can be stored beside it, clearly named.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from adapters.contract import Adapter, BuildContext, EpochState
from harness.config import Recipe
from harness.data.video_cache import FrameCache
from harness.run.metrics import classification_metrics
from harness.run import checkpoint as checkpoints
from harness.run.device_augment import device_augmentation
from harness.run.optim import build_optimizer, build_scheduler
from harness.run.prefetch import Loader
from harness.run.running_loss import RunningLoss


@dataclass
class Split:
    images: Tensor  # uint8 [N, 3, H, W]
    labels: Tensor  # int64 [N]

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: Tensor, training: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """uint8 [B, 3, H, W]: the images at `idx` (the same in training and evaluation)."""
        return self.images[idx]


@dataclass
class VideoSplit:
    """Video clips, read from the frame cache (harness.data.video_cache) and sampled anew for every batch."""

    frames: FrameCache
    clips: np.ndarray  # table rows of this split's clips
    labels: Tensor  # int64 [N]
    images: None = None
    """No fixed images: what EpochState.train_images holds for a video split."""

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: Tensor, training: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """uint8 [B, 16, 3, H, W]: DFER-CLIP's 16 frames per clip; training draws TSN offsets from `generator`
        (the run's seeded one), evaluation takes each segment's middle frame."""
        return torch.from_numpy(self.frames.sample(self.clips[idx.numpy()], training, generator))


@dataclass
class Evaluation:
    loss: float
    probabilities: np.ndarray
    metrics: dict

    def summary(self) -> dict:
        return {"loss": self.loss, **{k: v for k, v in self.metrics.items() if k != "confusion_matrix"}}


@dataclass
class LoopResult:
    history: list[dict] = field(default_factory=list)
    selected_epoch: int = 0
    selected: Evaluation | None = None
    final: Evaluation | None = None
    oracle_epoch: int = 0
    oracle: dict | None = None
    stopped_early: int | None = None
    selected_state: dict | None = None
    """CPU copy of the weights at the selected epoch, kept when a later stage starts from them."""
    """The epoch early stopping (recipe `patience`, on validation loss) ended training at."""


SELECTION_RULES = {
    "val_accuracy": ("accuracy", max),
    "val_balanced_accuracy": ("balanced_accuracy", max),
    "val_loss": ("loss", min),
}


def batches(n: int, size: int, drop_last: bool, generator: torch.Generator | None = None) -> list[Tensor]:
    """Training index batches, shuffled when a generator is given. Never drops everything, never yields a
    batch of one (BatchNorm cannot train on it)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    chunks = list(order.split(size))
    if len(chunks) > 1 and (drop_last and len(chunks[-1]) < size or len(chunks[-1]) == 1):
        chunks = chunks[:-1]
    return chunks


def eval_batches(n: int, size: int) -> list[Tensor]:
    """Every sample exactly once, in order; a trailing batch of one joins the batch before it, since some
    upstream forwards squeeze the batch dimension."""
    chunks = list(torch.arange(n).split(size))
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


def mixed_precision(device, enabled: bool):
    """`--amp`: bfloat16 autocast (needs no loss scaling); off by default because it changes the numbers."""
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=enabled)


def model_input(images: Tensor, amp: bool) -> Tensor:
    """Under `--amp` image batches are also channels-last, the layout tensor cores prefer."""
    return images.contiguous(memory_format=torch.channels_last) if amp and images.dim() == 4 else images


@torch.no_grad()
def evaluate(model, adapter: Adapter, split: Split | VideoSplit, transform, batch_size: int, device, num_classes: int,
             amp: bool = False) -> Evaluation:
    model.eval()
    logits = []
    for images, labels in Loader(split, None, device).raw(eval_batches(len(split), batch_size)):
        with mixed_precision(device, amp):
            images = model_input(transform(images), amp)
            if adapter.eval_forward_given_labels is not None:  # a declared test-label leak (CLIVP-FER's mode 1)
                out = adapter.eval_forward_given_labels(model, images, labels)
            else:
                out = adapter.eval_forward(model, images)
        logits.append(adapter.logits(out).float())
    logits = torch.cat(logits).cpu()
    loss = F.cross_entropy(logits, split.labels).item()
    probabilities = logits.softmax(dim=1).numpy()
    metrics = classification_metrics(split.labels.numpy(), probabilities.argmax(1), num_classes)
    return Evaluation(loss=loss, probabilities=probabilities, metrics=metrics)


def _better(rule: str, candidate: Evaluation, best: Evaluation | None) -> bool:
    if best is None:
        return True
    key, pick = SELECTION_RULES[rule]
    a, b = candidate.summary()[key], best.summary()[key]
    return a != b and pick(a, b) == a


def _clip(params: list[Tensor], recipe: Recipe) -> None:
    if recipe.grad_clamp is not None:
        torch.nn.utils.clip_grad_value_(params, recipe.grad_clamp)
    if recipe.grad_clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip_norm)


class Trainer:
    """One optimizer step, plain or SAM's two passes (`first_step` at w + e(w), `second_step` back and update),
    with the recipe's gradient clipping applied right before the update."""

    def __init__(self, model, adapter: Adapter, criterion, recipe: Recipe, ctx: BuildContext):
        self.model, self.adapter, self.criterion, self.recipe = model, adapter, criterion, recipe
        if adapter.param_groups is not None:
            groups = adapter.param_groups(model, criterion, recipe)
            self.params = [p for group in groups for p in group["params"]]
        else:
            self.params = list(model.parameters())
            if isinstance(criterion, torch.nn.Module):
                self.params += list(criterion.parameters())
            groups = self.params
        sam = adapter.sam(ctx) if adapter.sam is not None and recipe.sam_rho > 0 else None
        self.optimizer = build_optimizer(groups, recipe, sam)
        self.sam = sam is not None
        on_cuda = any(p.is_cuda for p in self.params)
        # A no-op unless the recipe asks for it on a GPU: models that autocast to float16 inside their own
        # forward (LNSU-Net's Swin) were trained upstream with a GradScaler.
        self.scaler = torch.amp.GradScaler(
            "cuda", growth_interval=100, enabled=recipe.loss_scaling and on_cuda and not self.sam  # as train_exp.py
        )

    def loss(self, images: Tensor, targets: Tensor) -> Tensor:
        with mixed_precision(images.device, self.recipe.amp):
            return self.adapter.train_loss(self.model, model_input(images, self.recipe.amp), targets, self.criterion)

    def step(self, images: Tensor, targets: Tensor, epoch: int) -> Tensor:
        """The step's loss, detached and left on the device (reading it would wait for the device)."""
        loss = self.loss(images, targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.sam:
            self.optimizer.first_step(zero_grad=True)
            self.loss(images, targets).backward()
            _clip(self.params, self.recipe)
            self.optimizer.second_step(zero_grad=True)
        else:
            self.scaler.unscale_(self.optimizer)
            _clip(self.params, self.recipe)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return loss.detach()


def train(
    model: torch.nn.Module,
    adapter: Adapter,
    data: dict[str, Split | VideoSplit],
    recipe: Recipe,
    selection: str,
    device: torch.device,
    ctx: BuildContext,
    seed: int,
    on_epoch: Callable[[dict], None] = lambda record: None,
    keep_selected: bool = False,
    checkpoint: Path | None = None,
    on_resume: Callable[[int], None] = lambda epoch: None,
    loader_workers: int = 0,
    augment_on: str = "host",
    on_progress: Callable[[dict], None] | None = None,
    checkpoint_interval: float = 0.0,
    keep_last_checkpoint: bool = False,
) -> LoopResult:
    """Train for the recipe's epochs; with `checkpoint`, continue from it and save after an epoch once
    `checkpoint_interval` seconds have passed since the last save (0: after every epoch): a resume is exact from
    any epoch, and short epochs should not spend their time writing model and optimizer state.
    `keep_last_checkpoint` always saves the last epoch (a stage whose result a later stage starts from).

    `loader_workers` processes prepare training batches ahead (harness.run.prefetch; 0: inline, same
    numbers); `augment_on="device"` augments uint8 batches on the device instead (harness.run.device_augment).
    `on_progress` gets the running loss at most twice a second."""
    model.to(device, memory_format=torch.channels_last) if recipe.amp else model.to(device)
    criterion = adapter.criterion(ctx)
    if isinstance(criterion, torch.nn.Module):
        criterion.to(device)
    trainer = Trainer(model, adapter, criterion, recipe, ctx)
    optimizer = trainer.optimizer
    steps_per_epoch = len(batches(len(data["train"]), recipe.batch_size, adapter.drop_last))
    # SAM shares its base optimizer's param groups and steps only through it: schedule the one that steps.
    scheduler = build_scheduler(getattr(optimizer, "base_optimizer", optimizer), recipe, steps_per_epoch)
    per_step = recipe.schedule_unit == "step"
    train_tf, eval_tf = adapter.train_transform(ctx.input_size), adapter.eval_transform(ctx.input_size)
    on_device = device_augmentation(train_tf, augment_on)
    generator = torch.Generator().manual_seed(seed)
    result = LoopResult()
    best_val: Evaluation | None = None
    best_val_loss, stale = math.inf, 0
    has_val = len(data["val"]) > 0
    first = 1
    saved = checkpoints.load(checkpoint)
    if saved is not None:
        loop = checkpoints.restore(saved, model, criterion, optimizer, scheduler, generator, Evaluation, trainer.scaler)
        best_val, best_val_loss, stale = loop.pop("best_val"), loop.pop("best_val_loss"), loop.pop("stale")
        result = LoopResult(**loop)
        first = saved["epoch"] + 1
        on_resume(saved["epoch"])
    loader = Loader(data["train"], train_tf, device, loader_workers)
    last_saved = time.monotonic()
    for epoch in range(first, recipe.epochs + 1):
        if result.stopped_early is not None:
            break
        started = time.perf_counter()
        state = EpochState(
            model=model, criterion=criterion, epoch=epoch, epochs=recipe.epochs,
            train_images=data["train"].images, train_labels=data["train"].labels,
            train_transform=train_tf, batch_size=recipe.batch_size, device=device,
        )
        if adapter.epoch_start is not None:
            adapter.epoch_start(state)
        model.train()
        losses = RunningLoss(epoch, steps_per_epoch, on_progress)
        lr = optimizer.param_groups[0]["lr"]
        order = batches(len(data["train"]), recipe.batch_size, adapter.drop_last, generator)
        steps = loader.train(order, generator) if on_device is None else on_device.batches(loader, order, generator)
        for images, targets in steps:
            losses.add(trainer.step(images, targets, epoch))
            if per_step:
                scheduler.step()
        if not per_step:
            scheduler.step()
        if adapter.epoch_end is not None:
            adapter.epoch_end(state)
        eval_bs = recipe.batch_size * 2
        val = evaluate(model, adapter, data["val"], eval_tf, eval_bs, device, ctx.num_classes, recipe.amp) if has_val else None
        test = evaluate(model, adapter, data["test"], eval_tf, eval_bs, device, ctx.num_classes, recipe.amp)
        record = dict(
            epoch=epoch,
            train_loss=losses.mean(),
            lr=lr,
            val=val.summary() if val else None,
            test=test.summary(),
            seconds=time.perf_counter() - started,
        )
        result.history.append(record)
        if val is None or _better(selection, val, best_val):
            best_val = val
            result.selected_epoch, result.selected = epoch, test
            if keep_selected:
                result.selected_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        if result.oracle is None or test.metrics["accuracy"] > result.oracle["accuracy"]:
            result.oracle_epoch, result.oracle = epoch, test.summary()
        result.final = test
        on_epoch(record)
        if val is not None and recipe.patience is not None:
            best_val_loss, stale = (val.loss, 0) if val.loss < best_val_loss else (best_val_loss, stale + 1)
            if stale >= recipe.patience:
                result.stopped_early = epoch
        last = epoch == recipe.epochs or result.stopped_early is not None
        if checkpoint is not None and (time.monotonic() - last_saved >= checkpoint_interval or last and keep_last_checkpoint):
            bookkeeping = dict(vars(result), best_val=best_val, best_val_loss=best_val_loss, stale=stale)
            checkpoints.save(checkpoint, checkpoints.capture(epoch, model, criterion, optimizer, scheduler, generator, bookkeeping, trainer.scaler))
            last_saved = time.monotonic()
    return result
