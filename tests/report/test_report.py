import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import FerbenchError
from harness.report.aggregate import load_runs, summarise
from harness.report.render import format_cell, render_csv, render_markdown
from harness.run import store

GOLDEN = Path(__file__).parent / "golden"

# (dataset, model, requested repeats, accuracies, balanced accuracies)
FIXTURE = [
    ("ckplus", "dan", 3, [0.99, 0.98, 0.97], [0.95, 0.96, 0.97]),
    ("ckplus", "baseline", 3, [0.90, 0.92, 0.91], [0.97, 0.98, 0.99]),
    ("rafdb", "dan", 10, [0.80, 0.82], [0.70, 0.72]),
    ("rafdb", "baseline", 3, [0.70, 0.71, 0.72], [0.60, 0.61, 0.62]),
    ("synthetic", "baseline", 1, [0.5], [0.4]),
]


def fake_run(results: Path, dataset, model, repeat, requested, acc, bacc, pretrained=False, splits="s1", finished="1"):
    run_id = f"{dataset}{model}{repeat}{splits}"
    folder = store.run_dir(results, dataset, model, "official", run_id)
    folder.mkdir(parents=True)
    config = dict(run_id=run_id, model=model, dataset=dataset, protocol="official", repeat=repeat, seed=repeat,
                  repeats=requested, pretrained=pretrained, recipe={"epochs": 5}, splits=splits)
    result = dict(accuracy=acc, balanced_accuracy=bacc, macro_f1=bacc, selected_epoch=3)
    store.write_json_atomic(folder / "config.json", config)
    store.write_json_atomic(folder / "result.json", result)
    store.write_json_atomic(folder / "env.json", {})
    (folder / "predictions.csv").write_text("path,true,predicted\n")
    store.mark_complete(folder, {"run_id": run_id, "finished": finished})
    return folder


@pytest.fixture
def results(tmp_path) -> Path:
    for dataset, model, requested, accs, baccs in FIXTURE:
        for repeat, (acc, bacc) in enumerate(zip(accs, baccs)):
            fake_run(tmp_path, dataset, model, repeat, requested, acc, bacc, pretrained=(model == "dan"))
    incomplete = store.run_dir(tmp_path, "rafdb", "dan", "official", "killed")
    incomplete.mkdir(parents=True)
    (incomplete / "result.json").write_text('{"accuracy": 0.0}')
    return tmp_path


def test_cell_format():
    assert format_cell(0.96, 0.0131, 10, 10) == "0.960 ± 0.013"
    assert format_cell(0.812, 0.02, 7, 10) == "0.812 ± 0.020 (7/10)"
    assert format_cell(0.5, float("nan"), 1, 1) == "0.500 (n=1)"
    assert format_cell(0.5, float("nan"), 1, 3) == "0.500 (1/3)"


def test_summary_uses_sample_std_and_counts(results):
    summary = summarise(load_runs(results)).set_index(["dataset", "model"])
    dan = summary.loc[("rafdb", "dan")]
    assert dan.n == 2 and dan.requested == 10 and not dan.complete
    assert dan.accuracy_mean == pytest.approx(0.81)
    assert dan.accuracy_std == pytest.approx(0.0141421, rel=1e-4)  # ddof=1, not population std (0.01)


def test_markdown_matches_golden(results):
    text = render_markdown(summarise(load_runs(results)))
    assert text == (GOLDEN / "report.md").read_text()


def test_best_complete_cell_is_bold(results):
    text = render_markdown(summarise(load_runs(results)))
    acc = text.split("## Balanced accuracy")[0]
    assert "**0.980 ± 0.010**" in acc
    assert "0.810 ± 0.014 (2/10)" in acc and "**0.810" not in acc  # incomplete: shown with counts, never bold
    assert "**0.710 ± 0.010**" in acc


def test_csv_has_one_row_per_cell(results):
    lines = render_csv(summarise(load_runs(results))).strip().splitlines()
    assert lines[0].startswith("protocol,dataset,model,n,requested")
    assert len(lines) == 1 + len(FIXTURE)


def test_empty_store_is_a_clear_error(tmp_path):
    with pytest.raises(FerbenchError, match="no complete runs found"):
        load_runs(tmp_path / "results")


def test_cli_report_to_stdout(results, capsys, monkeypatch):
    monkeypatch.setenv("FERBENCH_RESULTS_DIR", str(results))
    with pytest.raises(SystemExit) as info:
        main(["report"])
    assert info.value.code in (0, None)
    assert capsys.readouterr().out == (GOLDEN / "report.md").read_text()


def test_cli_report_rejects_unknown_format(results, capsys, monkeypatch):
    monkeypatch.setenv("FERBENCH_RESULTS_DIR", str(results))
    with pytest.raises(SystemExit) as info:
        main(["report", "--format", "pdf"])
    assert info.value.code == 2


def test_runs_on_superseded_splits_are_not_averaged(results):
    for repeat, acc in enumerate([0.1, 0.2, 0.3]):  # the same cell on an older copy of the data
        fake_run(results, "ckplus", "dan", repeat, 3, acc, acc, splits="s0", finished="0")
    summary = summarise(load_runs(results)).set_index(["dataset", "model"])
    assert summary.loc[("ckplus", "dan")].accuracy_mean == pytest.approx(0.98)
    assert summary.loc[("ckplus", "dan")].superseded == 3
    assert "Runs on older data or splits, not counted: dan on ckplus (official): 3." in render_markdown(
        summarise(load_runs(results))
    )


def test_runs_on_an_aligned_copy_get_their_own_row(results):
    folder = fake_run(results, "ckplus", "dan", 0, 1, 0.5, 0.5, splits="aligned")
    config = json.loads((folder / "config.json").read_text())
    config["aligned"] = "aligned_112-0123456789abcdef"
    (folder / "config.json").write_text(json.dumps(config))
    summary = summarise(load_runs(results)).set_index(["dataset", "model"])
    assert summary.loc[("ckplus (aligned_112)", "dan")].n == 1
    assert summary.loc[("ckplus", "dan")].n == 3
