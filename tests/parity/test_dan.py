"""DAN parity with yaoing/DAN `rafdb.py::run_training`: eval transform, and one SGD step over the model and the
AffinityLoss centres (CE + affinity + partition loss) from identical weights and centres, taken twice on the
same batch so that the second step sees SGD's momentum.

Compared: `data_transforms_val` on a PNG vs the image cache + the adapter's eval transform; then, on the same
uint8 batch (each side through its own eval transform, i.e. its training pipeline without the random flip,
rotation/crop and erasing, which are not compared), the losses, the gradients of every parameter and centre at
each `optimizer.step()`, and every parameter, buffer and centre after the second."""

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

UPSTREAM, pytestmark = fetched("dan")
SIZE = 224
STEPS = 2  # SGD's first step ignores momentum: the second one sees it


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    yield from on_path(UPSTREAM, ("networks",), "_ferbench_dan")


@pytest.fixture(scope="module")
def script():
    return Script(UPSTREAM / "rafdb.py")


def upstream_namespace(script: Script) -> dict:
    from networks.dan import DAN

    namespace = common.namespace(script, DAN=functools.partial(DAN, pretrained=False))  # True downloads weights
    script.setup(None, ("eps",), namespace)
    return script.definitions(("AffinityLoss", "PartitionLoss"), namespace)


def test_eval_preprocessing_matches_rafdb_py(script, tmp_path):
    namespace = script.setup("run_training", ("data_transforms_val",), upstream_namespace(script))
    path = source_image(tmp_path)
    upstream = namespace["data_transforms_val"](Image.open(path).convert("RGB"))  # RafDataSet.__getitem__
    ferbench = load_adapter("dan").eval_transform(SIZE)(cached(path, SIZE))[0]
    assert torch.equal(ferbench, upstream)


def test_two_sgd_steps_match_rafdb_py(script):
    adapter, ctx = load_adapter("dan"), common.context(UPSTREAM, SIZE)
    torch.manual_seed(0)
    model = adapter.build(ctx)
    criterion = adapter.criterion(ctx)

    namespace = upstream_namespace(script)
    script.setup("run_training", ("model",), namespace)  # DAN(num_head=args.num_head)
    copy_weights(model, namespace["model"])
    script.setup("run_training", ("data_transforms_val", "criterion_cls", "criterion_af", "criterion_pt", "params",
                                  "optimizer"), namespace)
    copy_weights(criterion.affinity, namespace["criterion_af"])

    images, targets = uint8_batch(SIZE), common.labels()
    upstream_images = torch.stack([namespace["data_transforms_val"](i) for i in common.pil_images(images)])
    upstream = upstream_step(
        script, "run_training", "train_loader", namespace, (upstream_images, targets), namespace["optimizer"],
        named_state(namespace["model"], centers=namespace["criterion_af"].centers), steps=STEPS,
    )
    ferbench = ferbench_step(
        adapter, ctx, common.recipe("dan"), model, criterion, adapter.eval_transform(SIZE)(images), targets,
        named_state(model, centers=criterion.affinity.centers), steps=STEPS,
    )
    assert_identical(ferbench, upstream, calls=STEPS)
