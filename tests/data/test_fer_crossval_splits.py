"""crossval-compat against FER-crossval's own split lines, for every one of its 42 scripts × 10 iterations.

Each script's split lines are read from vendor/fer-crossval (the pinned upstream) and run on generated label
files in FER-crossval's layouts (tests/upstream_lines.py); ferbench loads the same folder and must draw the same
train, validation and test images.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import config
from harness.data import fer_crossval
from harness.data.protocols import make_folds
from harness.data.table import load_table
from tests.conftest import REPO
from tests.data.fer_crossval_fakes import write_all
from tests.upstream_lines import run_splits

VENDOR = REPO / "vendor" / "fer-crossval"
PAIRS = [(model, dataset) for model in fer_crossval.MODELS for dataset in fer_crossval.LAYOUTS]

pytestmark = pytest.mark.skipif(
    not VENDOR.is_dir(), reason="vendor/fer-crossval is not fetched (run `ferbench fetch fer-crossval`)"
)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    return write_all(tmp_path_factory.mktemp)


def test_every_fer_crossval_script_is_covered_and_every_covered_pair_has_its_script():
    scripts = {p.relative_to(VENDOR).as_posix() for p in VENDOR.glob("*/*_crossval.py")}
    assert len(scripts) == len(PAIRS) == 42
    assert scripts == {fer_crossval.script(model, dataset) for model, dataset in PAIRS}
    assert fer_crossval.script("baseline", "ckplus") is None and fer_crossval.variant("baseline", "ckplus") == "standard"


@pytest.mark.parametrize("model,dataset", PAIRS, ids=[f"{m}-{d}" for m, d in PAIRS])
def test_crossval_compat_draws_the_indices_of_the_models_own_script(roots, model, dataset, capsys):
    upstream = run_splits(VENDOR / fer_crossval.script(model, dataset), roots[dataset])
    cfg = config.load().dataset(dataset)
    table = load_table(roots[dataset], cfg.model_copy(update={"layouts": (fer_crossval.LAYOUTS[dataset],)}))
    ours = make_folds(table, "crossval-compat", 0.1, dataset=dataset, model=model)
    assert len(upstream) == len(ours) == 10
    for (train, val, test), fold in zip(upstream, ours):
        assert (sorted(map(int, train)), sorted(map(int, val)), sorted(map(int, test))) == (fold.train, fold.val, fold.test)
    assert len(table) == sum(map(len, upstream[0]))


def test_the_generated_folders_distinguish_every_variant(roots):
    """N = 103: int(0.2·N) ≠ ceil(0.2·N), so a wrong variant would fail the comparison above."""
    draws = {name: fer_crossval.draw(103, name) for name in fer_crossval.VARIANTS}
    sizes = {name: tuple(len(part) for part in draw[0]) for name, draw in draws.items()}
    assert len(set(sizes.values())) == len(fer_crossval.VARIANTS), sizes
