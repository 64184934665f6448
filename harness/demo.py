"""`ferbench synth` and `ferbench demo`: the whole pipeline offline, on drawn faces, in minutes on a CPU."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from harness.config import Config
from harness.paths import Paths

DEMO_IMAGES_PER_CLASS = 120
DEMO_SIZE = 64
DEMO_REPEATS = 3
DEMO_EPOCHS = 15


def make_synthetic(root: Path, images_per_class: int, size: int, seed: int, console: Console) -> dict:
    from harness.data.synth import CLASSES, generate

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("drawing synthetic faces", total=images_per_class * len(CLASSES))
        summary = generate(root, images_per_class=images_per_class, size=size, seed=seed,
                           progress=lambda n: progress.advance(task, n))
    console.print(f"synthetic dataset: {root} ({images_per_class} images per class, {size}px)")
    return summary


def run_demo(cfg: Config, paths: Paths, console: Console) -> str:
    """Draw the data, run the baseline for three seeded repeats, return the markdown report."""
    from harness.report.aggregate import load_runs
    from harness.report.build import build
    from harness.report.render import render_markdown
    from harness.run.launch import execute
    from harness.run.plan import Request, plan

    make_synthetic(paths.data_root / "synthetic", DEMO_IMAGES_PER_CLASS, DEMO_SIZE, 0, console)
    request = Request(model="baseline", dataset="synthetic", repeats=DEMO_REPEATS, epochs=DEMO_EPOCHS, device="cpu")
    summary = execute(plan(cfg, paths, request), console)
    if summary.failed:
        job, message = summary.failed[0]
        from harness.errors import FerbenchError

        raise FerbenchError(f"demo run failed: {message} (log: {job.run_dir / 'worker.log'})")
    runs = load_runs(paths.results)
    return render_markdown(build(runs[runs["dataset"] == "synthetic"]))
