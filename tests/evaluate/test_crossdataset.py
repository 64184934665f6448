"""Cross-dataset targets: parsing `--target NAME[=PATH]`, checks made before any training, default targets and
the split each target is scored on."""

from __future__ import annotations

import pytest

from harness import config
from harness.errors import FerbenchError
from harness.evaluate.crossdataset import TargetSpec, check_targets, default_split, parse_targets, targets_for
from harness.paths import Paths


def test_parse_targets(tmp_path):
    assert parse_targets([]) is None
    assert parse_targets([], cross_dataset=True) == []
    (named, pathed) = parse_targets(["sfew", f"ckplus={tmp_path}"])
    assert named == TargetSpec("sfew") and pathed == TargetSpec("ckplus", tmp_path.resolve())
    for bad in ("ckplus=", "=x"):
        with pytest.raises(FerbenchError, match="DATASET or DATASET=PATH"):
            parse_targets([bad])


def test_targets_are_checked_before_training(tmp_path):
    cfg, paths = config.load(), Paths(data_root=tmp_path)
    with pytest.raises(FerbenchError, match="unknown dataset 'bogus'"):
        check_targets(cfg, paths, [TargetSpec("bogus")])
    with pytest.raises(FerbenchError, match="--target sfew: .* is not a folder"):
        check_targets(cfg, paths, [TargetSpec("sfew")])
    check_targets(cfg, paths, [TargetSpec("sfew", tmp_path)])


def test_default_targets_and_splits(tmp_path):
    cfg = config.load()
    for name in ("rafdb", "ckplus", "dfew"):
        (tmp_path / name).mkdir()
    paths = Paths(data_root=tmp_path)
    assert targets_for(cfg, paths, "rafdb", []) == [TargetSpec("ckplus")]  # present, still images, not the source
    assert targets_for(cfg, paths, "rafdb", [TargetSpec("rafdb"), TargetSpec("sfew")]) == [TargetSpec("sfew")]
    assert default_split(cfg.dataset("ckplus")) == "all" and default_split(cfg.dataset("kmufed")) == "all"
    assert default_split(cfg.dataset("sfew")) == "test"


def test_complete_runs_without_a_kept_model_are_trained_again(tmp_path):
    from types import SimpleNamespace

    from harness.evaluate.saved import META, WEIGHTS, missing_models
    from harness.run.store import MARKER

    def job(name, complete, kept, save=True):
        folder = tmp_path / name
        folder.mkdir()
        if complete:
            (folder / MARKER).write_text("{}")
        if kept:
            (folder / WEIGHTS).write_bytes(b"x")
            (folder / META).write_text("{}")
        return SimpleNamespace(run_dir=folder, save_model=save)

    jobs = [job("a", True, False), job("b", True, True), job("c", False, False), job("d", True, False, save=False)]
    assert missing_models(jobs) == [jobs[0]]
    assert missing_models(jobs, overwrite=True) == []
