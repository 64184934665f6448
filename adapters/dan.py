"""DAN (Wen et al. 2023), yaoing/DAN: `networks/dan.py::DAN(num_class, num_head=4, pretrained=False)`.

Outputs `(logits [B,C], feature map [B,512,7,7], heads [B,H,512])`; the prediction is argmax of the logits.
Loss as in `rafdb.py::run_training`: CE + 1·AffinityLoss(feature map) + 1·PartitionLoss(heads), with the
loss classes taken from `rafdb.py` itself. Workarounds:

- `rafdb.py` is a training script whose import replaces `warnings.warn` process-wide (and needs pandas,
  tqdm, sklearn), so only its `eps`, `AffinityLoss` and `PartitionLoss` definitions are compiled, from the
  file's own source via `ast`; nothing else of the script runs (no argv parsing, no training).
- AffinityLoss owns learnable centres (they join the optimizer: the criterion is an `nn.Module`) and fixes its
  `device` at construction, while the loop builds it on CPU and then `.to(device)`s it: the wrapper points
  `device` at wherever the centres are before each call.
- Upstream builds AffinityLoss with its default 8 centres for 7 RAF-DB classes; kept (at least `num_classes`).
- `DAN(pretrained=True)` downloads ImageNet weights and reads `./models/resnet18_msceleb.pth`; we build with
  `pretrained=False` and load the sha256-checked file afterwards the way the constructor does (strict into a
  torchvision ResNet-18, whose first 8 children become `model.features`).
"""

from __future__ import annotations

import sys
import types
import warnings

import torch.nn.functional as F
from torch import nn

from adapters.augment import flip_rotate_crop_erase, imagenet_eval
from adapters.contract import Adapter, BuildContext
from adapters.shims import definitions

WEIGHTS = "resnet18_msceleb.pth"
NUM_HEAD = 4          # rafdb.py --num_head default
AFFINITY_CENTRES = 8  # AffinityLoss(device) default, as rafdb.py builds it for 7 classes


def upstream_losses(ctx: BuildContext) -> types.ModuleType:
    import torch

    from adapters.shims import upstream_file

    return definitions(
        upstream_file(ctx, "rafdb.py"), ("eps", "AffinityLoss", "PartitionLoss"), "_ferbench_dan_rafdb",
        sys=sys, torch=torch, nn=nn,
    )


def build(ctx: BuildContext) -> nn.Module:
    from networks.dan import DAN

    with warnings.catch_warnings():  # torchvision's deprecation notice for DAN's positional `resnet18(False)`
        warnings.simplefilter("ignore", UserWarning)
        model = DAN(num_class=ctx.num_classes, num_head=NUM_HEAD, pretrained=False)
    if ctx.pretrained:
        from torchvision.models import resnet18

        from adapters.shims import load_weights
        from harness.weights import load_into

        state = load_weights(ctx, WEIGHTS)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        resnet = resnet18()
        load_into(resnet, state, what=f"{WEIGHTS} (MS-Celeb ResNet-18)")  # strict, as DAN.__init__
        load_into(model.features, nn.Sequential(*list(resnet.children())[:-2]).state_dict(), what="DAN.features")
    return model


class DANLoss(nn.Module):
    """rafdb.py: `criterion_cls(out, targets) + 1 * criterion_af(feat, targets) + 1 * criterion_pt(heads)`."""

    def __init__(self, affinity: nn.Module, partition: nn.Module):
        super().__init__()
        self.affinity, self.partition = affinity, partition

    def forward(self, outputs, targets):
        logits, feat, heads = outputs
        self.affinity.device = self.affinity.centers.device  # upstream fixed it at construction (CPU here)
        return F.cross_entropy(logits, targets) + 1 * self.affinity(feat, targets) + 1 * self.partition(heads)


def criterion(ctx: BuildContext) -> DANLoss:
    losses = upstream_losses(ctx)
    affinity = losses.AffinityLoss("cpu", num_class=max(AFFINITY_CENTRES, ctx.num_classes), feat_dim=512)
    return DANLoss(affinity, losses.PartitionLoss())


def train_transform(size: int):
    """rafdb.py after Resize 224: flip, RandomApply([Rotation 20, RandomCrop(224, padding=32)], p=0.2),
    ToTensor, ImageNet Normalize, RandomErasing(scale=(0.02, 0.25)); per sample, as a DataLoader applies it."""
    return flip_rotate_crop_erase(size, 20, round(32 * size / 224))


ADAPTER = Adapter(
    build=build,
    train_transform=train_transform,
    eval_transform=imagenet_eval,
    criterion=criterion,
    logits=lambda outputs: outputs[0],
    drop_last=False,  # the upstream train loader keeps the last partial batch (the loop never yields one of 1)
)
