"""Ada-DF parity with taylor-xy0827/Ada-DF `train.py` (`main()` setup, `train()` loop) and `dataset.py`'s RAF-DB
transforms: eval transform, and one Adam step of α2·CE(out_1) + α1·KLD(out_2 ‖ fused target)/B + rank
regularisation from identical weights and the same initial label-distribution table, at epoch 1 (α1 ramping up)
and at epoch 5 (past β: α2 decaying).

Compared: `data_transforms_val` on a PNG vs the image cache + the adapter's eval transform; then, on the same
uint8 batch (each side through its own eval transform: the training pipeline without RandAugment, flip and
erasing, which are not compared), the loss, every parameter's gradient at `optimizer.step()` and every parameter
and buffer after it. `main()`'s LD initialisation, losses and optimizer statements and `train()`'s own
α schedule and loop body run, with `--batch_size` set to the test's batch (upstream sizes the rank
regularisation by `args.batch_size`, ferbench by the batch). The constructor's `torch.load` of the MS-Celeb file
is replaced by the adapter's shim on both sides; the weights are then copied from the ferbench model. The LD
table's rebuild after each epoch (`epoch_end`) is not compared."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from adapters import load_adapter
from adapters.shims import load_module_from, torch_load_returning
from tests.adapters.upstream import fetched, on_path
from tests.parity import common
from tests.parity.upstream_step import (
    Script, assert_identical, cached, copy_weights, ferbench_step, named_state, source_image, uint8_batch,
    upstream_step,
)

UPSTREAM, pytestmark = fetched("adadf")
SIZE, BATCH = 224, 4


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    yield from on_path(UPSTREAM, ("auto_augment",), "_ferbench_adadf")


@pytest.fixture(scope="module")
def scripts():
    return Script(UPSTREAM / "train.py"), Script(UPSTREAM / "dataset.py")


def eval_transform(dataset: Script):
    from adapters.adadf import vendored_auto_augment

    namespace = common.namespace(None, dataset="raf", rand_augment_transform=vendored_auto_augment().rand_augment_transform)
    return dataset.setup("get_dataloaders", ("mean", "std", "data_transforms_val"), namespace)["data_transforms_val"]


def test_eval_preprocessing_matches_dataset_py(scripts, tmp_path):
    path = source_image(tmp_path)
    upstream = eval_transform(scripts[1])(Image.open(path))  # RafDataset.__getitem__
    ferbench = load_adapter("adadf").eval_transform(SIZE)(cached(path, SIZE))[0]
    assert torch.equal(ferbench, upstream)


@pytest.mark.slow
@pytest.mark.parametrize("epoch", [1, 5])
def test_one_adam_step_matches_train_py(scripts, epoch):
    train, dataset = scripts
    adapter, ctx = load_adapter("adadf"), common.context(UPSTREAM, SIZE)
    torch.manual_seed(0)
    model = adapter.build(ctx)

    upstream_model = load_module_from(UPSTREAM / "model.py", "_ferbench_adadf_model")  # the adapter's own load

    def create_model(*args):
        import timm

        with torch.random.fork_rng(devices=[]):  # a file for its strict load; the weights are copied below
            own = timm.create_model("resnet18", pretrained=False).state_dict()
        with torch_load_returning({"state_dict": own}):
            return upstream_model.create_model(*args)

    namespace = common.namespace(train, argv=["--batch_size", str(BATCH)], create_model=create_model)
    train.setup("main", ("LD", "model"), namespace)
    copy_weights(model, namespace["model"])
    train.setup("main", ("criterion", "criterion_kld", "optimizer"), namespace)
    Script(UPSTREAM / "utils.py").definitions(("AverageMeter",), namespace)

    images, targets = uint8_batch(SIZE, BATCH), common.labels(BATCH)
    transform = eval_transform(dataset)
    upstream_images = torch.stack([transform(i) for i in common.pil_images(images)])
    namespace.update(tqdm=common.Progress, train_loader=[], epoch=epoch)
    upstream = upstream_step(train, "train", "pbar", namespace, (0, (upstream_images, targets, torch.arange(BATCH))),
                             namespace["optimizer"], named_state(namespace["model"]))
    ferbench = ferbench_step(adapter, ctx, common.recipe("adadf"), model, adapter.criterion(ctx),
                             adapter.eval_transform(SIZE)(images), targets, named_state(model), epoch=epoch)
    assert_identical(ferbench, upstream)
