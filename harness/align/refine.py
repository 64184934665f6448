"""Landmarks measured again on the face turned upright, so the crop does not depend on the face's angle or size.

MTCNN's last network (O-net) reads the five points off a 48×48 crop of an axis-aligned box. A tilted face, or one
found small in a downscaled copy, gives points a few pixels off, and a crop of a rotated photo then differs from
the crop of the upright one. Here each face is warped upright onto the template's frame with the similarity its
points give, O-net reads the points again there, and the points are mapped back; twice, since the second pass
starts from better points. Measured on a rotated and rescaled real face (benchmarks/align_speed.py and the
tests), the crops then agree to a correlation of about 0.99, against 0.7–0.95 without it.
"""

from __future__ import annotations

import cv2
import numpy as np

from harness.align import template

PASSES = 2
BOX = (56.0, 64.0, 100.0)
"""(centre x, centre y, side) in the 112×112 template frame of the square O-net reads: where MTCNN's own boxes
fall around the template's points (median over the CK+48 faces)."""
SIDE = 48
"""O-net's input size."""


def _to_crop(points: np.ndarray) -> np.ndarray | None:
    """The 2×3 map from the image to O-net's upright 48×48 crop of the face with these points (pixel centres at
    integer coordinates, as OpenCV warps: the crop spans -0.5 … 47.5)."""
    matrix = template.similarity(points, 112)
    if matrix is None:
        return None
    cx, cy, side = BOX
    k = SIDE / side
    return template.compose(np.array([[k, 0, -k * (cx - side / 2) - 0.5], [0, k, -k * (cy - side / 2) - 0.5]]), matrix)


def _warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The 48×48 crop `matrix` maps `image` onto. A face larger than the crop is first area-averaged down to about
    twice the crop's scale (as MTCNN resamples its crops), so the bilinear warp does not alias."""
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    if scale >= 0.5:
        return cv2.warpAffine(image, matrix, (SIDE, SIDE), flags=cv2.INTER_LINEAR)
    corners = template.apply(cv2.invertAffineTransform(matrix), [[0, 0], [SIDE, 0], [0, SIDE], [SIDE, SIDE]])
    h, w = image.shape[:2]
    left, top = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, [w - 1, h - 1])
    right, bottom = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 1, [left + 1, top + 1], [w, h])
    shrink = 2 * scale
    part = image[top:bottom, left:right]
    size = (max(1, round(part.shape[1] * shrink)), max(1, round(part.shape[0] * shrink)))
    small = cv2.resize(part, size, interpolation=cv2.INTER_AREA)
    fx, fy = size[0] / part.shape[1], size[1] / part.shape[0]
    back = np.array([[1 / fx, 0, left + 0.5 / fx - 0.5], [0, 1 / fy, top + 0.5 / fy - 0.5]])
    return cv2.warpAffine(small, template.compose(matrix, back), (SIDE, SIDE), flags=cv2.INTER_LINEAR)


def upright(onet, device, images: list[np.ndarray], points: list[np.ndarray]) -> list[np.ndarray]:
    """Each image's N×5×2 points (in image pixels) measured again upright; points whose similarity is degenerate
    are kept as they were."""
    import torch

    points = [np.array(p, dtype=np.float64) for p in points]
    for _ in range(PASSES):
        crops, where = [], []
        for i, (image, faces) in enumerate(zip(images, points)):
            for j, face in enumerate(faces):
                matrix = _to_crop(face)
                if matrix is not None:
                    crops.append(_warp(image, matrix))
                    where.append((i, j, matrix))
        if not crops:
            break
        batch = torch.as_tensor(np.stack(crops), device=device).permute(0, 3, 1, 2).float()
        with torch.no_grad():
            read = onet((batch - 127.5) * 0.0078125)[1].cpu().numpy().astype(np.float64)
        for (i, j, matrix), found in zip(where, read):
            in_crop = np.stack([found[:5], found[5:]], axis=1) * SIDE - 0.5  # O-net's 0…1 spans the crop's edges
            points[i][j] = template.apply(cv2.invertAffineTransform(matrix), in_crop)
    return points
