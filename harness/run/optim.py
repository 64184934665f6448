"""A model's recipe (from benchmark.toml) → torch optimizer (optionally upstream's SAM) and LR schedule.

Every schedule is one function of training progress, `lr_factor`, so per-epoch recipes (StepLR,
ExponentialLR, MultiStepLR, epoch cosine) and per-step ones (timm's warm-up + cosine) share one code
path and one LambdaLR; the factors equal torch's own schedulers at epoch boundaries.
"""

from __future__ import annotations

import math

import torch

from harness.config import Recipe

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def _optimizer_kwargs(recipe: Recipe) -> dict:
    kwargs = dict(lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        kwargs["momentum"] = recipe.momentum
    return kwargs


def build_optimizer(params, recipe: Recipe, sam_class: type | None = None) -> torch.optim.Optimizer:
    """The recipe's optimizer; under `sam_rho > 0` wrapped by the upstream's own SAM class."""
    base = OPTIMIZERS[recipe.optimizer]
    if recipe.sam_rho > 0:
        if sam_class is None:
            raise ValueError("the recipe sets sam_rho but the model's adapter provides no SAM optimizer")
        return sam_class(params, base, rho=recipe.sam_rho, **_optimizer_kwargs(recipe))
    return base(params, **_optimizer_kwargs(recipe))


def lr_factor(recipe: Recipe, progress: float) -> float:
    """Multiplier of `recipe.lr` after `progress` epochs (fractional under per-step schedules)."""
    warmup = recipe.warmup_epochs
    if progress < warmup:
        start = recipe.warmup_start
        return start + (1 - start) * progress / warmup
    done = math.floor(progress + 1e-9) if recipe.schedule_unit == "epoch" else progress
    if recipe.schedule == "cosine":
        floor = recipe.min_lr / recipe.lr
        begin = warmup if recipe.cosine_after_warmup else 0.0
        span = max(recipe.epochs - begin, 1e-9)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(done - begin, span) / span))
    if recipe.schedule == "step":  # after `decay_start` epochs, as WuJie1010's mainpro_FER.py (0 = StepLR)
        return recipe.gamma ** math.floor(max(0, math.floor(done) - recipe.decay_start) / recipe.step_size)
    if recipe.schedule == "exponential":
        return recipe.gamma ** max(0, math.floor(done) - recipe.decay_start)
    if recipe.schedule == "multistep":
        return recipe.gamma ** sum(math.floor(done) >= m for m in recipe.milestones)
    return 1.0


def build_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
    """A LambdaLR to step once per epoch (`schedule_unit = "epoch"`) or once per optimizer step."""
    per = 1 if recipe.schedule_unit == "epoch" else max(steps_per_epoch, 1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda count: lr_factor(recipe, count / per))
