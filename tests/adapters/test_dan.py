"""DAN adapter: loss terms taken from rafdb.py without its side effects, learnable centres that follow the
criterion's device, the upstream augmentation, and the MS-Celeb ResNet-18 load from a fake file."""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from adapters.augment import IMAGENET_MEAN, IMAGENET_STD
from adapters.contract import BuildContext
from harness.errors import FerbenchError
from tests.adapters.upstream import fetched, on_path

UPSTREAM, pytestmark = fetched("dan")
TOP_LEVEL = ("networks",)  # shared with DDAMFN: never let one test module see the other's


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    yield from on_path(UPSTREAM, TOP_LEVEL, "_ferbench_dan")


@pytest.fixture(scope="module")
def dan():
    from adapters import dan

    return dan


def ctx(**kw) -> BuildContext:
    return BuildContext(**{"num_classes": 7, "input_size": 64, "pretrained": False, "upstream_dir": UPSTREAM, **kw})


def outputs(batch=4, heads=4, classes=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, classes, generator=g),
        torch.randn(batch, 512, 2, 2, generator=g),
        torch.randn(batch, heads, 512, generator=g).log_softmax(1),
    )


def test_losses_compile_from_rafdb_without_running_the_script(dan):
    warn, argv = warnings.warn, list(sys.argv)
    losses = dan.upstream_losses(ctx())
    assert warnings.warn is warn, "rafdb.py's `warnings.warn = warn` must not run"
    assert sys.argv == argv and "pandas" not in vars(losses) and not hasattr(losses, "run_training")
    assert Path(losses.__file__) == UPSTREAM / "rafdb.py" and losses.eps == sys.float_info.epsilon


def test_criterion_is_ce_plus_affinity_plus_partition(dan):
    torch.manual_seed(0)
    criterion = dan.criterion(ctx())
    logits, feat, heads = outputs()
    targets = torch.tensor([0, 3, 3, 6])
    centres = criterion.affinity.centers.detach()
    x = feat.mean(dim=(2, 3))
    affinity = ((x - centres[targets]) ** 2).sum() / centres.var(dim=0).sum() / len(x)
    partition = math.log(1 + heads.shape[1] / (heads.var(dim=1).mean().item() + sys.float_info.epsilon))
    expected = F.cross_entropy(logits, targets) + affinity + partition
    assert torch.allclose(criterion((logits, feat, heads), targets), expected, rtol=1e-4)


def test_centres_are_learnable_and_sized_like_upstream(dan):
    criterion = dan.criterion(ctx())
    assert isinstance(criterion, torch.nn.Module)
    assert [tuple(p.shape) for p in criterion.parameters()] == [(8, 512)]  # rafdb.py: default 8 for 7 classes
    assert dict(dan.criterion(ctx(num_classes=11)).named_parameters())["affinity.centers"].shape == (11, 512)
    criterion(outputs(), torch.tensor([0, 1, 2, 6])).backward()
    assert criterion.affinity.centers.grad is not None and criterion.affinity.centers.grad.abs().sum() > 0


def test_affinity_follows_the_criterion_to_another_device(dan):
    criterion = dan.criterion(ctx()).to("meta")  # built on CPU like the loop does, then moved
    moved = tuple(t.to("meta") for t in outputs())
    assert criterion(moved, torch.tensor([0, 1, 2, 3], device="meta")).device.type == "meta"


def test_model_outputs_and_logits(dan):
    torch.manual_seed(0)
    model = dan.build(ctx()).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert [tuple(t.shape) for t in out] == [(2, 7), (2, 512, 2, 2), (2, 4, 512)]
    assert dan.ADAPTER.logits(out) is out[0]
    assert Path(sys.modules[type(model).__module__].__file__).is_relative_to(UPSTREAM)


def test_transforms(dan):
    batch = torch.randint(0, 256, (3, 3, 48, 48), dtype=torch.uint8)
    train = dan.train_transform(48)(batch)
    assert train.dtype == torch.float32 and train.shape == (3, 3, 48, 48) and torch.isfinite(train).all()
    evaluated = dan.ADAPTER.eval_transform(48)(batch)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(evaluated, (batch / 255 - mean) / std, atol=1e-6)


def test_pretrained_msceleb_resnet18_from_a_fake_file(dan, tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(1)
    source = resnet18()
    path = tmp_path / dan.WEIGHTS
    torch.save({"state_dict": source.state_dict(), "epoch": 1}, path)
    model = dan.build(ctx(pretrained=True, weights={dan.WEIGHTS: path}))
    assert torch.equal(model.features[0].weight, source.conv1.weight)
    assert torch.equal(model.features[7][1].bn2.running_var, source.layer4[1].bn2.running_var)

    partial = {k: v for k, v in source.state_dict().items() if not k.startswith("layer4")}
    torch.save({"state_dict": partial}, path)
    with pytest.raises(FerbenchError, match="partial load"):
        dan.build(ctx(pretrained=True, weights={dan.WEIGHTS: path}))
    with pytest.raises(FerbenchError, match="not declared"):
        dan.build(ctx(pretrained=True))
