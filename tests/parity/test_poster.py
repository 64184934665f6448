"""POSTER parity with zczcwh/POSTER `train.py::run_training`: eval transform, and one SAM-over-Adam step of
2·LabelSmoothingCE(0.2) + CE from identical weights.

Compared: `data_transforms_val` on `cv2.imread` of a PNG (BGR, as `RafDataSet` reads it) vs the image cache + the
adapter's eval transform; then, on the same uint8 batch (each side through its own eval transform: the training
pipeline without basic_aug's flip/noise, the random flip and erasing, which are not compared), both SAM passes'
losses, every gradient at `first_step` and at `second_step`, and every parameter and buffer after the step.
The model is `pyramid_trans_expr(img_size=224, num_classes=7, type=args.modeltype)` as train.py builds it for
RAF-DB (that statement sits in a dataset if-chain, so it is spelled out here), without its DataParallel
wrapper; its constructor's weight files are replaced on both sides by the adapter's empty-file shim."""

from __future__ import annotations

import importlib
from time import time

import cv2
import pytest
import torch

from adapters import load_adapter
from adapters.poster import constructor_without_weights, upstream_sam
from tests.adapters.upstream import fetched
from tests.parity import common
from tests.parity.upstream_step import (
    Script, assert_identical, cached, copy_weights, ferbench_step, named_state, source_image, uint8_batch,
    upstream_step,
)

UPSTREAM, pytestmark = fetched("poster")
SIZE = 224


@pytest.fixture(scope="module")
def script():
    return Script(UPSTREAM / "train.py")


def upstream_namespace(script: Script, ctx) -> dict:
    utils = Script(UPSTREAM / "utils.py")
    namespace = common.namespace(script, SAM=upstream_sam(ctx), time=time)
    return utils.definitions(("LabelSmoothingCrossEntropy",), namespace)


def test_eval_preprocessing_matches_train_py(script, tmp_path):
    namespace = script.setup("run_training", ("data_transforms_val",), upstream_namespace(script, common.context(UPSTREAM, SIZE)))
    path = source_image(tmp_path)
    upstream = namespace["data_transforms_val"](cv2.imread(str(path)).copy())  # RafDataSet.__getitem__
    ferbench = load_adapter("poster").eval_transform(SIZE)(cached(path, SIZE))[0]
    assert torch.equal(ferbench, upstream)


@pytest.mark.slow
def test_one_sam_step_matches_train_py(script):
    adapter, ctx = load_adapter("poster"), common.context(UPSTREAM, SIZE)
    torch.manual_seed(0)
    model = adapter.build(ctx)

    namespace = upstream_namespace(script, ctx)
    emotion_hyp = importlib.import_module("_ferbench_poster_models.emotion_hyp")  # registered by the build
    with constructor_without_weights():
        upstream_model = emotion_hyp.pyramid_trans_expr(img_size=SIZE, num_classes=7, type=namespace["args"].modeltype)
    namespace["model"] = copy_weights(model, upstream_model)
    script.setup("run_training", ("data_transforms_val", "base_optimizer", "optimizer", "CE_criterion",
                                  "lsce_criterion"), namespace)

    images, targets = uint8_batch(SIZE), common.labels()
    bgr = [image.flip(0).permute(1, 2, 0).numpy().copy() for image in images]  # what cv2.imread hands the transform
    upstream_images = torch.stack([namespace["data_transforms_val"](image) for image in bgr])
    upstream = upstream_step(script, "run_training", "train_loader", namespace, (upstream_images, targets),
                             namespace["optimizer"], named_state(upstream_model))
    ferbench = ferbench_step(adapter, ctx, common.recipe("poster"), model, adapter.criterion(ctx),
                             adapter.eval_transform(SIZE)(images), targets, named_state(model))
    assert_identical(ferbench, upstream, calls=2)
