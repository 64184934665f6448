"""The `ferbench` command line: thin Typer commands, each calling one module.

User errors arrive as FerbenchError and leave as one line on stderr with an exit code;
heavy modules (torch, vendored code) are imported inside the commands that need them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from harness import config as config_mod
from harness.errors import FerbenchError
from harness.paths import Paths

app = typer.Typer(
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
    upstreams = Table("upstream", "pin", "code", "licence", "repository", title="Upstreams")
    for row in upstream_rows(cfg, paths):
        upstreams.add_row(*row)
    console.print(models)
    console.print(datasets)
    console.print(upstreams)


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
        console.print(fetch_mod.check_table(statuses))
        ok = all(s.ok for s in statuses)
    else:
        outcomes = fetch_mod.fetch(upstreams, State.paths.vendor, force=force, mirror=mirror, console=console)
        ok = all(o.ok for o in outcomes)
    if not ok:
        raise typer.Exit(1)


@app.command()
def run(
    model: str = typer.Option(..., "--model", "-m", help="Model name from benchmark.toml."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset name from benchmark.toml."),
    repeats: Optional[int] = typer.Option(None, min=1, help="Seeded repeats (default from benchmark.toml)."),
    protocol: Optional[str] = typer.Option(None, help="Split protocol (default: the dataset's)."),
    epochs: Optional[int] = typer.Option(None, min=1, help="Override the recipe's epochs (part of the run id)."),
    batch_size: Optional[int] = typer.Option(None, min=2, help="Override the recipe's batch size (part of the run id)."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or auto (default from benchmark.toml)."),
    recipe: str = typer.Option(
        "upstream", help="upstream (each model's own optimizer, schedule, epochs) or a [recipes.NAME] template, e.g. unified."
    ),
    no_pretrained: bool = typer.Option(False, "--no-pretrained", help="Random initialisation."),
    trust_pickle: bool = typer.Option(
        False, "--trust-pickle", help="Allow weight files that can only be unpickled (runs code from the file); only after their sha256 matched."
    ),
    dataset_dir: Optional[Path] = typer.Option(None, help="Read the dataset from this folder."),
    overwrite: bool = typer.Option(False, help="Recompute runs that are already complete."),
    aligned: Optional[int] = typer.Option(
        None, metavar="SIZE", help="Train on the copy `ferbench align --size SIZE` made, not the raw images."
    ),
) -> None:
    """Train and evaluate MODEL on DATASET for N seeded repeats, one subprocess per run."""
    if device not in (None, "cpu", "cuda", "auto"):
        raise FerbenchError(f"--device: expected cpu, cuda or auto, got '{device}'", exit_code=2)
    from harness.run.launch import execute
    from harness.run.plan import Request, plan

    request = Request(
        model=model, dataset=dataset, protocol=protocol, repeats=repeats, epochs=epochs,
        batch_size=batch_size, device=device, pretrained=not no_pretrained, dataset_dir=dataset_dir,
        trust_pickle=trust_pickle, aligned=aligned, recipe=recipe,
    )
    jobs = plan(State.config(), State.paths, request)
    summary = execute(jobs, err, overwrite=overwrite)
    _print_run_summary(summary, len(jobs))


def _print_run_summary(summary, total: int) -> None:
    err.print(
        f"{len(summary.done)} run(s) completed, {len(summary.skipped)} already complete, "
        f"{len(summary.failed)} failed, of {total}."
    )
    for job, message in summary.failed:
        err.print(f"[red]failed[/red] {job.spec.model}/{job.spec.dataset} repeat {job.spec.repeat}: {message}")
        err.print(f"       log: {job.run_dir / 'worker.log'}")
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def report(fmt: str = typer.Option("md", "--format", help="md or csv.")) -> None:
    """Aggregate the results store into tables on stdout (`ferbench report > results.md`)."""
    from harness.report.aggregate import load_runs, summarise
    from harness.report.render import render_csv, render_markdown

    renderers = {"md": render_markdown, "csv": render_csv}
    if fmt not in renderers:
        raise FerbenchError(f"--format: expected one of {', '.join(renderers)}, got '{fmt}'", exit_code=2)
    sys.stdout.write(renderers[fmt](summarise(load_runs(State.paths.results))))


@app.command()
def synth(
    images_per_class: int = typer.Option(100, min=2, help="Images per class (train + test)."),
    size: int = typer.Option(64, min=16, help="Image side in pixels."),
    seed: int = typer.Option(0, help="Generator seed."),
) -> None:
    """Draw the synthetic expression dataset `synthetic` under the data root."""
    from harness.demo import make_synthetic

    make_synthetic(State.paths.data_root / "synthetic", images_per_class, size, seed, err)


@app.command()
def demo() -> None:
    """Offline end-to-end demo: synthetic data, the baseline for 3 repeats, then the report."""
    from harness.demo import run_demo

    sys.stdout.write(run_demo(State.config(), State.paths, err))


datasets_app = typer.Typer(help="Registered datasets: what is on disk, and a full check of one.")
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
    Console().print(table)


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
    console.print(counts)
    for note in report.notes:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    if not report.problems:
        console.print(f"{name}: {len(report.table)} samples, {report.decoded} images decoded, no problems.")
        return
    kinds = Table(*KINDS_HEADER, title=f"{len(report.problems)} problem(s)")
    for row in kind_rows(report):
        kinds.add_row(*row)
    console.print(kinds)
    for problem in report.problems[:show]:
        console.print(problem.line, markup=False, highlight=False, soft_wrap=True)
    if len(report.problems) > show:
        console.print(f"… and {len(report.problems) - show} more (--show N)")
    raise typer.Exit(1)


@app.command("weights")
def weights_() -> None:
    """Every pretrained weight file in the registry: present, missing or checksum mismatch. Exits 1 unless all are present."""
    from harness.weights import HEADER, rows

    cfg, weights_dir = State.config(), State.paths.weights
    with err.status(f"checking the sha256 of the files in {weights_dir}"):
        listed = rows(cfg, weights_dir)
    if not listed:
        Console().print(f"No model in {cfg.source} declares pretrained weights.", markup=False, highlight=False)
        return
    table = Table(title=f"Pretrained weights under {weights_dir}")
    for column in HEADER:
        table.add_column(column, no_wrap=column == "status", overflow="ellipsis" if column == "source" else "fold")
    for row in listed:
        table.add_row(*row, style=None if row[3].startswith("present") else "red")
    Console().print(table)
    unusable = sorted({(file, state, url) for _, file, _, state, url in listed if not state.startswith("present")})
    for file, state, url in unusable:
        err.print(f"{weights_dir / file}: {state}; download {url}", markup=False, highlight=False, soft_wrap=True)
    if unusable:
        err.print("Put the files there (or pass --weights-dir), or run with --no-pretrained.", highlight=False)
        raise typer.Exit(1)


@app.command()
def align(
    name: str = typer.Argument(..., metavar="DATASET", help="Dataset name from benchmark.toml."),
    size: int = typer.Option(112, help="Side of the aligned crops: 112 or 224 (the ArcFace template, scaled)."),
    policy: str = typer.Option("fallback", help="When no face is found: fallback (centre crop, flagged) or skip."),
    detect: Optional[bool] = typer.Option(
        None, "--detect/--no-detect",
        help="Detect faces even in pre-cropped 48×48 releases (or only resize); default: decided by the layout.",
    ),
    limit: Optional[int] = typer.Option(None, min=1, help="Align only the first N samples (table order)."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda when torch sees it)."),
    dataset_dir: Optional[Path] = typer.Option(None, help="Read the dataset from this folder."),
    out: Optional[Path] = typer.Option(None, help="Write here instead of <data-root>/DATASET/aligned_<size>."),
    overwrite: bool = typer.Option(False, help="Replace an aligned set made there with other settings."),
) -> None:
    """Align DATASET's faces onto the ArcFace five-point template, with a manifest of every image."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from harness.align import align_dataset, default_out

    dataset = State.config().dataset(name)
    root = (dataset_dir or State.paths.data_root / name).resolve()
    target = (out or default_out(State.paths.data_root, name, size)).resolve()
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
    console.print(
        f"{summary.processed} images aligned now ({summary.images_per_s:.1f} images/s), {summary.reused} already "
        f"done; manifest {summary.out / 'manifest.csv'}, sha256 {summary.manifest_hash[:16]}",
        markup=False, highlight=False, soft_wrap=True,
    )


def main(argv: list[str] | None = None) -> None:
    """Console entry point: turns expected errors into one line and an exit code, never a traceback."""
    try:
        app(args=argv, prog_name="ferbench")
    except FerbenchError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
