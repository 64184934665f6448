"""Crops that need no landmarks: the resize of an already-cropped face, the centre-crop fallback when no face is
found, and the region around a labelled face box that detection searches."""

from __future__ import annotations

import cv2
import numpy as np

Box = tuple[int, int, int, int]

BOX_MARGIN = 0.5
"""Detection around a labelled box searches the box grown by this fraction of its size on every side."""


def resized(image: np.ndarray, size: int) -> np.ndarray:
    """`image` scaled to size×size: area averaging when shrinking, bicubic when enlarging."""
    h, w = image.shape[:2]
    interpolation = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interpolation)


def square_around(box: Box, shape: tuple[int, ...]) -> Box:
    """The square on the centre of `box` with the side of its longer edge, cut to the image where it overflows."""
    left, top, right, bottom = box
    side = max(right - left, bottom - top)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    h, w = shape[:2]
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    return max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)


def centre_square(shape: tuple[int, ...]) -> Box:
    """The largest square in the middle of an image of `shape`."""
    h, w = shape[:2]
    side = min(h, w)
    x0, y0 = (w - side) // 2, (h - side) // 2
    return x0, y0, x0 + side, y0 + side


def fallback(image: np.ndarray, size: int, box: Box | None) -> np.ndarray:
    """What a sample without a usable face becomes under `--policy fallback`: the labelled box made square, or
    the image's centre square, resized to size×size."""
    left, top, right, bottom = square_around(box, image.shape) if box is not None else centre_square(image.shape)
    return resized(image[top:bottom, left:right], size)


def region(box: Box | None, shape: tuple[int, ...]) -> Box:
    """The part of the image detection searches: the labelled box grown by BOX_MARGIN, or the whole image."""
    h, w = shape[:2]
    if box is None:
        return 0, 0, w, h
    left, top, right, bottom = box
    dx, dy = BOX_MARGIN * (right - left), BOX_MARGIN * (bottom - top)
    return (max(0, int(left - dx)), max(0, int(top - dy)), min(w, int(np.ceil(right + dx))),
            min(h, int(np.ceil(bottom + dy))))
