"""POSTER++ adapter: the 7/8-class file choice (7-class file ignores num_classes), the thop stand-in, the
POSTER-style IR-50 key renaming onto body1..3 with its 304-tensor check, and the RAF-DB augmentation (RGB)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from adapters.augment import IMAGENET_MEAN, IMAGENET_STD, normalize
from adapters.contract import BuildContext, model_module_file
from harness.errors import FerbenchError
from tests.adapters.upstream import fetched

UPSTREAM, pytestmark = fetched("posterpp")
STAGES = (3, 4, 14)


def ctx(**kw) -> BuildContext:
    return BuildContext(**{"num_classes": 7, "input_size": 112, "pretrained": False, "upstream_dir": UPSTREAM, **kw})


@pytest.fixture(scope="module")
def pp():
    torch.set_num_threads(1)
    from adapters import posterpp

    return posterpp


@pytest.fixture(scope="module")
def model(pp):
    load, load_state_dict = torch.load, nn.Module.load_state_dict
    torch.manual_seed(0)
    built = pp.build(ctx())
    assert torch.load is load and nn.Module.load_state_dict is load_state_dict, "construction patches must be undone"
    return built


def test_seven_classes_use_the_7cls_file(model):
    assert Path(model_module_file(model)) == UPSTREAM / "models" / "PosterV2_7cls.py"
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 112, 112)).shape == (2, 7)
    try:
        import thop  # noqa: F401
    except ImportError:
        assert "thop" not in sys.modules, "the thop stand-in lives only while the upstream file is imported"


def test_eight_classes_use_the_8cls_file(pp):
    eight = pp.build(ctx(num_classes=8))
    assert Path(model_module_file(eight)) == UPSTREAM / "models" / "PosterV2_8cls.py"
    assert eight.VIT.head.linear.out_features == 8


@pytest.mark.parametrize("classes", [6, 11])
def test_other_class_counts_are_refused(pp, classes):
    with pytest.raises(FerbenchError, match="7 classes.*8 classes.*has %d" % classes):
        pp.build(ctx(num_classes=classes))


def test_ir50_keys_move_to_their_stage(pp):
    assert pp.ir50_key("body.0.res_layer.1.weight") == "body1.0.res_layer.1.weight"
    assert pp.ir50_key("body.2.shortcut_layer.0.weight") == "body1.2.shortcut_layer.0.weight"
    assert pp.ir50_key("body.3.res_layer.1.weight") == "body2.0.res_layer.1.weight"
    assert pp.ir50_key("body.6.res_layer.1.weight") == "body2.3.res_layer.1.weight"
    assert pp.ir50_key("body.7.res_layer.1.weight") == "body3.0.res_layer.1.weight"
    assert pp.ir50_key("body.20.res_layer.4.bias") == "body3.13.res_layer.4.bias"
    assert pp.ir50_key("body.21.res_layer.1.weight") == "body.21.res_layer.1.weight"  # stage 4: no such stage
    assert pp.ir50_key("input_layer.1.weight") == "input_layer.1.weight"
    assert pp.ir50_key("body2.0.res_layer.1.weight") == "body2.0.res_layer.1.weight"  # already POSTER++ names


def _poster_style(key: str) -> str:
    """POSTER++'s `body{s}.{u}` → the single `body.{N}` of POSTER's IR-50."""
    head, _, rest = key.partition(".")
    if not head.startswith("body"):
        return key
    unit, _, tail = rest.partition(".")
    return f"body.{sum(STAGES[: int(head[4:]) - 1]) + int(unit)}.{tail}"


def _files(model, folder: Path, rename=_poster_style, drop: str | None = None) -> dict:
    landmark = model.face_landback.state_dict()
    ir = {rename(k): v + 1 if v.is_floating_point() else v for k, v in model.ir_back.state_dict().items() if k != drop}
    torch.save({"state_dict": landmark}, folder / "mobilefacenet_model_best.pth.tar")
    torch.save(ir, folder / "ir50.pth")
    return {name: folder / name for name in ("mobilefacenet_model_best.pth.tar", "ir50.pth")}


def _shifted(model) -> dict:
    return {k: v + 1 if v.is_floating_point() else v for k, v in model.ir_back.state_dict().items()}


def test_pretrained_build_renames_a_poster_style_ir50(pp, model, tmp_path):
    assert len(model.ir_back.state_dict()) == 304
    weights = _files(model, tmp_path)
    torch.manual_seed(1)
    loaded = pp.build(ctx(pretrained=True, weights=weights))
    want = _shifted(model)
    assert all(torch.equal(v, want[k]) for k, v in loaded.ir_back.state_dict().items())
    landmark = model.face_landback.state_dict()
    assert all(torch.equal(v, landmark[k]) for k, v in loaded.face_landback.state_dict().items())


def test_ir50_with_posterpp_names_loads_too(pp, model, tmp_path):
    weights = _files(model, tmp_path, rename=lambda key: key)
    want = _shifted(model)
    pp.load_backbones(ctx(pretrained=True, weights=weights), model, ir_key=pp.ir50_key)
    assert all(torch.equal(v, want[k]) for k, v in model.ir_back.state_dict().items())


def test_ir50_without_renaming_would_load_19_tensors(pp, model, tmp_path):
    """Upstream's own lenient load of a POSTER-style file takes only the stem and the output layer: an error."""
    weights = _files(model, tmp_path)
    with pytest.raises(FerbenchError, match="19 tensors match by name and shape, 304 expected"):
        pp.load_backbones(ctx(pretrained=True, weights=weights), model)


def test_incomplete_ir50_is_an_error(pp, model, tmp_path):
    weights = _files(model, tmp_path, drop="body3.13.res_layer.4.weight")
    with pytest.raises(FerbenchError, match="303 tensors match by name and shape, 304 expected"):
        pp.load_backbones(ctx(pretrained=True, weights=weights), model, ir_key=pp.ir50_key)


def test_transforms_are_rgb_with_flip_and_erasing(pp):
    torch.manual_seed(0)
    batch = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    expected = normalize(batch.float() / 255, IMAGENET_MEAN, IMAGENET_STD)
    assert torch.allclose(pp.ADAPTER.eval_transform(32)(batch), expected)
    trained = pp.ADAPTER.train_transform(32)(batch)
    erased = (trained == 0).all(1).flatten(1).any(1)
    assert 0 < erased.sum() < 16
    intact = ~erased
    same = torch.isclose(trained, expected).flatten(1).all(1)
    mirrored = torch.isclose(trained, expected.flip(-1)).flatten(1).all(1)
    assert (same | mirrored)[intact].all() and same[intact].any() and mirrored[intact].any()


def test_sam_and_loss_are_upstreams(pp):
    sam = pp.ADAPTER.sam(ctx())
    assert Path(sys.modules[sam.__module__].__file__) == UPSTREAM / "data_preprocessing" / "sam.py"
    logits, targets = torch.randn(4, 7), torch.tensor([0, 1, 2, 3])
    criterion = pp.ADAPTER.criterion(ctx())
    assert torch.allclose(criterion(logits, targets), torch.nn.functional.cross_entropy(logits, targets))
    assert pp.ADAPTER.logits(logits) is logits
