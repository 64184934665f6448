"""Dataset folders may hold `ferbench align`'s `aligned_<size>/` copies; the folder layouts must not read them."""

import numpy as np

from harness.data.table import scan
from tests.align.conftest import FACES, write_images


def test_class_folders_ignore_aligned_copies_but_still_report_stray_folders(tmp_path):
    grey = np.full((8, 8, 3), 128, np.uint8)
    root = write_images(tmp_path / "faces", {
        "happy/a.png": grey, "sad/b.png": grey, "aligned_112/happy/a.png": grey, "aligned_224/sad/b.png": grey,
    })
    table, problems = scan(root, FACES)
    assert table["path"].tolist() == ["happy/a.png", "sad/b.png"] and problems == []
    (root / "aligned_copy").mkdir()
    _, problems = scan(root, FACES)
    assert len(problems) == 1 and problems[0].startswith(f"{root / 'aligned_copy'}: folder is not a class")
