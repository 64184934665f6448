"""`ferbench run --aligned SIZE` trains on the copy `ferbench align` made, and says so everywhere."""

import json
import shutil

from harness.run.store import complete_runs
from tests.conftest import cli


def test_run_on_aligned_copy(workspace, tiny_dataset, monkeypatch, capsys):
    shutil.copytree(tiny_dataset, workspace / "data")  # align writes into <data-root>/synthetic/aligned_112
    monkeypatch.setenv("FERBENCH_DATA_ROOT", str(workspace / "data"))
    assert cli("align", "synthetic", "--size", "112", "--no-detect") == 0
    assert (workspace / "data" / "synthetic" / "aligned_112" / "manifest.csv").is_file()
    assert cli("run", "--model", "baseline", "--dataset", "synthetic", "--repeats", "1", "--aligned", "112") == 0
    (run,) = list(complete_runs(workspace / "results"))
    config = json.loads((run / "config.json").read_text())
    env = json.loads((run / "env.json").read_text())
    assert config["aligned"].startswith("aligned_112-")
    assert env["aligned_manifest"].startswith(config["aligned"][-16:])
    assert env["aligned_dir"].endswith("synthetic/aligned_112")
    capsys.readouterr()
    assert cli("report") == 0
    assert "| synthetic (aligned_112) |" in capsys.readouterr().out


def test_aligned_copy_missing_is_a_clear_error(workspace, capsys):
    assert cli("run", "--model", "baseline", "--dataset", "synthetic", "--aligned", "224") != 0
    err = capsys.readouterr().err
    assert "aligned_224" in err
    assert "Traceback" not in err
