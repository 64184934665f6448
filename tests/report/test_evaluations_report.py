"""Report sections from evaluation records: the cross-dataset matrix with marks and heatmap, and released
checkpoints beside the paper and the trained mean. Records are written by hand; nothing is trained."""

from __future__ import annotations

import pandas as pd

from harness.config import Published
from harness.evaluate import record as store
from harness.report import evaluations

SHARED6 = ["happy", "sad", "surprise", "fear", "disgust", "anger"]


def cross_record(model, run_id, target, accuracy, seed):
    return dict(id=f"{model}{run_id}{target}", kind="run", model=model, trained_on="rafdb", dataset=target, run_id=run_id,
                split={"name": "all", "protocol": None, "fold": None}, samples=100, excluded={"contempt": 5},
                classes=SHARED6, accuracy=accuracy, balanced_accuracy=accuracy - 0.05, class_mapping="six shared")


def runs_frame(models, seeds=(0, 1, 2)):
    return pd.DataFrame([dict(run_id=f"{m}{s}", model_name=m, dataset_name="rafdb", requested=len(seeds), splits="s",
                              fold=0, seed=s, protocol="official", accuracy=0.8) for m in models for s in seeds])


def test_cross_tables_means_best_and_marks(tmp_path):
    accuracies = {"dan": [0.70, 0.72, 0.74], "ddamfn": [0.60, 0.61, 0.62], "poster": [0.71, 0.69, 0.73]}
    for model, values in accuracies.items():
        for seed, value in enumerate(values):
            store.write(tmp_path, cross_record(model, f"{model}{seed}", "ckplus", value, seed), "path\n")
    store.write(tmp_path, cross_record("dan", "dan0", "sfew", 0.40, 0), "path\n")
    records = evaluations.load(tmp_path)
    (accuracy,) = evaluations.cross_tables(records, ("accuracy",), runs_frame(accuracies))
    assert accuracy.targets == ["ckplus", "sfew"]
    cells = {model: row for model, source, row, _ in accuracy.rows}
    assert cells["dan"][0].best and abs(cells["dan"][0].mean - 0.72) < 1e-12 and abs(cells["dan"][0].std - 0.02) < 1e-12
    assert cells["ddamfn"][0].mark == ""          # clearly below the best: significant, no mark
    assert cells["poster"][0].mark == "ns"        # within noise of the best
    assert cells["dan"][1].n == 1 and cells["dan"][1].requested == 3 and cells["ddamfn"][1] is None
    text = evaluations.cross_markdown([accuracy])
    assert "| dan | rafdb | **0.720 ± 0.020** |" in text and "†" in text and "1/3" in text
    assert "ckplus: happy, sad, surprise, fear, disgust, anger (not scored: contempt, 5 samples)" in text
    html = evaluations.as_html(text, [evaluations.heatmap(accuracy)])
    assert "<table>" in html and "<b>0.720 ± 0.020</b>" in html and "data:image/png;base64," in html
    (written,) = evaluations.write_heatmaps([accuracy], tmp_path / "plots")
    assert written.read_bytes().startswith(b"\x89PNG")


def test_own_dataset_evaluations_are_not_cross_dataset(tmp_path):
    store.write(tmp_path, dict(cross_record("dan", "dan0", "rafdb", 0.9, 0)), "path\n")
    assert evaluations.cross_tables(evaluations.load(tmp_path), ("accuracy",)) == []


def test_released_checkpoint_beside_paper_and_trained_mean(tmp_path):
    record = dict(id="abc", kind="checkpoint", model="dan", trained_on="rafdb", dataset="rafdb", path="/x/rafdb_epoch21.pth",
                  format="dan", split={"name": "test", "protocol": "official", "fold": 0}, samples=3068, excluded={},
                  classes=["neutral"], accuracy=0.8973, balanced_accuracy=0.8, class_mapping="reordered")
    store.write(tmp_path, record, "path\n")
    paper = Published(model="dan", dataset="rafdb", metric="accuracy", protocol="official", selection="best test epoch",
                      value=0.897, source="README")
    rows = evaluations.released_rows(evaluations.load(tmp_path), runs_frame(["dan"]), (paper,))
    (row,) = rows
    assert row["trained"][1] == 3 and abs(row["trained"][0] - 0.8) < 1e-12
    assert {k: v for k, v in row.items() if k != "trained"} == dict(
        model="dan", dataset="rafdb", trained_on="rafdb", paper=0.897, released=0.8973, samples=3068,
        file="rafdb_epoch21.pth", mapping="reordered")
    text = evaluations.released_markdown(rows)
    assert "| dan | rafdb | 0.8970 | 0.8000 (n=3) | 0.8973 | rafdb_epoch21.pth |" in text


def test_report_of_a_store_with_only_evaluations(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from harness.cli import app

    store.write(tmp_path / "results", dict(
        id="abc", kind="checkpoint", model="dan", trained_on="rafdb", dataset="rafdb", path="/x/rafdb_epoch21.pth",
        format="dan", split={"name": "test", "protocol": "official", "fold": 0}, samples=3068, excluded={},
        classes=["neutral"], accuracy=0.8973, balanced_accuracy=0.8, class_mapping="reordered"), "path\n")
    monkeypatch.delenv("FERBENCH_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["--results-dir", str(tmp_path / "results"), "report"])
    assert result.exit_code == 0, result.output
    assert "| dan | rafdb | 0.8970 | – | 0.8973 | rafdb_epoch21.pth |" in result.output
    html = CliRunner().invoke(app, ["--results-dir", str(tmp_path / "results"), "report", "--format", "html"])
    assert html.output.startswith("<!doctype html>") and "<td>0.8973</td>" in html.output


def test_latex_and_csv_carry_the_cross_dataset_and_released_tables(tmp_path):
    """No format drops the evaluation sections: LaTeX gets booktabs tables, CSV gets rows of their own."""
    import io

    for seed, value in enumerate([0.70, 0.72, 0.74]):
        store.write(tmp_path, cross_record("dan", f"dan{seed}", "ckplus", value, seed), "path\n")
    store.write(tmp_path, cross_record("dan", "dan0", "sfew", 0.40, 0), "path\n")
    store.write(tmp_path, dict(
        id="abc", kind="checkpoint", model="dan", trained_on="rafdb", dataset="rafdb", path="/x/rafdb_epoch21.pth",
        format="dan", split={"name": "test", "protocol": "official", "fold": 0}, samples=3068, excluded={},
        classes=["neutral"], accuracy=0.8973, balanced_accuracy=0.8, class_mapping="reordered"), "path\n")
    paper = Published(model="dan", dataset="rafdb", metric="accuracy", protocol="official", selection="best test epoch",
                      value=0.897, source="README")
    options = type("Options", (), dict(metrics=("accuracy", "balanced_accuracy"), test="ttest", alpha=0.05))
    section = lambda fmt, text="": evaluations.with_sections(text, fmt, tmp_path, runs_frame(["dan"]), (paper,),
                                                              options, [], [], None)
    latex = section("latex", "% in-dataset tables\n")
    assert latex.startswith("% in-dataset tables\n") and latex.count("\\begin{tabular}{llcc}") == 2
    assert "dan & rafdb & $0.720 \\pm 0.020$ & $0.400$ (1/3) \\\\" in latex
    assert "dan & rafdb & $0.8970$ & $0.8000$ ($n{=}3$) & $0.8973$ \\\\" in latex
    assert "\\label{tab:ferbench-cross-dataset-balanced-accuracy}" in latex

    in_dataset = "protocol,dataset,model,n,requested,complete,runs,accuracy_mean\nofficial,rafdb,dan,3,3,True,3,0.800000\n"
    text = section("csv", in_dataset)
    assert text.splitlines()[1] == "official,rafdb,dan,3,3,True,3,0.800000" + "," * (text.splitlines()[0].count(",") - 7)
    table = pd.read_csv(io.StringIO(text))
    assert list(table["protocol"]) == ["official", "cross-dataset", "cross-dataset", "released-checkpoint"]
    ckplus = table[table["dataset"] == "ckplus"].iloc[0]
    assert (ckplus["source"], ckplus["n"], ckplus["requested"]) == ("rafdb", 3, 3)
    assert abs(ckplus["accuracy_mean"] - 0.72) < 1e-6 and abs(ckplus["balanced_accuracy_mean"] - 0.67) < 1e-6
    sfew = table[table["dataset"] == "sfew"].iloc[0]
    assert not sfew["complete"] and sfew["n"] == 1
    released = table[table["protocol"] == "released-checkpoint"].iloc[0]
    assert (released["checkpoint"], released["accuracy_mean"], released["paper_accuracy"]) == ("rafdb_epoch21.pth", 0.8973, 0.897)
    assert released["trained_runs"] == 3
    only = pd.read_csv(io.StringIO(section("csv")))
    assert len(only) == 3 and "official" not in set(only["protocol"])
