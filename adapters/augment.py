"""Batched augmentations on uint8 tensors, shared by adapters.

Images arrive from the cache as uint8 [B, 3, H, W] at the model's input size, so augmenting
whole batches on tensors avoids re-decoding and per-sample Python work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_float(batch: Tensor) -> Tensor:
    return batch.float().div_(255.0)


def normalize(batch: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    m = torch.tensor(mean, dtype=batch.dtype, device=batch.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=batch.dtype, device=batch.device).view(1, -1, 1, 1)
    return (batch - m) / s


def random_hflip(batch: Tensor, p: float = 0.5) -> Tensor:
    flip = torch.rand(batch.shape[0], device=batch.device) < p
    return torch.where(flip.view(-1, 1, 1, 1), batch.flip(-1), batch)


def random_crop(batch: Tensor, padding: int) -> Tensor:
    """Zero-pad by `padding` and crop back to the original size at a random offset per sample."""
    if padding <= 0:
        return batch
    b, _, h, w = batch.shape
    padded = torch.nn.functional.pad(batch, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (b,)).tolist()
    dx = torch.randint(0, 2 * padding + 1, (b,)).tolist()
    return torch.stack([padded[i, :, y : y + h, x : x + w] for i, (y, x) in enumerate(zip(dy, dx))])


def per_sample(batch: Tensor, transform) -> Tensor:
    """Apply a per-image transform (torchvision v2 ops, or a PIL pipeline through `pil_transform`) to each
    sample, so random parameters differ per image as in upstream DataLoaders."""
    return torch.stack([transform(image) for image in batch])


def pil_transform(transform):
    """Wrap a PIL → PIL transform (timm / upstream RandAugment) for uint8 [3, H, W] tensors."""
    from torchvision.transforms.v2 import functional as TF

    return lambda image: TF.pil_to_tensor(transform(TF.to_pil_image(image.cpu()))).to(image.device)


def imagenet_eval(size: int):
    """The test input of most upstreams: Resize (done by the cache), ToTensor, ImageNet Normalize."""
    return lambda batch: normalize(to_float(batch), IMAGENET_MEAN, IMAGENET_STD)


@dataclass(frozen=True)
class FlipRotateCropErase:
    """The parameters of `flip_rotate_crop_erase` (and of pipelines that are special cases of it: CLIVP-FER's flip
    and rotation is apply_p=1, padding=0, erase_p=0), as plain data: the batched device implementation
    (harness/run/device_augment.py, `--augment-on device`) reads them from the transform's `device_form`."""

    degrees: float
    padding: int
    apply_p: float = 0.2
    erase_p: float = 0.5
    erase_scale: tuple[float, float] = (0.02, 0.25)
    erase_ratio: tuple[float, float] = (0.3, 3.3)


def flip_rotate_crop_erase(size: int, degrees: float, padding: int):
    """DAN's training augmentation, reused by DDAMFN and GSDNet after their Resize: flip,
    RandomApply([RandomRotation, RandomCrop(size, padding)], p=0.2), ToTensor, ImageNet Normalize,
    RandomErasing(scale=(0.02, 0.25)); per sample, as a DataLoader applies it."""
    from torchvision.transforms import v2

    form = FlipRotateCropErase(degrees=degrees, padding=padding)
    pipeline = v2.Compose([
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.RandomRotation(degrees), v2.RandomCrop(size, padding=padding)], p=form.apply_p),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        v2.RandomErasing(p=form.erase_p, scale=form.erase_scale, ratio=form.erase_ratio),
    ])

    def transform(batch: Tensor) -> Tensor:
        return per_sample(batch, pipeline)

    transform.device_form = form
    return transform
