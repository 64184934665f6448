"""Decode images once into a uint8 array at the model's input size."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness.errors import FerbenchError


def decode(path: Path, size: int) -> np.ndarray:
    """RGB uint8 [3, size, size]; grey images are replicated to three channels."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise FerbenchError(f"{path}: cannot read image: {err}") from None


def decode_all(
    root: Path, paths: Sequence[str], size: int, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    for i, rel in enumerate(paths):
        out[i] = decode(root / rel, size)
        if progress is not None:
            progress(i + 1)
    return out
