"""DFER-CLIP (Zhao & Liu 2023), zengqunzhao/DFER-CLIP: `models/Generate_Model.py::GenerateModel(input_text,
clip_model, args)` on OpenAI CLIP ViT-B/32, for video datasets (DFEW, FERV39k, MAFW).

Clips reach the model as uint8 [B, 16, 3, S, S] (16 frames sampled by the data pipeline as upstream's
`video_dataloader.py`: TSN segments for training, segment middles for testing); the model sees frames in [0, 1]
with no mean/std, as upstream's `ToTorchFormatTensor`. Outputs [B, C] logits (cosine × 100); argmax.
The setup follows `main.py` with the `train_*.sh` arguments: class descriptions (`--text-type class_descriptor`),
8 class-specific learnable contexts with the class token at the end, 1 temporal layer; the visual tower, temporal
net and contexts train, the text encoder is frozen; SGD with three learning rates (temporal net `--lr`, image
encoder `--lr-image-encoder`, prompt learner `--lr-prompt-learner`) through the adapter's `param_groups`.

Workarounds:
- `models/Prompt_Learner.py` does `from clip import clip`, which upstream resolved to a pip-installed OpenAI
  `clip`; the repository bundles its own copy in `models/clip`. That copy is registered as the top-level `clip`
  (and its submodules), and an already imported foreign `clip` is refused rather than used silently.
- The bundled `clip/clip.py` does `from pkg_resources import packaging`; setuptools ≥ 81 has no `pkg_resources`:
  a stub module exposing `packaging` is registered when the real one is missing.
- `GenerateModel` reads `args.load_and_tune_prompt_learner`, which `main.py`'s argparse never defines: set 'False'.
- `clip.load("ViT-B/32")` downloads into ~/.cache; instead the declared, sha256-checked `ViT-B-32.pt` is read the
  way `clip.load(path, jit=False)` reads it (adapters/openai_clip.py), or the same architecture is random-init.
- Upstream's descriptions are ordered by DFER-CLIP's 0-based labels (happiness, sadness, neutral, anger, surprise,
  disgust, fear, then MAFW's contempt … disappointment); ferbench orders classes canonically, so each class gets
  the description of its own upstream label, through the datasets' label encodings (harness/data/vocabulary.py).
- The train augmentation is DFEW's (`ColorJitter(brightness=0.5)`, `GroupRandomSizedCrop(224)`,
  `GroupRandomHorizontalFlip()`, one draw per clip), done on tensors with upstream's parameter sampling; the
  adapter does not know the dataset, so FERV39k's ±4° rotation (instead of brightness) and MAFW's crop-and-flip
  only are not reproduced.
"""

from __future__ import annotations

import importlib
import math
import random
import sys
from types import ModuleType, SimpleNamespace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adapters.contract import Adapter, BuildContext

CLIP_FILE = "ViT-B-32.pt"
UPSTREAM_ARGS = dict(  # train_DFEW.sh / train_FERV39k.sh / train_MAFW.sh (argparse defaults differ)
    contexts_number=8,
    class_token_position="end",
    class_specific_contexts="True",
    temporal_layers=1,
    load_and_tune_prompt_learner="False",  # read by PromptLearner, never defined by main.py's argparse
)
LR_IMAGE_ENCODER = 1e-3  # × recipe.lr: --lr-image-encoder 1e-5 against --lr 1e-2
LR_PROMPT_LEARNER = 1e-1  # × recipe.lr: --lr-prompt-learner 1e-3 against --lr 1e-2
TRAINED = ("image_encoder", "temporal_net", "prompt_learner")  # main.py: "only open learnable part"
FRAMES = 16  # main.py: num_segments=16
BRIGHTNESS = 0.5  # video_dataloader.py, DFEW: ColorJitter(brightness=0.5)


def bundled_clip() -> ModuleType:
    """DFER-CLIP's own `models/clip`, registered as the top-level `clip` its modules import."""
    import packaging.version

    from adapters.shims import stub_module
    from harness.errors import FerbenchError

    stub_module("pkg_resources", packaging=packaging)  # clip/clip.py: `from pkg_resources import packaging`
    bundled = importlib.import_module("models.clip")
    current = sys.modules.get("clip")
    if current is not None and current is not bundled:
        raise FerbenchError(
            f"a different `clip` package is already imported ({getattr(current, '__file__', current)}); "
            "DFER-CLIP must run on its bundled models/clip"
        )
    for sub in ("clip", "model", "simple_tokenizer"):
        sys.modules[f"clip.{sub}"] = importlib.import_module(f"models.clip.{sub}")
    sys.modules["clip"] = bundled
    return bundled


def descriptions(classes: tuple[str, ...], text: ModuleType) -> list[str]:
    """Upstream's class descriptions (`models/Text.py`) in ferbench's class order.

    `class_descriptor_7` / `_11` are indexed by DFER-CLIP's 0-based labels, the DFEW/FERV39k and MAFW list
    encodings; the 7-class list serves 7 classes, as `main.py` picks it for DFEW and FERV39k."""
    from harness.data.vocabulary import ENCODINGS
    from harness.errors import FerbenchError

    seven = len(classes) <= len(text.class_descriptor_7)
    upstream = text.class_descriptor_7 if seven else text.class_descriptor_11
    encoding = ENCODINGS["dfew" if seven else "mafw"]
    by_class = {encoding[str(label)]: line for label, line in enumerate(upstream)}
    unknown = [name for name in classes if name not in by_class]
    if unknown or not classes:
        raise FerbenchError(
            f"DFER-CLIP has class descriptions for {', '.join(by_class)} only; no description for "
            f"{', '.join(unknown) or 'an empty class list'}"
        )
    return [by_class[name] for name in classes]


def build(ctx: BuildContext) -> nn.Module:
    from adapters import openai_clip

    clip = bundled_clip()
    from models import Text
    from models.Generate_Model import GenerateModel

    clip_model = openai_clip.build(ctx, clip.model.CLIP, CLIP_FILE)
    model = GenerateModel(input_text=descriptions(ctx.classes, Text), clip_model=clip_model, args=SimpleNamespace(**UPSTREAM_ARGS))
    for name, param in model.named_parameters():
        param.requires_grad = any(part in name for part in TRAINED)
    return model


def param_groups(model: nn.Module, criterion, recipe) -> list[dict]:
    """main.py: SGD over temporal net (--lr), image encoder (--lr-image-encoder), prompt learner
    (--lr-prompt-learner); momentum and weight decay shared (the recipe's)."""
    return [
        {"params": list(model.temporal_net.parameters()), "lr": recipe.lr},
        {"params": list(model.image_encoder.parameters()), "lr": recipe.lr * LR_IMAGE_ENCODER},
        {"params": list(model.prompt_learner.parameters()), "lr": recipe.lr * LR_PROMPT_LEARNER},
    ]


def _clips(batch: Tensor) -> Tensor:
    from harness.errors import FerbenchError

    if batch.dim() != 5:
        raise FerbenchError(f"dferclip takes video clips [B, {FRAMES}, 3, H, W]; got a batch of shape {tuple(batch.shape)} "
                            "(train it on a video dataset: dfew, ferv39k, mafw)")
    return batch.float().div_(255.0)


def sized_crop_box(width: int, height: int, rng=random) -> tuple[int, int, int, int]:
    """(x, y, w, h) as `GroupRandomSizedCrop.__call__` draws it: area 8–100 %, aspect 3/4–4/3, sides swapped
    half the time, 10 tries; its fallback (scale the shorter side to the size, random crop of the size) is the
    whole frame for frames already at the input size."""
    for _ in range(10):
        area = width * height
        target_area = rng.uniform(0.08, 1.0) * area
        aspect_ratio = rng.uniform(3.0 / 4, 4.0 / 3)
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if rng.random() < 0.5:
            w, h = h, w
        if w <= width and h <= height:
            return rng.randint(0, width - w), rng.randint(0, height - h), w, h
    return 0, 0, width, height


def augment_clip(clip: Tensor, rng=random) -> Tensor:
    """DFEW's train transform on one clip [T, 3, S, S] in [0, 1], one draw for all its frames:
    brightness × U(0.5, 1.5) (clipped, as PIL), random-sized crop resized back to S (bilinear), flip p 0.5."""
    size_h, size_w = clip.shape[-2:]
    clip = (clip * rng.uniform(max(0.0, 1 - BRIGHTNESS), 1 + BRIGHTNESS)).clamp_(0, 1)
    x, y, w, h = sized_crop_box(size_w, size_h, rng)
    if (w, h) != (size_w, size_h):
        clip = F.interpolate(clip[..., y:y + h, x:x + w], size=(size_h, size_w), mode="bilinear",
                             align_corners=False, antialias=True)
    if rng.random() < 0.5:
        clip = clip.flip(-1)
    return clip


def train_transform(size: int):
    # upstream's group transforms draw from Python's `random` (the module's functions), which the worker seeds
    return lambda batch: torch.stack([augment_clip(clip, random) for clip in _clips(batch)])


def eval_transform(size: int):
    """Test: `GroupResize(224)` (done by the frame cache), `ToTorchFormatTensor` ([0, 1])."""
    return _clips


ADAPTER = Adapter(
    build=build,
    train_transform=train_transform,
    eval_transform=eval_transform,
    param_groups=param_groups,
)
