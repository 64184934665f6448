"""Score fixed weights on a dataset split with the model's own eval transform and eval forward.

The weights are a run's saved model or an upstream checkpoint (`Weights`); the model is built by its adapter
(every stage, for multi-stage models) and loaded strictly. Images come from the same decoded cache and the same
saved splits as training, and go through the training loop's own `evaluate` with the run's eval batch size, so
a run evaluated on its own test split gives its result.json figures exactly. Output columns are mapped onto the
dataset's classes by canonical name (classmap.py).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from functools import partial
from datetime import datetime, timezone
from pathlib import Path

from harness.config import Config
from harness.errors import FerbenchError
from harness.evaluate import record as store
from harness.evaluate.classmap import ClassMap, class_map
from harness.files import hash_file, read_json
from harness.paths import Paths

SPLITS = ("test", "all")


def _swapped(transform, batch):
    """RGB ↔ BGR (the channel axis of [B,3,H,W] images and [B,T,3,H,W] clips), then the adapter's transform."""
    return transform(batch.flip(-3))


@dataclass(frozen=True)
class Weights:
    model: str
    state: dict = field(repr=False)
    classes: tuple[str, ...]
    sha256: str
    input_size: int
    eval_batch_size: int
    kind: str
    """`run` (a ferbench run's model.safetensors) or `checkpoint` (an upstream file)."""
    trained_on: str
    amp: bool = False
    swap_channels: bool = False
    """Swap RGB and BGR before the adapter's evaluation transform (`[[checkpoints]]` swap_channels)."""
    info: dict = field(default_factory=dict)
    """run_id, repeat, protocol, fold (runs); path, format, source (checkpoints)."""


@dataclass(frozen=True)
class Target:
    dataset: str
    root: Path | None = None
    """The dataset folder (default: <data root>/<dataset>)."""
    aligned: Path | None = None
    split: str = "test"
    """`test`: the protocol's test split of `fold`; `all`: every sample."""
    protocol: str | None = None
    fold: int | None = None


def sha256_of(path: Path) -> str:
    return hash_file(path, hashlib.sha256())


def find_run(results: Path, run_id: str) -> Path:
    found = [p for p in results.glob(f"*/*/*/{run_id}") if p.is_dir()] if len(run_id) >= 4 else []
    if not found:
        found = [p for p in results.glob(f"*/*/*/{run_id}*") if p.is_dir() and (p / "config.json").is_file()]
    if len(found) != 1:
        what = "no run" if not found else f"{len(found)} runs"
        raise FerbenchError(f"{results}: {what} with id '{run_id}' (ids are the run folders' names)", exit_code=2)
    return found[0]


def run_weights(results: Path, run_id: str) -> tuple[Weights, Path]:
    from harness.evaluate import saved

    folder = find_run(results, run_id)
    state, meta = saved.load(folder)
    config = read_json(folder / "config.json")
    env = read_json(folder / "env.json") if (folder / "env.json").is_file() else {}
    weights = Weights(
        model=meta["model"], state=state, classes=tuple(meta["classes"]), sha256=sha256_of(folder / saved.WEIGHTS),
        input_size=int(meta["input_size"]), eval_batch_size=int(meta["eval_batch_size"]), kind="run",
        trained_on=meta["trained_on"], amp=bool(meta.get("amp", False)),
        info=dict(run_id=meta["run_id"], repeat=config.get("repeat"), protocol=config.get("protocol"),
                  fold=config.get("fold"), aligned=config.get("aligned"), splits_file=env.get("splits_file"),
                  dataset_manifest=env.get("dataset_manifest")),
    )
    return weights, folder


def checkpoint_entry(cfg: Config, model: str, trained_on: str | None, fmt: str | None):
    entries = [c for c in cfg.checkpoints if c.model == model and (trained_on is None or c.trained_on == trained_on)
               and (fmt is None or c.format == fmt)]
    own = [c for c in entries if fmt is None and c.format == cfg.model(model).upstream]
    if len(entries) == 1 or len(own) == 1:
        return entries[0] if len(entries) == 1 else own[0]  # several formats: the upstream's own by default
    known = "; ".join(f"--trained-on {c.trained_on} --format {c.format}" for c in (entries or cfg.checkpoints) if c.model == model)
    if not entries:
        raise FerbenchError(f"{cfg.source}: no [[checkpoints]] entry for model '{model}'"
                            f"{f' trained on {trained_on}' if trained_on else ''}{f' in format {fmt}' if fmt else ''}"
                            f" (declared for it: {known or 'none'}); add one with the class order of its training script",
                            exit_code=2)
    raise FerbenchError(f"several checkpoint kinds for '{model}' match; choose one: {known}", exit_code=2)


def checkpoint_weights(cfg: Config, model: str, path: Path, trained_on: str | None, fmt: str | None) -> Weights:
    from harness.evaluate import formats

    if not path.is_file():
        raise FerbenchError(f"{path}: no such checkpoint file", exit_code=2)
    entry = checkpoint_entry(cfg, model, trained_on, fmt)
    model_cfg = cfg.model(model)
    state = formats.read(path, formats.get(entry.format))
    recipe = model_cfg.stages[list(model_cfg.stages)[-1]] if model_cfg.stages else model_cfg.recipe
    info = dict(path=str(path.resolve()), format=entry.format, source=entry.source)
    if entry.note:
        info["note"] = entry.note
    return Weights(
        model=model, state=state, classes=entry.classes, sha256=sha256_of(path),
        input_size=entry.input_size or model_cfg.input_size, eval_batch_size=recipe.batch_size * 2,
        swap_channels=entry.swap_channels,
        kind="checkpoint", trained_on=entry.trained_on, info=info,
    )


def build_model(cfg: Config, paths: Paths, weights: Weights):
    """(model holding `weights`, the adapter of its last stage, upstream dir); the upstream goes on sys.path."""
    from adapters import load_adapter
    from adapters.contract import BuildContext
    from harness.run.worker import isolate_sys_path
    from harness.weights import load_into, locate, verify

    model_cfg = cfg.model(weights.model)
    upstream_dir = None
    if model_cfg.upstream:
        upstream_dir = (paths.vendor / cfg.upstream(model_cfg.upstream).name).resolve()
        if not upstream_dir.is_dir():
            raise FerbenchError(f"{upstream_dir}: upstream '{model_cfg.upstream}' is not fetched; run `ferbench fetch {model_cfg.upstream}`")
        if str(upstream_dir) not in sys.path:
            isolate_sys_path(upstream_dir)
    present = {}
    for weight in model_cfg.pretrained:  # architectures read from a weight file (CLIP) need it; none is loaded
        if (paths.weights / weight.name).is_file():
            path = locate(weight, paths.weights, model_cfg.name)
            verify(weight, path, model_cfg.name)
            present[weight.name] = path
    adapter = load_adapter(model_cfg.adapter, model_cfg.variant)
    ctx = BuildContext(num_classes=len(weights.classes), input_size=weights.input_size, pretrained=False,
                       weights_dir=paths.weights, upstream_dir=upstream_dir, weights=present, classes=weights.classes)
    model = adapter.build(ctx)
    for stage in adapter.stages:
        model, adapter = stage.adapter.build(replace(ctx, previous=model)), stage.adapter
    what = weights.info.get("path") or f"run {weights.info.get('run_id')} model.safetensors"
    load_into(model, weights.state, what=f"{what} ({weights.model})")
    return model, adapter, upstream_dir


def resolve_target(cfg: Config, paths: Paths, weights: Weights, target: Target):
    """(dataset record, Source, test rows, protocol, fold) of the data to score."""
    from harness.data.protocols import saved_folds
    from harness.run.sources import resolve

    dataset = cfg.dataset(target.dataset)
    model_cfg = cfg.model(weights.model)
    if model_cfg.video != dataset.video:
        raise FerbenchError(f"model '{weights.model}' takes {'video clips' if model_cfg.video else 'still images'}; "
                            f"dataset '{dataset.name}' holds {'video clips' if dataset.video else 'still images'}", exit_code=2)
    if target.split not in SPLITS:
        raise FerbenchError(f"--split: expected test or all, got '{target.split}'", exit_code=2)
    root = (target.root or paths.data_root / dataset.name).resolve()
    if not root.is_dir():
        raise FerbenchError(f"{root}: dataset '{dataset.name}' is not there; pass its folder (--dataset-dir, or --target NAME=PATH)")
    source = resolve(dataset, root, target.aligned.resolve() if target.aligned else None)
    if target.split == "all":
        return dataset, source, list(range(len(source.table))), None, None
    own = weights.kind == "run" and dataset.name == weights.trained_on
    protocol = target.protocol or (weights.info.get("protocol") if own else None) or dataset.protocol
    fold = target.fold if target.fold is not None else (weights.info.get("fold") if own and protocol == weights.info.get("protocol") else 0)
    saved = weights.info.get("splits_file")
    if own and protocol == weights.info.get("protocol") and saved and Path(saved).is_file() \
            and source.manifest == weights.info.get("dataset_manifest"):
        folds = [SimpleNamespace(**f) for f in read_json(Path(saved))["folds"]]  # the run's own saved split file
    else:
        _, folds = saved_folds(source.table, paths.results, dataset.name, protocol, source.manifest,
                               cfg.defaults.val_fraction, folds=dataset.folds, model=weights.model)
    if not 0 <= fold < len(folds):
        raise FerbenchError(f"--fold: protocol {protocol} of {dataset.name} has folds 0-{len(folds) - 1}, not {fold}", exit_code=2)
    return dataset, source, list(folds[fold].test), protocol, fold


def _split(results: Path, dataset, source, rows, mapping: ClassMap, size: int):
    import numpy as np
    import torch

    from harness.data.cache import open_cache
    from harness.data.video_cache import open_frame_cache
    from harness.run.loop import Split, VideoSplit

    labels = source.table["label"].iloc[rows].tolist()
    kept = np.asarray([r for r, label in zip(rows, labels) if label in mapping.shared], dtype=np.int64)
    excluded = {c: labels.count(c) for c in mapping.unscored if labels.count(c)}
    if len(kept) == 0:
        raise FerbenchError(f"{source.root}: no sample of the scored classes ({', '.join(mapping.shared)}) in the split")
    index = {name: i for i, name in enumerate(mapping.shared)}
    y = torch.tensor([index[label] for label in source.table["label"].iloc[kept]], dtype=torch.long)
    opener = open_frame_cache if dataset.video else open_cache
    cache = opener(results, dataset, source.root, source.table, source.manifest, size)
    if dataset.video:
        return VideoSplit(frames=cache, clips=kept, labels=y), kept, excluded
    return Split(images=torch.from_numpy(np.ascontiguousarray(cache.images[kept])), labels=y), kept, excluded


def _device(name: str):
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise FerbenchError("--device cuda: torch sees no CUDA device", exit_code=2)
    return torch.device(name)


def evaluate(cfg: Config, paths: Paths, weights: Weights, target: Target, device: str = "auto",
             overwrite: bool = False) -> tuple[dict, bool]:
    """(evaluation record, whether it was computed now); a finished record with the same id is reused."""
    from adapters.contract import reads_test_labels
    from harness.run.loop import evaluate as score
    from harness.run.worker import _predictions_csv

    dataset, source, rows, protocol, fold = resolve_target(cfg, paths, weights, target)
    split = dict(name=target.split, protocol=protocol, fold=fold, aligned=source.aligned)
    reading = dict(model=weights.model, classes=list(weights.classes), input_size=weights.input_size,
                   **({"swap_channels": True} if weights.swap_channels else {}))
    eval_id = store.evaluation_id(weights.sha256, source.manifest, split, reading)
    if not overwrite and (done := store.existing(paths.results, dataset.name, eval_id)) is not None:
        return done, False
    mapping = class_map(weights.classes, dataset.classes, f"{weights.model} on {dataset.name}")
    model, adapter, _ = build_model(cfg, paths, weights)
    leaks = reads_test_labels(adapter)
    if leaks and not mapping.identity:
        raise FerbenchError(f"model '{weights.model}' reads each sample's true label at test time (test_label_input); "
                            f"it can be scored only on its own classes in their order, not mapped onto {dataset.name}'s", exit_code=2)
    data, kept, excluded = _split(paths.results, dataset, source, rows, mapping, weights.input_size)
    columns = list(mapping.outputs)
    scored = replace(adapter, logits=lambda outputs: adapter.logits(outputs)[:, columns])
    torch_device = _device(device)
    model.to(torch_device)
    transform = adapter.eval_transform(weights.input_size)
    if weights.swap_channels:
        transform = partial(_swapped, transform)
    result = score(model, scored, data, transform, weights.eval_batch_size, torch_device, len(mapping.shared), weights.amp)
    model_cfg = cfg.model(weights.model)
    upstream = cfg.upstream(model_cfg.upstream) if model_cfg.upstream else None
    record = dict(
        id=eval_id, kind=weights.kind, model=weights.model, trained_on=weights.trained_on, dataset=dataset.name,
        **{k: v for k, v in weights.info.items() if k not in ("dataset_manifest", "splits_file")},
        weights_sha256=weights.sha256,
        split=split, dataset_root=str(source.root), dataset_manifest=source.manifest,
        samples=len(kept), excluded=excluded, test_label_input=leaks, class_map=mapping.to_dict(), class_mapping=mapping.describe(),
        classes=list(mapping.shared), loss=result.loss, **result.metrics,
        eval_transform=f"{adapter.eval_transform.__module__}.{adapter.eval_transform.__qualname__}",
        input_size=weights.input_size, swap_channels=weights.swap_channels, eval_batch_size=weights.eval_batch_size,
        device=str(torch_device),
        upstream=upstream.name if upstream else None, upstream_commit=upstream.commit if upstream else None,
        created=datetime.now(timezone.utc).isoformat(),
    )
    paths_column = source.table["path"].iloc[kept].tolist()
    store.write(paths.results, record, _predictions_csv(paths_column, data.labels.tolist(), result.probabilities, mapping.shared))
    return record, True
