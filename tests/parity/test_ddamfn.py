"""DDAMFN parity with SainingZhang/DDAMFN `rafdb_train.py::run_training` (the paper's RAF-DB script): eval
transform, and two SGD steps of CE + 0.1·AttentionLoss on the same batch from identical weights (the second sees
momentum).

Compared: `data_transforms_val` on a PNG vs the image cache + the adapter's eval transform; then, on the same
uint8 batch (each side through its own eval transform: the training pipeline without the random flip,
rotation/crop and erasing, which are not compared), the loss, every parameter's gradient at each `optimizer.step()`,
and every parameter and buffer after the second."""

from __future__ import annotations

import functools

import pytest
import torch
from PIL import Image

from adapters import load_adapter
from tests.adapters.upstream import fetched, on_path
from tests.parity import common
from tests.parity.upstream_step import (
    Script, assert_identical, cached, copy_weights, ferbench_step, named_state, source_image, uint8_batch,
    upstream_step,
)

UPSTREAM, pytestmark = fetched("ddamfn")
SIZE = 112
STEPS = 2  # SGD's first step ignores momentum: the second one sees it


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    yield from on_path(UPSTREAM, ("networks",), "_ferbench_ddamfn")


@pytest.fixture(scope="module")
def script():
    return Script(UPSTREAM / "rafdb_train.py")


def upstream_namespace(script: Script) -> dict:
    from networks.DDAM import DDAMNet

    namespace = common.namespace(script, DDAMNet=functools.partial(DDAMNet, pretrained=False))  # True loads a file
    script.setup(None, ("eps",), namespace)
    return script.definitions(("AttentionLoss",), namespace)


def test_eval_preprocessing_matches_rafdb_train_py(script, tmp_path):
    namespace = script.setup("run_training", ("data_transforms_val",), upstream_namespace(script))
    path = source_image(tmp_path)
    upstream = namespace["data_transforms_val"](Image.open(path).convert("RGB"))  # ImageFolder's loader
    ferbench = load_adapter("ddamfn").eval_transform(SIZE)(cached(path, SIZE))[0]
    assert torch.equal(ferbench, upstream)


def test_two_sgd_steps_match_rafdb_train_py(script):
    adapter, ctx = load_adapter("ddamfn"), common.context(UPSTREAM, SIZE)
    torch.manual_seed(0)
    model = adapter.build(ctx)

    namespace = script.setup("run_training", ("model",), upstream_namespace(script))  # DDAMNet(num_class=7, ...)
    copy_weights(model, namespace["model"])
    script.setup("run_training", ("data_transforms_val", "criterion_cls", "criterion_at", "params", "optimizer"),
                 namespace)

    images, targets = uint8_batch(SIZE), common.labels()
    upstream_images = torch.stack([namespace["data_transforms_val"](i) for i in common.pil_images(images)])
    upstream = upstream_step(script, "run_training", "train_loader", namespace, (upstream_images, targets),
                             namespace["optimizer"], named_state(namespace["model"]), steps=STEPS)
    ferbench = ferbench_step(adapter, ctx, common.recipe("ddamfn"), model, adapter.criterion(ctx),
                             adapter.eval_transform(SIZE)(images), targets, named_state(model), steps=STEPS)
    assert_identical(ferbench, upstream, calls=STEPS)
