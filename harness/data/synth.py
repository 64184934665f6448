"""A procedurally drawn facial-expression dataset, so the whole pipeline runs offline.

Each image is a cartoon face whose expression is carried only by the mouth, the
eyebrows and the eye openness; everything else (pose, size, skin, hair, clothes,
background, lighting, noise) is random nuisance. Expression parameters vary within
a class and overlap with neighbouring classes (fear/surprise and anger/disgust
most of all), so a classifier has something to learn but cannot score perfectly.

Every image is a pure function of (seed, class index, image index, size), so the
files are byte-identical across runs and do not depend on generation order.
"""

from __future__ import annotations

import json
import operator
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from harness.errors import FerbenchError

CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")

# Bump whenever drawing changes, so stale datasets on disk are regenerated.
GENERATOR_VERSION = 1

MANIFEST = "synth.json"
SPLITS = ("train", "test")

# Expression parameters, in units of the image side (y grows downwards).
#   mouth_w: half-width; curve: corner lift (smile > 0); open: lip gap;
#   asym: right corner lift minus left; wave: upper-lip ripple; teeth: 0..1;
#   brow_h: lift of both brows; brow_in: extra lift of the inner ends;
#   brow_arch: lift of the brow middle; eye: eye-height multiplier;
#   wrinkle: nose-wrinkle strength.
_NEUTRAL = dict(
    mouth_w=0.095, curve=0.0, open=0.0, asym=0.0, wave=0.0, teeth=0.0,
    brow_h=0.0, brow_in=0.0, brow_arch=0.006, eye=1.0, wrinkle=0.0,
)
_TARGETS = {
    "neutral": {},
    "happy": dict(mouth_w=0.12, curve=0.045, open=0.03, teeth=1.0, brow_h=0.006, eye=0.75),
    "sad": dict(mouth_w=0.085, curve=-0.035, brow_in=0.028, brow_h=-0.004, eye=0.8),
    "surprise": dict(mouth_w=0.055, open=0.085, brow_h=0.033, brow_arch=0.018, eye=1.5),
    "fear": dict(mouth_w=0.09, curve=-0.012, open=0.06, brow_h=0.027, brow_in=0.014,
                 brow_arch=0.0, eye=1.45),
    "disgust": dict(mouth_w=0.09, curve=-0.014, asym=0.03, wave=0.009, brow_h=-0.012,
                    brow_in=-0.012, eye=0.55, wrinkle=1.0),
    "anger": dict(mouth_w=0.08, curve=-0.01, brow_h=-0.014, brow_in=-0.032, brow_arch=0.0,
                  eye=0.6),
    # MAFW's four extra classes, drawn only by the video generator's MAFW layout
    "contempt": dict(mouth_w=0.09, curve=0.008, asym=0.05, brow_h=0.004, eye=0.85),
    "anxiety": dict(mouth_w=0.075, curve=-0.008, wave=0.006, brow_h=0.012, brow_in=0.02, eye=1.2),
    "helplessness": dict(mouth_w=0.09, curve=-0.02, open=0.02, brow_h=0.008, brow_in=0.03, eye=0.7),
    "disappointment": dict(mouth_w=0.1, curve=-0.026, brow_h=-0.006, brow_in=0.01, eye=0.65),
}
# Per-image jitter (standard deviation) on each parameter, sized so that
# neighbouring classes overlap in their tails.
_JITTER = dict(
    mouth_w=0.012, curve=0.011, open=0.008, asym=0.009, wave=0.003, teeth=0.0,
    brow_h=0.008, brow_in=0.008, brow_arch=0.005, eye=0.16, wrinkle=0.25,
)

# Pose nuisance: face-centre shift (fraction of the side), relative scale, in-plane rotation.
# The base scale makes a tight crop, like aligned FER datasets, so features are not tiny.
_FACE_SCALE = 1.25
_SHIFT = 0.04
_SCALE_JITTER = 0.15
_ROTATE_DEG = 15.0

_SKIN_LIGHT = np.array([241.0, 206.0, 180.0])
_SKIN_DARK = np.array([96.0, 62.0, 44.0])
_HAIR = np.array([[20, 16, 14], [60, 40, 25], [110, 75, 40], [190, 150, 90],
                  [150, 60, 30], [120, 120, 120]], dtype=float)


def _supersample(size: int) -> int:
    """Draw at 2-4x and area-downscale: anti-aliasing that stays cheap at large sizes."""
    return max(2, min(4, 512 // size))


def _expression(name: str, rng: np.random.Generator) -> dict[str, float]:
    """Interpolate neutral→class by a random intensity, then jitter each parameter."""
    target = {**_NEUTRAL, **_TARGETS[name]}
    intensity = rng.uniform(0.6, 1.15)
    p = {key: base + intensity * (target[key] - base) + rng.normal(0.0, _JITTER[key])
         for key, base in _NEUTRAL.items()}
    p["mouth_w"] = max(p["mouth_w"], 0.035)
    p["open"] = max(p["open"], 0.0)
    p["eye"] = float(np.clip(p["eye"], 0.25, 2.0))
    p["teeth"] = float(target["teeth"])
    return p


class _Canvas:
    """Draws face-frame shapes onto a supersampled image through one similarity transform.

    Face-frame coordinates are fractions of the image side with the face centre at the
    origin; applying pose here (rather than warping afterwards) keeps edges crisp.
    """

    _FRAC_BITS = 4

    def __init__(self, img: np.ndarray, centre: tuple[float, float], scale: float, angle: float):
        self.img = img
        self.side = img.shape[0]
        c, s = np.cos(angle), np.sin(angle)
        self.m = scale * self.side * np.array([[c, -s], [s, c]])
        self.t = np.array(centre) * self.side
        self.px_per_unit = scale * self.side

    def _pts(self, pts: np.ndarray) -> np.ndarray:
        xy = pts @ self.m.T + self.t
        return np.round(xy * (1 << self._FRAC_BITS)).astype(np.int32).reshape(-1, 1, 2)

    def _thick(self, width: float) -> int:
        return max(1, int(round(width * self.px_per_unit)))

    def fill(self, pts: np.ndarray, colour) -> None:
        cv2.fillPoly(self.img, [self._pts(pts)], _colour(colour), cv2.LINE_AA, self._FRAC_BITS)

    def line(self, pts: np.ndarray, colour, width: float, closed: bool = False) -> None:
        cv2.polylines(self.img, [self._pts(pts)], closed, _colour(colour), self._thick(width),
                      cv2.LINE_AA, self._FRAC_BITS)


def _colour(colour) -> tuple[float, float, float]:
    """cv2 wants a plain tuple; shapes and canvas are both RGB."""
    r, g, b = (float(v) for v in colour)
    return (r, g, b)


def _ellipse(cx: float, cy: float, ax: float, ay: float, n: int = 40,
             start: float = 0.0, stop: float = 2 * np.pi) -> np.ndarray:
    t = np.linspace(start, stop, n)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], axis=1)


def _background(size: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """Linear two-colour gradient in a random direction, computed at output size (it is smooth)."""
    a, b = rng.uniform(30, 230, size=(2, 3)).astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    proj = np.cos(theta) * ramp[None, :] + np.sin(theta) * ramp[:, None] + 0.5
    small = (a + proj[..., None] * (b - a)).astype(np.uint8)
    return cv2.resize(small, (side, side), interpolation=cv2.INTER_LINEAR)


def _fringe(rng: np.random.Generator) -> np.ndarray:
    """Hair over the forehead: the skull's top arc closed by a swept, side-drooping hairline."""
    top = _ellipse(0.0, 0.03, 0.3, 0.385, 30, np.pi * 1.02, np.pi * 1.98)
    x = np.linspace(top[-1, 0], top[0, 0], 20)
    height = rng.uniform(-0.24, -0.16)
    sweep = rng.uniform(-0.25, 0.25)
    hairline = height + sweep * x + 0.5 * x ** 2 + 0.012 * np.sin(x * 40.0)
    return np.concatenate([top, np.stack([x, hairline], 1)])


def _draw_eye(cv: _Canvas, x: float, y: float, openness: float, gaze, ink) -> None:
    """White, iris and pupil squashed to the openness, then a heavy upper lid line."""
    w, h = 0.05, 0.026 * openness
    cv.fill(_ellipse(x, y, w, h), (245, 245, 240))
    iris_r = 0.021
    ix, iy = x + gaze[0] * 0.4 * w, y + gaze[1] * 0.3 * h
    ih = min(iris_r, h * 0.95)
    cv.fill(_ellipse(ix, iy, iris_r, ih), gaze[2])
    cv.fill(_ellipse(ix, iy, iris_r * 0.45, min(iris_r * 0.45, h * 0.6)), (10, 10, 10))
    cv.line(_ellipse(x, y, w, h, 20, np.pi, 2 * np.pi), ink, 0.011)
    cv.line(_ellipse(x, y, w, h, 20, 0.0, np.pi), ink, 0.004)


def _draw_brow(cv: _Canvas, side: int, eye_x: float, eye_y: float, p: dict, colour) -> None:
    """`side` is -1 (image left) or +1; the inner end is the one nearer the midline."""
    base = eye_y - 0.062 - p["brow_h"] - 0.02 * max(p["eye"] - 1.0, 0.0)
    inner = np.array([eye_x - side * 0.05, base - p["brow_in"]])
    outer = np.array([eye_x + side * 0.062, base + 0.006])
    t = np.linspace(0.0, 1.0, 12)[:, None]
    pts = inner + t * (outer - inner)
    pts[:, 1] -= p["brow_arch"] * 4 * t[:, 0] * (1 - t[:, 0])
    cv.line(pts, colour, 0.024)


def _draw_mouth(cv: _Canvas, p: dict, lips, y0: float) -> None:
    """Upper and lower lip curves around a centre line; filled when the lips part."""
    t = np.linspace(-1.0, 1.0, 33)
    w = p["mouth_w"]
    centre = (y0 - p["curve"] * t ** 2 - 0.5 * p["asym"] * t
              - p["wave"] * np.sin(2.5 * np.pi * t) * (1 - t ** 2))
    x = w * t
    if p["open"] < 0.01:
        cv.line(np.stack([x, centre], 1), lips, 0.019)
        return
    bulge = np.sqrt(np.clip(1 - t ** 2, 0, 1))
    upper = centre - 0.35 * p["open"] * bulge
    lower = centre + 0.65 * p["open"] * bulge
    outline = np.concatenate([np.stack([x, upper], 1), np.stack([x, lower], 1)[::-1]])
    cv.fill(outline, (70, 20, 25))
    if p["teeth"] > 0.5:
        tooth = upper + 0.45 * (lower - upper)
        cv.fill(np.concatenate([np.stack([x, upper], 1), np.stack([x, tooth], 1)[::-1]]),
                (240, 238, 228))
    cv.line(outline, lips, 0.014, closed=True)


def _draw_face(img: np.ndarray, p: dict, rng: np.random.Generator) -> None:
    """Pose, identity and expression drawn in back-to-front order."""
    cv = _Canvas(
        img,
        centre=tuple(0.5 + rng.uniform(-_SHIFT, _SHIFT, 2)),
        scale=_FACE_SCALE * rng.uniform(1 - _SCALE_JITTER, 1 + _SCALE_JITTER),
        angle=np.deg2rad(rng.uniform(-_ROTATE_DEG, _ROTATE_DEG)),
    )
    skin = _SKIN_LIGHT + rng.uniform(0, 1) * (_SKIN_DARK - _SKIN_LIGHT) + rng.normal(0, 8, 3)
    skin = np.clip(skin, 0, 255)
    shade = skin * 0.82
    hair = np.clip(_HAIR[rng.integers(len(_HAIR))] + rng.normal(0, 10, 3), 0, 255)
    shirt = rng.uniform(20, 235, 3)
    ink = np.clip(skin * 0.25, 0, 60)

    cv.fill(_ellipse(0.0, 0.66, 0.42, 0.2), shirt)
    cv.fill(np.array([[-0.1, 0.3], [0.1, 0.3], [0.11, 0.52], [-0.11, 0.52]]), shade)
    hair_len = rng.uniform(0.0, 0.25)
    if rng.uniform() < 0.85:
        cv.fill(_ellipse(0.0, -0.05 + hair_len / 2, 0.335, 0.38 + hair_len / 2), hair)
    for sx in (-1, 1):
        cv.fill(_ellipse(sx * 0.29, 0.0, 0.04, 0.07), shade)
    cv.fill(_ellipse(0.0, 0.03, 0.29, 0.37), skin)
    if rng.uniform() < 0.85:
        cv.fill(_fringe(rng), hair)

    eye_y = -0.04
    gaze = (rng.uniform(-1, 1), rng.uniform(-1, 1),
            np.clip(rng.uniform(20, 140, 3) * np.array([0.8, 0.9, 1.0]), 0, 255))
    brow_colour = np.minimum(hair * 0.8, skin * 0.45)
    for sx in (-1, 1):
        _draw_eye(cv, sx * 0.115, eye_y, p["eye"], gaze, ink)
        _draw_brow(cv, sx, sx * 0.115, eye_y, p, brow_colour)

    cv.line(np.array([[0.012, 0.0], [0.022, 0.075], [0.0, 0.085]]), shade * 0.85, 0.008)
    cv.line(_ellipse(0.0, 0.07, 0.035, 0.02, 12, 0.2 * np.pi, 0.8 * np.pi), shade * 0.8, 0.008)
    if p["wrinkle"] > 0.5:
        for dy in (-0.005, 0.012):
            cv.line(np.array([[-0.028, dy], [0.0, dy - 0.006], [0.028, dy]]), shade * 0.8, 0.006)

    lips = np.clip(skin * np.array([0.78, 0.5, 0.5]) + [30, 0, 0], 0, 255)
    _draw_mouth(cv, p, lips, 0.175)


def _paint(p: dict, rng: np.random.Generator, size: int, noise: np.random.Generator | None = None) -> np.ndarray:
    """Scene, face with expression `p`, lighting and sensor noise; every nuisance is drawn from `rng`
    (sensor noise from `noise` when given, so video frames share a scene but not their noise)."""
    side = size * _supersample(size)
    img = _background(size, side, rng)
    _draw_face(img, p, rng)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)

    contrast = rng.uniform(0.7, 1.3)
    brightness = rng.normal(0.0, 18.0)
    light = rng.uniform(-0.25, 0.25, 2)
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    gain = 1.0 + light[0] * ramp[None, :] + light[1] * ramp[:, None]
    img = (img - 128.0) * contrast + 128.0 + brightness
    img *= gain[..., None]
    sigma = rng.uniform(2.0, 9.0)
    img += (rng if noise is None else noise).normal(0.0, sigma, img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render(label: int, index: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """One RGB uint8 image; its randomness depends only on (seed, label, index)."""
    rng = np.random.default_rng([seed, label, index])
    return _paint(_expression(CLASSES[label], rng), rng, size)


def _split_counts(images_per_class: int, test_fraction: float) -> dict[str, int]:
    n_test = round(images_per_class * test_fraction)
    return {"train": images_per_class - n_test, "test": n_test}


def _params(images_per_class: int, size: int, seed: int, test_fraction: float) -> dict:
    return {
        "generator_version": GENERATOR_VERSION,
        "images_per_class": images_per_class,
        "size": size,
        "seed": seed,
        "test_fraction": test_fraction,
        "classes": list(CLASSES),
    }


SETTINGS_KEYS = ("generator_version", "images_per_class", "clips_per_class", "frames", "size", "seed", "test_fraction",
                 "layout")
"""What a drawn dataset's manifest records about how it was drawn (the video keys only for clips)."""


def drawn_settings(root: Path) -> dict | None:
    """How the dataset at `root` was drawn, from its manifest; None when no complete draw is there."""
    try:
        recorded = json.loads((Path(root) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return {key: recorded[key] for key in SETTINGS_KEYS if key in recorded} if isinstance(recorded, dict) else None


def _expected_files(root: Path, counts: dict[str, int]) -> dict[Path, tuple[int, int]]:
    """Path → (label, index). Indices run across splits so every file name is unique."""
    files = {}
    for label, name in enumerate(CLASSES):
        index = 0
        for split in SPLITS:
            for _ in range(counts[split]):
                files[root / split / name / f"{name}_{index:05d}.png"] = (label, index)
                index += 1
    return files


def _is_complete(root: Path, summary: dict, expected) -> bool:
    try:
        recorded = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return recorded == summary and all(path.is_file() for path in expected)


_OWN_FILE = re.compile(r"^(?:\.[^/]*\.tmp|[a-z]+_\d{5}\.png)$")
_OWN_MANIFEST_TMP = re.compile(r"^\." + re.escape(MANIFEST) + r"\.\d+\.tmp$")


def _remove_stale(root: Path, expected) -> None:
    """Drop our own leftover files (other params, interrupted temps); touch nothing else."""
    if root.is_dir():
        for path in root.iterdir():
            if _OWN_MANIFEST_TMP.match(path.name) and path.is_file():
                path.unlink()
    for split in SPLITS:
        for name in CLASSES:
            folder = root / split / name
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path not in expected and _OWN_FILE.match(path.name) and path.is_file():
                    path.unlink()


def _write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same folder + os.replace, so an interrupt never leaves a torn file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _int_at_least(name: str, value, minimum: int) -> int:
    """Accept any integral type (numpy ints from configs too) but not bools or floats."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        raise FerbenchError(f"{name} must be an integer, got {value!r}", 2) from None
    if number < minimum:
        raise FerbenchError(f"{name} must be at least {minimum}, got {number}", 2)
    return number


def generate(
    root: Path,
    images_per_class: int = 100,
    size: int = 64,
    seed: int = 0,
    test_fraction: float = 0.25,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write `root/{train,test}/<class>/<class>_<index:05d>.png` and `root/synth.json`.

    `images_per_class` is the total over both splits; `round(images_per_class *
    test_fraction)` of each class go to test. The manifest is written last, so a
    dataset with a matching manifest is complete and is returned without rewriting;
    otherwise everything is (re)drawn. `progress(n)` is called after each image
    with n=1 so a caller-owned progress bar can advance.

    Returns the manifest (generator_version, images_per_class, size, seed,
    test_fraction, classes, and counts[split][class]) plus `reused`, True when
    nothing had to be written.
    """
    images_per_class = _int_at_least("images_per_class", images_per_class, 1)
    size = _int_at_least("size", size, 16)
    seed = _int_at_least("seed", seed, 0)
    try:
        test_fraction = float(test_fraction)
    except (TypeError, ValueError):
        test_fraction = float("nan")
    if not 0.0 <= test_fraction <= 1.0:
        raise FerbenchError(f"test_fraction must lie in [0, 1], got {test_fraction!r}", 2)

    root = Path(root)
    params = _params(images_per_class, size, seed, test_fraction)
    per_split = _split_counts(images_per_class, test_fraction)
    summary = {
        **params,
        "counts": {split: {name: per_split[split] for name in CLASSES} for split in SPLITS},
    }
    expected = _expected_files(root, per_split)
    if _is_complete(root, summary, expected):
        return {**summary, "reused": True}

    manifest = root / MANIFEST
    if manifest.exists():
        manifest.unlink()
    _remove_stale(root, expected)
    for split in SPLITS:
        for name in CLASSES:
            (root / split / name).mkdir(parents=True, exist_ok=True)
    for path, (label, index) in expected.items():
        rgb = render(label, index, size, seed)
        ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
        if not ok:
            raise FerbenchError(f"could not encode PNG for {path}")
        _write_atomic(path, png.tobytes())
        if progress is not None:
            progress(1)
    _write_atomic(manifest, (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode())
    return {**summary, "reused": False}


# ---------------------------------------------------------------------------------------------------------------
# Video: clips in DFER-CLIP's list layouts (DFEW, FERV39k, MAFW), each a face going from neutral to its expression.

VIDEO_DATASET = "synthetic-video"
_VIDEO_STREAM = 1_000_003
"""Mixed into every clip's seed, so a clip never repeats a still image's face."""


@dataclass(frozen=True)
class VideoLayout:
    frames_folder: str
    """The release's folder of frame folders, which the lists' paths start with."""
    prefix: str
    folded: bool
    """5 official folds (set k's test list holds fold k) rather than one train / test split."""
    encoding: str
    """The release's label encoding in harness.data.vocabulary; also fixes the classes drawn."""


VIDEO_LAYOUTS = {
    "dfew": VideoLayout("DFEW_Frame_Face", "DFEW", True, "dfew"),
    "ferv39k": VideoLayout("2_ClipsforFaceCrop", "FERV39K", False, "ferv39k"),
    "mafw": VideoLayout("data/faces", "MAFW", True, "mafw"),
}
VIDEO_FOLDS = 5
_FERV39K_SCENES = ("Action", "Daily", "Talkshow")
_FERV39K_CLASS = {"happy": "Happy", "sad": "Sad", "neutral": "Neutral", "anger": "Angry", "surprise": "Surprise",
                  "disgust": "Disgust", "fear": "Fear"}


def video_classes(layout: str) -> tuple[str, ...]:
    """Canonical class names the layout's encoding defines, in canonical order (7, or MAFW's 11)."""
    from harness.data.vocabulary import CANONICAL, ENCODINGS

    names = set(ENCODINGS[VIDEO_LAYOUTS[layout].encoding].values())
    return tuple(name for name in CANONICAL if name in names)


def _natives(layout: str) -> dict[str, str]:
    from harness.data.vocabulary import ENCODINGS

    return {name: native for native, name in ENCODINGS[VIDEO_LAYOUTS[layout].encoding].items()}


def _intensity(frames: int, rng: np.random.Generator) -> np.ndarray:
    """Per-frame expression strength: neutral until the onset, a smooth rise, then held at the apex."""
    onset, rise = rng.uniform(0.0, 0.35), rng.uniform(0.25, 0.5)
    u = np.linspace(0.0, 1.0, frames) if frames > 1 else np.ones(1)
    a = np.clip((u - onset) / rise, 0.0, 1.0)
    return a * a * (3 - 2 * a)


def render_clip(name: str, index: int, frames: int, size: int = 64, seed: int = 0) -> list[np.ndarray]:
    """`frames` RGB uint8 images of one clip: fixed face, pose and scene, the expression animating onset → apex,
    fresh sensor noise per frame. A pure function of (seed, class name, index, frames, size)."""
    from harness.data.vocabulary import CANONICAL

    rng = np.random.default_rng([seed, _VIDEO_STREAM, CANONICAL.index(name), index])
    apex = _expression(name, rng)
    strength = _intensity(frames, rng)
    scene = int(rng.integers(2**63))
    out = []
    for t, a in enumerate(strength):
        p = {key: base + a * (apex[key] - base) for key, base in _NEUTRAL.items()}
        p["teeth"] = apex["teeth"] if a > 0.5 else 0.0
        out.append(_paint(p, np.random.default_rng(scene), size, np.random.default_rng([scene, t])))
    return out


def _clip_plan(layout: str, clips_per_class: int, frames: tuple[int, int], seed: int, test_fraction: float):
    """[(relative clip folder, class name, index within class, frame count, fold or split)], in list order."""
    spec, plan, number = VIDEO_LAYOUTS[layout], [], 0
    n_test = round(clips_per_class * test_fraction)
    for label, name in enumerate(video_classes(layout)):
        for i in range(clips_per_class):
            number += 1
            count = int(np.random.default_rng([seed, _VIDEO_STREAM, label, i, 1]).integers(frames[0], frames[1] + 1))
            if spec.folded:
                path, place = f"{spec.frames_folder}/{number:05d}", i % VIDEO_FOLDS + 1
            else:
                scene = _FERV39K_SCENES[i % len(_FERV39K_SCENES)]
                path = f"{spec.frames_folder}/{scene}/{_FERV39K_CLASS[name]}/{number:04d}"
                place = "test" if i >= clips_per_class - n_test else "train"
            plan.append((path, name, i, count, place))
    return plan


def _list_files(layout: str, plan) -> dict[str, list[str]]:
    """annotation/<list> → its lines `<clip folder> <frame count> <native label>`."""
    spec, natives = VIDEO_LAYOUTS[layout], _natives(layout)
    line = {path: f"{path} {count} {natives[name]}" for path, name, _, count, _ in plan}
    if spec.folded:
        lists = {}
        for k in range(1, VIDEO_FOLDS + 1):
            lists[f"{spec.prefix}_set_{k}_train.txt"] = [line[p] for p, *_, place in plan if place != k]
            lists[f"{spec.prefix}_set_{k}_test.txt"] = [line[p] for p, *_, place in plan if place == k]
        return lists
    return {f"{spec.prefix}_{part}.txt": [line[p] for p, *_, place in plan if place == part] for part in SPLITS}


_OWN_FRAME = re.compile(r"^(?:\.[^/]*\.tmp|\d{5}\.jpg)$")


def _remove_stale_video(root: Path, layout: str, expected: set[Path]) -> None:
    """Drop our own frames that the new parameters do not write, and the folders they leave empty."""
    top = root / VIDEO_LAYOUTS[layout].frames_folder
    if not top.is_dir():
        return
    for folder, dirs, files in os.walk(top, topdown=False):
        here = Path(folder)
        for name in files:
            if _OWN_FRAME.match(name) and here / name not in expected:
                (here / name).unlink()
        if here != top and not any(here.iterdir()):
            here.rmdir()


def generate_video(
    root: Path,
    layout: str = "dfew",
    clips_per_class: int = 10,
    frames: tuple[int, int] = (8, 40),
    size: int = 64,
    seed: int = 0,
    test_fraction: float = 0.25,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write a synthetic video dataset in a DFER-CLIP list layout: `annotation/<lists>` with paths relative to
    `root`, frames `<clip folder>/<00001>.jpg …`, and `root/synth.json` last.

    Each clip's frame count is drawn from `frames` (inclusive; DFER-CLIP samples 16 frames, so counts below 16
    exercise its repeat-the-last-frame rule). Folded layouts (dfew, mafw) put a class's i-th clip in fold
    `i % 5 + 1`; ferv39k puts the last `round(clips_per_class * test_fraction)` of each class in test.
    A complete dataset with the same parameters is reused; `progress(1)` follows each clip.
    Returns the manifest plus `reused`.
    """
    if layout not in VIDEO_LAYOUTS:
        raise FerbenchError(f"unknown video layout '{layout}' (known: {', '.join(VIDEO_LAYOUTS)})", 2)
    clips_per_class = _int_at_least("clips_per_class", clips_per_class, 1)
    low, high = (_int_at_least("frames", n, 1) for n in frames)
    if low > high:
        raise FerbenchError(f"frames must be (fewest, most), got {frames!r}", 2)
    size = _int_at_least("size", size, 16)
    seed = _int_at_least("seed", seed, 0)
    if not 0.0 <= float(test_fraction) <= 1.0:
        raise FerbenchError(f"test_fraction must lie in [0, 1], got {test_fraction!r}", 2)

    root = Path(root)
    spec = VIDEO_LAYOUTS[layout]
    plan = _clip_plan(layout, clips_per_class, (low, high), seed, float(test_fraction))
    lists = _list_files(layout, plan)
    summary = {
        "generator_version": GENERATOR_VERSION,
        "video": True,
        "layout": layout,
        "clips_per_class": clips_per_class,
        "frames": [low, high],
        "size": size,
        "seed": seed,
        "test_fraction": float(test_fraction) if not spec.folded else None,
        "classes": list(video_classes(layout)),
        "clips": len(plan),
        "total_frames": sum(count for *_, count, _ in plan),
        "counts": {str(place): {name: sum(1 for _, n, _, _, p in plan if n == name and p == place)
                                for name in video_classes(layout)}
                   for place in sorted({p for *_, p in plan}, key=str)},
    }
    expected = {root / path / f"{t + 1:05d}.jpg" for path, _, _, count, _ in plan for t in range(count)}
    list_paths = [root / "annotation" / name for name in lists]
    if _is_complete(root, summary, [*expected, *list_paths]):
        return {**summary, "reused": True}

    (root / MANIFEST).unlink(missing_ok=True)
    for leftover in root.glob(f".{MANIFEST}.*.tmp"):
        leftover.unlink()
    _remove_stale_video(root, layout, expected)
    (root / "annotation").mkdir(parents=True, exist_ok=True)
    for path, name, index, count, _ in plan:
        folder = root / path
        folder.mkdir(parents=True, exist_ok=True)
        for t, rgb in enumerate(render_clip(name, index, count, size, seed)):
            ok, jpg = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                raise FerbenchError(f"could not encode JPEG for {folder}")
            _write_atomic(folder / f"{t + 1:05d}.jpg", jpg.tobytes())
        if progress is not None:
            progress(1)
    for file, lines in zip(list_paths, lists.values()):
        _write_atomic(file, "".join(f"{line}\n" for line in lines).encode())
    _write_atomic(root / MANIFEST, (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode())
    return {**summary, "reused": False}
