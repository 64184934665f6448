"""The one training loop every adapter runs through.

Each epoch trains, then evaluates validation and test. The kept ("selected") epoch is chosen on
validation only; test figures of every epoch are recorded so that the final epoch and the
optimistic best-on-test number (what upstream papers report) can be stored beside it, clearly named.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from adapters.contract import Adapter
from harness.config import Recipe
from harness.run.metrics import classification_metrics
from harness.run.optim import build_optimizer, build_scheduler


@dataclass
class Split:
    images: Tensor  # uint8 [N, 3, H, W]
    labels: Tensor  # int64 [N]

    def __len__(self) -> int:
        return len(self.labels)


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


SELECTION_RULES = {
    "val_accuracy": ("accuracy", max),
    "val_balanced_accuracy": ("balanced_accuracy", max),
    "val_loss": ("loss", min),
}


def batches(n: int, size: int, drop_last: bool, generator: torch.Generator | None = None) -> list[Tensor]:
    """Index batches; shuffled when a generator is given. Never drops everything, never yields a batch of one."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    chunks = list(order.split(size))
    if len(chunks) > 1 and (drop_last and len(chunks[-1]) < size or len(chunks[-1]) == 1):
        chunks = chunks[:-1]
    return chunks


@torch.no_grad()
def evaluate(model, adapter: Adapter, split: Split, transform, batch_size: int, device, num_classes: int) -> Evaluation:
    model.eval()
    logits = []
    for idx in batches(len(split), batch_size, drop_last=False):
        out = model(transform(split.images[idx].to(device)))
        logits.append(adapter.logits(out).float().cpu())
    logits = torch.cat(logits)
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


def train(
    model: torch.nn.Module,
    adapter: Adapter,
    data: dict[str, Split],
    recipe: Recipe,
    selection: str,
    device: torch.device,
    num_classes: int,
    input_size: int,
    seed: int,
    on_epoch: Callable[[dict], None] = lambda record: None,
) -> LoopResult:
    model.to(device)
    optimizer = build_optimizer(model.parameters(), recipe)
    scheduler = build_scheduler(optimizer, recipe)
    train_tf, eval_tf = adapter.train_transform(input_size), adapter.eval_transform(input_size)
    generator = torch.Generator().manual_seed(seed)
    result = LoopResult()
    best_val: Evaluation | None = None
    has_val = len(data["val"]) > 0
    for epoch in range(1, recipe.epochs + 1):
        started = time.perf_counter()
        model.train()
        losses = []
        for idx in batches(len(data["train"]), recipe.batch_size, adapter.drop_last, generator):
            images = train_tf(data["train"].images[idx].to(device))
            loss = adapter.loss(model(images), data["train"].labels[idx].to(device))
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"non-finite training loss at epoch {epoch}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        eval_bs = recipe.batch_size * 2
        val = evaluate(model, adapter, data["val"], eval_tf, eval_bs, device, num_classes) if has_val else None
        test = evaluate(model, adapter, data["test"], eval_tf, eval_bs, device, num_classes)
        record = dict(
            epoch=epoch,
            train_loss=float(np.mean(losses)),
            lr=optimizer.param_groups[0]["lr"],
            val=val.summary() if val else None,
            test=test.summary(),
            seconds=time.perf_counter() - started,
        )
        result.history.append(record)
        if val is None or _better(selection, val, best_val):
            best_val = val
            result.selected_epoch, result.selected = epoch, test
        if result.oracle is None or test.metrics["accuracy"] > result.oracle["accuracy"]:
            result.oracle_epoch, result.oracle = epoch, test.summary()
        result.final = test
        on_epoch(record)
    return result
