"""Epoch checkpoints: everything a run needs to continue after a kill or a Slurm preemption and
end with the same result as an uninterrupted run on the same machine.

Saved after each epoch (atomically): model, loss and optimizer state (SAM's base optimizer too), the fp16 loss scale,
schedule, the shuffling generator, every global RNG (torch, CUDA, numpy, python) and the loop's own
bookkeeping (history, selected and best-on-test epochs, early-stopping counter). The file holds only
tensors and plain containers, so it loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import torch

from harness.files import atomic_file

FORMAT = 1


def _state(obj) -> dict | None:
    return obj.state_dict() if hasattr(obj, "state_dict") else None


def _evaluation(evaluation) -> dict | None:
    if evaluation is None:
        return None
    return dict(loss=evaluation.loss, probabilities=torch.from_numpy(evaluation.probabilities), metrics=evaluation.metrics)


def _numpy_rng() -> list:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss]


def capture(epoch: int, model, criterion, optimizer, scheduler, generator: torch.Generator, loop: dict, scaler=None) -> dict:
    base = getattr(optimizer, "base_optimizer", None)
    return dict(
        format=FORMAT,
        epoch=epoch,
        model=model.state_dict(),
        criterion=_state(criterion),
        optimizer=optimizer.state_dict(),
        base_optimizer=base.state_dict() if base is not None else None,
        scheduler=scheduler.state_dict(),
        scaler=scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        generator=generator.get_state(),
        torch_rng=torch.get_rng_state(),
        cuda_rng=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        numpy_rng=_numpy_rng(),
        python_rng=[list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        loop={k: (_evaluation(v) if k in ("selected", "final", "best_val") else v) for k, v in loop.items()},
    )


def save(path: Path, state: dict) -> None:
    with atomic_file(path, "wb") as handle:
        torch.save(state, handle)


def load(path: Path | None) -> dict | None:
    """The saved state, or None when there is none to resume from. A file that cannot be read (truncated,
    overwritten) is renamed `<name>.corrupt` with a one-line warning, and the run starts from epoch 0."""
    if path is None or not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError… for a damaged file
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        print(f"warning: {path}: unreadable checkpoint ({reason}); moved aside as {aside.name}, "
              "the run restarts from the beginning", file=sys.stderr)
        return None
    return state if isinstance(state, dict) and state.get("format") == FORMAT else None


def restore(state: dict, model, criterion, optimizer, scheduler, generator: torch.Generator, evaluation_type,
            scaler=None) -> dict:
    """Put every saved state back; return the loop bookkeeping with evaluations rebuilt."""
    model.load_state_dict(state["model"])
    if state["criterion"] is not None:
        criterion.load_state_dict(state["criterion"])
    optimizer.load_state_dict(state["optimizer"])
    if state["base_optimizer"] is not None:
        optimizer.base_optimizer.load_state_dict(state["base_optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler") is not None and scaler is not None:
        scaler.load_state_dict(state["scaler"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    kind, keys, pos, has_gauss, gauss = state["numpy_rng"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python_rng"]
    random.setstate((version, tuple(internal), gauss_next))
    loop = dict(state["loop"])
    for key in ("selected", "final", "best_val"):
        saved = loop.get(key)
        loop[key] = None if saved is None else evaluation_type(
            loss=saved["loss"], probabilities=saved["probabilities"].numpy(), metrics=saved["metrics"]
        )
    return loop
