"""Run one training step the upstream's own way and the ferbench way, and record what each did.

The upstream side executes the upstream training script's own statements, read from `vendor/` at test time and
compiled from its syntax tree: its argparse defaults, the setup statements of its training function (losses,
transforms, optimizer, ...) and the body of its training loop for one batch, up to and including the optimizer
step. Nothing of the script is copied into ferbench. The only rewrite is `x.cuda(...)` → `x` (every upstream
moves tensors and models to a GPU unconditionally; these tests run on CPU).

The ferbench side builds the model and loss through the adapter and steps with the loop's own `Trainer` (the
optimizer from `harness/run/optim.py`, SAM, clipping, the GradScaler), after the adapter's `epoch_start` hook.

Both sides are recorded the same way: every tensor `.backward()` is called on (the losses, both SAM passes),
the gradients each time the optimizer steps (`step`, SAM's `first_step` / `second_step`), and the parameters
and buffers after the step. `assert_identical` compares them with `torch.equal`.
"""

from __future__ import annotations

import argparse
import ast
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

STEP_CALLS = ("step", "second_step")
"""A loop-body statement calling one of these (`optimizer.step()`, `amp.step(opt)`, SAM's `second_step`) ends
the step; nothing after it (logging, accuracy bookkeeping, checkpoints) runs."""


class _CudaToCpu(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "cuda":
            return node.func.value
        return node


def _stores(node: ast.AST, names: Sequence[str]) -> bool:
    """Whether `node` assigns one of `names` (the name, an item or attribute of it, or augmented)."""
    for sub in ast.walk(node):
        targets = []
        if isinstance(sub, ast.Assign):
            targets = sub.targets
        elif isinstance(sub, (ast.AugAssign, ast.AnnAssign)):
            targets = [sub.target]
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name) and leaf.id in names and isinstance(leaf.ctx, ast.Store):
                    return True
                if (isinstance(leaf, (ast.Subscript, ast.Attribute)) and isinstance(leaf.value, ast.Name)
                        and leaf.value.id in names and isinstance(leaf.ctx, ast.Store)):
                    return True
    return False


def _calls(node: ast.AST, attributes: Sequence[str]) -> bool:
    return any(
        isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in attributes
        for sub in ast.walk(node)
    )


class Script:
    """An upstream training script, parsed (never imported)."""

    def __init__(self, path: Path):
        self.path = path
        self.tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def function(self, name: str) -> ast.FunctionDef:
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return node
        raise AssertionError(f"{self.path}: no function {name}() any more")

    def _run(self, statements: list[ast.stmt], namespace: dict) -> None:
        module = ast.fix_missing_locations(_CudaToCpu().visit(ast.Module(body=statements, type_ignores=[])))
        exec(compile(module, str(self.path), "exec"), namespace)

    def definitions(self, names: Sequence[str], namespace: dict) -> dict:
        """The script's top-level classes and functions `names`, defined into `namespace`."""
        picked = [n for n in self.tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name in names]
        missing = set(names) - {n.name for n in picked}
        assert not missing, f"{self.path}: no longer defines {sorted(missing)}"
        self._run(picked, namespace)
        return namespace

    def arguments(self, argv: Sequence[str] = (), **names) -> argparse.Namespace:
        """The script's argparse defaults: its `parse_args()` function, or its module-level `parser` statements (also
        under `if __name__ == "__main__":`); `names`: what those statements use besides argparse."""
        namespace: dict = {"argparse": argparse, **names}
        if any(isinstance(n, ast.FunctionDef) and n.name == "parse_args" for n in self.tree.body):
            self.definitions(("parse_args",), namespace)
            saved = sys.argv
            sys.argv = [str(self.path), *argv]
            try:
                return namespace["parse_args"]()
            finally:
                sys.argv = saved
        module = [*self.tree.body, *(s for n in self.tree.body if isinstance(n, ast.If) for s in n.body)]
        statements = [
            n for n in module
            if (isinstance(n, ast.Assign) and _stores(n, ("parser",)))
            or (isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) and _calls(n, ("add_argument",)))
        ]
        assert statements, f"{self.path}: no argparse parser found"
        self._run(statements, namespace)
        return namespace["parser"].parse_args(list(argv))

    def setup(self, function: str, names: Sequence[str], namespace: dict, calls: Sequence[str] = ()) -> dict:
        """Run, in source order, the top-level statements of `function` (or of the module, for `None`) that assign
        any of `names` or are a bare call of one of `calls` (`convert_models_to_fp32(model)`), before its training
        loop (the first statement that steps an optimizer or scheduler); every name must be assigned."""
        body = self.tree.body if function is None else self.function(function).body
        end = next((i for i, n in enumerate(body) if _calls(n, ("step",))), len(body))
        def wanted(n: ast.stmt) -> bool:
            if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call):
                return getattr(n.value.func, "id", None) in calls
            return not isinstance(n, (ast.FunctionDef, ast.ClassDef)) and _stores(n, names)

        picked = [n for n in body[:end] if wanted(n)]
        missing = [name for name in names if not any(_stores(n, (name,)) for n in picked)]
        assert not missing, f"{self.path}: {function or 'the module'} no longer assigns {missing}"
        self._run(picked, namespace)
        return namespace

    def argument(self, function: str | None, target: str, index: int | str, namespace: dict) -> Any:
        """Evaluate argument `index` (a position or a keyword) of the call assigned to `target` in `function` (a
        transform passed inline to a dataset: `val_dataset = ImageFolder(valdir, transforms.Compose([...]))`)."""
        scope = self.tree if function is None else self.function(function)
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and _stores(node, (target,)) and isinstance(node.value, ast.Call):
                call = node.value
                value = call.args[index] if isinstance(index, int) else next(k.value for k in call.keywords if k.arg == index)
                expression = ast.fix_missing_locations(ast.Expression(body=value))
                return eval(compile(expression, str(self.path), "eval"), namespace)
        raise AssertionError(f"{self.path}: {function or 'the module'} no longer assigns {target} = <call>")

    def literal_arguments(self, name: str) -> list:
        """The literal positional arguments of the first call of `name` (train.py's `main(0.01, 0.3)`)."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == name:
                return [ast.literal_eval(a) for a in node.args]
        raise AssertionError(f"{self.path}: no call of {name}() any more")

    def class_expression(self, cls: str, target: str, namespace: dict, nth: int = 0) -> Any:
        """Evaluate the `nth` call assigned to `target` inside class `cls`, in source order (a dataset's
        `self.transform`: the train one, then the test one)."""
        for node in self.tree.body:
            if isinstance(node, ast.ClassDef) and node.name == cls:
                found = [
                    sub.value for sub in ast.walk(node)
                    if isinstance(sub, ast.Assign) and ast.unparse(sub.targets[0]) == target
                    and isinstance(sub.value, ast.Call)
                ]
                found.sort(key=lambda value: (value.lineno, value.col_offset))
                if len(found) > nth:
                    return eval(compile(ast.Expression(body=found[nth]), str(self.path), "eval"), namespace)
        raise AssertionError(f"{self.path}: {cls} no longer assigns {target}")

    def step(self, function: str, loader: str, namespace: dict, batch: tuple, until: str | None = None,
             index: int = 0) -> dict:
        """One iteration of the first `for ... in <loader>` loop of `function`, its target bound to `batch`: the
        statements before the loop in the same block (per-epoch counters, `model.train()`, Ada-DF's α), then the
        loop body up to and including the statement that steps the optimizer (or, with `until`, that assigns
        `until`: an evaluation loop's averaged outputs)."""
        found = None
        for node in ast.walk(self.function(function)):
            for block in (getattr(node, "body", None), getattr(node, "orelse", None)):
                if not isinstance(block, list):
                    continue
                for position, stmt in enumerate(block):
                    if isinstance(stmt, ast.For) and any(
                        isinstance(n, ast.Name) and n.id == loader for n in ast.walk(stmt.iter)
                    ):
                        found = found or (block, position)
        assert found is not None, f"{self.path}: {function}() has no loop over {loader}"
        block, position = found
        loop = block[position]
        done = (lambda s: _stores(s, (until,))) if until else (lambda s: _calls(s, STEP_CALLS))
        end = next((i for i, s in enumerate(loop.body) if done(s)), None)
        assert end is not None, f"{self.path}: the loop over {loader} no longer {'assigns ' + until if until else 'steps an optimizer'}"
        if isinstance(loop.iter, ast.Call) and getattr(loop.iter.func, "id", None) == "enumerate":
            batch = (index, batch)  # `for i, (x, y) in enumerate(loader)`: batch number `index`
        namespace["__batches__"] = [batch]
        once = ast.For(target=loop.target, iter=ast.Name(id="__batches__", ctx=ast.Load()),
                       body=loop.body[: end + 1], orelse=[])  # a loop still, for its `continue` / `break`
        self._run([*block[:position], once], namespace)
        return namespace


@dataclass
class Record:
    losses: list[Tensor] = field(default_factory=list)
    """Every tensor `.backward()` was called on, in order."""
    grads: list[dict[str, Tensor | None]] = field(default_factory=list)
    """Gradients by parameter name, each time the optimizer stepped (before the update)."""
    after: dict[str, Tensor] = field(default_factory=dict)
    """Parameters and buffers after the step."""


@contextmanager
def recording(optimizer, named: dict[str, Tensor]) -> Iterator[Record]:
    """Record losses and gradients while a step runs; `named` maps comparable names to this side's parameters."""
    record = Record()
    original_backward = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        record.losses.append(self.detach().clone())
        return original_backward(self, *args, **kwargs)

    def snapshot(method):
        def wrapped(*args, **kwargs):
            record.grads.append({k: None if p.grad is None else p.grad.detach().clone() for k, p in named.items()})
            return method(*args, **kwargs)
        return wrapped

    patched = [name for name in ("step", "first_step", "second_step") if hasattr(optimizer, name)]
    for name in patched:
        setattr(optimizer, name, snapshot(getattr(optimizer, name)))
    torch.Tensor.backward = backward
    try:
        yield record
    finally:
        torch.Tensor.backward = original_backward
        for name in patched:
            delattr(optimizer, name)
    record.after = {k: p.detach().clone() for k, p in named.items()}


def named_state(model: nn.Module, **extra: Tensor) -> dict[str, Tensor]:
    """Parameters and buffers of `model` by name (DataParallel's `module.` prefix dropped), plus `extra`."""
    state = {k.removeprefix("module."): v for k, v in model.state_dict(keep_vars=True).items()}
    return {**state, **extra}


def ferbench_step(adapter, ctx, recipe, model: nn.Module, criterion, images: Tensor, labels: Tensor,
                  named: dict[str, Tensor], epoch: int = 1, seed: int = 1, steps_per_epoch: int = 1,
                  steps: int = 1) -> Record:
    """The first step as `harness/run/loop.py::train` takes it: the loop's `Trainer` (optimizer, SAM, clipping,
    scaler) and LR schedule at its start, `epoch_start`, train mode."""
    from adapters.contract import EpochState
    from harness.run.loop import Trainer
    from harness.run.optim import build_scheduler

    trainer = Trainer(model, adapter, criterion, recipe, ctx)
    optimizer = trainer.optimizer
    scheduler = build_scheduler(getattr(optimizer, "base_optimizer", optimizer), recipe, steps_per_epoch)
    if adapter.epoch_start is not None:
        adapter.epoch_start(EpochState(
            model=model, criterion=criterion, epoch=epoch, epochs=recipe.epochs, train_images=None,
            train_labels=labels, train_transform=adapter.train_transform(ctx.input_size), batch_size=len(labels),
            device=torch.device("cpu"),
        ))
    model.train()
    torch.manual_seed(seed)
    with recording(trainer.optimizer, named) as record:
        for _ in range(steps):  # the same batch again: a second step sees momentum / Adam's moments
            trainer.step(images, labels, epoch)
            if recipe.schedule_unit == "step":
                scheduler.step()
    return record


def upstream_step(script: Script, function: str, loader: str, namespace: dict, batch: tuple, optimizer,
                  named: dict[str, Tensor], seed: int = 1, steps: int = 1) -> Record:
    """`steps` iterations of the upstream loop body on `batch`, from the same RNG state as `ferbench_step`."""
    torch.manual_seed(seed)
    with recording(optimizer, named) as record:
        for index in range(steps):
            script.step(function, loader, namespace, batch, index=index)
    return record


def _first_difference(a: dict[str, Tensor | None], b: dict[str, Tensor | None]) -> str | None:
    assert a.keys() == b.keys(), f"different tensors: {sorted(a.keys() ^ b.keys())[:5]}"
    for key in a:
        x, y = a[key], b[key]
        if (x is None) != (y is None):
            return f"{key}: gradient on one side only"
        if x is not None and not torch.equal(x, y):
            diff = (x.double() - y.double()).abs().max().item() if x.shape == y.shape else "shape"
            return f"{key}: max |diff| {diff}"
    return None


def assert_identical(ferbench: Record, upstream: Record, calls: int = 1) -> None:
    """Bit-identical losses, gradients at each of the `calls` optimizer calls (two per SAM step) and
    parameters/buffers after the last."""
    assert len(ferbench.losses) == len(upstream.losses) > 0, (len(ferbench.losses), len(upstream.losses))
    for i, (x, y) in enumerate(zip(ferbench.losses, upstream.losses)):
        assert torch.equal(x, y), f"loss {i}: ferbench {x.item()!r} vs upstream {y.item()!r}"
    assert len(ferbench.grads) == len(upstream.grads) == calls, (len(ferbench.grads), len(upstream.grads))
    for i, (x, y) in enumerate(zip(ferbench.grads, upstream.grads)):
        assert any(g is not None for g in x.values()), "no gradient reached the parameters"
        difference = _first_difference(x, y)
        assert difference is None, f"gradients at optimizer call {i}: {difference}"
    difference = _first_difference(ferbench.after, upstream.after)
    assert difference is None, f"after the step: {difference}"


def copy_weights(source: nn.Module, target: nn.Module) -> nn.Module:
    """`target` holding exactly `source`'s parameters and buffers (strict: the architectures must match)."""
    target.load_state_dict(source.state_dict(), strict=True)
    return target


def uint8_batch(size: int, batch: int = 2, seed: int = 0) -> Tensor:
    """Smooth random uint8 images [B, 3, size, size] (upsampled noise: image-like, not white noise)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(batch, 3, max(size // 8, 2), max(size // 8, 2), generator=g)
    images = torch.nn.functional.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    return (images * 255).round().clamp(0, 255).to(torch.uint8)


def source_image(folder: Path, seed: int = 0, size: tuple[int, int] = (173, 131)) -> Path:
    """A PNG at another size than any model's input, as a dataset file would be."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (12, 9, 3), dtype=np.uint8))
    path = folder / f"face-{seed}.png"
    small.resize(size, Image.Resampling.BICUBIC).save(path)
    return path


def cached(path: Path, size: int) -> Tensor:
    """What ferbench's image cache stores for the file at `size`: uint8 [1, 3, size, size]."""
    from harness.data.images import decode

    return torch.from_numpy(decode(path, size)).unsqueeze(0)
