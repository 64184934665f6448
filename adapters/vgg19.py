"""VGG19 baseline, WuJie1010/Facial-Expression-Recognition.Pytorch: `models/vgg.py::VGG('VGG19')`, random init.

Logits [B,C]; CK+ recipe of `mainpro_CK+.py` (SGD, gradients clamped to ±0.1, ×0.8 per epoch after epoch 20,
RandomCrop 44 + flip, ten-crop test). Data handling, ten-crop evaluation and workarounds: `adapters/fer_pytorch.py`.
"""

from torch import nn

from adapters.contract import BuildContext
from adapters.fer_pytorch import adapter, fit_classes, model_file


def build(ctx: BuildContext) -> nn.Module:
    model = model_file(ctx, "models/vgg.py").VGG("VGG19")
    return fit_classes(model, "classifier", ctx.num_classes)  # upstream: nn.Linear(512, 7)


ADAPTER = adapter(build)
