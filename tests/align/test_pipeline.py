"""`align_dataset` end to end on tiny datasets of real faces, noise and a corrupt file."""

import csv
import hashlib
import json
import os

import numpy as np
import pytest

from harness.align import aligned_table, align_dataset, manifest_hash, pipeline
from harness.align.crops import fallback, resized
from harness.align.manifest import COLUMNS, JOURNAL, MANIFEST, SETTINGS
from harness.data.images import load
from harness.data.table import load_table
from harness.errors import FerbenchError
from tests.align.conftest import FACES, correlation, noise, read_rgb, rotated, write_images
from tests.align.test_detect import aligned
from tests.data.fakes import fake_dataset, write_fake


class Counting:
    """The real detector, counting the images it is given; raises KeyboardInterrupt on call `interrupt_at`."""

    def __init__(self, inner, interrupt_at: int | None = None):
        self.inner, self.interrupt_at, self.calls, self.images = inner, interrupt_at, 0, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def detect(self, images):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        self.images += len(images)
        return self.inner.detect(images)


@pytest.fixture(scope="module")
def faces_root(tmp_path_factory, astronaut):
    """happy/astronaut.png, happy/turned.jpg (rotated, smaller), sad/corrupt.png, sad/noise.png."""
    return write_images(tmp_path_factory.mktemp("faces") / "faces", {
        "happy/astronaut.png": astronaut[::2, ::2],
        "happy/turned.jpg": rotated(astronaut, 20, 0.8),
        "sad/noise.png": noise(160),
        "sad/corrupt.png": b"\x89PNG\r\n\x1a\n this is not an image",
    })


def manifest_rows(out) -> dict[str, dict]:
    with open(out / MANIFEST, newline="") as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


def test_every_image_gets_a_status_and_the_crops_are_written(faces_root, tmp_path, detector):
    out = tmp_path / "aligned_112"
    summary = align_dataset(FACES, faces_root, out, detector=detector)
    rows = manifest_rows(out)
    assert {p: r["status"] for p, r in rows.items()} == {
        "happy/astronaut.png": "ok", "happy/turned.jpg": "ok", "sad/corrupt.png": "error",
        "sad/noise.png": "no-face-fallback",
    }
    assert summary.counts == {"ok": 2, "multi-face": 0, "no-face-fallback": 1, "skipped": 0, "error": 1}
    assert (summary.processed, summary.reused, summary.mode) == (4, 0, "detect")
    assert "sad/corrupt.png" in rows["sad/corrupt.png"]["reason"] and rows["sad/corrupt.png"]["output"] == ""
    assert list(next(csv.reader(open(out / MANIFEST)))) == list(COLUMNS)
    for path in ("happy/astronaut.png", "happy/turned.jpg", "sad/noise.png"):
        file = out / rows[path]["output"]
        assert read_rgb(file).shape == (112, 112, 3)
        assert hashlib.sha256(file.read_bytes()).hexdigest() == rows[path]["sha256"]
    assert rows["happy/turned.jpg"]["output"] == "happy/turned.png"
    astronaut = rows["happy/astronaut.png"]
    assert float(astronaut["score"]) > 0.99 and astronaut["faces"] == "1" and astronaut["search"] == "fast"
    assert 40 < float(astronaut["left_eye_x"]) < float(astronaut["right_eye_x"]) < 220
    assert correlation(read_rgb(out / "happy/turned.png"), read_rgb(out / "happy/astronaut.png")) > 0.9
    assert (read_rgb(out / "sad/noise.png") == fallback(noise(160), 112, None)).all()
    assert not (out / JOURNAL).exists()
    settings = json.loads((out / SETTINGS).read_text())
    assert settings["settings"]["size"] == 112 and settings["settings"]["mode"] == "detect"
    assert settings["dataset"] == "faces" and settings["layout"] == "class-folders"


def test_skip_leaves_faceless_images_out_and_the_aligned_table_follows(faces_root, tmp_path, detector):
    out = tmp_path / "aligned_224"
    summary = align_dataset(FACES, faces_root, out, size=224, policy="skip", detector=detector)
    assert summary.counts["skipped"] == 1 and summary.counts["error"] == 1
    assert manifest_rows(out)["sad/noise.png"]["status"] == "skipped" and not (out / "sad/noise.png").exists()
    table = load_table(faces_root, FACES)
    table.attrs["notes"] = ["earlier note"]
    read = aligned_table(table, out)
    assert read["path"].tolist() == ["happy/astronaut.png", "happy/turned.png"]
    assert read["label"].tolist() == ["happy", "happy"] and read["box"].isna().all()
    assert read.attrs["notes"][0] == "earlier note" and "error ×1, skipped ×1" in read.attrs["notes"][1]
    assert all(load(out, path).size == (224, 224) for path in read["path"])


def test_an_interrupted_run_resumes_without_redoing_finished_images(faces_root, tmp_path, detector, monkeypatch):
    monkeypatch.setattr(pipeline, "CHUNK", 1)
    out = tmp_path / "aligned_112"
    with pytest.raises(KeyboardInterrupt):
        align_dataset(FACES, faces_root, out, detector=Counting(detector, interrupt_at=2))
    assert (out / "happy/astronaut.png").is_file() and not (out / "happy/turned.png").exists()
    assert not (out / MANIFEST).exists() and len((out / JOURNAL).read_text().splitlines()) == 1
    before = (out / "happy/astronaut.png").stat().st_mtime_ns

    resumed = Counting(detector)
    summary = align_dataset(FACES, faces_root, out, detector=resumed)
    assert resumed.images == 2  # turned and noise; the corrupt file fails before detection
    assert (summary.processed, summary.reused) == (3, 1)
    assert summary.now.get("error") == 1 and sum(summary.now.values()) == summary.processed
    assert "1 unreadable (status error" in summary.line() and "3 image(s) aligned" not in summary.line()
    assert (out / "happy/astronaut.png").stat().st_mtime_ns == before
    assert len(manifest_rows(out)) == 4 and not (out / JOURNAL).exists()

    again = Counting(detector)
    summary = align_dataset(FACES, faces_root, out, detector=again)
    assert again.images == 0 and (summary.processed, summary.reused) == (1, 3)  # only the error is retried
    first = manifest_hash(out)
    align_dataset(FACES, faces_root, out, detector=detector)
    assert manifest_hash(out) == first


def test_other_settings_are_refused_unless_overwritten(faces_root, tmp_path, detector):
    out = tmp_path / "aligned"
    align_dataset(FACES, faces_root, out, detector=detector)
    first = manifest_hash(out)
    with pytest.raises(FerbenchError, match=r"policy fallback → skip.*--overwrite") as raised:
        align_dataset(FACES, faces_root, out, policy="skip", detector=detector)
    assert raised.value.exit_code == 2
    align_dataset(FACES, faces_root, out, policy="skip", overwrite=True, detector=detector)
    assert not (out / "sad/noise.png").exists() and (out / "happy/astronaut.png").is_file()
    assert manifest_hash(out) != first


def test_bad_requests_are_one_line_errors(faces_root, tmp_path, detector):
    with pytest.raises(FerbenchError, match="must not be written into the dataset folder"):
        align_dataset(FACES, faces_root, faces_root, detector=detector)
    with pytest.raises(FerbenchError, match="--size"):
        align_dataset(FACES, faces_root, tmp_path / "a", size=100, detector=detector)
    with pytest.raises(FerbenchError, match="--policy"):
        align_dataset(FACES, faces_root, tmp_path / "a", policy="drop", detector=detector)
    with pytest.raises(FerbenchError, match="video datasets are not aligned"):
        align_dataset(fake_dataset("dfew"), faces_root, tmp_path / "a")


def test_an_output_folder_that_cannot_be_made_is_a_clear_error(faces_root, tmp_path, detector):
    (tmp_path / "file").write_text("")
    with pytest.raises(FerbenchError, match=r"file/aligned_112: cannot write the aligned images there: Not a dir"):
        align_dataset(FACES, faces_root, tmp_path / "file" / "aligned_112", detector=detector)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_an_unwritable_output_folder_is_a_clear_error(faces_root, tmp_path, detector):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(FerbenchError, match=r"locked/aligned_112: cannot write the aligned images there"):
            align_dataset(FACES, faces_root, locked / "aligned_112", detector=detector)
    finally:
        locked.chmod(0o755)


def test_pre_cropped_releases_are_resized_unless_detection_is_asked_for(tmp_path, detector):
    root = tmp_path / "ckplus"
    write_fake("ckplus-folders", root)
    dataset = fake_dataset("ckplus-folders")
    summary = align_dataset(dataset, root, root / "aligned_112", detector=detector)
    rows = manifest_rows(root / "aligned_112")
    assert summary.mode == "resize" and summary.counts["ok"] == len(rows) == 42
    path, row = next(iter(rows.items()))
    assert row["mode"] == "resize" and row["score"] == ""
    expected = resized(np.asarray(load(root, path)), 112)
    assert (read_rgb(root / "aligned_112" / row["output"]) == expected).all()
    assert len(load_table(root, dataset)) == 42  # the aligned copy inside the dataset folder is not a class

    detected = align_dataset(dataset, root, tmp_path / "detected", detect=True, limit=5, detector=detector)
    assert detected.mode == "detect" and detected.processed == 5
    assert {r["mode"] for r in manifest_rows(tmp_path / "detected").values()} == {"detect"}


def test_pixel_rows_become_png_files_named_by_line(tmp_path, detector):
    root = tmp_path / "fer2013"
    expected = write_fake("fer2013", root)
    out = tmp_path / "aligned_112"
    align_dataset(fake_dataset("fer2013"), root, out, detector=detector)
    table = aligned_table(load_table(root, fake_dataset("fer2013")), out)
    assert len(table) == expected["count"]
    for (source, pixels), path in zip(expected["pixels"].items(), table["path"]):
        assert path == f"fer2013/{source.rpartition('#')[2]}.png"
        assert (read_rgb(out / path) == resized(np.repeat(pixels[..., None], 3, axis=2), 112)).all()


def test_each_labelled_expw_face_is_its_own_crop(tmp_path, detector, astronaut):
    """Two faces in one web image, the second with a green mark on its forehead; each label line's box picks its
    face."""
    left, right = astronaut, rotated(astronaut, 20, 0.9)
    lines = []
    for face_id, (half, dx) in enumerate(((left, 0), (right, 512))):
        found = detector.detect([half])[0]
        l, t, r, b = (int(v) for v in found.boxes[0])
        lines.append(f"pair.jpg {face_id} {t} {l + dx} {r + dx} {b} 0.9 3")
    eyes = detector.detect([right])[0].points[0][:2]
    x, y = (eyes.mean(axis=0) - [0, 0.6 * np.ptp(eyes[:, 0])]).astype(int)
    right[y - 5 : y + 5, x - 5 : x + 5] = (0, 255, 0)
    root = tmp_path / "expw"
    write_images(root, {"image/origin/pair.png": np.hstack([left, right])})
    lines = [line.replace("pair.jpg", "pair.png") for line in lines]
    (root / "label").mkdir()
    (root / "label/label.lst").write_text("\n".join(lines) + "\n")
    out = tmp_path / "aligned_112"
    summary = align_dataset(fake_dataset("expw"), root, out, detector=detector)
    assert summary.counts["ok"] == 2
    with open(out / MANIFEST, newline="") as handle:
        rows = {r["face_id"]: r for r in csv.DictReader(handle)}
    assert [rows["0"]["output"], rows["1"]["output"]] == ["image/origin/pair_face0.png", "image/origin/pair_face1.png"]
    green = [(read_rgb(out / rows[f]["output"]) == (0, 255, 0)).all(axis=2).sum() for f in ("0", "1")]
    assert green[0] == 0 and green[1] > 10
    assert correlation(read_rgb(out / rows["0"]["output"]), aligned(detector, left)[0]) > 0.95


def test_an_unfinished_set_cannot_be_read(faces_root, tmp_path, detector):
    out = tmp_path / "aligned_112"
    align_dataset(FACES, faces_root, out, limit=1, detector=detector)
    with pytest.raises(FerbenchError, match="3 samples of the dataset are not in the aligned set"):
        aligned_table(load_table(faces_root, FACES), out)
