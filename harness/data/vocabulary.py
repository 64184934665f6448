"""One canonical expression vocabulary, and an explicit map from every release's own label encoding to it.

Releases number their classes differently (RAF-DB counts from 1 starting at surprise, FER2013 from 0 starting
at angry, DFEW from 0 starting at happiness) and ImageFolder-style loaders sort folders alphabetically, so a
label is never trusted by position: each loader names its encoding and every native value is looked up here.
A native value mapped to None is one the release defines but that is not an expression (AffectNet's
"uncertain", FERPlus's "NF"); such samples are left out. A value absent from its map is out of range.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

CANONICAL: tuple[str, ...] = (
    "neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt",
    "anxiety", "helplessness", "disappointment",
)
"""Canonical names; datasets list their classes in this order, so an index means the same expression everywhere."""


def _map(pairs: Mapping[str, str | None]) -> Mapping[str, str | None]:
    for name in pairs.values():
        if name is not None and name not in CANONICAL:
            raise ValueError(f"'{name}' is not a canonical class")
    return MappingProxyType(dict(pairs))


_FER2013 = {"0": "anger", "1": "disgust", "2": "fear", "3": "happy", "4": "sad", "5": "surprise", "6": "neutral"}
_DFER = {"0": "happy", "1": "sad", "2": "neutral", "3": "anger", "4": "surprise", "5": "disgust", "6": "fear"}

ENCODINGS: Mapping[str, Mapping[str, str | None]] = MappingProxyType({
    # EmoLabel/list_patition_label.txt: 1-based
    "rafdb": _map({"1": "surprise", "2": "fear", "3": "disgust", "4": "happy", "5": "sad", "6": "anger",
                   "7": "neutral"}),
    # fer2013.csv `emotion`, fer2013_modified.csv, ExpW label.lst (same order)
    "fer2013": _map(_FER2013),
    "expw": _map(_FER2013),
    # fer2013new.csv vote columns; the winning column's name is the native label
    "ferplus-votes": _map({"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
                           "anger": "anger", "disgust": "disgust", "fear": "fear", "contempt": "contempt",
                           "unknown": None, "NF": None}),
    # FER-crossval FERPlus_Label_modified.csv `label`
    "ferplus-crossval": _map({"0": "neutral", "1": "happy", "2": "surprise", "3": "sad", "4": "anger",
                              "5": "disgust", "6": "fear", "7": "contempt"}),
    # AffectNet training.csv / validation.csv `expression`: 8 none, 9 uncertain, 10 non-face
    "affectnet": _map({"0": "neutral", "1": "happy", "2": "sad", "3": "surprise", "4": "fear", "5": "disgust",
                       "6": "anger", "7": "contempt", "8": None, "9": None, "10": None}),
    # SFEW 2.0 organiser class folders
    "sfew": _map({"Angry": "anger", "Disgust": "disgust", "Fear": "fear", "Happy": "happy", "Neutral": "neutral",
                  "Sad": "sad", "Surprise": "surprise"}),
    # FER-crossval sfew_2.0_labels.csv `label`: the folder names in alphabetical order
    "sfew-crossval": _map({"0": "anger", "1": "disgust", "2": "fear", "3": "happy", "4": "neutral", "5": "sad",
                           "6": "surprise"}),
    # original CK+ Emotion/*_emotion.txt codes
    "ckplus-emotion": _map({"0": "neutral", "1": "anger", "2": "contempt", "3": "disgust", "4": "fear",
                            "5": "happy", "6": "sad", "7": "surprise"}),
    # CK+48 class folder names
    "ckplus48": _map({"anger": "anger", "contempt": "contempt", "disgust": "disgust", "fear": "fear",
                      "happy": "happy", "sadness": "sad", "surprise": "surprise"}),
    # FER-crossval ckplus_labels.csv `label`
    "ckplus-crossval": _map({"0": "anger", "1": "contempt", "2": "disgust", "3": "fear", "4": "happy", "5": "sad",
                             "6": "surprise"}),
    # KMU-FED file-name codes
    "kmufed": _map({"AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happy", "SA": "sad", "SU": "surprise"}),
    # DFER-CLIP annotation lists, 0-based
    "dfew": _map(_DFER),
    "ferv39k": _map(_DFER),
    "mafw": _map({**_DFER, "7": "contempt", "8": "anxiety", "9": "helplessness", "10": "disappointment"}),
    # folders already named with canonical names (the synthetic dataset)
    "canonical": _map({name: name for name in CANONICAL}),
})


def canonical(encoding: str, native: str) -> str | None:
    """The canonical name of `native`, or None for a defined non-expression; KeyError when out of range."""
    return ENCODINGS[encoding][native]


def expected(encoding: str) -> str:
    """The native values an encoding accepts, for error messages."""
    return ", ".join(ENCODINGS[encoding])
