"""VGG19 baseline and the shared WuJie1010 handling (adapters/fer_pytorch.py): grey conversion as PIL does it,
RandomCrop 44 + flip, ten-crop logit averaging as the test loop of mainpro_CK+.py, the 7-class head, and the
CK+ learning-rate schedule."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
import torch
from torch import nn

from adapters.contract import BuildContext
from harness import config
from harness.run.optim import lr_factor
from tests.adapters.upstream import fetched
from tests.conftest import REPO

UPSTREAM, pytestmark = fetched("fer-pytorch")


def ctx(**kw) -> BuildContext:
    return BuildContext(**{"num_classes": 7, "input_size": 48, "pretrained": False, "upstream_dir": UPSTREAM, **kw})


def test_grey_is_pils_luma_replicated():
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    from adapters.fer_pytorch import grey

    rgb = torch.randint(0, 256, (2, 3, 9, 7), dtype=torch.uint8)
    out = grey(rgb)
    for image, result in zip(rgb, out):
        expected = TF.pil_to_tensor(TF.to_pil_image(image).convert("L"))
        assert torch.equal(result, expected.expand(3, -1, -1))
    already = rgb[:, :1].expand(-1, 3, -1, -1)
    assert torch.equal(grey(already), already)  # grey data (CK+, FER2013) passes unchanged


def test_train_transform_crops_a_window_of_the_grey_image():
    from adapters.fer_pytorch import grey, train_transform

    batch = torch.randint(0, 256, (4, 3, 48, 48), dtype=torch.uint8)
    out = train_transform(48)(batch)
    assert out.shape == (4, 3, 44, 44) and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    source = grey(batch).float() / 255
    for image, crop in zip(source, out):
        windows = [image[:, y : y + 44, x : x + 44] for y in range(5) for x in range(5)]
        assert any(torch.equal(crop, w) or torch.equal(crop, w.flip(-1)) for w in windows)


def test_ten_crop_forward_averages_the_logits_of_upstreams_crops():
    """Reference: torchvision's PIL TenCrop(44) + ToTensor per crop, `outputs.view(bs, ncrops, -1).mean(1)`."""
    from torchvision import transforms

    from adapters.fer_pytorch import eval_transform, ten_crop_forward

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 5), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(4, 7)).eval()
    batch = torch.randint(0, 256, (3, 3, 48, 48), dtype=torch.uint8)
    images = eval_transform(48)(batch)
    assert images.shape == (3, 3, 48, 48) and torch.equal(images[:, 0], images[:, 2])
    test = transforms.Compose([
        transforms.TenCrop(44), transforms.Lambda(lambda crops: torch.stack([transforms.ToTensor()(c) for c in crops])),
    ])
    with torch.no_grad():
        crops = torch.stack([test(transforms.functional.to_pil_image(image)) for image in images])  # bs, 10, 3, 44, 44
        expected = model(crops.view(-1, 3, 44, 44)).view(3, 10, -1).mean(1)
        assert torch.allclose(ten_crop_forward(model, images), expected, atol=1e-5)


def test_vgg19_builds_upstreams_class():
    from adapters import vgg19

    torch.manual_seed(0)
    model = vgg19.build(ctx())
    assert Path(sys.modules[type(model).__module__].__file__) == UPSTREAM / "models" / "vgg.py"
    assert model.classifier.out_features == 7
    assert vgg19.build(ctx(num_classes=8)).classifier.out_features == 8
    torch.manual_seed(0)
    reference = sys.modules[type(model).__module__].VGG("VGG19")
    assert torch.equal(model.classifier.weight, reference.classifier.weight)  # 7 classes: untouched
    model.train()
    images = vgg19.ADAPTER.train_transform(48)(torch.randint(0, 256, (2, 3, 48, 48), dtype=torch.uint8))
    loss = vgg19.ADAPTER.train_loss(model, images, torch.tensor([0, 6]), vgg19.ADAPTER.criterion(ctx()))
    loss.backward()
    assert torch.isfinite(loss) and model.features[0].weight.grad is not None
    assert vgg19.ADAPTER.drop_last is False and vgg19.ADAPTER.eval_forward.__name__ == "ten_crop_forward"


@pytest.mark.parametrize("name", ["vgg19", "resnet18"])
def test_recipe_schedule_is_mainpro_ck(name):
    """mainpro_CK+.py: at 0-based epoch e > 20 the lr is 0.01 * 0.8 ** (e - 20); the loop's epoch k runs after
    k - 1 scheduler steps, i.e. at e = k - 1."""
    section = tomllib.loads((REPO / "benchmark.toml").read_text(encoding="utf-8"))["models"][name]
    recipe = config.Recipe.model_validate(section["recipe"])
    for e in range(recipe.epochs):
        upstream = 0.01 * 0.8 ** (e - 20) if e > 20 else 0.01
        assert recipe.lr * lr_factor(recipe, e) == pytest.approx(upstream)
    assert recipe.grad_clamp == 0.1 and recipe.batch_size == 128 and recipe.epochs == 60
