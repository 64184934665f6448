"""The `ferbench` command line: thin Typer commands, each calling one module.

User errors arrive as FerbenchError and leave as one line on stderr with an exit code;
heavy modules (torch, vendored code) are imported inside the commands that need them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from harness import config as config_mod
from harness.cli_help import HelpGroup
from harness.errors import FerbenchError
from harness.paths import Paths
from harness.tables import folded

app = typer.Typer(
    cls=HelpGroup,
    add_completion=False,
    no_args_is_help=True,
    help="Fair, repeated, apples-to-apples benchmarks of published facial expression recognition models.",
)
err = Console(stderr=True)


class State:
    paths: Paths = Paths()
    config_path: Path | None = None

    @classmethod
    def config(cls) -> config_mod.Config:
        return config_mod.load(cls.config_path)


@app.callback()
def _global(
    data_root: Path = typer.Option(Path("datasets"), envvar="FERBENCH_DATA_ROOT", help="Where datasets live."),
    results_dir: Path = typer.Option(Path("results"), envvar="FERBENCH_RESULTS_DIR", help="The results store."),
    vendor_dir: Path = typer.Option(Path("vendor"), envvar="FERBENCH_VENDOR_DIR", help="Fetched upstream code."),
    weights_dir: Path = typer.Option(Path("weights"), envvar="FERBENCH_WEIGHTS_DIR", help="Pretrained weight files."),
    config: Optional[Path] = typer.Option(None, envvar="FERBENCH_CONFIG", help="Registry file (default: the repository's benchmark.toml)."),
) -> None:
    State.paths = Paths(
        data_root=data_root.resolve(), results=results_dir.resolve(), vendor=vendor_dir.resolve(), weights=weights_dir.resolve()
    )
    State.config_path = config


@app.command("list")
def list_() -> None:
    """Every model, dataset and upstream with its status: code fetched? data present? weights present?"""
    from harness.inventory import dataset_rows, model_rows, upstream_rows

    cfg, paths = State.config(), State.paths
    console = Console()
    models = Table("model", "upstream", "code", "weights", "input", "description", title="Models")
    for row in model_rows(cfg, paths):
        models.add_row(*row)
    datasets = Table("dataset", "classes", "layout", "protocol", "data", title="Datasets")
    for row in dataset_rows(cfg, paths):
        datasets.add_row(*row)
    upstreams = Table("upstream", "pin", "code", "licence", "used by", "repository", title="Upstreams")
    for row in upstream_rows(cfg, paths):
        upstreams.add_row(*row)
    console.print(folded(models))
    console.print(folded(datasets))
    console.print(folded(upstreams))


@app.command("fetch")
def fetch_(
    names: Optional[list[str]] = typer.Argument(None, metavar="NAME", help="Upstreams to fetch (default: all)."),
    check: bool = typer.Option(False, "--check", help="Change nothing; report each vendor tree's state."),
    force: bool = typer.Option(False, "--force", help="Overwrite vendor trees with local changes or another commit."),
    mirror: Optional[str] = typer.Option(
        None, "--mirror", metavar="TEMPLATE",
        help="Fetch from TEMPLATE with {owner} and {name} filled from each GitHub URL, e.g. /srv/git/{owner}+{name}/repo.",
    ),
) -> None:
    """Clone each upstream into vendor/<name> at its pinned commit (or --check what is there)."""
    from harness import fetch as fetch_mod

    upstreams = fetch_mod.select(State.config().upstreams, names)
    console = Console()
    if check:
        statuses = fetch_mod.check(upstreams, State.paths.vendor)
        console.print(folded(fetch_mod.check_table(statuses)))
        ok = all(s.ok for s in statuses)
    else:
        outcomes = fetch_mod.fetch(upstreams, State.paths.vendor, force=force, mirror=mirror, console=console)
        ok = all(o.ok for o in outcomes)
    if not ok:
        raise typer.Exit(1)


@app.command()
def run(
    model: List[str] = typer.Option([], "--model", "-m", help="Model name from benchmark.toml; repeat for several: the grid models × datasets is planned, complete runs skipped."),
    dataset: List[str] = typer.Option([], "--dataset", "-d", help="Dataset name from benchmark.toml; repeat for several."),
    every: bool = typer.Option(False, "--all", help="Every model × every dataset present under the data root (or only those named); video/image mismatches are skipped with a note."),
    repeats: Optional[int] = typer.Option(
        None, metavar="R",
        help="Seeds per fold: a fold protocol runs every fold R times (default 1); a single split runs R seeded repeats (default from benchmark.toml). At most 100.",
    ),
    protocol: Optional[str] = typer.Option(None, help="Split protocol, e.g. official, subject-kfold, official-folds, photo-kfold (default: the dataset's)."),
    folds: Optional[str] = typer.Option(
        None, "--folds", metavar="LIST",
        help="Only these folds of a fold protocol, 0-based as in the split file, e.g. 0,3-5 (default: every fold; the report marks a cell missing folds).",
    ),
    selection: str = typer.Option(
        "val", "--selection", metavar="MODE",
        help="val: keep the epoch best on a validation slice of the training data; final: train on the whole training split for the recipe's epochs, keep the last (part of the run id).",
    ),
    epochs: Optional[int] = typer.Option(None, help="Override the recipe's epochs, 1 to 10000 (part of the run id)."),
    batch_size: Optional[int] = typer.Option(None, min=2, help="Override the recipe's batch size (part of the run id)."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or auto, which takes CUDA when torch sees it (default: defaults.device in benchmark.toml)."),
    recipe: str = typer.Option(
        "upstream", help="upstream (each model's own optimizer, schedule, epochs) or a [recipes.NAME] template, e.g. unified; part of the run id, and its own report column."
    ),
    no_pretrained: bool = typer.Option(False, "--no-pretrained", help="Random initialisation, recorded as pretrained: false and labelled in the report."),
    allow_modified_upstream: bool = typer.Option(
        False, "--allow-modified-upstream",
        help="Run even though a vendor tree has changed or untracked files or another commit; env.json records it, "
        "the report labels the model (modified upstream), and such runs get their own run ids.",
    ),
    dataset_dir: Optional[Path] = typer.Option(None, help="Read the dataset from this folder instead of <data-root>/NAME."),
    overwrite: bool = typer.Option(False, help="Recompute runs that are already complete (local launcher)."),
    amp: bool = typer.Option(False, "--amp", help="bfloat16 autocast + channels-last: faster on recent GPUs, but numbers change; part of the run id."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Runs at once (local launcher), each its own worker: spread over the visible GPUs, or sharing one with 1/K of its memory each."),
    launcher: str = typer.Option("local", help="local (subprocesses here) or slurm (a submitit job array; local executor without Slurm)."),
    partition: Optional[str] = typer.Option(None, help="Slurm partition (default: partition in [launcher.slurm])."),
    time_limit: Optional[int] = typer.Option(None, min=1, metavar="MINUTES", help="Slurm time limit per run (default: time_limit_min in [launcher.slurm])."),
    max_concurrent: Optional[int] = typer.Option(None, min=1, help="Slurm array tasks running at once (default: max_concurrent in [launcher.slurm])."),
    wait: Optional[bool] = typer.Option(None, "--wait/--no-wait", help="Slurm: wait for the array (default: only for the local executor)."),
    aligned: Optional[str] = typer.Option(
        None, metavar="SIZE|PATH",
        help="Train on an aligned copy, not the raw images: the aligned_SIZE folder `ferbench align --size SIZE` made in "
             "the dataset's folder, or the copy at PATH (made with --out); its hash joins the run id.",
    ),
    save_model: Optional[bool] = typer.Option(
        None, "--save-model/--no-save-model",
        help="Keep each run's selected weights as model.safetensors + model.json in its folder (default: defaults.save_model).",
    ),
    target: List[str] = typer.Option(
        [], "--target", metavar="DATASET[=PATH]",
        help="Cross-dataset: test each repeat's selected model on DATASET (its test split; all of CK+/KMU-FED), "
             "read from PATH or <data-root>/DATASET (repeatable; implies --save-model).",
    ),
    loader_workers: Optional[int] = typer.Option(
        None, "--loader-workers", min=0, metavar="N",
        help="Processes per run preparing the next training batches while one trains (0: inline). Default: the CPUs "
        "this process may use (a Slurm task's own), divided among --jobs, less one per run. Results do not depend on it.",
    ),
    augment_on: str = typer.Option(
        "host", "--augment-on", metavar="host|device",
        help="host: each sample through the adapter's own augmentation (the reference). device: the batch at once on "
        "the run's device, where an exact batched form exists (DAN, DDAMFN, GSDNet, CLIVP-FER); same distribution, other draws, "
        "so its own run ids and report column.",
    ),
    checkpoint_interval: Optional[float] = typer.Option(
        None, "--checkpoint-interval", min=0, metavar="SECONDS",
        help="Save a resumable epoch checkpoint once this long has passed since the last one (0: after every epoch; "
        "default: defaults.checkpoint_interval, 60). A killed run resumes from it with the same result.",
    ),
) -> None:
    """Train and evaluate models on datasets, every fold of a fold protocol × R seeds, one subprocess per run; completed runs are skipped."""
    if device not in (None, "cpu", "cuda", "auto"):
        raise FerbenchError(f"--device: expected cpu, cuda or auto, got '{device}'", exit_code=2)
    from harness.run.device_augment import check_augment_on, refuse_models_without_device_form

    check_augment_on(augment_on)
    from harness.evaluate.crossdataset import CROSS_DATASET, check_targets, parse_targets
    from harness.run.launch import execute
    from harness.run.prefetch import default_workers
    from harness.run.plan import Request, grid

    targets = parse_targets(target, cross_dataset=protocol == CROSS_DATASET)
    check_targets(State.config(), State.paths, targets)
    if protocol == CROSS_DATASET:
        protocol = None
    request = Request(
        protocol=protocol, repeats=repeats, epochs=epochs,
        batch_size=batch_size, device=device, pretrained=not no_pretrained, dataset_dir=dataset_dir,
        aligned=_aligned_choice(aligned), recipe=recipe, amp=amp, allow_modified_upstream=allow_modified_upstream,
        save_model=True if targets is not None else save_model,
        folds=folds, selection=selection,
        # Slurm tasks choose their own default from the CPUs of the node they land on.
        loader_workers=loader_workers if loader_workers is not None or launcher != "local" else default_workers(jobs),
        augment_on=augment_on, checkpoint_interval=checkpoint_interval,
    )
    planned, skipped = grid(State.config(), State.paths, request, list(model), list(dataset), every)
    if augment_on == "device":
        refuse_models_without_device_form(State.config(), sorted({job.spec.model for job in planned}))
    if skipped:
        err.print(f"--all: skipping {len(skipped)} pair(s) of a video model and still images or the reverse: {', '.join(skipped)}")
    from harness.weights import unverified

    models_loading = {job.spec.model: State.config().model(job.spec.model) for job in planned if job.spec.pretrained}
    for line in unverified(models_loading.values(), State.paths.weights):
        err.print(f"weights: {line}", markup=False, highlight=False, soft_wrap=True)
    if launcher == "slurm":
        overrides = {k: v for k, v in (("partition", partition), ("time_limit_min", time_limit), ("max_concurrent", max_concurrent)) if v is not None}
        _run_on_slurm(planned, State.config().launcher.slurm.model_copy(update=overrides), overwrite, wait)
        if targets is not None:  # scores the runs complete by now; the same command again scores the rest
            from harness.evaluate.crossdataset import evaluate_targets

            evaluate_targets(State.config(), State.paths, planned, targets, device or "auto", err, overwrite=overwrite)
        return
    if launcher != "local":
        raise FerbenchError(f"--launcher: expected local or slurm, got '{launcher}'", exit_code=2)
    from harness.evaluate.saved import missing_models

    resave = missing_models(planned, overwrite)
    if resave:
        err.print(f"{len(resave)} complete run(s) kept no model; training them again to save it (same seeds and splits).")
        execute(resave, err, overwrite=True, workers=jobs)
    summary = execute(planned, err, overwrite=overwrite, workers=jobs)
    if targets is not None:
        from harness.evaluate.crossdataset import evaluate_targets

        evaluate_targets(State.config(), State.paths, planned, targets, device or "auto", err, overwrite=overwrite)
    _print_run_summary(summary, len(planned))


def _aligned_choice(value: Optional[str]) -> int | Path | None:
    """`--aligned 112` is a size, anything else the folder of an aligned copy."""
    return None if value is None else int(value) if value.isdigit() else Path(value)


def _run_on_slurm(planned, settings, overwrite: bool, wait: Optional[bool]) -> None:
    from datetime import datetime

    from harness.run.launch import Summary
    from harness.run.slurm import submit

    folder = State.paths.results / "slurm" / datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        submission = submit(planned, settings, folder, overwrite=overwrite)
    except ValueError as error:
        raise FerbenchError(str(error), exit_code=2) from None
    done = len(planned) - len(submission.jobs)
    if not submission.jobs:
        err.print(f"{done} of {len(planned)} runs already complete; nothing to submit.")
        return
    ids = sorted({str(h.job_id).split("_")[0] for h in submission.handles})
    err.print(f"submitted {len(submission.jobs)} run(s) to {submission.cluster} as job(s) {', '.join(ids)} "
              f"({done} already complete); logs in {folder}; follow with `ferbench status`")
    if not (wait if wait is not None else submission.cluster != "slurm"):
        return
    summary = Summary()
    with err.status(f"waiting for {len(submission.jobs)} run(s)"):
        for job, handle in zip(submission.jobs, submission.handles):
            try:
                status = handle.result()
            except Exception as error:  # submitit re-raises the task's failure with its traceback text
                lines = [line for line in str(error).strip().splitlines() if line.strip()]
                summary.failed.append((job, lines[-1] if lines else type(error).__name__))
                continue
            if status.startswith("claimed"):
                summary.elsewhere.append((job, status.removeprefix("claimed ")))
            else:
                (summary.done if status.startswith("done") else summary.skipped).append(job)
    _print_run_summary(summary, len(planned))


def _which(job) -> str:
    fold = f" fold {job.spec.fold}" if job.fold_count > 1 else ""
    return f"{job.spec.model}/{job.spec.dataset}{fold} repeat {job.spec.repeat}"


def _print_run_summary(summary, total: int) -> None:
    err.print(
        f"{len(summary.done)} run(s) completed, {len(summary.skipped)} already complete, "
        f"{len(summary.failed)} failed, of {total}."
    )
    for job, message in summary.elsewhere:
        err.print(f"[yellow]left to another process[/yellow] {_which(job)}: {message}")
    for job, message in summary.failed:
        err.print(f"[red]failed[/red] {_which(job)}: {message}")
        err.print(f"       log: {job.run_dir / 'worker.log'}")
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def evaluate(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name from benchmark.toml (with --checkpoint; a run knows its model)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset to score on, from benchmark.toml."),
    run_id: Optional[str] = typer.Option(None, "--run", metavar="RUN_ID", help="A run that kept its model (`ferbench run --save-model`)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", metavar="FILE", help="An upstream checkpoint in its training script's own format."),
    trained_on: Optional[str] = typer.Option(None, "--trained-on", metavar="DATASET", help="The checkpoint's training dataset, choosing its \\[\\[checkpoints]] class order (default: --dataset)."),
    fmt: Optional[str] = typer.Option(None, "--format", metavar="FORMAT", help="The checkpoint's format when several are declared (dan, fer-crossval, ...)."),
    split: str = typer.Option("test", "--split", help="test (the protocol's test split) or all (every sample)."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="Split protocol (default: the run's on its own dataset, else the dataset's)."),
    fold: Optional[int] = typer.Option(None, "--fold", min=0, help="Fold of the protocol (default: the run's, else 0)."),
    dataset_dir: Optional[Path] = typer.Option(None, help="Read the dataset from this folder."),
    aligned: Optional[int] = typer.Option(None, metavar="SIZE", help="Score the copy `ferbench align --size SIZE` made."),
    device: str = typer.Option("auto", help="cpu, cuda or auto."),
    overwrite: bool = typer.Option(False, help="Recompute an evaluation already stored."),
) -> None:
    """Score a run's saved model or an upstream checkpoint on a dataset; the record goes to <results>/evaluations/."""
    from harness.evaluate.cli import evaluate_command

    evaluate_command(State.config(), State.paths, Console(), err, model=model, dataset=dataset, run_id=run_id,
                     checkpoint=checkpoint, trained_on=trained_on, fmt=fmt, split=split, protocol=protocol, fold=fold,
                     dataset_dir=dataset_dir, aligned=aligned, device=device, overwrite=overwrite)


@app.command()
def predict(
    run_id: str = typer.Option(..., "--run", metavar="RUN_ID", help="A run that kept its model (`ferbench run --save-model`)."),
    targets: List[Path] = typer.Argument(..., metavar="PATH...", help="Images, folders of images, or videos."),
    out: Path = typer.Option(Path("predictions.csv"), "--out", "-o", metavar="CSV", help="Where to write the predictions."),
    annotate: Optional[Path] = typer.Option(None, "--annotate", metavar="DIR", help="Also write each image (or read frame) with boxes and labels here."),
    every: int = typer.Option(10, "--every", min=1, metavar="N", help="Videos: read every N-th frame."),
    device: str = typer.Option("auto", help="cpu, cuda or auto."),
) -> None:
    """Find, align and classify every face in images or videos with a run's saved model; one CSV row per face."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from harness.predict import predict as predict_faces

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err, transient=True) as bar:
        tasks: dict = {}

        def progress(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total or None)
            bar.update(tasks[what], completed=done)

        rows = predict_faces(State.config(), State.paths, run_id, list(targets), out, annotate, every, device, progress)
    err.print(f"{rows} face(s) written to {out}" + (f"; annotated images in {annotate}" if annotate else ""),
              markup=False, highlight=False)


@app.command()
def status() -> None:
    """Queued, running, done, failed and interrupted runs in the results store, per dataset, model and protocol."""
    from harness.run.status import STATES, counts, scan

    states = scan(State.paths.results)
    if not states:
        Console().print(f"No runs under {State.paths.results}.", markup=False, highlight=False)
        return
    table = Table("dataset", "model", "protocol", *STATES, title=f"Runs under {State.paths.results}")
    for (dataset, model, protocol), count in sorted(counts(states).items()):
        table.add_row(dataset, model, protocol, *(str(count.get(s, 0) or "") for s in STATES))
    Console().print(folded(table))
    for state in states:
        if state.state in ("failed", "interrupted", "running"):
            Console().print(f"{state.state}: {state.folder} {state.detail}", markup=False, highlight=False, soft_wrap=True)
        elif state.state == "unreadable":
            Console().print(f"unreadable: {state.detail}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def report(
    fmt: str = typer.Option("md", "--format", help="md, html (one self-contained page with figures), csv (one row per cell) or latex (booktabs tables)."),
    models: Optional[List[str]] = typer.Option(None, "--models", help="Only these models; repeat or comma-separate. A base name (dan) also matches its variants (dan (unified))."),
    datasets: Optional[List[str]] = typer.Option(None, "--datasets", help="Only these datasets; repeat or comma-separate. ckplus also matches ckplus (aligned_112)."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="Only this protocol, e.g. crossval-compat."),
    metric: Optional[List[str]] = typer.Option(None, "--metric", help="accuracy, balanced_accuracy, macro_f1, pooled_accuracy (over all test predictions of a seed's folds), uar or war (default: accuracy, balanced_accuracy, and pooled_accuracy where a section holds fold-protocol cells)."),
    ci: bool = typer.Option(False, "--ci", help="Add the 95% t confidence interval of each mean, [low, high], clipped to [0, 1]."),
    test: str = typer.Option("ttest", "--test", help="Paired test against each row's best: ttest (scipy ttest_rel) or wilcoxon (needs 6 pairs to reach p < 0.05)."),
    alpha: float = typer.Option(0.05, "--alpha", min=0.0, max=1.0, help="Significance level."),
    plots: Optional[Path] = typer.Option(None, "--plots", metavar="DIR", help="Also write each cell's figure as DIR/<protocol>_<dataset>_<model>.png."),
    cost: bool = typer.Option(False, "--cost", help="Add the model-cost block: parameters, forward GFLOPs, inference img/s and latency per model (md and html)."),
) -> None:
    """Aggregate the results store into a report on stdout (`ferbench report --format html > report.html`)."""
    from harness.report.aggregate import load_runs, select, unfinished_runs
    from harness.report.build import Options, build
    from harness.report.metrics import parse_metrics
    from harness.report.render import RENDERERS, figures, render_html, write_plots
    from harness.report.significance import TESTS
    from harness.report import evaluations as evaluated

    if fmt not in RENDERERS:
        raise FerbenchError(f"--format: expected one of {', '.join(RENDERERS)}, got '{fmt}'", exit_code=2)
    if test not in TESTS:
        raise FerbenchError(f"--test: expected one of {', '.join(TESTS)}, got '{test}'", exit_code=2)
    options = Options(metrics=parse_metrics(metric or []), ci=ci, test=test, alpha=alpha)
    cfg, results = State.config(), State.paths.results
    unreadable: list = []
    try:
        runs = load_runs(results, {name for name, dataset in cfg.datasets.items() if dataset.video}, unreadable)
    except FerbenchError:
        if not evaluated.has_records(results):
            raise
        runs = None  # a store holding only evaluations (`ferbench evaluate --checkpoint`) still gets its tables
    for bad in unreadable:
        err.print(bad.line, markup=False, highlight=False, soft_wrap=True)
    text = ""
    if runs is not None:
        built = build(
            select(runs, models or [], datasets or [], protocol), options, cfg.published, cfg.references,
            unfinished=unfinished_runs(results), unreadable=unreadable, models=cfg.models,
        )
        if cost:
            from dataclasses import replace

            from harness.report.cost import cost_rows

            built = replace(built, cost=cost_rows(built.runs))
        items = figures(built) if fmt == "html" or plots else None
        if plots:
            written = write_plots(items, plots)
            err.print(f"{len(written)} figure(s) written to {plots}", markup=False, highlight=False)
        text = render_html(built, items) if fmt == "html" else RENDERERS[fmt](built)
    sys.stdout.write(evaluated.with_sections(text, fmt, results, runs, cfg.published, options, models or [], datasets or [], plots))
    if cost and fmt == "md" and runs is not None:
        from harness.report.cost import render_markdown as cost_markdown

        sys.stdout.write(cost_markdown(built.cost))


@app.command()
def synth(
    images_per_class: int = typer.Option(100, min=2, help="Images per class (train + test)."),
    size: int = typer.Option(64, min=16, help="Image side in pixels."),
    seed: int = typer.Option(0, help="Generator seed."),
    video: bool = typer.Option(False, "--video", help="Draw the video dataset `synthetic-video` (DFEW layout) instead."),
    clips_per_class: int = typer.Option(10, min=5, help="With --video: clips per class, spread over the 5 folds."),
    frames: int = typer.Option(40, min=1, help="With --video: most frames per clip (each clip has 8 to this many)."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Redraw a dataset drawn with other settings (otherwise refused: runs were trained on it)."
    ),
) -> None:
    """Draw the synthetic expression dataset `synthetic` (or, with --video, `synthetic-video`) under the data root."""
    if video:
        from rich.progress import Progress

        from harness.data.synth import GENERATOR_VERSION, VIDEO_DATASET, generate_video, video_classes

        from harness.demo import refuse_redraw

        root = State.paths.data_root / VIDEO_DATASET
        refuse_redraw(root, dict(generator_version=GENERATOR_VERSION, clips_per_class=clips_per_class,
                                 frames=[min(8, frames), frames], size=size, seed=seed, layout="dfew"), overwrite)
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("drawing synthetic clips", total=clips_per_class * len(video_classes("dfew")))
            generate_video(root, "dfew", clips_per_class, (min(8, frames), frames), size, seed,
                           progress=lambda n: progress.advance(task, n))
        err.print(f"synthetic video dataset: {root} ({clips_per_class} clips per class, up to {frames} frames, {size}px)")
        return
    from harness.demo import make_synthetic

    make_synthetic(State.paths.data_root / "synthetic", images_per_class, size, seed, err, overwrite=overwrite)


@app.command()
def demo() -> None:
    """Offline end-to-end demo: synthetic data, the baseline for 3 repeats, then the report."""
    from harness.demo import run_demo

    sys.stdout.write(run_demo(State.config(), State.paths, err))


datasets_app = typer.Typer(
    help="Without a command: list every registered dataset, its folder, samples per split and class, and problems. `datasets check NAME` validates one fully."
)
app.add_typer(datasets_app, name="datasets")


@datasets_app.callback(invoke_without_command=True)
def datasets(ctx: typer.Context) -> None:
    """Every dataset in the registry: present?, samples per official split and per class (decodes nothing)."""
    if ctx.invoked_subcommand is not None:
        return
    from harness.data.inspection import OVERVIEW_HEADER, overview_rows, overviews

    table = Table(*OVERVIEW_HEADER, title=f"Datasets under {State.paths.data_root}")
    for row in overview_rows(overviews(State.config(), State.paths.data_root)):
        table.add_row(*row)
    Console().print(folded(table))


@datasets_app.command("check")
def datasets_check(
    name: str = typer.Argument(..., metavar="NAME", help="Dataset name from benchmark.toml."),
    dataset_dir: Optional[Path] = typer.Option(None, help="Check this folder instead of <data-root>/NAME."),
    show: int = typer.Option(20, min=0, help="How many problem lines to print."),
) -> None:
    """Validate NAME fully: label files, listed files, and every image decoded. Exits 1 on any problem."""
    from rich.progress import Progress

    from harness.data.inspection import KINDS_HEADER, check, kind_rows, split_class_rows

    dataset = State.config().dataset(name)
    root = (dataset_dir or State.paths.data_root / name).resolve()
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task(f"decoding {name}", total=None)
        report = check(dataset, root, progress=lambda done, total: progress.update(task, completed=done, total=total))
    console = Console()
    console.print(f"{name}: {root} (layout {report.layout or 'not recognised'})", markup=False, highlight=False)
    header, rows = split_class_rows(report, dataset.classes)
    counts = Table(*header, title="samples per class and official split")
    for row in rows:
        counts.add_row(*row)
    console.print(folded(counts))
    for note in report.notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    if not report.problems:
        console.print(f"{name}: {len(report.table)} samples, {report.decoded} images decoded, no problems.")
        return
    kinds = Table(*KINDS_HEADER, title=f"{len(report.problems)} problem(s)")
    for row in kind_rows(report):
        kinds.add_row(*row)
    console.print(folded(kinds))
    for problem in report.problems[:show]:
        console.print(problem.line, markup=False, highlight=False, soft_wrap=True)
    if len(report.problems) > show:
        console.print(f"… and {len(report.problems) - show} more (--show N)")
    raise typer.Exit(1)


@app.command()
def audit(
    dataset: str = typer.Argument(..., metavar="DATASET", help="Dataset name from benchmark.toml."),
    protocol: Optional[str] = typer.Option(None, "--protocol", metavar="PROTOCOL", help="Split protocol (default: the dataset's): official, official-folds, subject-kfold, photo-kfold, crossval-compat, fer-pytorch-folds or clivp-folds."),
    model: str = typer.Option("", "--model", metavar="MODEL", help="Model whose FER-crossval split variant crossval-compat draws."),
    dataset_dir: Optional[Path] = typer.Option(None, "--dataset-dir", metavar="DIR", help="Audit this folder instead of <data-root>/DATASET."),
) -> None:
    """Leakage between the train, validation and test sides of a protocol's saved folds: byte-identical images,
    near-duplicates (dHash), the same subject, sequence or photo on two sides, and conflicting labels.
    Draws and saves the split first if no run has. Exits 1 when the protocol leaks."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from harness.data.audit import audit as run_audit, summary_table
    from harness.data.saved_splits import saved_split

    split = saved_split(State.config(), State.paths, dataset, protocol, model, dataset_dir)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(f"hashing {split.dataset}", total=len(split.table))
        result = run_audit(split.dataset, split.protocol, split.file, split.root, split.table, split.folds,
                           progress=lambda done, total: progress.update(task, completed=done))
    console = Console()
    console.print(f"{split.dataset}: {split.root}; splits {split.file}", markup=False, highlight=False, soft_wrap=True)
    console.print(summary_table(result))
    for finding in result.findings:
        for example in finding.examples:
            console.print(f"{finding.check}: {example}", markup=False, highlight=False, soft_wrap=True)
    verdict = "leaks" if result.leaks else "does not leak"
    console.print(f"protocol {split.protocol} on {split.dataset} {verdict}.", markup=False, highlight=False)
    if result.leaks:
        raise typer.Exit(1)


splits_app = typer.Typer(help="Saved splits: export them to share and reuse.")
app.add_typer(splits_app, name="splits")


@splits_app.command("export")
def splits_export(
    dataset: str = typer.Argument(..., metavar="DATASET", help="Dataset name from benchmark.toml."),
    protocol: Optional[str] = typer.Option(None, "--protocol", metavar="PROTOCOL", help="Split protocol (default: the dataset's): official, official-folds, subject-kfold, photo-kfold, crossval-compat, fer-pytorch-folds or clivp-folds."),
    model: str = typer.Option("", "--model", metavar="MODEL", help="Model whose FER-crossval split variant crossval-compat draws."),
    dataset_dir: Optional[Path] = typer.Option(None, "--dataset-dir", metavar="DIR", help="Use this folder instead of <data-root>/DATASET."),
) -> None:
    """The saved split as CSV on stdout, columns fold,split,row,path: fold 0-based; split train, val or test; row
    the 0-based table row (a label file's data-row order); path relative to the dataset root."""
    from harness.data.saved_splits import saved_split
    from harness.data.splits_export import export_csv

    sys.stdout.write(export_csv(saved_split(State.config(), State.paths, dataset, protocol, model, dataset_dir)))


@app.command("weights")
def weights_() -> None:
    """Every pretrained weight file in the registry: verified (its sha256 pin matched), present but not verified (no pin), missing or mismatched. Exits 1 unless all are usable."""
    from harness.weights import HEADER, rows, usable

    cfg, weights_dir = State.config(), State.paths.weights
    with err.status(f"checking the sha256 of the files in {weights_dir}"):
        listed = rows(cfg, weights_dir)
    if not listed:
        Console().print(f"No model in {cfg.source} declares pretrained weights.", markup=False, highlight=False)
        return
    table = Table(title=f"Pretrained weights under {weights_dir}")
    for column in HEADER:
        table.add_column(column, no_wrap=column == "status", overflow="fold")
    for row in listed:
        table.add_row(*row, style=None if usable(row[3]) else "red")
    Console().print(table)
    unusable = sorted({(file, state, url) for _, file, _, state, url in listed if not usable(state)})
    for file, state, url in unusable:
        err.print(f"{weights_dir / file}: {state}; download {url}", markup=False, highlight=False, soft_wrap=True)
    if unusable:
        err.print("Put the files there (or pass --weights-dir), or run with --no-pretrained.", highlight=False)
        raise typer.Exit(1)


@app.command()
def align(
    name: str = typer.Argument(..., metavar="DATASET", help="Dataset name from benchmark.toml."),
    size: int = typer.Option(112, help="Side of the aligned crops: 112 or 224 (the ArcFace template, scaled)."),
    policy: str = typer.Option("fallback", help="When no usable face is found: fallback (the centre square resized, flagged) or skip (the image is left out)."),
    detect: Optional[bool] = typer.Option(
        None, "--detect/--no-detect",
        help="Detect faces even in pre-cropped 48×48 releases (or only resize); default: decided by the layout.",
    ),
    limit: Optional[int] = typer.Option(None, min=1, metavar="N", help="Align only the first N samples (table order); run again without it to finish."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda when torch sees it)."),
    dataset_dir: Optional[Path] = typer.Option(None, help="Read the dataset from this folder instead of <data-root>/NAME."),
    out: Optional[Path] = typer.Option(None, help="Write the aligned copy here (default: <data-root>/DATASET/aligned_<size>, only when the dataset is read from there)."),
    overwrite: bool = typer.Option(False, help="Replace an aligned set made there with other settings (otherwise refused); the old set is deleted first."),
) -> None:
    """Align DATASET's faces onto the ArcFace five-point template, with a manifest of every image."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from harness.align import align_dataset, align_target

    dataset = State.config().dataset(name)
    root = (dataset_dir or State.paths.data_root / name).resolve()
    target = align_target(State.paths.data_root, name, size, dataset_dir, out)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(f"aligning {name}", total=None)
        summary = align_dataset(
            dataset, root, target, size=size, policy=policy, detect=detect, limit=limit, device=device,
            overwrite=overwrite, progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    counts = Table("status", "images", title=f"{name}, {summary.mode}")
    for status, count in summary.counts.items():
        counts.add_row(status, str(count))
    console = Console()
    console.print(counts)
    console.print(summary.line(), markup=False, highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: turns expected errors into one line and an exit code, never a traceback."""
    try:
        app(args=argv, prog_name="ferbench")
    except FerbenchError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except OSError as error:  # read-only or full disk, a file where a folder should be: one line, not a traceback
        from rich.markup import escape

        from harness.files import os_error_line

        err.print(f"[red]error:[/red] {escape(os_error_line(error))}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
