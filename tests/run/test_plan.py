import pytest

from harness import config
from harness.errors import FerbenchError
from harness.paths import Paths
from harness.run.plan import Request, plan
from tests.conftest import TINY_TOML

WITH_WEIGHTS = TINY_TOML.replace(
    "[datasets.synthetic]",
    '[[models.baseline.pretrained]]\nname = "backbone.pth"\nsha256 = "' + "0" * 64 + '"\n'
    'url = "https://example.org/backbone.pth"\ninitialises = "the backbone"\n\n[datasets.synthetic]',
)


def _paths(tmp_path, tiny_dataset) -> Paths:
    return Paths(data_root=tiny_dataset, results=tmp_path / "results", vendor=tmp_path / "vendor",
                 weights=tmp_path / "weights")


def test_missing_weights_stop_planning_with_one_line(tmp_path, tiny_dataset):
    cfg = config.parse(WITH_WEIGHTS)
    with pytest.raises(FerbenchError) as info:
        plan(cfg, _paths(tmp_path, tiny_dataset), Request(model="baseline", dataset="synthetic"))
    message = str(info.value)
    assert "backbone.pth" in message and "https://example.org/backbone.pth" in message
    assert "--no-pretrained" in message and "\n" not in message


def test_no_pretrained_plans_random_init_runs(tmp_path, tiny_dataset):
    cfg = config.parse(WITH_WEIGHTS)
    jobs = plan(cfg, _paths(tmp_path, tiny_dataset), Request(model="baseline", dataset="synthetic", pretrained=False))
    assert len(jobs) == cfg.defaults.repeats and not any(job.spec.pretrained for job in jobs)
    assert len({job.spec.run_id for job in jobs}) == len(jobs)
    assert {job.spec.seed for job in jobs} == {0, 1}


def test_repeats_cycle_through_folds_and_share_one_split_file(tmp_path, tiny_dataset):
    cfg = config.parse(TINY_TOML)
    jobs = plan(cfg, _paths(tmp_path, tiny_dataset), Request(model="baseline", dataset="synthetic", repeats=3))
    assert [job.spec.fold for job in jobs] == [0, 0, 0]  # official: one fold, repeats differ by seed
    assert len({job.splits_file for job in jobs}) == 1 and jobs[0].splits_file.is_file()


UNIFIED = TINY_TOML + """
[recipes.unified]
optimizer = "adamw"
lr = 1e-3
weight_decay = 1e-4
schedule = "cosine"
epochs = 100
patience = 20
"""


def test_unified_recipe_replaces_the_optimizer_and_budget_but_keeps_the_batch_size(tmp_path, tiny_dataset):
    cfg = config.parse(UNIFIED)
    paths = _paths(tmp_path, tiny_dataset)
    upstream = plan(cfg, paths, Request(model="baseline", dataset="synthetic"))
    unified = plan(cfg, paths, Request(model="baseline", dataset="synthetic", recipe="unified"))
    recipe = unified[0].spec.recipe
    assert (recipe["name"], recipe["optimizer"], recipe["epochs"], recipe["patience"]) == ("unified", "adamw", 100, 20)
    assert recipe["batch_size"] == upstream[0].spec.recipe["batch_size"] == 8
    assert upstream[0].spec.recipe["name"] == "upstream"
    assert {j.spec.run_id for j in upstream}.isdisjoint(j.spec.run_id for j in unified)
    quick = plan(cfg, paths, Request(model="baseline", dataset="synthetic", recipe="unified", epochs=2))
    assert quick[0].spec.recipe["epochs"] == 2 and quick[0].spec.run_id != unified[0].spec.run_id


def test_an_unknown_recipe_is_a_one_line_error(tmp_path, tiny_dataset):
    with pytest.raises(FerbenchError, match="unknown recipe 'fast'; valid: unified, upstream"):
        plan(config.parse(UNIFIED), _paths(tmp_path, tiny_dataset), Request(model="baseline", dataset="synthetic", recipe="fast"))
