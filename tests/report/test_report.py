"""`ferbench report`: aggregation, marks, formats and the CLI, on the fixed store of conftest.py."""

import json
from pathlib import Path

import pytest

from harness import config
from harness.cli import main
from harness.errors import FerbenchError
from harness.report.aggregate import load_runs, select, summarise, unfinished_runs
from harness.report.build import Options, build
from harness.report.render import format_cell, render_csv, render_latex, render_markdown
from tests.report.conftest import FIXTURE, REGISTRY, fake_run

GOLDEN = Path(__file__).parent / "golden"
CFG = config.parse(REGISTRY)
VIDEO = {name for name, d in CFG.datasets.items() if d.video}


def report_of(results: Path, options: Options = Options(), **filters):
    runs = select(load_runs(results, VIDEO), **filters)
    return build(runs, options, CFG.published, CFG.references, unfinished=unfinished_runs(results))


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(["report", *args])
    return info.value.code or 0


def test_cell_format():
    assert format_cell(0.96, 0.0131, 10, 10) == "0.960 ± 0.013"
    assert format_cell(0.812, 0.02, 7, 10) == "0.812 ± 0.020 (7/10)"
    assert format_cell(0.5, float("nan"), 1, 1) == "0.500 (n=1)"
    assert format_cell(0.5, float("nan"), 1, 3) == "0.500 (1/3)"
    assert format_cell(0.9, 0.01, 3, 3, ci=0.2) == "0.900 ± 0.010 [0.700, 1.000]"  # clipped to [0, 1]


def test_summary_uses_sample_std_counts_and_t_interval(results):
    summary = summarise(load_runs(results)).set_index(["protocol", "dataset", "model"])
    dan = summary.loc[("official", "rafdb", "dan")]
    assert dan.n == 2 and dan.requested == 10 and not dan.complete
    assert dan.accuracy_mean == pytest.approx(0.81)
    assert dan.accuracy_std == pytest.approx(0.0141421, rel=1e-4)  # ddof=1, not population std (0.01)
    assert dan.accuracy_pstd == pytest.approx(0.01)
    assert dan.accuracy_ci == pytest.approx(12.7062 * 0.0141421 / 2**0.5, rel=1e-4)  # t(0.975, 1) = 12.706


def test_markdown_matches_golden(results):
    assert render_markdown(report_of(results)) == (GOLDEN / "report.md").read_text()


def test_latex_matches_golden(results):
    text = render_latex(report_of(results))
    assert text == (GOLDEN / "report.tex").read_text()
    assert text.count("\\toprule") == text.count("\\bottomrule") == text.count("\\begin{table}") > 0
    assert "$\\mathbf{0.980 \\pm 0.010}$" in text and "\\textsuperscript{\\dag}" in text


def test_best_complete_cell_is_bold_and_marks_follow_the_paired_test(results):
    text = render_markdown(report_of(results))
    acc = text.split("## Balanced accuracy")[0]
    assert "| ckplus | 0.910 ± 0.010 | **0.980 ± 0.010** | 0.977 ± 0.015 † |" in acc  # poster: p = 0.67
    assert "0.810 ± 0.014 (2/10) |" in acc and "**0.810" not in acc  # incomplete: never bold
    assert "**0.710 ± 0.010**" in acc


def test_paired_t_test_known_answer():
    from harness.report.significance import paired_p

    # differences 0.03, 0.02, 0.01: t = 0.02 / (0.01 / sqrt 3) = sqrt 12, df 2, two-sided p = 1 - t / sqrt(t² + 2)
    p = paired_p([0.53, 0.52, 0.51], [0.5, 0.5, 0.5])
    assert p == pytest.approx(1 - (12 / 14) ** 0.5, rel=1e-9)
    assert paired_p([0.5, 0.6], [0.5, 0.6]) == 1.0  # identical runs
    assert paired_p([0.6, 0.7], [0.5, 0.6]) == 0.0  # identical nonzero differences
    assert paired_p([0.6], [0.5]) != paired_p([0.6], [0.5])  # NaN: one pair cannot be tested


def test_wilcoxon_known_answer():
    from harness.report.significance import paired_p

    # six positive differences of distinct size: exact two-sided p = 2 / 2⁶
    p = paired_p([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.09, 0.18, 0.27, 0.36, 0.45, 0.54], test="wilcoxon")
    assert p == pytest.approx(2 / 64)


def test_the_fixture_rows_get_the_expected_p_values(results):
    from harness.report.significance import compare

    runs = load_runs(results, VIDEO)
    comparisons = compare(runs, summarise(runs), "accuracy")
    baseline = comparisons[("official", "ckplus", "baseline")]
    assert baseline.best == "dan" and baseline.pairs == 3
    assert baseline.p == pytest.approx(1 - 7 / 51**0.5)  # differences .09 .06 .06: t = 7, df 2
    assert comparisons[("official", "ckplus", "poster")].p == pytest.approx(2 / 3)  # t = 0.5774, df 2


def test_runs_pair_only_on_the_same_split_file_fold_and_seed(results):
    for repeat, acc in enumerate([0.5, 0.6, 0.7]):  # other seeds than dan's: nothing to pair
        fake_run(results, "ckplus", "dan", repeat, 3, acc, acc, seed=100 + repeat, recipe="unified")
    text = render_markdown(report_of(results))
    acc = text.split("## Balanced accuracy")[0]
    assert "| dataset | baseline | dan | dan (unified) | poster |" in acc
    assert "0.600 ± 0.100 ‡" in acc


def test_csv_has_one_row_per_cell(results):
    lines = render_csv(report_of(results)).strip().splitlines()
    assert lines[0].startswith("protocol,dataset,model,n,requested")
    assert "accuracy_p_vs_best" in lines[0] and "balanced_accuracy_ci95" in lines[0]
    assert len(lines) == 1 + len(FIXTURE)


def test_empty_store_is_a_clear_error(tmp_path):
    with pytest.raises(FerbenchError, match="no complete runs found"):
        load_runs(tmp_path / "results")


def test_a_store_of_unfinished_runs_says_so(tmp_path):
    folder = tmp_path / "results" / "rafdb" / "dan" / "official" / "abc"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    with pytest.raises(FerbenchError, match=r"no complete runs found \(1 run folder\(s\) without a COMPLETE marker"):
        load_runs(tmp_path / "results")


def test_cli_report_to_stdout(results, registry, capsys, monkeypatch):
    monkeypatch.setenv("FERBENCH_RESULTS_DIR", str(results))
    assert cli() == 0
    assert capsys.readouterr().out == (GOLDEN / "report.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "pdf"], "--format: expected one of md, html, csv, latex"),
        (["--metric", "f2"], "--metric: unknown metric 'f2'"),
        (["--models", "nosuch"], "--models: no complete runs for 'nosuch'; the store has: baseline, dan, dferclip, poster"),
        (["--protocol", "subject-kfold"], "--protocol: no complete runs for 'subject-kfold'"),
        (["--test", "anova"], "--test: expected one of ttest, wilcoxon"),
    ],
)
def test_cli_rejects_bad_options(results, registry, capsys, monkeypatch, args, message):
    monkeypatch.setenv("FERBENCH_RESULTS_DIR", str(results))
    assert cli(*args) == 2
    assert message in capsys.readouterr().err.replace("\n", "")


def test_filters_and_video_metric_names(results, registry, capsys, monkeypatch):
    monkeypatch.setenv("FERBENCH_RESULTS_DIR", str(results))
    assert cli("--metric", "uar", "--datasets", "dfew,ckplus", "--models", "dferclip", "--models", "dan") == 0
    out = capsys.readouterr().out
    assert "## UAR (balanced accuracy) — protocol `official-folds`" in out
    assert "## Accuracy" not in out and "WAR" not in out and "rafdb" not in out and "baseline" not in out
    assert "| dferclip | dfew | UAR | 0.5961 | 0.590 ± 0.014 | -0.006 | epoch: paper not stated" in out
    assert cli("--protocol", "crossval-compat", "--metric", "accuracy") == 0
    out = capsys.readouterr().out
    assert "official" not in out.split("## Provenance")[0].replace("official train", "")
    assert "| ckplus | 0.980 ± 0.010 vs 0.993 ± 0.008 (-0.013) |" in out  # population std, like the reference


def test_reference_cells_compare_only_with_runs_on_the_reference_scripts_split_variant(tmp_path):
    results = tmp_path / "results"
    for repeat, acc in enumerate([0.99, 0.97]):  # DAN's FER-crossval CK+ script draws `dan-tail`, not `standard`
        fake_run(results, "ckplus", "dan", repeat, 2, acc, acc, protocol="crossval-compat", split_variant="standard")
    [section] = report_of(results).sections
    assert section.references == []
    for repeat, acc in enumerate([0.99, 0.97]):
        fake_run(results, "ckplus", "poster", repeat, 2, acc, acc, protocol="crossval-compat", split_variant="standard")
    [section] = report_of(results).sections
    accuracy = section.references[0]
    assert accuracy.models == ["poster"]
    assert accuracy.excluded == ("dan on ckplus (ours standard, reference dan-tail)",)
    assert "Not compared (another split variant than the reference's script): dan on ckplus" in render_markdown(
        report_of(results))


def test_paper_comparison_names_every_difference(results):
    rows = report_of(results).sections[0].papers
    assert [(r.model, r.dataset, r.metric, r.paper) for r in rows] == [("dan", "rafdb", "Accuracy", 0.897)]
    assert rows[0].difference == pytest.approx(0.81 - 0.897)
    assert rows[0].note == "epoch: paper best test epoch, ours validation-selected val_balanced_accuracy"


def test_html_is_self_contained_with_one_png_per_cell(results, registry, capsys, monkeypatch, tmp_path):
    import base64
    from html.parser import HTMLParser

    class Images(HTMLParser):
        def __init__(self):
            super().__init__()
            self.images, self.links, self.open = [], [], []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "img":
                self.images.append(attrs)
            self.links += [v for k, v in attrs.items() if k in ("href", "src") and not v.startswith("data:")]

    monkeypatch.setenv("FERBENCH_RESULTS_DIR", str(results))
    assert cli("--format", "html", "--plots", str(tmp_path / "plots"), "--ci") == 0
    html = capsys.readouterr().out
    parser = Images()
    parser.feed(html)
    parser.close()
    cells = {(p, d, m) for p, d, m, *_ in FIXTURE}
    assert len(parser.images) == len(cells) and not parser.links
    assert "<figcaption>" not in html  # each figure carries its own title; a caption would repeat it
    for image in parser.images:
        assert base64.b64decode(image["src"].removeprefix("data:image/png;base64,"))[:8] == b"\x89PNG\r\n\x1a\n"
    assert {image["alt"].split(" — ")[0] for image in parser.images} == {f"{m} on {d}" for p, d, m in cells}
    assert "<strong>0.980 ± 0.010</strong><br><span class=\"ci\">[0.955, 1.000]</span>" in html and "Provenance" in html
    assert len(list((tmp_path / "plots").glob("*.png"))) == len(cells)
    assert (tmp_path / "plots" / "official_ckplus_dan.png").is_file()


def test_runs_on_superseded_splits_are_not_averaged(results):
    for repeat, acc in enumerate([0.1, 0.2, 0.3]):  # the same cell on an older copy of the data
        fake_run(results, "ckplus", "dan", repeat, 3, acc, acc, splits="s0", finished="0")
    summary = summarise(load_runs(results)).set_index(["protocol", "dataset", "model"])
    assert summary.loc[("official", "ckplus", "dan")].accuracy_mean == pytest.approx(0.98)
    assert summary.loc[("official", "ckplus", "dan")].superseded == 3
    assert "- Runs on older data or splits, not counted: dan on ckplus (official): 3" in render_markdown(report_of(results))


def test_runs_on_an_aligned_copy_get_their_own_row(results):
    folder = fake_run(results, "ckplus", "dan", 0, 1, 0.5, 0.5, splits="aligned")
    config_file = folder / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "aligned": "aligned_112-0123456789abcdef"}))
    summary = summarise(load_runs(results)).set_index(["protocol", "dataset", "model"])
    assert summary.loc[("official", "ckplus (aligned_112)", "dan")].n == 1
    assert summary.loc[("official", "ckplus", "dan")].n == 3


def test_registry_validates_published_numbers():
    with pytest.raises(FerbenchError, match=r"published.0.dataset: unknown dataset 'nosuch'"):
        config.parse(REGISTRY.replace('dataset = "rafdb"', 'dataset = "nosuch"'))
    with pytest.raises(FerbenchError, match=r"published.0.metric: 'war' is for video datasets"):
        config.parse(REGISTRY.replace('metric = "accuracy"', 'metric = "war"'))
    with pytest.raises(FerbenchError, match=r"published.0.value"):
        config.parse(REGISTRY.replace("value = 0.897", "value = 89.7"))
    with pytest.raises(FerbenchError, match=r"references.fer-crossval.colour: unknown key"):
        config.parse(REGISTRY.replace('std = "population"', 'std = "population"\ncolour = "red"'))


def test_repository_registry_records_paper_numbers_and_the_seed_table():
    cfg = config.load()
    assert {(p.model, p.dataset) for p in cfg.published} >= {("dan", "rafdb"), ("posterpp", "affectnet8"), ("dferclip", "mafw")}
    reference = cfg.references["fer-crossval"]
    assert reference.protocol == "crossval-compat" and reference.std == "population"
    for metric in ("accuracy", "balanced_accuracy"):
        table = reference.table(metric)
        assert set(table) == {"ckplus", "sfew", "rafdb", "ferplus", "fer2013", "expw"}
        assert all(len(row) == 7 for row in table.values())
    assert reference.accuracy["rafdb"]["lnsunet"] == (0.889, 0.006)


def test_a_model_reading_test_labels_is_named_beside_its_table_and_never_ranked_best(results):
    for repeat, acc in enumerate([0.999, 0.998, 0.997]):  # above every honest cell of the row
        folder = fake_run(results, "ckplus", "clivpfer-label-caption", repeat, 3, acc, acc)
        result_file = folder / "result.json"
        result_file.write_text(json.dumps({**json.loads(result_file.read_text()),
                                           "display": "clivpfer (label caption)", "test_label_input": True}))
    report = report_of(results, protocol="official")
    table = report.sections[0].tables[0]
    assert "clivpfer (label caption)" in table.models and "clivpfer-label-caption" not in table.models
    ckplus = dict(table.rows)["ckplus"]
    assert ckplus[table.models.index("dan")].best and not ckplus[table.models.index("clivpfer (label caption)")].best
    text = render_markdown(report)
    assert "clivpfer (label caption) takes each test sample's TRUE LABEL as input" in text
    assert "**0.980 ± 0.010**" in text  # dan's ckplus accuracy stays the row's best
    assert len(report_of(results, models=["clivpfer-label-caption"]).sections[0].tables[0].models) == 1


def test_cost_block_in_markdown_and_html(results, registry, capsys, monkeypatch):
    import json

    monkeypatch.setenv("FERBENCH_RESULTS_DIR", str(results))
    cost = dict(params_total=11_689_512, params_trainable=11_689_512, gflops=3.6354, inference_img_s=120.5,
                latency_ms=9.87, latency_batch=1, input_shape=[3, 224, 224], device="Test CPU")
    for path in results.glob("**/result.json"):
        if "killed" not in str(path):
            result = json.loads(path.read_text())
            path.write_text(json.dumps(dict(result, cost=cost)))
    assert cli("--cost") == 0
    out = capsys.readouterr().out
    assert "## Model cost" in out and "| dan | 224×224 | 11.69 | 11.69 | 3.64 | 120.5 | 9.9 | Test CPU |" in out
    assert cli("--format", "html", "--cost") == 0
    html = capsys.readouterr().out
    assert '<h2 id="cost">Model cost</h2>' in html and "<td>3.64</td>" in html
    assert cli() == 0 and "Model cost" not in capsys.readouterr().out
