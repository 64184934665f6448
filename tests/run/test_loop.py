"""The training loop's recipe features and adapter hooks, on tiny in-process models."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from adapters.contract import Adapter, BuildContext
from harness.config import Recipe
from harness.run.loop import Split, Trainer, train
from harness.run.optim import build_optimizer, build_scheduler, lr_factor

CLASSES = 3


def recipe(**fields) -> Recipe:
    return Recipe(**{"optimizer": "sgd", "lr": 0.1, "epochs": 3, "batch_size": 4, "momentum": 0.0, **fields})


def split(n: int, seed: int) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(images=torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g), labels=torch.arange(n) % CLASSES)


DATA = {"train": split(12, 0), "val": split(6, 1), "test": split(6, 2)}
CTX = BuildContext(num_classes=CLASSES, input_size=8, pretrained=False)


def tiny(ctx=CTX) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, ctx.num_classes))


def to_float(size):
    return lambda batch: batch.float() / 255


def adapter(**hooks) -> Adapter:
    return Adapter(build=tiny, train_transform=to_float, eval_transform=to_float, **hooks)


def fit(adapter_: Adapter, recipe_: Recipe, model=None, seed=0):
    model = model or tiny()
    return model, train(model, adapter_, DATA, recipe_, "val_balanced_accuracy", torch.device("cpu"), CTX, seed)


def lrs_of(scheduler_cls, kwargs, epochs):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = scheduler_cls(opt, **kwargs)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize(
    "fields, torch_scheduler",
    [
        (dict(schedule="step", step_size=3, gamma=0.1), (torch.optim.lr_scheduler.StepLR, dict(step_size=3, gamma=0.1))),
        (dict(schedule="exponential", gamma=0.9), (torch.optim.lr_scheduler.ExponentialLR, dict(gamma=0.9))),
        (dict(schedule="multistep", milestones=(2, 5), gamma=0.5), (torch.optim.lr_scheduler.MultiStepLR, dict(milestones=[2, 5], gamma=0.5))),
        (dict(schedule="cosine"), (torch.optim.lr_scheduler.CosineAnnealingLR, dict(T_max=8))),
    ],
)
def test_per_epoch_factors_equal_torch_schedulers(fields, torch_scheduler):
    r = Recipe(optimizer="sgd", lr=1.0, epochs=8, batch_size=4, **fields)
    ours = [lr_factor(r, e) for e in range(8)]
    assert ours == pytest.approx(lrs_of(*torch_scheduler, epochs=8))


def test_delayed_exponential_decay_of_the_wujie_recipe():
    r = Recipe(optimizer="sgd", lr=1.0, epochs=30, batch_size=4, schedule="exponential", gamma=0.8, decay_start=20)
    assert [lr_factor(r, e) for e in (0, 20, 21, 23)] == pytest.approx([1, 1, 0.8, 0.8**3])


def test_per_step_warmup_then_cosine_to_the_floor():
    r = Recipe(optimizer="adamw", lr=1e-3, epochs=10, batch_size=4, schedule="cosine", schedule_unit="step", warmup_epochs=2, min_lr=1e-5)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=r.lr)
    sched = build_scheduler(opt, r, steps_per_epoch=4)
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    warm = lrs[:8]
    assert warm == sorted(warm) and warm[-1] < r.lr and lrs[8] == pytest.approx(r.lr)
    assert lrs[8:] == sorted(lrs[8:], reverse=True) and lrs[-1] > r.min_lr
    assert lr_factor(r, 10) * r.lr == pytest.approx(r.min_lr)


class RecordingSAM(torch.optim.Optimizer):
    """The interface of the upstreams' SAM (first_step / second_step around a base optimizer)."""

    calls: list[str] = []

    def __init__(self, params, base_optimizer, rho=0.05, **kwargs):
        super().__init__(params, dict(rho=rho, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups

    def first_step(self, zero_grad=False):
        self.calls.append("first")
        if zero_grad:
            self.zero_grad()

    def second_step(self, zero_grad=False):
        self.calls.append("second")
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()


def test_sam_recipe_runs_two_forward_passes_per_step_through_upstreams_class():
    forwards = []

    def counted(model, images, targets, criterion):
        forwards.append(len(images))
        return criterion(model(images), targets)

    RecordingSAM.calls = []
    sam_adapter = adapter(train_loss=counted, sam=lambda ctx: RecordingSAM)
    fit(sam_adapter, recipe(sam_rho=0.05, epochs=1))
    assert RecordingSAM.calls == ["first", "second"] * 3 and len(forwards) == 6

    forwards.clear()
    fit(adapter(train_loss=counted), recipe(epochs=1))
    assert len(forwards) == 3


def test_sam_without_an_upstream_class_is_refused():
    with pytest.raises(ValueError, match="no SAM optimizer"):
        build_optimizer([nn.Parameter(torch.zeros(1))], recipe(sam_rho=0.05))


class CentreLoss(nn.Module):
    """A loss with learnable parameters, like DAN's AffinityLoss centres."""

    def __init__(self):
        super().__init__()
        self.centre = nn.Parameter(torch.zeros(CLASSES))

    def forward(self, outputs, targets):
        return nn.functional.cross_entropy(outputs + self.centre, targets) + (self.centre - 1).pow(2).sum()


def test_learnable_loss_parameters_join_the_optimizer():
    losses = []
    fit(adapter(criterion=lambda ctx: losses.append(CentreLoss()) or losses[-1]), recipe(epochs=2))
    assert not torch.equal(losses[0].centre.detach(), torch.zeros(CLASSES))


def test_gradient_clamp_bounds_each_update():
    model = tiny()
    before = [p.detach().clone() for p in model.parameters()]
    huge = lambda ctx: (lambda outputs, targets: 1e6 * nn.functional.cross_entropy(outputs, targets))
    trainer = Trainer(model, adapter(criterion=huge), huge(CTX), recipe(lr=1.0, grad_clamp=0.1), CTX)
    trainer.step(DATA["train"].images[:4].float() / 255, DATA["train"].labels[:4], epoch=1)
    steps = torch.cat([(p.detach() - b).abs().flatten() for p, b in zip(model.parameters(), before)])
    assert steps.max() == pytest.approx(0.1) and steps.max() <= 0.1 + 1e-6


def test_gradient_norm_clipping_bounds_the_update_norm():
    model = tiny()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    huge = lambda ctx: (lambda outputs, targets: 1e6 * nn.functional.cross_entropy(outputs, targets))
    trainer = Trainer(model, adapter(criterion=huge), huge(CTX), recipe(lr=1.0, grad_clip_norm=5.0), CTX)
    trainer.step(DATA["train"].images[:4].float() / 255, DATA["train"].labels[:4], epoch=1)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm().item() == pytest.approx(5.0, rel=1e-4)


def test_epoch_hooks_run_in_order_around_each_training_pass():
    events = []
    hooks = adapter(
        epoch_start=lambda state: events.append(("start", state.epoch, state.epochs, len(state.train_labels))),
        epoch_end=lambda state: events.append(("end", state.epoch, state.model.training)),
    )
    fit(hooks, recipe(epochs=2))
    assert events == [("start", 1, 2, 12), ("end", 1, True), ("start", 2, 2, 12), ("end", 2, True)]


def test_eval_forward_is_used_for_every_evaluation():
    seen = []

    def doubled(model, images):
        seen.append(len(images))
        return model(images) * 2

    fit(adapter(eval_forward=doubled), recipe(epochs=2))
    assert sum(seen) == 2 * (len(DATA["val"]) + len(DATA["test"]))


def test_early_stopping_on_a_flat_validation_loss():
    """A model whose outputs never change has a constant validation loss: with patience 2 the third epoch
    brings no improvement for the second time and training stops there."""
    frozen = lambda ctx: (lambda outputs, targets: outputs.sum() * 0 + dummy.pow(2).sum())
    dummy = nn.Parameter(torch.ones(1))
    model = tiny()
    model.requires_grad_(False)
    model.register_parameter("dummy", dummy)
    _, result = fit(adapter(criterion=frozen), recipe(epochs=10, patience=2), model=model)
    assert result.stopped_early == 3 and len(result.history) == 3


def test_training_is_reproducible_with_the_same_seed():
    torch.manual_seed(0)
    _, a = fit(adapter(), recipe(epochs=2), seed=5)
    torch.manual_seed(0)
    _, b = fit(adapter(), recipe(epochs=2), seed=5)
    assert a.history[-1]["train_loss"] == b.history[-1]["train_loss"]
    assert math.isfinite(a.history[-1]["train_loss"])


def test_a_later_stage_starts_from_the_selected_weights_of_the_previous_one():
    from adapters.contract import Stage
    from harness.run.stages import train_stages

    built = []

    def second_build(ctx):
        built.append({k: v.clone() for k, v in ctx.previous.state_dict().items()})
        return ctx.previous

    second = Adapter(build=second_build, train_transform=to_float, eval_transform=to_float)
    two = Adapter(build=tiny, train_transform=to_float, eval_transform=to_float, stage="first", stages=(Stage("second", second),))
    first_recipe = recipe(epochs=3)
    captured = {}

    def spy(model, stage_adapter, **kwargs):
        out = train(model, stage_adapter, **kwargs)
        captured.setdefault("first", out)
        return out

    model, outcome, summaries = train_stages(
        two, CTX, first_recipe, {"second": recipe(epochs=1, lr=0.01).model_dump()}, run_loop=spy,
        data=DATA, selection="val_balanced_accuracy", device=torch.device("cpu"), seed=0,
    )
    assert list(summaries) == ["first", "second"]
    selected = captured["first"].selected_state
    assert all(torch.equal(built[0][k], selected[k]) for k in selected)
    assert len(summaries["first"]["history"]) == 3 and len(summaries["second"]["history"]) == 1
    assert outcome.selected_state is None


def test_a_stage_without_a_recipe_is_refused():
    from adapters.contract import Stage
    from harness.run.stages import train_stages

    two = Adapter(build=tiny, train_transform=to_float, eval_transform=to_float, stages=(Stage("cat", adapter()),))
    with pytest.raises(ValueError, match=r"stage\(s\) cat"):
        train_stages(two, CTX, recipe(), {}, data=DATA, selection="val_balanced_accuracy", device=torch.device("cpu"), seed=0)


def test_param_groups_give_each_group_its_own_lr_scaled_by_the_schedule():
    """DFER-CLIP's three learning rates: the adapter's groups reach the optimizer with their own lr, the schedule
    multiplies each, and parameters left out of every group are not optimized."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5), nn.Linear(5, CLASSES))
    left_out = nn.Parameter(torch.zeros(3))
    model.register_parameter("left_out", left_out)
    groups = lambda m, criterion, r: [
        {"params": list(m[2].parameters()), "lr": r.lr},
        {"params": list(m[1].parameters()), "lr": r.lr * 1e-3, "weight_decay": 0.0},
    ]

    def loss(model_, images, targets, criterion):  # the left-out parameter gets a gradient, yet must not move
        return criterion(model_(images), targets) + left_out.sum()

    r = recipe(lr=0.5, weight_decay=1e-2, schedule="multistep", milestones=(1,), gamma=0.1)
    trainer = Trainer(model, adapter(param_groups=groups, train_loss=loss), nn.functional.cross_entropy, r, CTX)
    opt = trainer.optimizer
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.5, 5e-4])
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-2, 0.0]
    assert len(trainer.params) == 4 and all(p is not left_out for p in trainer.params)
    scheduler = build_scheduler(opt, r, steps_per_epoch=1)
    trainer.step(DATA["train"].images[:4].float() / 255, DATA["train"].labels[:4], epoch=1)
    scheduler.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 5e-5])
    assert torch.equal(left_out.detach(), torch.zeros(3))

    _, result = fit(adapter(param_groups=groups), recipe(lr=0.5, epochs=2), model=model)
    assert len(result.history) == 2 and result.history[0]["lr"] == pytest.approx(0.5)


def test_amp_trains_in_bfloat16_and_changes_the_numbers():
    dtypes = []

    def spy(model, images, targets, criterion):
        outputs = model(images)
        dtypes.append(outputs.dtype)
        return criterion(outputs.float(), targets)

    _, plain = fit(adapter(train_loss=spy), recipe(epochs=1))
    assert set(dtypes) == {torch.float32}
    dtypes.clear()
    _, amp = fit(adapter(train_loss=spy), recipe(epochs=1, amp=True))
    assert set(dtypes) == {torch.bfloat16}
    assert amp.history[0]["train_loss"] != plain.history[0]["train_loss"]


@pytest.mark.parametrize("n", [1, 2, 8, 9, 17])
def test_evaluation_scores_every_sample_once_and_never_alone(n):
    from harness.run.loop import eval_batches

    chunks = eval_batches(n, 8)
    assert torch.equal(torch.cat(chunks), torch.arange(n))
    assert n == 1 or min(len(c) for c in chunks) > 1


def test_a_test_split_one_past_a_batch_multiple_is_scored_whole():
    data = dict(DATA, test=split(9, 7))
    result = train(tiny(), adapter(), data, recipe(epochs=1), "val_balanced_accuracy", torch.device("cpu"), CTX, seed=0)
    assert sum(map(sum, result.selected.metrics["confusion_matrix"])) == 9


def test_loss_scaling_is_a_no_op_on_the_cpu():
    torch.manual_seed(0)
    _, plain = fit(adapter(), recipe(epochs=2), seed=1)
    torch.manual_seed(0)
    _, scaled = fit(adapter(), recipe(epochs=2, loss_scaling=True), seed=1)
    assert [r["train_loss"] for r in plain.history] == [r["train_loss"] for r in scaled.history]


@pytest.mark.parametrize("start, after_warmup", [(0.0, True), (1e-3, False)])
def test_warmup_and_cosine_equal_timm(start, after_warmup):
    """CEPrompt's MAE-style `adjust_learning_rate` warms up from 0, then a cosine over the remaining epochs (timm
    with `warmup_prefix`); LNSU-Net's timm CosineLRScheduler warms up from `warmup_lr_init` and its cosine spans
    the whole run (no `warmup_prefix`)."""
    from timm.scheduler.cosine_lr import CosineLRScheduler

    steps_per_epoch, lr, total, warmup = 10, 5e-4, 60, 20
    r = Recipe(optimizer="adamw", lr=lr, epochs=total // steps_per_epoch, batch_size=4, schedule="cosine",
               schedule_unit="step", warmup_epochs=warmup / steps_per_epoch, warmup_start=start,
               cosine_after_warmup=after_warmup, min_lr=5e-6)
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=lr)
    timm = CosineLRScheduler(opt, t_initial=total - warmup if after_warmup else total, lr_min=5e-6,
                             warmup_lr_init=lr * start, warmup_t=warmup, cycle_limit=1, t_in_epochs=False,
                             warmup_prefix=after_warmup)
    for step in range(total + 5):
        timm.step_update(step)
        assert lr * lr_factor(r, step / steps_per_epoch) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
