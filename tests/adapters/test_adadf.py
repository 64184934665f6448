"""Ada-DF adapter: a constructor whose stubbed load leaves the random init alone, the MS-Celeb load from a fake
file, the α schedule, the label-distribution table and its rebuild after each epoch, the loss terms of
train.py, and the vendored RandAugment with Posterize patched."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adapters.augment import IMAGENET_MEAN, IMAGENET_STD
from adapters.contract import BuildContext, EpochState
from harness.errors import FerbenchError
from tests.adapters.upstream import fetched

UPSTREAM, pytestmark = fetched("adadf")


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    """The worker puts the upstream on sys.path (the transform finds auto_augment.py there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    saved = list(sys.path)
    sys.path.insert(0, str(UPSTREAM))
    yield
    sys.path[:] = saved
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def adadf():
    from adapters import adadf

    return adadf


def ctx(**kw) -> BuildContext:
    return BuildContext(**{"num_classes": 7, "input_size": 112, "pretrained": False, "upstream_dir": UPSTREAM, **kw})


def test_random_init_is_the_constructors_own(adadf):
    import timm

    from adapters.shims import torch_load_returning

    torch.manual_seed(0)
    model = adadf.build(ctx())
    after_build = torch.rand(3)
    torch.manual_seed(0)
    reference = timm.create_model("resnet18", pretrained=False)
    assert torch.equal(model.feature[0].weight, reference.conv1.weight)
    assert torch.equal(model.branch_1[0][0].conv1.weight, reference.layer2[0].conv1.weight)
    assert torch.equal(model.branch_1_classifier.weight, model.branch_2_classifier.weight)  # deep copy, fc included
    assert all(not p.requires_grad for p in model.feature.parameters())
    assert Path(sys.modules[type(model).__module__].__file__) == UPSTREAM / "model.py"
    elsewhere = {"state_dict": timm.create_model("resnet18", pretrained=False).state_dict()}
    torch.manual_seed(0)
    with torch_load_returning(elsewhere):
        sys.modules["_ferbench_adadf_model"].create_model(7, 0)
    assert torch.equal(torch.rand(3), after_build)  # building draws what the bare constructor draws, no more


def test_pretrained_msceleb_resnet18_from_a_fake_file(adadf, tmp_path):
    import timm

    torch.manual_seed(1)
    source = timm.create_model("resnet18", pretrained=False).state_dict()
    path = tmp_path / adadf.WEIGHTS
    torch.save({"state_dict": source, "epoch": 3}, path)
    torch.manual_seed(0)
    model = adadf.build(ctx(pretrained=True, weights={adadf.WEIGHTS: path}))
    torch.manual_seed(0)
    random = adadf.build(ctx())
    assert torch.equal(model.feature[4][0].conv1.weight, source["layer1.0.conv1.weight"])
    for branch in (model.branch_1_feature, model.branch_2_feature):
        assert torch.equal(branch[2][1].bn2.running_var, source["layer4.1.bn2.running_var"])
    assert torch.equal(model.branch_2_classifier.weight, random.branch_2_classifier.weight)  # not from the file

    torch.save({"state_dict": {k: v for k, v in source.items() if not k.startswith("layer3")}}, path)
    with pytest.raises(FerbenchError, match="partial load"):
        adadf.build(ctx(pretrained=True, weights={adadf.WEIGHTS: path}))


def test_alpha_schedule(adadf):
    assert adadf.alphas(1) == pytest.approx((math.exp(-(2 / 3) ** 2), 1.0))
    assert adadf.alphas(3) == (1.0, 1.0)
    assert adadf.alphas(4) == pytest.approx((1.0, math.exp(-(1 / 4) ** 2)))
    assert adadf.alphas(75)[1] == pytest.approx(math.exp(-(1 - 3 / 75) ** 2))


def test_initial_table_and_rebuild(adadf):
    criterion = adadf.criterion(ctx(num_classes=4))
    table = criterion.distributions
    assert torch.allclose(table.diagonal(), torch.full((4,), 0.7)) and torch.allclose(table.sum(1), torch.ones(4))

    confident = torch.tensor([[9.0, 0, 0, 0], [8.0, 1, 0, 0], [0, 0.1, 0, 0], [0, 0, 0.2, 0]])
    criterion.rebuild(confident, torch.tensor([0, 0, 1, 2]))
    expected_0 = confident[:2].softmax(1).mean(0)
    assert torch.allclose(criterion.distributions[0], expected_0)  # mean probability ≥ threshold 0.7
    fallback = torch.full((4,), 0.4 / 3)
    fallback[1] = 0.7
    assert torch.allclose(criterion.distributions[1], fallback)  # utils.py's fallback: sums to 1.1 upstream
    assert torch.allclose(criterion.distributions[3].sum(), torch.tensor(1.1))  # a class with no sample


def _reference_loss(adadf, outputs, labels, table, alpha_1, alpha_2):
    out_1, out_2, att = outputs
    b = len(labels)
    tops = int(b * 0.7)
    order = att.squeeze().argsort(descending=True)
    diff = att[order[tops:]].mean() - att[order[:tops]].mean() + 0.07  # the b - tops lowest vs the tops highest
    rr = diff.clamp(min=0)
    w = (att - att.min()) / (att.max() - att.min()) * 0.8 + 0.2
    targets = (1 - w) * out_1.softmax(1) + w * table[labels]
    kld = (targets * (targets.log() - out_2.log_softmax(1))).sum() / b
    return alpha_2 * F.cross_entropy(out_1, labels) + alpha_1 * kld + rr


@pytest.mark.parametrize("spread", [0.01, 0.4])  # hinge active (weights alike) / inactive (spread out)
def test_loss_matches_train_py(adadf, spread):
    torch.manual_seed(0)
    criterion = adadf.criterion(ctx())
    criterion.start_epoch(5)
    out_1, out_2 = torch.randn(8, 7, requires_grad=True), torch.randn(8, 7)
    att = (0.5 + spread * torch.linspace(-1, 1, 8)[torch.randperm(8)]).unsqueeze(1).requires_grad_()
    labels = torch.randint(0, 7, (8,))
    loss = criterion((out_1, out_2, att), labels)
    expected = _reference_loss(adadf, (out_1, out_2, att), labels, criterion.distributions, *adadf.alphas(5))
    assert torch.allclose(loss, expected, atol=1e-5)
    loss.backward()
    assert att.grad.abs().sum() > 0  # the fused target is not detached


def test_epoch_hooks_set_alphas_and_rebuild_from_out_1_in_eval_mode(adadf):
    class Stub(nn.Module):
        def __init__(self):
            super().__init__()
            self.modes = []

        def forward(self, x):
            self.modes.append(self.training)
            out_1 = F.one_hot(x[:, 0, 0, 0].long(), 3).float() * 10  # confident about the class drawn in the image
            return out_1, -out_1, torch.ones(len(x), 1)

    images = torch.tensor([0, 1, 2, 1, 0]).view(5, 1, 1, 1).expand(5, 3, 2, 2).to(torch.uint8)
    model, criterion = Stub().train(), adadf.criterion(ctx(num_classes=3))
    state = EpochState(model=model, criterion=criterion, epoch=2, epochs=10, train_images=images,
                       train_labels=torch.tensor([0, 1, 2, 1, 0]), train_transform=lambda b: b.float(), batch_size=2,
                       device="cpu")
    adadf.ADAPTER.epoch_start(state)
    assert (criterion.alpha_1, criterion.alpha_2) == adadf.alphas(2)
    adadf.ADAPTER.epoch_end(state)
    assert model.modes == [False] * 3 and model.training  # every image once, in eval mode; mode restored
    assert torch.allclose(criterion.distributions, torch.eye(3).mul(10).softmax(1))


def test_transforms_and_logits(adadf):
    from PIL import Image

    batch = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    train = adadf.train_transform(64)(batch)
    assert train.dtype == torch.float32 and train.shape == (3, 3, 64, 64) and torch.isfinite(train).all()
    augment = sys.modules["_ferbench_adadf_auto_augment"]
    assert Path(augment.__file__) == UPSTREAM / "auto_augment.py" and "auto_augment" not in sys.modules
    black = augment.NAME_TO_OP["Posterize"](Image.new("RGB", (4, 4), (200, 10, 90)), 0)
    assert black.getextrema() == ((0, 0),) * 3  # Pillow 13 would raise on 0 bits
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(adadf.ADAPTER.eval_transform(64)(batch), (batch / 255 - mean) / std, atol=1e-6)
    outputs = (torch.zeros(2, 7), torch.ones(2, 7), torch.ones(2, 1))
    assert adadf.ADAPTER.logits(outputs) is outputs[1]


def test_one_training_step_backpropagates(adadf):
    torch.manual_seed(0)
    model = adadf.build(ctx()).train()
    criterion = adadf.criterion(ctx())
    images = adadf.ADAPTER.eval_transform(64)(torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8))
    loss = adadf.ADAPTER.train_loss(model, images, torch.tensor([0, 3, 5, 6]), criterion)
    loss.backward()
    assert torch.isfinite(loss) and model.alpha_2[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.feature.parameters())


def test_the_label_distribution_table_survives_a_checkpoint():
    from adapters.adadf import AdaDFLoss
    from harness.run import checkpoint

    loss = AdaDFLoss(utils=None, num_classes=3)
    loss.distributions = torch.rand(3, 3)
    state = checkpoint._state(loss)
    fresh = AdaDFLoss(utils=None, num_classes=3)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.distributions, loss.distributions)
