"""The decoded-image cache: same pixels as direct decoding, built once, resumable, safe with two builders."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.cli import main
from harness.config import Dataset
from harness.data.cache import cache_file, open_cache
from harness.data.images import decode, decode_sample
from harness.data.synth import CLASSES, generate
from harness.data.table import load_table, manifest_hash
from harness.errors import FerbenchError
from tests.conftest import REPO, child_env

SYNTHETIC = Dataset(name="synthetic", classes=CLASSES, layouts=("split-folders",))
SIZE = 40


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, pd.DataFrame, str]:
    """Synthetic RGB faces at 32 px plus one grey image, so the cache resizes and replicates channels."""
    root = tmp_path_factory.mktemp("cache-data") / "synthetic"
    generate(root, images_per_class=6, size=32, seed=0)
    grey = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    Image.fromarray(grey, mode="L").save(root / "train" / "happy" / "grey.png")
    table = load_table(root, SYNTHETIC)
    return root, table, manifest_hash(root, table)


def filled(file: Path) -> np.ndarray:
    return np.fromfile(file.with_suffix(".filled"), dtype=np.uint8)


def test_cache_rows_equal_direct_decoding(dataset, tmp_path):
    root, table, manifest = dataset
    cache = open_cache(tmp_path, SYNTHETIC, root, table, manifest, SIZE, workers=2)
    assert cache.path == cache_file(tmp_path, "synthetic", manifest, SIZE) == tmp_path / "cache" / "synthetic" / f"{manifest[:16]}-{SIZE}.u8"
    assert cache.decoded == len(table) and cache.images.shape == (len(table), 3, SIZE, SIZE)
    for i, path in enumerate(table["path"]):
        assert cache.images[i].tobytes() == decode(root / path, SIZE).tobytes(), path
    grey = cache.images[table.index[table["path"].str.endswith("grey.png")][0]]
    assert (grey[0] == grey[1]).all() and (grey[1] == grey[2]).all()
    sidecar = json.loads(cache.path.with_suffix(".json").read_text())
    assert sidecar["manifest"] == manifest and sidecar["count"] == len(table) and sidecar["size"] == SIZE
    assert filled(cache.path).all()


def test_a_finished_cache_is_reused_without_decoding(dataset, tmp_path):
    root, table, manifest = dataset
    first = open_cache(tmp_path, SYNTHETIC, root, table, manifest, SIZE, workers=1)
    stamps = {p: p.stat().st_mtime_ns for p in first.path.parent.iterdir() if p.suffix != ".lock"}
    second = open_cache(tmp_path, SYNTHETIC, root, table, manifest, SIZE, workers=1)
    assert second.decoded == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert np.array_equal(first.images, second.images)
    other_size = open_cache(tmp_path, SYNTHETIC, root, table, manifest, SIZE + 8, workers=1)
    assert other_size.decoded == len(table) and other_size.path != first.path


def test_an_interrupted_build_resumes_where_it_stopped(dataset, tmp_path):
    root, table, manifest = dataset

    def interrupt(done: int, total: int) -> None:
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        open_cache(tmp_path, SYNTHETIC, root, table, manifest, SIZE, workers=2, progress=interrupt)
    file = cache_file(tmp_path, "synthetic", manifest, SIZE)
    kept = int(filled(file).sum())
    assert 0 < kept < len(table)

    resumed = open_cache(tmp_path, SYNTHETIC, root, table, manifest, SIZE, workers=2)
    assert resumed.decoded == len(table) - kept
    for i, path in enumerate(table["path"]):
        assert np.array_equal(resumed.images[i], decode(root / path, SIZE)), path


def test_a_stale_sidecar_means_a_fresh_build(dataset, tmp_path):
    root, table, manifest = dataset
    file = open_cache(tmp_path, SYNTHETIC, root, table, manifest, SIZE, workers=1).path
    sidecar = json.loads(file.with_suffix(".json").read_text())
    file.with_suffix(".json").write_text(json.dumps({**sidecar, "format": 0}))
    assert open_cache(tmp_path, SYNTHETIC, root, table, manifest, SIZE, workers=1).decoded == len(table)


BUILDER = """
import json, sys, time
from pathlib import Path
from harness.cli import main
from harness.config import Dataset
from harness.data.cache import open_cache
from harness.data.synth import CLASSES
from harness.data.table import load_table, manifest_hash
root, results, start = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
dataset = Dataset(name="synthetic", classes=CLASSES, layouts=("split-folders",))
table = load_table(root, dataset)
manifest = manifest_hash(root, table)
time.sleep(max(0.0, start - time.time()))
print(json.dumps(open_cache(results, dataset, root, table, manifest, %d, workers=1).decoded))
""" % SIZE


def test_two_processes_building_at_once_share_one_build(dataset, tmp_path):
    root, table, manifest = dataset
    start = str(time.time() + 4)
    builders = [
        subprocess.Popen([sys.executable, "-c", BUILDER, str(root), str(tmp_path), start], cwd=REPO,
                         env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [builder.communicate(timeout=60) for builder in builders]
    assert [b.returncode for b in builders] == [0, 0], outputs
    assert sorted(json.loads(out) for out, _ in outputs) == [0, len(table)]
    cache = open_cache(tmp_path, SYNTHETIC, root, table, manifest, SIZE, workers=1)
    assert cache.decoded == 0
    for i, path in enumerate(table["path"]):
        assert np.array_equal(cache.images[i], decode(root / path, SIZE)), path


def test_a_face_box_is_cropped_before_resizing(dataset, tmp_path):
    root, table, manifest = dataset
    boxed = table.head(3).assign(box=[(0, 0, 16, 16), None, (8, 4, 30, 28)])
    cache = open_cache(tmp_path, SYNTHETIC, root, boxed, manifest, SIZE, workers=1)
    for i, (path, box) in enumerate(zip(boxed["path"], boxed["box"])):
        assert np.array_equal(cache.images[i], decode_sample(root, path, SIZE, box))
    assert not np.array_equal(cache.images[0], decode(root / boxed["path"][0], SIZE))


def test_a_corrupt_image_is_named_and_earlier_rows_are_kept(dataset, tmp_path):
    root, table, manifest = dataset
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    rows = pd.concat([table.head(40), pd.DataFrame({"path": ["../broken.png"]})], ignore_index=True)
    with pytest.raises(FerbenchError, match=r"broken\.png: cannot read image"):
        open_cache(tmp_path, SYNTHETIC, root, rows, manifest, SIZE, workers=1)
    assert filled(cache_file(tmp_path, "synthetic", manifest, SIZE))[:16].all()


def test_video_datasets_are_refused(dataset, tmp_path):
    root, table, manifest = dataset
    video = Dataset(name="dfew", classes=CLASSES, layouts=("split-folders",), video=True)
    with pytest.raises(FerbenchError, match="video"):
        open_cache(tmp_path, video, root, table, manifest, SIZE)


def test_a_run_on_a_corrupt_image_fails_with_the_file_named(workspace, tiny_dataset, tmp_path):
    copy = tmp_path / "broken-synthetic"
    subprocess.run(["cp", "-r", str(tiny_dataset / "synthetic"), str(copy)], check=True)
    victim = next((copy / "train" / "sad").iterdir())
    victim.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(SystemExit) as done:
        main(["run", "--model", "baseline", "--dataset", "synthetic", "--repeats", "1", "--dataset-dir", str(copy)])
    assert done.value.code == 1
    log = next((workspace / "results" / "synthetic").rglob("worker.log")).read_text()
    assert f"error: {victim}: cannot read image" in log
    assert "Traceback" not in log


def test_pixel_rows_of_a_csv_are_decoded_by_the_loaders_reader(tmp_path):
    root = tmp_path / "fer2013"
    root.mkdir()
    faces = np.random.default_rng(1).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    usages = ("Training", "PublicTest", "PrivateTest")
    lines = [f"{label},{' '.join(map(str, face.ravel()))},{usage}" for label, (face, usage) in enumerate(zip(faces, usages))]
    (root / "fer2013.csv").write_text("emotion,pixels,Usage\n" + "\n".join(lines) + "\n")
    fer2013 = Dataset(name="fer2013", classes=("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"),
                      layouts=("fer2013",))
    table = load_table(root, fer2013)
    assert table["path"].tolist() == ["fer2013.csv#2", "fer2013.csv#3", "fer2013.csv#4"]
    cache = open_cache(tmp_path / "results", fer2013, root, table, manifest_hash(root, table), SIZE, workers=1)
    for i, face in enumerate(faces):
        expected = np.asarray(Image.fromarray(face).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
        assert all(np.array_equal(cache.images[i, c], expected) for c in range(3))
