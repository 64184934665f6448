"""Tiny fake datasets in every supported layout, with what a loader must make of them.

    from tests.data.fakes import write_fake, fake_dataset
    expected = write_fake("rafdb-aligned", tmp_path / "rafdb")
    table = load_table(tmp_path / "rafdb", fake_dataset("rafdb-aligned"))
    assert len(table) == expected["count"]

`write_fake(layout, root)` writes a handful of small random images (or CSV rows of pixels, or frame folders)
and returns a dict:

- `dataset`: the registry dataset the layout belongs to; `fake_dataset(layout)` gives it, restricted to this layout
- `count`: rows of the loaded table; `labels`: {canonical label: rows}; `splits`: {split or None: rows}
- `subjects`: number of distinct subjects (None without subjects); `folds`: {fold: rows} (None without folds)
- `label_file`: path of the main label file relative to the root (None for folder layouts)
- `pixels`: {path: 48×48 uint8 array} for pixel-CSV layouts (else absent)

The native → canonical pairs are written out here independently of harness/data/vocabulary.py, so a wrong
map there fails the tests instead of being copied into them.
"""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from harness import config
from harness.config import Dataset

RAFDB = {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "anger", 7: "neutral"}
FER2013 = {0: "anger", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}
FERPLUS_VOTES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
FERPLUS_CANONICAL = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
                     "anger": "anger", "disgust": "disgust", "fear": "fear", "contempt": "contempt"}
FERPLUS_CROSSVAL = {0: "neutral", 1: "happy", 2: "surprise", 3: "sad", 4: "anger", 5: "disgust", 6: "fear",
                    7: "contempt"}
AFFECTNET = {0: "neutral", 1: "happy", 2: "sad", 3: "surprise", 4: "fear", 5: "disgust", 6: "anger", 7: "contempt"}
SFEW = {"Angry": "anger", "Disgust": "disgust", "Fear": "fear", "Happy": "happy", "Neutral": "neutral", "Sad": "sad",
        "Surprise": "surprise"}
SFEW_CROSSVAL = {0: "anger", 1: "disgust", 2: "fear", 3: "happy", 4: "neutral", 5: "sad", 6: "surprise"}
CKPLUS48 = {"anger": "anger", "contempt": "contempt", "disgust": "disgust", "fear": "fear", "happy": "happy",
            "sadness": "sad", "surprise": "surprise"}
CKPLUS_CROSSVAL = {0: "anger", 1: "contempt", 2: "disgust", 3: "fear", 4: "happy", 5: "sad", 6: "surprise"}
KMUFED = {"AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happy", "SA": "sad", "SU": "surprise"}
DFER = {0: "happy", 1: "sad", 2: "neutral", 3: "anger", 4: "surprise", 5: "disgust", 6: "fear"}
MAFW = {**DFER, 7: "contempt", 8: "anxiety", 9: "helplessness", 10: "disappointment"}
CANONICAL7 = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")

CLUSTER_PREFIX = "/data/EECS-IoannisLab/datasets"
"""The absolute prefix of DFER-CLIP's published lists, for fakes written with `absolute=True`."""


def image(path: Path, size: int = 8, grey: bool = False) -> Path:
    """A small random image, the same for the same file name."""
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    shape = (size, size) if grey else (size, size, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def _expected(samples: list[tuple], label_file: str | None, **extra) -> dict:
    """`samples`: (canonical label, split, subject, fold) of each row the loader must return."""
    labels, splits, subjects, folds = zip(*samples)
    return dict(
        count=len(samples),
        labels=dict(Counter(labels)),
        splits=dict(Counter(splits)),
        subjects=len(set(subjects)) if any(s is not None for s in subjects) else None,
        folds=dict(Counter(folds)) if any(f is not None for f in folds) else None,
        label_file=label_file,
        **extra,
    )


def _split_folders(root: Path) -> dict:
    samples = []
    for split, n in (("train", 2), ("test", 1)):
        for label in CANONICAL7:
            for i in range(n):
                image(root / split / label / f"{label}_{i}.png")
                samples.append((label, split, None, None))
    return _expected(samples, None)


def _class_folders(root: Path) -> dict:
    samples = []
    for label in CANONICAL7:
        for i in range(2):
            image(root / label / f"{label}_{i}.png")
            samples.append((label, None, None, None))
    return _expected(samples, None)


def _rafdb(aligned: bool) -> Callable[[Path], dict]:
    def write(root: Path) -> dict:
        lines, samples, numbers = [], [], Counter()
        for native, label in RAFDB.items():
            for split, n in (("train", 2), ("test", 1)):
                for _ in range(n):
                    numbers[split] += 1
                    name = f"{split}_{numbers[split]:05d}.jpg" if split == "train" else f"test_{numbers[split]:04d}.jpg"
                    file = name.replace(".jpg", "_aligned.jpg") if aligned else name
                    image(root / "Image" / ("aligned" if aligned else "original") / file)
                    lines.append(f"{name} {native}")
                    samples.append((label, split, None, None))
        _write(root / "EmoLabel/list_patition_label.txt", lines)
        return _expected(samples, "EmoLabel/list_patition_label.txt")
    return write


def _pixels(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def _fer2013(name: str, usage: bool) -> Callable[[Path], dict]:
    def write(root: Path) -> dict:
        lines = ["emotion,pixels,Usage" if usage else "emotion,pixels"]
        samples, pixels = [], {}
        for native, label in FER2013.items():
            for split, usage_name in (("train", "Training"), ("train", "Training"), ("val", "PublicTest"),
                                      ("test", "PrivateTest")):
                array = _pixels(len(lines))
                pixels[f"{name}#{len(lines) + 1}"] = array
                text = " ".join(str(v) for v in array.ravel())
                lines.append(f"{native},{text},{usage_name}" if usage else f"{native},{text}")
                samples.append((label, split if usage else None, None, None))
        _write(root / name, lines)
        return _expected(samples, name, pixels=pixels)
    return write


def _ferplus(root: Path) -> dict:
    """Clear majorities for each emotion in each usage, plus the cases the majority rule exists for."""
    folders = {"Training": ("FER2013Train", "train"), "PublicTest": ("FER2013Valid", "val"),
               "PrivateTest": ("FER2013Test", "test")}
    lines, samples = [",".join(("Usage", "Image name", *FERPLUS_VOTES))], []

    def row(usage: str, votes: dict, named: bool = True) -> str:
        name = f"fer{len(lines):07d}.png" if named else ""
        if named:
            image(root / folders[usage][0] / name, size=48, grey=True)
        return ",".join((usage, name, *(str(votes.get(v, 0)) for v in FERPLUS_VOTES)))

    for usage, (_, split) in folders.items():
        for vote in FERPLUS_CANONICAL:
            lines.append(row(usage, {vote: 7, "neutral" if vote != "neutral" else "sadness": 3}))
            samples.append((FERPLUS_CANONICAL[vote], split, None, None))
    lines.append(row("Training", {"happiness": 3, "anger": 1, "fear": 1, "sadness": 1, "surprise": 1,
                                  "disgust": 1, "contempt": 1, "neutral": 1}))   # singles dropped: 3 of 3
    samples.append(("happy", "train", None, None))
    lines.append(row("Training", {"happiness": 4, "sadness": 4, "anger": 2}))     # no majority
    lines.append(row("Training", {"unknown": 6, "happiness": 4}))                 # unknown wins
    lines.append(row("PublicTest", {"NF": 10}))                                    # not a face
    lines.append(row("Training", {"neutral": 10}, named=False))                    # no image in the release
    _write(root / "fer2013new.csv", lines)
    return _expected(samples, "fer2013new.csv")


def _ferplus_crossval(root: Path) -> dict:
    lines, samples = ["Image name,label"], []
    for native, label in FERPLUS_CROSSVAL.items():
        for _ in range(2):
            name = f"fer{len(lines):07d}.png"
            image(root / "FERPlus_Image" / name, size=48, grey=True)
            lines.append(f"{name},{native}")
            samples.append((label, None, None, None))
    _write(root / "FERPlus_Label_modified.csv", lines)
    return _expected(samples, "FERPlus_Label_modified.csv")


def _expw(aligned: bool) -> Callable[[Path], dict]:
    """One image per label; the first image holds a second face. With `aligned`, the last image failed alignment."""
    def write(root: Path) -> dict:
        lines, samples = [], []
        names = [f"{label}_web_{i}.jpg" for i, label in enumerate(FER2013.values())]
        faces = [(names[0], 0, 0), (names[0], 1, 3)] + [(names[n], 0, n) for n in range(1, len(names))]
        for name, face_id, native in faces:
            top, left = 4 + 20 * face_id, 2
            lines.append(f"{name} {face_id} {top} {left} {left + 16} {top + 16} 0.{90 + face_id} {native}")
        for i, name in enumerate(names):
            if aligned and i == len(names) - 1:
                continue
            image(root / ("aligned_image" if aligned else "image/origin") / name, size=8 if aligned else 48)
        for name, face_id, native in faces:
            if not (aligned and name == names[-1]):
                samples.append((FER2013[native], None, None, None))
        _write(root / "label/label.lst", lines)
        return _expected(samples, "label/label.lst")
    return write


def _sfew(aligned: bool) -> Callable[[Path], dict]:
    def write(root: Path) -> dict:
        samples = []
        for folder, split, n in (("Train", "train", 2), ("Val", "test", 1)):
            base = root / folder / f"{folder}_Aligned_Faces" if aligned else root / folder
            for native, label in SFEW.items():
                for i in range(n):
                    image(base / native / f"{native}_{folder}_{i}.png")
                    samples.append((label, split, None, None))
        image(root / "Test" / "Test_Aligned_Faces" / "unlabelled.png")
        return _expected(samples, None)
    return write


def _sfew_crossval(root: Path) -> dict:
    lines, samples = ["image_name,label"], []
    for native, label in SFEW_CROSSVAL.items():
        for _ in range(2):
            name = f"image_{len(lines) - 1:06d}.png"
            image(root / "sfew2.0_images" / name)
            lines.append(f"{name},{native}")
            samples.append((label, None, None, None))
    _write(root / "sfew_2.0_labels.csv", lines)
    return _expected(samples, "sfew_2.0_labels.csv")


def _ckplus_folders(root: Path) -> dict:
    """Two subjects per class (four subjects overall), one sequence each, the last three frames."""
    samples = []
    for i, (native, label) in enumerate(CKPLUS48.items()):
        for subject in (f"S{10 + i % 4:03d}", f"S{10 + (i + 1) % 4:03d}"):
            for frame in range(15, 18):
                image(root / native / f"{subject}_{i + 1:03d}_{frame:08d}.png", size=48, grey=True)
                samples.append((label, None, subject, None))
    return _expected(samples, None)


def _ckplus_crossval(root: Path) -> dict:
    lines, samples = ["image_name,label"], []
    for native, label in CKPLUS_CROSSVAL.items():
        for _ in range(2):
            name = f"image_{len(lines) - 1:06d}.png"
            image(root / "ckplus_images" / name, grey=True)
            lines.append(f"{name},{native}")
            samples.append((label, None, None, None))
    _write(root / "ckplus_labels.csv", lines)
    return _expected(samples, "ckplus_labels.csv")


def _affectnet(root: Path) -> dict:
    """Every expression code 0-10 in both lists; 8-10 (none, uncertain, non-face) must be left out."""
    header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
    samples = []
    for name, split, n in (("training.csv", "train", 2), ("validation.csv", "test", 1)):
        lines = [header]
        for code in range(11):
            for i in range(n):
                rel = f"{100 + code}/{split}{code:02d}{i}.jpg"
                image(root / "Manually_Annotated_Images" / rel)
                lines.append(f'{rel},1,2,30,30,"1.0;2.0;3.0",{code},0.1,-0.2')
                if code in AFFECTNET:
                    samples.append((AFFECTNET[code], split, None, None))
        _write(root / "Manually_Annotated_file_lists" / name, lines)
    return _expected(samples, "Manually_Annotated_file_lists/training.csv")


def _kmufed(root: Path) -> dict:
    """Three subjects × six codes × two frames, plus a byte copy under the unpadded subject spelling."""
    samples = []
    for subject, person in (("01", "mr"), ("02", "kj"), ("03", "sh")):
        for code, label in KMUFED.items():
            for frame in (1, 2):
                image(root / f"{subject}_{code}_{person}_{frame:03d}.jpg")
                samples.append((label, None, subject, None))
    (root / "1_AN_mr_001.jpg").write_bytes((root / "01_AN_mr_001.jpg").read_bytes())
    return _expected(samples, None)


def _frames(folder: Path, count: int) -> None:
    for i in range(count):
        image(folder / f"{i + 1:05d}.jpg", size=4)


def _folded_video(prefix: str, frames_folder: str, labels: dict[int, str], release_dir: str):
    def write(root: Path, absolute: bool = False) -> dict:
        clips, samples = [], []
        for i, (native, label) in enumerate(list(labels.items()) * 2):
            path = f"{frames_folder}/{i + 1:05d}"
            count = 2 + i % 2
            _frames(root / path, count)
            fold = i % 5 + 1
            listed = f"{CLUSTER_PREFIX}/{release_dir}/{path}" if absolute else path
            clips.append((f"{listed} {count} {native}", fold))
            samples.append((label, None, None, fold))
        for k in range(1, 6):
            _write(root / "annotation" / f"{prefix}_set_{k}_test.txt", [line for line, f in clips if f == k])
            _write(root / "annotation" / f"{prefix}_set_{k}_train.txt", [line for line, f in clips if f != k])
        return _expected(samples, f"annotation/{prefix}_set_1_test.txt")
    return write


def _ferv39k(root: Path, absolute: bool = False) -> dict:
    classes = {0: "Happy", 1: "Sad", 2: "Neutral", 3: "Angry", 4: "Surprise", 5: "Disgust", 6: "Fear"}
    lists, samples = {"train": [], "test": []}, []
    for native, label in DFER.items():
        for i, split in enumerate(("train", "train", "test")):
            path = f"2_ClipsforFaceCrop/Action/{classes[native]}/{native * 10 + i:04d}"
            _frames(root / path, 2)
            listed = f"{CLUSTER_PREFIX}/FERV39K/{path}" if absolute else path
            lists[split].append(f"{listed} 2 {native}")
            samples.append((label, split, None, None))
    for split, lines in lists.items():
        _write(root / "annotation" / f"FERV39K_{split}.txt", lines)
    return _expected(samples, "annotation/FERV39K_train.txt")


WRITERS: dict[str, Callable[..., dict]] = {
    "split-folders": _split_folders,
    "class-folders": _class_folders,
    "rafdb-aligned": _rafdb(aligned=True),
    "rafdb-original": _rafdb(aligned=False),
    "fer2013": _fer2013("fer2013.csv", usage=True),
    "fer2013-crossval": _fer2013("fer2013_modified.csv", usage=False),
    "ferplus": _ferplus,
    "ferplus-crossval": _ferplus_crossval,
    "expw": _expw(aligned=False),
    "expw-aligned": _expw(aligned=True),
    "sfew-aligned": _sfew(aligned=True),
    "sfew": _sfew(aligned=False),
    "sfew-crossval": _sfew_crossval,
    "ckplus-folders": _ckplus_folders,
    "ckplus-crossval": _ckplus_crossval,
    "affectnet": _affectnet,
    "kmufed": _kmufed,
    "dfew": _folded_video("DFEW", "DFEW_Frame_Face", DFER, "DFEW"),
    "ferv39k": _ferv39k,
    "mafw": _folded_video("MAFW", "data/faces", MAFW, "MAFW"),
}
"""Layout name → writer; every layout in `harness.data.loaders.LAYOUTS` has one."""


DATASETS = {
    "split-folders": "synthetic", "class-folders": "synthetic", "rafdb-aligned": "rafdb", "rafdb-original": "rafdb",
    "fer2013": "fer2013", "fer2013-crossval": "fer2013", "ferplus": "ferplus", "ferplus-crossval": "ferplus",
    "expw": "expw", "expw-aligned": "expw", "sfew-aligned": "sfew", "sfew": "sfew", "sfew-crossval": "sfew",
    "ckplus-folders": "ckplus", "ckplus-crossval": "ckplus", "affectnet": "affectnet8", "kmufed": "kmufed",
    "dfew": "dfew", "ferv39k": "ferv39k", "mafw": "mafw",
}
"""Layout name → the registry dataset it belongs to (`class-folders`, which no real dataset uses, borrows synthetic)."""


def write_fake(layout: str, root: Path, **options) -> dict:
    """Write a fake dataset in `layout` under `root` (created if needed) and return what loading it must give.
    Video layouts take `absolute=True` to list clips by DFER-CLIP's absolute cluster paths."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return dict(dataset=DATASETS[layout], **WRITERS[layout](root, **options))


def fake_dataset(layout: str, name: str | None = None) -> Dataset:
    """The registry's dataset for `layout` (or `name`), accepting only that layout."""
    dataset = config.load().dataset(name or DATASETS[layout])
    return dataset.model_copy(update={"layouts": (layout,)})
