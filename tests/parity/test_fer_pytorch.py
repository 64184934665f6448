"""vgg19 / resnet18 parity with WuJie1010/Facial-Expression-Recognition.Pytorch `mainpro_CK+.py` (module-level
setup, `train()` and `test()` loops): ten-crop evaluation, and two SGD steps (gradients clamped to ±0.1 by
`utils.clip_gradient`) on the same batch from identical weights.

Compared, for each of `--model VGG19` and `--model Resnet18`:
- evaluation: a 48x48 grey PNG (as the CK+48 files are) made into what `CK.__getitem__` hands its transform (the
  grey plane stacked three times, as a PIL image), through `transform_test` (TenCrop 44, ToTensor) and
  `test()`'s own loop body up to the averaged logits, vs the image cache + the adapter's eval transform and
  `eval_forward`, on the same weights in eval mode: equal crops' scores (`torch.equal`);
- training: on the same grey uint8 batch at 48 px (each side's ToTensor, without `transform_train`'s random crop
  and flip, which are not compared), the loss, every gradient at each `optimizer.step()` (after the clamp) and
  every parameter and buffer after the second step, which sees momentum.
`utils.py` runs `stty` at import, so its `clip_gradient` and `set_lr` are compiled from its source."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from PIL import Image
from torch.autograd import Variable

from adapters import load_adapter
from adapters.fer_pytorch import grey, model_file
from tests.adapters.upstream import fetched, on_path
from tests.parity import common
from tests.parity.upstream_step import (
    Script, assert_identical, cached, copy_weights, ferbench_step, named_state, uint8_batch, upstream_step,
)

UPSTREAM, pytestmark = fetched("fer-pytorch")
SIZE, STEPS = 48, 2
MODELS = [("vgg19", "VGG19"), ("resnet18", "Resnet18")]


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    yield from on_path(UPSTREAM, ("transforms",), "_ferbench_fer_pytorch")


@pytest.fixture(scope="module")
def script():
    return Script(UPSTREAM / "mainpro_CK+.py")


def upstream(script: Script, architecture: str) -> dict:
    """mainpro_CK+.py's module-level setup, with `--model architecture`."""
    import transforms  # the upstream's own package (vendor/fer-pytorch/transforms)

    helpers = Script(UPSTREAM / "utils.py").definitions(("clip_gradient", "set_lr"), {})
    ctx = common.context(UPSTREAM, SIZE)
    namespace = common.namespace(
        None, opt=script.arguments(["--model", architecture]), transforms=transforms, Variable=Variable,
        optim=torch.optim, utils=types.SimpleNamespace(**helpers),
        VGG=model_file(ctx, "models/vgg.py").VGG, ResNet18=model_file(ctx, "models/resnet.py").ResNet18,
    )
    return script.setup(None, ("use_cuda", "learning_rate_decay_start", "learning_rate_decay_every",
                               "learning_rate_decay_rate", "cut_size", "transform_test", "net", "criterion",
                               "optimizer"), namespace)


def ck_image(plane: np.ndarray) -> Image.Image:
    """CK.__getitem__: the grey plane stacked into three channels, as a PIL image."""
    return Image.fromarray(np.concatenate([plane[:, :, None]] * 3, axis=2))


@pytest.mark.parametrize("name, architecture", MODELS)
def test_ten_crop_evaluation_matches_mainpro_ck(script, name, architecture, tmp_path):
    adapter, ctx = load_adapter(name), common.context(UPSTREAM, SIZE)
    torch.manual_seed(0)
    model = adapter.build(ctx).eval()
    namespace = upstream(script, architecture)
    copy_weights(model, namespace["net"]).eval()

    paths = []
    for seed in range(2):
        rng = np.random.default_rng(seed)
        path = tmp_path / f"ck-{seed}.png"
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8), mode="L").save(path)
        paths.append(path)
    crops = torch.stack([namespace["transform_test"](ck_image(np.asarray(Image.open(p)))) for p in paths])
    with torch.no_grad():
        script.step("test", "testloader", namespace, (crops, common.labels()), until="outputs_avg")
        images = torch.cat([cached(p, SIZE) for p in paths])
        ferbench = adapter.eval_forward(model, adapter.eval_transform(SIZE)(images))
    assert torch.equal(ferbench, namespace["outputs_avg"])


@pytest.mark.parametrize("name, architecture", MODELS)
def test_two_sgd_steps_match_mainpro_ck(script, name, architecture):
    adapter, ctx = load_adapter(name), common.context(UPSTREAM, SIZE)
    torch.manual_seed(0)
    model = adapter.build(ctx)
    namespace = upstream(script, architecture)
    copy_weights(model, namespace["net"])

    images, targets = grey(uint8_batch(SIZE, 4)), common.labels(4)
    planes = [image[0].numpy() for image in images]
    from transforms import ToTensor  # transform_train's deterministic part

    upstream_images = torch.stack([ToTensor()(ck_image(plane)) for plane in planes])
    namespace.update(trainloader=[], epoch=0)
    up = upstream_step(script, "train", "trainloader", namespace, (upstream_images, targets), namespace["optimizer"],
                       named_state(namespace["net"]), steps=STEPS)
    ours = ferbench_step(adapter, ctx, common.recipe(name), model, adapter.criterion(ctx),
                         adapter.eval_transform(SIZE)(images), targets, named_state(model), steps=STEPS)
    assert_identical(ours, up, calls=STEPS)
