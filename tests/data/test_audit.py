"""`ferbench audit`: leaks found on generated data, each check on its own, and the CLI's exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.data.audit import NEAR_BITS, audit
from harness.data.protocols import Fold
from tests.conftest import SHARED, cli

COLUMNS = ["path", "label", "native_label", "subject", "sequence", "split", "fold", "box", "face_id", "frames"]
EXPW = ("anger", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def noise(path: Path, seed: int, size: int = 48) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def expw_aligned(root: Path, photos: int = 40) -> None:
    """FER-crossval's ExpW layout: photo p has 1 + p % 3 labelled faces sharing one aligned image."""
    lines = []
    for p in range(photos):
        name = f"web_{p:03d}.jpg"
        noise(root / "aligned_image" / name, p)
        for face in range(1 + p % 3):
            lines.append(f"{name} {face} {10 + 30 * face} 5 25 {30 + 30 * face} 0.9 {(p + 2 * face) % 7}")
    (root / "label").mkdir(parents=True)
    (root / "label" / "label.lst").write_text("".join(f"{line}\n" for line in lines))


def test_audit_flags_expw_crossval_compat_and_passes_the_photo_grouped_default(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    data, results = tmp_path / "expw", tmp_path / "results"
    expw_aligned(data)
    base = ("--results-dir", str(results), "audit", "expw", "--dataset-dir", str(data))
    assert cli(*base, "--protocol", "crossval-compat") == 1
    out = capsys.readouterr().out
    assert "protocol crossval-compat on expw leaks." in out
    assert "same photo (faces of one image file): fold " in out
    assert cli(*base) == 0
    out = capsys.readouterr().out
    assert "protocol photo-kfold on expw does not leak." in out
    # Faces of one photo share FER-crossval's one aligned crop but carry different labels: shown, not fatal.
    assert "data problem" in out
    assert re.search(r"conflicting labels \(same bytes and box\): aligned_image/(web_\d+\.jpg) \((\w+)\), "
                     r"aligned_image/\1 \((?!\2)\w+\)", out)


def table_of(paths: list[str], labels: list[str], **columns) -> pd.DataFrame:
    rows = {c: [None] * len(paths) for c in COLUMNS}
    rows.update(path=paths, label=labels, native_label=labels, **columns)
    return pd.DataFrame(rows, columns=COLUMNS)


def finding(result, prefix: str):
    return next(f for f in result.findings if f.check.startswith(prefix))


def test_each_check_finds_its_leak_and_only_across_sides(tmp_path):
    for i in range(6):
        noise(tmp_path / f"img{i}.png", 100 + i)
    (tmp_path / "copy.png").write_bytes((tmp_path / "img0.png").read_bytes())       # byte copy of img0
    shifted = np.asarray(Image.open(tmp_path / "img1.png")).astype(int) + 3        # brightness change of img1
    Image.fromarray(np.clip(shifted, 0, 255).astype(np.uint8)).save(tmp_path / "bright.png")
    paths = [f"img{i}.png" for i in range(6)] + ["copy.png", "bright.png"]
    labels = ["happy"] * 6 + ["sad", "happy"]                                         # the copy is labelled otherwise
    subjects = ["A", "A", "B", "B", "C", "C", "D", "E"]
    sequences = ["A1", "A2", "B1", "B1", "C1", "C2", "D1", "E1"]
    table = table_of(paths, labels, subject=subjects, sequence=sequences)
    leaky = Fold(train=[0, 1, 2, 4, 5], val=[3], test=[6, 7])
    result = audit("d", "p", tmp_path / "s.json", tmp_path, table, [leaky])
    assert finding(result, "byte-identical").groups == 1 and finding(result, "byte-identical").pairs["train–test"] == 1
    near = finding(result, "near-duplicate")
    assert near.groups == 1 and "img1.png (train), bright.png (test)" in near.examples[0]
    assert finding(result, "same subject").groups == 1 and finding(result, "same subject").pairs["train–val"] == 1
    assert finding(result, "same sequence").groups == 1
    assert finding(result, "conflicting").groups == 1 and not finding(result, "conflicting").leak
    assert result.leaks
    clean = Fold(train=[2, 3, 4, 5], val=[], test=[0, 1, 6, 7])
    result = audit("d", "p", tmp_path / "s.json", tmp_path, table, [clean])
    assert not result.leaks and all(f.groups == 0 for f in result.findings if f.leak)
    assert NEAR_BITS == 10


CKPLUS = SHARED / "datasets" / "CK+48"


@pytest.mark.skipif(not CKPLUS.is_dir(), reason="CK+48 is not in the shared datasets folder")
def test_ckplus48_subject_kfold_passes_and_fer_pytorch_folds_leaks_subjects(tmp_path, capsys):
    base = ("--results-dir", str(tmp_path), "audit", "ckplus", "--dataset-dir", str(CKPLUS))
    assert cli(*base) == 0
    assert cli(*base, "--protocol", "fer-pytorch-folds") == 1
    out = capsys.readouterr().out
    assert "protocol fer-pytorch-folds on ckplus leaks." in out and "same subject: fold " in out
