"""Face detection speed: ferbench's aligner versus facenet-pytorch's MTCNN with its default settings.

Both find the five landmarks of the same real faces: the two portraits in the shared data folder at their own
size and with their longer edge scaled to 448, 640 and 1024 px, and CK+48 frames at 48 px and scaled to 448 px.
The default is called one image at a time (`MTCNN().detect(image, landmarks=True)`, its largest face), as
alignment scripts do; the aligner is `harness.align.detect.Detector` (fast search, batches, upright refinement)
with its face choice. Per group it prints the time per image of each, the speed ratio, the median and largest
landmark distance between the two (in pixels of the 112×112 crop the default's landmarks give) and the faces the
default finds that the aligner loses. For scale, `jitter` is each one's landmark distance to itself when the
input is shifted by one pixel: MTCNN's points are not more stable than that, so neither can agreement be. Each
group is timed `--repeats` times after a warm-up and the fastest pass counts. Run:
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
from harness.align.detect import BATCH, MIN_FACE, SIDE, Detector
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


def groups(ck: int) -> list[tuple[str, int | None, list[np.ndarray]]]:
    """(name, longer edge or None for mixed sizes, images)."""
    portraits = [rgb(p) for p in PORTRAITS if p.is_file()]
    if not portraits:
        raise SystemExit(f"no portraits in {SHARED / 'faces'}")
    found = [("portraits, own size", None, portraits)]
    found += [(f"portraits, {side} px", side, [scaled(p, side) for p in portraits]) for side in (448, 640, 1024)]
    frames = sorted(CK48.glob("*/*.png")) if CK48.is_dir() else []
    if frames:
        small = [rgb(f) for f in frames[:: max(1, len(frames) // ck)][:ck]]
        found += [("CK+48, 48 px", 48, small), ("CK+48, 448 px", 448, [scaled(f, 448) for f in small])]
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


def in_crop(points: np.ndarray, reference: np.ndarray) -> float:
    """The largest distance between two sets of landmarks, in pixels of the 112×112 crop `reference` gives."""
    matrix = similarity(reference, 112)
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0])) if matrix is not None else float("nan")
    return float(np.linalg.norm(points - reference, axis=1).max()) * scale


def cell(values: list[float]) -> str:
    return f"{np.median(values):.1f}/{max(values):.1f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--side", type=int, default=SIDE, help="largest square the fast search scales to")
    parser.add_argument("--min-face", type=float, default=MIN_FACE, 
                        help="smallest face searched, fraction of the square")
    parser.add_argument("--batch", type=int, default=BATCH, help="images per MTCNN batch (equal-size squares)")
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
          f"batch {aligner.batch}; distances in 112×112 crop pixels, median/max")
    print(f"{'images':<22}{'n':>4}{'default ms':>11}{'aligner ms':>11}{'ratio':>7}{'vs default':>12}"
          f"{'jitter default':>16}{'jitter aligner':>16}{'lost':>6}")
    total_default = total_aligner = 0.0
    for name, side, images in groups(args.ck):
        t_default, reference = timed(run_default, images, args.repeats)
        t_aligner, ours = timed(run_aligner, images, args.repeats)
        moved = [image[1:, 1:] for image in images]
        default_moved, ours_moved = run_default(moved), run_aligner(moved)
        gap, jitter_default, jitter_ours, lost = [], [], [], 0
        for ref, mine, ref_moved, mine_moved in zip(reference, ours, default_moved, ours_moved):
            if ref is None:
                continue
            if mine is None:
                lost += 1
                continue
            gap.append(in_crop(mine, ref))
            if ref_moved is not None:
                jitter_default.append(in_crop(ref_moved + 1, ref))
            if mine_moved is not None:
                jitter_ours.append(in_crop(mine_moved + 1, mine))
        if side is not None and side >= 448:
            total_default += t_default * len(images)
            total_aligner += t_aligner * len(images)
        print(f"{name:<22}{len(images):>4}{t_default * 1e3:>11.1f}{t_aligner * 1e3:>11.1f}{t_default / t_aligner:>7.2f}"
              f"{cell(gap):>12}{cell(jitter_default):>16}{cell(jitter_ours):>16}{lost:>6}")
    if total_aligner:
        print(f"speed ratio over the groups at ≥ 448 px: {total_default / total_aligner:.2f}×")


if __name__ == "__main__":
    main()
