"""Training-step throughput: ferbench's loop against a bare loop, per model, at its recipe's batch and input size.

(a) bare: `Trainer.step` (forward, backward, optimizer step; SAM's two passes where the recipe has them) on
batches already transformed and resident on the device, so nothing but the model's own work is timed;
(b) ferbench: `harness.run.loop.train` for an epoch of the same number of steps (the second of two) on uint8 images held in memory,
with the adapter's per-sample training augmentation through the prefetch stage (`--loader-workers`).
Both print img/s and the ratio ferbench/bare (aim on a GPU: ≥ 0.9 for every model).

On a CPU it also prints the shares of one step's host work, measured in the same process: augmentation (the
per-sample path, one process), transfer (pinning and the copy; ~0 on a CPU) and compute (the bare step); and the
overlap gain, the loop without a prefetch worker over the loop with them, and the loop's time over
max(augmentation, compute) (the prefetch stage's aim: ≤ 1.1). Each model runs in its own subprocess (upstreams
reuse top-level module names), built without pretrained weights, on random images; video models are skipped.
Upstream models need `ferbench fetch` (vendor/).

Run: `python benchmarks/step_throughput.py [--models dan,ddamfn] [--steps N] [--device cpu|cuda|auto]
[--batch-size B] [--loader-workers N] [--threads T] [--rounds R] [--amp] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, steps: int, device_name: str, batch_size: int | None, workers: int, amp: bool,
            threads: int | None, rounds: int = 1) -> dict:
    """One model, in this process: every figure of the report line."""
    import torch

    from adapters import load_adapter
    from adapters.contract import BuildContext
    from harness import config as config_mod
    from harness.run.loop import Split, Trainer, batches, train
    from harness.run.prefetch import augment, kept_global_rngs, sample_seeds
    from harness.run.worker import isolate_sys_path

    cfg = config_mod.load(REPO / "benchmark.toml")
    model_cfg = cfg.model(name)
    if model_cfg.video:
        return dict(model=name, skipped="video model (needs a frame cache)")
    upstream_dir = (REPO / "vendor" / cfg.upstream(model_cfg.upstream).name) if model_cfg.upstream else None
    if upstream_dir is not None and not upstream_dir.is_dir():
        return dict(model=name, skipped=f"{upstream_dir} missing: run `ferbench fetch`")
    isolate_sys_path(upstream_dir)
    device = torch.device("cuda" if device_name == "auto" and torch.cuda.is_available() else
                          "cpu" if device_name == "auto" else device_name)
    if threads:
        torch.set_num_threads(threads)
    recipe = cfg.recipe(model_cfg).model_copy(update=dict(epochs=1, amp=amp, patience=None,
                                                          **({"batch_size": batch_size} if batch_size else {})))
    b, size, classes = recipe.batch_size, model_cfg.input_size, 7
    adapter = load_adapter(model_cfg.adapter)
    ctx = BuildContext(num_classes=classes, input_size=size, pretrained=False, upstream_dir=upstream_dir,
                       class_counts=(b * steps // classes,) * classes, batch_size=b, epochs=1)
    g = torch.Generator().manual_seed(0)
    n = b * steps
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % classes
    data = {"train": Split(images, labels), "val": Split(images[:0], labels[:0]), "test": Split(images[:2], labels[:2])}
    train_tf, eval_tf = adapter.train_transform(size), adapter.eval_transform(size)

    def fresh():
        torch.manual_seed(0)
        return adapter.build(ctx)

    # (a) bare: resident, already transformed batches; warm-up steps first (allocator, cuDNN, lazy init)
    model = fresh()
    model.to(device, memory_format=torch.channels_last) if amp else model.to(device)
    criterion = adapter.criterion(ctx)
    if isinstance(criterion, torch.nn.Module):
        criterion.to(device)
    trainer = Trainer(model, adapter, criterion, recipe, ctx)
    model.train()
    resident = [(eval_tf(images[i * b:(i + 1) * b].to(device)).contiguous(), labels[i * b:(i + 1) * b].to(device))
                for i in range(min(steps, 4))]
    for x, y in resident[:2]:
        trainer.step(x, y, epoch=1)

    def bare_epoch() -> float:
        _sync(device)
        started = time.perf_counter()
        for step in range(steps):
            x, y = resident[step % len(resident)]
            trainer.step(x, y, epoch=1)
        _sync(device)
        return time.perf_counter() - started

    def loop(loader_workers: int) -> float:
        """The second of two epochs (the first warms the optimizer state and the allocator, as the bare loop's
        warm-up steps do): its training and the evaluation of two test samples."""
        out = train(fresh(), adapter, data, recipe.model_copy(update=dict(epochs=2)), "val_balanced_accuracy",
                    device, ctx, seed=0, loader_workers=loader_workers)
        return out.history[-1]["seconds"]

    # Interleaved rounds, fastest of each: background load on a shared machine hits all alike.
    bares, ours_, inlines = [], [], []
    for _ in range(rounds):
        bares.append(bare_epoch())
        ours_.append(loop(workers))
        if device.type == "cpu" and workers:
            inlines.append(loop(0))
    bare, ours = min(bares), min(ours_)
    out = dict(model=name, device=str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
               batch_size=b, input_size=size, steps=steps, loader_workers=workers, amp=amp, rounds=rounds,
               bare_img_s=n / bare, ferbench_img_s=n / ours, ratio=bare / ours)
    if device.type == "cpu":
        order = batches(n, b, adapter.drop_last, torch.Generator().manual_seed(0))
        seeds = sample_seeds(n, torch.Generator().manual_seed(0)).split([len(i) for i in order])
        started = time.perf_counter()
        augmented = []
        with kept_global_rngs():
            for idx, s in zip(order, seeds):
                augmented.append(augment(images[idx], s, train_tf))
        augmentation = time.perf_counter() - started
        started = time.perf_counter()
        for batch in augmented:
            batch.to(device)
        transfer = time.perf_counter() - started
        inline = min(inlines) if inlines else ours
        total = augmentation + transfer + bare
        out.update(augmentation_s=augmentation, transfer_s=transfer, compute_s=bare, ferbench_s=ours,
                   inline_s=inline, shares=dict(augmentation=augmentation / total, transfer=transfer / total,
                                                compute=bare / total),
                   overlap_gain=inline / ours, over_max=ours / max(augmentation, bare))
    return out


def report(result: dict) -> None:
    if "skipped" in result or "error" in result:
        print(f"{result['model']:<10} {result.get('skipped') or result.get('error')}")
        return
    print(f"{result['model']:<10} batch {result['batch_size']:>3} at {result['input_size']} px on {result['device']}: "
          f"bare {result['bare_img_s']:8.1f} img/s, ferbench {result['ferbench_img_s']:8.1f} img/s, "
          f"ratio {result['ratio']:.3f} (aim ≥ 0.9 on a GPU)")
    if "shares" in result:
        s = result["shares"]
        print(f"{'':<10} shares: augmentation {s['augmentation']:.1%}, transfer {s['transfer']:.1%}, "
              f"compute {s['compute']:.1%} (augmentation {result['augmentation_s']:.2f} s, compute "
              f"{result['compute_s']:.2f} s per epoch)")
        print(f"{'':<10} prefetch: {result['loader_workers']} worker(s) {result['ferbench_s']:.2f} s, inline "
              f"{result['inline_s']:.2f} s: overlap gain {result['overlap_gain']:.2f}x; loop / max(augmentation, "
              f"compute) = {result['over_max']:.3f} (aim ≤ 1.1)")


def main() -> None:
    from harness import config as config_mod
    from harness.run.prefetch import default_workers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated names from benchmark.toml (default: every image model)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, default=None, help="instead of each recipe's")
    parser.add_argument("--loader-workers", type=int, default=default_workers())
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the training process")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved repetitions; the fastest of each counts")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        try:
            result = measure(args.one, args.steps, args.device, args.batch_size, args.loader_workers, args.amp, args.threads,
                             args.rounds)
        except Exception as err:  # noqa: BLE001 - reported per model, the others still run
            result = dict(model=args.one, error=f"{type(err).__name__}: {err}")
        print("@result " + json.dumps(result))
        return
    cfg = config_mod.load(REPO / "benchmark.toml")
    names = [m for m in args.models.split(",") if m] or sorted(n for n, m in cfg.models.items() if not m.video)
    results = []
    for name in names:
        argv = [sys.executable, __file__, "--one", name, "--steps", str(args.steps), "--device", args.device,
                "--loader-workers", str(args.loader_workers), "--rounds", str(args.rounds)]
        argv += ["--batch-size", str(args.batch_size)] if args.batch_size else []
        argv += ["--threads", str(args.threads)] if args.threads else []
        argv += ["--amp"] if args.amp else []
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
        lines = [line for line in proc.stdout.splitlines() if line.startswith("@result ")]
        result = json.loads(lines[-1][8:]) if lines else dict(model=name, error=(proc.stderr.strip().splitlines() or ["no output"])[-1])
        report(result)
        results.append(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
