"""Decode every image of a dataset once per (manifest, input size) into a uint8 memmap all runs share.

Decoding and resizing dominate data loading for small FER images, and every run, repeat and model
at the same input size needs the same pixels. So the whole table is decoded once into
`<results>/cache/<dataset>/<manifest[:16]>-<size>.u8`, a raw uint8 array [N, 3, S, S] in table
order, beside a JSON sidecar describing it and a one-byte-per-row "filled" bitmap. Rows are marked
filled only after their pixels are flushed, so an interrupted build resumes where it stopped. An
exclusive `flock` serialises builders; the kernel drops it when a builder dies, and a second builder
waits, then finds the rows filled. The data folder is never written to (it may be read-only).

Each row's XXH3-64 checksum is stored beside it (`.sums`, uint64 per row) and every row is verified when
the cache is opened for a run: a row whose pixels were overwritten is decoded again, with a one-line
warning, and never trained on. The pixel file's space is reserved up front (`posix_fallocate`), so a full
disk is an error when the cache is created, not a SIGBUS while it is filled.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import sys
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd
import xxhash

from harness.config import Dataset
from harness.data.images import Box, blocks, decode_sample, default_workers, map_blocks, row_boxes
from harness.errors import FerbenchError
from harness.files import write_json_atomic

FORMAT = 1
"""Bump when what a cache row holds changes (decoding, resizing), so old caches are rebuilt."""

RESIZE = "PIL bilinear, RGB, grey replicated"
CHECKSUM = "xxh3-64 per row, in <cache>.sums"


@dataclass(frozen=True)
class ImageCache:
    path: Path
    images: np.ndarray
    """Read-only uint8 memmap [N, 3, size, size], row i = table row i."""
    decoded: int
    """Rows decoded by the call that opened it: 0 when a finished cache was reused."""


def cache_file(results: Path, dataset: str, manifest: str, size: int) -> Path:
    return results / "cache" / dataset / f"{manifest[:16]}-{size}.u8"


def _header(dataset: str, manifest: str, size: int, paths: list[str], boxes: list[Box | None]) -> dict:
    """What the cache holds; a sidecar that differs from this describes another cache."""
    rows = hashlib.sha256("".join(f"{p}\t{b}\n" for p, b in zip(paths, boxes)).encode()).hexdigest()
    return dict(format=FORMAT, dataset=dataset, manifest=manifest, size=size, count=len(paths),
                shape=[len(paths), 3, size, size], dtype="uint8", resize=RESIZE, rows=rows, checksum=CHECKSUM)


def _intact(file: Path, header: dict) -> bool:
    """The sidecar describes `header` and the pixel and bitmap files have their full lengths."""
    count, size = header["count"], header["size"]
    try:
        recorded = json.loads(file.with_suffix(".json").read_text())
        lengths = file.stat().st_size, file.with_suffix(".filled").stat().st_size, file.with_suffix(".sums").stat().st_size
    except (OSError, ValueError):
        return False
    return {k: recorded.get(k) for k in header} == header and lengths == (count * 3 * size * size, count, 8 * count)


def _filled(file: Path, count: int, mode: str) -> np.memmap:
    return np.memmap(file.with_suffix(".filled"), dtype=np.uint8, mode=mode, shape=(count,))


def _pixels(file: Path, count: int, size: int, mode: str) -> np.memmap:
    return np.memmap(file, dtype=np.uint8, mode=mode, shape=(count, 3, size, size))


def sums_file(file: Path, count: int, mode: str) -> np.memmap:
    """The checksum of each unit (image row, or clip) of a cache: XXH3-64 of its pixels."""
    return np.memmap(file.with_suffix(".sums"), dtype=np.uint64, mode=mode, shape=(count,))


def checksum(pixels: np.ndarray) -> int:
    return xxhash.xxh3_64_intdigest(np.ascontiguousarray(pixels).data)


def reserve(path: Path, size: int) -> None:
    """A file of `size` bytes whose blocks are allocated now (ENOSPC here, not SIGBUS on a later memmap write)."""
    with open(path, "wb") as handle:
        try:
            os.posix_fallocate(handle.fileno(), 0, size)
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                error.filename = str(path)
                raise
            handle.truncate(size)


def mismatched(file: Path, pixels: np.ndarray, count: int, spans: Callable[[int], slice], workers: int) -> np.ndarray:
    """Units whose stored checksum differs from their pixels' (checked in parallel threads)."""
    sums = sums_file(file, count, "r")
    units = np.arange(count)

    def check(block: np.ndarray) -> list[int]:
        return [int(u) for u in block if checksum(pixels[spans(int(u))]) != int(sums[u])]

    bad: list[int] = []
    with closing(map_blocks(check, blocks(units, workers), workers)) as done:
        for found in done:
            bad.extend(found)
    return np.array(sorted(bad), dtype=np.int64)


def warn_mismatched(file: Path, bad: np.ndarray, unit: str) -> None:
    shown = ", ".join(map(str, bad[:5])) + (", …" if len(bad) > 5 else "")
    print(f"warning: {file}: {len(bad)} cached {unit}(s) do not match their checksum ({unit} {shown}); "
          "decoding them again", file=sys.stderr)


def _finished(file: Path, header: dict) -> bool:
    return _intact(file, header) and bool(_filled(file, header["count"], "r").all())


@contextmanager
def _exclusive(file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `<cache>.lock` (waiting for another builder); released on exit or death."""
    lock = file.with_suffix(".lock")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise FerbenchError(f"{lock}: cannot create the image cache: {err.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _create(file: Path, header: dict) -> None:
    """Fresh, empty pixel and bitmap files; the sidecar is written last so it only ever describes them."""
    file.with_suffix(".json").unlink(missing_ok=True)
    count, size = header["count"], header["size"]
    reserve(file, count * 3 * size * size)
    reserve(file.with_suffix(".filled"), count)
    reserve(file.with_suffix(".sums"), 8 * count)
    write_json_atomic(file.with_suffix(".json"), header)


def _fill(
    file: Path, header: dict, root: Path, paths: list[str], boxes: list[Box | None], workers: int,
    progress: Callable[[int, int], None] | None,
) -> int:
    """Decode the rows not yet marked filled, in parallel; return how many were decoded."""
    count, size = header["count"], header["size"]
    filled = _filled(file, count, "r+")
    missing = np.flatnonzero(filled == 0)
    if len(missing) == 0:
        return 0
    pixels = _pixels(file, count, size, "r+")
    sums = sums_file(file, count, "r+")

    def decode_block(rows: np.ndarray) -> np.ndarray:
        for row in rows:
            decoded = decode_sample(root, paths[row], size, boxes[row])
            pixels[row] = decoded
            sums[row] = checksum(pixels[row])
        return rows

    return fill_blocks(decode_block, blocks(missing, workers), workers, pixels, filled, progress, sums)


def fill_blocks(decode_block, units: list[np.ndarray], workers: int, pixels: np.memmap, filled: np.memmap,
                progress: Callable[[int, int], None] | None, sums: np.memmap | None = None) -> int:
    """Decode blocks of units (image rows or clips) in parallel threads; each finished block is flushed, then
    marked in the fill bitmap, so an interrupted build resumes with exactly the units still missing."""
    total = sum(len(block) for block in units)
    done = 0
    if progress is not None:
        progress(0, total)
    with closing(map_blocks(decode_block, units, workers)) as finished:
        for block in finished:
            pixels.flush()
            if sums is not None:
                sums.flush()
            filled[block] = 1
            filled.flush()
            done += len(block)
            if progress is not None:
                progress(done, total)
    return done


def open_cache(
    results: Path,
    dataset: Dataset,
    root: Path,
    table: pd.DataFrame,
    manifest: str,
    size: int,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImageCache:
    """The decoded images of `table` at `size`, building or finishing the cache first when needed.

    `progress(done, total)` is called as rows are decoded (total = rows this call decodes). An
    unreadable image raises FerbenchError naming the file; rows decoded before it are kept.
    """
    if dataset.video:
        raise FerbenchError(
            f"datasets.{dataset.name}: video datasets are not cached as images; clips are loaded by the video pipeline",
            exit_code=2,
        )
    if table.empty:
        raise FerbenchError(f"{root}: no samples to cache for dataset '{dataset.name}'")
    paths, boxes = table["path"].tolist(), row_boxes(table)
    header = _header(dataset.name, manifest, size, paths, boxes)
    file = cache_file(results, dataset.name, manifest, size)
    decoded = 0
    workers = workers or default_workers()
    if not _finished(file, header):
        with _exclusive(file):
            if not _intact(file, header):
                _create(file, header)
            decoded = _fill(file, header, root, paths, boxes, workers, progress)
    images = _pixels(file, len(paths), size, "r")
    bad = mismatched(file, images, len(paths), lambda row: slice(row, row + 1), workers)
    if len(bad):
        warn_mismatched(file, bad, "row")
        with _exclusive(file):
            filled = _filled(file, len(paths), "r+")
            filled[bad] = 0
            filled.flush()
            decoded += _fill(file, header, root, paths, boxes, workers, progress)
    return ImageCache(path=file, images=images, decoded=decoded)
