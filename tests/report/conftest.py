"""A fixed results store: several models, datasets and protocols, with histories and confusion matrices,
and a small registry holding published numbers and a reference table."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.protocols import split_variant
from harness.run import store

CLASSES = ["anger", "happy", "neutral"]

# (protocol, dataset, model, requested repeats, accuracies, balanced accuracies)
FIXTURE = [
    ("official", "ckplus", "dan", 3, [0.99, 0.98, 0.97], [0.95, 0.96, 0.97]),
    ("official", "ckplus", "baseline", 3, [0.90, 0.92, 0.91], [0.97, 0.98, 0.99]),
    ("official", "ckplus", "poster", 3, [0.98, 0.99, 0.96], [0.90, 0.93, 0.91]),
    ("official", "rafdb", "dan", 10, [0.80, 0.82], [0.70, 0.72]),
    ("official", "rafdb", "baseline", 3, [0.70, 0.71, 0.72], [0.60, 0.61, 0.62]),
    ("official", "synthetic", "baseline", 1, [0.5], [0.4]),
    ("official-folds", "dfew", "dferclip", 2, [0.70, 0.72], [0.58, 0.60]),
    ("crossval-compat", "ckplus", "dan", 2, [0.99, 0.97], [0.98, 0.96]),
]
UPSTREAMS = {"dan": ("dan", "3872eefef1441231342b1a798719f6e69cdbc1fd"), "poster": ("poster", "a" * 40),
             "dferclip": ("dferclip", "b" * 40)}

REGISTRY = """
[datasets.ckplus]
classes = ["anger", "happy", "neutral"]
layouts = ["split-folders"]

[datasets.rafdb]
classes = ["anger", "happy", "neutral"]
layouts = ["split-folders"]

[datasets.synthetic]
classes = ["anger", "happy", "neutral"]
layouts = ["split-folders"]

[datasets.dfew]
classes = ["anger", "happy", "neutral"]
layouts = ["split-folders"]
video = true

[[published]]
model = "dan"
dataset = "rafdb"
metric = "accuracy"
protocol = "official"
selection = "best test epoch"
value = 0.897
source = "yaoing/DAN:README.md"

[[published]]
model = "dferclip"
dataset = "dfew"
metric = "uar"
protocol = "official-folds"
selection = "not stated"
value = 0.5961
source = "zengqunzhao/DFER-CLIP:img/performance.png"

[references.fer-crossval]
protocol = "crossval-compat"
std = "population"
repeats = 10
source = "StevenHSKim/FER-crossval:README.md"
[references.fer-crossval.accuracy]
ckplus = { dan = [0.993, 0.008], poster = [0.984, 0.011] }
[references.fer-crossval.balanced_accuracy]
ckplus = { dan = [0.990, 0.013] }
"""


def confusion(repeat: int, acc: float) -> list[list[int]]:
    """Ten test images per class, round(10 * acc) of each right; the errors go to the next class (odd repeats: the one after)."""
    right = round(10 * acc)
    matrix = []
    for i in range(3):
        row = [0, 0, 0]
        row[i] = right
        row[(i + 1 + repeat % 2) % 3] += 10 - right
        matrix.append(row)
    return matrix


def history(acc: float, bacc: float, epochs: int = 4) -> list[dict]:
    return [
        dict(epoch=e, train_loss=1.5 / e, lr=1e-3,
             val=dict(loss=1.0 / e, accuracy=acc * e / epochs, balanced_accuracy=bacc * e / epochs),
             test=dict(loss=1.1 / e, accuracy=acc * e / epochs, balanced_accuracy=bacc * e / epochs))
        for e in range(1, epochs + 1)
    ]


def fake_run(results: Path, dataset, model, repeat, requested, acc, bacc, pretrained=False, splits="s1",
             finished="1", protocol="official", seed=None, recipe="upstream", split_variant=None):
    """A complete run folder as `harness/run/worker.py` writes it (the fields the report reads)."""
    seed = repeat if seed is None else seed
    run_id = f"{protocol}{dataset}{model}{repeat}{splits}{recipe}"
    label = model if recipe == "upstream" else f"{model}-{recipe}"
    folder = store.run_dir(results, dataset, label, protocol, run_id)
    folder.mkdir(parents=True)
    upstream, commit = UPSTREAMS.get(model, (None, None))
    config = dict(run_id=run_id, model=model, dataset=dataset, protocol=protocol, repeat=repeat, seed=seed, fold=0,
                  repeats=requested, pretrained=pretrained, recipe={"epochs": 4, "name": recipe}, splits=f"{protocol}-{splits}",
                  selection="val_balanced_accuracy", upstream=upstream, upstream_commit=commit, classes=CLASSES)
    matrix = confusion(repeat, acc)
    result = dict(accuracy=acc, balanced_accuracy=bacc, macro_f1=bacc, selected_epoch=3, classes=CLASSES,
                  per_class_recall=[row[i] / 10 for i, row in enumerate(matrix)], confusion_matrix=matrix,
                  history=history(acc, bacc), stages={},
                  selection_rule="best val_balanced_accuracy (validation, 30 samples); ties keep the earlier epoch")
    env = dict(ferbench_version="0.1.0", ferbench_git_sha="0123456789abcdef" * 2 + "01234567", ferbench_git_dirty=False,
               upstream_head=commit, device_name="Test CPU", torch="2.5.0", split_variant=split_variant)
    store.write_json_atomic(folder / "config.json", config)
    store.write_json_atomic(folder / "result.json", result)
    store.write_json_atomic(folder / "env.json", env)
    (folder / "predictions.csv").write_text("path,true,predicted\n")
    store.mark_complete(folder, {"run_id": run_id, "finished": finished})
    return folder


@pytest.fixture
def results(tmp_path) -> Path:
    root = tmp_path / "results"
    for protocol, dataset, model, requested, accs, baccs in FIXTURE:
        for repeat, (acc, bacc) in enumerate(zip(accs, baccs)):
            variant = split_variant(protocol, dataset, model)
            fake_run(root, dataset, model, repeat, requested, acc, bacc, pretrained=(model == "dan"), protocol=protocol,
                     split_variant=variant)
    incomplete = store.run_dir(root, "rafdb", "dan", "official", "killed")
    incomplete.mkdir(parents=True)
    (incomplete / "result.json").write_text('{"accuracy": 0.0}')
    return root


@pytest.fixture
def registry(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "benchmark.toml"
    path.write_text(REGISTRY)
    monkeypatch.setenv("FERBENCH_CONFIG", str(path))
    return path
