"""Face boxes and five landmarks with facenet-pytorch's MTCNN, fast on the CPU and batched on a GPU.

facenet's defaults search every face from 20 px up to the whole image, so most of the time goes into image
pyramid levels for faces far smaller than a FER face. Here an image larger than `side` is first scaled down so
its longer edge is `side`, every image is padded with black at the right and bottom to a square, and only faces
at least `min_face` times that square's side (and at least facenet's 20 px) are searched; boxes and landmarks
are mapped back to the image. Images with squares of one side go through MTCNN together, since facenet batches
only equal-size images (worth it on a GPU). An image in which this finds no face is searched again with
facenet's defaults at full resolution, one image at a time, so the fast search never loses a face the default
search would find. Last, every face's landmarks are read again with the face turned upright (refine.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from harness.align.refine import upright

SIDE = 224
MIN_FACE = 0.2
BATCH = 16
"""The fast search's defaults, chosen with benchmarks/align_speed.py: the squares are small enough that facenet's
per-call work dominates, so batching them pays even on the CPU."""
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

    def moved(self, dx: float, dy: float) -> Faces:
        """These faces, found in a region whose corner is at (dx, dy), in the whole image's pixels."""
        return replace(self, boxes=self.boxes + [dx, dy, dx, dy], points=self.points + [dx, dy])


def _faces(boxes: np.ndarray, points: np.ndarray, scale: float, search: str) -> Faces:
    """facenet's N×5 (box, score) and N×5×2 landmarks at `scale`, as Faces in image pixels."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 5, 2)
    order = np.argsort(-boxes[:, 4], kind="stable")
    return Faces(boxes=boxes[order, :4] / scale, scores=boxes[order, 4], points=points[order] / scale, search=search)


def canvas(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """`image`, scaled down (area averaging) when its longer edge exceeds `side`, padded with black to a square;
    and the scale used."""
    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale < 1:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    h, w = image.shape[:2]
    out = np.zeros((max(h, w), max(h, w), 3), dtype=np.uint8)
    out[:h, :w] = image
    return out, scale


class Detector:
    """MTCNN on `device`; the fast search scales images down to `side` and looks for faces of at least `min_face`
    times the square's side, `batch` squares at a time."""

    def __init__(self, device: str = "cpu", side: int = SIDE, min_face: float = MIN_FACE, batch: int = BATCH):
        import torch
        from facenet_pytorch import MTCNN

        self.device = torch.device(device)
        nets = MTCNN(device=self.device)
        self.nets = nets.pnet.eval(), nets.rnet.eval(), nets.onet.eval()
        self.side, self.min_face, self.batch = side, min_face, batch

    def _search(self, images: np.ndarray, min_size: float) -> tuple[list, list]:
        import torch
        from facenet_pytorch.models.utils.detect_face import detect_face

        with torch.no_grad():
            boxes, points = detect_face(images, min_size, *self.nets, list(THRESHOLDS), FACTOR, self.device)
        return list(boxes), list(points)

    def _min_size(self, square_side: int) -> float:
        return max(FACENET_MIN_FACE, self.min_face * square_side)

    def _fast(self, canvases: np.ndarray) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """(boxes, points) per equal-size square canvas; None for a canvas whose batch failed alone."""
        try:
            return list(zip(*self._search(canvases, self._min_size(canvases.shape[1]))))
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
        by_side: dict[int, list[int]] = {}
        for i, (square, _) in enumerate(scaled):
            by_side.setdefault(square.shape[0], []).append(i)
        found = [Faces()] * len(images)
        for rows in by_side.values():
            for start in range(0, len(rows), self.batch):
                part = rows[start : start + self.batch]
                for i, result in zip(part, self._fast(np.stack([scaled[i][0] for i in part]))):
                    if result is not None:
                        found[i] = _faces(*result, scaled[i][1], "fast")
        found = [f if len(f) or self._was_full(image) else self._full(image) for f, image in zip(found, images)]
        refined = upright(self.nets[2], self.device, images, [f.points for f in found])
        return [replace(f, points=points) for f, points in zip(found, refined)]

    def _was_full(self, image: np.ndarray) -> bool:
        """The fast search of this image was already facenet's default one (a small square image)."""
        h, w = image.shape[:2]
        return h == w and h <= self.side and self._min_size(h) == FACENET_MIN_FACE
