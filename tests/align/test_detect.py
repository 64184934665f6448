"""Real MTCNN on a real face: the crop puts the eyes on the template, and does not depend on the face's angle."""

import numpy as np
import pytest
from facenet_pytorch import MTCNN

from harness.align.choice import choose
from harness.align.crops import fallback
from harness.align.template import apply, similarity, template, warp
from tests.align.conftest import correlation, noise, rotated


def aligned(detector, image: np.ndarray, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """(crop, the similarity used) for the face the aligner picks."""
    faces = detector.detect([image])[0]
    picked = choose(faces, image.shape)
    assert picked.index is not None, "no face found"
    return warp(image, similarity(faces.points[picked.index], size), size), faces.points[picked.index]


@pytest.mark.parametrize("degrees, scale", [(0, 1.0), (25, 0.7)])
@pytest.mark.parametrize("size", [112, 224])
def test_the_eyes_of_the_crop_land_on_the_template(detector, astronaut, size, degrees, scale):
    """facenet's own MTCNN, run again on the crop, finds the eyes where the similarity sent them (within 2 px at
    112) and so near the template's eyes: the five-point least-squares fit itself leaves this smiling face's eyes
    about 2.5 px from the template (her wide mouth pulls the fit), hence 2 px plus that residual.

    The crop is re-detected at 224 px with half its width of surrounding image on each side (the same similarity,
    a larger canvas): on a tight 112 px crop that the face fills, MTCNN's own points move by 2–4 px."""
    image = rotated(astronaut, degrees, scale)
    crop, points = aligned(detector, image, size)
    matrix = similarity(points, size)
    assert crop.shape == (size, size, 3)
    check = similarity(points, 224) + [[0, 0, 112], [0, 0, 112]]
    _, _, found = MTCNN().detect(warp(image, check, 448), landmarks=True)
    eyes = (np.asarray(found[0][:2], dtype=np.float64) - 112) / 2
    placed, target = apply(matrix, points[:2]) * 112 / size, template(112)[:2]
    residual = np.linalg.norm(placed - target, axis=1)
    assert residual.max() < 3.5
    assert np.linalg.norm(eyes - placed, axis=1).max() < 2.0
    assert (np.linalg.norm(eyes - target, axis=1) < residual + 2.0).all()


@pytest.mark.parametrize("degrees, scale", [(25, 0.7), (-25, 1.2)])
def test_a_rotated_rescaled_copy_gives_nearly_the_same_crop(detector, astronaut, degrees, scale):
    """Compared on the crop's inner 80×80 pixels, where the turned copy's black corners do not reach."""
    upright, _ = aligned(detector, astronaut)
    turned = rotated(astronaut, degrees, scale)
    crop, _ = aligned(detector, turned)
    inner = np.s_[16:96, 16:96]
    assert correlation(crop[inner], upright[inner]) > 0.95
    assert correlation(fallback(turned, 112, None)[inner], upright[inner]) < 0.5  # what no alignment would give


def test_noise_has_no_face(detector):
    found = detector.detect([noise(160), noise(48, seed=1)])
    assert [len(f) for f in found] == [0, 0]
    assert found[0].search == "full"  # the fast search found nothing, and so did facenet's default one
