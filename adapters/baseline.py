"""Built-in baseline: torchvision ResNet-18 from random init.

Needs no vendored code, so the whole pipeline (data, loop, store, report) runs offline.
"""

from torchvision.models import resnet18

from adapters.augment import IMAGENET_MEAN, IMAGENET_STD, imagenet_eval, normalize, random_crop, random_hflip, to_float
from adapters.contract import Adapter, BuildContext


def build(ctx: BuildContext):
    return resnet18(weights=None, num_classes=ctx.num_classes)


def train_transform(size: int):
    pad = max(1, size // 16)
    return lambda batch: normalize(random_crop(random_hflip(to_float(batch)), pad), IMAGENET_MEAN, IMAGENET_STD)


ADAPTER = Adapter(build=build, train_transform=train_transform, eval_transform=imagenet_eval)
