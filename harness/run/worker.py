"""Subprocess entry point: one run, one process, only its own upstream on `sys.path`.

Upstream repositories reuse top-level names (`models`, `utils`, `networks`, `clip`), and
`sys.modules` keeps the first one imported, so two upstreams must never share a process.
The parent passes a job file; progress goes to stdout as `@ferbench {json}` lines.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

EVENT_PREFIX = "@ferbench "


def emit(event: str, **payload) -> None:
    print(EVENT_PREFIX + json.dumps({"event": event, **payload}, default=str), flush=True)


def _resolve_device(name: str):
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device")
    fraction = os.environ.get("FERBENCH_GPU_MEMORY_FRACTION")
    if name == "cuda" and fraction:  # several workers share this GPU (`ferbench run --jobs K`)
        torch.cuda.set_per_process_memory_fraction(float(fraction))
    return torch.device(name)


def _loader_workers(job: dict) -> int:
    """The job's `--loader-workers`; a job planned without one (Slurm, older job files) takes the CPUs it has."""
    from harness.run.prefetch import default_workers

    return default_workers() if job.get("loader_workers") is None else job["loader_workers"]


def _model_cost(spec, model, adapter, data, recipe, device, ctx) -> dict:
    """Parameters, GFLOPs and inference speed (harness.run.cost); a failure is recorded, never fatal."""
    from harness.run.cost import run_cost

    emit("phase", phase="measuring model cost")
    last = adapter.stages[-1].adapter if adapter.stages else adapter
    try:
        return run_cost(spec.model, model, last, data["test"],
                        last.eval_transform(spec.input_size), device, ctx.num_classes, spec.input_size, recipe.batch_size)
    except Exception as err:  # noqa: BLE001 - the run's metrics stand without it
        return dict(error=f"{type(err).__name__}: {err}")


def _predictions_csv(paths, labels, probabilities, classes) -> str:
    import pandas as pd

    frame = pd.DataFrame(
        {
            "path": paths,
            "true": [classes[i] for i in labels],
            "predicted": [classes[i] for i in probabilities.argmax(1)],
        }
    )
    for k, name in enumerate(classes):
        frame[f"p_{name}"] = probabilities[:, k].round(6)
    return frame.to_csv(index=False)


def isolate_sys_path(upstream_dir: Path | None) -> None:
    """Drop the working directory that `python -m` puts first (a user's `models/` or `datasets/` folder
    must not shadow anything) and put the run's own upstream, and only it, in front."""
    cwd = os.path.realpath(os.getcwd())
    sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != cwd]
    if upstream_dir is not None:
        sys.path.insert(0, str(upstream_dir))


def load_splits(results: Path, dataset, root: Path, table, manifest: str, fold: dict, classes, size: int):
    """({train, val, test} splits, cache path) from the dataset's decoded cache, built first when needed.

    Still images: `Split`s held in memory, from the image cache. Video: `VideoSplit`s reading the frame
    cache (too large for memory; see harness.data.video_cache) and sampling 16 frames per clip each batch.
    """
    import numpy as np
    import torch

    from harness.data.cache import open_cache
    from harness.data.video_cache import open_frame_cache
    from harness.run.loop import Split, VideoSplit

    class_index = {name: i for i, name in enumerate(classes)}
    opener, what = (open_frame_cache, "frames") if dataset.video else (open_cache, "images")
    cache = opener(results, dataset, root, table, manifest, size,
                   progress=lambda done, total: emit("phase", phase=f"caching {what}", done=done, total=total))
    emit("phase", phase=f"loading {what}")
    data = {}
    for part in ("train", "val", "test"):
        rows = np.asarray(fold[part], dtype=np.int64)
        labels = torch.tensor([class_index[label] for label in table["label"].iloc[rows]], dtype=torch.long)
        if dataset.video:
            data[part] = VideoSplit(frames=cache, clips=rows, labels=labels)
        else:
            data[part] = Split(images=torch.from_numpy(np.ascontiguousarray(cache.images[rows])), labels=labels)
    return data, cache.path


def run(job: dict) -> None:
    started = time.perf_counter()
    from harness.run.seeding import seed_everything
    from harness.run.spec import RunSpec

    spec = RunSpec.from_dict(job["spec"])
    determinism = seed_everything(spec.seed)

    upstream_dir = Path(job["upstream_dir"]) if job.get("upstream_dir") else None
    isolate_sys_path(upstream_dir)

    import torch

    from adapters import load_adapter
    from adapters.contract import BuildContext, model_module_file, reads_test_labels
    from harness import config as config_mod
    from harness.run.sources import resolve
    from harness.data.protocols import training_share, whole_training_split
    from harness.run.stages import stage_summary, train_stages
    from harness.run.provenance import environment
    from harness.files import read_json, write_json_atomic, write_text_atomic
    from harness.run.store import CHECKPOINTS, mark_complete
    from harness.errors import FerbenchError
    from harness.weights import require, sha256_file, verification

    cfg = config_mod.load(Path(job["config_path"]))
    model_cfg, dataset_cfg = cfg.model(spec.model), cfg.dataset(spec.dataset)
    run_dir = Path(job["run_dir"])
    device = _resolve_device(job["device"])

    tree = None
    if spec.upstream:
        from harness.run.upstream_state import require_pinned

        tree = require_pinned(cfg.upstream(spec.upstream), upstream_dir, job.get("allow_modified_upstream", False))
        if (tree.diff_sha256 if tree.dirty else None) != spec.upstream_diff:
            raise FerbenchError(f"{upstream_dir}: the upstream tree changed since the run was planned; run again")
    source = resolve(dataset_cfg, Path(job["dataset_root"]), Path(job["aligned_dir"]) if job["aligned_dir"] else None)
    root, table, manifest = source.root, source.table, source.manifest
    if manifest != job["manifest"] or (source.aligned or "")[:16] != (spec.aligned or "")[-16:]:
        raise FerbenchError(f"{root}: the dataset changed since the run was planned (manifest {manifest[:12]}); run again")
    saved_splits = read_json(Path(job["splits_file"]))
    fold, procedure = saved_splits["folds"][spec.fold], saved_splits.get("procedure", {})
    share = training_share(fold, procedure, spec.selection)
    if spec.selection == "final":
        fold = whole_training_split(fold, procedure)

    data, cache_path = load_splits(Path(job["results_dir"]), dataset_cfg, root, table, manifest, fold, spec.classes,
                                   spec.input_size)

    adapter = load_adapter(model_cfg.adapter, model_cfg.variant)
    if reads_test_labels(adapter) != model_cfg.test_label_input:
        raise FerbenchError(
            f"{job['config_path']}: models.{spec.model}.test_label_input must be {str(reads_test_labels(adapter)).lower()}: "
            f"adapters/{model_cfg.adapter}.py {'gives' if reads_test_labels(adapter) else 'does not give'} the model the test labels"
        )
    recipe = config_mod.Recipe.model_validate(spec.recipe)
    counts = torch.bincount(data["train"].labels, minlength=len(spec.classes))
    ctx = BuildContext(
        num_classes=len(spec.classes), input_size=spec.input_size, pretrained=spec.pretrained,
        weights_dir=Path(job["weights_dir"]), upstream_dir=upstream_dir,
        weights=require(model_cfg, Path(job["weights_dir"])) if spec.pretrained else {},
        allowed_globals={w.name: w.globals for w in model_cfg.pretrained},
        classes=tuple(spec.classes), class_counts=tuple(int(c) for c in counts),
        batch_size=recipe.batch_size, epochs=recipe.epochs,
    )
    model, outcome, stages = train_stages(
        adapter, ctx, recipe, spec.stages,
        on_stage=lambda name, stage: emit("phase", phase="training" if not spec.stages else f"training ({name})", epochs=stage.epochs),
        checkpoint_dir=run_dir / CHECKPOINTS, keep_selected=job.get("save_model", False),
        data=data, selection=spec.selection, device=device, seed=spec.seed,
        on_epoch=lambda record: emit("epoch", **record),
        on_resume=lambda epoch: (emit("resumed", epoch=epoch), print(f"resuming after epoch {epoch} from its checkpoint", file=sys.stderr)),
        loader_workers=_loader_workers(job), augment_on=spec.augment_on,
        checkpoint_interval=job.get("checkpoint_interval", 0.0),
        on_progress=lambda progress: emit("step", **progress),
    )

    cost = _model_cost(spec, model, adapter, data, recipe, device, ctx)
    test_rows = table.iloc[fold["test"]]
    selection_rule = (
        f"best {spec.selection} (validation, {len(data['val'])} samples); ties keep the earlier epoch"
        if len(data["val"]) else
        f"final epoch of {recipe.epochs} (--selection final: the whole training split, no hold-out)"
        if spec.selection == "final" else "final epoch (no validation data)"
    )
    result = dict(
        run_id=spec.run_id,
        **outcome.selected.metrics,
        test_loss=outcome.selected.loss,
        classes=list(spec.classes),
        selection_rule=selection_rule,
        **{k: v for k, v in stage_summary(outcome).items() if k not in outcome.selected.metrics},
        recipe=recipe.name,
        display=model_cfg.label,
        test_label_input=reads_test_labels(adapter),
        pretrained=spec.pretrained,
        stages=stages,
        samples=dict(train=len(data["train"]), val=len(data["val"]), test=len(data["test"])),
        training_share=share,
        wall_time_s=round(time.perf_counter() - started, 3),
        cost=cost,
    )
    env = dict(
        environment(device, upstream_dir, determinism),
        upstream=spec.upstream,
        upstream_commit=spec.upstream_commit,
        **(tree.record() if tree is not None else {}),
        model_class=f"{type(model).__module__}.{type(model).__qualname__}",
        model_file=model_module_file(model, upstream_dir),
        weights={name: sha256_file(path) for name, path in ctx.weights.items()},
        weights_verified={name: state for name, state in verification(model_cfg).items() if name in ctx.weights},
        dataset_root=job["dataset_root"],
        dataset_manifest=manifest,
        aligned_dir=job["aligned_dir"],
        aligned_manifest=source.aligned,
        splits_file=job["splits_file"],
        split_variant=saved_splits.get("procedure", {}).get("variant"),
        image_cache=str(cache_path),
    )
    write_json_atomic(run_dir / "config.json", dict(spec.to_dict(), repeats=job["repeats"], device=job["device"],
                                                     fold_count=job.get("fold_count", 1)))
    write_text_atomic(
        run_dir / "predictions.csv",
        _predictions_csv(test_rows["path"].tolist(), data["test"].labels.tolist(), outcome.selected.probabilities, spec.classes),
    )
    write_json_atomic(run_dir / "env.json", env)
    write_json_atomic(run_dir / "result.json", result)
    if job.get("save_model", False):
        from harness.evaluate import saved

        last = config_mod.Recipe.model_validate(spec.stages[adapter.stages[-1].name]) if adapter.stages else recipe
        final_adapter = adapter.stages[-1].adapter if adapter.stages else adapter
        saved.save(run_dir, saved.selected_weights(model, outcome),
                   saved.meta(spec, final_adapter, result, eval_batch_size=last.batch_size * 2))
    mark_complete(run_dir, dict(run_id=spec.run_id, finished=datetime.now(timezone.utc).isoformat()))
    shutil.rmtree(run_dir / CHECKPOINTS, ignore_errors=True)
    emit("done", accuracy=result["accuracy"], balanced_accuracy=result["balanced_accuracy"])


def main() -> None:
    from harness.errors import FerbenchError

    job = json.loads(Path(sys.argv[1]).read_text())
    try:
        run(job)
    except FerbenchError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except OSError as err:
        from harness.files import os_error_line

        print(f"error: {os_error_line(err)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
