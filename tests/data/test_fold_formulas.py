"""fer-pytorch-folds and clivp-folds reproduce the upstreams' test index lists, computed at test time from the
upstream files' own lines in vendor/ (CK.py and preprocess_CK+.py; preprocess_KMUFED.py and formatdescription.py),
on generated CK+48 and KMU-FED folders with the class sizes the upstreams hard-code."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import config
from harness.data.fold_formulas import FORMULAS
from harness.data.protocols import saved_folds
from harness.data.table import load_table
from tests.conftest import REPO
from tests.upstream_lines import backward_slice

VENDOR = REPO / "vendor"
TINY = Image.fromarray(np.zeros((4, 4), dtype=np.uint8))
CANONICAL = {"anger": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy", "sadness": "sad",
             "surprise": "surprise", "contempt": "contempt"}
KMU_CODES = {"anger": "AN", "disgust": "DI", "fear": "FE", "happy": "HA", "sadness": "SA", "surprise": "SU"}


def upstream_test_index(path: Path, class_name: str, fold: int) -> list[int]:
    """`test_index` of the dataset class's __init__ for `fold`, by the file's own lines (Python 2's xrange = range)."""
    tree = ast.parse(path.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    body, _ = backward_slice(init.body, {"test_index"})
    function = ast.parse("def __test_index__(self):\n    return test_index").body[0]
    function.body[0:0] = body
    namespace = {"xrange": range}
    exec(compile(ast.fix_missing_locations(ast.Module(body=[function], type_ignores=[])), str(path), "exec"), namespace)
    return namespace["__test_index__"](types.SimpleNamespace(fold=fold))


def folder_order(path: Path) -> tuple[list[str], bool]:
    """Class folders in the order the preprocessing script numbers them, and whether it sorts each listing."""
    tree = ast.parse(path.read_text())
    folders = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and ast.unparse(node.value.func) == "os.path.join":
            folders[node.targets[0].id] = node.value.args[-1].value
    loop = next((n for n in ast.walk(tree) if isinstance(n, ast.For) and isinstance(n.iter, ast.List)), None)
    if loop is not None:
        order = [folders[e.id] for e in loop.iter.elts]
    else:
        order = [folders[c.args[0].id] for c in ast.walk(tree)
                 if isinstance(c, ast.Call) and ast.unparse(c.func) == "os.listdir"]
    sorts = any(isinstance(c, ast.Call) and ast.unparse(c.func) == "files.sort" for c in ast.walk(tree))
    return order, sorts


def _write(path: Path, unique: int = 0) -> None:
    """A tiny image; `unique` > 0 makes its bytes differ from every other (KMU-FED's loader drops byte copies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if unique:
        Image.fromarray(np.random.default_rng(unique).integers(0, 256, (8, 8), dtype=np.uint8)).save(path)
    else:
        TINY.save(path)


def ckplus_folder(root: Path, sizes: dict[str, int]) -> dict[str, list[str]]:
    """CK+48 class folders; file names shuffled against subject order so name order is not insertion order."""
    written = {}
    for c, (folder, size) in enumerate(sizes.items()):
        names = [f"S{(7 * i + c) % 97 + 10:03d}_{i % 9 + 1:03d}_{i:08d}.png" for i in range(size)]
        for name in names:
            _write(root / folder / name)
        written[folder] = [f"{folder}/{n}" for n in names]
    return written


def kmufed_folder(root: Path, sizes: dict[str, int]) -> dict[str, list[str]]:
    written = {}
    for folder, size in sizes.items():
        names = [f"{(i * 5) % 12 + 1:02d}_{KMU_CODES[folder]}_p{i % 3}_{i:03d}.jpg" for i in range(size)]
        for name in names:
            _write(root / name, unique=len(written) * 1000 + names.index(name) + 1)
        written[folder] = names
    return written


CASES = {
    "fer-pytorch-folds": dict(files=("fer-pytorch/CK.py", "fer-pytorch/preprocess_CK+.py"), cls="CK",
                              write=ckplus_folder),
    "clivp-folds": dict(files=("clivpfer/preprocess_KMUFED.py", "clivpfer/formatdescription.py"), cls="KMU",
                        write=kmufed_folder),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_formula_tests_the_upstream_test_index_lists_mapped_by_path(tmp_path, name):
    case, formula = CASES[name], FORMULAS[name]
    if any(not (VENDOR / p).is_file() for p in case["files"]):
        pytest.skip(f"vendor/{case['files'][0].split('/')[0]} is not fetched (run `ferbench fetch`)")
    folds_file, preprocess = (VENDOR / p for p in case["files"])
    order, sorts = folder_order(preprocess)
    assert [CANONICAL[f] for f in order] == list(formula.classes)
    sizes = dict(zip(order, formula.class_sizes))
    written = case["write"](tmp_path / "data", sizes)
    if not sorts:
        # formatdescription.py keeps os.listdir's order; it ran on Windows (it splits paths on "\\"), where NTFS
        # lists a folder by name: the order the formula records as file_order = "name".
        assert 'split("\\\\")' in preprocess.read_text()
    numbering = [p for folder in order for p in sorted(written[folder])]

    dataset = config.load().dataset(formula.dataset)
    table = load_table(tmp_path / "data", dataset)
    splits, folds = saved_folds(table, tmp_path / "results", formula.dataset, name, "m" * 64, 0.1)
    assert len(folds) == formula.folds
    for number, fold in enumerate(folds, start=1):
        upstream = [numbering[i] for i in upstream_test_index(folds_file, case["cls"], number)]
        assert sorted(table["path"].iloc[fold.test]) == sorted(upstream)


def test_kmufed_default_is_subject_kfold_and_subject_disjoint(tmp_path):
    """KMU-FED's honest default: 12 drivers, 10 subject-disjoint folds, every image tested once."""
    dataset = config.load().dataset("kmufed")
    assert (dataset.protocol, dataset.folds) == ("subject-kfold", 10)
    sizes = {folder: 24 for folder in KMU_CODES}
    kmufed_folder(tmp_path / "data", sizes)
    table = load_table(tmp_path / "data", dataset)
    assert table["subject"].nunique() == 12
    _, folds = saved_folds(table, tmp_path / "results", "kmufed", dataset.protocol, "m" * 64, 0.1, folds=dataset.folds)
    assert sorted(i for fold in folds for i in fold.test) == list(range(len(table)))
    for fold in folds:
        train, val, test = (set(table["subject"].iloc[part]) for part in (fold.train, fold.val, fold.test))
        assert test and val and not (train & test) and not (val & test) and not (train & val)
