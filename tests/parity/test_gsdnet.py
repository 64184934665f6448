"""GSDNet parity with Emy-cv/GSDNet `GSD-Net/train.py::main(0.01, 0.3)` and `model/utils.py::train_one_epoch`:
eval transform, and one Adam step of the gradual self-distillation loss from identical weights.

Compared: `val_dataset`'s Compose on a PNG vs the image cache + the adapter's eval transform; then, on the same
uint8 batch (each side through its own eval transform: the training pipeline without the random flip,
rotation/crop and erasing, which are not compared), the loss, every parameter's gradient at the optimizer step
and every parameter and buffer after it. `train_one_epoch`'s own loop body runs (its tqdm replaced by a plain
iterator); `a`, `b` are read from train.py's `main(...)` call. The constructor's weight file
(`/data/vgg_msceleb_resnet50_ft_weight.pkl`) is replaced on both sides by the adapter's empty-file shim; the
weights are then copied from the ferbench model."""

from __future__ import annotations

import sys

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

UPSTREAM, pytestmark = fetched("gsdnet")
ROOT = UPSTREAM / "GSD-Net"
SIZE = 224


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    yield from on_path(UPSTREAM, ("gsdnet", "model"), "_ferbench_gsdnet")


@pytest.fixture(scope="module")
def scripts():
    return Script(ROOT / "train.py"), Script(ROOT / "model" / "utils.py")


def upstream_gsdnet(**kwargs):
    from adapters.gsdnet import _no_weight_file

    gsdnet = sys.modules["gsdnet"]
    with _no_weight_file(gsdnet):
        return gsdnet.GSDNet(**kwargs)


def test_eval_preprocessing_matches_train_py(scripts, tmp_path):
    train = scripts[0]
    upstream_transform = train.argument("main", "val_dataset", 1, common.namespace(train))
    path = source_image(tmp_path)
    upstream = upstream_transform(Image.open(path).convert("RGB"))  # ImageFolder's loader
    ferbench = load_adapter("gsdnet").eval_transform(SIZE)(cached(path, SIZE))[0]
    assert torch.equal(ferbench, upstream)


@pytest.mark.slow
def test_one_adam_step_matches_train_one_epoch(scripts):
    train, utils = scripts
    adapter, ctx = load_adapter("gsdnet"), common.context(UPSTREAM, SIZE)
    torch.manual_seed(0)
    model = adapter.build(ctx)  # puts GSD-Net/ on sys.path and imports `gsdnet`, as the worker's build does

    namespace = common.namespace(train, GSDNet=upstream_gsdnet)
    train.setup("main", ("model",), namespace)  # GSDNet(num_class=args.num_classes)
    copy_weights(model, namespace["model"])
    train.setup("main", ("criterion", "optimizer"), namespace)
    transform = train.argument("main", "val_dataset", 1, namespace)
    a, b = train.literal_arguments("main")

    step = common.namespace(None, tqdm=common.Progress, a=a, b=b, epoch=1, model=namespace["model"],
                            optimizer=namespace["optimizer"], criterion=namespace["criterion"], data_loader=[])
    utils.definitions(("CrossEntropy",), step)
    images, targets = uint8_batch(SIZE), common.labels()
    upstream_images = torch.stack([transform(i) for i in common.pil_images(images)])
    upstream = upstream_step(utils, "train_one_epoch", "data_loader", step, (upstream_images, targets),
                             namespace["optimizer"]["softmax"], named_state(namespace["model"]))
    ferbench = ferbench_step(adapter, ctx, common.recipe("gsdnet"), model, adapter.criterion(ctx),
                             adapter.eval_transform(SIZE)(images), targets, named_state(model))
    assert_identical(ferbench, upstream)
