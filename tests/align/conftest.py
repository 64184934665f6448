"""Fixtures for the aligner: one MTCNN for the whole session, a real face, and tiny datasets made of real faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from harness.config import Dataset

FACES = Dataset(name="faces", classes=("happy", "sad"), layouts=("class-folders",))
"""A class-folders dataset (`happy/`, `sad/`), which is aligned with face detection."""


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins): a real frontal face, 512×512 RGB."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def detector():
    from harness.align.detect import Detector

    return Detector("cpu")


def rotated(image: np.ndarray, degrees: float, scale: float) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), degrees, scale), (w, h))


def noise(side: int = 160, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


def write_images(root: Path, images: dict[str, np.ndarray | bytes]) -> Path:
    """Files under `root`: arrays as RGB images (format from the suffix), bytes written as they are."""
    for name, content in images.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            Image.fromarray(content).save(path)
    return root


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    grey = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float64).ravel() for x in (a, b)]
    return float(np.corrcoef(*grey)[0, 1])


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))
