"""Split protocols: what each one puts in train, val and test, and how the drawn indices are saved and reused."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pandas as pd
import pytest
import sklearn
from sklearn.model_selection import ShuffleSplit, train_test_split

from harness.data.fold_formulas import FORMULAS
from harness.data.protocols import Fold, make_folds, saved_folds, splits_path
from harness.errors import FerbenchError
from tests.conftest import SHARED

COLUMNS = ["path", "label", "native_label", "subject", "sequence", "split", "fold", "box", "face_id", "frames"]
CLASSES = ["anger", "happy", "sad"]
MANIFEST = "a" * 64


def make_table(n_subjects: int = 20, per_subject: int = 6, subjects: bool = True) -> pd.DataFrame:
    """Subject s shows two classes, three images each, so labels and subjects are entangled as in real data."""
    rows = []
    for s in range(n_subjects):
        for j in range(per_subject):
            label = CLASSES[(s + j // 3) % len(CLASSES)]
            subject = f"S{s:03d}" if subjects else None
            rows.append(dict(
                path=f"{label}/S{s:03d}_{j:03d}.png", label=label, native_label=label, subject=subject,
                sequence=None, split=None, fold=None, box=None, face_id=None, frames=None,
            ))
    return pd.DataFrame(rows, columns=COLUMNS)


def with_split(table: pd.DataFrame, val: bool = False) -> pd.DataFrame:
    cycle = ["train", "train", "train", "test"] + (["val"] if val else [])
    return table.assign(split=[cycle[i % len(cycle)] for i in range(len(table))])


def with_folds(table: pd.DataFrame, n_folds: int = 5) -> pd.DataFrame:
    return table.assign(fold=pd.array([1 + i % n_folds for i in range(len(table))], dtype="Int64"))


def subjects_of(table: pd.DataFrame, indices: list[int]) -> set[str]:
    return set(table["subject"].iloc[indices])


def check_disjoint(fold: Fold, n_samples: int) -> None:
    parts = [set(fold.train), set(fold.val), set(fold.test)]
    assert sum(map(len, parts)) == len(set().union(*parts))
    assert all(0 <= i < n_samples for part in parts for i in part)


# official


def test_official_uses_the_split_column_and_carves_a_stratified_validation_from_train():
    table = with_split(make_table())
    [fold] = make_folds(table, "official", 0.25)
    assert fold.test == [i for i, split in enumerate(table["split"]) if split == "test"]
    assert set(fold.train) | set(fold.val) == {i for i, split in enumerate(table["split"]) if split == "train"}
    check_disjoint(fold, len(table))
    assert len(fold.val) == math.ceil(0.25 * (len(fold.train) + len(fold.val)))
    val_share = table["label"].iloc[fold.val].value_counts(normalize=True)
    train_share = table["label"].iloc[fold.train + fold.val].value_counts(normalize=True)
    assert (val_share - train_share).abs().max() < 0.05
    assert make_folds(table, "official", 0.25) == [fold]


def test_official_takes_the_official_validation_split_when_the_dataset_has_one():
    table = with_split(make_table(), val=True)
    [fold] = make_folds(table, "official", 0.25)
    assert fold.val == [i for i, split in enumerate(table["split"]) if split == "val"]
    assert fold.train == [i for i, split in enumerate(table["split"]) if split == "train"]


def test_official_without_a_split_names_the_dataset_and_suggests_protocols_that_fit():
    with pytest.raises(FerbenchError) as err:
        make_folds(make_table(), "official", 0.1, dataset="kmufed")
    message = str(err.value)
    assert err.value.exit_code == 2 and "\n" not in message
    assert message.startswith("dataset 'kmufed': protocol 'official' needs an official train/test split")
    assert message.endswith("try --protocol subject-kfold or crossval-compat")


# subject-kfold


@pytest.mark.parametrize("val_fraction", [0.2, 0.1])
def test_subject_kfold_tests_every_sample_once_and_keeps_each_subject_on_one_side(val_fraction):
    table = make_table(n_subjects=23)
    folds = make_folds(table, "subject-kfold", val_fraction, folds=5)
    assert len(folds) == 5
    tested = sorted(i for fold in folds for i in fold.test)
    assert tested == list(range(len(table)))
    test_subjects = [subjects_of(table, fold.test) for fold in folds]
    assert sum(map(len, test_subjects)) == len(set().union(*test_subjects)) == 23
    for fold in folds:
        check_disjoint(fold, len(table))
        assert sorted(fold.train + fold.val + fold.test) == list(range(len(table)))
        train, val, test = (subjects_of(table, part) for part in (fold.train, fold.val, fold.test))
        assert val and not (train & val) and not (train & test) and not (val & test)
        assert abs(len(fold.val) / (len(fold.train) + len(fold.val)) - val_fraction) < 0.1
    assert make_folds(table, "subject-kfold", val_fraction, folds=5) == folds


def test_subject_kfold_stratifies_by_label():
    # Grouping by size alone (GroupKFold) would test only anger in one fold and only happy in the other.
    sizes = {"S0": ("anger", 5), "S1": ("anger", 3), "S2": ("happy", 4), "S3": ("happy", 4)}
    table = pd.concat([make_table(n_subjects=1, per_subject=n).assign(subject=s, label=label)
                       for s, (label, n) in sizes.items()], ignore_index=True)
    for fold in make_folds(table, "subject-kfold", 0.5, folds=2):
        assert set(table["label"].iloc[fold.test]) == {"anger", "happy"}


def test_subject_kfold_falls_back_to_group_kfold_when_no_class_can_be_stratified(tmp_path):
    table = make_table(n_subjects=6, per_subject=1).assign(label=[f"c{i}" for i in range(6)])
    _, folds = saved_folds(table, tmp_path, "tiny", "subject-kfold", MANIFEST, 0.2, folds=3)
    saved = json.loads(splits_path(tmp_path, "tiny", "subject-kfold", MANIFEST, 0.2, folds=3).read_text())
    assert saved["procedure"]["fold_splitter"] == "GroupKFold"
    assert sorted(i for fold in folds for i in fold.test) == list(range(6))


def test_subject_kfold_without_subject_ids_is_a_one_line_error_naming_the_dataset():
    table = with_split(make_table(subjects=False))
    with pytest.raises(FerbenchError) as err:
        make_folds(table, "subject-kfold", 0.1, dataset="rafdb")
    assert err.value.exit_code == 2
    assert str(err.value) == (
        f"dataset 'rafdb': protocol 'subject-kfold' needs a subject id for every sample, and {len(table)} of "
        f"{len(table)} have none; try --protocol official or crossval-compat"
    )


def test_subject_kfold_rejects_partial_subject_ids_and_too_few_subjects():
    table = make_table(n_subjects=4)
    table.loc[0, "subject"] = None
    with pytest.raises(FerbenchError, match="1 of 24 have none"):
        make_folds(table, "subject-kfold", 0.1)
    with pytest.raises(FerbenchError, match="needs at least 10 subjects for 10 folds, and it has 4"):
        make_folds(make_table(n_subjects=4), "subject-kfold", 0.1)


# official-folds


def test_official_folds_test_each_fold_value_and_validate_on_the_others():
    table = with_folds(make_table(), n_folds=5)
    folds = make_folds(table, "official-folds", 0.1)
    assert len(folds) == 5
    for value, fold in zip(range(1, 6), folds):
        assert fold.test == [i for i, f in enumerate(table["fold"]) if f == value]
        assert sorted(fold.train + fold.val) == [i for i, f in enumerate(table["fold"]) if f != value]
        assert len(fold.val) == math.ceil(0.1 * (len(fold.train) + len(fold.val)))


def test_official_folds_need_a_fold_for_every_sample():
    with pytest.raises(FerbenchError, match=r"needs an official fold for every sample \(column 'fold'\)") as err:
        make_folds(make_table(), "official-folds", 0.1, dataset="rafdb")
    assert err.value.exit_code == 2
    assert "try --protocol subject-kfold or crossval-compat" in str(err.value)


# crossval-compat


def test_crossval_compat_reproduces_fer_crossval_indices_exactly():
    table = with_split(make_table(n_subjects=17))
    file_names, labels = table["path"].to_numpy(), table["label"].to_numpy()
    expected = []
    for iteration, (train_val, test) in enumerate(
        ShuffleSplit(n_splits=10, test_size=0.2, random_state=42).split(file_names, labels)
    ):
        train, val = train_test_split(train_val, test_size=0.25, random_state=iteration)
        expected.append(Fold(train=sorted(train.tolist()), val=sorted(val.tolist()), test=sorted(test.tolist())))
    folds = make_folds(table, "crossval-compat", 0.1)
    assert folds == expected
    assert [(len(f.train), len(f.val), len(f.test)) for f in folds] == [(60, 21, 21)] * 10
    assert len(set(folds[0].test) & set(folds[1].test)) > 0


def test_crossval_compat_ignores_the_official_split():
    pooled = make_folds(make_table(n_subjects=17), "crossval-compat", 0.1)
    assert make_folds(with_split(make_table(n_subjects=17)), "crossval-compat", 0.1) == pooled


def test_crossval_compat_draws_the_variant_of_the_models_script_and_records_it(tmp_path):
    table = make_table(n_subjects=17)  # 102 rows: int(0.2·N) = 20 differs from ShuffleSplit's ceil(0.2·N) = 21
    dan = make_folds(table, "crossval-compat", 0.1, dataset="ckplus", model="dan")
    assert [(len(f.train), len(f.val), len(f.test)) for f in dan] == [(62, 20, 20)] * 10
    adadf = make_folds(table, "crossval-compat", 0.1, dataset="rafdb", model="adadf")
    assert [(len(f.train), len(f.val), len(f.test)) for f in adadf] == [(64, 17, 21)] * 10
    assert make_folds(table, "crossval-compat", 0.1, dataset="rafdb", model="dan") == make_folds(table, "crossval-compat", 0.1)
    path, _ = saved_folds(table, tmp_path, "ckplus", "crossval-compat", MANIFEST, 0.1, model="dan")
    procedure = json.loads(path.read_text())["procedure"]
    assert procedure["variant"] == "dan-tail" and procedure["script"] == "DAN/dan_ckplus_crossval.py"


@pytest.mark.parametrize("layout", ["ckplus-folders", "expw", "kmufed", "split-folders"])
def test_crossval_compat_refuses_layouts_other_than_fer_crossvals_label_files(layout):
    table = make_table(n_subjects=17)
    table.attrs["layout"] = layout
    with pytest.raises(FerbenchError) as err:
        make_folds(table, "crossval-compat", 0.1, dataset="ckplus", model="dan")
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == 2
    assert message.startswith("dataset 'ckplus': protocol 'crossval-compat' reproduces FER-crossval's indices, "
                              "which name images only in its own label files (ckplus: ckplus-crossval")
    assert f"this folder is layout '{layout}'" in message
    table.attrs["layout"] = "ckplus-crossval"
    assert len(make_folds(table, "crossval-compat", 0.1, dataset="ckplus", model="dan")) == 10
    table.attrs["notes"] = ["ckplus_labels.csv: left out 2 samples that are not among the classes of 'ckplus': "
                            "native label '9' ×2"]
    with pytest.raises(FerbenchError, match="which count every row of its label file, and the table left out 2"):
        make_folds(table, "crossval-compat", 0.1, dataset="ckplus", model="dan")


# photo-kfold


def multi_face_table(n_photos: int = 60) -> pd.DataFrame:
    """ExpW-like rows: photo p holds 1 + p % 3 labelled faces, each its own row with the photo's path."""
    rows = []
    for p in range(n_photos):
        for face in range(1 + p % 3):
            label = CLASSES[(p + face) % len(CLASSES)]
            rows.append(dict(path=f"image/origin/photo_{p:03d}.jpg", label=label, native_label=label, subject=None,
                             sequence=None, split=None, fold=None, box=(0, 20 * face, 10, 20 * face + 10),
                             face_id=face, frames=None))
    return pd.DataFrame(rows, columns=COLUMNS)


def test_photo_kfold_keeps_every_face_of_a_photo_on_one_side_and_tests_each_face_once():
    table = multi_face_table()
    folds = make_folds(table, "photo-kfold", 0.1, folds=5, dataset="expw")
    assert sorted(i for fold in folds for i in fold.test) == list(range(len(table)))
    for fold in folds:
        check_disjoint(fold, len(table))
        train, val, test = (set(table["path"].iloc[part]) for part in (fold.train, fold.val, fold.test))
        assert val and not (train & val) and not (train & test) and not (val & test)
        assert set(table["label"].iloc[fold.test]) == set(CLASSES)
    assert make_folds(table, "photo-kfold", 0.1, folds=5) == folds
    with pytest.raises(FerbenchError, match="needs the face id of every sample within its photo"):
        make_folds(make_table(), "photo-kfold", 0.1, folds=5, dataset="ckplus")


# upstream fold formulas


def formula_table(formula_name: str) -> pd.DataFrame:
    """A class-folder table with the upstream copy's class sizes, rows deliberately not in upstream order."""
    formula = FORMULAS[formula_name]
    rows = []
    for label, size in zip(reversed(formula.classes), reversed(formula.class_sizes)):
        for i in reversed(range(size)):
            rows.append(dict(path=f"{label}/img_{i:04d}.png", label=label, native_label=label, subject=None,
                             sequence=None, split=None, fold=None, box=None, face_id=None, frames=None))
    return pd.DataFrame(rows, columns=COLUMNS)


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_fold_formula_tests_the_upstream_blocks_mapped_by_path_and_counts_the_overlap(tmp_path, name):
    formula, table = FORMULAS[name], formula_table(name)
    path, folds = saved_folds(table, tmp_path, formula.dataset, name, MANIFEST, 0.1)
    upstream_order = [f"{c}/img_{i:04d}.png" for c, size in zip(formula.classes, formula.class_sizes) for i in range(size)]
    starts = [sum(formula.class_sizes[:c]) for c in range(len(formula.classes) + 1)]
    for number, fold in enumerate(folds, start=1):
        if number < 10:
            expected = {starts[c] + (number - 1) * b + k for c, b in enumerate(formula.blocks) for k in range(b)}
        else:
            expected = {starts[c + 1] - 1 - k for c, b in enumerate(formula.blocks) for k in range(b)}
        assert set(table["path"].iloc[fold.test]) == {upstream_order[p] for p in expected}
        assert sorted(fold.train + fold.val) == sorted(set(range(len(table))) - set(fold.test))
    procedure = json.loads(path.read_text())["procedure"]
    assert procedure["test_predictions"] == 10 * sum(formula.blocks) == sum(len(f.test) for f in folds)
    tested = pd.Series([i for f in folds for i in f.test]).value_counts()
    assert procedure["tested_twice_or_more"] == int((tested > 1).sum()) > 0
    assert procedure["never_tested"] == len(table) - len(tested) > 0
    assert procedure["sizes_match_upstream"] is True


def test_fold_formula_applies_only_to_its_dataset():
    with pytest.raises(FerbenchError, match="'clivp-folds' is kmufed's upstream fold formula and does not apply to 'ckplus'"):
        make_folds(formula_table("clivp-folds"), "clivp-folds", 0.1, dataset="ckplus")


# protocol names


def test_unknown_protocol_lists_the_valid_names():
    with pytest.raises(FerbenchError) as err:
        make_folds(make_table(), "random-split", 0.1)
    assert err.value.exit_code == 2
    assert str(err.value) == (
        "unknown protocol 'random-split'; valid: official, official-folds, subject-kfold, photo-kfold, "
        "crossval-compat, fer-pytorch-folds, clivp-folds"
    )


# saved split files


def test_split_file_records_the_procedure_and_is_reused_without_rewriting(tmp_path):
    table = make_table()
    path, folds = saved_folds(table, tmp_path, "ckplus", "subject-kfold", MANIFEST, 0.1, folds=5)
    assert path == tmp_path / "splits" / "ckplus" / f"subject-kfold-k5-val0.1-{MANIFEST[:16]}.json"
    saved = json.loads(path.read_text())
    assert saved["manifest"] == MANIFEST and saved["samples"] == len(table)
    assert saved["procedure"]["k"] == 5 and saved["procedure"]["fold_seed"] == 0
    assert saved["procedure"]["val_fraction"] == 0.1 and saved["procedure"]["sklearn"] == sklearn.__version__
    assert [Fold(**fold) for fold in saved["folds"]] == folds

    os.utime(path, ns=(10**18, 10**18))
    again_path, again = saved_folds(table, tmp_path, "ckplus", "subject-kfold", MANIFEST, 0.1, folds=5)
    assert (again_path, again) == (path, folds)
    assert path.stat().st_mtime_ns == 10**18


def test_a_changed_manifest_or_k_gets_a_new_file(tmp_path):
    table = make_table()
    first, _ = saved_folds(table, tmp_path, "ckplus", "subject-kfold", MANIFEST, 0.1, folds=5)
    changed, _ = saved_folds(table, tmp_path, "ckplus", "subject-kfold", "b" * 64, 0.1, folds=5)
    more_folds, _ = saved_folds(table, tmp_path, "ckplus", "subject-kfold", MANIFEST, 0.1, folds=4)
    assert len({first, changed, more_folds}) == 3 and all(p.is_file() for p in (first, changed, more_folds))
    assert json.loads(changed.read_text())["manifest"] == "b" * 64


def test_split_file_names_carry_only_the_parameters_that_shape_the_folds(tmp_path):
    hash16 = MANIFEST[:16]
    assert splits_path(tmp_path, "d", "official", MANIFEST, 0.1, folds=7).name == f"official-val0.1-{hash16}.json"
    assert splits_path(tmp_path, "d", "official-folds", MANIFEST, 0.2).name == f"official-folds-val0.2-{hash16}.json"
    assert splits_path(tmp_path, "d", "crossval-compat", MANIFEST, 0.2).name == f"crossval-compat-standard-{hash16}.json"
    assert (splits_path(tmp_path, "ckplus", "crossval-compat", MANIFEST, 0.2, model="dan").name
            == f"crossval-compat-dan-tail-{hash16}.json")
    assert splits_path(tmp_path, "d", "photo-kfold", MANIFEST, 0.1, folds=5).name == f"photo-kfold-k5-val0.1-{hash16}.json"


def test_a_saved_file_that_does_not_fit_the_table_is_a_clear_error(tmp_path):
    table = make_table()
    path, _ = saved_folds(table, tmp_path, "ckplus", "crossval-compat", MANIFEST, 0.1)
    smaller = table.iloc[: len(table) // 2]
    with pytest.raises(FerbenchError, match=re.escape(f"{path}: fold 0 has index")) as err:
        saved_folds(smaller, tmp_path, "ckplus", "crossval-compat", MANIFEST, 0.1)
    assert "out of range for the dataset's 60 samples; delete it to draw the splits again" in str(err.value)

    path.write_text('{"folds": [\n  {"train": [1,]}\n]}\n')
    with pytest.raises(FerbenchError, match=re.escape(f"{path}:2: not a valid split file")):
        saved_folds(table, tmp_path, "ckplus", "crossval-compat", MANIFEST, 0.1)


def test_a_saved_fold_with_a_sample_on_two_sides_is_rejected(tmp_path):
    table = with_split(make_table())
    path, _ = saved_folds(table, tmp_path, "rafdb", "official", MANIFEST, 0.1)
    saved = json.loads(path.read_text())
    saved["folds"][0]["val"].append(saved["folds"][0]["test"][0])
    path.write_text(json.dumps(saved))
    with pytest.raises(FerbenchError, match="fold 0 puts a sample in two of train, val and test"):
        saved_folds(table, tmp_path, "rafdb", "official", MANIFEST, 0.1)


def test_plan_call_without_k_still_works(tmp_path):
    table = with_split(make_table())
    path, folds = saved_folds(table, tmp_path, "rafdb", "official", MANIFEST, 0.1)
    assert path.name == f"official-val0.1-{MANIFEST[:16]}.json" and len(folds) == 1


# real CK+48


CKPLUS = SHARED / "datasets" / "CK+48"


def ckplus_table(root: Path) -> pd.DataFrame:
    rows = []
    for image in sorted(root.glob("*/*.png")):
        subject, sequence, _ = image.stem.split("_")
        rows.append(dict(
            path=image.relative_to(root).as_posix(), label=image.parent.name, native_label=image.parent.name,
            subject=subject, sequence=f"{subject}_{sequence}", split=None, fold=None, box=None, face_id=None,
            frames=None,
        ))
    return pd.DataFrame(rows, columns=COLUMNS)


@pytest.mark.skipif(not CKPLUS.is_dir(), reason="CK+48 is not in the shared datasets folder")
def test_ckplus48_subject_kfold_gives_ten_subject_disjoint_folds():
    table = ckplus_table(CKPLUS)
    assert len(table) == 981 and table["subject"].nunique() == 118
    folds = make_folds(table, "subject-kfold", 0.1, folds=10)
    assert len(folds) == 10
    assert sorted(i for fold in folds for i in fold.test) == list(range(981))
    test_subjects = [subjects_of(table, fold.test) for fold in folds]
    assert sum(map(len, test_subjects)) == 118
    for fold in folds:
        train, val, test = (subjects_of(table, part) for part in (fold.train, fold.val, fold.test))
        assert val and not (train & val) and not (train & test) and not (val & test)
        assert set(table["label"].iloc[fold.test]) == set(table["label"])
