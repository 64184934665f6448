"""Inputs stay inside their roots: registry names are identifiers, samples resolve inside the dataset root,
and one file never carries two labels."""

from __future__ import annotations

import os

import pytest

from harness import config
from harness.data.table import scan
from harness.errors import FerbenchError
from tests.conftest import TINY_TOML
from tests.data.fakes import fake_dataset, write_fake


def test_every_registered_name_is_an_identifier():
    cfg = config.load()
    for section in ("upstreams", "models", "datasets", "recipes"):
        assert all(config.IDENTIFIER.fullmatch(name) for name in getattr(cfg, section)), section
    assert {"fer-pytorch", "synthetic-video"} <= set(cfg.upstreams) | set(cfg.datasets)


@pytest.mark.parametrize("section, name", [("datasets", "../../x"), ("datasets", "a/b"), ("models", "Baseline"),
                                           ("models", "-x"), ("datasets", ""), ("recipes", "../u")])
def test_a_name_that_is_not_an_identifier_is_refused_on_load(section, name):
    header = {"datasets": "[datasets.synthetic]", "models": "[models.baseline]"}.get(section)
    if header:
        toml = TINY_TOML.replace(header, f'[{section}."{name}"]').replace("[models.baseline.recipe]", f'[models."{name}".recipe]' if section == "models" else "[models.baseline.recipe]")
    else:
        toml = TINY_TOML + f'\n[recipes."{name}"]\noptimizer = "adam"\nlr = 0.1\nepochs = 1\n'
    with pytest.raises(FerbenchError) as caught:
        config.parse(toml)
    assert str(caught.value).startswith(f"benchmark.toml: {section}.{name}: not a name") and caught.value.exit_code == 2


def test_a_symlink_out_of_the_root_is_a_problem(tmp_path):
    root = tmp_path / "synthetic"
    expected = write_fake("split-folders", root)
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(next(root.rglob("*.png")).read_bytes())
    link = root / "train" / "happy" / "intruder.png"
    link.symlink_to(outside)
    table, problems = scan(root, fake_dataset("split-folders"))
    assert problems == [f"{link}: escapes the dataset root (it resolves to {outside})"]
    assert "train/happy/intruder.png" not in set(table["path"]) and len(table) == expected["count"]


def test_a_symlinked_folder_out_of_the_root_is_a_problem(tmp_path):
    root = tmp_path / "synthetic"
    write_fake("split-folders", root)
    elsewhere = tmp_path / "elsewhere"
    os.replace(root / "test" / "sad", elsewhere)
    (root / "test" / "sad").symlink_to(elsewhere, target_is_directory=True)
    _, problems = scan(root, fake_dataset("split-folders"))
    assert problems and all("escapes the dataset root" in p and str(root / "test" / "sad") in p for p in problems)


def test_a_symlink_inside_the_root_and_a_symlinked_root_are_fine(tmp_path):
    real = tmp_path / "real"
    expected = write_fake("split-folders", real)
    first = next((real / "train" / "happy").glob("*.png"))
    (real / "train" / "happy" / "alias.png").symlink_to(first)
    (tmp_path / "linked").symlink_to(real, target_is_directory=True)
    table, problems = scan(tmp_path / "linked", fake_dataset("split-folders"))
    assert problems == [] and len(table) == expected["count"] + 1


def test_dot_dot_in_a_label_file_is_printed_as_written(tmp_path):
    write_fake("ckplus-crossval", tmp_path)
    label_file = next(p for p in tmp_path.rglob("*.csv"))
    lines = label_file.read_text().splitlines()
    label_file.write_text("\n".join([*lines, "..\\..\\etc\\passwd.png,1"]) + "\n")
    _, problems = scan(tmp_path, fake_dataset("ckplus-crossval"))
    assert problems == [f"{label_file}:{len(lines) + 1}: path '..\\..\\etc\\passwd.png' escapes the dataset root"]


def test_one_file_with_two_labels_is_a_problem(tmp_path):
    write_fake("ckplus-crossval", tmp_path)
    label_file = next(p for p in tmp_path.rglob("*.csv"))
    lines = label_file.read_text().splitlines()
    name, label = lines[1].rsplit(",", 1)
    other = "2" if label != "2" else "3"
    label_file.write_text("\n".join([*lines, f"{name},{label}", f"{name},{other}"]) + "\n")
    table, problems = scan(tmp_path, fake_dataset("ckplus-crossval"))
    n = len(lines)
    (problem,) = problems
    assert problem.startswith(f"{label_file}:{n + 2}: '") and problem.endswith(
        f"{name}' is listed again with label '{other}' (label '{label}' at {label_file}:2)")
    assert len(table) == n  # the header is not a row; the same-label repeat is kept, the conflicting one is not
