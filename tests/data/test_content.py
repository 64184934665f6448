"""Content-addressed data: a rewritten image changes the manifest, the split key, the cache key and the run
id; a cached row whose pixels were overwritten is decoded again with one warning, never trained on."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from harness.config import Dataset, parse
from harness.data import content
from harness.data.cache import open_cache
from harness.data.images import decode
from harness.data.synth import CLASSES, generate, generate_video, video_classes, VIDEO_DATASET
from harness.data.table import load_table, manifest_hash
from harness.data.video_cache import open_frame_cache
from harness.paths import Paths
from harness.run.plan import Request, grid
from tests.conftest import TINY_TOML

SYNTHETIC = Dataset(name="synthetic", classes=CLASSES, layouts=("split-folders",))


def rewrite_same_size(path: Path) -> None:
    """New pixels, same byte count and same mtime: what the size-only manifest missed."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    img = np.asarray(Image.open(path)).copy()
    img[:4] = 255 - img[:4]
    Image.fromarray(img).save(path)
    if path.stat().st_size != st.st_size:  # PNG re-encoding changed the length: flip raw bytes instead
        data[-20] ^= 0xFF
        path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_a_same_size_rewrite_changes_the_manifest_split_key_and_run_id(tiny_dataset, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    cfg = parse(TINY_TOML)
    paths = Paths(data_root=data, results=tmp_path / "results", vendor=tmp_path / "vendor", weights=tmp_path / "w")

    def planned():
        (job,) = grid(cfg, paths, Request(repeats=1), ["baseline"], ["synthetic"])[0]
        return job.manifest, job.splits_file, job.spec.run_id

    before = planned()
    hashed = []
    real = content.file_hash
    monkeypatch.setattr(content, "file_hash", lambda p: hashed.append(p) or real(p))
    assert planned() == before and hashed == []  # every file's hash came from the cache
    target = next((data / "synthetic" / "train" / "happy").glob("*.png"))
    rewrite_same_size(target)
    after = planned()
    assert hashed == [target]
    assert after[0] != before[0] and after[1] != before[1] and after[2] != before[2]
    from harness.data.cache import cache_file

    assert cache_file(paths.results, "synthetic", after[0], 32) != cache_file(paths.results, "synthetic", before[0], 32)


def test_a_changed_inode_is_rehashed(tmp_path, monkeypatch):
    root = tmp_path / "synthetic"
    generate(root, images_per_class=2, size=16, seed=0)
    table = load_table(root, SYNTHETIC)
    first = manifest_hash(root, table)
    target = root / table["path"][0]
    copy = target.with_suffix(".tmp")
    shutil.copy2(target, copy)  # same bytes, same mtime: only the inode (and ctime) differ
    os.replace(copy, target)
    hashed = []
    real = content.file_hash
    monkeypatch.setattr(content, "file_hash", lambda p: hashed.append(p) or real(p))
    assert manifest_hash(root, table) == first and hashed == [target]


def test_an_overwritten_cache_row_is_decoded_again_with_a_warning(tmp_path, capsys):
    root = tmp_path / "synthetic"
    generate(root, images_per_class=3, size=24, seed=1)
    table = load_table(root, SYNTHETIC)
    manifest = manifest_hash(root, table)
    cache = open_cache(tmp_path / "results", SYNTHETIC, root, table, manifest, 20, workers=1)
    pixels = np.memmap(cache.path, dtype=np.uint8, mode="r+", shape=cache.images.shape)
    pixels[4] = 0
    pixels[9, 1, 3, 3] ^= 1  # one value off by one bit is caught too
    pixels.flush()
    del pixels
    capsys.readouterr()
    again = open_cache(tmp_path / "results", SYNTHETIC, root, table, manifest, 20, workers=1)
    assert again.decoded == 2
    warning = capsys.readouterr().err.strip()
    assert warning == f"warning: {cache.path}: 2 cached row(s) do not match their checksum (row 4, 9); decoding them again"
    for row in (4, 9):
        assert again.images[row].tobytes() == decode(root / table["path"][row], 20).tobytes()
    assert open_cache(tmp_path / "results", SYNTHETIC, root, table, manifest, 20, workers=1).decoded == 0


def test_an_overwritten_cached_clip_is_decoded_again(tmp_path, capsys):
    dataset = Dataset(name=VIDEO_DATASET, classes=video_classes("dfew"), layouts=("dfew",), protocol="official-folds",
                      folds=5, video=True)
    root = tmp_path / VIDEO_DATASET
    generate_video(root, "dfew", clips_per_class=5, frames=(3, 8), size=16, seed=0)
    table = load_table(root, dataset)
    manifest = manifest_hash(root, table)
    cache = open_frame_cache(tmp_path / "results", dataset, root, table, manifest, 12, workers=1)
    clean = np.array(cache.frames[cache.starts[2]:cache.starts[3]])
    frames = np.memmap(cache.path, dtype=np.uint8, mode="r+", shape=cache.frames.shape)
    frames[cache.starts[2]] = 7
    frames.flush()
    del frames
    capsys.readouterr()
    again = open_frame_cache(tmp_path / "results", dataset, root, table, manifest, 12, workers=1)
    assert again.decoded == 1 and "1 cached clip(s) do not match their checksum (clip 2)" in capsys.readouterr().err
    assert np.array_equal(again.frames[again.starts[2]:again.starts[3]], clean)
