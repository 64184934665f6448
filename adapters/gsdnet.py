"""GSDNet, Emy-cv/GSDNet: `GSD-Net/gsdnet.py::GSDNet(num_class)` → `model/resnet1.py::ResNet(Bottleneck, [3,4,6,3])`,
a caffe-style ResNet-50 with a channel-attention side head (128-d feature + logits) after each stage.

Outputs `(out_list: 4 × [B,C], feature_list: 4 × [B,128], pred_teacher, feat_teacher)`; the prediction is
argmax of `out_list[3]` (`model/utils.py::evaluate`). The forward sums the heads into the teacher in place, so
`out_list[0]`/`feature_list[0]` hold the sums; kept, as upstream trains on it. Loss as in
`model/utils.py::train_one_epoch` with `main(a=0.01, b=0.3)` from `train.py`: CE(head 4) + for head pairs
(3→2, 2→1, 1→0) a·‖f_student − f_teacher.detach()‖₂ (one norm over the whole batch tensor) + b·soft CE at T 3.
`train_one_epoch` itself is never called (it `sys.exit(1)`s on a non-finite loss; the loop raises instead).
Workarounds:

- The import root is `GSD-Net/` (`gsdnet.py` does `from model.resnet1 import *`), one level below the
  upstream directory the worker puts on `sys.path`, so build puts it there too.
- `GSDNet.__init__` reads `/data/vgg_msceleb_resnet50_ft_weight.pkl` (absolute path) and loads it with
  `strict=False`; we construct with a module-local `open` that hands it an empty pickled dict (no filesystem
  access, no RNG), then load the sha256-checked file the same way, requiring all 265 ResNet-50 trunk weights
  (318 with BatchNorm counters, which are skipped) to match by name and shape.
- `model/utils.py` imports matplotlib and tqdm at the top, so its soft-target `CrossEntropy` is compiled from
  the file's own source via `ast`; nothing else of the file runs.
"""

from __future__ import annotations

import io
import pickle
import sys
import types
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from adapters.augment import flip_rotate_crop_erase, imagenet_eval
from adapters.contract import Adapter, BuildContext
from adapters.shims import definitions

WEIGHTS = "vgg_msceleb_resnet50_ft_weight.pkl"
# The file's ResNet-50 trunk matches GSDNet.resnet in 265 weight tensors (318 counting the 53 BatchNorm
# `num_batches_tracked` counters). The counters are dropped before loading: a Caffe conversion may lack them,
# they never affect the forward pass (momentum 0.1), and 0-d numpy counters do not survive harness `_tensors`.
MATCHED_TENSORS = 265
FEATURE_WEIGHT = 0.01   # train.py: main(0.01, 0.3) → a
SOFT_CE_WEIGHT = 0.3    # → b
IMPORT_ROOT = "GSD-Net"


@contextmanager
def _no_weight_file(module: types.ModuleType):
    """`open(...)` inside the gsdnet module yields an empty pickled dict: `load_state_dict({}, strict=False)`."""
    module.open = lambda *args, **kwargs: io.BytesIO(pickle.dumps({}))
    try:
        yield
    finally:
        del module.open


def build(ctx: BuildContext) -> nn.Module:
    from adapters.shims import upstream_file

    root = str(upstream_file(ctx, f"{IMPORT_ROOT}/gsdnet.py").parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    import gsdnet

    with _no_weight_file(gsdnet):
        model = gsdnet.GSDNet(num_class=ctx.num_classes)
    if ctx.pretrained:
        from adapters.shims import load_weights
        from harness.weights import load_into

        state = load_weights(ctx, WEIGHTS)  # a Python-2 latin1 pickle of numpy arrays (numpy globals only)
        if isinstance(state, dict):
            state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
        load_into(model.resnet, state, what=f"{WEIGHTS} (VGGFace2 ResNet-50)", expected=MATCHED_TENSORS)
    return model


def soft_cross_entropy(ctx: BuildContext):
    from adapters.shims import upstream_file

    return definitions(
        upstream_file(ctx, f"{IMPORT_ROOT}/model/utils.py"), ("CrossEntropy",), "_ferbench_gsdnet_model_utils", F=F,
    ).CrossEntropy


def criterion(ctx: BuildContext):
    soft_ce = soft_cross_entropy(ctx)

    def loss(outputs, targets):
        # Transcribed from GSD-Net/model/utils.py lines 134-137 (train_one_epoch), with a, b from train.py
        # line 159; upstream writes this sum inline, so only `CrossEntropy` can be called.
        pred, feat, _, _ = outputs
        total = F.cross_entropy(pred[3], targets)
        for index in range(0, len(feat) - 1):
            student, teacher = len(feat) - 1 - index - 1, len(feat) - 1 - index
            total = total + torch.dist(feat[student], feat[teacher].detach()) * FEATURE_WEIGHT
            total = total + soft_ce(pred[student], pred[teacher].detach()) * SOFT_CE_WEIGHT
        return total

    return loss


def train_transform(size: int):
    """train.py after Resize 224: flip, RandomApply([Rotation 20, RandomCrop(224, padding=32)], p=0.2),
    ToTensor, ImageNet Normalize, RandomErasing(scale=(0.02, 0.25)); per sample."""
    return flip_rotate_crop_erase(size, 20, round(32 * size / 224))


ADAPTER = Adapter(
    build=build,
    train_transform=train_transform,
    eval_transform=imagenet_eval,
    criterion=criterion,
    logits=lambda outputs: outputs[0][3],
)
