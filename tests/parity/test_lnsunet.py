"""LNSU-Net parity with zyh-uaiaaaa/Mine-Extra-Knowledge `code/train_exp.py::main` and `configs/exp.py`: eval
transform, and one AdamW step (GradScaler, clip-norm 5, timm warm-up schedule at step 0) of
LSR2(0.3) + 0.1·class-weighted flip-consistency CAM loss on the image and its exact flip.

Compared: `RAFDBDataset`'s default (evaluation) Compose on a PNG vs the image cache + the adapter's eval
transform; then, on the same uint8 batch (each side through its own eval transform: the training pipeline
without timm's RandAugment/jitter/flip/erasing, which are not compared; upstream's second view is
`RandomHorizontalFlip(p=1.0)` of it, as `RAFDBDataset.__getitem__` makes it), the loss, every gradient at the
step (after unscaling and clipping) and every parameter and buffer after it, with the learning rate each side's
scheduler sets for the first step. `main()`'s own config, lr scaling, optimizer, scheduler and scaler
statements and its loop body run, with upstream's hard-coded RAF-DB class weights; ferbench gets RAF-DB's train
class counts in RAF's label order, from which the adapter recomputes those weights. The model is
`SwinTransFER(swin=get_model(cfg.network), swin_num_features=768, num_classes=7, cam=True)` as `main()` builds
it, in DataParallel where upstream uses DistributedDataParallel (no process group on a test machine)."""

from __future__ import annotations

import argparse

import pytest
import torch
from PIL import Image
from torch.autograd import Variable
from torch.utils.data import DataLoader

from adapters import load_adapter
from adapters.shims import load_module_from, stand_ins
from tests.adapters.upstream import fetched, on_path
from tests.parity import common
from tests.parity.upstream_step import (
    Script, assert_identical, cached, copy_weights, ferbench_step, named_state, source_image, uint8_batch,
    upstream_step,
)

UPSTREAM, pytestmark = fetched("lnsunet")
CODE = UPSTREAM / "code"
SIZE, BATCH = 112, 2
RAF_STEPS_PER_EPOCH = 383  # the recipe's warm-up is 2,000 steps at 383 RAF-DB steps per epoch


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    yield from on_path(CODE, ("configs", "backbones", "lr_scheduler"), "_ferbench_lnsunet")


@pytest.fixture(scope="module")
def script():
    return Script(CODE / "train_exp.py")


def eval_transform():
    from torchvision import transforms

    return Script(CODE / "expression" / "datasets.py").class_expression(
        "RAFDBDataset", "self.transform", dict(transforms=transforms, img_size=SIZE))


def test_eval_preprocessing_matches_rafdb_dataset(tmp_path):
    path = source_image(tmp_path)
    upstream = eval_transform()(Image.open(path).convert("RGB"))  # RAFDBDataset.__getitem__
    ferbench = load_adapter("lnsunet").eval_transform(SIZE)(cached(path, SIZE))[0]
    assert torch.equal(ferbench, upstream)


@pytest.mark.slow
def test_one_adamw_step_matches_train_exp_py(script):
    from backbones import get_model
    from lr_scheduler import build_scheduler
    from torchvision import transforms

    adapter = load_adapter("lnsunet")
    raf_classes = ("surprise", "fear", "disgust", "happy", "sad", "anger", "neutral")
    ctx = common.context(CODE.parent, SIZE, classes=raf_classes, class_counts=adapter_counts())
    torch.manual_seed(0)
    model = adapter.build(ctx)

    config = load_module_from(CODE / "utils" / "utils_config.py", "_parity_lnsunet_utils_config")
    with stand_ins("easydict", EasyDict=AttributeDict):  # configs/*.py: `from easydict import EasyDict`
        cfg = config.get_config("configs/exp.py")
    namespace = common.namespace(
        None, args=argparse.Namespace(config="configs/exp.py", local_rank=0), get_config=lambda path: cfg,
        get_model=get_model, build_scheduler=build_scheduler, world_size=1, rank=0, DataLoader=DataLoader,
        expression_train_loader=range(RAF_STEPS_PER_EPOCH), Variable=Variable,
    )
    script.definitions(("ACLoss", "generate_flip_grid", "LSR2"), namespace)
    script.setup("main", ("cfg", "swin"), namespace)
    models = load_module_from(CODE / "expression" / "models.py", "_ferbench_lnsunet_models")
    upstream_model = models.SwinTransFER(swin=namespace["swin"], swin_num_features=768, num_classes=7, cam=True)
    namespace["model"] = torch.nn.DataParallel(copy_weights(model, upstream_model))
    script.setup("main", ("expression_criteria", "opt", "lr_scheduler", "amp"), namespace)

    images, targets = uint8_batch(SIZE, BATCH), common.labels(BATCH)
    transform = eval_transform()
    upstream_images = torch.stack([transform(i) for i in common.pil_images(images)])
    flipped = torch.stack([transforms.RandomHorizontalFlip(p=1.0)(i) for i in upstream_images])
    upstream = upstream_step(script, "main", "expression_train_loader", namespace,
                             (upstream_images, targets, flipped), namespace["opt"], named_state(upstream_model))
    ferbench = ferbench_step(adapter, ctx, common.recipe("lnsunet"), model, adapter.criterion(ctx),
                             adapter.eval_transform(SIZE)(images), targets, named_state(model),
                             steps_per_epoch=RAF_STEPS_PER_EPOCH)
    assert_identical(ferbench, upstream)


def adapter_counts() -> tuple[int, ...]:
    from adapters.lnsunet import RAF_TRAIN_COUNTS

    return RAF_TRAIN_COUNTS


class AttributeDict(dict):
    """easydict's EasyDict as far as the configs use it (not a ferbench dependency)."""

    __getattr__ = dict.__getitem__
    __setattr__ = dict.__setitem__
