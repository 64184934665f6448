"""MFER parity with XuJ1E/MFER `train.py`, preprocessing only: its training step cannot run as released
(`FeatureLoss` was never published, `model.parameters() + lossm.parameters()` is a TypeError), so there is no
upstream step to compare with.

Compared: `train_dataset`'s and `val_dataset`'s Compose (Resize(224), ToTensor, Normalize: no augmentation) on a
square PNG, as RAF-DB's aligned faces are, vs the image cache + the adapter's train and eval transforms. On a
non-square image upstream's `Resize(224)` keeps the aspect ratio (a non-square tensor) while ferbench resizes to
224x224; that case is not compared."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from adapters import load_adapter
from tests.adapters.upstream import fetched
from tests.parity import common
from tests.parity.upstream_step import Script, cached, source_image

UPSTREAM, pytestmark = fetched("mfer")
SIZE = 224


@pytest.mark.parametrize("dataset, hook", [("train_dataset", "train_transform"), ("val_dataset", "eval_transform")])
def test_preprocessing_matches_train_py(dataset, hook, tmp_path):
    script = Script(UPSTREAM / "train.py")
    transform = script.argument("main", dataset, "transform", common.namespace(None))
    path = source_image(tmp_path, size=(100, 100))
    upstream = transform(Image.open(path).convert("RGB"))  # ImageFolder's loader
    ferbench = getattr(load_adapter("mfer"), hook)(SIZE)(cached(path, SIZE))[0]
    assert torch.equal(ferbench, upstream)
