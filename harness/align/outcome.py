"""What one sample becomes: its crop (None when nothing is written) and its manifest record.

Statuses: `ok`; `multi-face` (aligned, but other confident faces could also have been the sample's);
`no-face-fallback` (no usable face: the labelled box, or else the image's centre square, resized); `skipped`
(no usable face under policy `skip`: left out of the aligned set); `error` (unreadable image, or a labelled box
outside it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.align import crops, manifest, template
from harness.align.choice import choose
from harness.align.detect import Faces
from harness.data.images import Box

Outcome = tuple["np.ndarray | None", dict]


@dataclass
class Sample:
    path: str
    face_id: str
    """'' where the dataset has no face ids."""
    output: str
    """The crop's path in the aligned folder."""
    box: Box | None
    image: np.ndarray | None = None
    """H×W×3 uint8 RGB once decoded."""
    error: str | None = None
    """Why it could not be decoded."""


def record(sample: Sample, status: str, mode: str, **fields) -> dict:
    output = sample.output if status in manifest.WRITTEN else ""
    return dict(path=sample.path, face_id=sample.face_id, output=output, status=status, mode=mode, **fields)


def failed(sample: Sample, mode: str, reason: str) -> Outcome:
    return None, record(sample, "error", mode, reason=reason)


def resized(sample: Sample, size: int) -> Outcome:
    """Resize-only mode: the image (its labelled box, where it has one) scaled to size×size."""
    image = sample.image
    if sample.box is not None:
        left, top, right, bottom = sample.box
        image = image[max(0, top) : bottom, max(0, left) : right]
    if image.size == 0:
        return failed(sample, "resize", f"face box {sample.box} lies outside the image")
    return crops.resized(image, size), record(sample, "ok", "resize")


def _face_fields(faces: Faces, index: int) -> dict:
    """The chosen face's score, box (1 decimal) and landmarks (2 decimals), as manifest columns."""
    fields = dict(search=faces.search, faces=len(faces), score=round(float(faces.scores[index]), 4))
    sides = ("left", "top", "right", "bottom")
    fields.update({f"box_{side}": round(float(v), 1) for side, v in zip(sides, faces.boxes[index])})
    for name, (x, y) in zip(manifest.POINTS, faces.points[index]):
        fields[f"{name}_x"], fields[f"{name}_y"] = round(float(x), 2), round(float(y), 2)
    return fields


def detected(sample: Sample, faces: Faces | None, size: int, policy: str) -> Outcome:
    """Detect mode: the sample's face warped onto the template, or the no-face path. `faces` are those found in
    the image (image pixels); None when its labelled box lies outside it."""
    if faces is None:
        return failed(sample, "detect", f"face box {sample.box} lies outside the image")
    if faces.error is not None:
        return None, record(sample, "error", "detect", search=faces.search, reason=faces.error)
    picked = choose(faces, sample.image.shape, sample.box)
    matrix, fields = None, dict(search=faces.search, faces=len(faces))
    if picked.index is None:
        matched = sample.box is not None and len(faces)
        reason = "no detected face matches the labelled box" if matched else "no face found"
    else:
        fields = _face_fields(faces, picked.index)
        matrix = template.similarity(faces.points[picked.index], size)
        reason = "degenerate landmarks: no similarity to the template"
    if matrix is None:
        if policy == "skip":
            return None, record(sample, "skipped", "detect", **fields, reason=reason)
        crop = crops.fallback(sample.image, size, sample.box)
        return crop, record(sample, "no-face-fallback", "detect", **fields, reason=reason)
    if picked.rivals:
        fields["reason"] = f"{picked.rivals} other confident face(s)"
    status = "multi-face" if picked.rivals else "ok"
    return template.warp(sample.image, matrix, size), record(sample, status, "detect", **fields)
