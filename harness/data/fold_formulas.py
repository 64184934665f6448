"""Upstream k-fold formulas over per-class blocks, as plain records: one mechanism for every such upstream.

WuJie1010's CK.py (CK+) and CLIVP-FER's preprocess_KMUFED.py (KMU-FED) both number the images class by class
(a fixed class order, the files of each class in a fixed order), then test, in fold f < k, the f-th block of
`blocks[c]` images of each class c, and in fold k the last `blocks[c]` images of each class, counted back from
the class's end. So the folds overlap (fold k shares images with fold k-1) and some images are never tested.
The positions index the whole numbering, so a block past its class's end tests the next class's first images
(CK+ fear: 75 images, blocks of 9, so fold 9 tests fear 72-74 and happy 0-5), exactly as upstream.

ferbench reproduces the numbering from the dataset table, mapping each upstream position to a table row by the
image's path, so the same images are tested as upstream; tests/data/test_fold_formulas.py checks the test index
lists against the upstream files' own lines, read from vendor/ at test time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FoldFormula:
    dataset: str
    """The ferbench dataset it applies to."""
    classes: tuple[str, ...]
    """Canonical class names in the upstream's numbering order."""
    class_sizes: tuple[int, ...]
    """Images per class in the upstream's copy (its hard-coded `sum_number` differences)."""
    blocks: tuple[int, ...]
    """Test images per class and fold (its `test_number`)."""
    folds: int
    file_order: str
    """How the upstream orders the files of one class; `name` = sorted by file name."""
    source: str
    description: str

    def order(self, table: pd.DataFrame) -> list[list[int]]:
        """Table rows of each class, in the upstream's numbering order (files sorted by name within a class)."""
        labels = table["label"].to_numpy()
        names = np.array([PurePosixPath(p).name for p in table["path"]])
        return [sorted(np.flatnonzero(labels == c).tolist(), key=lambda i: names[i]) for c in self.classes]

    def test_positions(self, sizes: list[int], fold: int) -> list[int]:
        """The upstream's test index list of `fold` (1-based) over a numbering with `sizes` images per class."""
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        out = []
        for c, block in enumerate(self.blocks):
            for k in range(block):
                out.append(int(starts[c] + (fold - 1) * block + k) if fold != self.folds else int(starts[c + 1] - 1 - k))
        return out

    def unfit(self, table: pd.DataFrame) -> str | None:
        counts = table["label"].value_counts()
        extra = sorted(set(counts.index) - set(self.classes))
        if extra:
            return f"numbers only the classes {', '.join(self.classes)}, and the table also has {', '.join(extra)}"
        sizes = [int(counts.get(c, 0)) for c in self.classes]
        for fold in range(1, self.folds + 1):
            outside = [p for p in self.test_positions(sizes, fold) if not 0 <= p < len(table)]
            if outside:
                return (f"numbers {len(table)} images ({', '.join(f'{c} {n}' for c, n in zip(self.classes, sizes))}), "
                        f"too few for fold {fold}'s test block at position {outside[0]}")
        return None


FORMULAS = {
    "fer-pytorch-folds": FoldFormula(
        dataset="ckplus",
        classes=("anger", "disgust", "fear", "happy", "sad", "surprise", "contempt"),
        class_sizes=(135, 177, 75, 207, 84, 249, 54),
        blocks=(12, 18, 9, 21, 9, 24, 6),
        folds=10,
        file_order="name",
        source="WuJie1010/Facial-Expression-Recognition.Pytorch@fefe665: preprocess_CK+.py:29-77 (class order, "
               "files sorted per class folder), CK.py:30-41 (sum_number, test_number, fold formula)",
        description="WuJie1010's CK+ 10-fold (mainpro_CK+.py --fold 1..10): 99 test images per fold, 990 test "
                    "predictions over 10 folds; folds overlap and some images are never tested; not subject-disjoint",
    ),
    "clivp-folds": FoldFormula(
        dataset="kmufed",
        classes=("anger", "disgust", "fear", "happy", "sad", "surprise"),
        class_sizes=(196, 120, 200, 209, 180, 199),
        blocks=(19, 12, 20, 21, 18, 20),
        folds=10,
        file_order="name",
        source="Ibtissam-SAADI/CLIVP-FER@4ea0eca: formatdescription.py:6-19 (class order anger … surprise, files "
               "as os.listdir lists them: by name on the Windows NTFS it ran on), preprocess_KMUFED.py:19-31 "
               "(sum_number, test_number, fold formula)",
        description="CLIVP-FER's KMU-FED 10-fold (10fold_train.py → CLIP_KMU.py --fold 1..10): 110 test images "
                    "per fold, 1,100 test predictions; folds overlap and some images are never tested; not "
                    "subject-disjoint",
    ),
}
