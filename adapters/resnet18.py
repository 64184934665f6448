"""ResNet18 baseline, WuJie1010/Facial-Expression-Recognition.Pytorch: `models/resnet.py::ResNet18()` (CIFAR-style
3x3 stem, no max-pool), random init.

Logits [B,C]; CK+ recipe of `mainpro_CK+.py` (`--model Resnet18`). Data handling, ten-crop evaluation and
workarounds: `adapters/fer_pytorch.py`.
"""

from torch import nn

from adapters.contract import BuildContext
from adapters.fer_pytorch import adapter, fit_classes, model_file


def build(ctx: BuildContext) -> nn.Module:
    model = model_file(ctx, "models/resnet.py").ResNet18()
    return fit_classes(model, "linear", ctx.num_classes)  # ResNet18() takes no class count: nn.Linear(512, 7)


ADAPTER = adapter(build)
