"""MFER (Xu et al.), XuJ1E/MFER: `model.py::convnext_base(pretrained=False, drop_path_rate=0.25)` with
three `model/multiscale.py::classifier(dim=256, num_class=C, step=s)` heads, s = 2, 3, 4, on the first 512,
768 and 1024 features, as `train.py` assembles them; both are bundled in `MFERNet` below.

Outputs the three heads' logits; the prediction is argmax of their sum (train.py's `preds += pred`). Loss:
Σ over heads of `model/smooth_feature.py::LabelSmoothingCrossEntropy()` (smoothing 0.1). `train.py` cannot
run as released; its intent is followed and these points differ:

- Its DSF `FeatureLoss` (weight `--weight_loss 1e-3`) was never released ("will release soon"): dropped.
- Its optimizer covers the backbone and that loss only, so the heads would never train: all of `MFERNet` is
  optimised.
- Random init is upstream's setting (`pretrained=False`; no MS-Celeb weights were released), so `--pretrained`
  changes nothing here. No augmentation upstream (Resize, ToTensor, Normalize).

Import workaround: the top-level `model.py` shadows the `__init__`-less `model/` folder, so `import model.x`
fails. While the files are loaded, `sys.modules['model']` is a bare package whose `__path__` is the repo's
`model/`, and `model.py` is loaded by file path under a private name; the previous `model` entries are put back
afterwards. Loading `model.py` re-registers timm's `convnext_*` entries with upstream's (a global side effect
of the upstream file; warnings silenced).
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from typing import Iterator

from torch import Tensor, nn

from adapters.augment import imagenet_eval
from adapters.contract import Adapter, BuildContext

DROP_PATH_RATE = 0.25
HEAD_DIM = 256
HEAD_STEPS = (2, 3, 4)  # msc = [classifier(step=2), classifier(step=3), classifier(step=4)]
LABEL_SMOOTHING = 0.1   # LabelSmoothingCrossEntropy() default


@contextlib.contextmanager
def _model_package(ctx: BuildContext) -> Iterator[None]:
    """`model` bound to the upstream's `model/` folder while upstream files import from it."""
    from adapters.shims import upstream_file

    folder = upstream_file(ctx, "model/attention.py").parent
    saved = {k: sys.modules.pop(k) for k in [k for k in sys.modules if k == "model" or k.startswith("model.")]}
    spec = importlib.machinery.ModuleSpec("model", None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    sys.modules["model"] = importlib.util.module_from_spec(spec)
    try:
        yield
    finally:
        for key in [k for k in sys.modules if k == "model" or k.startswith("model.")]:
            del sys.modules[key]
        sys.modules.update(saved)


def _upstream(ctx: BuildContext) -> types.SimpleNamespace:
    """model.py, model/multiscale.py and model/smooth_feature.py, each under a private name."""
    from adapters.shims import load_module_from, upstream_file

    with _model_package(ctx), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm's deprecated import paths; convnext_* re-registration
        names = {"convnext": "model.py", "multiscale": "model/multiscale.py", "smooth": "model/smooth_feature.py"}
        return types.SimpleNamespace(**{
            key: load_module_from(upstream_file(ctx, path), f"_ferbench_mfer_{key}") for key, path in names.items()
        })


class MFERNet(nn.Module):
    """ConvNeXt-B backbone (1024-d feature) and the three multiscale heads of train.py."""

    def __init__(self, backbone: nn.Module, heads: nn.ModuleList):
        super().__init__()
        self.backbone, self.heads = backbone, heads

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        feat = self.backbone(x)
        return tuple(head(feat[:, : step * HEAD_DIM]) for step, head in zip(HEAD_STEPS, self.heads))


def build(ctx: BuildContext) -> MFERNet:
    up = _upstream(ctx)
    backbone = up.convnext.convnext_base(pretrained=False, num_classes=ctx.num_classes, drop_path_rate=DROP_PATH_RATE)
    heads = nn.ModuleList(up.multiscale.classifier(dim=HEAD_DIM, num_class=ctx.num_classes, step=s) for s in HEAD_STEPS)
    return MFERNet(backbone, heads)


class MFERLoss(nn.Module):
    """train.py: `loss += loss(pred, target)` over the three heads (the unreleased feature loss dropped)."""

    def __init__(self, lsce: nn.Module):
        super().__init__()
        self.lsce = lsce

    def forward(self, outputs, targets: Tensor) -> Tensor:
        return sum(self.lsce(logits, targets) for logits in outputs)


def criterion(ctx: BuildContext) -> MFERLoss:
    return MFERLoss(_upstream(ctx).smooth.LabelSmoothingCrossEntropy(smoothing=LABEL_SMOOTHING))


def logits(outputs) -> Tensor:
    return sum(outputs)


ADAPTER = Adapter(
    build=build,
    train_transform=imagenet_eval,  # upstream has no augmentation: Resize (done by the cache), ToTensor, Normalize
    eval_transform=imagenet_eval,
    criterion=criterion,
    logits=logits,
)
