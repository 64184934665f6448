"""POSTER++ parity with Talented-Q/POSTER_V2 `main.py` (`main()` setup, `train()` loop): eval transform, and one
SAM-over-Adam step of CE from identical weights.

Compared: the RAF-DB `test_dataset` Compose on a PNG vs the image cache + the adapter's eval transform; then, on
the same uint8 batch (each side through its own eval transform: the training pipeline without the random flip
and erasing, which are not compared), both SAM passes' losses, every gradient at `first_step` and at
`second_step`, and every parameter and buffer after the step. `train()`'s own loop body runs, with main.py's
`AverageMeter`, `ProgressMeter` and `accuracy`. The model is `pyramid_trans_expr2(img_size=224, num_classes=7)`
as `main()` builds it, without its DataParallel wrapper; its constructor's weight files are replaced on both
sides by the adapter's empty-file shim."""

from __future__ import annotations

import importlib

import pytest
import torch
from PIL import Image

from adapters import load_adapter
from adapters.poster import constructor_without_weights, upstream_sam
from tests.adapters.upstream import fetched
from tests.parity import common
from tests.parity.upstream_step import (
    Script, assert_identical, cached, copy_weights, ferbench_step, named_state, source_image, uint8_batch,
    upstream_step,
)

UPSTREAM, pytestmark = fetched("posterpp")
SIZE = 224


@pytest.fixture(scope="module")
def script():
    return Script(UPSTREAM / "main.py")


def upstream_namespace(script: Script, ctx) -> dict:
    namespace = common.namespace(script, parser_names={"time_str": ""}, SAM=upstream_sam(ctx))
    return script.definitions(("AverageMeter", "ProgressMeter", "accuracy"), namespace)


def test_eval_preprocessing_matches_main_py(script, tmp_path):
    transform = script.argument("main", "test_dataset", 1, upstream_namespace(script, common.context(UPSTREAM, SIZE)))
    path = source_image(tmp_path)
    upstream = transform(Image.open(path).convert("RGB"))  # ImageFolder's loader
    ferbench = load_adapter("posterpp").eval_transform(SIZE)(cached(path, SIZE))[0]
    assert torch.equal(ferbench, upstream)


@pytest.mark.slow
def test_one_sam_step_matches_main_py(script):
    adapter, ctx = load_adapter("posterpp"), common.context(UPSTREAM, SIZE)
    torch.manual_seed(0)
    model = adapter.build(ctx)

    namespace = upstream_namespace(script, ctx)
    module = importlib.import_module("_ferbench_posterpp_models.PosterV2_7cls")  # registered by the build
    with constructor_without_weights():
        upstream_model = module.pyramid_trans_expr2(img_size=SIZE, num_classes=7)  # main(): as built there
    namespace["model"] = copy_weights(model, upstream_model)
    script.setup("main", ("criterion", "base_optimizer", "optimizer"), namespace)
    transform = script.argument("main", "test_dataset", 1, namespace)

    images, targets = uint8_batch(SIZE), common.labels()
    upstream_images = torch.stack([transform(i) for i in common.pil_images(images)])
    namespace.update(train_loader=[], epoch=0)
    upstream = upstream_step(script, "train", "train_loader", namespace, (upstream_images, targets),
                             namespace["optimizer"], named_state(upstream_model))
    ferbench = ferbench_step(adapter, ctx, common.recipe("posterpp"), model, adapter.criterion(ctx),
                             adapter.eval_transform(SIZE)(images), targets, named_state(model))
    assert_identical(ferbench, upstream, calls=2)
