"""CEPrompt stage 1 ("eva") parity with HaoliangZhou/CEPrompt `train_fer_first_stage.py::main` (with `stage1.sh`'s
arguments) and `engine_fer_first_stage.py::train`: eval transform, and two AdamW steps with layer-wise lr decay
and the per-iteration warm-up of `utils/lr_sched.py` (lr 0 at the first step), of CE + λ·L1 distillation from a
frozen CLIP teacher, from identical weights.

Compared: the RAF-DB loader's test Compose on a 224-px PNG vs the image cache + the adapter's eval transform (upstream
resizes with bicubic, the cache bilinear: equal only at the input size, so that is what is compared); then, on the
same uint8 batch (each side through its own eval transform: the training pipeline without its random flip), both
steps' losses, every gradient at each `optimizer.step()` and every parameter and buffer after the second. The
prompts are upstream's RAF-DB label words (ferbench's classes are given in RAF's order). `clip.load` becomes a
random-init CLIP drawn from one seed (the adapter's stand-in for `ViT-B-16.pt`), for the student and the teacher
on both sides; the student's weights are then copied from the ferbench model. Stage 2 ("cat") is not compared:
its upstream engine calls `model.forward_maple`, which no longer exists."""

from __future__ import annotations

import types

import pytest
import torch
from PIL import Image
from torchvision import transforms

from adapters import load_adapter
from adapters.ceprompt import CLIP_FILE, bundled_clip
from tests.adapters.upstream import drop_pkg_resources_stub, fetched, on_path
from tests.parity import common
from tests.parity.upstream_step import (
    Script, assert_identical, cached, ferbench_step, named_state, source_image, uint8_batch,
    upstream_step,
)

UPSTREAM, pytestmark = fetched("ceprompt")
TOP_LEVEL = ("models", "clip", "dataloader", "utils")
SIZE, STEPS = 224, 2
RAF_CLASSES = ("surprise", "fear", "disgust", "happy", "sad", "anger", "neutral")  # get_labelname('rafdb') order
STEPS_PER_EPOCH = 96  # RAF-DB: 12,271 images in batches of 128
STAGE1_SH = ["--classes", "7", "--dataset", "rafdb", "--alpha", "5e-1", "--lamda", "1", "--topk", "16"]


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    yield from on_path(UPSTREAM, TOP_LEVEL, cleanup=drop_pkg_resources_stub)


def rafdb_test_transform():
    """`RafDB`'s test-time Compose (its second `self.transform`)."""
    return Script(UPSTREAM / "dataloader" / "rafdb" / "rafdb.py").class_expression(
        "RafDB", "self.transform", dict(transforms=transforms, Image=Image), nth=1)


def test_eval_preprocessing_matches_the_rafdb_loader(tmp_path):
    transform = rafdb_test_transform()
    path = source_image(tmp_path, size=(SIZE, SIZE))
    upstream = transform(Image.open(path).convert("RGB"))  # RafDB.__getitem__
    ferbench = load_adapter("ceprompt").eval_transform(SIZE)(cached(path, SIZE))[0]
    assert torch.equal(ferbench, upstream)


class _Logger:
    def info(self, *args, **kwargs):
        pass


@pytest.mark.slow
def test_two_adamw_steps_of_stage_one_match_the_engine():
    import utils.lr_sched as lrs
    from adapters import openai_clip
    from dataloader.data_utils import get_labelname
    from models.clip_vit import CLIPVIT
    from utils.misc import Averager, compute_ACC, convert_models_to_fp32
    from utils.optimizer import build_optimizer

    adapter = load_adapter("ceprompt")
    ctx = common.context(UPSTREAM, SIZE, classes=RAF_CLASSES)
    torch.manual_seed(0)
    model = adapter.build(ctx)
    criterion = adapter.criterion(ctx)

    clip = bundled_clip(ctx)

    def load(path, jit=False):  # clip.load: the adapter's random-init stand-in for the file, one seed for all
        return openai_clip.build(ctx, clip.model.CLIP, CLIP_FILE, seed=0), None

    script = Script(UPSTREAM / "train_fer_first_stage.py")
    args = script.arguments(STAGE1_SH)
    args.device = "cpu"  # main(): "cuda" if torch.cuda.is_available() else "cpu"
    namespace = common.namespace(
        None, args=args, clip=types.SimpleNamespace(tokenize=clip.tokenize, load=load), CLIPVIT=CLIPVIT,
        convert_models_to_fp32=convert_models_to_fp32, build_optimizer=build_optimizer, get_labelname=get_labelname,
    )
    script.setup("main", ("label_prompts", "label_token", "clip_model", "model"), namespace,
                 calls=("get_labelname", "convert_models_to_fp32"))
    student = namespace["model"]
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("ferbench_")}
    student.load_state_dict(state, strict=True)
    assert torch.equal(namespace["label_token"], model.ferbench_label_token)
    script.setup("main", ("optimizer", "criterion"), namespace)

    images, targets = uint8_batch(SIZE), common.labels()
    transform = rafdb_test_transform()
    upstream_images = torch.stack([transform(i) for i in common.pil_images(images)])
    engine = Script(UPSTREAM / "engine_fer_first_stage.py")
    namespace.update(lrs=lrs, Averager=Averager, compute_ACC=compute_ACC, tqdm=common.Progress, logger=_Logger(),
                     dataloader=range(STEPS_PER_EPOCH), epoch=0)
    upstream = upstream_step(engine, "train", "dataloader", namespace, (upstream_images, targets),
                             namespace["optimizer"], named_state(student), steps=STEPS)
    ours = {k: v for k, v in named_state(model).items() if not k.startswith("ferbench_")}
    ferbench = ferbench_step(adapter, ctx, common.recipe("ceprompt"), model, criterion,
                             adapter.eval_transform(SIZE)(images), targets, ours,
                             steps_per_epoch=STEPS_PER_EPOCH, steps=STEPS)
    assert_identical(ferbench, upstream, calls=STEPS)
