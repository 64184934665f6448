"""Fold protocols plan every fold (`--repeats` = seeds per fold, `--folds` restricts), `--selection final`
trains on the whole training split, and the option bounds give one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness import config
from harness.data.protocols import parse_folds, training_share, whole_training_split
from harness.errors import FerbenchError
from harness.paths import Paths
from harness.run.plan import Request, plan
from harness.run.store import MARKER
from tests.conftest import SHARED, TINY_TOML, cli

CK_TOML = TINY_TOML + """
[datasets.ckplus]
classes = ["happy", "sad", "surprise", "fear", "disgust", "anger", "contempt"]
layouts = ["ckplus-folders"]
protocol = "subject-kfold"
folds = 2
"""
FOLDERS = ["happy", "sadness", "surprise", "fear", "disgust", "anger", "contempt"]


@pytest.fixture(scope="module")
def ck_root(tmp_path_factory) -> Path:
    """A CK+48-layout tree: 9 subjects, one 3-frame sequence each in 2 classes (54 images, 16 px)."""
    root = tmp_path_factory.mktemp("ck") / "ckplus"
    rng = np.random.default_rng(0)
    for subject in range(9):
        for sequence, folder in enumerate((FOLDERS[subject % 7], FOLDERS[(subject + 3) % 7])):
            (root / folder).mkdir(parents=True, exist_ok=True)
            for frame in range(3):
                pixels = rng.integers(0, 255, (16, 16), dtype=np.uint8)
                Image.fromarray(pixels).save(root / folder / f"S{subject + 10:03d}_{sequence + 1:03d}_{frame:08d}.png")
    return root


def _paths(tmp_path: Path, data_root: Path) -> Paths:
    return Paths(data_root=data_root, results=tmp_path / "results", vendor=tmp_path / "vendor", weights=tmp_path / "weights")


def test_parse_folds():
    assert parse_folds("1,3-5", 10) == [1, 3, 4, 5]
    assert parse_folds(" 2 , 2,0-1", 3) == [0, 1, 2]
    for text, words in (("1,x", "'x' is not a fold number"), ("5-3", "empty range"), ("10", "fold 10 does not exist"),
                        ("-1", "not a fold number")):
        with pytest.raises(FerbenchError, match=words) as info:
            parse_folds(text, 10)
        assert info.value.exit_code == 2 and "\n" not in str(info.value)


def test_fold_protocol_plans_every_fold_once_by_default(tmp_path, ck_root, tiny_dataset):
    cfg, paths = config.parse(CK_TOML), _paths(tmp_path, ck_root.parent)
    jobs = plan(cfg, paths, Request(model="baseline", dataset="ckplus"))
    assert [(j.spec.fold, j.spec.seed) for j in jobs] == [(0, 0), (1, 0)]
    assert {j.fold_count for j in jobs} == {2} and len({j.spec.run_id for j in jobs}) == 2
    jobs = plan(cfg, paths, Request(model="baseline", dataset="ckplus", repeats=2, folds="1"))
    assert [(j.spec.fold, j.spec.seed) for j in jobs] == [(1, 0), (1, 1)]
    single = plan(cfg, paths, Request(model="baseline", dataset="synthetic", dataset_dir=tiny_dataset / "synthetic"))  # no folds: defaults.repeats seeds
    assert [(j.spec.fold, j.spec.seed) for j in single] == [(0, 0), (0, 1)]


@pytest.mark.parametrize(
    "request_, words",
    [
        (dict(dataset="synthetic", folds="0"), "--folds: protocol 'official' draws a single split"),
        (dict(dataset="ckplus", folds="0-2"), "--folds: fold 2 does not exist; this split has folds 0-1"),
        (dict(dataset="ckplus", epochs=10**12), "--epochs: 1000000000000 is outside 1..10000"),
        (dict(dataset="ckplus", epochs=0), "--epochs: 0 is outside"),
        (dict(dataset="ckplus", repeats=101), "--repeats: 101 is outside 1..100"),
        (dict(dataset="ckplus", selection="best"), "--selection: expected val or final"),
    ],
)
def test_bad_fold_and_budget_options_are_one_line(tmp_path, ck_root, tiny_dataset, request_, words):
    if request_["dataset"] == "synthetic":
        request_ = dict(request_, dataset_dir=tiny_dataset / "synthetic")
    with pytest.raises(FerbenchError) as info:
        plan(config.parse(CK_TOML), _paths(tmp_path, ck_root.parent), Request(model="baseline", **request_))
    assert words in str(info.value) and "\n" not in str(info.value) and info.value.exit_code == 2


def test_selection_final_is_its_own_run_without_early_stopping(tmp_path, ck_root):
    cfg = config.parse(CK_TOML.replace('epochs = 1\n', 'epochs = 1\npatience = 3\n', 1))
    paths = _paths(tmp_path, ck_root.parent)
    val = plan(cfg, paths, Request(model="baseline", dataset="ckplus"))
    final = plan(cfg, paths, Request(model="baseline", dataset="ckplus", selection="final"))
    assert {j.spec.selection for j in final} == {"final"} and val[0].spec.recipe["patience"] == 3
    assert final[0].spec.recipe["patience"] is None
    assert not {j.spec.run_id for j in val} & {j.spec.run_id for j in final}


def test_whole_training_split_returns_the_carved_validation_to_training():
    fold = dict(train=[0, 2, 4], val=[1, 3], test=[5])
    carved = dict(val_fraction=0.1)
    assert whole_training_split(fold, carved) == dict(train=[0, 1, 2, 3, 4], val=[], test=[5])
    official = dict(validation="official val split")
    assert whole_training_split(fold, official) == dict(train=[0, 2, 4], val=[], test=[5])
    assert training_share(fold, carved, "val_balanced_accuracy") == pytest.approx(0.6)
    assert training_share(fold, carved, "final") == training_share(fold, official, "val_loss") == 1.0


def _runs(results: Path) -> list[Path]:
    return sorted(p.parent for p in results.glob(f"ckplus/*/subject-kfold/*/{MARKER}"))


@pytest.mark.slow
def test_every_image_is_tested_once_and_final_selection_reports_right(tmp_path, ck_root, monkeypatch, capsys):
    """End to end on a CK+48-layout tree: no --repeats gives one run per fold, whose predictions cover every
    image exactly once; `--selection final --folds 0` adds a column of its own, marked (1/2 folds), never bold."""
    (tmp_path / "benchmark.toml").write_text(CK_TOML)
    results = tmp_path / "results"
    for name, value in (("FERBENCH_CONFIG", tmp_path / "benchmark.toml"), ("FERBENCH_DATA_ROOT", ck_root.parent),
                        ("FERBENCH_RESULTS_DIR", results), ("FERBENCH_VENDOR_DIR", tmp_path / "vendor")):
        monkeypatch.setenv(name, str(value))
    assert cli("run", "--model", "baseline", "--dataset", "ckplus", "--jobs", "2") == 0
    runs = _runs(results)
    assert sorted(json.loads((r / "config.json").read_text())["fold"] for r in runs) == [0, 1]
    tested = pd.concat([pd.read_csv(r / "predictions.csv") for r in runs])["path"]
    assert len(tested) == 54 and tested.is_unique

    assert cli("run", "--model", "baseline", "--dataset", "ckplus", "--selection", "final", "--folds", "0") == 0
    final = [r for r in _runs(results) if r not in runs]
    assert len(final) == 1
    result = json.loads((final[0] / "result.json").read_text())
    assert result["samples"]["val"] == 0 and result["samples"]["train"] + result["samples"]["test"] == 54
    assert result["training_share"] == 1.0 and result["selection_rule"].startswith("final epoch of 1")
    assert json.loads((final[0] / "config.json").read_text())["selection"] == "final"

    capsys.readouterr()
    assert cli("report", "--metric", "accuracy,pooled_accuracy") == 0
    out = capsys.readouterr().out
    accuracy = out.split("## Pooled")[0]
    assert "| dataset | baseline | baseline (final) |" in accuracy
    row = next(line for line in accuracy.splitlines() if line.startswith("| ckplus"))
    assert "(1/2 folds)" in row.split("|")[3] and "**" not in row.split("|")[3]
    assert "54 predictions" in out.split("## Pooled")[1]


@pytest.mark.skipif(not (SHARED / "datasets" / "CK+48").is_dir(), reason="needs ../shared/datasets/CK+48")
def test_real_ckplus_subject_kfold_plans_ten_folds_covering_all_981_images(tmp_path):
    """The planned runs of `--protocol subject-kfold` (no --repeats) on the real CK+48: one per fold, and the
    folds' test sets partition the 981 images (the full training run is in the docs, not the suite)."""
    cfg = config.load()
    paths = Paths(data_root=SHARED / "datasets", results=tmp_path / "results", vendor=tmp_path, weights=tmp_path)
    jobs = plan(cfg, paths, Request(model="baseline", dataset="ckplus", protocol="subject-kfold",
                                    dataset_dir=SHARED / "datasets" / "CK+48"))
    assert [j.spec.fold for j in jobs] == list(range(10)) and {j.spec.seed for j in jobs} == {0}
    folds = json.loads(jobs[0].splits_file.read_text())["folds"]
    tested = [i for fold in folds for i in fold["test"]]
    assert len(tested) == 981 and sorted(tested) == list(range(981))
