"""The parts of alignment that need no detector: template, similarity and warp, face choice, crop names, canvas."""

import numpy as np
import pytest

from harness.align.choice import choose
from harness.align.crops import fallback, region
from harness.align.detect import Faces, canvas
from harness.align.manifest import output_name
from harness.align.template import TEMPLATE_112, apply, similarity, template, warp


def similarity_matrix(degrees: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    angle = np.deg2rad(degrees)
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def test_template_is_arcface_and_scales_with_the_size():
    assert TEMPLATE_112[0].tolist() == [38.2946, 51.6963] and TEMPLATE_112[4].tolist() == [70.7299, 92.2041]
    assert np.allclose(template(224), 2 * TEMPLATE_112)
    with pytest.raises(ValueError):
        template(100)


def test_similarity_is_the_least_squares_fit_of_scikit_image():
    from skimage.transform import SimilarityTransform

    rng = np.random.default_rng(1)
    for size in (112, 224):
        truth = similarity_matrix(-17, 2.7, (140, 90))
        points = apply(truth, template(size)) + rng.normal(0, 1.5, (5, 2))
        ours = similarity(points, size)
        theirs = SimilarityTransform.from_estimate(points, template(size))
        assert np.allclose(apply(ours, points), theirs(points), atol=1e-3)


def test_warp_puts_marked_points_on_the_template():
    """Five blurred dots drawn where a rotated, scaled face would have its landmarks land on the template."""
    size, sigma = 224, 2.0
    face_to_image = similarity_matrix(25, 1.6, (60, 40))
    points = apply(face_to_image, template(size) / 2)
    yy, xx = np.mgrid[0:420, 0:420]
    image = sum(np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)) for x, y in points)
    image = np.repeat((255 * image).clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
    crop = warp(image, similarity(points, size), size).astype(np.float64)[..., 0]
    for x, y in template(size):
        x0, y0 = int(round(x)), int(round(y))
        window = crop[y0 - 8 : y0 + 9, x0 - 8 : x0 + 9]
        wy, wx = np.mgrid[y0 - 8 : y0 + 9, x0 - 8 : x0 + 9]
        centre = (window * wx).sum() / window.sum(), (window * wy).sum() / window.sum()
        assert np.hypot(centre[0] - x, centre[1] - y) < 0.5, (x, y, centre)


@pytest.mark.parametrize("points", [np.full((5, 2), 40.0), np.array([[1, 1], [2, 1], [1, 2], [np.nan, 3], [4, 4]])])
def test_degenerate_landmarks_give_no_similarity(points):
    assert similarity(points, 112) is None


def faces(boxes, scores) -> Faces:
    boxes = np.array(boxes, dtype=np.float64)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    return Faces(boxes=boxes, scores=np.array(scores, dtype=np.float64), points=np.repeat(centres[:, None], 5, axis=1))


def test_choice_takes_the_largest_central_face_and_counts_rivals():
    found = faces([[0, 0, 60, 60], [70, 70, 130, 130], [150, 150, 170, 170]], [0.99, 0.98, 0.99])
    picked = choose(found, (200, 200, 3))
    assert picked.index == 1 and picked.rivals == 1  # the corner face is as large; the small one is no rival
    alone = choose(faces([[70, 70, 130, 130], [0, 0, 20, 20]], [0.99, 0.99]), (200, 200, 3))
    assert (alone.index, alone.rivals) == (0, 0)


def test_choice_follows_the_labelled_box():
    found = faces([[70, 70, 130, 130], [0, 0, 50, 50]], [0.99, 0.95])
    assert choose(found, (200, 200, 3), box=(2, 0, 48, 52)).index == 1
    assert choose(found, (200, 200, 3), box=(150, 150, 190, 190)).index is None
    assert choose(Faces(), (200, 200, 3)).index is None


def test_crop_names_keep_the_sample_path():
    assert output_name("happy/S010_004_00000017.jpg", None) == "happy/S010_004_00000017.png"
    assert output_name("image/origin/afraid_African_214.jpg", 2) == "image/origin/afraid_African_214_face2.png"
    assert output_name("fer2013.csv#17", None) == "fer2013/17.png"


def test_canvas_shrinks_large_images_only_and_pads_to_a_square():
    wide = np.full((300, 600, 3), 200, np.uint8)
    square, scale = canvas(wide, 224)
    assert square.shape == (224, 224, 3) and scale == pytest.approx(224 / 600)
    assert (square[:112] == 200).all() and (square[112:] == 0).all()
    small, scale = canvas(np.full((40, 48, 3), 9, np.uint8), 224)
    assert small.shape == (48, 48, 3) and scale == 1 and (small[:40] == 9).all() and (small[40:] == 0).all()


def test_fallback_is_the_centre_square_or_the_labelled_box():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 50:150] = 255
    assert (fallback(image, 112, None) == 255).all()
    image[10:30, 10:30] = 77
    assert (fallback(image, 112, (10, 10, 30, 30)) == 77).all()
    assert region((10, 10, 30, 30), image.shape) == (0, 0, 40, 40)


@pytest.mark.parametrize("face_scale", [0.5, 1.0, 4.0])
def test_the_upright_crop_maps_back_to_the_image_exactly(face_scale):
    """A dot at the nose, found in O-net's upright 48×48 crop (whether the face is warped directly or shrunk
    first), maps back to where it is in the image: no half-pixel slip between the crop and its inverse."""
    import cv2

    from harness.align.refine import _to_crop, _warp

    points = apply(similarity_matrix(-30, face_scale, (100, 80)), TEMPLATE_112)
    matrix = _to_crop(points)
    scale = np.hypot(matrix[0, 0], matrix[1, 0])
    nose = points[2]
    side = int(max(points.max(axis=0)) + 200 * face_scale)
    yy, xx = np.mgrid[0:side, 0:side]
    dot = np.exp(-((xx - nose[0]) ** 2 + (yy - nose[1]) ** 2) / (2 * (2.5 / scale) ** 2))
    crop = _warp(np.repeat((255 * dot).astype(np.uint8)[..., None], 3, axis=2), matrix)[..., 0].astype(np.float64)
    wy, wx = np.mgrid[0:48, 0:48]
    found = np.array([(crop * wx).sum(), (crop * wy).sum()]) / crop.sum()
    back = apply(cv2.invertAffineTransform(matrix), found)[0]
    assert np.hypot(*(back - nose)) * scale < 0.15, (back, nose)
