"""A run's kept model: `model.safetensors` (the selected epoch's weights) and `model.json` beside it.

safetensors holds only named tensors, so loading it never unpickles anything. model.json says what the
weights mean: the model, its classes in output order, input size, the eval transform, the upstream pin, the
run id and its test metrics; `ferbench evaluate --run` and `ferbench predict` need nothing else from the run.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import FerbenchError
from harness.files import read_json, write_json_atomic

WEIGHTS = "model.safetensors"
META = "model.json"


def selected_weights(model, outcome) -> dict:
    """The selected epoch's weights: the model as it stands when the selected epoch is the last one trained (any
    selection rule that keeps the final epoch), else the loop's CPU copy taken when that epoch was selected."""
    if outcome.selected_epoch == len(outcome.history):
        return model.state_dict()
    if outcome.selected_state is None:
        raise RuntimeError(f"epoch {outcome.selected_epoch} was selected but its weights were not kept")
    return outcome.selected_state


def save(run_dir: Path, state: dict, meta: dict) -> None:
    """Write the weights (contiguous CPU copies; tensors sharing memory are stored once each) and then model.json."""
    from safetensors.torch import save_file

    tensors = {name: value.detach().to("cpu").contiguous().clone() for name, value in state.items()}
    tmp = run_dir / f".{WEIGHTS}.tmp"
    save_file(tensors, str(tmp), metadata={"run_id": str(meta.get("run_id", "")), "model": str(meta.get("model", ""))})
    tmp.replace(run_dir / WEIGHTS)
    write_json_atomic(run_dir / META, meta)


def meta(spec, adapter, result: dict, eval_batch_size: int) -> dict:
    return dict(
        model=spec.model,
        run_id=spec.run_id,
        trained_on=spec.dataset,
        protocol=spec.protocol,
        classes=list(spec.classes),
        input_size=spec.input_size,
        eval_transform=_name(adapter.eval_transform),
        eval_forward=_name(adapter.eval_forward),
        eval_batch_size=eval_batch_size,
        amp=bool(spec.recipe.get("amp", False)),
        upstream=spec.upstream,
        upstream_commit=spec.upstream_commit,
        selected_epoch=result.get("selected_epoch"),
        metrics={k: result[k] for k in ("accuracy", "balanced_accuracy", "macro_f1") if k in result},
    )


def _name(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def has_model(run_dir: Path) -> bool:
    return (run_dir / WEIGHTS).is_file() and (run_dir / META).is_file()


def load(run_dir: Path) -> tuple[dict, dict]:
    """(state dict, model.json) of a run that kept its model."""
    if not has_model(run_dir):
        raise FerbenchError(f"{run_dir}: no saved model ({WEIGHTS} and {META}); "
                            "train with `ferbench run --save-model` (a complete run reruns to save it)")
    from safetensors.torch import load_file

    return load_file(str(run_dir / WEIGHTS)), read_json(run_dir / META)


def missing_models(jobs: list, overwrite: bool = False) -> list:
    """Jobs asked to keep their model whose run is complete without one: they must train again to save it."""
    from harness.run.store import is_complete

    if overwrite:
        return []
    return [job for job in jobs if job.save_model and is_complete(job.run_dir) and not has_model(job.run_dir)]
