"""CEPrompt adapter: class words, stage-1 freezing, layer-decay groups and distillation loss, the teacher equal to
the student at the start, stage 2 built from stage-1 weights with its three shims, and both stages through the
harness's stage runner. Unit tests use a CLIP with fewer layers at 64 px (stage 2's prompt learner hard-codes
widths 512 and 768, so widths stay)."""

from __future__ import annotations

import sys
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from adapters.augment import IMAGENET_MEAN, IMAGENET_STD
from adapters.contract import BuildContext
from harness.config import Recipe
from harness.data.vocabulary import ENCODINGS
from harness.errors import FerbenchError
from tests.adapters.upstream import drop_pkg_resources_stub, fetched, on_path

UPSTREAM, pytestmark = fetched("ceprompt")
TOP_LEVEL = ("models", "clip", "dataloader", "utils")  # shared with DFER-CLIP and others
TINY = (512, 64, 4, 768, 16, 77, 49408, 512, 8, 1)  # 4 visual blocks, 1 text block, 64 px (16 patches for top-16)
CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
STAGE1 = Recipe(optimizer="adamw", lr=1e-4, weight_decay=5e-4, schedule="cosine", schedule_unit="step", warmup_epochs=5,
                min_lr=1e-8, epochs=50, batch_size=128)
FROZEN_STAGE1 = ("conv1.", "class_embedding", "positional_embedding", "ln_pre.", "transformer.resblocks.0.",
                 "transformer.resblocks.1.", "ferbench_text.")


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    yield from on_path(UPSTREAM, TOP_LEVEL, cleanup=drop_pkg_resources_stub)


@pytest.fixture(scope="module")
def ceprompt():
    from adapters import ceprompt

    return ceprompt


@pytest.fixture
def tiny(monkeypatch):
    from adapters import openai_clip

    monkeypatch.setitem(openai_clip.ARCHITECTURES, "ViT-B-16.pt", TINY)


def ctx(**kw) -> BuildContext:
    return BuildContext(**{"num_classes": 7, "input_size": 64, "pretrained": False, "upstream_dir": UPSTREAM,
                           "classes": CLASSES, **kw})


def images(n=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)


def test_class_words_are_upstreams_for_the_same_expressions(ceprompt):
    from dataloader.data_utils import get_labelname

    raf_order = tuple(ENCODINGS["rafdb"][str(i)] for i in range(1, 8))  # RAF-DB labels 1..7
    assert ceprompt.class_words(raf_order) == get_labelname(SimpleNamespace(dataset="rafdb")).label_nms
    assert ceprompt.class_words(CLASSES + ("contempt",)) == [
        "neutral", "happy", "sad", "surprise", "fear", "disgusted", "anger", "contempt"]


def test_the_clip_must_be_ceprompts_bundled_one(ceprompt, monkeypatch):
    import types

    assert ceprompt.bundled_clip(ctx()).__file__.startswith(str(UPSTREAM / "clip"))
    monkeypatch.setitem(sys.modules, "clip", types.ModuleType("clip"))
    with pytest.raises(FerbenchError, match="not CEPrompt's bundled"):
        ceprompt.bundled_clip(ctx())


def test_random_init_vit_b16_stage_one_freezes_as_upstream(ceprompt):
    torch.manual_seed(0)
    model = ceprompt.build_eva(ctx(input_size=224))
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 71_273_472
    for name, param in model.named_parameters():
        assert param.requires_grad != name.startswith(FROZEN_STAGE1), name
    prompts = model.ferbench_label_token
    assert prompts.shape == (7, 77) and "ferbench_label_token" not in model.state_dict()


def test_layer_decay_groups_and_their_learning_rates(ceprompt, tiny):
    torch.manual_seed(0)
    model = ceprompt.build_eva(ctx())
    groups = ceprompt.eva_param_groups(model, None, STAGE1)
    assert {id(p) for g in groups for p in g["params"]} == {id(p) for p in model.parameters() if p.requires_grad}
    assert groups[0]["lr"] == pytest.approx(1e-4) and groups[0]["weight_decay"] == 5e-4
    by_param = {id(p): g for g in groups for p in g["params"]}
    layers = len(model.transformer.resblocks) + 1
    block = model.transformer.resblocks[2]  # first trained block, layer id 3
    assert by_param[id(block.mlp.c_fc.weight)]["lr"] == pytest.approx(1e-4 * 0.65 ** (layers - 3))
    assert by_param[id(block.mlp.c_fc.bias)]["weight_decay"] == 0.0  # 1-D: no decay
    assert by_param[id(model.projection_dist)]["lr"] == pytest.approx(1e-4)


def test_distillation_loss_against_a_frozen_teacher_equal_to_the_student(ceprompt, tiny):
    from harness.run.loop import Trainer

    torch.manual_seed(3)
    model = ceprompt.build_eva(ctx())
    criterion = ceprompt.eva_criterion(ctx())
    student = {k: v.clone() for k, v in model.ferbench_clip.visual.state_dict().items()}
    teacher = criterion.teacher.state_dict()
    assert student.keys() == teacher.keys() and all(torch.equal(student[k], teacher[k]) for k in student)
    assert not any(p.requires_grad for p in criterion.teacher.parameters())

    x = ceprompt.train_transform(64)(images())
    targets = torch.tensor([1, 5])
    logits, patches, cls = ceprompt.eva_forward(model, x)
    assert logits.shape == (2, 7) and patches.shape == (2, 16, 512)
    _, teacher_cls = criterion.teacher(x)
    expected = F.cross_entropy(logits, targets) + F.l1_loss(cls, teacher_cls)
    assert ceprompt.eva_train_loss(model, x, targets, criterion).item() == pytest.approx(expected.item(), rel=1e-5)

    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    teacher_before = {k: v.clone() for k, v in criterion.teacher.state_dict().items()}
    trainer = Trainer(model, ceprompt.ADAPTER, criterion, STAGE1, ctx())
    trainer.step(x, targets, epoch=1)
    assert all(torch.equal(p.detach(), frozen[n]) for n, p in model.named_parameters() if n in frozen)
    assert all(torch.equal(v, teacher_before[k]) for k, v in criterion.teacher.state_dict().items())
    assert not torch.equal(model.projection_dist.detach(), student["proj"])


def test_the_text_tower_follows_the_model_when_moved(ceprompt, tiny):
    """Stage 1 reaches the text tower only through `clip_model.encode_text`; a dtype move stands in for a device move."""
    torch.manual_seed(0)
    model = ceprompt.build_eva(ctx()).double()
    clip_model = model.ferbench_clip
    assert clip_model.transformer.resblocks[0].mlp.c_fc.weight.dtype == torch.float64
    assert clip_model.token_embedding.weight.dtype == clip_model.text_projection.dtype == torch.float64
    assert model.ferbench_label_token.dtype == torch.int64  # a buffer: moves with the model, keeps its dtype


def test_stage_two_is_built_from_stage_one_and_trains_only_the_prompt_learner(ceprompt, tiny):
    import models.clip_vit as clip_vit
    from models.cat import CATPromptLearner

    torch.manual_seed(0)
    first = ceprompt.build_eva(ctx())
    text_before = {k: v.clone() for k, v in first.ferbench_text.state_dict().items()}
    with torch.no_grad():  # stand-in for stage-1 training; leaves gradients behind as training does
        first.transformer.resblocks[3].mlp.c_fc.weight.add_(1.0)
    ceprompt.eva_train_loss(first, torch.zeros(2, 3, 64, 64), torch.tensor([0, 1]), ceprompt.eva_criterion(ctx())).backward()
    second = ceprompt.build_cat(replace(ctx(), previous=first))

    assert clip_vit.MultiModalPromptLearner is CATPromptLearner and isinstance(second.prompt_learner, CATPromptLearner)
    assert torch.equal(second.transformer.resblocks[3].mlp.c_fc.weight, first.transformer.resblocks[3].mlp.c_fc.weight)
    for key, value in second.text_encoder.state_dict().items():
        assert torch.equal(value, text_before[key]), key
    trainable = {n for n, p in second.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("prompt_learner.") for n in trainable)
    groups = ceprompt.CAT.param_groups(second, None, Recipe(optimizer="sgd", lr=2e-3, epochs=10, batch_size=128))
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in second.parameters() if p.requires_grad}
    assert second.prompt_learner.token_prefix.device == first.ferbench_clip.token_embedding.weight.device
    scores, _, _ = ceprompt.CAT.eval_forward(second, ceprompt.ADAPTER.eval_transform(64)(images()))
    assert scores.shape == (2, 7) and torch.isfinite(scores).all()


def test_transforms_flip_and_normalise_with_imagenet_statistics(ceprompt):
    batch = images(4, 8)
    out = ceprompt.ADAPTER.eval_transform(8)(batch)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(out * std + mean, batch.float() / 255, atol=1e-6)
    torch.manual_seed(0)
    flipped = ceprompt.train_transform(8)(batch.repeat(16, 1, 1, 1))
    plain = ceprompt.ADAPTER.eval_transform(8)(batch.repeat(16, 1, 1, 1))
    same = [torch.equal(a, b) for a, b in zip(flipped, plain)]
    assert any(same) and not all(same)
    assert all(s or torch.equal(a, b.flip(-1)) for s, a, b in zip(same, flipped, plain))


def test_both_stages_run_through_the_stage_runner(ceprompt, tiny):
    from harness.run.loop import Split, train
    from harness.run.stages import train_stages

    labels = torch.arange(6) % 7
    data = {part: Split(images=images(6, seed=i), labels=labels) for i, part in enumerate(("train", "val", "test"))}
    seen = []

    def spy(model, stage_adapter, **kwargs):
        seen.append((stage_adapter.stage, model.stage2_name))
        return train(model, stage_adapter, **kwargs)

    stage2 = Recipe(optimizer="sgd", lr=2e-3, weight_decay=5e-4, schedule="cosine", schedule_unit="step",
                    warmup_epochs=2, min_lr=1e-8, epochs=1, batch_size=3).model_dump()
    torch.manual_seed(0)
    model, outcome, summaries = train_stages(
        ceprompt.ADAPTER, ctx(), Recipe(**{**STAGE1.model_dump(), "epochs": 1, "batch_size": 3}),
        {"cat": stage2}, run_loop=spy, data=data, selection="val_balanced_accuracy", device=torch.device("cpu"), seed=0,
    )
    assert list(summaries) == ["eva", "cat"] and seen == [("eva", None), ("train", "cat")]
    assert type(model).__name__ == "CLIPVIT" and model.stage2_name == "cat"
    assert 0 <= summaries["cat"]["balanced_accuracy"] <= 1
