"""Which detected face is the sample's: the one matching its labelled box, else the largest, most central one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.align.detect import Faces

CENTRE_WEIGHT = 2.0
"""facenet's `center_weighted_size` rule: box area minus this times the squared distance of its centre from
the image centre."""
MIN_IOU = 0.3
"""A detection overlapping a labelled box less than this is not that face."""
RIVAL_SCORE, RIVAL_WIDTH = 0.9, 0.5
"""Another face counts against the choice (status multi-face) when its score is at least RIVAL_SCORE and it is
at least RIVAL_WIDTH times as wide as the chosen face (or, for a labelled box, it also matches the box)."""


@dataclass(frozen=True)
class Choice:
    index: int | None
    """Index into the Faces, or None when no face is the sample's."""
    rivals: int
    """Other confident faces that could also have been the sample's."""


def iou(boxes: np.ndarray, box) -> np.ndarray:
    """Intersection over union of each row of `boxes` with `box` (left, top, right, bottom)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    left, top, right, bottom = (float(v) for v in box)
    w = np.clip(np.minimum(boxes[:, 2], right) - np.maximum(boxes[:, 0], left), 0, None)
    h = np.clip(np.minimum(boxes[:, 3], bottom) - np.maximum(boxes[:, 1], top), 0, None)
    inter = w * h
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = areas + (right - left) * (bottom - top) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def choose(faces: Faces, shape: tuple[int, ...], box=None) -> Choice:
    """The face of an image of `shape` (H, W, …) that the sample is about; `box` is its labelled face box."""
    if not len(faces):
        return Choice(None, 0)
    confident = faces.scores >= RIVAL_SCORE
    if box is not None:
        overlap = iou(faces.boxes, box)
        best = int(np.argmax(overlap))
        if overlap[best] < MIN_IOU:
            return Choice(None, 0)
        rivals = confident & (overlap >= MIN_IOU)
    else:
        h, w = shape[:2]
        sizes = faces.boxes[:, 2:] - faces.boxes[:, :2]
        centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
        offset = ((centres - [w / 2, h / 2]) ** 2).sum(axis=1)
        best = int(np.argmax(sizes.prod(axis=1) - CENTRE_WEIGHT * offset))
        rivals = confident & (sizes[:, 0] >= RIVAL_WIDTH * sizes[best, 0])
    rivals[best] = False
    return Choice(best, int(rivals.sum()))
