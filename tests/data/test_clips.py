"""Clip sampling must pick exactly the frames DFER-CLIP's own loader picks: checked against upstream's index
functions (when vendor/dferclip is fetched) with the same random draws, and against fixed known answers."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.data.clips import SEGMENTS, pickable, eval_indices, train_indices

UPSTREAM = Path(__file__).resolve().parents[2] / "vendor" / "dferclip"
FRAME_COUNTS = [*range(1, 70), 77, 95, 127, 128, 129, 300, 847]


@pytest.fixture(scope="module")
def upstream():
    """Upstream's `dataloader.video_dataloader`, imported from vendor/dferclip and then taken off sys.path."""
    if not (UPSTREAM / "dataloader" / "video_dataloader.py").is_file():
        pytest.skip("vendor/dferclip not fetched; run `ferbench fetch dferclip`")
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] == "dataloader"}
    sys.path.insert(0, str(UPSTREAM))
    try:
        module = importlib.import_module("dataloader.video_dataloader")
    finally:
        sys.path.remove(str(UPSTREAM))
        for name in [n for n in sys.modules if n.split(".")[0] == "dataloader"]:
            del sys.modules[name]
        sys.modules.update(saved)
    return module


def _dataset(upstream, segments=SEGMENTS):
    """A VideoDataset with only what its index functions read (no list file, no transform)."""
    dataset = object.__new__(upstream.VideoDataset)
    dataset.num_segments, dataset.duration = segments, 1
    return dataset


def _record(upstream, frames):
    return upstream.VideoRecord(["clip", str(frames), "0"])


@pytest.mark.parametrize("seed", range(6))
def test_training_indices_equal_upstreams_with_the_same_draws(upstream, monkeypatch, seed):
    ours, theirs = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    # upstream draws `randint(high, size=n)` from NumPy's global generator; feed it the draws ours makes
    monkeypatch.setattr(upstream, "randint", lambda high, size: torch.randint(high, (size,), generator=theirs).numpy())
    dataset = _dataset(upstream)
    for frames in FRAME_COUNTS:
        expected = dataset._get_train_indices(_record(upstream, frames))
        np.testing.assert_array_equal(train_indices(frames, SEGMENTS, ours), expected, err_msg=f"{frames} frames")


@pytest.mark.parametrize("segments", [16, 8, 3])
def test_test_indices_equal_upstreams(upstream, segments):
    dataset = _dataset(upstream, segments)
    for frames in FRAME_COUNTS:
        expected = dataset._get_test_indices(_record(upstream, frames))
        np.testing.assert_array_equal(eval_indices(frames, segments), expected, err_msg=f"{frames} frames")


def test_known_test_indices():
    assert eval_indices(32).tolist() == list(range(1, 32, 2))
    assert eval_indices(17).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16]
    assert eval_indices(77).tolist() == [2, 7, 12, 16, 21, 26, 31, 36, 40, 45, 50, 55, 60, 64, 69, 74]
    assert eval_indices(16).tolist() == list(range(16))
    assert eval_indices(5).tolist() == [0, 1, 2, 3] + [4] * 12
    assert eval_indices(1).tolist() == [0] * 16


def test_short_clips_repeat_their_last_frame_and_draw_nothing():
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    assert train_indices(10, 16, g).tolist() == list(range(10)) + [9] * 6
    assert train_indices(1, 16, g).tolist() == [0] * 16
    assert torch.equal(g.get_state(), state)


@pytest.mark.parametrize("frames", [16, 31, 33, 77, 400])
def test_training_indices_take_one_frame_per_equal_segment(frames):
    length = frames // SEGMENTS
    seen = np.zeros((SEGMENTS, length), dtype=bool)
    g = torch.Generator().manual_seed(1)
    for _ in range(300):
        idx = train_indices(frames, SEGMENTS, g)
        offsets = idx - np.arange(SEGMENTS) * length
        assert ((0 <= offsets) & (offsets < length)).all()
        seen[np.arange(SEGMENTS), offsets] = True
    assert seen.all() if length <= 5 else seen.mean() > 0.9  # every offset reachable, nothing beyond


def test_training_indices_are_reproducible_from_the_seed_and_vary_between_draws():
    a = [train_indices(77, 16, g).tolist() for g in [torch.Generator().manual_seed(3)] for _ in range(2)]
    b = [train_indices(77, 16, g).tolist() for g in [torch.Generator().manual_seed(3)] for _ in range(2)]
    assert a == b and a[0] != a[1]
    assert train_indices(77, 16, torch.Generator().manual_seed(0)).tolist() == \
        (np.arange(16) * 4 + torch.randint(4, (16,), generator=torch.Generator().manual_seed(0)).numpy()).tolist()


@pytest.mark.parametrize("frames", FRAME_COUNTS)
def test_pickable_holds_every_frame_any_sampling_returns_and_no_other(frames):
    kept = set(pickable(frames).tolist())
    length = frames // SEGMENTS
    reachable = set(eval_indices(frames).tolist())
    reachable |= set(range(SEGMENTS * length)) if length else set(train_indices(frames).tolist())
    assert kept == reachable and max(kept) < frames


def test_known_pickable_frames():
    assert pickable(20).tolist() == list(range(16)) + [16, 18, 19]  # train uses 0..15; test adds 16, 18 and 19
    assert pickable(7).tolist() == list(range(7))
    assert len(pickable(77)) == 64 + 3  # 74, 69 and 64 are the test frames past 4 * 16


def test_bad_counts_are_refused():
    with pytest.raises(ValueError):
        train_indices(0)
    with pytest.raises(ValueError):
        eval_indices(5, 0)
