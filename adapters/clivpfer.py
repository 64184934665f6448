"""CLIVP-FER (Saadi et al. 2024), Ibtissam-SAADI/CLIVP-FER: `CLIP_KMU.py`'s `CustomNet` on frozen OpenAI CLIP
ViT-B/32 features, in three variants (benchmark.toml models `clivpfer`, `clivpfer-label-caption`,
`clivpfer-every-caption`; docs/models/clivpfer.md).

The forward is `CLIP_KMU.py::train()`/`test()`: `encode_image` → AvgPool1d(2) (512 → 256); mode 1 concatenates the
L2-normalised `encode_text` of the row's caption (→ 768); AvgPool1d(2, 2) (→ 128 or 384); `CustomNet`
(Linear(d, 512) → ReLU → Dropout(0.5) → Linear(512, C)), the only trained part (Adam over `net.parameters()`).
CLIP is `.float()`, `.eval()` and never optimized; its features carry no gradient here (upstream computes one for
CLIP's parameters, which no optimizer reads, so the head's gradients are the same).

Variants:
- `ADAPTER` (`clivpfer`, mode 0): the image alone, the honest model.
- `label-caption` (mode 1 as published, `10fold_train.py --mode 1`): the caption is the description of the row's
  TRUE class (`formatdescription.py`), at training and at test time (`testloader` yields images, captions, labels).
  The model is given the test label: `eval_forward_given_labels` declares it, and the report says so.
- `every-caption` (mode 1 used without labels at test time): trained exactly as `label-caption` (training labels
  are known); at evaluation every class's caption is fed with the image and class c scores
  log softmax(CustomNet(image, caption c))[c]; the prediction is the best-scoring class. This is the label-free
  reading of a model trained on label captions (CLIP's zero-shot practice of scoring every class prompt); one fixed
  caption would be an input never seen in training and an arbitrary choice.

Workarounds:
- `CLIP_KMU.py` does not parse (a line inside `test()` is indented by 7 spaces): `CustomNet` is compiled from its
  own source lines alone (`shims.definitions(by_lines=True)`); nothing else of the script runs.
- The repository imports `models.clip` and `transforms`, which it lacks. `transforms` is never used (every transform
  is written `torchvision.transforms.*`). `models.clip` is used as OpenAI's `clip` package (`clip.load("ViT-B/32")`,
  `clip.tokenize`), and `preprocess_KMUFED.py` imports that package by its own name (`import clip`): here it is the
  `openai-clip` distribution of OpenAI's code. `clip.load` (a download into ~/.cache) is replaced by
  adapters/openai_clip.py: the declared, sha256-checked `ViT-B-32.pt` read the same way, or random init.
- Mode 0 as written cannot run: `CustomNet(feature_dim=512)` is built, then replaced for every mode ≠ 1 by
  `Sequential(ReLU(), Linear(512, C))` (an `if`/`if`-`else` where `elif` was meant); both take 512 features, but
  the pooled image features are 128 wide. Here mode 0 is `CustomNet` on the 128 features it actually gets, so the
  two variants differ only in the caption.
- Captions are upstream text, read at run time from `formatdescription.py` (six classes: anger, disgust, fear,
  happy, sadness, surprise). A class it does not describe (synthetic's neutral) gets "A {class} facial expression."
  (ferbench's wording); a dataset of upstream's six classes uses upstream's sentences only.
- Upstream resizes the shorter side to 224 (`Resize((224,))`) and never crops, so its (square, MTCNN-cropped)
  faces are 224 × 224: the image cache's square resize. Train: RandomHorizontalFlip, RandomRotation(30) (nearest,
  black fill), ToTensor, ImageNet Normalize, per image; test: ToTensor, Normalize.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adapters.augment import (
    IMAGENET_MEAN, IMAGENET_STD, FlipRotateCropErase, imagenet_eval, normalize, per_sample, to_float,
)
from adapters.contract import Adapter, BuildContext

CLIP_FILE = "ViT-B-32.pt"
ROTATION = 30  # transforms.RandomRotation(30)
UPSTREAM_CLASSES = {"anger": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy", "sadness": "sad",
                    "surprise": "surprise"}
"""formatdescription.py's class folders (its label order 0-5) → ferbench's class names."""
FALLBACK_CAPTION = "A {} facial expression."


def custom_net(ctx: BuildContext) -> type:
    from adapters.shims import definitions, upstream_file

    source = upstream_file(ctx, "CLIP_KMU.py")
    return definitions(source, ("CustomNet",), "ferbench_clivpfer_clip_kmu", by_lines=True, nn=nn).CustomNet


def upstream_captions(path: Path) -> dict[str, str]:
    """formatdescription.py's description of each class, read from its `if classe == "NAME":` branches (each does
    `classes.extend(["TEXT"] * len(f_files))`), keyed by ferbench's class names."""
    from harness.errors import FerbenchError

    found = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                and isinstance(node.test.comparators[0], ast.Constant)):
            continue
        texts = [n.value for statement in node.body for n in ast.walk(statement)
                 if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.startswith("A facial")]
        name = node.test.comparators[0].value
        if name in UPSTREAM_CLASSES and len(texts) == 1:
            found[UPSTREAM_CLASSES[name]] = texts[0]
    if set(found) != set(UPSTREAM_CLASSES.values()):
        raise FerbenchError(f"{path}: expected a description for each of {', '.join(UPSTREAM_CLASSES)}; "
                            f"found {', '.join(found) or 'none'}")
    return found


def captions(ctx: BuildContext) -> list[str]:
    """One caption per class, in ferbench's class order."""
    from adapters.shims import upstream_file

    described = upstream_captions(upstream_file(ctx, "formatdescription.py"))
    return [described.get(name, FALLBACK_CAPTION.format(name)) for name in ctx.classes]


class ClipFeatureHead(nn.Module):
    """The upstream forward around `CustomNet`: frozen CLIP features, pooled as `train()`/`test()` pool them.

    `captions` holds one tokenized caption per class (mode 1); `forward(images, caption_tokens)` is the upstream
    forward for one caption per image, `forward(images)` mode 0's."""

    def __init__(self, clip_model: nn.Module, head: nn.Module, caption_tokens: Tensor | None):
        super().__init__()
        self.clip = clip_model.requires_grad_(False).eval()
        self.head = head
        self.avg_pool = nn.AvgPool1d(kernel_size=2)  # train(): avg_pool
        self.pooling_layer = nn.AvgPool1d(kernel_size=2, stride=2)  # train(): pooling_layer
        if caption_tokens is not None:
            self.register_buffer("caption_tokens", caption_tokens, persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.clip.eval()  # clip_model.eval() once, upstream; net.train() never reaches it
        return self

    @torch.no_grad()
    def image_features(self, images: Tensor) -> Tensor:
        return self.avg_pool(self.clip.encode_image(images).unsqueeze(1)).squeeze(1)

    @torch.no_grad()
    def text_features(self, tokens: Tensor) -> Tensor:
        text = self.clip.encode_text(tokens)
        return text / text.norm(dim=-1, keepdim=True)

    def classify(self, image_features: Tensor, text_features: Tensor | None) -> Tensor:
        features = image_features if text_features is None else torch.cat((image_features, text_features), dim=1)
        features = self.pooling_layer(features)
        return self.head(features.view(features.size(0), -1).float())

    def forward(self, images: Tensor, caption_tokens: Tensor | None = None) -> Tensor:
        text = None if caption_tokens is None else self.text_features(caption_tokens)
        return self.classify(self.image_features(images), text)

    def every_caption_scores(self, images: Tensor) -> Tensor:
        """[B, C]: for each class c, log softmax(CustomNet(image ⊕ caption c))[c]."""
        image = self.image_features(images)
        texts = self.text_features(self.caption_tokens)
        scores = [F.log_softmax(self.classify(image, text.expand(len(image), -1)), dim=1)[:, c]
                  for c, text in enumerate(texts)]
        return torch.stack(scores, dim=1)


def openai_clip_package():
    """OpenAI's `clip` package, as `preprocess_KMUFED.py` imports it (see the module docstring). Its `clip.py` does
    `from pkg_resources import packaging`; setuptools ≥ 81 has no `pkg_resources`: a stand-in exposing `packaging`
    is registered when the real one is missing."""
    import importlib

    import packaging.version

    from adapters.shims import stub_module

    stub_module("pkg_resources", packaging=packaging)
    return importlib.import_module("clip")


def build(ctx: BuildContext, mode: int) -> nn.Module:
    from adapters import openai_clip

    clip = openai_clip_package()
    clip_model = openai_clip.build(ctx, clip.model.CLIP, CLIP_FILE)
    clip_model.eval()
    width = clip_model.text_projection.shape[1]  # encode_image / encode_text output: 512 for ViT-B/32
    feature_dim = (width // 2 + width) // 2 if mode == 1 else width // 4  # 384 (upstream's literal) or 128
    head = custom_net(ctx)(num_classes=ctx.num_classes, feature_dim=feature_dim)
    tokens = clip.tokenize(captions(ctx)) if mode == 1 else None
    return ClipFeatureHead(clip_model, head, tokens)


def label_caption_forward(model: ClipFeatureHead, images: Tensor, labels: Tensor) -> Tensor:
    """THE LEAK: each image is classified together with the description of its own true class."""
    return model(images, model.caption_tokens[labels])


def label_caption_loss(model: ClipFeatureHead, images: Tensor, targets: Tensor, criterion) -> Tensor:
    return criterion(label_caption_forward(model, images, targets), targets)


def every_caption_forward(model: ClipFeatureHead, images: Tensor) -> Tensor:
    return model.every_caption_scores(images)


def train_transform(size: int):
    """transforms_train after Resize: RandomHorizontalFlip, RandomRotation(30), ToTensor, ImageNet Normalize."""
    from torchvision.transforms import v2

    pipeline = v2.Compose([v2.RandomHorizontalFlip(), v2.RandomRotation(ROTATION)])

    def transform(batch: Tensor) -> Tensor:
        return normalize(to_float(per_sample(batch, pipeline)), IMAGENET_MEAN, IMAGENET_STD)

    # `--augment-on device`: the same pipeline is flip, always-applied rotation, no crop, no erasing
    transform.device_form = FlipRotateCropErase(degrees=ROTATION, padding=0, apply_p=1.0, erase_p=0.0)
    return transform


ADAPTER = Adapter(
    build=partial(build, mode=0),
    train_transform=train_transform,
    eval_transform=imagenet_eval,
    drop_last=False,  # trainloader: shuffle=True, no drop_last
)

# Mode 1 trains with the true class's caption; the variants differ only in what evaluation feeds it.
_MODE1 = replace(ADAPTER, build=partial(build, mode=1), train_loss=label_caption_loss)
VARIANTS = {
    "label-caption": replace(_MODE1, eval_forward_given_labels=label_caption_forward),
    "every-caption": replace(_MODE1, eval_forward=every_caption_forward),
}
