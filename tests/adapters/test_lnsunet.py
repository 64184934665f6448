"""LNSU-Net adapter: loss definitions compiled from train_exp.py without running it, class weights recomputed
for the split and its class order (LSR2's smoothing and the CAM loss), the two-view step, the timm
augmentation, and the Swin-T backbone load from a fake start_0.pt."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from adapters.contract import BuildContext
from harness.errors import FerbenchError
from tests.adapters.upstream import fetched

UPSTREAM, pytestmark = fetched("lnsunet")
COUNTS = (40, 10, 25, 5, 3, 8, 9)


@pytest.fixture(scope="module")
def lnsunet():
    from adapters import lnsunet

    return lnsunet


def ctx(**kw) -> BuildContext:
    base = {"num_classes": 7, "input_size": 112, "pretrained": False, "upstream_dir": UPSTREAM, "class_counts": COUNTS}
    return BuildContext(**{**base, **kw})


@pytest.fixture(scope="module")
def model(lnsunet):
    torch.manual_seed(0)
    return lnsunet.build(ctx())


def test_losses_compile_from_train_exp_without_running_it(lnsunet):
    argv = list(sys.argv)
    losses = lnsunet.upstream_losses(ctx())
    assert Path(losses.__file__) == UPSTREAM / "code" / "train_exp.py" and sys.argv == argv
    assert not hasattr(losses, "main") and not hasattr(losses, "distributed") and not hasattr(losses, "SummaryWriter")
    assert {"LSR2", "ACLoss", "generate_flip_grid"} <= set(vars(losses))


def test_raf_counts_give_the_hard_coded_weights(lnsunet):
    """Upstream's literal lists (LSR2 and main) are 0.1·N/n_c of RAF-DB's train split, in RAF order."""
    tree = ast.parse((UPSTREAM / "code" / "train_exp.py").read_text())
    literals = [
        [e.value for e in node.elts] for node in ast.walk(tree)
        if isinstance(node, ast.List) and len(node.elts) == 7 and all(isinstance(e, ast.Constant) for e in node.elts)
    ]
    assert len(literals) == 2 and literals[0] == literals[1]
    assert lnsunet.class_weights(lnsunet.RAF_TRAIN_COUNTS) == pytest.approx(literals[0], rel=1e-6)
    assert lnsunet.class_weights((10, 0))[1] == pytest.approx(1.0)  # an absent class counts as one sample


@pytest.mark.parametrize("classes", [7, 8])
def test_lsr2_smooths_towards_the_split_weights(lnsunet, classes):
    counts = tuple(range(3, 3 + classes))
    criterion = lnsunet.criterion(ctx(num_classes=classes, class_counts=counts))
    w = torch.tensor(lnsunet.class_weights(counts))
    logits, targets = torch.randn(4, classes), torch.tensor([0, 2, classes - 1, 2])
    smooth = torch.zeros(4, classes)
    for n, y in enumerate(targets.tolist()):
        others = torch.arange(classes) != y
        smooth[n, others] = 0.3 * w[others] / w[others].sum()
        smooth[n, y] = 0.7
    expected = -(F.log_softmax(logits, 1) * smooth).sum(1).mean()
    assert torch.allclose(criterion.lsr(logits, targets), expected, atol=1e-6)


def test_loss_adds_the_weighted_flip_consistency_of_the_cams(lnsunet):
    torch.manual_seed(0)
    criterion = lnsunet.criterion(ctx())
    logits, cam, targets = torch.randn(3, 7), torch.randn(3, 7, 7, 7), torch.tensor([1, 0, 6])
    consistent = criterion((logits, cam, torch.randn(3, 7), cam.flip(-1)), targets)
    assert torch.allclose(consistent, criterion.lsr(logits, targets), atol=1e-6)  # a mirrored CAM costs nothing

    other = torch.randn(3, 7, 7, 7)
    w = torch.tensor(lnsunet.class_weights(COUNTS))
    per_class = ((cam - other.flip(-1)) ** 2).mean(dim=(2, 3))  # grid_sample of the flip grid = exact mirror
    expected = criterion.lsr(logits, targets) + 0.1 * (per_class @ w).mean()
    assert torch.allclose(criterion((logits, cam, logits, other), targets), expected, atol=1e-5)


def test_criterion_needs_class_counts(lnsunet):
    with pytest.raises(FerbenchError, match="class_counts"):
        lnsunet.criterion(ctx(class_counts=()))


def test_train_loss_forwards_the_exact_mirror(lnsunet):
    seen = []

    def fake(images):
        seen.append(images)
        return images.mean(dim=(2, 3)).repeat(1, 3)[:, :7], images[:, :1, :7, :7].repeat(1, 7, 1, 1)

    images = torch.randn(2, 3, 8, 8)
    recorded = []

    def criterion(outputs, targets):
        recorded.append(outputs)
        return torch.zeros(())

    lnsunet.train_loss(fake, images, torch.tensor([0, 1]), criterion)
    assert len(seen) == 2 and torch.equal(seen[0], images) and torch.equal(seen[1], images.flip(-1))
    assert len(recorded[0]) == 4


def test_model_outputs_logits_and_cam(lnsunet, model):
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 112, 112))
    assert [tuple(t.shape) for t in out] == [(2, 7), (2, 7, 7, 7)]
    assert lnsunet.ADAPTER.logits(out) is out[0]
    assert Path(sys.modules[type(model).__module__].__file__) == UPSTREAM / "code" / "expression" / "models.py"
    with pytest.raises(FerbenchError, match="112"):
        lnsunet.build(ctx(input_size=224))


def test_one_training_step_backpropagates(lnsunet, model):
    model.train()
    criterion = lnsunet.criterion(ctx())
    images = lnsunet.eval_transform(112)(torch.randint(0, 256, (2, 3, 112, 112), dtype=torch.uint8))
    loss = lnsunet.ADAPTER.train_loss(model, images, torch.tensor([3, 5]), criterion)
    loss.backward()
    assert torch.isfinite(loss) and model.head.weight.grad.abs().sum() > 0
    assert model.encoder.layers[0].blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


def test_transforms(lnsunet):
    from PIL import Image
    from timm.data import auto_augment

    batch = torch.randint(0, 256, (3, 3, 112, 112), dtype=torch.uint8)
    train = lnsunet.train_transform(112)(batch)
    assert train.dtype == torch.float32 and train.shape == (3, 3, 112, 112) and torch.isfinite(train).all()
    black = auto_augment.NAME_TO_OP["PosterizeIncreasing"](Image.new("RGB", (4, 4), (200, 10, 90)), 0)
    assert black.getextrema() == ((0, 0),) * 3  # Pillow 13 would raise on 0 bits
    assert torch.allclose(lnsunet.eval_transform(112)(batch), (batch / 255 - 0.5) / 0.5, atol=1e-6)


def test_pretrained_swin_from_a_fake_file(lnsunet, model, tmp_path):
    path = tmp_path / lnsunet.WEIGHTS
    source = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in model.encoder.state_dict().items()}
    torch.save({"state_dict_backbone": source, "state_dict_model": {}}, path)
    loaded = lnsunet.build(ctx(pretrained=True, weights={lnsunet.WEIGHTS: path}))
    assert torch.equal(loaded.encoder.patch_embed.proj.weight, source["patch_embed.proj.weight"])
    assert torch.equal(loaded.encoder.feature[1].running_var, source["feature.1.running_var"])

    torch.save({"state_dict_backbone": {k: v for k, v in source.items() if not k.startswith("feature")}}, path)
    with pytest.raises(FerbenchError, match="partial load"):
        lnsunet.build(ctx(pretrained=True, weights={lnsunet.WEIGHTS: path}))
    torch.save({"state_dict": source}, path)
    with pytest.raises(FerbenchError, match="state_dict_backbone"):
        lnsunet.build(ctx(pretrained=True, weights={lnsunet.WEIGHTS: path}))
