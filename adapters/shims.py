"""Runtime workarounds shared by several upstreams, each with the reason it exists.

Upstream files are never edited: adapters import them as they are and, where current
Python, torch or Pillow break them, patch the smallest thing at runtime, here.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from adapters.contract import BuildContext


def upstream_file(ctx: BuildContext, relative: str, folder: bool = False) -> Path:
    """A file (or folder) of the fetched upstream; a clear error if the checkout lacks it."""
    from harness.errors import FerbenchError

    if ctx.upstream_dir is None:
        raise FerbenchError("this adapter needs its upstream repository; the model has no `upstream` in benchmark.toml")
    path = ctx.upstream_dir / relative
    if not (path.is_dir() if folder else path.is_file()):
        raise FerbenchError(f"{path}: missing from the fetched upstream; run `ferbench fetch --force` for this model")
    return path


def load_module_from(path: Path, name: str) -> types.ModuleType:
    """Import one upstream file under a private module name.

    For files whose package cannot be imported normally (MFER's `model.py` shadows its `model/`
    folder; LNSU-Net's `expression` package imports tensorboard) or whose name collides with ours.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def stub_module(name: str, **attributes: Any) -> types.ModuleType:
    """Register an empty module (e.g. `thop`, imported by POSTER++ only to count FLOPs) unless a real one exists."""
    if name in sys.modules:
        return sys.modules[name]
    try:
        return importlib.import_module(name)
    except ImportError:
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        sys.modules[name] = module
        return module


@contextmanager
def torch_load_returning(value: Any) -> Iterator[None]:
    """Constructors that `torch.load` weights from cwd-relative paths (POSTER, Ada-DF) get `value` instead.

    The harness builds with random init first and loads sha256-checked files afterwards, so the
    constructor's own load must neither touch the filesystem nor consume RNG.
    """
    original = torch.load
    torch.load = lambda *args, **kwargs: value
    try:
        yield
    finally:
        torch.load = original


def load_weights(ctx: BuildContext, name: str) -> Any:
    """A declared weight file, already checked by the worker, read without running code from it: only the
    globals benchmark.toml declares for it (`ctx.allowed_globals`) may appear in its pickle."""
    from harness.errors import FerbenchError
    from harness.weights import load_state

    if name not in ctx.weights:
        raise FerbenchError(f"weight file '{name}' is not declared for this model in benchmark.toml")
    return load_state(ctx.weights[name], ctx.allowed_globals.get(name, ()), what=f"benchmark.toml (globals of {name})")


def patch_posterize(name_to_op: dict) -> None:
    """Pillow 13 raises on `ImageOps.posterize(img, 0)`; RandAugment policies reach bits 0.

    Replacing `posterize` alone has no effect because the op tables hold references, so the
    `NAME_TO_OP` entries are swapped for a function giving the old Pillow result (a black image).
    """
    from PIL import Image, ImageOps

    def posterize(img, bits_to_keep, **_):
        if bits_to_keep >= 8:
            return img
        if bits_to_keep <= 0:
            return Image.new(img.mode, img.size)
        return ImageOps.posterize(img, bits_to_keep)

    for key in ("Posterize", "PosterizeIncreasing", "PosterizeOriginal"):
        if key in name_to_op:
            name_to_op[key] = posterize


CONTINUES_BLOCK = ("else", "elif", "except", "finally", "case", ")", "]", "}", "#")
"""Column-0 lines that belong to the statement above them (and comments, which belong to no statement)."""


def top_level_statements(path: Path) -> list[ast.stmt]:
    """The top-level statements of a file that does not parse as a whole, each parsed on its own.

    CLIVP-FER's `CLIP_KMU.py` has an indentation error inside `test()`, so `ast.parse` rejects the file; its
    `CustomNet` is intact. The source is cut where a line starts at column 0 (a decorator keeps its definition,
    `else:` / `except:` stay with their statement), each piece is parsed alone with its line numbers kept, and
    pieces that still do not parse (the broken `test()`) are left out: a name they define is then reported missing.
    """
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    starts = [
        i for i, line in enumerate(lines)
        if line[:1].strip() and not line.startswith(CONTINUES_BLOCK) and not (i and lines[i - 1].startswith("@"))
    ]
    statements = []
    for start, end in zip(starts, starts[1:] + [len(lines)]):
        try:
            piece = ast.parse("".join(lines[start:end]), filename=str(path))
        except SyntaxError:
            continue
        statements.extend(ast.increment_lineno(node, start) for node in piece.body)
    return statements


def definitions(path: Path, names: tuple[str, ...], private: str, by_lines: bool = False, **env) -> types.ModuleType:
    """Compile only the top-level definitions `names` (classes, functions, `x = ...`) of an upstream script,
    from its source, into a private module: the script's imports and side effects never run. `by_lines`: the
    file does not parse as a whole; its statements are parsed one by one (`top_level_statements`)."""
    if private in sys.modules:
        return sys.modules[private]
    from harness.errors import FerbenchError

    body = top_level_statements(path) if by_lines else ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body
    picked = [
        node for node in body
        if (isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name in names)
        or (isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id in names for t in node.targets))
    ]
    found = {getattr(n, "name", None) or n.targets[0].id for n in picked}
    if found != set(names):
        raise FerbenchError(f"{path}: upstream no longer defines {sorted(set(names) - found)}")
    module = types.ModuleType(private)
    module.__file__ = str(path)
    module.__dict__.update(env)
    exec(compile(ast.Module(body=picked, type_ignores=[]), str(path), "exec"), module.__dict__)
    sys.modules[private] = module
    return module


def upstream_package(ctx: BuildContext, folder: str, name: str) -> types.ModuleType:
    """Register the upstream's `folder` (a package without `__init__.py`) as the bare package `name`, so its
    modules import as `name.<module>` with their relative imports intact and no top-level name is taken."""
    path = str(upstream_file(ctx, folder, folder=True).resolve())
    module = sys.modules.get(name)
    if module is not None and list(getattr(module, "__path__", [])) == [path]:
        return module
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]  # a package of another checkout of the same upstream
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [path]
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    return module


@contextmanager
def stand_ins(*names: str, **attributes) -> Iterator[None]:
    """Empty modules for imports an upstream file makes but never uses (matplotlib, thop), registered only
    while it is imported and only where the real package is missing; `attributes` go on each stand-in."""
    added = []
    for name in names:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__dict__.update(attributes)
            sys.modules[name] = module
            added.append(name)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)
