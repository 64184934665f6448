"""POSTER (Zheng et al. 2023), zczcwh/POSTER: `models/emotion_hyp.py::pyramid_trans_expr(224, C, type='large')`.

Outputs `(logits [B,C], feature [B,512])`; the prediction is argmax of the logits. Training as `train.py`:
SAM (`data_preprocessing/sam.py`) over Adam, loss CE + 2·LabelSmoothingCrossEntropy(0.2) (top-level
`utils.py`) in both SAM passes (the loop calls `train_loss` twice per step). Workarounds:

- Upstream's top-level names `models`, `utils` and `data_preprocessing` collide with other upstreams
  (POSTER++ has its own `models.ir50`), so `models/` is imported as a bare package under a private name and
  `utils.py` / `sam.py` are loaded by file path; relative imports inside `models/` work unchanged.
- `emotion_hyp.py` imports `matplotlib.pyplot` and never uses it: an empty stand-in is registered only for
  the duration of the import when matplotlib is not installed.
- The constructor `torch.load`s two cwd-relative files (FileNotFoundError without them) and strict-loads the
  landmark one: it is built with `torch.load` returning `{'state_dict': {}}` and non-strict loading, which
  reads no file and consumes no RNG. With `--pretrained` the sha256-checked files are then loaded as the
  constructor would: `mobilefacenet_model_best.pth.tar['state_dict']` strictly into the frozen
  `face_landback`, `ir50.pth` by name and shape into `ir_back` (its `load_pretrained_weights`), which must
  match exactly 304 tensors (upstream prints `load_weight N` and carries on with a partial load).
- RAF-DB images are read with cv2 and stay BGR (the BGR→RGB line of `dataset_raf.py` is commented out),
  normalised with RGB ImageNet statistics: reproduced (`BGR = True`) in training and evaluation, since
  upstream's RAF-DB training and its reported result saw that channel order. (Its AffectNet loaders convert
  to RGB; flip `BGR` to feed RGB.)
- `RafDataSet(basic_aug=True)`: with p 0.5, cv2 flip or Gaussian noise (var 30, clipped, truncated to uint8),
  each half the time; then RandomHorizontalFlip, Resize, Normalize, RandomErasing(0.02–0.1). The cache has
  already resized, so the noise is drawn at the input size instead of the original 100×100 (slightly
  sharper noise), with torch's RNG instead of Python's and NumPy's.
- `ir50.py`'s `Backbone.forward` ends in `x.view(-1, 49, 1024)`, which fails on the channels-last feature map
  that `--amp` gives (its memory is not laid out NCHW). A forward hook makes the IR-50 body's output contiguous
  (NCHW) before that view: a no-op without `--amp` (the tensor is already contiguous; numbers unchanged), and
  under `--amp` the view reads the same elements as upstream's NCHW run.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from adapters.augment import IMAGENET_MEAN, IMAGENET_STD, normalize, per_sample, random_hflip, to_float
from adapters.contract import Adapter, BuildContext
from adapters.shims import stand_ins, upstream_package

MOBILEFACENET = "mobilefacenet_model_best.pth.tar"
IR50 = "ir50.pth"
IR50_TENSORS = 304    # upstream's `load_weight 304`: every tensor of `ir_back`, BatchNorm counters included
MODEL_TYPE = "large"  # train.py --modeltype default (depth 8)
LABEL_SMOOTHING = 0.2
LSCE_WEIGHT = 2.0     # loss = 2 * lsce_loss + CE_loss
NOISE_VAR = 30.0      # add_gaussian_noise(var=30)
ERASING_SCALE = (0.02, 0.1)
BGR = True            # dataset_raf.py: cv2.imread without the (commented-out) BGR→RGB conversion


# --- helpers shared with the POSTER++ adapter ------------------------------------------------------------


@contextlib.contextmanager
def constructor_without_weights() -> Iterator[None]:
    """POSTER-family constructors `torch.load` the landmark and IR-50 files and strict-load the first: here
    `torch.load` returns an empty checkpoint and loading is non-strict, so nothing is read and the random
    init stands. Their `load_weight 0` print is swallowed so that no log suggests a load happened."""
    from adapters.shims import torch_load_returning

    original = nn.Module.load_state_dict

    def lenient(self, state_dict, strict=True, assign=False):
        return original(self, state_dict, strict=False, assign=assign)

    nn.Module.load_state_dict = lenient
    try:
        with torch_load_returning({"state_dict": {}}), contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        nn.Module.load_state_dict = original


def _state_dict(checkpoint) -> dict:
    return checkpoint["state_dict"] if isinstance(checkpoint, dict) and "state_dict" in checkpoint else checkpoint


def load_backbones(ctx: BuildContext, model: nn.Module, ir_key: Callable[[str], str] = lambda key: key) -> None:
    """The two pretrained files, loaded as the POSTER-family constructors load them; `ir_key` renames IR-50
    keys (POSTER++ splits the stages into body1..3)."""
    from adapters.shims import load_weights
    from harness.weights import load_into

    landmark = _state_dict(load_weights(ctx, MOBILEFACENET))
    load_into(model.face_landback, landmark, what=f"{MOBILEFACENET} → face_landback (MobileFaceNet landmarks)")
    ir = _state_dict(load_weights(ctx, IR50))
    if isinstance(ir, dict):  # load_pretrained_weights strips DataParallel's `module.`
        ir = {ir_key(k[len("module."):] if k.startswith("module.") else k): v for k, v in ir.items()}
    load_into(model.ir_back, ir, what=f"{IR50} → ir_back (IR-50)", expected=IR50_TENSORS)


def upstream_sam(ctx: BuildContext) -> type:
    from adapters.shims import load_module_from, upstream_file

    name = f"_ferbench_{ctx.upstream_dir.name}_sam" if ctx.upstream_dir else "_ferbench_sam"
    return load_module_from(upstream_file(ctx, "data_preprocessing/sam.py"), name).SAM


def erasing(scale=ERASING_SCALE):
    """torchvision RandomErasing(p=0.5, scale, ratio=(0.3, 3.3), value=0) after Normalize, per sample."""
    from torchvision.transforms import v2

    op = v2.RandomErasing(scale=scale)
    return lambda batch: per_sample(batch, op)


# --- POSTER ---------------------------------------------------------------------------------------------


def build(ctx: BuildContext) -> nn.Module:
    upstream_package(ctx, "models", "_ferbench_poster_models")
    with stand_ins("matplotlib", "matplotlib.pyplot"):
        emotion_hyp = importlib.import_module("_ferbench_poster_models.emotion_hyp")
    with constructor_without_weights():
        model = emotion_hyp.pyramid_trans_expr(img_size=ctx.input_size, num_classes=ctx.num_classes, type=MODEL_TYPE)
    if ctx.pretrained:
        load_backbones(ctx, model)
    model.ir_back.body.register_forward_hook(_nchw)
    return model


def _nchw(module: nn.Module, inputs, output: Tensor) -> Tensor:
    """Contiguous (NCHW) output for `Backbone.forward`'s `.view(-1, 49, 1024)`; see the module docstring."""
    return output.contiguous()


class PosterLoss(nn.Module):
    """train.py: `loss = 2 * lsce_criterion(outputs, targets) + CE_criterion(outputs, targets)`."""

    def __init__(self, lsce: nn.Module):
        super().__init__()
        self.ce, self.lsce = nn.CrossEntropyLoss(), lsce

    def forward(self, outputs, targets: Tensor) -> Tensor:
        logits = outputs[0]
        return LSCE_WEIGHT * self.lsce(logits, targets) + self.ce(logits, targets)


def criterion(ctx: BuildContext) -> PosterLoss:
    from adapters.shims import load_module_from, upstream_file

    utils = load_module_from(upstream_file(ctx, "utils.py"), "_ferbench_poster_utils")
    return PosterLoss(utils.LabelSmoothingCrossEntropy(smoothing=LABEL_SMOOTHING))


def basic_aug(batch: Tensor) -> Tensor:
    """RafDataSet(basic_aug=True) on uint8 images: half the samples get one of (flip, Gaussian noise)."""
    b, device = batch.shape[0], batch.device
    chosen = torch.rand(b, device=device) > 0.5
    noise = torch.randint(0, 2, (b,), device=device) == 1
    flipped = torch.where((chosen & ~noise).view(-1, 1, 1, 1), batch.flip(-1), batch)
    noisy = (batch.float() + torch.randn(batch.shape, device=device) * NOISE_VAR**0.5).clamp_(0, 255).to(torch.uint8)
    return torch.where((chosen & noise).view(-1, 1, 1, 1), noisy, flipped)


def _channels(batch: Tensor) -> Tensor:
    return batch.flip(1) if BGR else batch


def train_transform(size: int):
    erase = erasing()

    def transform(batch: Tensor) -> Tensor:
        images = to_float(random_hflip(basic_aug(batch)))
        return erase(normalize(_channels(images), IMAGENET_MEAN, IMAGENET_STD))

    return transform


def eval_transform(size: int):
    return lambda batch: normalize(_channels(to_float(batch)), IMAGENET_MEAN, IMAGENET_STD)


ADAPTER = Adapter(
    build=build,
    train_transform=train_transform,
    eval_transform=eval_transform,
    criterion=criterion,
    logits=lambda outputs: outputs[0],
    sam=upstream_sam,
)
