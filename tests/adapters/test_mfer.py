"""MFER adapter: model.py loaded despite shadowing its `model/` folder (and the `model` entry put back), the
ConvNeXt-B + three multiscale heads bundle sized by num_classes, Σ LSCE(0.1) over the heads, the summed-logit
prediction, and no augmentation."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch

from adapters.augment import IMAGENET_MEAN, IMAGENET_STD, normalize
from adapters.contract import BuildContext
from tests.adapters.upstream import fetched

UPSTREAM, pytestmark = fetched("mfer")


def ctx(**kw) -> BuildContext:
    return BuildContext(**{"num_classes": 8, "input_size": 32, "pretrained": False, "upstream_dir": UPSTREAM, **kw})


@pytest.fixture(scope="module")
def mfer():
    torch.set_num_threads(1)
    from adapters import mfer

    return mfer


@pytest.fixture(scope="module")
def model(mfer):
    other = types.ModuleType("model")  # e.g. Ada-DF's or GSDNet's `model`, imported earlier in this process
    saved = sys.modules.get("model")
    sys.modules["model"] = other
    try:
        torch.manual_seed(0)
        built = mfer.build(ctx())
        assert sys.modules["model"] is other, "the previous `model` module must be put back"
    finally:
        sys.modules.pop("model")
        if saved is not None:
            sys.modules["model"] = saved
    return built


def test_bundle_is_upstream_convnext_base_with_three_heads(model):
    backbone_file = sys.modules[type(model.backbone).__module__].__file__
    assert Path(backbone_file) == UPSTREAM / "model.py"
    assert [len(stage) for stage in model.backbone.stages] == [3, 3, 28, 4]  # 27 / 3 blocks + Attention
    assert type(model.backbone.stages[3][-1]).__name__ == "Attention"
    assert model.backbone.stages[2][-2].drop_path.drop_prob == pytest.approx(0.25 * 32 / 35)  # drop_path_rate 0.25
    assert [h.fc1.in_features for h in model.heads] == [512, 768, 1024]
    assert [h.fc2.out_features for h in model.heads] == [8, 8, 8], "heads follow num_classes (upstream Msc: 7)"
    assert Path(sys.modules[type(model.heads[0]).__module__].__file__) == UPSTREAM / "model" / "multiscale.py"
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(155.36e6, rel=1e-3)


def test_model_package_binding_is_temporary(mfer):
    other = types.ModuleType("model")
    saved = sys.modules.get("model")
    sys.modules["model"] = other
    try:
        with mfer._model_package(ctx()):
            assert sys.modules["model"].__path__ == [str(UPSTREAM / "model")]
            import model.attention  # noqa: F401  (what model.py does)
        assert sys.modules["model"] is other and "model.attention" not in sys.modules
    finally:
        sys.modules.pop("model")
        if saved is not None:
            sys.modules["model"] = saved


def test_forward_loss_and_prediction(mfer, model):
    criterion = mfer.criterion(ctx())
    assert Path(sys.modules[type(criterion.lsce).__module__].__file__) == UPSTREAM / "model" / "smooth_feature.py"
    assert criterion.lsce.smoothing == 0.1
    model.train()
    images, targets = torch.randn(2, 3, 32, 32), torch.tensor([1, 7])
    outputs = model(images)
    assert len(outputs) == 3 and all(o.shape == (2, 8) for o in outputs)

    def lsce(logits):
        logp = logits.log_softmax(-1)
        return (0.9 * -logp.gather(1, targets[:, None]).squeeze(1) + 0.1 * -logp.mean(-1)).mean()

    loss = criterion(outputs, targets)
    assert torch.allclose(loss, sum(lsce(o) for o in outputs))
    assert torch.allclose(mfer.ADAPTER.logits(outputs), outputs[0] + outputs[1] + outputs[2])
    loss.backward()
    assert all(p.grad is not None for head in model.heads for p in head.parameters())
    assert model.backbone.downsample_layers[0][0].weight.grad is not None


def test_no_augmentation(mfer):
    batch = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    expected = normalize(batch.float() / 255, IMAGENET_MEAN, IMAGENET_STD)
    assert torch.allclose(mfer.ADAPTER.train_transform(16)(batch), expected)
    assert torch.allclose(mfer.ADAPTER.eval_transform(16)(batch), expected)
