"""DFER-CLIP adapter: class descriptions in ferbench's class order, the bundled `clip` alias and `pkg_resources`
stub, random-init and file-loaded CLIP, which parameters train and at which learning rate, and the clip-consistent
train augmentation. Unit tests use a narrow CLIP (the model code takes any width; only the 512-d embedding that
the temporal net hard-codes is kept)."""

from __future__ import annotations

import random
import sys
import types
import warnings

import pytest
import torch

from adapters.contract import BuildContext
from harness.config import Recipe
from harness.data.vocabulary import ENCODINGS
from harness.errors import FerbenchError
from tests.adapters.upstream import drop_pkg_resources_stub, fetched, on_path

UPSTREAM, pytestmark = fetched("dferclip")
TOP_LEVEL = ("models", "clip", "dataloader")  # shared with CEPrompt (and `models` with POSTER, POSTER++)
TINY = (512, 64, 1, 64, 32, 77, 49408, 64, 1, 1)  # embed 512 (temporal net), 64 px, 1 narrow layer per tower
DFEW = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
MAFW = DFEW + ("contempt", "anxiety", "helplessness", "disappointment")
RECIPE = Recipe(optimizer="sgd", lr=1e-2, weight_decay=1e-4, momentum=0.9, schedule="multistep", milestones=(30, 40),
                epochs=50, batch_size=48)


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    yield from on_path(UPSTREAM, TOP_LEVEL, cleanup=drop_pkg_resources_stub)


@pytest.fixture(scope="module")
def dferclip():
    from adapters import dferclip

    return dferclip


@pytest.fixture
def tiny(monkeypatch):
    from adapters import openai_clip

    monkeypatch.setitem(openai_clip.ARCHITECTURES, "ViT-B-32.pt", TINY)


def ctx(**kw) -> BuildContext:
    return BuildContext(**{"num_classes": 7, "input_size": 64, "pretrained": False, "upstream_dir": UPSTREAM,
                           "classes": DFEW, **kw})


def upstream_name(line: str) -> str:
    """Text.py's class names ('happiness.') in ferbench's words."""
    name = line.rstrip(".")
    return {"happiness": "happy", "sadness": "sad"}.get(name, name)


@pytest.mark.parametrize("classes", [DFEW, MAFW])
def test_each_class_gets_the_description_of_its_own_upstream_label(dferclip, classes):
    from models import Text

    names = Text.class_names_7 if len(classes) == 7 else Text.class_names_11
    table = Text.class_descriptor_7 if len(classes) == 7 else Text.class_descriptor_11
    got = dferclip.descriptions(classes, Text)
    for name, line in zip(classes, got):
        assert upstream_name(names[table.index(line)]) == name
    assert sorted(got) == sorted(table) and got != list(table)  # a reordering, not upstream's order
    assert got[classes.index("happy")].startswith("a smiling mouth")
    assert got[classes.index("neutral")].startswith("relaxed facial muscles")


def test_upstream_label_order_is_the_dataset_encodings(dferclip):
    from models import Text

    assert [upstream_name(n) for n in Text.class_names_11] == [ENCODINGS["mafw"][str(i)] for i in range(11)]
    assert [upstream_name(n) for n in Text.class_names_7] == [ENCODINGS["dfew"][str(i)] for i in range(7)]


def test_a_class_without_a_description_is_refused(dferclip):
    from models import Text

    with pytest.raises(FerbenchError, match="no description for sleepy"):
        dferclip.descriptions(("happy", "sleepy"), Text)


def test_the_bundled_clip_is_the_top_level_clip_and_a_foreign_one_is_refused(dferclip, monkeypatch):
    clip = dferclip.bundled_clip()
    assert sys.modules["clip"] is clip and sys.modules["clip.clip"].__file__.startswith(str(UPSTREAM / "models" / "clip"))
    from clip.simple_tokenizer import SimpleTokenizer  # as Prompt_Learner.py imports it

    assert SimpleTokenizer.__module__ == "models.clip.simple_tokenizer"
    assert sys.modules["pkg_resources"].packaging.version.parse("1.8.0") > sys.modules["pkg_resources"].packaging.version.parse("1.7.1")
    monkeypatch.setitem(sys.modules, "clip", types.ModuleType("clip"))
    with pytest.raises(FerbenchError, match="different `clip`"):
        dferclip.bundled_clip()


def test_random_init_vit_b32_trains_visual_tower_temporal_net_and_contexts_only(dferclip):
    model = dferclip.build(ctx(input_size=224))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert sum(p.numel() for p in model.parameters()) == 153_416_449
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 89_988_352
    assert trainable and all(n.split(".")[0] in ("image_encoder", "temporal_net", "prompt_learner") for n in trainable)
    assert "prompt_learner.ctx" in trainable and model.prompt_learner.ctx.shape == (7, 8, 512)  # class-specific, 8
    assert not any(p.requires_grad for p in model.text_encoder.parameters())
    groups = dferclip.param_groups(model, None, RECIPE)
    assert [g["lr"] for g in groups] == pytest.approx([1e-2, 1e-5, 1e-3])
    assert {id(p) for g in groups for p in g["params"]} == {id(p) for p in model.parameters() if p.requires_grad}


def test_one_sgd_step_moves_the_trained_parts_and_leaves_the_text_encoder(dferclip, tiny):
    from harness.run.loop import Trainer

    torch.manual_seed(0)
    model = dferclip.build(ctx())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    clips = dferclip.train_transform(64)(torch.randint(0, 256, (2, 16, 3, 64, 64), dtype=torch.uint8))
    out = model(clips)
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    trainer = Trainer(model, dferclip.ADAPTER, torch.nn.functional.cross_entropy, RECIPE, ctx())
    assert [g["lr"] for g in trainer.optimizer.param_groups] == pytest.approx([1e-2, 1e-5, 1e-3])
    trainer.step(clips, torch.tensor([0, 3]), epoch=1)
    moved = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert {"prompt_learner.ctx", "image_encoder.proj"} <= moved and any(n.startswith("temporal_net") for n in moved)
    assert not any(n.startswith(("text_encoder", "clip_model_")) for n in moved)


def _save_jit(model, clip, path):
    """A TorchScript archive of a CLIP, the format of OpenAI's files."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model.eval(), (torch.zeros(1, 3, 64, 64), clip.tokenize(["a face"])), check_trace=False)
        torch.jit.save(traced, str(path))


def test_pretrained_clip_loads_from_the_torchscript_archive_or_a_state_dict(dferclip, tiny, tmp_path):
    from adapters import openai_clip

    clip = dferclip.bundled_clip()
    torch.manual_seed(1)
    source = clip.model.CLIP(*TINY)
    _save_jit(source, clip, tmp_path / "ViT-B-32.pt")
    torch.save(source.state_dict(), tmp_path / "plain.pt")
    for file in ("ViT-B-32.pt", "plain.pt"):
        torch.manual_seed(2)
        loaded = openai_clip.build(ctx(pretrained=True, weights={"ViT-B-32.pt": tmp_path / file}), clip.model.CLIP, "ViT-B-32.pt")
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), source.state_dict().values())), file
    torch.save({k: v for k, v in source.state_dict().items() if not k.startswith("visual.ln_post")}, tmp_path / "cut.pt")
    with pytest.raises(FerbenchError, match="partial load"):
        openai_clip.build(ctx(pretrained=True, weights={"ViT-B-32.pt": tmp_path / "cut.pt"}), clip.model.CLIP, "ViT-B-32.pt")


def test_a_pretrained_build_reads_only_the_declared_file(dferclip, tiny):
    with pytest.raises(FerbenchError, match="not declared"):
        dferclip.build(ctx(pretrained=True, weights={}))


def test_eval_frames_are_in_0_1_without_normalisation_and_images_are_refused(dferclip):
    batch = torch.randint(0, 256, (2, 16, 3, 8, 8), dtype=torch.uint8)
    out = dferclip.eval_transform(8)(batch)
    assert out.dtype == torch.float32 and torch.allclose(out * 255, batch.float())
    with pytest.raises(FerbenchError, match="video clips"):
        dferclip.eval_transform(8)(batch[:, 0])


def test_train_augmentation_draws_once_per_clip(dferclip):
    """Same crop, flip and brightness for all 16 frames of a clip (upstream's group transforms), different clips
    drawn independently."""
    random.seed(0)
    g = torch.Generator().manual_seed(0)
    frame = torch.randint(0, 256, (2, 1, 3, 32, 32), dtype=torch.uint8, generator=g)
    out = dferclip.train_transform(32)(frame.expand(2, 16, 3, 32, 32))
    assert out.shape == (2, 16, 3, 32, 32) and 0 <= out.min() and out.max() <= 1
    assert all(torch.equal(out[i, t], out[i, 0]) for i in range(2) for t in range(16))
    same = dferclip.train_transform(32)(frame[:1].expand(8, 16, 3, 32, 32))
    assert not all(torch.equal(same[i], same[0]) for i in range(8))


def test_brightness_and_crop_follow_upstreams_draws(dferclip):
    rng = random.Random(0)
    for _ in range(200):
        x, y, w, h = dferclip.sized_crop_box(40, 30, rng)
        assert 0 <= x and x + w <= 40 and 0 <= y and y + h <= 30
    grey = torch.full((16, 3, 16, 16), 0.5)
    levels = {round(dferclip.augment_clip(grey, random.Random(s))[0, 0, 0, 0].item(), 4) for s in range(50)}
    assert min(levels) >= 0.25 and max(levels) <= 0.75 and len(levels) > 10
    assert dferclip.sized_crop_box(1, 1, random.Random(0)) in {(0, 0, 1, 1)}  # tiny frames: whole-frame fallback
