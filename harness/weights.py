"""Pretrained weight files: find them, check them against their pins, load them without running their code.

A pinned file is used only after its sha256 matches `benchmark.toml` (then, and only then, it is
"verified"); an unpinned one is "present, not verified" and must keep the hash of its first use. No
file can run code: loads go through a weights-only unpickler that admits torch's tensor rebuilders and
the globals declared for that file (`globals` in benchmark.toml), nothing else, and no flag bypasses it.
A load that leaves tensors at their random init is an error. Listing never imports torch: hashes are
cached beside the files, keyed on size, timestamps and inode.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import sys
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

from harness.config import Config, Model, WeightFile
from harness.errors import FerbenchError
from harness.files import hash_file, os_error_line, write_json_atomic

CACHE_NAME = ".sha256-cache.json"
FIRST_SEEN_NAME = "first-seen-sha256.json"
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
    return hash_file(path, hashlib.sha256())


def _stamp(path: Path) -> dict:
    """What must be unchanged for a cached hash to stand; ctime moves on any write or replacement."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "inode": st.st_ino}


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
        try:
            write_json_atomic(path.parent / FIRST_SEEN_NAME, {**_first_seen(path), weight.name: got})
        except OSError as error:  # a read-only weights folder is fine; the file is then simply never verified
            print(f"warning: {os_error_line(error)}; the first-use sha256 of {weight.name} is not recorded", file=sys.stderr)
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


VERIFIED = "verified"
UNVERIFIED = "present, not verified (no sha256 in benchmark.toml)"


def status(weight: WeightFile, weights_dir: Path) -> str:
    """`verified` only where benchmark.toml's pin matched; an unpinned file is present, never verified."""
    path = weights_dir / weight.name
    if not path.is_file():
        return "missing"
    if file_format(path) == "unknown":
        return "not a weight file"
    if weight.sha256:
        return VERIFIED if sha256_file(path) == weight.sha256 else "checksum mismatch"
    first = _first_seen(path).get(weight.name)
    return "changed since its first use" if first and sha256_file(path) != first else UNVERIFIED


def usable(state: str) -> bool:
    return state in (VERIFIED, UNVERIFIED)


def verification(model: Model) -> dict[str, str]:
    """What env.json and `ferbench run` say of each declared file: verified against a pin, or not."""
    return {w.name: "verified" if w.sha256 else "not verified (no sha256 in benchmark.toml)" for w in model.pretrained}


def unverified(planned_models, weights_dir: Path) -> list[str]:
    """One line per weight file a run will load that no pin verifies: what `ferbench run` says before it starts."""
    names = sorted({(w.name, w.url) for model in planned_models for w in model.pretrained if not w.sha256})
    return [f"{weights_dir / name}: {UNVERIFIED}" for name, _ in names]


def rows(cfg: Config, weights_dir: Path) -> list[tuple[str, ...]]:
    """One row per declared file and model, in HEADER's order."""
    return [
        (name, weight.name, weight.initialises, status(weight, weights_dir), weight.url)
        for name, model in sorted(cfg.models.items())
        for weight in model.pretrained
    ]


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


TORCH_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
"""How `torch.save` files from before the zip format (torch < 1.6) begin."""


def file_format(path: Path) -> str:
    """`torch` (a zip or legacy torch.save file), `pickle` (a bare pickle) or `unknown`; reads 32 bytes."""
    with path.open("rb") as handle:
        head = handle.read(32)
    if head.startswith(b"PK\x03\x04") or head.startswith(TORCH_LEGACY_MAGIC):
        return "torch"
    return "pickle" if head[:1] == pickle.PROTO else "unknown"


def resolve_globals(names: tuple[str, ...], path: Path) -> dict[str, object]:
    """`module.Name` → the object, for each global a declared file may reference; importing only modules
    named in benchmark.toml (the run's own upstream is on sys.path in the worker)."""
    import importlib
    import warnings

    resolved = {}
    for name in names:
        module, _, attribute = name.rpartition(".")
        try:
            with warnings.catch_warnings():  # numpy 2 warns on its numpy.core alias, which Python-2 pickles name
                warnings.simplefilter("ignore", DeprecationWarning)
                resolved[name] = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            raise FerbenchError(f"{path}: allowed global {name} cannot be imported: {_first_line(error)}") from None
    return resolved


class _AllowlistUnpickler(pickle.Unpickler):
    """The stdlib unpickler with every global lookup (GLOBAL, STACK_GLOBAL, EXT*) confined to an allowlist."""

    def __init__(self, handle, allowed: dict[str, object]):
        super().__init__(handle, encoding="latin1")  # latin1 reads Python 2 `str` array data, as GSDNet's loader does
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> object:
        full = f"{module}.{name}"
        if full == "collections.OrderedDict":  # state dicts; torch's unpickler admits it too
            return OrderedDict
        if full not in self.allowed:
            raise pickle.UnpicklingError(f"Unsupported global: GLOBAL {full}")
        return self.allowed[full]

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"persistent id {pid!r} in a bare pickle")


def _refused(path: Path, error: BaseException, what: str) -> FerbenchError:
    found = re.search(r"GLOBAL (\S+?)(?: was| whose|$)", str(error)) or re.search(r"GLOBAL (\S+)", str(error))
    if found:
        name = found.group(1) if "." in found.group(1) else f"builtins.{found.group(1)}"  # torch drops `builtins.`
        return FerbenchError(
            f"{path}: refused: the file needs the global {name}, which {what} does not allow; "
            "nothing from the file was run"
        )
    return FerbenchError(f"{path}: refused by the weights-only unpickler: {_first_line(error)}")


def load_state(path: Path, allowed: tuple[str, ...] = (), what: str = "benchmark.toml") -> object:
    """Load a weight file without running code from it.

    torch files go through torch's weights-only unpickler; bare pickles (GSDNet's Python-2 .pkl, whose
    BINSTRING opcodes and numpy dtype states torch's unpickler cannot read) through the stdlib unpickler
    with `find_class` confined. Either way only torch's own tensor rebuilders and the globals in `allowed` (declared per
    file in benchmark.toml as `globals`) can be referenced; anything else is refused, naming the global.
    """
    import torch

    kind = file_format(path)
    if kind == "unknown":
        raise FerbenchError(f"{path}: not a weight file (neither a torch.save archive nor a pickle)")
    globals_ = resolve_globals(allowed, path)
    try:
        if kind == "torch":
            with torch.serialization.safe_globals([(obj, name) for name, obj in globals_.items()]):
                return torch.load(path, map_location="cpu", weights_only=True)
        with path.open("rb") as handle:
            return _AllowlistUnpickler(handle, globals_).load()
    except pickle.UnpicklingError as error:
        raise _refused(path, error, what) from None
    except OSError:
        raise
    except Exception as error:
        if "GLOBAL" in str(error):
            raise _refused(path, error, what) from None
        raise FerbenchError(f"{path}: cannot be read as a weight file: {_first_line(error)}") from None


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
