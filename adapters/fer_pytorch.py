"""Shared parts of the WuJie1010/Facial-Expression-Recognition.Pytorch baselines (`vgg19`, `resnet18`).

Not a model itself: `vgg19.py` and `resnet18.py` each build one upstream class and take everything else from
here. What `mainpro_CK+.py` does around the model:

- Data: 48x48 grey faces replicated to 3 channels (`CK.py::__getitem__`), [0, 1] with no normalisation.
  ferbench's images are RGB: they are turned grey the way `PIL.Image.convert('L')` does (ITU-R 601-2 luma,
  rounded; an already grey image is unchanged) and replicated, in training and evaluation.
- Train: RandomCrop 44 (no padding) + RandomHorizontalFlip, per sample. Test: TenCrop 44 with the logits of
  the ten crops averaged (`test()`: `outputs.view(bs, ncrops, -1).mean(1)`), done in `eval_forward` so the
  loop still receives one row of scores per image.
- The loader keeps its last partial batch (DataLoader default), so `drop_last` is off.
- Never imported: `utils.py` (reads the terminal size with `stty` at import, so it fails without a TTY; its
  `clip_gradient` is the recipe's `grad_clamp` and `set_lr` its `exponential` schedule), `CK.py` (Python 2
  `xrange`, an .h5 file), the training scripts (argv at import). The model files `models/vgg.py` and
  `models/resnet.py` are loaded by file path under private names: `models` is a top-level name POSTER,
  POSTER++, DFER-CLIP and CEPrompt use too.
- Both classes hard-code 7 outputs (`nn.Linear(512, 7)`): for another class count the final Linear is replaced
  by a fresh `nn.Linear(512, C)` after construction (7 classes build exactly as upstream).
"""

from __future__ import annotations

import types

import torch
from torch import Tensor, nn

from adapters.augment import per_sample, to_float
from adapters.contract import Adapter, BuildContext

UPSTREAM_CLASSES = 7
CACHE_SIZE, CUT_SIZE = 48, 44  # mainpro_CK+.py: 48x48 images, cut_size = 44
NCROPS = 10


def model_file(ctx: BuildContext, relative: str) -> types.ModuleType:
    from adapters.shims import load_module_from, upstream_file

    return load_module_from(upstream_file(ctx, relative), "_ferbench_fer_pytorch_" + relative.replace("/", "_")[:-3])


def fit_classes(model: nn.Module, attribute: str, num_classes: int) -> nn.Module:
    """Replace the hard-coded 7-way final Linear for another class count (upstream has no argument for it)."""
    if num_classes != UPSTREAM_CLASSES:
        old = getattr(model, attribute)
        setattr(model, attribute, nn.Linear(old.in_features, num_classes))
    return model


def grey(batch: Tensor) -> Tensor:
    """uint8 RGB [B,3,H,W] → the same grey value in all 3 channels, as PIL's convert('L'):
    L = (19595 R + 38470 G + 7471 B + 2^15) >> 16."""
    rgb = batch.to(torch.int32)
    luma = (19595 * rgb[:, 0] + 38470 * rgb[:, 1] + 7471 * rgb[:, 2] + 32768) >> 16
    return luma.to(torch.uint8).unsqueeze(1).expand_as(batch).contiguous()


def cut_size(size: int) -> int:
    return round(CUT_SIZE * size / CACHE_SIZE)


def train_transform(size: int):
    """transform_train: RandomCrop(44), RandomHorizontalFlip, ToTensor; per sample."""
    from torchvision.transforms import v2

    pipeline = v2.Compose([v2.RandomCrop(cut_size(size)), v2.RandomHorizontalFlip()])
    return lambda batch: to_float(per_sample(grey(batch), pipeline))


def eval_transform(size: int):
    """transform_test's ToTensor; the ten crops are taken in `eval_forward`."""
    return lambda batch: to_float(grey(batch))


def ten_crop_forward(model: nn.Module, images: Tensor) -> Tensor:
    """transform_test TenCrop(44) (four corners, centre, and the same of the mirrored image), one forward
    over all crops, logits averaged per image."""
    from torchvision.transforms.v2 import functional as TF

    crops = torch.stack(TF.ten_crop(images, [cut_size(images.shape[-1])] * 2), dim=1)  # B, 10, 3, h, w
    b = images.shape[0]
    outputs = model(crops.flatten(0, 1))
    return outputs.view(b, NCROPS, -1).mean(1)


def adapter(build) -> Adapter:
    return Adapter(
        build=build,
        train_transform=train_transform,
        eval_transform=eval_transform,
        eval_forward=ten_crop_forward,
        drop_last=False,
    )
