"""Generated datasets in FER-crossval's own layouts (its README's `dataset/` trees), for the split tests.

N is chosen so that 0.2·N is not an integer (ShuffleSplit's ceil and DAN's int() differ) and ExpW has photos
with several faces and faces whose aligned image is missing (FER-crossval drops those before splitting).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

N = 103
TINY = Image.fromarray(np.zeros((4, 4), dtype=np.uint8))


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    TINY.save(path)


def _lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def _label_csv(root: Path, csv_names: tuple[str, ...], name_column: str, folders: tuple[str, ...], classes: int):
    lines = [f"{name_column},label"]
    for i in range(N):
        name = f"image_{i:06d}.png"
        lines.append(f"{name},{(i * 5) % classes}")
        for folder in folders:
            _image(root / folder / name)
    for csv_name in csv_names:
        _lines(root / csv_name, lines)


def ckplus(root: Path) -> None:
    _label_csv(root, ("ckplus_labels.csv",), "image_name", ("ckplus_images",), 7)


def sfew(root: Path) -> None:
    """Both names FER-crossval uses: sfew_2.0_labels.csv + sfew2.0_images/ and (GSDNet) sfew_labels.csv + sfew_images/."""
    _label_csv(root, ("sfew_2.0_labels.csv", "sfew_labels.csv"), "image_name", ("sfew2.0_images", "sfew_images"), 7)


def ferplus(root: Path) -> None:
    _label_csv(root, ("FERPlus_Label_modified.csv",), "Image name", ("FERPlus_Image",), 8)


def fer2013(root: Path) -> None:
    pixels = " ".join(["0"] * 48 * 48)
    _lines(root / "fer2013_modified.csv", ["emotion,pixels", *(f"{(i * 5) % 7},{pixels}" for i in range(N))])


def rafdb(root: Path) -> None:
    lines = []
    for i in range(N):
        name = f"train_{i + 1:05d}.jpg" if i % 4 else f"test_{i + 1:04d}.jpg"
        lines.append(f"{name} {1 + (i * 5) % 7}")
        _image(root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg"))
    _lines(root / "EmoLabel" / "list_patition_label.txt", lines)


def expw(root: Path) -> None:
    """Photo p holds 1 + p % 3 faces; every 11th photo failed alignment (no aligned image)."""
    lines, kept, p = [], 0, 0
    while kept < N:
        name, faces = f"web_photo_{p:04d}.jpg", min(1 + p % 3, N - kept)
        for face in range(faces):
            lines.append(f"{name} {face} {10 + 30 * face} 5 25 {30 + 30 * face} 0.9 {(p + face) % 7}")
        if p % 11 != 3:
            _image(root / "aligned_image" / name)
            kept += faces
        p += 1
    _lines(root / "label" / "label.lst", lines)


WRITERS = {"ckplus": ckplus, "sfew": sfew, "ferplus": ferplus, "fer2013": fer2013, "rafdb": rafdb, "expw": expw}


def write_all(mktemp) -> dict[str, Path]:
    """Every dataset's fake FER-crossval layout, each in its own folder made by `mktemp(name)`."""
    out = {}
    for dataset, write in WRITERS.items():
        out[dataset] = mktemp(dataset)
        write(out[dataset])
    return out
