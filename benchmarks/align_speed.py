"""Face detection speed: ferbench's aligner versus facenet-pytorch's MTCNN with its default settings.

Both find the five landmarks of the same real faces: the two portraits in the shared data folder at their own
size and with their longer edge scaled to 448, 640 and 1024 px, and CK+48 frames at 48 px and scaled to 448 px.
The default is called one image at a time (`MTCNN().detect(image, landmarks=True)`, its largest face), as
alignment scripts do; the aligner is `harness.align.detect.Detector` with its settings and face choice. Per
group it prints the time per image of each, the speed ratio, the largest landmark distance (source pixels, and
in the 112×112 aligned crop) and the faces the default finds that the aligner loses. For scale, `jitter` is the
default's own landmark distance when its input is shifted by one pixel. Each group is timed `--repeats` times
after a warm-up and the fastest pass counts. Run:
`python benchmarks/align_speed.py [--device cpu|cuda] [--side PX] [--min-face F] [--batch N] [--ck N] [--threads N]`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from harness.align.choice import choose
from harness.align.detect import Detector
from harness.align.template import similarity

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
PORTRAITS = [SHARED / "faces" / "portrait-1.jpg", SHARED / "faces" / "portrait-2.jpg"]
CK48 = SHARED / "datasets" / "CK+48"


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def scaled(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = side / max(h, w)
    return cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def groups(ck: int) -> dict[str, list[np.ndarray]]:
    portraits = [rgb(p) for p in PORTRAITS if p.is_file()]
    if not portraits:
        raise SystemExit(f"no portraits in {SHARED / 'faces'}")
    found = {"portraits, own size": portraits}
    for side in (448, 640, 1024):
        found[f"portraits, {side} px"] = [scaled(p, side) for p in portraits]
    frames = sorted(CK48.glob("*/*.png"))[:: max(1, len(list(CK48.glob("*/*.png"))) // ck)] if CK48.is_dir() else []
    if frames:
        small = [rgb(f) for f in frames[:ck]]
        found["CK+48, 48 px"] = small
        found["CK+48, 448 px"] = [scaled(f, 448) for f in small]
    return found


def timed(function, images: list[np.ndarray], repeats: int) -> tuple[float, list]:
    function(images[:1])
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = function(images)
        best = min(best, time.perf_counter() - start)
    return best / len(images), out


def largest(boxes, points) -> np.ndarray | None:
    """facenet's default pick (`select_largest`): its first face."""
    return None if boxes is None else np.asarray(points[0], dtype=np.float64)


def crop_scale(points: np.ndarray) -> float:
    """Source pixels → 112×112 crop pixels, for the crop these landmarks give."""
    matrix = similarity(points, 112)
    return float(np.hypot(matrix[0, 0], matrix[1, 0])) if matrix is not None else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--side", type=int, default=320, help="canvas side of the fast search")
    parser.add_argument("--min-face", type=float, default=0.15, help="smallest face searched, fraction of the side")
    parser.add_argument("--batch", type=int, default=None, help="images per MTCNN batch (default: 1 CPU, 32 GPU)")
    parser.add_argument("--ck", type=int, default=40, help="CK+48 frames per CK group")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from facenet_pytorch import MTCNN

    default = MTCNN(device=args.device)
    aligner = Detector(args.device, side=args.side, min_face=args.min_face, batch=args.batch)

    def run_default(images):
        return [largest(*default.detect(image, landmarks=True)[::2]) for image in images]

    def run_aligner(images):
        out = []
        for image, faces in zip(images, aligner.detect(images)):
            pick = choose(faces, image.shape).index
            out.append(None if pick is None else faces.points[pick])
        return out

    print(f"device {args.device} ({torch.get_num_threads()} threads), side {args.side}, min face {args.min_face}, "
          f"batch {aligner.batch}")
    header = f"{'images':<22}{'n':>4}{'default ms':>12}{'aligner ms':>12}{'ratio':>7}{'max px':>8}{'crop px':>8}{'jitter':>8}{'lost':>6}"
    print(header)
    total_default = total_aligner = 0.0
    for name, images in groups(args.ck).items():
        t_default, reference = timed(run_default, images, args.repeats)
        t_aligner, ours = timed(run_aligner, images, args.repeats)
        shifted = run_default([image[1:, 1:] for image in images])
        distance, in_crop, jitter, lost = [], [], [], 0
        for ref, mine, moved in zip(reference, ours, shifted):
            if ref is None:
                continue
            if mine is None:
                lost += 1
                continue
            gap = np.linalg.norm(mine - ref, axis=1).max()
            distance.append(gap)
            in_crop.append(gap * crop_scale(ref))
            if moved is not None:
                jitter.append(np.linalg.norm(moved + 1 - ref, axis=1).max())
        if min(img.shape[0] for img in images) >= 448 or max(img.shape[:2] for img in images)[0] >= 448:
            total_default += t_default * len(images)
            total_aligner += t_aligner * len(images)
        worst = lambda values: f"{max(values):.1f}" if values else "-"
        print(f"{name:<22}{len(images):>4}{t_default * 1e3:>12.1f}{t_aligner * 1e3:>12.1f}{t_default / t_aligner:>7.2f}"
              f"{worst(distance):>8}{worst(in_crop):>8}{worst(jitter):>8}{lost:>6}")
    if total_aligner:
        print(f"speed ratio at ≥ 448 px: {total_default / total_aligner:.2f}×")


if __name__ == "__main__":
    main()
