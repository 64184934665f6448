"""`ferbench synth` and `ferbench demo`: the whole pipeline offline, on drawn faces, in minutes on a CPU."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from harness.config import Config
from harness.data.synth import GENERATOR_VERSION
from harness.errors import FerbenchError
from harness.paths import Paths

# The demo draws `synthetic` with `ferbench synth`'s defaults, so a later plain `ferbench synth` finds it as is.
DEMO_IMAGES_PER_CLASS = 100
DEMO_SIZE = 64
# Small on purpose: three seeded repeats of a short training, well under 90 s on two idle CPU cores
# (benchmarks/demo_time.py); the baseline's own recipe trains longer.
DEMO_REPEATS = 3
DEMO_EPOCHS = 2
DEMO_BATCH_SIZE = 32


def describe(settings: dict) -> str:
    """`120 images per class, 64 px, seed 0` from a drawn dataset's settings."""
    count = (f"{settings['clips_per_class']} clips per class of {settings['frames'][0]}-{settings['frames'][1]} frames"
             if "clips_per_class" in settings else f"{settings['images_per_class']} images per class")
    version = settings.get("generator_version")
    drawer = f", generator version {version}" if version != GENERATOR_VERSION else ""
    return f"{count}, {settings['size']} px, seed {settings['seed']}{drawer}"


def refuse_redraw(root: Path, wanted: dict, overwrite: bool, how: str = "Pass --overwrite to redraw it") -> None:
    """A drawn dataset is replaced only with --overwrite: runs in the store were trained on what is there."""
    from harness.data.synth import drawn_settings

    there = drawn_settings(root)
    if overwrite or there is None or all(there.get(key) == value for key, value in wanted.items()):
        return
    raise FerbenchError(
        f"{root}: already holds a dataset drawn with {describe(there)}, not {describe(wanted)}; runs trained on it "
        f"would no longer match their data. {how}, or choose another --data-root", exit_code=2)


def make_synthetic(root: Path, images_per_class: int, size: int, seed: int, console: Console,
                   overwrite: bool = False, how: str = "Pass --overwrite to redraw it") -> dict:
    from harness.data.synth import CLASSES, generate

    refuse_redraw(root, dict(generator_version=GENERATOR_VERSION, images_per_class=images_per_class, size=size,
                             seed=seed), overwrite, how)
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

    make_synthetic(paths.data_root / "synthetic", DEMO_IMAGES_PER_CLASS, DEMO_SIZE, 0, console,
                   how="Redraw it with `ferbench synth --overwrite` (the demo draws synth's defaults)")
    request = Request(model="baseline", dataset="synthetic", repeats=DEMO_REPEATS, epochs=DEMO_EPOCHS,
                      batch_size=DEMO_BATCH_SIZE, device="cpu")
    jobs = plan(cfg, paths, request)
    summary = execute(jobs, console)
    if summary.failed:
        job, message = summary.failed[0]
        raise FerbenchError(f"demo run failed: {message} (log: {job.run_dir / 'worker.log'})")
    runs = load_runs(paths.results)
    mine = runs[runs["run_id"].isin({job.spec.run_id for job in jobs})]  # not other runs on `synthetic`
    return render_markdown(build(mine)) + "\n" + setting_note(len(cfg.dataset("synthetic").classes))


def setting_note(classes: int) -> str:
    """What the demo trained, and the chance level its numbers compare with."""
    return (
        f"Demo setting: the built-in `baseline` (ResNet-18, random init) for {DEMO_EPOCHS} epochs, batch "
        f"{DEMO_BATCH_SIZE}, {DEMO_REPEATS} seeded repeats on the CPU, on `synthetic` ({DEMO_IMAGES_PER_CLASS} drawn "
        f"faces per class, {DEMO_SIZE} px): small and fast, to show the pipeline, not to benchmark a model.\n"
        f"Chance level: 1/{classes} = {1 / classes:.3f} for both accuracy and balanced accuracy "
        f"({classes} classes, the same number of test images in each).\n"
    )
