"""DDAMFN adapter: the attention loss from rafdb_train.py (without running the script), its 0.1 weight, the
112-only input, and the MS-Celeb MixedFeatureNet load (a whole pickled module, admitted class by class)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from adapters.contract import BuildContext
from harness.errors import FerbenchError
from tests.adapters.upstream import fetched, on_path

UPSTREAM, pytestmark = fetched("ddamfn")
TOP_LEVEL = ("networks",)  # shared with DAN: never let one test module see the other's


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    yield from on_path(UPSTREAM, TOP_LEVEL, "_ferbench_ddamfn")


@pytest.fixture(scope="module")
def ddamfn():
    from adapters import ddamfn

    return ddamfn


def declared_globals() -> dict:
    """The allowlist benchmark.toml declares for the model's weight files: the tests load through it."""
    from harness.config import load

    return {w.name: w.globals for w in load().model("ddamfn").pretrained}


def ctx(**kw) -> BuildContext:
    return BuildContext(**{"num_classes": 7, "input_size": 112, "pretrained": False, "upstream_dir": UPSTREAM,
                           "allowed_globals": declared_globals(), **kw})


def test_attention_loss_compiles_from_rafdb_train_without_running_it(ddamfn):
    argv = list(sys.argv)
    losses = ddamfn.upstream_losses(ctx())
    assert Path(losses.__file__) == UPSTREAM / "rafdb_train.py" and not hasattr(losses, "run_training")
    assert sys.argv == argv and "plt" not in vars(losses)


def test_criterion_is_ce_plus_tenth_of_attention_loss(ddamfn):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 7, generator=g)
    heads = [torch.rand(4, 512, 7, 7, generator=g) for _ in range(2)]
    targets = torch.tensor([0, 2, 5, 6])
    attention = 1 / (F.mse_loss(heads[0], heads[1]) + sys.float_info.epsilon)  # cnt / (Σ mse + eps), one pair
    expected = F.cross_entropy(logits, targets) + 0.1 * attention
    got = ddamfn.criterion(ctx())((logits, None, heads), targets)
    assert torch.allclose(got, expected, rtol=1e-5)


def test_model_outputs_logits_and_input_size(ddamfn):
    torch.manual_seed(0)
    model = ddamfn.build(ctx()).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 112, 112))
    assert tuple(out[0].shape) == (2, 7) and tuple(out[1].shape) == (2, 512, 7, 7)
    assert len(out[2]) == 2 and tuple(out[2][0].shape) == (2, 512, 7, 7)
    assert ddamfn.ADAPTER.logits(out) is out[0]
    assert Path(sys.modules[type(model).__module__].__file__).is_relative_to(UPSTREAM)
    with pytest.raises(FerbenchError, match="112"):
        ddamfn.build(ctx(input_size=224))


def test_transforms(ddamfn):
    batch = torch.randint(0, 256, (3, 3, 112, 112), dtype=torch.uint8)
    for transform in (ddamfn.train_transform(112), ddamfn.ADAPTER.eval_transform(112)):
        out = transform(batch)
        assert out.dtype == torch.float32 and out.shape == batch.shape and torch.isfinite(out).all()


def test_pretrained_pickled_module_loads_only_its_declared_classes_and_fills_features(ddamfn, tmp_path):
    from networks.MixedFeatureNet import MixedFeatureNet

    torch.manual_seed(1)
    source = MixedFeatureNet()
    path = tmp_path / ddamfn.WEIGHTS
    torch.save(source, path)  # the upstream file is a whole pickled nn.Module
    with pytest.raises(FerbenchError, match="needs the global networks.MixedFeatureNet.MixedFeatureNet"):
        ddamfn.build(ctx(pretrained=True, weights={ddamfn.WEIGHTS: path}, allowed_globals={}))
    model = ddamfn.build(ctx(pretrained=True, weights={ddamfn.WEIGHTS: path}))
    assert torch.equal(model.features[0].conv.weight, source.conv1.conv.weight)
    assert torch.equal(model.features[8].conv.weight, source.conv_6_sep.conv.weight)

    torch.save(source.state_dict(), path)  # the same file converted once to a state dict
    model = ddamfn.build(ctx(pretrained=True, weights={ddamfn.WEIGHTS: path}))
    assert torch.equal(model.features[5].model[0].conv.conv.weight, source.conv_4.model[0].conv.conv.weight)

    torch.save({k: v for k, v in source.state_dict().items() if not k.startswith("conv_5")}, path)
    with pytest.raises(FerbenchError, match="partial load"):
        ddamfn.build(ctx(pretrained=True, weights={ddamfn.WEIGHTS: path}))
