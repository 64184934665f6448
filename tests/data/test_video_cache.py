"""The frame cache: the same pixels as decoding each frame directly, only the frames sampling can pick, built
once, resumable; and clip batches drawn from it with DFER-CLIP's sampling."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from harness import config as config_mod
from harness.data.clips import SEGMENTS, eval_indices, pickable, train_indices
from harness.data.images import decode
from harness.data.synth import VIDEO_DATASET, generate_video, video_classes
from harness.data.table import load_table, manifest_hash
from harness.data.video_cache import FrameCache, frame_cache_file, open_frame_cache
from harness.errors import FerbenchError

DATASET = config_mod.Dataset(name=VIDEO_DATASET, classes=video_classes("dfew"), layouts=("dfew",),
                             protocol="official-folds", folds=5, video=True)
SIZE = 20


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> tuple[Path, pd.DataFrame, str]:
    """35 clips of 3 to 40 frames drawn at 24 px, so the cache resizes and both sampling branches occur."""
    root = tmp_path_factory.mktemp("video-cache") / VIDEO_DATASET
    generate_video(root, "dfew", clips_per_class=5, frames=(3, 40), size=24, seed=0)
    table = load_table(root, DATASET)
    return root, table, manifest_hash(root, table)


def filled(file: Path) -> np.ndarray:
    return np.fromfile(file.with_suffix(".filled"), dtype=np.uint8)


def frame_file(root: Path, path: str, index: int) -> Path:
    return sorted((root / path).iterdir())[index]


def test_cached_frames_equal_direct_decoding_of_exactly_the_pickable_frames(clips, tmp_path):
    root, table, manifest = clips
    cache = open_frame_cache(tmp_path, DATASET, root, table, manifest, SIZE, workers=2)
    assert cache.path == frame_cache_file(tmp_path, VIDEO_DATASET, manifest, SIZE)
    kept = [pickable(int(n)) for n in table["frames"]]
    assert cache.frames.shape == (sum(map(len, kept)), 3, SIZE, SIZE) < (int(table["frames"].sum()), 3, SIZE, SIZE)
    assert cache.path.stat().st_size == cache.frames.shape[0] * 3 * SIZE * SIZE
    assert cache.decoded == len(table) and filled(cache.path).all()
    for clip, (path, indices) in enumerate(zip(table["path"], kept)):
        assert cache.starts[clip + 1] - cache.starts[clip] == len(indices)
        for index in indices:
            row = cache.rows(clip, np.array([index]))[0]
            assert np.array_equal(cache.frames[row], decode(frame_file(root, path, index), SIZE)), (path, index)
    sidecar = json.loads(cache.path.with_suffix(".json").read_text())
    assert sidecar["manifest"] == manifest and sidecar["count"] == len(table) and sidecar["segments"] == SEGMENTS


def test_evaluation_batches_hold_the_middle_frames_training_batches_the_seeded_tsn_frames(clips, tmp_path):
    root, table, manifest = clips
    cache = open_frame_cache(tmp_path, DATASET, root, table, manifest, SIZE, workers=2)
    picked = np.array([3, 0, 17, 3])
    evaluation = cache.sample(picked, training=False)
    assert evaluation.shape == (4, SEGMENTS, 3, SIZE, SIZE) and evaluation.dtype == np.uint8
    for b, clip in enumerate(picked):
        path, n = table["path"][clip], int(table["frames"][clip])
        for t, index in enumerate(eval_indices(n)):
            assert np.array_equal(evaluation[b, t], decode(frame_file(root, path, index), SIZE))
    ours, reference = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    training = cache.sample(picked, training=True, generator=ours)
    for b, clip in enumerate(picked):
        indices = train_indices(int(table["frames"][clip]), SEGMENTS, reference)
        assert np.array_equal(training[b], cache.frames[cache.rows(int(clip), indices)])
    again = cache.sample(picked, training=True, generator=torch.Generator().manual_seed(5))
    assert np.array_equal(training, again)
    long_clip = int(np.argmax(table["frames"].to_numpy()))
    draws = [cache.sample(np.array([long_clip]), True, ours) for _ in range(3)]
    assert not all(np.array_equal(draws[0], d) for d in draws[1:])


def test_a_frame_that_no_sampling_picks_is_not_there(clips, tmp_path):
    root, table, manifest = clips
    cache = open_frame_cache(tmp_path, DATASET, root, table, manifest, SIZE, workers=1)
    clip = int(np.flatnonzero(table["frames"].to_numpy() == table["frames"].max())[0])
    n = int(table["frames"][clip])
    missing = sorted(set(range(n)) - set(pickable(n).tolist()))
    assert missing  # e.g. a 40-frame clip: TSN uses 0..31, the test frames add 33, 36 and 38
    with pytest.raises(IndexError, match="not cached"):
        cache.rows(clip, np.array(missing[:1]))


def test_a_finished_cache_is_reused_without_decoding(clips, tmp_path):
    root, table, manifest = clips
    first = open_frame_cache(tmp_path, DATASET, root, table, manifest, SIZE, workers=1)
    stamps = {p: p.stat().st_mtime_ns for p in first.path.parent.iterdir() if p.suffix != ".lock"}
    second = open_frame_cache(tmp_path, DATASET, root, table, manifest, SIZE, workers=1)
    assert second.decoded == 0 and np.array_equal(first.frames, second.frames)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    other = open_frame_cache(tmp_path, DATASET, root, table, manifest, SIZE + 4, workers=1)
    assert other.decoded == len(table) and other.path != first.path


def test_an_interrupted_build_resumes_where_it_stopped(clips, tmp_path):
    root, table, manifest = clips
    reference = open_frame_cache(tmp_path / "reference", DATASET, root, table, manifest, SIZE, workers=1)

    def interrupt(done: int, total: int) -> None:
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        open_frame_cache(tmp_path, DATASET, root, table, manifest, SIZE, workers=2, progress=interrupt)
    kept = int(filled(frame_cache_file(tmp_path, VIDEO_DATASET, manifest, SIZE)).sum())
    assert 0 < kept < len(table)
    ticks = []
    resumed = open_frame_cache(tmp_path, DATASET, root, table, manifest, SIZE, workers=2,
                               progress=lambda done, total: ticks.append((done, total)))
    assert resumed.decoded == len(table) - kept and ticks[-1] == (len(table) - kept,) * 2
    assert np.array_equal(resumed.frames, reference.frames)


def test_a_stale_sidecar_means_a_fresh_build(clips, tmp_path):
    root, table, manifest = clips
    file = open_frame_cache(tmp_path, DATASET, root, table, manifest, SIZE, workers=1).path
    sidecar = json.loads(file.with_suffix(".json").read_text())
    file.with_suffix(".json").write_text(json.dumps({**sidecar, "format": 0}))
    assert open_frame_cache(tmp_path, DATASET, root, table, manifest, SIZE, workers=1).decoded == len(table)


def test_a_clip_whose_folder_lost_a_frame_is_named(clips, tmp_path):
    root, table, manifest = clips
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    victim = table["path"][4]
    frame_file(copy, victim, 0).unlink()
    with pytest.raises(FerbenchError, match=f"{victim}: holds .* frames but is listed with"):
        open_frame_cache(tmp_path, DATASET, copy, table, manifest, SIZE, workers=1)


def test_still_image_datasets_are_refused(clips, tmp_path):
    root, table, manifest = clips
    still = config_mod.Dataset(name="synthetic", classes=DATASET.classes, layouts=("split-folders",))
    with pytest.raises(FerbenchError, match="not a video dataset"):
        open_frame_cache(tmp_path, still, root, table, manifest, SIZE)


def test_frame_cache_type_is_what_the_loop_reads():
    assert {"frames", "counts", "starts", "segments"} <= set(FrameCache.__dataclass_fields__)
