"""LNSU-Net (Zhang et al. 2023, "Leave No Stone Unturned"), zyh-uaiaaaa/Mine-Extra-Knowledge.

Model: `code/backbones/swin.py::SwinTransformer(num_classes=512)` (what `get_model('swin_t')` builds) wrapped by
`code/expression/models.py::SwinTransFER(swin, swin_num_features=768, num_classes=C, cam=True)`; outputs
`(logits [B,C], class activation maps [B,C,7,7])`, prediction argmax of the logits. Input 112 only.

Training as `code/train_exp.py::main`: each step forwards the augmented image and its exact horizontal flip
(`datasets.py`: `img1 = RandomHorizontalFlip(p=1.0)(img)`, after all augmentation) — the `train_loss` hook —
and minimises `LSR2(0.3)(logits, y) + 0.1 · mean_n(Σ_c w_c · mean_hw ACLoss(cam, cam_flipped))`, where the
class weights w_c = 0.1·N/n_c re-balance both the smoothed labels and the flip-consistency of the CAMs.
Augmentation: timm `create_transform` with `configs/exp.py`'s arguments (RandAugment `rand-m9-mstd0.5-inc1`,
flip, RandomErasing p 0.25 'pixel'), mean = std = 0.5. Workarounds:

- `import expression` needs tensorboard and pandas, and `train_exp.py` imports mxnet-era utilities and starts
  an NCCL process group at import: `swin.py` and `models.py` are loaded by file path under private names, and
  only the definitions `LSR2`, `ACLoss` and `generate_flip_grid` of `train_exp.py` are compiled from its source
  via `ast`; nothing else of the script runs.
- The class weights are hard-coded RAF-DB train frequencies in RAF's label order, twice: in
  `LSR2._smooth_label` and in `main` (`.view(7, 1)` for the CAM loss). Both are recomputed from
  `ctx.class_counts` in `ctx.classes` order (ferbench's order differs from RAF's, and other datasets have other
  counts or 8 classes): the literal list in `LSR2` is replaced, in the compiled syntax tree, by
  `self.balance_weight`, after checking it still equals 0.1·N/n_c of RAF-DB's train split; the
  `.view(C, 1)` product of `main` is written out in `LNSULoss`.
- `start_0.pt` (key `state_dict_backbone`) is loaded by the training script, not the constructor: random
  init simply skips it; with `--pretrained` it goes strictly into `model.encoder`, as `train_exp.py` does.
- Swin's blocks enter `torch.cuda.amp.autocast(True)` themselves (qkv, proj and MLP in fp16 on CUDA whatever
  the harness does); upstream trained with a GradScaler, so the recipe sets `loss_scaling` (the loop's
  GradScaler, unscaled before clipping as upstream). On CPU these contexts do nothing. Kept as upstream.
- Pillow 13 raises on Posterize with 0 bits, which timm's RandAugment reaches: `shims.patch_posterize` on
  `timm.data.auto_augment.NAME_TO_OP` before the transform is built.
"""

from __future__ import annotations

import ast
import sys
import types

from torch import Tensor, nn

from adapters.contract import Adapter, BuildContext

WEIGHTS = "start_0.pt"
INPUT_SIZE = 112        # the CAM is viewed as 7x7 (`models.py`), Swin's patch grid is fixed at 112
SWIN_FEATURES = 768     # SwinTransFER(swin_num_features=768)
EMBEDDING = 512         # get_model('swin_t'): SwinTransformer(num_classes=512); start_0.pt holds `feature.*` for it
SMOOTHING = 0.3         # LSR2(0.3)
AC_WEIGHT = 0.1         # loss = LSR2(...) + 0.1 * flip_loss.mean()
CLASS_WEIGHT_SCALE = 0.1  # hard-coded weights are 0.1 * N / n_c of RAF-DB's train split
MEAN = STD = (0.5, 0.5, 0.5)
RAF_TRAIN_COUNTS = (1290, 281, 717, 4772, 1982, 705, 2524)  # RAF-DB basic train, RAF order (Surprise … Neutral)
# configs/exp.py arguments of timm's create_transform (expression/__init__.py::get_analysis_train_dataloader)
AUGMENT = dict(
    scale=(1.0, 1.0), ratio=(1.0, 1.0), is_training=True, color_jitter=0.4, auto_augment="rand-m9-mstd0.5-inc1",
    re_prob=0.25, re_mode="pixel", re_count=1, interpolation="bicubic", mean=list(MEAN), std=list(STD),
)


def class_weights(counts) -> list[float]:
    """w_c = 0.1·N/n_c, the formula behind upstream's hard-coded RAF-DB list. A class absent from the training
    split (never a target) counts as one sample so that the smoothing weights stay finite."""
    total = sum(counts)
    return [CLASS_WEIGHT_SCALE * total / max(n, 1) for n in counts]


class _BalanceWeightFromInstance(ast.NodeTransformer):
    """`torch.tensor([0.951…, …])` in `LSR2._smooth_label` → `torch.tensor(self.balance_weight)`."""

    def __init__(self):
        self.replaced: list[list[float]] = []

    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        func = node.func
        if (
            isinstance(func, ast.Attribute) and func.attr == "tensor" and node.args
            and isinstance(node.args[0], ast.List)
            and all(isinstance(e, ast.Constant) and isinstance(e.value, float) for e in node.args[0].elts)
        ):
            self.replaced.append([e.value for e in node.args[0].elts])
            self_ = ast.Name(id="self", ctx=ast.Load())
            node.args[0] = ast.Attribute(value=self_, attr="balance_weight", ctx=ast.Load())
        return node


def upstream_losses(ctx: BuildContext) -> types.ModuleType:
    """`LSR2`, `ACLoss`, `generate_flip_grid` compiled from `code/train_exp.py`'s own source, nothing else."""
    private = "_ferbench_lnsunet_train_exp"
    if private in sys.modules:
        return sys.modules[private]
    import math

    import torch
    import torch.nn.functional as F
    from torch.autograd import Variable

    from adapters.shims import upstream_file
    from harness.errors import FerbenchError

    path = upstream_file(ctx, "code/train_exp.py")
    names = ("ACLoss", "generate_flip_grid", "LSR2")
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    picked = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name in names]
    missing = set(names) - {n.name for n in picked}
    if missing:
        raise FerbenchError(f"{path}: upstream no longer defines {sorted(missing)}")
    fix = _BalanceWeightFromInstance()
    for node in picked:
        if node.name == "LSR2":
            fix.visit(node)
    raf = class_weights(RAF_TRAIN_COUNTS)
    found = fix.replaced[0] if len(fix.replaced) == 1 else []
    if len(found) != len(raf) or not all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(found, raf)):
        raise FerbenchError(f"{path}: LSR2's class weights are no longer the RAF-DB list (0.1·N/n_c)")
    module = types.ModuleType(private)
    module.__file__ = str(path)
    module.__dict__.update(torch=torch, nn=nn, F=F, Variable=Variable)
    code = compile(ast.fix_missing_locations(ast.Module(body=picked, type_ignores=[])), str(path), "exec")
    exec(code, module.__dict__)
    sys.modules[private] = module
    return module


def build(ctx: BuildContext) -> nn.Module:
    from adapters.shims import load_module_from, upstream_file
    from harness.errors import FerbenchError

    if ctx.input_size != INPUT_SIZE:
        raise FerbenchError(f"LNSU-Net runs at input_size {INPUT_SIZE} only (7x7 CAM), not {ctx.input_size}")
    swin = load_module_from(upstream_file(ctx, "code/backbones/swin.py"), "_ferbench_lnsunet_swin")
    models = load_module_from(upstream_file(ctx, "code/expression/models.py"), "_ferbench_lnsunet_models")
    model = models.SwinTransFER(
        swin=swin.SwinTransformer(num_classes=EMBEDDING), swin_num_features=SWIN_FEATURES,
        num_classes=ctx.num_classes, cam=True,
    )
    if ctx.pretrained:
        from adapters.shims import load_weights
        from harness.weights import load_into

        checkpoint = load_weights(ctx, WEIGHTS)
        if not isinstance(checkpoint, dict) or "state_dict_backbone" not in checkpoint:
            got = type(checkpoint).__name__
            raise FerbenchError(f"{WEIGHTS}: expected a dict with 'state_dict_backbone' (train_exp.py), got {got}")
        # strict, as train_exp.py: model.module.encoder.load_state_dict(..., strict=True)
        load_into(model.encoder, checkpoint["state_dict_backbone"], what=f"{WEIGHTS} (MS-Celeb Swin-T)")
    return model


class LNSULoss:
    """`train_exp.py::main`'s loss on `(logits, cam, logits_flipped, cam_flipped)`, with the class weights of
    this training split."""

    def __init__(self, losses: types.ModuleType, weights: list[float]):
        import torch

        self.losses = losses
        self.lsr = losses.LSR2(SMOOTHING)
        self.lsr.balance_weight = list(weights)  # read by the compiled `_smooth_label` (see module docstring)
        self.weights = torch.tensor(weights)
        self.grid = losses.generate_flip_grid(7, 7)

    def __call__(self, outputs, targets: Tensor) -> Tensor:
        import torch

        logits, cam, _, cam_flipped = outputs
        flip_loss = self.losses.ACLoss(cam, cam_flipped, self.grid.to(cam.device), logits)  # N*C*7*7
        flip_loss = flip_loss.mean(dim=-1).mean(dim=-1)  # N*C
        # upstream: torch.mm(flip_loss, balance_weight.view(7, 1)) — C classes here, weights in ctx.classes order
        weights = self.weights.to(device=flip_loss.device, dtype=flip_loss.dtype).view(-1, 1)
        flip_loss = torch.mm(flip_loss, weights).squeeze()
        return self.lsr(logits, targets) + AC_WEIGHT * flip_loss.mean()


def criterion(ctx: BuildContext) -> LNSULoss:
    from harness.errors import FerbenchError

    if len(ctx.class_counts) != ctx.num_classes:
        raise FerbenchError("LNSU-Net weights its losses by class frequency: the build context lacks class_counts")
    return LNSULoss(upstream_losses(ctx), class_weights(ctx.class_counts))


def train_loss(model: nn.Module, images: Tensor, targets: Tensor, criterion) -> Tensor:
    """Two views per step, two forwards as in `main`: the augmented image and its exact horizontal flip."""
    logits, cam = model(images)
    logits_flipped, cam_flipped = model(images.flip(-1))
    return criterion((logits, cam, logits_flipped, cam_flipped), targets)


def train_transform(size: int):
    """timm `create_transform(input_size=112, ...)` per sample, from PIL as upstream's DataLoader applies it. Its
    RandomResizedCrop has scale = ratio = (1, 1), so on the cache's already-resized square image it is the
    identity (upstream resized the 100x100 RAF-DB faces to 112 there)."""
    from timm.data import auto_augment, create_transform
    from torchvision.transforms.v2 import functional as TF

    from adapters.augment import per_sample
    from adapters.shims import patch_posterize

    patch_posterize(auto_augment.NAME_TO_OP)  # before the ops are built: they keep references to the functions
    pipeline = create_transform(input_size=size, **AUGMENT)
    return lambda batch: per_sample(batch, lambda image: pipeline(TF.to_pil_image(image.cpu())).to(image.device))


def eval_transform(size: int):
    from adapters.augment import normalize, to_float

    return lambda batch: normalize(to_float(batch), MEAN, STD)  # datasets.py: Resize, ToTensor, Normalize(0.5, 0.5)


ADAPTER = Adapter(
    build=build,
    train_transform=train_transform,
    eval_transform=eval_transform,
    criterion=criterion,
    logits=lambda outputs: outputs[0],
    train_loss=train_loss,
)
