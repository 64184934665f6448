"""Fold-protocol cells: mean ± std over folds, `(k/N folds)` and never bold when folds are missing, the pooled
accuracy over overlapping folds, and published-number notes that name each difference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import config
from harness.report.aggregate import load_runs, summarise
from harness.report.build import Options, build
from harness.report.published import protocol_note
from harness.report.render import render_markdown
from tests.report.conftest import fake_run

POOLED = Options(metrics=("accuracy", "pooled_accuracy"))


def fold_run(results: Path, model: str, fold: int, acc: float, tested: int, fold_count: int = 3, seed: int = 0,
             selection: str = "val_balanced_accuracy", share: float = 0.9) -> None:
    folder = fake_run(results, "ckplus", model, fold * 10 + seed, 1, acc, acc, protocol="subject-kfold", seed=seed)
    cfg, res = (json.loads((folder / name).read_text()) for name in ("config.json", "result.json"))
    cfg.update(fold=fold, fold_count=fold_count, selection=selection)
    res.update(samples=dict(train=90, val=10, test=tested), training_share=share)
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "result.json").write_text(json.dumps(res))


def test_fold_cell_is_mean_over_folds_and_incomplete_cells_are_marked_not_bold(tmp_path):
    results = tmp_path / "results"
    for fold, acc in enumerate([0.5, 0.75, 1.0]):
        fold_run(results, "dan", fold, acc, tested=4)
    fold_run(results, "poster", 0, 1.0, tested=4)  # the best mean, but 1 of 3 folds
    summary = summarise(load_runs(results)).set_index("model")
    assert summary.loc["dan", "accuracy_mean"] == pytest.approx(0.75)
    assert summary.loc["dan", "accuracy_std"] == pytest.approx(0.25)
    assert (summary.loc["dan", "n"], summary.loc["dan", "requested"], summary.loc["dan", "complete"]) == (3, 3, True)
    assert not summary.loc["poster", "complete"]
    text = render_markdown(build(load_runs(results), POOLED))
    row = next(line for line in text.splitlines() if line.startswith("| ckplus"))
    assert row == "| ckplus | **0.750 ± 0.250** | 1.000 (1/3 folds) ‡ |"  # one fold pairs: untested
    pooled = text.split("## Pooled accuracy")[1]
    assert "| ckplus | **0.750 (1 seed, 12 predictions)** | 1.000 (1/3 folds, 4 predictions) ‡ |" in pooled
    assert "(k/N folds) marks a cell missing folds, never bold" in text


def test_pooled_accuracy_counts_every_prediction_of_overlapping_folds_per_seed(tmp_path):
    """A fold that tests 10 images counts ten times as much as one that tests 2; seeds are averaged."""
    results = tmp_path / "results"
    for seed, (first, second) in enumerate([(0.9, 0.5), (0.8, 0.0)]):
        fold_run(results, "dan", 0, first, tested=10, fold_count=2, seed=seed)
        fold_run(results, "dan", 1, second, tested=2, fold_count=2, seed=seed)
    row = summarise(load_runs(results)).iloc[0]
    assert row["predictions"] == 12 and row["seeds"] == 2
    assert row["pooled_accuracy_mean"] == pytest.approx(((9 + 1) / 12 + (8 + 0) / 12) / 2)
    assert row["accuracy_mean"] == pytest.approx((0.85 + 0.25) / 2)  # over folds, each the mean of its seeds


def test_single_split_sections_leave_the_pooled_table_out(results):
    text = render_markdown(build(load_runs(results), POOLED))
    assert "Pooled" not in text and "folds)" not in text


def _cell(**values):
    base = dict(protocol="official", dataset="rafdb", dataset_name="rafdb", recipe="upstream", pretrained=True,
                selection="validation val_balanced_accuracy", training_share=0.9)
    return type("Cell", (), {**base, **values})


def test_published_note_names_training_share_selection_images_initialisation_and_flags():
    cfg = config.load()
    record = config.Published(model="mfer", dataset="rafdb", metric="accuracy", protocol="official",
                              selection="best test epoch", value=0.9, source="paper", images="aligned (MTCNN)")
    note = protocol_note(record, _cell(pretrained=False), cfg.model("mfer"))
    assert "training share: paper 100 % of the training split, ours 90 % (10 % held out for epoch selection)" in note
    assert "epoch: paper best test epoch, ours validation-selected val_balanced_accuracy" in note
    assert "images: paper aligned (MTCNN), ours raw (not aligned)" in note
    assert "not reproducible: MS-Celeb-1M pretraining of the ConvNeXt-B backbone (never released" in note
    assert "not reproducible: the DSF feature loss" in note
    final = protocol_note(
        record.model_copy(update=dict(images="", selection="final epoch")),
        _cell(selection="final epoch", training_share=1.0, pretrained=False),
        cfg.model("dan"),
    )
    assert final == "initialisation: paper pretrained, ours random init"
    same = protocol_note(record.model_copy(update=dict(images="", selection="final epoch")),
                         _cell(selection="final epoch", training_share=1.0), cfg.model("dan"))
    assert same == "same split, training share and selection"
    gsd = protocol_note(record, _cell(training_share=1.0), cfg.model("gsdnet"))
    assert "training share" not in gsd and "RAF_model.pth" in gsd and "initialisation" not in gsd
