"""Decode the frames of every video clip once per (manifest, input size) into one uint8 memmap all runs share.

The video twin of `harness.data.cache`: the same sidecar, fill bitmap, resume and lock, but ragged. Clip i's
frames are rows `starts[i]:starts[i+1]` of one array [F, 3, S, S] at
`<results>/cache/<dataset>/<manifest[:16]>-<size>-frames.u8`, and the bitmap has one byte per clip, set once
all its frames are flushed. Only the frames DFER-CLIP's 16-segment sampling can ever pick are stored
(`harness.data.clips.pickable`: the first `16 * (n // 16)` frames, which TSN training draws from, plus the 16
test frames): the last `n % 16` frames of a clip are never read, which saves 6-11% on DFEW, MAFW and FERV39k.
`starts` follows from the frame counts alone. Each clip's XXH3-64 checksum over its kept frames is stored in
`.sums` and verified when the cache is opened: a clip whose frames were overwritten is decoded again.
Frames are the clip folder's images sorted by name, as DFER-CLIP's sorted `glob` reads them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from harness.config import Dataset
from harness.data.cache import (
    CHECKSUM, RESIZE, _exclusive, checksum, fill_blocks, mismatched, reserve, sums_file, warn_mismatched,
)
from harness.data.clips import SEGMENTS, eval_indices, pickable, train_indices
from harness.data.images import decode_sample, default_workers
from harness.data.loaders.samples import image_files
from harness.data.table import check_command
from harness.errors import FerbenchError
from harness.files import write_json_atomic

FORMAT = 1
"""Bump when what a cache row holds changes (decoding, resizing, which frames are kept)."""


@dataclass(frozen=True)
class FrameCache:
    path: Path
    frames: np.ndarray
    """Read-only uint8 memmap [F, 3, size, size]: the kept frames of every clip, clip after clip in table order."""
    counts: np.ndarray
    """int64 [N]: each clip's frame count (table order)."""
    starts: np.ndarray
    """int64 [N + 1]: clip i's kept frames are rows starts[i]:starts[i + 1]."""
    segments: int
    decoded: int
    """Clips decoded by the call that opened it: 0 when a finished cache was reused."""

    def rows(self, clip: int, indices: np.ndarray) -> np.ndarray:
        """Cache rows of frames `indices` (into the clip's sorted frame files) of table row `clip`."""
        kept = pickable(int(self.counts[clip]), self.segments)
        at = np.searchsorted(kept, indices)
        if (at >= len(kept)).any() or (kept[np.minimum(at, len(kept) - 1)] != indices).any():
            raise IndexError(f"clip {clip}: frames {np.setdiff1d(indices, kept).tolist()} are not cached")
        return self.starts[clip] + at

    def sample(self, clips: np.ndarray, training: bool, generator: torch.Generator | None = None) -> np.ndarray:
        """uint8 [B, segments, 3, S, S]: one sampled clip per table row in `clips`, drawn in that order
        (training: TSN offsets from `generator`; otherwise the fixed middle frames)."""
        rows = []
        for clip in clips:
            n = int(self.counts[clip])
            indices = train_indices(n, self.segments, generator) if training else eval_indices(n, self.segments)
            rows.append(self.rows(int(clip), indices))
        batch = self.frames[np.concatenate(rows)] if rows else self.frames[:0]
        return batch.reshape(len(clips), self.segments, *self.frames.shape[1:])


def frame_cache_file(results: Path, dataset: str, manifest: str, size: int) -> Path:
    return results / "cache" / dataset / f"{manifest[:16]}-{size}-frames.u8"


def _starts(counts: np.ndarray, segments: int) -> np.ndarray:
    kept = [len(pickable(int(n), segments)) for n in counts]
    return np.concatenate([[0], np.cumsum(kept, dtype=np.int64)]).astype(np.int64)


def _header(dataset: str, manifest: str, size: int, segments: int, paths: list[str], counts: np.ndarray,
            total: int) -> dict:
    """What the cache holds; a sidecar that differs from this describes another cache."""
    rows = hashlib.sha256("".join(f"{p}\t{n}\n" for p, n in zip(paths, counts)).encode()).hexdigest()
    return dict(format=FORMAT, dataset=dataset, manifest=manifest, size=size, count=len(paths), frames=total,
                shape=[total, 3, size, size], dtype="uint8", resize=RESIZE,
                kept=f"frames DFER-CLIP {segments}-segment train or test sampling can pick", segments=segments,
                rows=rows, checksum=CHECKSUM.replace("row", "clip"))


def _intact(file: Path, header: dict) -> bool:
    size = header["size"]
    try:
        recorded = json.loads(file.with_suffix(".json").read_text())
        lengths = file.stat().st_size, file.with_suffix(".filled").stat().st_size, file.with_suffix(".sums").stat().st_size
    except (OSError, ValueError):
        return False
    return ({k: recorded.get(k) for k in header} == header
            and lengths == (header["frames"] * 3 * size * size, header["count"], 8 * header["count"]))


def _filled(file: Path, count: int, mode: str) -> np.memmap:
    return np.memmap(file.with_suffix(".filled"), dtype=np.uint8, mode=mode, shape=(count,))


def _pixels(file: Path, total: int, size: int, mode: str) -> np.memmap:
    return np.memmap(file, dtype=np.uint8, mode=mode, shape=(total, 3, size, size))


def _create(file: Path, header: dict) -> None:
    file.with_suffix(".json").unlink(missing_ok=True)
    size = header["size"]
    reserve(file, header["frames"] * 3 * size * size)
    reserve(file.with_suffix(".filled"), header["count"])
    reserve(file.with_suffix(".sums"), 8 * header["count"])
    write_json_atomic(file.with_suffix(".json"), header)


def _clip_blocks(clips: np.ndarray, workers: int) -> list[np.ndarray]:
    """A few clips per block: enough to keep the workers busy, few enough for a live progress count."""
    size = int(np.clip(len(clips) // (4 * workers), 1, 16))
    return [clips[i : i + size] for i in range(0, len(clips), size)]


def _fill(file: Path, header: dict, root: Path, paths: list[str], counts: np.ndarray, starts: np.ndarray,
          workers: int, progress: Callable[[int, int], None] | None) -> int:
    """Decode the clips not yet marked filled, in parallel; return how many were decoded."""
    filled = _filled(file, header["count"], "r+")
    missing = np.flatnonzero(filled == 0)
    if len(missing) == 0:
        return 0
    pixels = _pixels(file, header["frames"], header["size"], "r+")
    sums = sums_file(file, header["count"], "r+")
    segments, size = header["segments"], header["size"]

    def decode_block(clips: np.ndarray) -> np.ndarray:
        for clip in clips:
            folder = root / paths[clip]
            try:
                files = image_files(folder)
            except OSError as err:
                raise FerbenchError(f"{folder}: cannot list the clip's frames: {err.strerror}") from None
            if len(files) != counts[clip]:
                raise FerbenchError(f"{folder}: holds {len(files)} frames but is listed with {counts[clip]}; "
                                    f"run `{check_command(header['dataset'], root)}`")
            for row, index in enumerate(pickable(int(counts[clip]), segments), start=int(starts[clip])):
                pixels[row] = decode_sample(root, f"{paths[clip]}/{files[index].name}", size)
            sums[clip] = checksum(pixels[starts[clip]:starts[clip + 1]])
        return clips

    return fill_blocks(decode_block, _clip_blocks(missing, workers), workers, pixels, filled, progress, sums)


def open_frame_cache(
    results: Path,
    dataset: Dataset,
    root: Path,
    table: pd.DataFrame,
    manifest: str,
    size: int,
    segments: int = SEGMENTS,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> FrameCache:
    """The decoded frames of every clip of `table` at `size`, building or finishing the cache first when needed.

    `progress(done, total)` counts clips (total = clips this call decodes). A missing or unreadable frame, or a
    folder whose frame count differs from its list, raises FerbenchError naming it; clips decoded before it are kept.
    """
    if not dataset.video:
        raise FerbenchError(f"datasets.{dataset.name}: not a video dataset; its images use the image cache", exit_code=2)
    if table.empty:
        raise FerbenchError(f"{root}: no clips to cache for dataset '{dataset.name}'")
    paths = table["path"].tolist()
    counts = table["frames"].astype("int64").to_numpy()
    starts = _starts(counts, segments)
    header = _header(dataset.name, manifest, size, segments, paths, counts, int(starts[-1]))
    file = frame_cache_file(results, dataset.name, manifest, size)
    decoded = 0
    workers = workers or default_workers()
    finished = _intact(file, header) and bool(_filled(file, header["count"], "r").all())
    if not finished:
        with _exclusive(file):
            if not _intact(file, header):
                _create(file, header)
            decoded = _fill(file, header, root, paths, counts, starts, workers, progress)
    frames = _pixels(file, header["frames"], size, "r")
    bad = mismatched(file, frames, header["count"], lambda clip: slice(starts[clip], starts[clip + 1]), workers)
    if len(bad):
        warn_mismatched(file, bad, "clip")
        with _exclusive(file):
            filled = _filled(file, header["count"], "r+")
            filled[bad] = 0
            filled.flush()
            decoded += _fill(file, header, root, paths, counts, starts, workers, progress)
    return FrameCache(path=file, frames=frames, counts=counts, starts=starts, segments=segments, decoded=decoded)
