"""Decode one sample into a uint8 array at the model's input size.

A sample is a file under the dataset root (`happy/a.png`) or a record inside a container file
(`fer2013.csv#17`: pixels on CSV line 17). Containers are read by the function registered for their
suffix in `CONTAINER_READERS`, so the loader that knows a container's format also owns its decoding.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator, TypeVar

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness.data.loaders import fer2013
from harness.errors import FerbenchError

CONTAINER_READERS: dict[str, Callable[[Path, str], np.ndarray]] = {".csv": fer2013.read_pixels}
"""Container suffix → `read(root, "<file>#<key>") -> HxW or HxWx3 uint8`."""

Box = tuple[int, int, int, int]
T = TypeVar("T")


def row_boxes(table) -> list[Box | None]:
    """Each table row's face box, or None: tables without a `box` column have none."""
    if "box" not in table.columns:
        return [None] * len(table)
    return [tuple(int(v) for v in box) if isinstance(box, (tuple, list)) else None for box in table["box"]]


def _container_pixels(root: Path, path: str) -> np.ndarray:
    container = path.partition("#")[0]
    suffix = PurePosixPath(container).suffix.lower()
    reader = CONTAINER_READERS.get(suffix)
    if reader is None:
        known = ", ".join(sorted(CONTAINER_READERS)) or "none"
        raise FerbenchError(f"{root / container}: no reader for samples stored in '{suffix}' files (registered: {known})")
    return reader(root, path)


def _read(location: Path, read: Callable[[], Image.Image], box: Box | None) -> Image.Image:
    try:
        image = read()
        return image.crop(box) if box is not None else image
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise FerbenchError(f"{location}: cannot read image: {err}") from None


def _open_file(file: Path) -> Image.Image:
    with Image.open(file) as opened:
        return opened.convert("RGB")


def _container_image(root: Path, path: str) -> Image.Image:
    return Image.fromarray(np.asarray(_container_pixels(root, path), dtype=np.uint8)).convert("RGB")


def load(root: Path, path: str, box: Box | None = None) -> Image.Image:
    """The sample fully decoded as an RGB image, cropped to `box` (left, top, right, bottom) when given.

    A path holding `#` is a record inside a container file. Grey images are replicated to three
    channels; a truncated or corrupt file raises FerbenchError naming it.
    """
    if "#" in path:
        return _read(root / path, lambda: _container_image(root, path), box)
    return _read(root / path, lambda: _open_file(root / path), box)


def _resized(image: Image.Image, size: int) -> np.ndarray:
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8).transpose(2, 0, 1)


def decode_sample(root: Path, path: str, size: int, box: Box | None = None) -> np.ndarray:
    """RGB uint8 [3, size, size], bilinear-resized: what the image cache stores for one table row."""
    return _resized(load(root, path, box), size)


def decode(path: Path, size: int) -> np.ndarray:
    """RGB uint8 [3, size, size] of one image file; grey images are replicated to three channels."""
    return _resized(_read(path, lambda: _open_file(path), None), size)


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0))))


def blocks(rows: np.ndarray, workers: int) -> list[np.ndarray]:
    """Row blocks small enough to spread over the workers and show progress, large enough to amortise overhead."""
    size = int(np.clip(len(rows) // (4 * workers), 16, 256))
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def map_blocks(work: Callable[[np.ndarray], T], parts: list[np.ndarray], workers: int) -> Iterator[T]:
    """`work` over each block in a thread pool (PIL releases the GIL to decode and resize), yielding as blocks finish.

    The first block runs alone, so a container's one-off parse (a pixel CSV) happens once rather than once per
    thread. Close the iterator (`contextlib.closing`) to cancel the blocks not yet started.
    """
    if not parts:
        return
    yield work(parts[0])
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
    try:
        for future in as_completed([pool.submit(work, part) for part in parts[1:]]):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
