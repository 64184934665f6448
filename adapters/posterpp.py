"""POSTER++ (Mao et al. 2023), Talented-Q/POSTER_V2: `models/PosterV2_7cls.py::pyramid_trans_expr2(224, 7)`.

Outputs logits `[B,C]` only. Training as `main.py`: SAM (`data_preprocessing/sam.py`) over Adam, CrossEntropy
in both SAM passes. Workarounds:

- `PosterV2_7cls.py` ignores `num_classes` (its head is always 7); upstream's 8-class runs (`main_8.py`) use
  `PosterV2_8cls.py`, the same network with the head sized by `num_classes`. The file is picked by the
  dataset's class count; other counts have no upstream configuration and are refused.
- `models/` is imported as a bare package under a private name (POSTER has its own `models.ir50`), and
  `sam.py` by file path; the top-level `import thop` (FLOP counting, never called here) gets an empty
  stand-in while the file is imported, where thop is not installed.
- Constructors `torch.load` hard-coded Windows paths (7 classes) or `./pretrain/` (8 classes): built as POSTER
  is, with no file read (see adapters/poster.py). With `--pretrained` the same two files as POSTER's are
  loaded: the landmark net strictly, IR-50 by name and shape with exactly 304 tensors. POSTER++'s IR-50 names
  its three stages `body1..3` where a POSTER-style `ir50.pth` has `body.0..23`, so upstream's own lenient
  load would silently take only the 19 stem/output tensors of such a file: `body.N` keys are renamed to the
  stage they belong to (3, 4 and 14 units) and the 304 check guards the rest.
- Train augmentation (`main.py`, RAF-DB): Resize, RandomHorizontalFlip, Normalize, RandomErasing(0.02–0.1);
  ImageFolder reads RGB. AffectNet/CAER-S runs erase always at scale 0.05 (not reproduced: one recipe).
"""

from __future__ import annotations

import importlib
import warnings

from torch import nn

from adapters.augment import IMAGENET_MEAN, IMAGENET_STD, imagenet_eval, normalize, random_hflip, to_float
from adapters.contract import Adapter, BuildContext
from adapters.poster import constructor_without_weights, erasing, load_backbones, upstream_sam
from adapters.shims import stand_ins, upstream_package

ENTRY = {7: "PosterV2_7cls", 8: "PosterV2_8cls"}  # main.py / main_8.py
IR50_STAGES = (3, 4, 14)  # get_blocks(50): units of body1, body2, body3


def entry_module(num_classes: int) -> str:
    from harness.errors import FerbenchError

    if num_classes not in ENTRY:
        raise FerbenchError(
            f"POSTER++ has upstream networks for 7 classes (PosterV2_7cls.py) and 8 classes (PosterV2_8cls.py) "
            f"only; this dataset has {num_classes}"
        )
    return ENTRY[num_classes]


def ir50_key(key: str) -> str:
    """`body.N.rest` of a POSTER-style IR-50 file → `body{stage}.{unit}.rest`; other keys unchanged."""
    head, _, rest = key.partition(".")
    if head != "body":
        return key
    index, _, tail = rest.partition(".")
    unit = int(index)
    for stage, units in enumerate(IR50_STAGES, start=1):
        if unit < units:
            return f"body{stage}.{unit}.{tail}"
        unit -= units
    return key  # stage 4 (body.21-23): POSTER++ has no such stage, upstream discards it too


def build(ctx: BuildContext) -> nn.Module:
    name = entry_module(ctx.num_classes)
    upstream_package(ctx, "models", "_ferbench_posterpp_models")
    with stand_ins("thop", profile=None), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # timm.models.layers / registry: deprecated import paths
        module = importlib.import_module(f"_ferbench_posterpp_models.{name}")
    with constructor_without_weights(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "torch.meshgrid", UserWarning)  # WindowAttentionGlobal's meshgrid call
        model = module.pyramid_trans_expr2(img_size=ctx.input_size, num_classes=ctx.num_classes)
    if ctx.pretrained:
        load_backbones(ctx, model, ir_key=ir50_key)
    return model


def train_transform(size: int):
    erase = erasing()
    return lambda batch: erase(normalize(to_float(random_hflip(batch)), IMAGENET_MEAN, IMAGENET_STD))


ADAPTER = Adapter(
    build=build,
    train_transform=train_transform,
    eval_transform=imagenet_eval,
    sam=upstream_sam,
)
