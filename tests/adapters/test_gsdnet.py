"""GSDNet adapter: construction without the absolute-path weight file, the self-distillation loss of
model/utils.py::train_one_epoch (teachers detached), the prediction head, and the 318-tensor VGGFace2 load."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from adapters.contract import BuildContext
from harness.errors import FerbenchError
from tests.adapters.upstream import fetched, on_path
from tests.weight_files import python2_pickle

UPSTREAM, pytestmark = fetched("gsdnet")
TOP_LEVEL = ("gsdnet", "model")


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    yield from on_path(UPSTREAM, TOP_LEVEL, "_ferbench_gsdnet")


@pytest.fixture(scope="module")
def gsdnet():
    from adapters import gsdnet

    return gsdnet


@pytest.fixture(scope="module")
def model(gsdnet):
    torch.manual_seed(0)
    return gsdnet.build(ctx())


def declared_globals() -> dict:
    """The allowlist benchmark.toml declares for the model's weight files: the tests load through it."""
    from harness.config import load

    return {w.name: w.globals for w in load().model("gsdnet").pretrained}


def ctx(**kw) -> BuildContext:
    return BuildContext(**{"num_classes": 7, "input_size": 64, "pretrained": False, "upstream_dir": UPSTREAM,
                           "allowed_globals": declared_globals(), **kw})


def test_builds_upstream_class_without_its_weight_file(gsdnet, model, monkeypatch):
    import builtins

    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        assert not str(file).startswith("/data/"), "GSDNet.__init__ must not read its absolute weight path"
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    torch.manual_seed(0)
    built = gsdnet.build(ctx(num_classes=8))
    assert tuple(built.resnet.fc_4_4.weight.shape) == (8, 2048)
    module = sys.modules[type(model).__module__]
    assert Path(module.__file__) == UPSTREAM / "GSD-Net" / "gsdnet.py"
    assert "open" not in vars(module), "the local `open` must not outlive construction"


def test_forward_keeps_in_place_teacher_sum_and_predicts_with_head_4(gsdnet, model):
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    preds, feats, pred_teacher, feat_teacher = out
    assert len(preds) == len(feats) == 4 and tuple(preds[3].shape) == (2, 7) and tuple(feats[3].shape) == (2, 128)
    assert preds[0] is pred_teacher and feats[0] is feat_teacher  # upstream's in-place `+=` aliasing
    assert gsdnet.ADAPTER.logits(out) is preds[3]


def test_criterion_is_upstream_self_distillation(gsdnet):
    g = torch.Generator().manual_seed(0)
    preds = [torch.randn(4, 7, generator=g, requires_grad=True) for _ in range(4)]
    feats = [torch.randn(4, 128, generator=g, requires_grad=True) for _ in range(4)]
    targets = torch.tensor([0, 1, 5, 6])
    loss = gsdnet.criterion(ctx())((preds, feats, None, None), targets)

    expected = F.cross_entropy(preds[3], targets)
    for student, teacher in ((2, 3), (1, 2), (0, 1)):
        expected = expected + 0.01 * (feats[student] - feats[teacher]).pow(2).sum().sqrt()
        soft = F.softmax(preds[teacher] / 3, dim=1)
        expected = expected + 0.3 * -(F.log_softmax(preds[student] / 3, dim=1) * soft).sum(1).mean()
    assert torch.allclose(loss, expected.detach(), rtol=1e-5)

    loss.backward()
    assert feats[3].grad is None, "the deepest head's feature is only ever a detached teacher"
    ce_only = torch.autograd.grad(F.cross_entropy(preds[3], targets), preds[3])[0]
    assert torch.allclose(preds[3].grad, ce_only), "head 4 gets the CE gradient only"


def test_transforms(gsdnet):
    batch = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    for transform in (gsdnet.train_transform(64), gsdnet.ADAPTER.eval_transform(64)):
        out = transform(batch)
        assert out.dtype == torch.float32 and out.shape == batch.shape and torch.isfinite(out).all()


def _vggface2_pickle(model, path: Path, drop: str = "", counters: bool = True) -> dict:
    """The released file's layout: a latin1 pickle of numpy arrays named like torchvision's ResNet-50 (with
    `num_batches_tracked`) plus an 8631-way `fc` that GSDNet lacks (kept tiny here)."""
    from torchvision.models import resnet50

    names = [k for k in resnet50().state_dict() if not k.startswith("fc.") and (counters or "num_batches" not in k)]
    state = {k: (model.resnet.state_dict()[k] + 1).numpy() for k in names if not (drop and k.startswith(drop))}
    state.update({"fc.weight": torch.zeros(3, 2048).numpy(), "fc.bias": torch.zeros(3).numpy()})
    path.write_bytes(python2_pickle(state))
    return state


def test_pretrained_vggface2_pickle_loads_every_trunk_weight(gsdnet, model, tmp_path):
    path = tmp_path / gsdnet.WEIGHTS
    state = _vggface2_pickle(model, path)
    weights = {gsdnet.WEIGHTS: path}
    with pytest.raises(FerbenchError, match="needs the global numpy.core.multiarray._reconstruct"):
        gsdnet.build(ctx(pretrained=True, weights=weights, allowed_globals={}))
    loaded = gsdnet.build(ctx(pretrained=True, weights=weights))
    assert torch.equal(loaded.resnet.bn1.running_var, torch.from_numpy(state["bn1.running_var"]))
    assert torch.equal(loaded.resnet.layer4[2].conv3.weight, torch.from_numpy(state["layer4.2.conv3.weight"]))

    _vggface2_pickle(model, path, counters=False)  # a Caffe conversion may lack the BatchNorm counters
    gsdnet.build(ctx(pretrained=True, weights=weights))

    _vggface2_pickle(model, path, drop="layer3.5")
    with pytest.raises(FerbenchError, match="265 expected"):
        gsdnet.build(ctx(pretrained=True, weights=weights))
