"""FER-crossval's pooled holdout (StevenHSKim/FER-crossval, pinned as upstream `fer-crossval`), index for index.

FER-crossval ran 42 scripts `<MODEL>/<model>_<dataset>_crossval.py` (7 models × 6 datasets). All pool every
row of the dataset's label file in file order and draw ten overlapping 20 % test sets with
`ShuffleSplit(random_state=42)`, but the validation slice is not drawn the same way by every script, so the
variant is chosen per (model, dataset). tests/data/test_fer_crossval_splits.py runs each script's own split
lines, read from vendor/fer-crossval, and checks that ferbench draws the same indices for all 42 scripts.

The indices mean the same images only on FER-crossval's own label files in their row order: `LAYOUTS` names
them, and crossval-compat refuses any other layout.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import ShuffleSplit, train_test_split

ITERATIONS = 10
SEED = 42

VARIANTS = {
    "standard": "ShuffleSplit(10, test_size=0.2, random_state=42); validation = "
                "train_test_split(train+val, test_size=0.25, random_state=iteration): 60/20/20",
    "val20": "ShuffleSplit(10, test_size=0.2, random_state=42); validation = "
             "train_test_split(train+val, test_size=0.2, random_state=iteration): 64/16/20",
    "dan-tail": "ShuffleSplit(10, test_size=int(0.2·N), random_state=42); validation = the last int(0.2·N) "
                "entries of ShuffleSplit's train+val permutation, no train_test_split",
}
"""Split variant → what it does. `standard` is also used for models FER-crossval did not run."""

MODELS = {"adadf": "AdaDF/adadf", "dan": "DAN/dan", "ddamfn": "DDAMFN/ddamfn", "gsdnet": "GSDNet/gsdnet",
          "lnsunet": "LNSUNet/lnsunet", "poster": "POSTER/poster", "posterpp": "POSTER++/posterv2"}
"""ferbench model → its FER-crossval script prefix (`<prefix>_<dataset>_crossval.py`)."""

LAYOUTS = {"ckplus": "ckplus-crossval", "sfew": "sfew-crossval", "rafdb": "rafdb-aligned",
           "ferplus": "ferplus-crossval", "fer2013": "fer2013-crossval", "expw": "expw-aligned"}
"""ferbench dataset → the layout of FER-crossval's label files (its README's `dataset/` trees)."""

EXCEPTIONS = {
    ("dan", "ckplus"): "dan-tail",     # DAN/dan_ckplus_crossval.py:304-318
    ("dan", "sfew"): "dan-tail",       # DAN/dan_sfew_crossval.py:313-327
    ("dan", "ferplus"): "dan-tail",    # DAN/dan_ferplus_crossval.py:305-322
    ("dan", "expw"): "dan-tail",       # DAN/dan_expw_crossval.py:338-355
    ("adadf", "rafdb"): "val20",       # AdaDF/adadf_rafdb_crossval.py:249-250 (test_size=args.test_size)
    ("ddamfn", "rafdb"): "val20",      # DDAMFN/ddamfn_rafdb_crossval.py:367 (test_size=args.test_size)
}


def script(model: str, dataset: str) -> str | None:
    """FER-crossval's script for (model, dataset), relative to its repository, or None if it did not run it."""
    if model not in MODELS or dataset not in LAYOUTS:
        return None
    return f"{MODELS[model]}_{dataset}_crossval.py"


def variant(model: str, dataset: str) -> str:
    """The split variant of FER-crossval's script for (model, dataset); `standard` where it has none."""
    return EXCEPTIONS.get((model, dataset), "standard")


def draw(n: int, name: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(train, val, test) positions of each of the ten iterations, in the order FER-crossval draws them."""
    if name not in VARIANTS:
        raise ValueError(f"unknown FER-crossval split variant '{name}'")
    test_size = int(n * 0.2) if name == "dan-tail" else 0.2
    splitter = ShuffleSplit(n_splits=ITERATIONS, test_size=test_size, random_state=SEED)
    out = []
    for iteration, (train_val, test) in enumerate(splitter.split(np.zeros((n, 1)))):
        if name == "dan-tail":
            train_size = len(train_val) - int(n * 0.2)
            train, val = train_val[:train_size], train_val[train_size:]
        else:
            val_size = 0.25 if name == "standard" else 0.2
            train, val = train_test_split(train_val, test_size=val_size, random_state=iteration)
        out.append((train, val, test))
    return out
