"""GPU packing and mixed precision: K small runs sharing one GPU versus the same K runs one after another.

Trains the built-in ResNet-18 baseline on a synthetic dataset through `ferbench run`, three ways, each
into its own results folder: K repeats with `--jobs 1` (baseline), with `--jobs K` (packed on one GPU,
each worker capped at 1/K of its memory), and with `--jobs 1 --amp`. Prints throughput ratios against
the sequential baseline measured in the same invocation (aim for packing on a GPU: ≥ 2× for small
models). Without a GPU it says so and exits: on a CPU, workers only compete for the same cores.

Run: `python benchmarks/packing.py [--jobs K] [--epochs E] [--size PX] [--images-per-class N] [--force-cpu]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

REGISTRY = """
[defaults]
repeats = {jobs}
device = "{device}"
val_fraction = 0.1

[models.baseline]
adapter = "baseline"
input_size = {size}
[models.baseline.recipe]
optimizer = "adam"
lr = 1e-3
schedule = "cosine"
epochs = {epochs}
batch_size = 64

[datasets.synthetic]
classes = ["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"]
layouts = ["split-folders"]
"""


def gpu_present() -> bool:
    import torch

    return torch.cuda.is_available()


def timed_run(root: Path, results: str, *options: str) -> float:
    env = dict(os.environ, FERBENCH_CONFIG=str(root / "benchmark.toml"), FERBENCH_DATA_ROOT=str(root / "data"),
               FERBENCH_RESULTS_DIR=str(root / results), PYTHONPATH=str(REPO))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", "run", "--model", "baseline", "--dataset", "synthetic", *options],
                   env=env, cwd=root, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--images-per-class", type=int, default=400)
    parser.add_argument("--force-cpu", action="store_true", help="measure on the CPU anyway (not meaningful for packing)")
    args = parser.parse_args()
    gpu = gpu_present()
    if not gpu and not args.force_cpu:
        print("packing: skipped, no CUDA device (K workers on a CPU only share its cores); pass --force-cpu to run anyway")
        return
    from harness.data.synth import generate

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "benchmark.toml").write_text(REGISTRY.format(jobs=args.jobs, device="cuda" if gpu else "cpu",
                                                             size=args.size, epochs=args.epochs))
        generate(root / "data" / "synthetic", images_per_class=args.images_per_class, size=args.size, seed=0)
        timed_run(root, "warmup", "--repeats", "1", "--epochs", "1")  # builds the image cache once for all three
        for name in ("sequential", "packed", "amp"):
            (root / name / "cache").parent.mkdir(parents=True, exist_ok=True)
            os.symlink(root / "warmup" / "cache", root / name / "cache")
        sequential = timed_run(root, "sequential", "--jobs", "1")
        packed = timed_run(root, "packed", "--jobs", str(args.jobs))
        amp = timed_run(root, "amp", "--jobs", "1", "--amp")
    device = "GPU" if gpu else "CPU (forced)"
    print(f"{args.jobs} runs × {args.epochs} epochs, ResNet-18 at {args.size} px on {device}")
    print(f"sequential (baseline): {sequential:8.1f} s")
    print(f"packed --jobs {args.jobs}:     {packed:8.1f} s   throughput ratio {sequential / packed:5.2f}x (aim ≥ 2 on a GPU)")
    print(f"sequential --amp:      {amp:8.1f} s   throughput ratio {sequential / amp:5.2f}x")


if __name__ == "__main__":
    main()
