"""The ArcFace five-point template and the similarity warp that puts a face's landmarks onto it.

Points are (x, y) in the MTCNN order: left eye, right eye, nose, left mouth corner, right mouth corner
(left as seen in the image). The template is insightface's 112×112 one (`face_align.py`), scaled by size/112.
"""

from __future__ import annotations

import cv2
import numpy as np

NAME = "arcface-112"
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
SIZES = (112, 224)
MIN_SPREAD = 2.0
"""Landmarks spread over fewer source pixels than this cannot define a face's position, scale and angle."""


def template(size: int) -> np.ndarray:
    """The five target points for a size×size crop (size a multiple of 112)."""
    if size % 112:
        raise ValueError(f"the ArcFace template scales to multiples of 112, not {size}")
    return TEMPLATE_112 * (size / 112)


def similarity(points: np.ndarray, size: int) -> np.ndarray | None:
    """The 2×3 similarity (rotation, uniform scale, translation) taking `points` onto the template, or None
    when the estimate is degenerate (coincident or non-finite points, or OpenCV finds no model).

    LMEDS: with five points its inlier bound is loose, so in practice all five are kept and OpenCV's refinement
    gives the least-squares similarity over all five, which is what insightface's scikit-image estimate computes
    (the tests compare the two); only a point far off all the others is left out.
    """
    source = np.asarray(points, dtype=np.float64).reshape(5, 2)
    if not np.isfinite(source).all() or np.ptp(source, axis=0).max() < MIN_SPREAD:
        return None
    matrix, _ = cv2.estimateAffinePartial2D(source, template(size), method=cv2.LMEDS)
    if matrix is None or not np.isfinite(matrix).all():
        return None
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    if not 1e-3 < scale < 1e3:
        return None
    return matrix


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The size×size crop that `matrix` maps `image` onto (bilinear, black outside the image)."""
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2×3 map `outer` ∘ `inner` (first `inner`, then `outer`)."""
    return np.hstack([outer[:, :2] @ inner[:, :2], (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`points` (N×2) mapped by the 2×3 `matrix`."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points @ matrix[:, :2].T + matrix[:, 2]
