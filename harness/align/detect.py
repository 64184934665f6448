"""Face boxes and five landmarks with facenet-pytorch's MTCNN, fast on the CPU and batched on a GPU.

facenet's defaults search every face from 20 px up to the whole image, so most of the time goes into image
pyramid levels for faces far smaller than a FER face. Here each image is first scaled (up or down) to fit a
`side`×`side` canvas, padded with black at the right or bottom, and only faces of at least `min_face`×`side`
are searched; boxes and landmarks are mapped back to the image. Every canvas has one shape, which is what
facenet needs to batch images (on a GPU). An image in which this finds no face is searched again with
facenet's defaults at full resolution, one image at a time, so the fast search never loses a face the default
search would find.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

FACENET_MIN_FACE = 20
"""facenet's default smallest face, in pixels, for the full search."""
THRESHOLDS = (0.6, 0.7, 0.7)
FACTOR = 0.709
"""facenet's defaults: the P-, R- and O-net score thresholds and the pyramid's scale step."""


@dataclass(frozen=True)
class Faces:
    """Every face found in one image, most confident first; coordinates are the image's pixels."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    """N×4 (left, top, right, bottom); a box may reach past the image's edge."""
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2)))
    """N×5×2 (x, y): left eye, right eye, nose, left and right mouth corner."""
    search: str = "fast"
    """`fast` (canvas, large faces only) or `full` (facenet's defaults), whichever found them."""
    error: str | None = None
    """Why detection failed on this image, when it did."""

    def __len__(self) -> int:
        return len(self.scores)


def _faces(boxes: np.ndarray, points: np.ndarray, scale: float, search: str) -> Faces:
    """facenet's N×5 (box, score) and N×5×2 landmarks at `scale`, as Faces in image pixels."""
    boxes, points = np.asarray(boxes, dtype=np.float64).reshape(-1, 5), np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
    order = np.argsort(-boxes[:, 4], kind="stable")
    return Faces(boxes=boxes[order, :4] / scale, scores=boxes[order, 4], points=points[order] / scale, search=search)


def canvas(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """`image` scaled so its longer edge is `side` and padded with black to side×side, and the scale used."""
    h, w = image.shape[:2]
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    out = np.zeros((side, side, 3), dtype=np.uint8)
    out[: size[1], : size[0]] = cv2.resize(image, size, interpolation=interpolation)
    return out, scale


class Detector:
    """MTCNN on `device` with the fast search's `side` and `min_face` (a fraction of `side`)."""

    def __init__(self, device: str = "cpu", side: int = 320, min_face: float = 0.15, batch: int | None = None):
        from facenet_pytorch import MTCNN

        self.device = torch.device(device)
        nets = MTCNN(device=self.device)
        self.nets = nets.pnet.eval(), nets.rnet.eval(), nets.onet.eval()
        self.side, self.min_face = side, min_face
        self.batch = batch or (32 if self.device.type == "cuda" else 1)

    def _search(self, images: np.ndarray, min_size: float) -> tuple[list, list]:
        from facenet_pytorch.models.utils.detect_face import detect_face

        with torch.no_grad():
            boxes, points = detect_face(images, min_size, *self.nets, list(THRESHOLDS), FACTOR, self.device)
        return list(boxes), list(points)

    def _fast(self, canvases: np.ndarray) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """(boxes, points) per canvas; None for a canvas whose batch failed alone."""
        try:
            return list(zip(*self._search(canvases, max(FACENET_MIN_FACE, self.min_face * self.side))))
        except RuntimeError:  # facenet fails on some candidate sets (an empty crop list); retry them one by one
            if len(canvases) == 1:
                return [None]
            return [found for one in canvases for found in self._fast(one[None])]

    def _full(self, image: np.ndarray) -> Faces:
        try:
            (boxes,), (points,) = self._search(np.ascontiguousarray(image)[None], FACENET_MIN_FACE)
        except RuntimeError as err:
            return Faces(search="full", error=f"face detection failed: {err}")
        return _faces(boxes, points, 1.0, "full")

    def detect(self, images: list[np.ndarray]) -> list[Faces]:
        """The faces in each H×W×3 uint8 RGB image (any sizes)."""
        scaled = [canvas(image, self.side) for image in images]
        found: list[Faces] = []
        for start in range(0, len(images), self.batch):
            part = scaled[start : start + self.batch]
            results = self._fast(np.stack([c for c, _ in part]))
            for (_, scale), result in zip(part, results):
                found.append(_faces(*result, scale, "fast") if result is not None else Faces())
        return [faces if len(faces) else self._full(image) for faces, image in zip(found, images)]
