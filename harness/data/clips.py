"""Which frames of a clip a video model sees: DFER-CLIP's segment sampling, as pure functions.

DFER-CLIP (`dataloader/video_dataloader.py`, called from `main.py` with `num_segments=16, duration=1`) cuts a
clip of n frames into 16 equal segments and takes one frame from each:

- training (TSN): segment length `n // 16`; frame `k * length + r_k` with `r_k` uniform in [0, length);
  the last `n % 16` frames are never picked;
- testing: the frame in the middle of each of 16 equal real-valued segments, `int(n/32 + k*n/16)`;
- a clip of at most 16 frames (training: fewer than 16) is every frame once, then its last frame repeated.

Frame indices count into the clip's frame files sorted by name, as upstream's sorted `glob` does.
Upstream draws its offsets from NumPy's global generator; here they come from the run's seeded torch
generator, so a run's clips are reproducible from its seed alone.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

SEGMENTS = 16
"""DFER-CLIP's `num_segments`; its `duration` (consecutive frames per segment) is 1 and is not modelled."""


def _check(frames: int, segments: int) -> None:
    if frames < 1 or segments < 1:
        raise ValueError(f"a clip needs at least one frame and one segment, got {frames} frames, {segments} segments")


def _padded(frames: int, segments: int) -> np.ndarray:
    """Every frame once, then the last frame repeated up to `segments` (upstream's `np.pad(..., 'edge')`)."""
    return np.minimum(np.arange(segments), frames - 1)


def train_indices(frames: int, segments: int = SEGMENTS, generator: torch.Generator | None = None) -> np.ndarray:
    """TSN sampling: one uniformly random frame in each of `segments` equal integer-length segments."""
    _check(frames, segments)
    length = frames // segments
    if length == 0:
        return _padded(frames, segments)
    offsets = torch.randint(length, (segments,), generator=generator).numpy()
    return np.arange(segments) * length + offsets


def eval_indices(frames: int, segments: int = SEGMENTS) -> np.ndarray:
    """The middle frame of each of `segments` equal segments; fixed, so evaluation is deterministic."""
    _check(frames, segments)
    if frames <= segments:
        return _padded(frames, segments)
    tick = frames / float(segments)
    return np.array([int(tick / 2.0 + tick * k) for k in range(segments)])


@lru_cache(maxsize=4096)
def pickable(frames: int, segments: int = SEGMENTS) -> np.ndarray:
    """Sorted indices of every frame either sampling can return: all a frame cache needs to hold."""
    _check(frames, segments)
    length = frames // segments
    trained = np.arange(segments * length) if length else np.arange(frames)
    kept = np.union1d(trained, eval_indices(frames, segments))
    kept.flags.writeable = False
    return kept
