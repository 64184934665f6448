"""Ada-DF (Liu et al. 2023), taylor-xy0827/Ada-DF: `model.py::create_model(num_classes, drop_rate=0)`.

A timm ResNet-18 whose stem and layer1 are frozen, then two branches (layer2–4, pool, fc), each scaling its
logits by a Linear+Sigmoid attention weight. Outputs `(out_1, out_2, attention_weights [B,1])`; the prediction
is argmax of **out_2** (`train.py::validate`, phase 'test').

Training as `train.py` (RAF-DB defaults: threshold 0.7, β 3, weights scaled to [0.2, 1], tops 0.7, margin
0.07): loss α2·CE(out_1) + α1·KLD(out_2 ‖ fused target)/B + rank regularisation, where the fused target mixes
softmax(out_1) and the row of a C×C label-distribution table (LD) by the min-max scaled attention weights.
The α schedule depends on the epoch (`epoch_start`), and LD is rebuilt after each epoch from an eval-mode pass
of the auxiliary branch over the augmented training images (`epoch_end`), with `utils.py::generate_adaptive_LD`
itself. `train.py` cannot be imported (argv parsing, tensorboard, tqdm at import) and its `train` function is
the whole loop, so the loss and the table's start value are written out below with their line numbers.
Workarounds:

- `model.py` is loaded by file path under a private name (`model` is a top-level name MFER and GSDNet use too);
  `utils.py` (plain helpers) and the vendored `auto_augment.py` likewise (the transform, which gets only the
  input size, finds `auto_augment.py` on `sys.path`, where the worker puts this upstream).
- Input 224 as upstream's `Resize((224, 224))`; RandAugment's `translate_const` 117 scales with another size.
- The constructor strict-loads `./pretrain/resnet18_msceleb.pth['state_dict']` into a fresh timm resnet18
  before splitting it into the frozen stem and the branches (branch 2 a deep copy of branch 1, fc included).
  `torch.load` is stubbed during construction to return that resnet18's own initial weights, drawn from
  the same RNG state the constructor then uses (so the load is a no-op and no extra random numbers are
  consumed); with `--pretrained` the sha256-checked file is loaded afterwards the same way (strict into a timm
  resnet18, then into the stem and both branches' trunks; the fresh fc stays shared-initialised).
- Pillow 13 raises on Posterize with 0 bits: `shims.patch_posterize` on the vendored `NAME_TO_OP`.
- Upstream's rank regularisation and KLD use the configured batch size (`args.batch_size`); the loop's
  batches are full (drop_last) except when a split is smaller than one batch, so the actual batch size is used.
- The LD pass covers every training image; upstream's pass over its drop_last loader skips a random partial
  batch (< 64 images).
"""

from __future__ import annotations

import math
import sys
import types

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adapters.augment import IMAGENET_MEAN, IMAGENET_STD, imagenet_eval, per_sample, pil_transform
from adapters.contract import Adapter, BuildContext, EpochState

WEIGHTS = "resnet18_msceleb.pth"
DROP_RATE = 0.0       # train.py --drop_rate
THRESHOLD = 0.7       # --threshold (RAF-DB; AffectNet and SFEW use 0.5)
BETA = 3              # --beta (RAF-DB; AffectNet and SFEW use 5)
MAX_WEIGHT, MIN_WEIGHT = 1.0, 0.2  # --max_weight, --min_weight
TOPS = 0.7            # --tops
MARGIN_1 = 0.07       # --margin_1
SHARPEN, T = False, 1.2  # --sharpen (a `type=bool` flag, off), --T
LABEL_SMOOTHING = 0.0  # --label_smoothing
RAND_AUGMENT = "rand-m5-n3-mstd0.5"  # dataset.py, RAF-DB and AffectNet
TRANSLATE_CONST = 117  # dataset.py hparams for 224-px images
AUGMENT_FILL = (124, 116, 104)
ERASING_SCALE = (0.02, 0.25)


def _upstream(ctx: BuildContext, relative: str, private: str) -> types.ModuleType:
    from adapters.shims import load_module_from, upstream_file

    return load_module_from(upstream_file(ctx, relative), private)


def _timm_resnet18() -> nn.Module:
    import timm

    return timm.create_model("resnet18", pretrained=False)  # model.py: as the constructor makes it


def build(ctx: BuildContext) -> nn.Module:
    from adapters.shims import torch_load_returning

    upstream = _upstream(ctx, "model.py", "_ferbench_adadf_model")
    with torch.random.fork_rng(devices=[]):
        own_init = _timm_resnet18().state_dict()  # what the constructor's resnet18 will hold before its load
    with torch_load_returning({"state_dict": own_init}):  # model.py: checkpoint['state_dict'], strict
        model = upstream.create_model(ctx.num_classes, DROP_RATE)
    if ctx.pretrained:
        from adapters.shims import load_weights
        from harness.weights import load_into

        state = load_weights(ctx, WEIGHTS)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        with torch.random.fork_rng(devices=[]):  # a scratch copy: keep the RNG stream as in random-init runs
            resnet = _timm_resnet18()
        load_into(resnet, state, what=f"{WEIGHTS} (MS-Celeb ResNet-18)")
        children = list(resnet.children())
        load_into(model.feature, nn.Sequential(*children[:-5]).state_dict(), what="Ada-DF feature (stem, layer1)")
        trunk = nn.Sequential(*children[-5:-1]).state_dict()  # layer2-4, pool; the fc is replaced upstream
        load_into(model.branch_1_feature, trunk, what="Ada-DF branch 1 (layer2-4)")
        load_into(model.branch_2_feature, trunk, what="Ada-DF branch 2 (layer2-4)")
    return model


def alphas(epoch: int, beta: int = BETA) -> tuple[float, float]:
    """train.py:146-152 (`--alpha` unset): the KLD weight ramps up to 1 over β epochs, then CE's decays."""
    if epoch <= beta:
        return math.exp(-(1 - epoch / beta) ** 2), 1.0
    return 1.0, math.exp(-(1 - beta / epoch) ** 2)


def initial_distributions(num_classes: int, threshold: float = THRESHOLD) -> Tensor:
    """train.py:69-71: `threshold` on the diagonal, the rest spread evenly (the sharpen branch is off)."""
    table = torch.zeros(num_classes, num_classes)
    for i in range(num_classes):
        row = torch.zeros(num_classes).fill_((1 - threshold) / (num_classes - 1))
        table[i] = row.scatter_(0, torch.tensor(i), threshold)
    return table


class AdaDFLoss:
    """The loss of `train.py::train` with the state it keeps across epochs: the α pair and the LD table."""

    def __init__(self, utils: types.ModuleType, num_classes: int):
        self.utils = utils
        self.num_classes = num_classes
        self.distributions = initial_distributions(num_classes)
        self.alpha_1, self.alpha_2 = alphas(1)

    def start_epoch(self, epoch: int) -> None:
        self.alpha_1, self.alpha_2 = alphas(epoch)

    def state_dict(self) -> dict:
        """The LD table is training state: epoch checkpoints save it so a resumed run continues exactly."""
        return {"distributions": self.distributions.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.distributions = state["distributions"]

    def rebuild(self, outputs_1: Tensor, targets: Tensor) -> None:
        """train.py:109-111 through `utils.generate_adaptive_LD`, which skips a leading placeholder row
        (`validate` starts its concatenation from `torch.ones`), so one is prepended here too."""
        outputs = torch.cat((torch.ones(1, self.num_classes, device=outputs_1.device), outputs_1))
        targets = torch.cat((torch.ones(1, dtype=torch.long, device=targets.device), targets))
        self.distributions = self.utils.generate_adaptive_LD(outputs, targets, self.num_classes, THRESHOLD, SHARPEN, T)

    def __call__(self, outputs, labels: Tensor) -> Tensor:
        outputs_1, outputs_2, attention_weights = outputs
        batch_size = len(labels)  # upstream: args.batch_size (see module docstring)
        # rank regularisation, train.py:176-191
        tops = int(batch_size * TOPS)
        _, top_idx = torch.topk(attention_weights.squeeze(), tops)
        _, down_idx = torch.topk(attention_weights.squeeze(), batch_size - tops, largest=False)
        diff = torch.mean(attention_weights[down_idx]) - torch.mean(attention_weights[top_idx]) + MARGIN_1
        rr_loss = diff if diff > 0 else torch.zeros((), device=diff.device)
        # train.py:193
        loss_ce = F.cross_entropy(outputs_1, labels, reduction="none", label_smoothing=LABEL_SMOOTHING).mean()
        # label fusion, train.py:196-204 (not detached, as upstream)
        w = attention_weights.squeeze(1)
        w = ((w - w.min()) / (w.max() - w.min())) * (MAX_WEIGHT - MIN_WEIGHT) + MIN_WEIGHT
        w = w.unsqueeze(1)
        table = self.distributions.to(outputs_2.device)
        targets = (1 - w) * F.softmax(outputs_1, dim=1) + w * table[labels]
        loss_kld = F.kl_div(F.log_softmax(outputs_2, dim=1), targets, reduction="none").sum() / batch_size
        return self.alpha_2 * loss_ce + self.alpha_1 * loss_kld + rr_loss  # train.py:206


def criterion(ctx: BuildContext) -> AdaDFLoss:
    return AdaDFLoss(_upstream(ctx, "utils.py", "_ferbench_adadf_utils"), ctx.num_classes)


def epoch_start(state: EpochState) -> None:
    state.criterion.start_epoch(state.epoch)


@torch.no_grad()
def epoch_end(state: EpochState) -> None:
    """train.py:109 `validate(train_loader, ..., phase='train')`: eval mode, augmented training images, out_1."""
    model, was_training = state.model, state.model.training
    model.eval()
    outputs = []
    for idx in torch.arange(len(state.train_labels)).split(state.batch_size):
        out_1, _, _ = model(state.train_transform(state.train_images[idx].to(state.device)))
        outputs.append(out_1.float())
    model.train(was_training)
    state.criterion.rebuild(torch.cat(outputs), state.train_labels.to(outputs[0].device))


def vendored_auto_augment() -> types.ModuleType:
    """The upstream's `auto_augment.py` under a private name, Posterize patched. Transforms get only the input
    size, so the file is found the way `import auto_augment` would find it: on `sys.path`, where the worker
    puts the run's upstream (and only it)."""
    import importlib.util
    from pathlib import Path

    from adapters.shims import load_module_from, patch_posterize
    from harness.errors import FerbenchError

    private = "_ferbench_adadf_auto_augment"
    if private not in sys.modules:
        spec = importlib.util.find_spec("auto_augment")
        if spec is None or spec.origin is None:
            raise FerbenchError("Ada-DF's auto_augment.py is not on sys.path (the worker puts vendor/adadf there)")
        patch_posterize(load_module_from(Path(spec.origin), private).NAME_TO_OP)
    return sys.modules[private]


def train_transform(size: int):
    """dataset.py (RAF-DB) after Resize 224: vendored RandAugment rand-m5-n3-mstd0.5, RandomHorizontalFlip,
    ToTensor, ImageNet Normalize, RandomErasing(scale=(0.02, 0.25)); per sample, as its DataLoader applies it."""
    from torchvision.transforms import v2

    hparams = {"translate_const": round(TRANSLATE_CONST * size / 224), "img_mean": AUGMENT_FILL}
    augment = vendored_auto_augment().rand_augment_transform(config_str=RAND_AUGMENT, hparams=hparams)
    rand_augment = pil_transform(augment)
    rest = v2.Compose([
        v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        v2.RandomErasing(scale=ERASING_SCALE),
    ])
    return lambda batch: per_sample(batch, lambda image: rest(rand_augment(image)))


ADAPTER = Adapter(
    build=build,
    train_transform=train_transform,
    eval_transform=imagenet_eval,
    criterion=criterion,
    logits=lambda outputs: outputs[1],
    epoch_start=epoch_start,
    epoch_end=epoch_end,
)
