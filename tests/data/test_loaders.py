import shutil
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from harness import config
from harness.data.loaders import LAYOUTS
from harness.data.loaders.fer2013 import read_pixels
from harness.data.loaders.ferplus import majority
from harness.data.table import COLUMNS, load_table, manifest_hash, scan
from harness.errors import FerbenchError
from tests.conftest import SHARED
from tests.data.fakes import CLUSTER_PREFIX, DATASETS, WRITERS, fake_dataset, image, write_fake

CKPLUS48 = SHARED / "datasets" / "CK+48"


def _counts(series: pd.Series) -> dict:
    return dict(Counter(None if pd.isna(v) else v for v in series))


def test_every_layout_has_a_fake_and_tree():
    assert set(WRITERS) == set(LAYOUTS)
    for name, layout in LAYOUTS.items():
        assert layout.description and layout.tree.startswith("<root>/"), name


@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_each_layout_loads_its_fake(tmp_path, layout):
    expected = write_fake(layout, tmp_path)
    dataset = fake_dataset(layout)
    table = load_table(tmp_path, dataset)

    assert list(table.columns) == COLUMNS
    assert len(table) == expected["count"]
    assert _counts(table["label"]) == expected["labels"]
    assert _counts(table["split"]) == expected["splits"]
    assert set(table["label"]) <= set(dataset.classes)
    assert (table["subject"].nunique() or None) == expected["subjects"]
    assert (_counts(table["fold"]) if expected["folds"] else None) == expected["folds"]
    for path in table["path"]:
        assert not path.startswith("/") and ".." not in path.split("/")
        if "#" not in path:
            assert (tmp_path / path).exists()
    assert table.attrs["layout"] == layout
    assert len(manifest_hash(tmp_path, table)) == 64


@pytest.mark.parametrize("layout", [l for l in sorted(WRITERS) if l in config.load().dataset(DATASETS[l]).layouts])
def test_the_layout_is_detected_among_the_datasets_accepted_layouts(tmp_path, layout):
    write_fake(layout, tmp_path)
    table, problems = scan(tmp_path, config.load().dataset(DATASETS[layout]))
    assert problems == [] and table.attrs["layout"] == layout


def test_rafdb_paths_labels_and_splits(tmp_path):
    write_fake("rafdb-aligned", tmp_path)
    row = load_table(tmp_path, fake_dataset("rafdb-aligned")).iloc[0]
    assert (row["path"], row["native_label"], row["label"], row["split"]) == \
        ("Image/aligned/train_00001_aligned.jpg", "1", "surprise", "train")


def test_expw_gives_one_sample_per_face_with_its_box(tmp_path):
    write_fake("expw", tmp_path)
    table = load_table(tmp_path, fake_dataset("expw"))
    faces = table[table["path"] == "image/origin/anger_web_0.jpg"]
    assert faces["face_id"].tolist() == [0, 1]
    assert faces["label"].tolist() == ["anger", "happy"]
    assert faces["box"].tolist() == [(2, 4, 18, 20), (2, 24, 18, 40)]   # top,left,right,bottom → left,top,right,bottom


def test_expw_aligned_crops_have_no_box_and_failures_are_noted(tmp_path):
    write_fake("expw-aligned", tmp_path)
    table = load_table(tmp_path, fake_dataset("expw-aligned"))
    assert table["box"].isna().all()
    assert any("no aligned image" in note for note in table.attrs["notes"])


@pytest.mark.parametrize("votes, winner", [
    ([7, 3, 0, 0, 0, 0, 0, 0, 0, 0], "neutral"),
    ([1, 3, 1, 1, 1, 1, 1, 1, 0, 0], "happiness"),   # single votes dropped: 3 of 3
    ([0, 4, 0, 4, 2, 0, 0, 0, 0, 0], None),          # 4 of 10 is no majority
    ([0, 5, 0, 5, 0, 0, 0, 0, 0, 0], None),          # exactly half is not more than half
    ([0, 4, 0, 0, 0, 0, 0, 0, 6, 0], "unknown"),
    ([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], None),
])
def test_ferplus_majority_rule(votes, winner):
    assert majority(votes) == winner


def test_ferplus_notes_what_the_majority_rule_leaves_out(tmp_path):
    write_fake("ferplus", tmp_path)
    notes = " | ".join(load_table(tmp_path, fake_dataset("ferplus")).attrs["notes"])
    assert "1 rows have no image name" in notes and "1 images have no majority label" in notes
    assert "native label 'unknown' ×1" in notes and "native label 'NF' ×1" in notes


def test_ferplus_images_may_sit_in_data(tmp_path):
    expected = write_fake("ferplus", tmp_path)
    (tmp_path / "data").mkdir()
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        shutil.move(tmp_path / folder, tmp_path / "data" / folder)
    table = load_table(tmp_path, fake_dataset("ferplus"))
    assert len(table) == expected["count"] and table["path"].str.startswith("data/FER2013").all()


def test_affectnet7_leaves_out_contempt_and_codes_8_to_10(tmp_path):
    expected = write_fake("affectnet", tmp_path)
    table = load_table(tmp_path, fake_dataset("affectnet", "affectnet7"))
    assert len(table) == expected["count"] - expected["labels"]["contempt"]
    assert "contempt" not in set(table["label"])
    assert "contempt ×3" in " ".join(table.attrs["notes"])


def test_affectnet_validation_csv_without_header(tmp_path):
    expected = write_fake("affectnet", tmp_path)
    validation = tmp_path / "Manually_Annotated_file_lists" / "validation.csv"
    validation.write_text("".join(validation.read_text().splitlines(keepends=True)[1:]))
    assert len(load_table(tmp_path, fake_dataset("affectnet"))) == expected["count"]


def test_ckplus_subject_and_sequence_come_from_the_file_name(tmp_path):
    write_fake("ckplus-folders", tmp_path)
    row = load_table(tmp_path, fake_dataset("ckplus-folders")).iloc[0]
    assert (row["path"], row["subject"], row["sequence"], row["label"]) == \
        ("anger/S010_001_00000015.png", "S010", "S010_001", "anger")


def test_kmufed_subjects_are_padded_and_byte_duplicates_left_out(tmp_path):
    write_fake("kmufed", tmp_path)
    table = load_table(tmp_path, fake_dataset("kmufed"))
    assert "1_AN_mr_001.jpg" not in set(table["path"])
    assert set(table["subject"]) == {"01", "02", "03"}
    assert table.loc[table["path"] == "01_AN_mr_001.jpg", "sequence"].item() == "01_AN_mr"
    assert "1_AN_mr_001.jpg = 01_AN_mr_001.jpg" in table.attrs["notes"][0]


def test_sfew_frames_ignore_an_aligned_faces_folder_beside_the_classes(tmp_path):
    expected = write_fake("sfew", tmp_path)
    image(tmp_path / "Train" / "Train_Aligned_Faces" / "Angry" / "aligned.png")
    assert len(load_table(tmp_path, fake_dataset("sfew"))) == expected["count"]


@pytest.mark.parametrize("layout", ["dfew", "ferv39k", "mafw"])
def test_video_lists_with_absolute_cluster_paths_load_like_relative_ones(tmp_path, layout):
    write_fake(layout, tmp_path / "rel")
    expected = write_fake(layout, tmp_path / "abs", absolute=True)
    assert CLUSTER_PREFIX in (tmp_path / "abs" / expected["label_file"]).read_text()
    relative = load_table(tmp_path / "rel", fake_dataset(layout))
    absolute = load_table(tmp_path / "abs", fake_dataset(layout))
    pd.testing.assert_frame_equal(relative, absolute)
    assert relative["frames"].isin([2, 3]).all()


def test_video_manifest_uses_frame_counts(tmp_path):
    write_fake("dfew", tmp_path)
    dataset = fake_dataset("dfew")
    before = manifest_hash(tmp_path, load_table(tmp_path, dataset))
    table = load_table(tmp_path, dataset)
    assert manifest_hash(tmp_path, table) == before
    table.loc[0, "frames"] = 99
    assert manifest_hash(tmp_path, table) != before


def test_read_pixels_returns_the_written_rows(tmp_path):
    expected = write_fake("fer2013", tmp_path)
    table = load_table(tmp_path, fake_dataset("fer2013"))
    assert set(table["path"]) == set(expected["pixels"])
    for path, pixels in expected["pixels"].items():
        got = read_pixels(tmp_path, path)
        assert got.dtype == np.uint8 and got.shape == (48, 48)
        np.testing.assert_array_equal(got, pixels)
    with pytest.raises(FerbenchError, match=r"fer2013\.csv:1: no pixel row there"):
        read_pixels(tmp_path, "fer2013.csv#1")


def test_manifest_changes_with_a_label_or_a_file_size(tmp_path):
    write_fake("rafdb-aligned", tmp_path)
    dataset = fake_dataset("rafdb-aligned")
    table = load_table(tmp_path, dataset)
    before = manifest_hash(tmp_path, table)
    assert manifest_hash(tmp_path, load_table(tmp_path, dataset)) == before
    relabelled = table.copy()
    relabelled.loc[0, "label"] = "happy"
    assert manifest_hash(tmp_path, relabelled) != before
    (tmp_path / table["path"][0]).write_bytes(b"different size")
    assert manifest_hash(tmp_path, table) != before


# ---- bad input -------------------------------------------------------------------------------------------------

AFFECTNET_ROW = '{path},1,2,30,30,"1;2",{label},0.1,0.2'
BAD_LINES = {
    # layout: {kind: line appended to the label file}
    "rafdb-aligned": dict(malformed="train_09999.jpg", out_of_range="train_00001.jpg 8", missing="train_09999.jpg 1",
                          escapes="../train_00001.jpg 1", absolute="/etc/train_00001.jpg 1"),
    "expw": dict(malformed="anger_web_0.jpg 0 4 2", out_of_range="anger_web_0.jpg 2 4 2 18 20 0.9 7",
                 missing="gone.jpg 0 4 2 18 20 0.9 1", escapes="../anger_web_0.jpg 0 4 2 18 20 0.9 1",
                 absolute="/tmp/x.jpg 0 4 2 18 20 0.9 1"),
    "ferplus-crossval": dict(malformed="fer0000001.png", out_of_range="fer0000001.png,8", missing="gone.png,1",
                             escapes="../fer0000001.png,1", absolute="/fer0000001.png,1"),
    "ckplus-crossval": dict(malformed="image_000000.png,1,2", out_of_range="image_000000.png,7",
                            missing="gone.png,1", escapes="../image_000000.png,1", absolute="/image.png,1"),
    "sfew-crossval": dict(malformed="image_000000.png", out_of_range="image_000000.png,-1", missing="gone.png,1",
                          escapes="../../image_000000.png,1", absolute="C:/image.png,1"),
    "affectnet": dict(malformed="100/train000.jpg,1,2",
                      out_of_range=AFFECTNET_ROW.format(path="100/train000.jpg", label=11),
                      missing=AFFECTNET_ROW.format(path="100/gone.jpg", label=1),
                      escapes=AFFECTNET_ROW.format(path="../100/train000.jpg", label=1),
                      absolute=AFFECTNET_ROW.format(path="/100/train000.jpg", label=1)),
    "fer2013": dict(malformed="0,1 2", out_of_range="7," + " ".join(["1"] * 2304) + ",Training",
                    pixels="0,1 2 3,Training", usage="0," + " ".join(["1"] * 2304) + ",Everything"),
    "ferplus": dict(malformed="Training,fer0000001.png", usage="Everything,fer0000001.png,10,0,0,0,0,0,0,0,0,0",
                    votes="Training,fer0000001.png,ten,0,0,0,0,0,0,0,0,0",
                    missing="Training,gone.png,10,0,0,0,0,0,0,0,0,0",
                    escapes="Training,../fer0000001.png,10,0,0,0,0,0,0,0,0,0"),
}
REASONS = dict(malformed="expected", out_of_range="out of range", missing="is missing", pixels="pixels", usage="Usage",
               votes="votes", escapes="escapes the dataset root", absolute="escapes the dataset root")


@pytest.mark.parametrize("layout", sorted(BAD_LINES))
def test_every_bad_line_is_reported_with_its_line_and_the_rest_still_loads(tmp_path, layout):
    expected = write_fake(layout, tmp_path)
    label_file = tmp_path / expected["label_file"]
    first = len(label_file.read_text().splitlines()) + 1
    kinds = list(BAD_LINES[layout])
    with label_file.open("a") as handle:
        handle.writelines(f"{BAD_LINES[layout][kind]}\n" for kind in kinds)

    table, problems = scan(tmp_path, fake_dataset(layout))

    assert len(problems) == len(kinds), problems
    for offset, (kind, problem) in enumerate(zip(kinds, problems)):
        assert problem.startswith(f"{label_file}:{first + offset}: "), problem
        assert REASONS[kind] in problem, (kind, problem)
    assert len(table) == expected["count"]


def test_load_table_raises_one_error_summarising_all_problems(tmp_path):
    expected = write_fake("rafdb-aligned", tmp_path)
    with (tmp_path / expected["label_file"]).open("a") as handle:
        handle.writelines(f"train_0999{i}.jpg 9\n" for i in range(5))
    with pytest.raises(FerbenchError) as err:
        load_table(tmp_path, fake_dataset("rafdb-aligned"))
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == 1
    assert "has 5 problems" in message and "… 2 more" in message
    assert message.count("out of range") == 3 and f"ferbench datasets check rafdb --dataset-dir {tmp_path}`" in message


def test_missing_root_is_a_problem(tmp_path):
    table, problems = scan(tmp_path / "nowhere", fake_dataset("rafdb-aligned"))
    assert table.empty and list(table.columns) == COLUMNS
    assert problems == [f"{tmp_path / 'nowhere'}: dataset 'rafdb' not found (give --dataset-dir or --data-root)"]
    with pytest.raises(FerbenchError, match="not found"):
        load_table(tmp_path / "nowhere", fake_dataset("rafdb-aligned"))


def test_an_undetected_layout_names_the_files_each_accepted_layout_expects(tmp_path):
    (tmp_path / "Image").mkdir()
    _, problems = scan(tmp_path, config.load().dataset("rafdb"))
    assert len(problems) == 1
    assert "EmoLabel/list_patition_label.txt" in problems[0] and "Image/aligned/" in problems[0]
    assert "Image/original/" in problems[0] and "rafdb-aligned:" in problems[0] and "rafdb-original:" in problems[0]


def test_a_missing_second_label_file_is_a_problem(tmp_path):
    write_fake("affectnet", tmp_path)
    validation = tmp_path / "Manually_Annotated_file_lists" / "validation.csv"
    validation.unlink()
    _, problems = scan(tmp_path, fake_dataset("affectnet"))
    assert problems == [f"{validation}: label file is missing"]


def test_a_header_without_the_needed_columns_is_a_problem(tmp_path):
    write_fake("ckplus-crossval", tmp_path)
    labels = tmp_path / "ckplus_labels.csv"
    labels.write_text(labels.read_text().replace("image_name,label", "file,emotion", 1))
    _, problems = scan(tmp_path, fake_dataset("ckplus-crossval"))
    assert problems == [f"{labels}:1: missing column(s) image_name, label (header: file, emotion)"]


def test_unknown_layout_in_the_registry_is_a_usage_error(tmp_path):
    dataset = fake_dataset("rafdb-aligned").model_copy(update={"layouts": ("nope",)})
    with pytest.raises(FerbenchError, match="unknown layout 'nope'") as err:
        scan(tmp_path, dataset)
    assert err.value.exit_code == 2


def test_folder_that_is_not_a_class_and_unreadable_names_are_problems(tmp_path):
    write_fake("ckplus-folders", tmp_path)
    image(tmp_path / "anger" / "not_a_ck_name.png")
    image(tmp_path / "neutral" / "S010_001_00000001.png")
    _, problems = scan(tmp_path, fake_dataset("ckplus-folders"))
    assert len(problems) == 2
    assert any(p.startswith(f"{tmp_path / 'anger' / 'not_a_ck_name.png'}: cannot read subject") for p in problems)
    assert any(p.startswith(f"{tmp_path / 'neutral'}: folder is not a class") for p in problems)


def test_kmufed_unknown_code_is_out_of_range(tmp_path):
    write_fake("kmufed", tmp_path)
    image(tmp_path / "04_NE_xx_001.jpg")
    _, problems = scan(tmp_path, fake_dataset("kmufed"))
    assert problems == [
        f"{tmp_path / '04_NE_xx_001.jpg'}: label 'NE' out of range (expected one of AN, DI, FE, HA, SA, SU)"]


def test_video_list_problems(tmp_path):
    expected = write_fake("dfew", tmp_path)
    lists = tmp_path / "annotation"
    (lists / "DFEW_set_3_train.txt").unlink()
    with (lists / "DFEW_set_1_test.txt").open("a") as handle:
        handle.write("DFEW_Frame_Face/00002 3 1\n")            # also in set 2's test list
        handle.write("DFEW_Frame_Face/00099 2 0\n")            # no frame folder
        handle.write("/elsewhere/clips/00100 2 0\n")           # absolute, without DFEW_Frame_Face/
        handle.write("DFEW_Frame_Face/00003 2\n")              # malformed
    (tmp_path / "DFEW_Frame_Face" / "00001" / "00002.jpg").unlink()

    table, problems = scan(tmp_path, fake_dataset("dfew"))

    text = "\n".join(problems)
    assert f"{lists / 'DFEW_set_3_train.txt'}: label file is missing" in problems
    assert "'DFEW_Frame_Face/00002' is in the test lists of sets 1 and 2" in text
    assert "frame folder 'DFEW_Frame_Face/00099' is missing" in text
    assert "path '/elsewhere/clips/00100' escapes the dataset root" in text
    assert "expected '<frame folder> <frame count> <label>', found 2 fields" in text
    assert "'DFEW_Frame_Face/00001' is listed with 2 frames but holds 1" in text
    assert len(problems) == 6
    assert len(table) == expected["count"] - 2


@pytest.mark.skipif(not CKPLUS48.is_dir(), reason="needs ../shared/datasets/CK+48 (real CK+48 images)")
def test_real_ckplus48_loads_as_ckplus():
    table = load_table(CKPLUS48, config.load().dataset("ckplus"))
    assert table.attrs["layout"] == "ckplus-folders"
    assert len(table) == 981
    assert table["label"].value_counts().to_dict() == dict(
        anger=135, contempt=54, disgust=177, fear=75, happy=207, sad=84, surprise=249)
    assert table["subject"].nunique() == 118 and table["sequence"].nunique() == 327
    assert table.loc[table["native_label"] == "sadness", "label"].eq("sad").all()


def test_read_pixels_reports_only_the_bad_row_asked_for(tmp_path):
    good = " ".join(["7"] * 2304)
    (tmp_path / "fer2013.csv").write_text(
        f"emotion,pixels,Usage\n0,{good},Training\n0,{' '.join(['300'] * 2304)},Training\n")
    assert read_pixels(tmp_path, "fer2013.csv#2").max() == 7
    with pytest.raises(FerbenchError, match=r"fer2013\.csv:3: pixels: expected 2304 values from 0 to 255"):
        read_pixels(tmp_path, "fer2013.csv#3")
