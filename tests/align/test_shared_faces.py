"""The aligner on the real portraits and CK+48 frames of the shared data folder; skipped where it is absent."""

import csv
import shutil

import pytest

from harness import config
from harness.align import align_dataset
from harness.align.manifest import MANIFEST
from tests.align.conftest import FACES, correlation, read_rgb, rotated, write_images
from tests.conftest import SHARED

PORTRAITS = SHARED / "faces"
CK48 = SHARED / "datasets" / "CK+48"


@pytest.mark.skipif(not (PORTRAITS / "portrait-1.jpg").is_file(), reason=f"no portraits in {PORTRAITS}")
def test_real_portraits_align_whatever_their_angle(tmp_path, detector):
    root = tmp_path / "faces"
    for name, folder in (("portrait-1.jpg", "happy"), ("portrait-2.jpg", "sad")):
        (root / folder).mkdir(parents=True)
        shutil.copy(PORTRAITS / name, root / folder / name)
    write_images(root, {"happy/turned.png": rotated(read_rgb(PORTRAITS / "portrait-1.jpg"), -25, 0.8)})
    summary = align_dataset(FACES, root, tmp_path / "aligned_112", detector=detector)
    assert summary.counts["ok"] + summary.counts["multi-face"] == 3
    with open(tmp_path / "aligned_112" / MANIFEST, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert all(float(r["left_eye_x"]) < float(r["right_eye_x"]) for r in rows if r["path"] != "happy/turned.png")
    crops = {r["path"]: read_rgb(tmp_path / "aligned_112" / r["output"]) for r in rows}
    assert correlation(crops["happy/turned.png"][16:96, 16:96], crops["happy/portrait-1.jpg"][16:96, 16:96]) > 0.95


@pytest.mark.skipif(not CK48.is_dir(), reason=f"no CK+48 in {CK48}")
def test_real_ck48_frames_are_resized_by_default_and_detected_on_request(tmp_path, detector):
    ckplus = config.load().dataset("ckplus")
    resized = align_dataset(ckplus, CK48, tmp_path / "resized", limit=60, detector=detector)
    assert resized.mode == "resize" and resized.counts["ok"] == 60
    detected = align_dataset(ckplus, CK48, tmp_path / "detected", detect=True, limit=60, detector=detector)
    assert detected.mode == "detect" and detected.counts["ok"] + detected.counts["multi-face"] == 60
