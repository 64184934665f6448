"""CEPrompt (Zhou et al.), HaoliangZhou/CEPrompt: `models/clip_vit.py::CLIPVIT(args, clip_model)` on OpenAI CLIP
ViT-B/16, trained in two stages that make one run.

Stage `eva` (`train_fer_first_stage.py`, `engine_fer_first_stage.py::train`, `stage1.sh`): the CLIP visual tower
fine-tuned against fixed text prompts "a photo of a {class} facial expression, a type of facial expression.";
logits = 0.5·top-16 patch–text cosine + 0.5·CLS–text cosine (each L2-normalised over classes, no temperature).
Loss CE + 1·L1(student CLS feature, frozen CLIP teacher's CLS feature). Patch embedding, class/positional
embeddings, `ln_pre` and blocks 0–1 are frozen, the rest trains with AdamW and layer-wise lr decay 0.65
(`utils/optimizer.py::build_optimizer`, `utils/lr_decay.py`) through the adapter's `param_groups`.

Stage `cat` (`train_fer_second_stage.py`, `engine_fer_second_stage.py`, `stage2.sh`): a CLIPVIT with
`stage2_name="cat"` over the stage-1 model (its validation-selected weights; upstream loads the stage-1 checkpoint
non-strictly into a fresh CLIP, which gives the same model: stage-1 visual tower, the CLIP file's text tower);
only the multi-modal prompt learner (`models/cat.py::CATPromptLearner`, 2 contexts from "a photo of", depth 9)
trains, with SGD; logits from `forward_cat`, loss CE.

Input 224, ImageNet mean/std (the RAF-DB loader `dataloader/rafdb/rafdb.py`); train: horizontal flip.
Upstream's `Resize(224, bicubic)` is the frame cache's bilinear resize here.

Workarounds:
- `clip.load(path, jit=False)` is replaced by adapters/openai_clip.py: the declared, sha256-checked `ViT-B-16.pt`
  read the same way (TorchScript archive → state dict), strictly loaded, never downloaded; or random init, drawn
  from the run's seed for both the student and the teacher, so the teacher starts equal to the student as with
  the real file.
- Stage 1's text tower is reached only through the bound method `clip_model.encode_text`, so `.to(device)` never
  moves it (upstream loads CLIP straight onto CUDA). Its modules are registered, frozen, as `ferbench_text`, and the
  tokenized label prompts as a non-persistent buffer, so both follow the model to the run's device.
- The teacher is the frozen visual tower of a second CLIP, kept in the criterion (upstream keeps the whole CLIP
  and calls `encode_image`, i.e. the visual tower on `image.type(dtype)`).
- Stage-2 shims, for a half-finished rename upstream:
  1. `models.clip_vit` instantiates `MultiModalPromptLearner`, a name it never imports: it is aliased to
     `models.cat.CATPromptLearner` (the class `clip_vit.py` does import, under its new name).
  2. The engine calls `model.forward_maple`, which no longer exists: the adapter calls `forward_cat`.
  3. `CATPromptLearner` sends the class-name tokens to `args.device` ("cuda" in the upstream script); here
     `args.device` is the device of the CLIP token embedding it is applied to (where the stage-1 model is).
  The engine's third defect, `utils.misc.is_main_process` (never defined), needs no shim: the engine and training
  scripts are not imported (the harness loop replaces them).
- Upstream stage 2 runs under CUDA AMP (fp16 autocast + GradScaler); the harness trains in fp32.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType, SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from adapters.augment import IMAGENET_MEAN, IMAGENET_STD, imagenet_eval, normalize, random_hflip, to_float
from adapters.contract import Adapter, BuildContext, Stage

CLIP_FILE = "ViT-B-16.pt"
PROMPT = "a photo of a {} facial expression, a type of facial expression."  # train_fer_first_stage.py main()
STAGE1_ARGS = dict(alpha=0.5, topk=16, stage2_name=None)  # stage1.sh: --alpha 5e-1 --topk 16
STAGE2_ARGS = dict(  # stage2.sh
    alpha=0.5, topk=16, stage2_name="cat", ctxinit="a photo of", prompts_depth=9, n_ctx=2, use_class_invariant=False,
)
LAMBDA = 1.0  # stage1.sh --lamda 1: weight of the L1 distillation term
FIX_LAYER = 2  # --fix_layer 2: layer ids 0 (embeddings, ln_pre) to 2 (block 1) stay frozen
LAYER_DECAY = 0.65  # --layer_decay


def bundled_clip(ctx: BuildContext) -> ModuleType:
    """CEPrompt's own top-level `clip` (modified: its visual tower also returns patch tokens)."""
    from harness.errors import FerbenchError

    clip = importlib.import_module("clip")
    where = Path(getattr(clip, "__file__", None) or "/").resolve()
    if ctx.upstream_dir is None or not where.is_relative_to(Path(ctx.upstream_dir).resolve() / "clip"):
        raise FerbenchError(f"`clip` resolves to {where}, not CEPrompt's bundled {ctx.upstream_dir}/clip")
    return clip


def class_words(classes: tuple[str, ...]) -> list[str]:
    """Upstream's words for ferbench's classes: `dataloader/data_utils.py::get_labelname` lists them in the order
    of the AffectNet labels (0 neutral … 6 anger; "disgusted" for disgust); other classes keep their names."""
    from dataloader.data_utils import get_labelname

    from harness.data.vocabulary import ENCODINGS

    upstream = get_labelname(SimpleNamespace(dataset="affectnet")).label_nms
    words = {ENCODINGS["affectnet"][str(label)]: word for label, word in enumerate(upstream)}
    return [words.get(name, name) for name in classes]


class TextTower(nn.Module):
    """The CLIP text modules `clip_model.encode_text` uses, registered so that they move with the model."""

    def __init__(self, clip_model: nn.Module):
        super().__init__()
        self.transformer, self.token_embedding, self.ln_final = clip_model.transformer, clip_model.token_embedding, clip_model.ln_final
        self.positional_embedding, self.text_projection = clip_model.positional_embedding, clip_model.text_projection


def _clip(ctx: BuildContext) -> nn.Module:
    from adapters import openai_clip

    # the student and the teacher are both drawn from the run's seed: equal at the start, as two loads of one file
    return openai_clip.build(ctx, bundled_clip(ctx).model.CLIP, CLIP_FILE, seed=torch.initial_seed())


def build_eva(ctx: BuildContext) -> nn.Module:
    from models.clip_vit import CLIPVIT
    from utils.misc import convert_models_to_fp32
    from utils.optimizer import build_optimizer

    clip_model = _clip(ctx)
    model = CLIPVIT(SimpleNamespace(**STAGE1_ARGS), clip_model)
    convert_models_to_fp32(model)
    model.ferbench_text = TextTower(clip_model).requires_grad_(False)
    prompts = [PROMPT.format(word) for word in class_words(ctx.classes)]
    model.register_buffer("ferbench_label_token", bundled_clip(ctx).tokenize(prompts), persistent=False)
    model.__dict__["ferbench_clip"] = clip_model  # unregistered: stage 2 builds on this CLIP
    # upstream's optimizer builder freezes what its layer-decay groups leave out (embeddings, ln_pre, blocks 0-1);
    # the optimizer it returns is dropped: the harness builds its own from `param_groups`
    build_optimizer(SimpleNamespace(fix_layer=FIX_LAYER, weight_decay=0.0, layer_decay=LAYER_DECAY, lr=1.0), model)
    return model


def eva_param_groups(model: nn.Module, criterion, recipe) -> list[dict]:
    """`utils/lr_decay.py::param_groups_lrd`: weight decay on ≥2-D parameters, lr × 0.65^(13 − layer id) as
    `lr_sched.adjust_learning_rate` applies it; the head group (scale 1) first, so the loop records recipe.lr."""
    import utils.lr_decay as lrd

    groups, _ = lrd.param_groups_lrd(model, FIX_LAYER, recipe.weight_decay, layer_decay=LAYER_DECAY)
    for group in groups:
        group["lr"] = recipe.lr * group["lr_scale"]
    return sorted(groups, key=lambda group: -group["lr_scale"])


class DistillationLoss(nn.Module):
    """engine_fer_first_stage.py::train: CE(logits) + λ·L1(student CLS feature (normalised), teacher CLS feature
    (as `encode_image` returns it, not normalised)); the teacher runs without gradients."""

    def __init__(self, teacher: nn.Module):
        super().__init__()
        self.teacher = teacher.requires_grad_(False)

    def forward(self, outputs, targets, images):
        logits, _, dist_feat = outputs
        with torch.no_grad():
            _, teacher_feat = self.teacher(images.type(self.teacher.conv1.weight.dtype))
        return F.cross_entropy(logits, targets) + LAMBDA * F.l1_loss(dist_feat, teacher_feat.float())


def eva_criterion(ctx: BuildContext) -> DistillationLoss:
    return DistillationLoss(_clip(ctx).visual)


def eva_forward(model: nn.Module, images):
    return model(images, model.ferbench_label_token)


def eva_train_loss(model: nn.Module, images, targets, criterion: DistillationLoss):
    return criterion(eva_forward(model, images), targets, images)


def build_cat(ctx: BuildContext) -> nn.Module:
    import models.clip_vit as clip_vit
    from models.cat import CATPromptLearner
    from utils.misc import convert_models_to_fp32
    from utils.optimizer import build_optimizer

    clip_model = ctx.previous.__dict__["ferbench_clip"]
    # stage 2 starts without stage 1's last gradients (a fresh process upstream); `convert_models_to_fp32` also
    # tests `if p.grad:`, which raises on a gradient tensor
    ctx.previous.zero_grad(set_to_none=True)
    # shim 1: clip_vit.py still names the prompt learner by its old name, which it never imports
    clip_vit.MultiModalPromptLearner = CATPromptLearner
    args = SimpleNamespace(
        **STAGE2_ARGS, label_nms=class_words(ctx.classes), input_size=ctx.input_size,
        device=clip_model.token_embedding.weight.device,  # shim 3: upstream's "cuda"; here where the CLIP is
    )
    model = clip_vit.CLIPVIT(args, clip_model)
    convert_models_to_fp32(model)
    # upstream's stage-2 optimizer builder: only `prompt_learner` parameters keep requires_grad (its SGD is dropped)
    build_optimizer(SimpleNamespace(stage2_name="cat", lr=1.0, momentum=0.9, weight_decay=0.0), model, stage="stage2")
    return model


def cat_forward(model: nn.Module, images):
    return model.forward_cat(images)  # shim 2: the engine calls the removed `forward_maple`


def cat_param_groups(model: nn.Module, criterion, recipe) -> list[dict]:
    """utils/optimizer.py (stage2, cat): SGD over the prompt learner's parameters only."""
    return [{"params": [p for name, p in model.named_parameters() if "prompt_learner" in name], "lr": recipe.lr}]


def train_transform(size: int):
    """rafdb.py train: Resize(224, bicubic) (the cache), RandomHorizontalFlip, ToTensor, ImageNet Normalize."""
    return lambda batch: normalize(random_hflip(to_float(batch)), IMAGENET_MEAN, IMAGENET_STD)


def scores(outputs):
    return outputs[0]


CAT = Adapter(
    build=build_cat,
    train_transform=train_transform,
    eval_transform=imagenet_eval,
    logits=scores,
    train_loss=lambda model, images, targets, criterion: criterion(cat_forward(model, images)[0], targets),
    eval_forward=cat_forward,
    param_groups=cat_param_groups,
    drop_last=False,  # rafdb train loader: shuffle, no drop_last
)

ADAPTER = Adapter(
    build=build_eva,
    train_transform=train_transform,
    eval_transform=imagenet_eval,
    criterion=eva_criterion,
    logits=scores,
    train_loss=eva_train_loss,
    eval_forward=eva_forward,
    param_groups=eva_param_groups,
    drop_last=False,
    stage="eva",
    stages=(Stage("cat", CAT),),
)
