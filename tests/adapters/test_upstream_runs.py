"""End to end: every upstream model trains through `ferbench run` from its fetched upstream code.

Uses the repository's `benchmark.toml`. The upstreams come from `vendor/` when it holds them at
their pins, else they are fetched into a temporary folder (network, or the user's git `insteadOf`
mirrors); a model whose upstream cannot be had is skipped with the reason.
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from harness import config, fetch
from harness.run.store import complete_runs
from tests.conftest import REPO, child_env, ferbench_argv

MODELS = ["poster", "posterpp", "dan", "ddamfn", "lnsunet", "adadf", "mfer", "gsdnet", "vgg19", "resnet18", "ceprompt",
          "clivpfer", "clivpfer-label-caption"]
VIDEO_MODELS = ["dferclip"]
# One seeded run per model keeps the suite's CPU time in bounds; two for DDAMFN (the cheapest upstream model) so
# that repeats of an upstream model are covered end to end too.
REPEATS = {"ddamfn": 2}
CFG = config.load(REPO / "benchmark.toml")


@pytest.fixture(scope="module")
def vendor(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(vendor folder, {upstream: why it is unavailable})."""
    names = sorted({CFG.model(m).upstream for m in MODELS + VIDEO_MODELS if m in CFG.models})
    upstreams = [CFG.upstream(n) for n in names]
    statuses = fetch.check(upstreams, REPO / "vendor")
    if all(s.status == "ok" for s in statuses):
        return REPO / "vendor", {}
    folder = tmp_path_factory.mktemp("vendor")
    outcomes = fetch.fetch(upstreams, folder, console=Console(file=io.StringIO(), width=200))
    return folder, {o.name: o.error for o in outcomes if not o.ok}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, vendor) -> dict:
    from harness.data.synth import generate, generate_video

    root = tmp_path_factory.mktemp("e2e")
    generate(root / "data" / "synthetic", images_per_class=4, size=48, seed=0)
    generate_video(root / "data" / "synthetic-video", clips_per_class=5, frames=(8, 20), size=48, seed=0)
    env = child_env()
    env.update(
        FERBENCH_CONFIG=str(REPO / "benchmark.toml"),
        FERBENCH_DATA_ROOT=str(root / "data"),
        FERBENCH_RESULTS_DIR=str(root / "results"),
        FERBENCH_VENDOR_DIR=str(vendor[0]),
        FERBENCH_WEIGHTS_DIR=str(root / "weights"),
        OMP_NUM_THREADS="2",
    )
    return dict(root=root, env=env)


@pytest.mark.parametrize("name", MODELS + VIDEO_MODELS)
def test_model_trains_from_its_fetched_upstream(name, vendor, workspace):
    assert name in CFG.models, f"benchmark.toml has no [models.{name}]"
    model = CFG.model(name)
    upstream = CFG.upstream(model.upstream)
    if upstream.name in vendor[1]:
        pytest.skip(f"upstream {upstream.url} not available (no network and no insteadOf mirror): {vendor[1][upstream.name]}")
    dataset = "synthetic-video" if name in VIDEO_MODELS else "synthetic"
    repeats = REPEATS.get(name, 1)
    argv = ferbench_argv(
        "run", "--model", name, "--dataset", dataset, "--repeats", str(repeats), "--epochs", "1",
        "--batch-size", "4", "--no-pretrained", "--device", "cpu",
        *(["--folds", "0"] if dataset == "synthetic-video" else []),  # official-folds plans all 5 folds otherwise
    )
    done = subprocess.run(argv, capture_output=True, text=True, env=workspace["env"], cwd=workspace["root"], timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [r for r in complete_runs(workspace["root"] / "results") if r.parts[-3] == name]
    assert len(runs) == repeats
    vendored = (vendor[0] / upstream.name).resolve()
    for run in runs:
        env = json.loads((run / "env.json").read_text())
        result = json.loads((run / "result.json").read_text())
        assert env["upstream_commit"] == upstream.commit and env["upstream_head"] == upstream.commit
        assert Path(env["model_file"]).resolve().is_relative_to(vendored), env["model_file"]
        assert json.loads((run / "config.json").read_text())["pretrained"] is False
        assert 0 <= result["balanced_accuracy"] <= 1 and len(result["history"]) == 1
        if CFG.model(name).stages:
            assert set(result["stages"]) == {"eva", *CFG.model(name).stages}
        assert result["test_label_input"] is model.test_label_input and result["display"] == model.label


def test_report_shows_every_model_side_by_side(workspace):
    done = subprocess.run(ferbench_argv("report"), capture_output=True, text=True, env=workspace["env"], cwd=workspace["root"])
    if "no complete runs" in done.stderr:
        pytest.skip("no model ran (upstreams unavailable)")
    assert done.returncode == 0, done.stderr
    headers = " ".join(line for line in done.stdout.splitlines() if line.startswith("| dataset")) + " "
    ran = {p.parts[-3] for p in complete_runs(workspace["root"] / "results")}
    assert ran and all(f" {CFG.model(m).label} " in headers for m in ran)
    if "clivpfer-label-caption" in ran:
        assert "clivpfer (label caption) takes each test sample's TRUE LABEL as input" in done.stdout
    assert "Balanced accuracy" in done.stdout
    if "dferclip" in ran:
        assert "UAR (balanced accuracy)" in done.stdout and "WAR (accuracy)" in done.stdout
    cost = subprocess.run(ferbench_argv("report", "--cost"), capture_output=True, text=True, env=workspace["env"],
                          cwd=workspace["root"])
    assert cost.returncode == 0, cost.stderr
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in cost.stdout.split("## Model cost")[1].splitlines()
            if line.startswith("| ") and not line.startswith("| model")}
    for model in ran:  # parameters and GFLOPs of every model that ran, under the name the report gives it
        row = rows[CFG.model(model).label]
        assert float(row[2]) > 0 and float(row[4]) > 0, row
