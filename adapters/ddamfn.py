"""DDAMFN (Zhang et al. 2023), SainingZhang/DDAMFN: `networks/DDAM.py::DDAMNet(num_class, num_head=2, pretrained=False)`.

Outputs `(logits [B,C], feature map [B,512,7,7], heads: H × [B,512,7,7])`; the prediction is argmax of the logits.
Input is 112 only (CoordAtt's 7×7 kernels need the 7×7 map). Loss as in the paper's `rafdb_train.py`:
CE + 0.1·AttentionLoss(heads). Workarounds:

- `rafdb_train.py` is a training script that imports matplotlib (not a ferbench dependency) and sklearn, so only
  its `eps` and `AttentionLoss` definitions are compiled, from the file's own source via `ast`; nothing else of
  the script runs.
- `DDAMNet(pretrained=True)` `torch.load`s `./pretrained/MFN_msceleb.pth`, a whole pickled MixedFeatureNet; we
  build with `pretrained=False` and load the checked file afterwards through the weights-only unpickler, which
  admits only the module classes benchmark.toml lists as its `globals` (`networks.MixedFeatureNet` importable,
  which the upstream path provides). The constructor keeps the file's
  first 9 children as `model.features`; their state goes there strictly. A plain state dict of a
  MixedFeatureNet (the same file converted once) is accepted too.
"""

from __future__ import annotations

import sys
import types

import torch.nn.functional as F
from torch import nn

from adapters.augment import flip_rotate_crop_erase, imagenet_eval
from adapters.contract import Adapter, BuildContext
from adapters.shims import definitions

WEIGHTS = "MFN_msceleb.pth"
NUM_HEAD = 2            # rafdb_train.py --num_head default
ATTENTION_WEIGHT = 0.1  # rafdb_train.py: criterion_cls(out, targets) + 0.1 * criterion_at(heads)
INPUT_SIZE = 112


def upstream_losses(ctx: BuildContext) -> types.ModuleType:
    import torch

    from adapters.shims import upstream_file

    return definitions(
        upstream_file(ctx, "rafdb_train.py"), ("eps", "AttentionLoss"), "_ferbench_ddamfn_rafdb_train",
        sys=sys, torch=torch, nn=nn, F=F,
    )


def backbone_state(loaded) -> dict:
    """`model.features` state from the file: the first 9 children of the pickled MixedFeatureNet
    (`nn.Sequential(*list(net.children())[:-4])` in DDAMNet.__init__), renamed to their Sequential index."""
    from harness.errors import FerbenchError

    if isinstance(loaded, nn.Module):
        names, state = [n for n, _ in loaded.named_children()], loaded.state_dict()
    elif isinstance(loaded, dict):
        from networks.MixedFeatureNet import MixedFeatureNet

        names, state = [n for n, _ in MixedFeatureNet().named_children()], loaded
    else:
        raise FerbenchError(f"{WEIGHTS}: expected a pickled MixedFeatureNet or its state dict, got {type(loaded).__name__}")
    index = {name: str(i) for i, name in enumerate(names[:-4])}
    out = {}
    for key, value in state.items():
        child, _, rest = key.partition(".")
        if child in index:
            out[f"{index[child]}.{rest}"] = value
    return out


def build(ctx: BuildContext) -> nn.Module:
    from harness.errors import FerbenchError

    if ctx.input_size != INPUT_SIZE:
        raise FerbenchError(f"DDAMFN runs at input_size {INPUT_SIZE} only (CoordAtt's 7x7 kernels), not {ctx.input_size}")
    from networks.DDAM import DDAMNet

    model = DDAMNet(num_class=ctx.num_classes, num_head=NUM_HEAD, pretrained=False)
    if ctx.pretrained:
        from adapters.shims import load_weights
        from harness.weights import load_into

        loaded = load_weights(ctx, WEIGHTS)  # a whole pickled nn.Module: only its declared classes
        load_into(model.features, backbone_state(loaded), what=f"{WEIGHTS} (MS-Celeb MixedFeatureNet)")
    return model


class DDAMFNLoss(nn.Module):
    def __init__(self, attention: nn.Module):
        super().__init__()
        self.attention = attention

    def forward(self, outputs, targets):
        logits, _, heads = outputs
        return F.cross_entropy(logits, targets) + ATTENTION_WEIGHT * self.attention(heads)


def criterion(ctx: BuildContext) -> DDAMFNLoss:
    return DDAMFNLoss(upstream_losses(ctx).AttentionLoss())


def train_transform(size: int):
    """rafdb_train.py after Resize 112: flip, RandomApply([Rotation 5, RandomCrop(112, padding=8)], p=0.2),
    ToTensor, ImageNet Normalize, RandomErasing(scale=(0.02, 0.25)); per sample."""
    return flip_rotate_crop_erase(size, 5, round(8 * size / INPUT_SIZE))


ADAPTER = Adapter(
    build=build,
    train_transform=train_transform,
    eval_transform=imagenet_eval,
    criterion=criterion,
    logits=lambda outputs: outputs[0],
    drop_last=False,  # the upstream train loader keeps the last partial batch (the loop never yields one of 1)
)
