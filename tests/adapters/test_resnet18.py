"""ResNet18 baseline (WuJie1010): upstream's CIFAR-style class, its hard-coded 7-way head replaced only for
other class counts, and a step plus ten-crop evaluation at 44 px. Shared handling: test_vgg19.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from adapters.contract import BuildContext
from tests.adapters.upstream import fetched

UPSTREAM, pytestmark = fetched("fer-pytorch")


def ctx(**kw) -> BuildContext:
    return BuildContext(**{"num_classes": 7, "input_size": 48, "pretrained": False, "upstream_dir": UPSTREAM, **kw})


def test_builds_upstreams_resnet18():
    from adapters import resnet18

    torch.manual_seed(0)
    model = resnet18.build(ctx())
    upstream = sys.modules[type(model).__module__]
    assert Path(upstream.__file__) == UPSTREAM / "models" / "resnet.py"
    torch.manual_seed(0)
    reference = upstream.ResNet18()
    assert model.linear.out_features == 7 and torch.equal(model.linear.weight, reference.linear.weight)
    assert resnet18.build(ctx(num_classes=6)).linear.out_features == 6
    taken = sys.modules.get("models")
    assert taken is None or not str(getattr(taken, "__file__", "")).startswith(str(UPSTREAM))  # no top-level name


@pytest.mark.parametrize("classes", [7, 8])
def test_step_and_ten_crop_evaluation(classes):
    from adapters import resnet18

    adapter = resnet18.ADAPTER
    model = resnet18.build(ctx(num_classes=classes)).train()
    batch = torch.randint(0, 256, (2, 3, 48, 48), dtype=torch.uint8)
    images, targets = adapter.train_transform(48)(batch), torch.tensor([0, classes - 1])
    loss = adapter.train_loss(model, images, targets, adapter.criterion(ctx()))
    loss.backward()
    assert torch.isfinite(loss) and model.conv1.weight.grad is not None
    model.eval()
    with torch.no_grad():
        scores = adapter.logits(adapter.eval_forward(model, adapter.eval_transform(48)(batch)))
    assert scores.shape == (2, classes) and torch.isfinite(scores).all()
