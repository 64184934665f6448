"""The store is read defensively: a damaged run is named once and left out; every other run still renders."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.run.records import Unreadable, read_run
from harness.run.status import scan
from tests.report.conftest import FIXTURE, fake_run

DAMAGE = {
    "truncated": ("result.json", lambda text: text[: len(text) // 2], "not valid JSON"),
    "empty": ("result.json", lambda text: "", "not valid JSON"),
    "braces": ("result.json", lambda text: "{}", "accuracy: Field required"),
    "out of range": ("result.json", lambda text: text.replace('"accuracy": 0.99', '"accuracy": 7.5'),
                     "accuracy: Input should be less than or equal to 1"),
    "nan": ("result.json", lambda text: text.replace('"macro_f1": 0.95', '"macro_f1": NaN'), "macro_f1: Input should be"),
    "binary": ("config.json", lambda text: "\udcff", "not UTF-8 text"),
    "list": ("config.json", lambda text: "[1, 2]", "expected a JSON object, got list"),
    "negative seed": ("config.json", lambda text: text.replace('"seed": 0', '"seed": -4'), "seed: Input should be greater"),
    "marker": ("COMPLETE", lambda text: text.replace('"run_id": "', '"run_id": "x'), "differs from config.json"),
    "env": ("env.json", lambda text: text.replace('"ferbench_git_dirty": false', '"ferbench_git_dirty": "maybe"'),
            "ferbench_git_dirty: Input should be a valid boolean"),
}


def _damage(folder, name: str) -> None:
    file, edit, _ = DAMAGE[name]
    path = folder / file
    text = path.read_text()
    changed = edit(text)
    assert changed != text or name in ("empty",)
    path.write_bytes(changed.encode("utf-8", "surrogateescape"))


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_each_damage_is_one_named_reason(tmp_path, name):
    folder = fake_run(tmp_path, "ckplus", "dan", 0, 3, 0.99, 0.95)
    assert not isinstance(read_run(folder), Unreadable)
    _damage(folder, name)
    bad = read_run(folder)
    assert isinstance(bad, Unreadable) and bad.path.name == DAMAGE[name][0]
    assert DAMAGE[name][2] in bad.reason and "\n" not in bad.line, bad.line


def _store(tmp_path):
    results = tmp_path / "results"
    for protocol, dataset, model, requested, accs, baccs in FIXTURE:
        for repeat, (acc, bacc) in enumerate(zip(accs, baccs)):
            fake_run(results, dataset, model, repeat, requested, acc, bacc, protocol=protocol)
    folder = fake_run(results, "ckplus", "dan", 5, 3, 0.99, 0.95)
    _damage(folder, "out of range")
    empty = fake_run(results, "rafdb", "baseline", 7, 3, 0.5, 0.5)
    _damage(empty, "empty")
    return results, folder, empty


def test_report_leaves_damaged_runs_out_and_lists_them(tmp_path, monkeypatch, capsys):
    from tests.report.conftest import REGISTRY

    results, folder, empty = _store(tmp_path)
    (tmp_path / "benchmark.toml").write_text(REGISTRY)
    monkeypatch.setenv("FERBENCH_CONFIG", str(tmp_path / "benchmark.toml"))
    with pytest.raises(SystemExit) as info:
        main(["--results-dir", str(results), "report"])
    assert (info.value.code or 0) == 0
    out, err = capsys.readouterr()
    assert f"unreadable: {folder / 'result.json'}: accuracy: Input should be less than or equal to 1" in out
    assert f"unreadable: {empty / 'result.json'}: not valid JSON" in out and "Traceback" not in err
    ckplus = next(line for line in out.splitlines() if line.startswith("| ckplus |"))
    assert "0.980 ± 0.010" in ckplus and "2.9" not in ckplus  # dan: the three valid repeats only, 7.5 not averaged in


def test_status_lists_damaged_runs(tmp_path, capsys):
    results, folder, _ = _store(tmp_path)
    states = {state.folder: state for state in scan(results)}
    assert states[folder].state == "unreadable"
    with pytest.raises(SystemExit) as info:
        main(["--results-dir", str(results), "status"])
    assert (info.value.code or 0) == 0
    out = capsys.readouterr().out
    assert f"unreadable: {folder / 'result.json'}: accuracy" in out.replace("\n", "")


def test_a_valid_store_file_round_trips(tmp_path):
    folder = fake_run(tmp_path, "ckplus", "dan", 0, 3, 0.99, 0.95)
    record = read_run(folder)
    assert record.result.accuracy == 0.99 and record.config.model == "dan"
    assert json.loads((folder / "result.json").read_text())["accuracy"] == 0.99


@pytest.mark.parametrize("content, reason", [
    (b"\xff\xfe\x00garbage", "not UTF-8 text"),
    (b'{"folds": [', "not a valid split file"),
    (b"{}", "it holds no folds"),
])
def test_a_damaged_split_file_is_one_line(tiny_dataset, tmp_path, content, reason):
    from harness.config import parse
    from harness.data.protocols import saved_folds
    from harness.data.table import load_table, manifest_hash
    from harness.errors import FerbenchError
    from tests.conftest import TINY_TOML

    dataset = parse(TINY_TOML).dataset("synthetic")
    root = tiny_dataset / "synthetic"
    table = load_table(root, dataset)
    manifest = manifest_hash(root, table)
    path, _ = saved_folds(table, tmp_path, "synthetic", "official", manifest, 0.2)
    path.write_bytes(content)
    with pytest.raises(FerbenchError) as caught:
        saved_folds(table, tmp_path, "synthetic", "official", manifest, 0.2)
    assert str(caught.value).startswith(str(path)) and reason in str(caught.value) and "\n" not in str(caught.value)
