"""Harness overhead: one epoch through ferbench's training loop versus a bare PyTorch loop.

Both train the built-in baseline on the same in-memory uint8 tensors with the same batches and
the same transforms, then evaluate validation and test; the ratio is harness time / bare time
(aim: ≤ 1.05). Run: `python benchmarks/loop_overhead.py [--samples N] [--size PX] [--rounds R]`.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from adapters.baseline import ADAPTER
from adapters.contract import BuildContext
from harness.config import Recipe
from harness.run.loop import Split, batches, train


def data(samples: int, size: int) -> dict[str, Split]:
    g = torch.Generator().manual_seed(0)
    make = lambda n: Split(  # noqa: E731
        images=torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g),
        labels=torch.randint(0, 7, (n,), generator=g),
    )
    return {"train": make(samples), "val": make(samples // 4), "test": make(samples // 4)}


def harness_epoch(splits, recipe, size) -> float:
    torch.manual_seed(0)
    ctx = BuildContext(num_classes=7, input_size=size, pretrained=False)
    model = ADAPTER.build(ctx)
    started = time.perf_counter()
    train(model, ADAPTER, splits, recipe, "val_balanced_accuracy", torch.device("cpu"), ctx, seed=0)
    return time.perf_counter() - started


def bare_epoch(splits, recipe, size) -> float:
    torch.manual_seed(0)
    model = ADAPTER.build(BuildContext(num_classes=7, input_size=size, pretrained=False))
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    train_tf, eval_tf = ADAPTER.train_transform(size), ADAPTER.eval_transform(size)
    started = time.perf_counter()
    model.train()
    for idx in batches(len(splits["train"]), recipe.batch_size, True, torch.Generator().manual_seed(0)):
        loss = F.cross_entropy(model(train_tf(splits["train"].images[idx])), splits["train"].labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for part in ("val", "test"):
            for idx in batches(len(splits[part]), recipe.batch_size * 2, False):
                model(eval_tf(splits[part].images[idx])).argmax(1)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    recipe = Recipe(optimizer="adam", lr=1e-3, weight_decay=1e-4, epochs=1, batch_size=64)
    splits = data(args.samples, args.size)
    bare_epoch(splits, recipe, args.size)  # warm-up: allocator and kernels
    bare, ours = [], []
    for _ in range(args.rounds):  # interleaved, best of R, so background load hits both alike
        bare.append(bare_epoch(splits, recipe, args.size))
        ours.append(harness_epoch(splits, recipe, args.size))
    print(f"bare PyTorch loop : {min(bare):.3f} s/epoch (best of {args.rounds})")
    print(f"ferbench loop     : {min(ours):.3f} s/epoch (best of {args.rounds})")
    print(f"ratio ferbench/bare: {min(ours) / min(bare):.3f}  (aim ≤ 1.05)")


if __name__ == "__main__":
    main()
