"""`--augment-on device`: each batched op equals torchvision's for the same parameters, and the whole pipeline
agrees in distribution with the per-sample one."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from adapters.augment import IMAGENET_MEAN, IMAGENET_STD, flip_rotate_crop_erase
from harness.errors import FerbenchError
from harness.run import device_augment as da

SIZE = 24


@pytest.fixture(scope="module")
def images():
    return torch.randint(0, 256, (6, 3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_rotation_equals_torchvisions_per_sample(images):
    angles = torch.tensor([-20.0, -7.3, 0.0, 3.9, 11.25, 19.99], dtype=torch.float64)
    expected = torch.stack([TF.rotate(image, float(a)) for image, a in zip(images, angles)])
    assert torch.equal(da.rotate(images, angles), expected)


def test_padded_crop_equals_pad_then_crop(images):
    top, left = torch.tensor([0, 1, 4, 8, 3, 2]), torch.tensor([8, 0, 4, 1, 7, 5])
    expected = torch.stack([TF.crop(TF.pad(image, [4]), int(t), int(l), SIZE, SIZE)
                            for image, t, l in zip(images, top, left)])
    assert torch.equal(da.padded_crop(images, 4, top, left), expected)


def test_flip_and_erase_equal_torchvisions(images):
    flip = torch.tensor([True, False, True, False, False, True])
    expected = torch.stack([TF.horizontal_flip(image) if f else image for image, f in zip(images, flip)])
    assert torch.equal(da.hflip(images, flip), expected)
    x = images.float()
    box = torch.tensor([[0, 0, 5, 7], [3, 4, 10, 2], [10, 10, 14, 14], [1, 2, 3, 4], [0, 0, 1, 1], [5, 5, 5, 5]])
    erase = torch.tensor([True, True, True, False, True, False])
    expected = torch.stack([TF.erase(image, *map(int, b), v=torch.tensor(0.0)) if e else image
                            for image, b, e in zip(x, box, erase)])
    assert torch.equal(da.erase(x, erase, box), expected)


def test_the_whole_pipeline_equals_the_per_sample_ops_for_the_same_parameters(images):
    form = flip_rotate_crop_erase(SIZE, 20, 4).device_form
    params = da.draw(form, len(images), (SIZE, SIZE), torch.Generator().manual_seed(3))
    params.apply[:3] = True
    expected = []
    for k, image in enumerate(images):
        if params.flip[k]:
            image = TF.horizontal_flip(image)
        if params.apply[k]:
            image = TF.crop(TF.pad(TF.rotate(image, float(params.angle[k])), [4]), int(params.top[k]), int(params.left[k]), SIZE, SIZE)
        x = TF.normalize(TF.to_dtype(image, torch.float32, scale=True), IMAGENET_MEAN, IMAGENET_STD)
        expected.append(TF.erase(x, *map(int, params.box[k]), v=torch.tensor(0.0)) if params.erase[k] else x)
    assert torch.allclose(da.apply(form, images, params), torch.stack(expected), atol=1e-6)


def statistics(batch: torch.Tensor) -> torch.Tensor:
    """Per draw: flipped (left half brighter), erased (some exact zero after normalising), mean value."""
    zero = torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]).view(1, 3, 1, 1)
    half = batch.shape[-1] // 2
    flipped = (batch[..., :half].mean((1, 2, 3)) > batch[..., half:].mean((1, 2, 3))).float()
    erased = (batch == 0).all(1).flatten(1).any(1).float()
    black = torch.isclose(batch, zero.expand_as(batch)).all(1).flatten(1).float().mean(1)  # rotation/crop fill
    return torch.stack([flipped, erased, black], 1)


def test_device_and_per_sample_paths_agree_in_distribution():
    """A left-to-right ramp through both paths 2000 times: the rates of flips, of erasing and of the fill that
    rotation and cropping bring in agree within sampling error."""
    ramp = torch.linspace(20, 235, SIZE).round().to(torch.uint8).view(1, 1, 1, SIZE).expand(2000, 3, SIZE, SIZE)
    transform = flip_rotate_crop_erase(SIZE, 20, 4)
    torch.manual_seed(0)
    host = statistics(transform(ramp[:2000]))
    form = transform.device_form
    device = statistics(da.apply(form, ramp.contiguous(), da.draw(form, 2000, (SIZE, SIZE), torch.Generator().manual_seed(1))))
    se = (host.var(0) / 2000 + device.var(0) / 2000).sqrt()
    assert ((host.mean(0) - device.mean(0)).abs() < 4 * se + 1e-4).all(), (host.mean(0), device.mean(0))
    assert 0.45 < host[:, 0].mean() < 0.55 and 0.45 < host[:, 1].mean() < 0.55


def test_a_pipeline_without_a_device_form_is_refused():
    with pytest.raises(FerbenchError, match="no exact batched form"):
        da.device_augmentation(lambda batch: batch, "device")
    assert da.device_augmentation(lambda batch: batch, "host") is None


def test_clivpfer_flip_and_rotation_are_the_always_applied_special_case(images):
    """flip, RandomRotation(30), normalise: apply_p=1, no padding, no erasing."""
    from adapters.augment import FlipRotateCropErase

    form = FlipRotateCropErase(degrees=30, padding=0, apply_p=1.0, erase_p=0.0)
    params = da.draw(form, len(images), (SIZE, SIZE), torch.Generator().manual_seed(4))
    assert params.apply.all() and not params.erase.any()
    expected = torch.stack([
        TF.normalize(TF.to_dtype(TF.rotate(TF.horizontal_flip(image) if f else image, float(a)), torch.float32, scale=True),
                     IMAGENET_MEAN, IMAGENET_STD)
        for image, f, a in zip(images, params.flip, params.angle)])
    assert torch.allclose(da.apply(form, images, params), expected, atol=1e-6)


def test_device_augmented_runs_are_planned_apart_from_host_ones(workspace):
    """Other random draws are other runs: a complete host run never stands in for a device-augmented one."""
    import os
    from pathlib import Path

    from harness.config import load
    from harness.paths import Paths
    from harness.run.plan import Request, grid

    paths = Paths(data_root=Path(os.environ["FERBENCH_DATA_ROOT"]), results=workspace / "results",
                  vendor=workspace / "vendor", weights=workspace / "weights")
    cfg = load(workspace / "benchmark.toml")
    host, device = (grid(cfg, paths, Request(repeats=1, augment_on=on), ["baseline"], ["synthetic"])[0][0]
                    for on in ("host", "device"))
    assert (host.spec.augment_on, device.spec.augment_on) == ("host", "device")
    assert host.spec.seed == device.spec.seed and host.spec.run_id != device.spec.run_id


def test_a_model_without_a_device_form_is_refused_before_any_run_starts(workspace, capsys):
    from tests.conftest import cli

    assert cli("run", "--model", "baseline", "--dataset", "synthetic", "--augment-on", "device") == 2
    assert "baseline's training augmentation has no exact batched form" in capsys.readouterr().err
    assert not (workspace / "results" / "synthetic").exists()
