"""Where an aligned copy is written and read: never a half dataset folder, and no --dataset-dir to repeat."""

import json
import shutil

import pytest

from harness.align.placement import align_command, align_target, run_source
from harness.errors import FerbenchError
from harness.run.store import complete_runs
from tests.conftest import cli


def test_default_place_is_inside_the_dataset_read_from_the_data_root(tmp_path):
    (tmp_path / "root" / "ckplus").mkdir(parents=True)
    expected = (tmp_path / "root" / "ckplus" / "aligned_112").resolve()
    assert align_target(tmp_path / "root", "ckplus", 112, None, None) == expected
    (tmp_path / "link").symlink_to(tmp_path / "root" / "ckplus")
    assert align_target(tmp_path / "root", "ckplus", 112, tmp_path / "link", None) == expected


def test_dataset_elsewhere_needs_out_and_no_half_folder_is_made(tmp_path):
    source = tmp_path / "CK+48"
    source.mkdir()
    with pytest.raises(FerbenchError) as refused:
        align_target(tmp_path / "root", "ckplus", 112, source, None)
    message = str(refused.value)
    assert f"--out {source.resolve()}/aligned_112" in message and "run --aligned PATH" in message
    with pytest.raises(FerbenchError, match="holding only crops"):
        align_target(tmp_path / "root", "ckplus", 112, source, tmp_path / "root" / "ckplus" / "aligned_112")
    assert not (tmp_path / "root").exists()
    assert align_target(tmp_path / "root", "ckplus", 112, source, source / "aligned_112") == (source / "aligned_112").resolve()


def test_run_source_reads_the_copy_of_the_folder_the_dataset_comes_from(tmp_path):
    source = tmp_path / "CK+48"
    (source / "aligned_112").mkdir(parents=True)
    assert run_source(tmp_path / "root", "ckplus", 112, source) == (source.resolve(), (source / "aligned_112").resolve())
    with pytest.raises(FerbenchError) as missing:
        run_source(tmp_path / "root", "ckplus", 224, source)
    assert f"ferbench align ckplus --size 224 --dataset-dir {source.resolve()}" in str(missing.value)
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    (copy / "align.json").write_text(json.dumps({"dataset": "ckplus", "source": str(source), "settings": {"size": 112}}))
    assert run_source(tmp_path / "root", "ckplus", copy, None) == (source, copy.resolve())
    assert align_command(copy) == f"ferbench align ckplus --size 112 --dataset-dir {source} --out {copy.resolve()}"
    with pytest.raises(FerbenchError, match="not of 'rafdb'"):
        run_source(tmp_path / "root", "rafdb", copy, None)
    with pytest.raises(FerbenchError, match="no align.json"):
        run_source(tmp_path / "root", "ckplus", tmp_path, None)


@pytest.mark.slow  # trains one tiny run
def test_align_elsewhere_then_run_without_repeating_dataset_dir(workspace, tiny_dataset, monkeypatch, capsys):
    source = workspace / "CK"
    shutil.copytree(tiny_dataset / "synthetic", source)
    data_root = workspace / "data"
    data_root.mkdir()
    monkeypatch.setenv("FERBENCH_DATA_ROOT", str(data_root))
    assert cli("align", "synthetic", "--dataset-dir", str(source), "--no-detect") == 2
    assert "--out" in capsys.readouterr().err and not (data_root / "synthetic").exists()
    copy = source / "aligned_112"
    assert cli("align", "synthetic", "--dataset-dir", str(source), "--out", str(copy), "--no-detect") == 0
    assert not (data_root / "synthetic").exists()
    assert cli("run", "-m", "baseline", "-d", "synthetic", "--repeats", "1", "--aligned", str(copy)) == 0
    (run,) = list(complete_runs(workspace / "results"))
    assert json.loads((run / "config.json").read_text())["aligned"].startswith("aligned_112-")
    assert cli("run", "-m", "baseline", "-d", "synthetic", "--repeats", "1", "--aligned", "112", "--dataset-dir", str(source)) == 0
    assert len(list(complete_runs(workspace / "results"))) == 1  # the same run: found complete, not trained again


def test_a_folder_holding_only_aligned_copies_is_named_as_such(tmp_path, capsys, monkeypatch):
    """What an older align left in <data-root>/<name>: `ferbench datasets` says what it is and what to do."""
    (tmp_path / "ckplus" / "aligned_112").mkdir(parents=True)
    monkeypatch.setenv("FERBENCH_DATA_ROOT", str(tmp_path))
    assert cli("datasets", "check", "ckplus") == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "holds only aligned copies (aligned_112), not dataset 'ckplus' itself" in out
