"""`ferbench predict`: a run's saved model on the user's own images, folders or videos.

Each face is found and aligned as `ferbench align` does it (harness/align: MTCNN five points onto the ArcFace
template) at the aligned size the run trained on (its env.json names the aligned set; its settings the size),
then resized to the model's input as the image cache resizes (bilinear) and scored with the model's own eval
transform and forward. A run trained on un-aligned images gets faces aligned at 112 px all the same (a face must be
cut from a photo somehow, and the template crop is what `ferbench align` would give its data); the CSV notes it.
Videos are read frame by frame, every n-th frame; a video model (DFER-CLIP) gets clips of its frame count made of
the most confident face of consecutive read frames, one row per clip.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from harness.config import Config
from harness.errors import FerbenchError
from harness.paths import Paths

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})
UNALIGNED_SIZE = 112
CLIP_FRAMES = 16


@dataclass(frozen=True)
class Frame:
    path: str
    frame: int | None
    """Frame number in a video; None for an image."""
    rgb: np.ndarray


def inputs(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(images, videos) named or inside the named folders (recursively, sorted)."""
    images, videos = [], []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            found = [path]
        else:
            raise FerbenchError(f"{path}: no such file or folder", exit_code=2)
        for file in found:
            suffix = file.suffix.lower()
            (images if suffix in IMAGE_SUFFIXES else videos if suffix in VIDEO_SUFFIXES else []).append(file)
    if not images and not videos:
        raise FerbenchError(f"no image ({', '.join(sorted(IMAGE_SUFFIXES))}) or video in {', '.join(map(str, paths))}", exit_code=2)
    return images, videos


def read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            return np.asarray(opened.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise FerbenchError(f"{path}: cannot read the image: {err}") from None


def video_frames(path: Path, every: int) -> Iterator[Frame]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise FerbenchError(f"{path}: cannot open the video")
    index = 0
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            if index % every == 0:
                yield Frame(str(path), index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1
    finally:
        capture.release()


def frame_count(path: Path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    finally:
        capture.release()


def aligned_size(run_dir: Path) -> tuple[int, str]:
    """(template size, note): the run's aligned set's size, or 112 for a run on un-aligned images."""
    from harness.align.manifest import read_settings
    from harness.files import read_json

    env = read_json(run_dir / "env.json")
    if env.get("aligned_dir"):
        recorded = read_settings(Path(env["aligned_dir"]))
        if recorded is not None:
            return int(recorded["settings"]["size"]), "aligned as the run's data"
        size = Path(env["aligned_dir"]).name.removeprefix("aligned_")
        if size.isdigit():
            return int(size), "aligned as the run's data"
    return UNALIGNED_SIZE, "run trained on un-aligned images; faces aligned at 112 px"


def faces_of(detector, rgb: np.ndarray, size: int) -> list[tuple[tuple[float, ...], float, np.ndarray]]:
    """(box, score, aligned size×size crop) of every face, most confident first."""
    from harness.align import crops, template

    found = detector.detect([rgb])[0]
    out = []
    for box, score, points in zip(found.boxes, found.scores, found.points):
        matrix = template.similarity(points, size)
        crop = template.warp(rgb, matrix, size) if matrix is not None else crops.fallback(rgb, size, tuple(int(v) for v in box))
        out.append((tuple(round(float(v), 1) for v in box), float(score), crop))
    return out


def to_input(crop: np.ndarray, size: int) -> np.ndarray:
    """uint8 [3, size, size], resized as the image cache resizes (PIL bilinear)."""
    from PIL import Image

    return np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8).transpose(2, 0, 1)


class Scorer:
    def __init__(self, model, adapter, input_size: int, device):
        self.model, self.adapter, self.size, self.device = model.eval().to(device), adapter, input_size, device
        self.transform = adapter.eval_transform(input_size)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = self.transform(torch.from_numpy(batch).to(self.device))
            logits = self.adapter.logits(self.adapter.eval_forward(self.model, x)).float()
        return logits.softmax(dim=1).cpu().numpy()


def annotate(rgb: np.ndarray, rows: list[dict], out: Path) -> None:
    import cv2

    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    thickness = max(1, round(max(image.shape[:2]) / 400))
    for row in rows:
        left, top, right, bottom = (int(round(row[k])) for k in ("box_left", "box_top", "box_right", "box_bottom"))
        cv2.rectangle(image, (left, top), (right, bottom), (0, 200, 0), thickness)
        text = f"{row['label']} {row['probability']:.2f}"
        cv2.putText(image, text, (left, max(12, top - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, (0, 200, 0), thickness)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), image)


def predict(cfg: Config, paths: Paths, run_id: str, targets: list[Path], out_csv: Path, annotate_dir: Path | None = None,
            every: int = 10, device: str = "auto", progress: Callable[[str, int, int], None] = lambda what, done, total: None) -> int:
    """Write the CSV; return its number of rows."""
    from harness.align.detect import Detector
    from harness.evaluate.engine import _device, build_model, run_weights

    images, videos = inputs(targets)
    weights, run_dir = run_weights(paths.results, run_id)
    size, note = aligned_size(run_dir)
    torch_device = _device(device)
    model, adapter, _ = build_model(cfg, paths, weights)
    if adapter.eval_forward_given_labels is not None:
        raise FerbenchError(f"model '{weights.model}' reads each face's true label at test time (test_label_input); "
                            "it cannot classify unlabelled faces", exit_code=2)
    scorer = Scorer(model, adapter, weights.input_size, torch_device)
    detector = Detector(device=str(torch_device))
    video_model = cfg.model(weights.model).video
    if video_model and images:
        raise FerbenchError(f"model '{weights.model}' takes video clips; give it videos, not images", exit_code=2)
    header = ["path", "frame", "face", "box_left", "box_top", "box_right", "box_bottom", "detection_score", "label",
              "probability", *[f"p_{c}" for c in weights.classes], "note"]
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with out_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()

        def emit(frame: Frame, faces, probabilities) -> None:
            nonlocal written
            rows = []
            for index, ((box, score, _), p) in enumerate(zip(faces, probabilities)):
                best = int(p.argmax())
                row = dict(path=frame.path, frame="" if frame.frame is None else frame.frame, face=index,
                           box_left=box[0], box_top=box[1], box_right=box[2], box_bottom=box[3],
                           detection_score=round(score, 4), label=weights.classes[best], probability=round(float(p[best]), 6),
                           note=note, **{f"p_{c}": round(float(v), 6) for c, v in zip(weights.classes, p)})
                rows.append(row)
                writer.writerow(row)
            written += len(rows)
            if annotate_dir is not None and rows:
                name = Path(frame.path).stem + (f"_{frame.frame:06d}" if frame.frame is not None else "") + ".png"
                annotate(frame.rgb, rows, annotate_dir / name)

        def score_frame(frame: Frame) -> None:
            faces = faces_of(detector, frame.rgb, size)
            if faces:
                emit(frame, faces, scorer(np.stack([to_input(crop, weights.input_size) for _, _, crop in faces])))

        for done, path in enumerate(images, 1):
            score_frame(Frame(str(path), None, read_image(path)))
            progress("images", done, len(images))
        for path in videos:
            total = -(-frame_count(path) // every)
            clip: list[tuple[Frame, tuple]] = []
            for done, frame in enumerate(video_frames(path, every), 1):
                if video_model:
                    faces = faces_of(detector, frame.rgb, size)
                    if faces:
                        clip.append((frame, faces[0]))
                    if len(clip) == CLIP_FRAMES:
                        batch = np.stack([to_input(face[2], weights.input_size) for _, face in clip])[None]
                        emit(clip[0][0], [clip[0][1]], scorer(batch))
                        clip = []
                else:
                    score_frame(frame)
                progress(path.name, done, total)
    return written
