"""POSTER adapter: a build that reads no weight file and leaves no patch behind, upstream's CE + 2·LSCE(0.2)
loss, its SAM class, the RafDataSet augmentation (flip / Gaussian noise, BGR, RandomErasing) and the two
pretrained loads from fake files, including the partial-load errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adapters.augment import IMAGENET_MEAN, IMAGENET_STD, normalize
from adapters.contract import BuildContext, model_module_file
from harness.errors import FerbenchError
from tests.adapters.upstream import fetched

UPSTREAM, pytestmark = fetched("poster")


def ctx(**kw) -> BuildContext:
    return BuildContext(**{"num_classes": 7, "input_size": 112, "pretrained": False, "upstream_dir": UPSTREAM, **kw})


@pytest.fixture(scope="module")
def poster():
    torch.set_num_threads(1)
    from adapters import poster

    return poster


@pytest.fixture(scope="module")
def model(poster):
    load, load_state_dict = torch.load, nn.Module.load_state_dict
    torch.manual_seed(0)
    built = poster.build(ctx())
    assert torch.load is load and nn.Module.load_state_dict is load_state_dict, "construction patches must be undone"
    return built


def test_build_uses_upstream_and_reads_no_weight_file(model):
    assert Path(model_module_file(model)) == UPSTREAM / "models" / "emotion_hyp.py"
    assert "models" not in sys.modules or str(UPSTREAM) not in str(getattr(sys.modules["models"], "__path__", ""))
    assert len(model.pyramid_fuse.blocks) == 8, "type='large' (train.py default) has depth 8"
    assert not any(p.requires_grad for p in model.face_landback.parameters()), "landmark branch stays frozen"
    model.eval()
    with torch.no_grad():
        logits, feature = model(torch.randn(2, 3, 112, 112))
    assert logits.shape == (2, 7) and feature.shape == (2, 512)


def test_matplotlib_stand_in_is_not_left_behind(model):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib" not in sys.modules and "matplotlib.pyplot" not in sys.modules


def test_criterion_is_ce_plus_twice_label_smoothing(poster):
    criterion = poster.criterion(ctx())
    assert Path(sys.modules[type(criterion.lsce).__module__].__file__) == UPSTREAM / "utils.py"
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(4, 7, generator=g), torch.tensor([0, 2, 5, 6])
    logp = logits.log_softmax(-1)
    lsce = (0.8 * -logp.gather(1, targets[:, None]).squeeze(1) + 0.2 * -logp.mean(-1)).mean()
    expected = 2 * lsce + F.cross_entropy(logits, targets)
    assert torch.allclose(criterion((logits, torch.randn(4, 512)), targets), expected)
    assert poster.ADAPTER.logits((logits, None)) is logits


def test_sam_is_upstreams_and_takes_two_steps(poster):
    sam = poster.ADAPTER.sam(ctx())
    assert Path(sys.modules[sam.__module__].__file__) == UPSTREAM / "data_preprocessing" / "sam.py"
    layer = nn.Linear(3, 2)
    before = layer.weight.detach().clone()
    optimizer = sam(layer.parameters(), torch.optim.Adam, rho=0.05, lr=0.1)
    layer(torch.ones(1, 3)).sum().backward()
    optimizer.first_step(zero_grad=True)
    assert not torch.equal(layer.weight, before)  # climbed to w + e(w)
    layer(torch.ones(1, 3)).sum().backward()
    optimizer.second_step(zero_grad=True)
    assert torch.allclose(layer.weight, before - 0.1, atol=1e-4)  # Adam's first step from w, not from w + e(w)


def test_basic_aug_flips_or_adds_noise_to_half_the_samples(poster):
    torch.manual_seed(0)
    batch = torch.randint(20, 236, (2000, 3, 4, 4), dtype=torch.uint8)
    out = poster.basic_aug(batch)
    assert out.dtype == torch.uint8 and out.shape == batch.shape
    same = (out == batch).flatten(1).all(1)
    flipped = (out == batch.flip(-1)).flatten(1).all(1) & ~same
    diff = (out.int() - batch.int()).abs().flatten(1).amax(1)
    noisy = ~same & ~flipped
    assert diff[noisy].max() <= 6 * 30**0.5 and diff[noisy].float().mean() > 3  # N(0, var 30), clipped
    fractions = [m.float().mean().item() for m in (same, flipped, noisy)]
    assert abs(fractions[0] - 0.5) < 0.05 and abs(fractions[1] - 0.25) < 0.04 and abs(fractions[2] - 0.25) < 0.04


def test_transforms_feed_bgr_with_rgb_statistics_and_erase(poster):
    torch.manual_seed(0)
    batch = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    evaluated = poster.ADAPTER.eval_transform(32)(batch)
    expected = normalize(batch.flip(1).float() / 255, IMAGENET_MEAN, IMAGENET_STD)
    assert torch.allclose(evaluated, expected)
    trained = poster.ADAPTER.train_transform(32)(batch)
    assert trained.shape == (16, 3, 32, 32) and trained.dtype == torch.float32
    erased = (trained == 0).all(1).flatten(1).sum(1)
    assert 0 < (erased > 0).sum() < 16, "RandomErasing(p=0.5) erases some samples, not all"
    assert erased.max() <= 0.1 * 32 * 32 + 32  # scale ≤ 0.1 of the area (rounding of the box sides)


def _fake_files(model, folder: Path, *, drop_ir: str | None = None, drop_landmark: str | None = None) -> dict:
    landmark = {k: v + 1 if v.is_floating_point() else v for k, v in model.face_landback.state_dict().items()}
    ir = {f"module.{k}": v - 1 if v.is_floating_point() else v for k, v in model.ir_back.state_dict().items()}
    ir["module.body.21.res_layer.1.weight"] = torch.zeros(512, 256, 3, 3)  # stage 4 of the full IR-50: discarded
    landmark.pop(drop_landmark, None)
    ir.pop(f"module.{drop_ir}", None)
    torch.save({"state_dict": landmark, "epoch": 10}, folder / "mobilefacenet_model_best.pth.tar")
    torch.save(ir, folder / "ir50.pth")
    names = ("mobilefacenet_model_best.pth.tar", "ir50.pth")
    return {name: folder / name for name in names}


def test_pretrained_build_loads_both_files(poster, model, tmp_path):
    weights = _fake_files(model, tmp_path)
    torch.manual_seed(1)
    loaded = poster.build(ctx(pretrained=True, weights=weights))
    for name, tensor in model.face_landback.state_dict().items():
        want = tensor + 1 if tensor.is_floating_point() else tensor
        assert torch.equal(loaded.face_landback.state_dict()[name], want), name
    for name, tensor in model.ir_back.state_dict().items():
        want = tensor - 1 if tensor.is_floating_point() else tensor
        assert torch.equal(loaded.ir_back.state_dict()[name], want), name


def test_partial_ir50_is_an_error(poster, model, tmp_path):
    weights = _fake_files(model, tmp_path, drop_ir="body.20.res_layer.4.running_var")
    with pytest.raises(FerbenchError, match="303 tensors match by name and shape, 304 expected"):
        poster.load_backbones(ctx(pretrained=True, weights=weights), model)


def test_partial_landmark_file_is_an_error(poster, model, tmp_path):
    weights = _fake_files(model, tmp_path, drop_landmark="conv1.conv.weight")
    with pytest.raises(FerbenchError, match="face_landback.*partial load"):
        poster.load_backbones(ctx(pretrained=True, weights=weights), model)


def test_amp_channels_last_training_step_runs_in_bfloat16(poster):
    """`--amp` makes inputs and weights channels-last; ir50.py's `.view(-1, 49, 1024)` used to fail on that."""
    from harness.config import Recipe
    from harness.run.loop import Trainer

    torch.manual_seed(0)
    c = ctx(input_size=224)
    model = poster.build(c).to(memory_format=torch.channels_last)
    recipe = Recipe(optimizer="adam", lr=1e-4, epochs=1, batch_size=2, amp=True)
    trainer = Trainer(model, poster.ADAPTER, poster.criterion(c), recipe, c)
    loss = trainer.step(torch.randn(2, 3, 224, 224), torch.tensor([0, 3]), epoch=1)
    assert torch.isfinite(loss)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.randn(2, 3, 224, 224).contiguous(memory_format=torch.channels_last))[0]
    assert logits.dtype == torch.bfloat16
