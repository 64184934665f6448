"""`--augment-on device`: the DAN-style pipeline applied to whole uint8 batches on the device.

The per-sample path (harness.run.prefetch) runs torchvision's ops one image at a time on the host. For
pipelines built only from a horizontal flip, RandomApply([rotation, padded crop]), ToDtype, Normalize and
RandomErasing (`adapters.augment.FlipRotateCropErase`: DAN, DDAMFN, GSDNet; CLIVP-FER's flip and rotation
with the RandomApply always taken, no padding and no erasing), this module draws the same
per-sample parameters, from the same distributions, from the run's seeded generator, and applies each op to the
whole batch at once. Each op equals torchvision's for the same parameters (tests/run/test_device_augment.py);
the random streams differ from the per-sample path, so the numbers agree in distribution, not bit for bit.
The per-sample path stays the default until a GPU measurement shows the gain (docs/benchmarks.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from adapters.augment import IMAGENET_MEAN, IMAGENET_STD, FlipRotateCropErase
from harness.errors import FerbenchError

ERASE_ATTEMPTS = 10  # torchvision RandomErasing.make_params


@dataclass
class Params:
    """Per-sample random parameters of a batch (CPU tensors)."""

    flip: Tensor  # bool [B]
    apply: Tensor  # bool [B]: RandomApply([rotation, crop]) taken
    angle: Tensor  # float64 [B], degrees
    top: Tensor  # int64 [B]: crop offset into the padded image
    left: Tensor
    erase: Tensor  # bool [B]
    box: Tensor  # int64 [B, 4]: i, j, h, w of the erased rectangle

    def part(self, sl: slice) -> Params:
        return Params(**{k: v[sl] for k, v in vars(self).items()})


def draw(form: FlipRotateCropErase, n: int, size: tuple[int, int], generator: torch.Generator) -> Params:
    """Parameters of `n` samples, distributed as torchvision's draws for the pipeline."""
    h, w = size
    u = lambda *shape: torch.rand(shape, generator=generator, dtype=torch.float64)
    flip = u(n) < 0.5  # RandomHorizontalFlip: flips when rand < p
    apply = u(n) < form.apply_p  # RandomApply: skips when rand >= p
    angle = (u(n) * 2 - 1) * form.degrees  # RandomRotation: uniform(-d, d)
    span = 2 * form.padding
    top = torch.randint(0, span + 1, (n,), generator=generator)
    left = torch.randint(0, span + 1, (n,), generator=generator)
    erase = u(n) < form.erase_p
    # RandomErasing: up to 10 attempts at an area fraction and a log-uniform aspect ratio; the first that fits wins.
    area = h * w * (form.erase_scale[0] + u(n, ERASE_ATTEMPTS) * (form.erase_scale[1] - form.erase_scale[0]))
    lo, hi = math.log(form.erase_ratio[0]), math.log(form.erase_ratio[1])
    ratio = torch.exp(lo + u(n, ERASE_ATTEMPTS) * (hi - lo))
    eh = torch.sqrt(area * ratio).round().long()  # Python's round is half-to-even, as torch's
    ew = torch.sqrt(area / ratio).round().long()
    fits = (eh < h) & (ew < w)
    first = torch.where(fits.any(1), fits.long().argmax(1), torch.zeros(n, dtype=torch.long))
    pick = lambda t: t.gather(1, first[:, None])[:, 0]
    eh, ew = pick(eh), pick(ew)
    erase &= fits.any(1)
    i = (u(n) * (h - eh + 1).clamp(min=1)).floor().long()
    j = (u(n) * (w - ew + 1).clamp(min=1)).floor().long()
    box = torch.stack([i, j, eh, ew], dim=1)
    return Params(flip=flip, apply=apply, angle=angle, top=top, left=left, erase=erase, box=box)


def hflip(images: Tensor, flip: Tensor) -> Tensor:
    return torch.where(flip.to(images.device).view(-1, 1, 1, 1), images.flip(-1), images)


def rotate(images: Tensor, angles: Tensor) -> Tensor:
    """torchvision `rotate(image, angle, NEAREST, expand=False, center=None, fill=0)`, one angle per sample."""
    from torchvision.transforms.v2.functional._geometry import _get_inverse_affine_matrix

    b, c, h, w = images.shape
    if b == 0:
        return images
    device = images.device
    theta = torch.tensor([_get_inverse_affine_matrix([0.0, 0.0], -(float(a) % 360), [0.0, 0.0], 1.0, [0.0, 0.0])
                          for a in angles], dtype=torch.float32, device=device).view(b, 2, 3)
    base = torch.empty(1, h, w, 3, dtype=torch.float32, device=device)
    base[..., 0].copy_(torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=device))
    base[..., 1].copy_(torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=device).unsqueeze_(-1))
    base[..., 2].fill_(1)
    scaled = theta.transpose(1, 2).div_(torch.tensor([0.5 * w, 0.5 * h], dtype=torch.float32, device=device))
    grid = base.view(1, h * w, 3).expand(b, -1, -1).bmm(scaled).view(b, h, w, 2)
    mask = torch.ones((b, 1, h, w), dtype=torch.float32, device=device)
    sampled = F.grid_sample(torch.cat((images.float(), mask), 1), grid, mode="nearest", padding_mode="zeros",
                            align_corners=False)
    out, mask = sampled[:, :c], sampled[:, c:].expand(-1, c, -1, -1)
    out = torch.where(mask < 0.5, torch.zeros_like(out), out)
    rotated = out.round_().to(images.dtype)
    still = (angles % 360 == 0).to(device).view(-1, 1, 1, 1)  # torchvision's fast path returns the image itself
    return torch.where(still, images, rotated)


def padded_crop(images: Tensor, padding: int, top: Tensor, left: Tensor) -> Tensor:
    """torchvision RandomCrop(size, padding) with its offsets given: zero-pad, then crop back to size."""
    b, c, h, w = images.shape
    if b == 0 or padding == 0:
        return images
    padded = F.pad(images, (padding,) * 4)
    device = images.device
    rows = (top.to(device)[:, None] + torch.arange(h, device=device)).view(b, 1, h, 1).expand(b, c, h, w + 2 * padding)
    taken = padded.gather(2, rows)
    cols = (left.to(device)[:, None] + torch.arange(w, device=device)).view(b, 1, 1, w).expand(b, c, h, w)
    return taken.gather(3, cols)


def erase(images: Tensor, erase_: Tensor, box: Tensor) -> Tensor:
    """torchvision erase(image, i, j, h, w, v=0) where `erase_`, the image unchanged elsewhere."""
    b, _, h, w = images.shape
    device = images.device
    i, j, eh, ew = (box[:, k].to(device).view(b, 1, 1, 1) for k in range(4))
    rows = torch.arange(h, device=device).view(1, 1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, 1, w)
    inside = (rows >= i) & (rows < i + eh) & (cols >= j) & (cols < j + ew) & erase_.to(device).view(b, 1, 1, 1)
    return images.masked_fill(inside, 0.0)


def apply(form: FlipRotateCropErase, images: Tensor, params: Params) -> Tensor:
    """uint8 [B, 3, H, W] → the normalised float batch, as the per-sample pipeline given the same parameters."""
    images = hflip(images, params.flip)
    chosen = params.apply.nonzero()[:, 0]
    if len(chosen):
        where = chosen.to(images.device)
        part = rotate(images[where], params.angle[chosen])
        part = padded_crop(part, form.padding, params.top[chosen], params.left[chosen])
        images = images.index_copy(0, where, part)
    x = images.float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, -1, 1, 1)
    return erase((x - mean) / std, params.erase, params.box)


class DeviceAugmentation:
    def __init__(self, form: FlipRotateCropErase):
        self.form = form

    def batches(self, loader, order: list[Tensor], generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        """Training batches: uint8 gathered and copied ahead by `loader`, augmented here on its device. Every
        parameter of the epoch is drawn first, so the generator is never shared with the gathering thread."""
        size = tuple(loader.split.images.shape[-2:])
        params = draw(self.form, sum(len(idx) for idx in order), size, generator)
        start = 0
        for idx, (images, labels) in zip(order, loader.raw(order)):
            yield apply(self.form, images, params.part(slice(start, start + len(idx)))), labels
            start += len(idx)


def check_augment_on(augment_on: str) -> None:
    if augment_on not in ("host", "device"):
        raise FerbenchError(f"--augment-on: expected host or device, got '{augment_on}'", exit_code=2)


def device_augmentation(train_transform, augment_on: str, model: str = "this model") -> DeviceAugmentation | None:
    """None for the per-sample host path; else the device form of the adapter's training augmentation."""
    check_augment_on(augment_on)
    if augment_on == "host":
        return None
    form = getattr(train_transform, "device_form", None)
    if form is None:
        raise FerbenchError(
            f"--augment-on device: {model}'s training augmentation has no exact batched form (only pipelines of "
            "flips, padded crops, rotation, erasing and normalisation have one: DAN, DDAMFN, GSDNet, CLIVP-FER); "
            "use --augment-on host", exit_code=2)
    return DeviceAugmentation(form)


def refuse_models_without_device_form(cfg, models) -> None:
    """`--augment-on device` is refused before any run starts for a model that cannot take it."""
    from adapters import load_adapter

    for name in models:
        model = cfg.model(name)
        device_augmentation(load_adapter(model.adapter, model.variant).train_transform(model.input_size), "device", name)
