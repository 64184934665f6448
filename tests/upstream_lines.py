"""Run an upstream script's own split lines, read from vendor/ at test time, without running the script.

An upstream split lives inside a training script that cannot run here (GPUs, datasets, checkpoints). So the
lines that compute the split are cut out of the script's syntax tree by a backward slice: starting from the
names the split produces, keep every statement that assigns or mutates (`x.append(…)`, `parser.add_argument(…)`)
a name still needed, walking back through the function and then the module (imports, argparse defaults,
helper classes). Nothing is copied into this repository: the statements are compiled from vendor/ each run.

Absolute paths written in the script (the authors' cluster folders) are redirected into the generated dataset
folder by their longest existing suffix, so the script's own file reading runs on the generated label files.
"""

from __future__ import annotations

import ast
import builtins
import copy
import sys
from pathlib import Path, PurePosixPath

BUILTINS = frozenset(dir(builtins))
ITERATIONS = 10
"""Every FER-crossval script takes `--iterations`; its README's table is over 10 (GSDNet's CK+ and SFEW scripts
default to 3 and 2, whose splits are the first ones of the 10)."""


def _stores(node: ast.AST) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _loads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _mutated(node: ast.AST) -> set[str]:
    """Names whose methods the statement calls (`labels.append(…)`, `parser.add_argument(…)`)."""
    return {
        n.value.func.value.id for n in ast.walk(node)
        if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) and isinstance(n.value.func, ast.Attribute)
        and isinstance(n.value.func.value, ast.Name)
    }


def _free(node: ast.AST) -> set[str]:
    """Names a definition reads from outside itself."""
    params = set()
    for n in ast.walk(node):
        if isinstance(n, ast.arguments):
            params |= {a.arg for a in (*n.posonlyargs, *n.args, *n.kwonlyargs)}
            params |= {a.arg for a in (n.vararg, n.kwarg) if a}
    inner = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return _loads(node) - params - inner


def backward_slice(statements: list[ast.stmt], need: set[str]) -> tuple[list[ast.stmt], set[str]]:
    """The statements that assign or mutate a needed name, walking back; returns them and the names still needed."""
    need, kept = set(need), []
    for statement in reversed(statements):
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            names = [a for a in statement.names if (a.asname or a.name).split(".")[0] in need]
            if names:
                kept.insert(0, type(statement)(**{**statement.__dict__, "names": names}))
                need -= {(a.asname or a.name).split(".")[0] for a in names}
            continue
        if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
            if statement.name in need:
                kept.insert(0, statement)
                need = (need - {statement.name}) | _free(statement)
            continue
        stores = _stores(statement) | _mutated(statement)
        if stores & need:
            kept.insert(0, statement)
            need |= _loads(statement)
    return kept, need


def _function_with(tree: ast.Module, call: str) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
            isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id == call for c in ast.walk(node)
        ):
            return node
    return None


def _inline(loop_body: list[ast.stmt], tree: ast.Module, produced: set[str]) -> list[ast.stmt]:
    """Replace a call of a module function that produces `produced` (POSTER's get_datasets) by its sliced body."""
    if any(produced & _stores(s) for s in loop_body):
        return loop_body
    helpers = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)
               and produced & {x.id for x in ast.walk(n) if isinstance(x, ast.Name) and isinstance(x.ctx, ast.Store)}}
    out = []
    for statement in loop_body:
        calls = [c for c in ast.walk(statement) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
                 and c.func.id in helpers]
        if not calls:
            out.append(statement)
            continue
        helper, call = helpers[calls[0].func.id], calls[0]
        params = [a.arg for a in helper.args.args]
        bindings = [ast.Assign(targets=[ast.Name(p, ast.Store())], value=v) for p, v in zip(params, call.args)]
        bindings += [ast.Assign(targets=[ast.Name(k.arg, ast.Store())], value=k.value) for k in call.keywords]
        body, _ = backward_slice(helper.body, produced)
        out += bindings + body
    return out


class _Paths(ast.NodeTransformer):
    """Absolute path strings → the same file under `root`, by the longest suffix that exists there (else root)."""

    def __init__(self, root: Path):
        self.root = root

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if not (isinstance(node.value, str) and node.value.startswith("/") and len(node.value) > 1):
            return node
        parts = PurePosixPath(node.value).parts[1:]
        target = next((self.root.joinpath(*parts[i:]) for i in range(len(parts))
                       if self.root.joinpath(*parts[i:]).exists()), self.root)
        return ast.copy_location(ast.Constant(str(target)), node)


def split_program(script: Path, root: Path, produced=("train_indices", "val_indices", "test_indices"),
                  first_only: bool = False) -> ast.Module:
    """A module whose `__splits__()` runs the script's split lines on the dataset under `root` and returns
    [(train, val, test)] per iteration, in the script's own order. Other `produced` names are sliced the same
    way, whether the iteration loop assigns them (`train_loader`) or the lines before it (DAN's `num_classes`);
    `first_only` stops after the first iteration."""
    tree = ast.parse(script.read_text(), filename=str(script))
    function = _function_with(tree, "ShuffleSplit")
    body = function.body if function else [s for s in tree.body if not isinstance(s, (ast.FunctionDef, ast.ClassDef))]
    loop = next(s for s in body if isinstance(s, ast.For) and "splits" in _loads(s))
    before = set().union(*map(_stores, body[: body.index(loop)]))  # names the loop need not produce
    loop_body, _ = backward_slice(_inline(loop.body, tree, set(produced[:2]) - before), set(produced))
    record = ast.parse(f"__record__.append(({', '.join(produced)},))").body[0]
    stop = [ast.Break()] if first_only else []
    new_loop = ast.For(target=loop.target, iter=loop.iter, body=[*loop_body, record, *stop], orelse=[])
    assigned = set().union(*map(_stores, loop_body))
    need = (_loads(loop.iter) | set().union(*map(_loads, loop_body)) | set(produced) - assigned) - _stores(loop.target)
    pre, need = backward_slice(body[: body.index(loop)], need)
    need = (need | set().union(*map(_loads, pre))) - set().union(*map(_stores, pre)) - BUILTINS
    module_level = [s for s in tree.body if s is not function and not isinstance(s, ast.If)]
    defined = {s.name for s in module_level if isinstance(s, (ast.FunctionDef, ast.ClassDef))}
    while True:  # a definition may use a function defined below it (POSTER's Dataset and flip_image)
        globals_, left = backward_slice(module_level, need)
        if not left & defined - need:
            break
        need |= left & defined
    runner = ast.parse("def __splits__():\n    __record__ = []\n    return __record__").body[0]
    runner.body[1:1] = [*pre, new_loop]
    program = ast.Module(body=[*copy.deepcopy(globals_), copy.deepcopy(runner)], type_ignores=[])
    return ast.fix_missing_locations(_Paths(root).visit(program))


def run_splits(script: Path, root: Path, produced=("train_indices", "val_indices", "test_indices"),
               first_only: bool = False) -> list[tuple]:
    """Execute the script's split lines (argparse at its defaults, `--iterations 10`) on the dataset at `root`.
    The script's folder is importable meanwhile (Ada-DF's `auto_augment`), and forgotten afterwards."""
    program = split_program(script, root, produced, first_only)
    namespace = {"__name__": f"upstream_lines:{script.name}"}
    argv, folder, modules = sys.argv, str(script.parent), set(sys.modules)
    sys.argv = [str(script), "--iterations", str(ITERATIONS)]
    sys.path.insert(0, folder)
    try:
        exec(compile(program, str(script), "exec"), namespace)
        return namespace["__splits__"]()
    finally:
        sys.argv = argv
        sys.path.remove(folder)
        for name in set(sys.modules) - modules:
            if (getattr(sys.modules[name], "__file__", None) or "").startswith(folder):
                del sys.modules[name]


def source_of(program: ast.Module) -> str:
    return ast.unparse(program)
