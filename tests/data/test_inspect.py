"""`ferbench datasets` counts and `ferbench datasets check` problems, on small generated datasets."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.config import Dataset, parse
from harness.data.inspection import (
    OVERVIEW_HEADER, UNREADABLE, check, kind_of, kind_rows, overview_rows, overviews, split_class_rows,
)
from harness.data.synth import CLASSES, generate
from harness.errors import FerbenchError
from tests.conftest import TINY_TOML

SYNTHETIC = Dataset(name="synthetic", classes=CLASSES, layouts=("split-folders",))


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inspect") / "synthetic"
    generate(root, images_per_class=4, size=32, seed=0)
    return root


@pytest.fixture
def damaged(clean, tmp_path) -> tuple[Path, Path, Path]:
    """A copy of `clean` with one corrupt PNG and one truncated JPEG."""
    root = tmp_path / "synthetic"
    shutil.copytree(clean, root)
    corrupt = next((root / "train" / "sad").glob("*.png"))
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    truncated = root / "test" / "happy" / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(truncated, quality=90)
    truncated.write_bytes(truncated.read_bytes()[:-200])
    return root, corrupt, truncated


def test_overview_counts_samples_per_split_and_class(clean, tmp_path):
    cfg = parse(TINY_TOML + '\n[datasets.rafdb]\nclasses = ["happy", "sad"]\nlayouts = ["class-folders"]\n')
    data_root = clean.parent
    rows = overview_rows(overviews(cfg, data_root))
    assert [row[0] for row in rows] == ["rafdb", "synthetic"]
    assert all(len(row) == len(OVERVIEW_HEADER) for row in rows)
    rafdb, synthetic = rows
    assert rafdb[1] == f"missing ({data_root / 'rafdb'})"
    assert synthetic[1:4] == ("present", "28", "train 21 · test 7")
    assert synthetic[4] == " · ".join(f"{name} 4" for name in CLASSES)
    assert synthetic[5] == "none"


def test_check_of_a_clean_dataset_finds_nothing(clean):
    report = check(SYNTHETIC, clean, workers=1)
    assert report.problems == [] and report.decoded == 28 and report.layout == "split-folders"
    header, rows = split_class_rows(report, CLASSES)
    assert header == ("class", "train", "test", "total")
    assert rows == [(name, "3", "1", "4") for name in CLASSES]


def test_check_finds_a_corrupt_png_and_a_truncated_jpeg(damaged):
    root, corrupt, truncated = damaged
    seen = []
    report = check(SYNTHETIC, root, workers=2, progress=lambda done, total: seen.append((done, total)))
    lines = sorted(p.line for p in report.problems)
    assert len(lines) == 2
    assert lines[0].startswith(f"{truncated}: cannot read image: image file is truncated")
    assert lines[1].startswith(f"{corrupt}: cannot read image")
    assert kind_rows(report) == [(UNREADABLE, "2")]
    assert seen[-1] == (29, 29)


def test_check_reports_listing_problems_with_decoding_ones(damaged):
    root, corrupt, _ = damaged
    (root / "train" / "bored").mkdir()
    report = check(SYNTHETIC, root, workers=1)
    assert dict(kind_rows(report)) == {UNREADABLE: "2", "folder is not a class": "1"}
    assert any(line.startswith(str(root / "train" / "bored")) for line in (p.line for p in report.problems))


def test_check_of_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FerbenchError, match="not found"):
        check(SYNTHETIC, tmp_path / "nowhere")


@pytest.mark.parametrize(
    "line, kind",
    [
        ("/d/EmoLabel/list.txt:7: label '9' out of range (expected one of 1–7)", "label out of range"),
        ("/d/labels.csv:12: expected 3 fields, found 2", "expected N fields, found N"),
        ("/d: not a layout of dataset 'rafdb'; expected split-folders: train/ and test/", "not a layout of dataset"),
        ("/d/fer2013.csv:5: pixels: expected 2304 space-separated values", "pixels: expected N space-separated values"),
    ],
)
def test_problem_kinds_drop_locations_and_specifics(line, kind):
    assert kind_of(line) == kind
