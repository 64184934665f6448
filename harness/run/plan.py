"""Turn a `ferbench run` request into jobs: one per repeat, each with its resolved spec and paths."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from harness.config import MAX_EPOCHS, MAX_REPEATS, Config
from harness.data.protocols import is_fold_protocol, parse_folds, saved_folds
from harness.align.placement import read_settings, run_source
from harness.errors import FerbenchError
from harness.paths import Paths
from harness.run.sources import resolve
from harness.run.upstream_state import require_pinned
from harness.run.spec import RunSpec
from harness.run.store import run_dir
from harness.weights import require


@dataclass(frozen=True)
class Job:
    spec: RunSpec
    run_dir: Path
    results_dir: Path
    dataset_root: Path
    splits_file: Path
    manifest: str
    aligned_dir: Path | None
    upstream_dir: Path | None
    device: str
    repeats: int
    config_path: Path
    weights_dir: Path
    allow_modified_upstream: bool = False
    save_model: bool = False
    """Keep the selected weights as model.safetensors (not part of the run id: it changes no number)."""
    fold_count: int = 1
    """Folds of the split file: a report cell of a fold protocol is complete only with every fold."""
    loader_workers: int | None = None
    """Prefetch processes (None: chosen from the CPUs); not part of the run id: the numbers do not depend on it."""
    checkpoint_interval: float = 0.0
    """Seconds between epoch checkpoints; not part of the run id: a resume from any epoch ends the same."""

    def to_dict(self) -> dict:
        return dict(
            spec=self.spec.to_dict(),
            run_dir=str(self.run_dir),
            results_dir=str(self.results_dir),
            dataset_root=str(self.dataset_root),
            splits_file=str(self.splits_file),
            manifest=self.manifest,
            aligned_dir=str(self.aligned_dir) if self.aligned_dir else None,
            upstream_dir=str(self.upstream_dir) if self.upstream_dir else None,
            device=self.device,
            repeats=self.repeats,
            config_path=str(self.config_path),
            weights_dir=str(self.weights_dir),
            allow_modified_upstream=self.allow_modified_upstream,
            save_model=self.save_model,
            fold_count=self.fold_count,
            loader_workers=self.loader_workers,
            checkpoint_interval=self.checkpoint_interval,
        )

    @classmethod
    def from_dict(cls, data: dict) -> Job:
        paths = {k: Path(data[k]) if data[k] is not None else None
                 for k in ("run_dir", "results_dir", "dataset_root", "splits_file", "aligned_dir", "upstream_dir",
                           "config_path", "weights_dir")}
        return cls(spec=RunSpec.from_dict(data["spec"]), manifest=data["manifest"], device=data["device"],
                   repeats=data["repeats"], allow_modified_upstream=data.get("allow_modified_upstream", False),
                   save_model=data.get("save_model", False),
                   fold_count=data.get("fold_count", 1),
                   loader_workers=data.get("loader_workers"), checkpoint_interval=data.get("checkpoint_interval", 0.0), **paths)


@dataclass(frozen=True)
class Request:
    model: str = ""
    dataset: str = ""
    protocol: str | None = None
    repeats: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    device: str | None = None
    pretrained: bool = True
    dataset_dir: Path | None = None
    amp: bool = False
    recipe: str = "upstream"
    """`upstream` (each model's own) or a `[recipes.NAME]` template such as `unified`."""
    aligned: int | Path | None = None
    """Train on an aligned copy, not the raw images: a size (the copy `aligned_<size>/` in the dataset's folder)
    or the copy's folder (see harness/align/placement.py)."""
    allow_modified_upstream: bool = False
    """Run on a vendor tree that is not its pinned commit as fetched (recorded, labelled, own run ids)."""
    save_model: bool | None = None
    """Keep each run's selected weights (default `defaults.save_model`)."""
    folds: str | None = None
    """`--folds 0,3-5`: only these folds of a fold protocol (default: every fold)."""
    selection: str = "val"
    """`val`: keep the epoch best on a validation slice of the training data; `final`: train on the whole
    training split for the recipe's epochs and keep the last."""
    loader_workers: int | None = None
    augment_on: str = "host"
    checkpoint_interval: float | None = None
    """Seconds between epoch checkpoints (default `defaults.checkpoint_interval`)."""


SELECTIONS = ("val", "final")


def check(request: Request) -> None:
    """One-line errors for out-of-range options, before anything is planned."""
    if request.epochs is not None and not 1 <= request.epochs <= MAX_EPOCHS:
        raise FerbenchError(f"--epochs: {request.epochs} is outside 1..{MAX_EPOCHS}", exit_code=2)
    if request.repeats is not None and not 1 <= request.repeats <= MAX_REPEATS:
        raise FerbenchError(
            f"--repeats: {request.repeats} is outside 1..{MAX_REPEATS} (seeds per fold; every fold runs anyway)", exit_code=2
        )
    if request.selection not in SELECTIONS:
        raise FerbenchError(f"--selection: expected {' or '.join(SELECTIONS)}, got '{request.selection}'", exit_code=2)


def grid(cfg: Config, paths: Paths, request: Request, models: list[str], datasets: list[str], every: bool = False):
    """Plan every (model, dataset) pair; `every` takes all models × the datasets present under the data root,
    skipping pairs of a video model and a static dataset or the reverse. Returns (jobs, skipped pairs)."""
    if every:
        models = models or sorted(cfg.models)
        datasets = datasets or sorted(n for n in cfg.datasets if (paths.data_root / n).is_dir())
    if not models or not datasets:
        raise FerbenchError("name at least one --model and one --dataset, or pass --all", exit_code=2)
    check(request)
    jobs, skipped = [], []
    for m in dict.fromkeys(models):
        for d in dict.fromkeys(datasets):
            if every and cfg.model(m).video != cfg.dataset(d).video:
                skipped.append(f"{m}/{d}")
                continue
            jobs += plan(cfg, paths, replace(request, model=m, dataset=d))
    return jobs, skipped


def plan(cfg: Config, paths: Paths, request: Request) -> list[Job]:
    """Every fold of a fold protocol (or those of `--folds`) × `--repeats` seeds (default 1); a single split ×
    `--repeats` seeds (default `defaults.repeats`). Seed r is `base_seed + r` on every fold."""
    check(request)
    model, dataset = cfg.model(request.model), cfg.dataset(request.dataset)
    if model.video != dataset.video:
        takes, holds = ("video clips", "still images") if model.video else ("still images", "video clips")
        raise FerbenchError(f"model '{model.name}' takes {takes} but dataset '{dataset.name}' holds {holds}", exit_code=2)
    protocol = request.protocol or dataset.protocol
    root, aligned = run_source(paths.data_root, dataset.name, request.aligned, request.dataset_dir)
    source = resolve(dataset, root, aligned)
    splits_file, folds = saved_folds(
        source.table, paths.results, dataset.name, protocol, source.manifest, cfg.defaults.val_fraction,
        folds=dataset.folds, model=model.name,
    )
    folded = is_fold_protocol(folds)
    repeats = request.repeats or (1 if folded else cfg.defaults.repeats)
    if request.folds is not None and not folded:
        raise FerbenchError(f"--folds: protocol '{protocol}' draws a single split; leave --folds out", exit_code=2)
    chosen = parse_folds(request.folds, len(folds)) if request.folds is not None else list(range(len(folds)))

    upstream = cfg.upstream(model.upstream) if model.upstream else None
    upstream_dir = (paths.vendor / upstream.name).resolve() if upstream else None
    if upstream_dir is not None and not upstream_dir.is_dir():
        raise FerbenchError(f"{upstream_dir}: upstream '{upstream.name}' is not fetched; run `ferbench fetch {upstream.name}`")
    tree = require_pinned(upstream, upstream_dir, request.allow_modified_upstream) if upstream else None

    pretrained = request.pretrained and bool(model.pretrained)
    if pretrained:
        require(model, paths.weights)  # a missing or altered file stops here, before any worker starts
    overrides = {k: v for k, v in (("epochs", request.epochs), ("batch_size", request.batch_size)) if v is not None}
    if request.amp:
        overrides["amp"] = True
    if request.selection == "final":
        overrides["patience"] = None  # no validation data: the recipe's whole epoch budget runs
    recipe = cfg.recipe(model, request.recipe, dataset=dataset.name).model_copy(update=overrides).model_dump()
    stages = {name: cfg.recipe(model, request.recipe, name).model_copy(update=overrides).model_dump() for name in model.stages}
    jobs = []
    for fold, repeat in ((fold, repeat) for fold in chosen for repeat in range(repeats)):
        spec = RunSpec(
            model=model.name,
            dataset=dataset.name,
            protocol=protocol,
            splits=splits_file.stem,
            aligned=f"aligned_{read_settings(aligned)['settings']['size']}-{source.aligned[:16]}" if source.aligned else None,
            fold=fold,
            repeat=repeat,
            seed=cfg.defaults.base_seed + repeat,
            classes=dataset.classes,
            input_size=model.input_size,
            recipe=recipe,
            pretrained=pretrained,
            val_fraction=cfg.defaults.val_fraction,
            selection=cfg.defaults.selection if request.selection == "val" else "final",
            upstream=upstream.name if upstream else None,
            upstream_commit=upstream.commit if upstream else None,
            stages=stages,
            upstream_diff=tree.diff_sha256 if tree is not None and tree.dirty else None,
            augment_on=request.augment_on,
        )
        jobs.append(
            Job(
                spec=spec,
                run_dir=run_dir(paths.results, dataset.name, model.name, protocol, spec.run_id),
                results_dir=paths.results,
                dataset_root=root,
                splits_file=splits_file,
                manifest=source.manifest,
                aligned_dir=aligned,
                upstream_dir=upstream_dir,
                device=request.device or cfg.defaults.device,
                repeats=repeats,
                config_path=Path(cfg.source).resolve(),
                weights_dir=paths.weights,
                allow_modified_upstream=request.allow_modified_upstream,
                save_model=cfg.defaults.save_model if request.save_model is None else request.save_model,
                fold_count=len(folds),
                loader_workers=request.loader_workers,
                checkpoint_interval=(cfg.defaults.checkpoint_interval if request.checkpoint_interval is None
                                     else request.checkpoint_interval),
            )
        )
    return jobs
