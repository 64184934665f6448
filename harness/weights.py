"""Pretrained weight files: find them, prove they are the pinned bytes, load them without running their code.

A file is used only after its sha256 matches `benchmark.toml`. Plain state dicts load with
`torch.load(weights_only=True)`; files that only a full unpickler can read (whole pickled modules,
Python 2 pickles) need `--trust-pickle`. A load that leaves tensors at their random init is an error.
Listing never imports torch: hashes are cached beside the files, keyed on size and timestamps.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

from harness.config import Config, Model, WeightFile
from harness.errors import FerbenchError
from harness.files import write_json_atomic

CACHE_NAME = ".sha256-cache.json"
FIRST_SEEN_NAME = "first-seen-sha256.json"
CHUNK = 1 << 20
HEADER = ("model", "file", "initialises", "status", "source")
SHOWN_KEYS = 3


def locate(weight: WeightFile, weights_dir: Path, model: str) -> Path:
    path = weights_dir / weight.name
    if not path.is_file():
        what = f" ({weight.initialises})" if weight.initialises else ""
        raise FerbenchError(
            f"{path}: pretrained weights for {model}{what} not found; "
            f"download {weight.url} into {weights_dir}/ or run with --no-pretrained"
        )
    return path


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _stamp(path: Path) -> dict:
    """What must be unchanged for a cached hash to stand; ctime moves on any write or replacement."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def _read_cache(cache: Path) -> dict:
    try:
        entries = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def sha256_file(path: Path) -> str:
    """The file's sha256, reused from the folder's cache while its size and timestamps are unchanged."""
    cache = path.parent / CACHE_NAME
    entries = _read_cache(cache)
    before = _stamp(path)
    cached = entries.get(path.name)
    if isinstance(cached, dict) and {k: cached.get(k) for k in before} == before and "sha256" in cached:
        return cached["sha256"]
    digest = _digest(path)
    if _stamp(path) == before:
        fresh = {name: entry for name, entry in entries.items() if (path.parent / name).is_file()}
        fresh[path.name] = {**before, "sha256": digest}
        with suppress(OSError):
            write_json_atomic(cache, fresh)
    return digest


def _first_seen(path: Path) -> dict:
    return _read_cache(path.parent / FIRST_SEEN_NAME)


def pinned_sha256(weight: WeightFile, path: Path) -> str | None:
    """The hash a file must have: benchmark.toml's pin, else the one recorded when it was first used."""
    return weight.sha256 or _first_seen(path).get(weight.name)


def verify(weight: WeightFile, path: Path, model: str) -> None:
    """Refuse a file whose bytes differ from its pin. A declaration without `sha256` (a file no maintainer
    could hash yet) pins the first file used, in the weights folder's first-seen record, so a later
    replacement is still caught; env.json records the hash either way."""
    got = sha256_file(path)
    pinned = pinned_sha256(weight, path)
    if pinned is None:
        write_json_atomic(path.parent / FIRST_SEEN_NAME, {**_first_seen(path), weight.name: got})
        return
    if got != pinned:
        where = f"pinned in benchmark.toml (models.{model}.pretrained)" if weight.sha256 else (
            f"recorded when it was first used ({path.parent / FIRST_SEEN_NAME})"
        )
        raise FerbenchError(
            f"{path}: sha256 {got[:12]}… does not match the {pinned[:12]}… {where}; re-download it from {weight.url}"
        )


def require(model: Model, weights_dir: Path) -> dict[str, Path]:
    """Every file `model` declares, found and checked: what a run calls before it starts any work."""
    paths = {}
    for weight in model.pretrained:
        path = locate(weight, weights_dir, model.name)
        verify(weight, path, model.name)
        paths[weight.name] = path
    return paths


def status(weight: WeightFile, weights_dir: Path) -> str:
    path = weights_dir / weight.name
    if not path.is_file():
        return "missing"
    pinned = pinned_sha256(weight, path)
    if pinned is None:
        return "present (unpinned)"
    return "present" if sha256_file(path) == pinned else "checksum mismatch"


def rows(cfg: Config, weights_dir: Path) -> list[tuple[str, ...]]:
    """One row per declared file and model, in HEADER's order."""
    return [
        (name, weight.name, weight.initialises, status(weight, weights_dir), weight.url)
        for name, model in sorted(cfg.models.items())
        for weight in model.pretrained
    ]


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _needs_unpickling(error: BaseException) -> bool:
    """The weights-only loader's refusals: a forbidden global, or a file that is a bare pickle."""
    if isinstance(error, (pickle.UnpicklingError, UnicodeDecodeError)):
        return True
    return isinstance(error, RuntimeError) and "magic number" in str(error)


def _refused_global(error: BaseException) -> str:
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
    return f" (it refers to {found.group(1)})" if found else ""


def load_state(path: Path, *, trust_pickle: bool) -> object:
    """Load a file that already passed `verify`; full unpickling only when the user trusts it."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        if not _needs_unpickling(error):
            raise FerbenchError(f"{path}: cannot be read as a torch checkpoint: {_first_line(error)}") from None
        if not trust_pickle:
            raise FerbenchError(
                f"{path}: this file can only be unpickled, which runs code from the file{_refused_global(error)}; "
                "it passed its sha256 check — rerun with --trust-pickle to load it"
            ) from None
    try:
        return _unpickle(path)
    except Exception as error:
        raise FerbenchError(f"{path}: cannot be unpickled: {_first_line(error)}") from None


def _unpickle(path: Path) -> object:
    """A torch checkpoint of any age, else a bare pickle; latin1 reads Python 2 strings (numpy array data)."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False, encoding="latin1")
    except RuntimeError as error:
        if "magic number" not in str(error):
            raise
    with path.open("rb") as handle:
        return pickle.load(handle, encoding="latin1")


def _listed(keys, shown: int = SHOWN_KEYS) -> str:
    keys = sorted(keys)
    more = f" (+{len(keys) - shown} more)" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more


def _tensors(state: object, what: str) -> dict:
    import numpy as np
    import torch

    if not isinstance(state, Mapping):
        raise FerbenchError(f"{what}: expected a state dict (name → tensor), got {type(state).__name__}")
    tensors = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.array(value, copy=True))  # keeps 0-d arrays 0-d (BatchNorm counters)
        if not isinstance(value, torch.Tensor):
            raise FerbenchError(f"{what}: entry '{key}' is a {type(value).__name__}, not a tensor")
        tensors[str(key)] = value
    return tensors


def load_into(module, state: object, *, what: str, expected: int | None = None) -> int:
    """Copy `state` into `module`; return how many tensors were loaded.

    `expected=None` is strict: every tensor of the module, each with its shape, and nothing else
    (a missing BatchNorm `num_batches_tracked` counter is allowed, as torch allows it).
    `expected=N` is the upstreams' lenient load: tensors matching by name and shape are copied, and
    exactly N must match (POSTER's IR-50: 304). Either way a partial load raises FerbenchError.
    """
    tensors = _tensors(state, what)
    own = module.state_dict()
    mismatched = sorted(k for k in tensors.keys() & own.keys() if tuple(tensors[k].shape) != tuple(own[k].shape))
    matched = {k: v for k, v in tensors.items() if k in own and k not in mismatched}
    problems = []
    if expected is None:
        missing = [k for k in own if k not in tensors and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in tensors if k not in own]
        ok = not (missing or unexpected or mismatched)
        counted = f"{len(matched)} of the module's {len(own)} tensors match the file by name and shape"
    else:
        missing = [k for k in own if k not in matched]
        unexpected = [k for k in tensors if k not in matched and k not in mismatched]
        ok = len(matched) == expected
        counted = f"{len(matched)} tensors match by name and shape, {expected} expected"
    if missing:
        problems.append(f"not in the file: {_listed(missing)}")
    if unexpected:
        problems.append(f"not in the module: {_listed(unexpected)}")
    for key in mismatched[:SHOWN_KEYS]:
        problems.append(f"shape of {key}: file {tuple(tensors[key].shape)}, module {tuple(own[key].shape)}")
    if len(mismatched) > SHOWN_KEYS:
        problems.append(f"{len(mismatched) - SHOWN_KEYS} more shape mismatches")
    if not ok:
        raise FerbenchError(
            f"{what}: partial load, {counted}; {'; '.join(problems)} — a partial load is an error, not a silent random init"
        )
    module.load_state_dict(matched, strict=False)
    return len(matched)
