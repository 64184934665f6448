"""`ferbench splits export`: the saved split as `fold,split,row,path` CSV on stdout."""

from __future__ import annotations

import io
import json

import pandas as pd

from tests.data.fakes import write_fake
from tests.data.fer_crossval_fakes import N, ckplus
from tests.conftest import cli


def test_export_writes_the_saved_split_with_label_file_rows_and_relative_paths(tmp_path, capsys):
    data, results = tmp_path / "ck", tmp_path / "results"
    ckplus(data)
    args = ("--results-dir", str(results), "splits", "export", "ckplus", "--protocol", "crossval-compat",
            "--model", "dan", "--dataset-dir", str(data))
    assert cli(*args) == 0
    csv = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(csv.columns) == ["fold", "split", "row", "path"]
    [splits_file] = (results / "splits" / "ckplus").glob("crossval-compat-dan-tail-*.json")
    saved = json.loads(splits_file.read_text())
    assert saved["procedure"]["variant"] == "dan-tail"
    for number, fold in enumerate(saved["folds"]):
        for side in ("train", "val", "test"):
            rows = csv[(csv["fold"] == number) & (csv["split"] == side)]["row"].tolist()
            assert rows == fold[side]
    label_rows = pd.read_csv(data / "ckplus_labels.csv")["image_name"]
    by_row = csv.drop_duplicates("row").set_index("row")["path"].sort_index()
    assert by_row.tolist() == [f"ckplus_images/{name}" for name in label_rows] and len(by_row) == N
    assert cli(*args) == 0 and capsys.readouterr().out == csv.to_csv(index=False)


def test_crossval_compat_on_another_layout_is_a_one_line_error(tmp_path, capsys):
    write_fake("ckplus-folders", tmp_path / "ck")
    code = cli("--results-dir", str(tmp_path / "results"), "splits", "export", "ckplus", "--protocol",
               "crossval-compat", "--dataset-dir", str(tmp_path / "ck"))
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "protocol 'crossval-compat' reproduces FER-crossval's indices" in err and "layout 'ckplus-folders'" in err
