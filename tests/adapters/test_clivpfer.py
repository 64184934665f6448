"""CLIVP-FER adapter: `CustomNet` compiled from the unparsable `CLIP_KMU.py`, upstream's captions in ferbench's class
order, the pooled feature widths, one training step equal to upstream's own `train()`, and the test-label leak made
visible: shuffling the test captions collapses the label-caption variant and leaves the image-only one unchanged.
A narrow random-init CLIP (512-d embedding as ViT-B/32's, 64 px, one thin layer per tower) keeps it fast."""

from __future__ import annotations

import ast
import copy
import time
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from adapters.contract import BuildContext, reads_test_labels
from harness.errors import FerbenchError
from tests.adapters.upstream import drop_pkg_resources_stub, fetched, on_path

UPSTREAM, pytestmark = fetched("clivpfer")
TOP_LEVEL = ("clip",)
PRIVATE = "ferbench_clivpfer"
TINY = (512, 64, 1, 64, 32, 77, 49408, 64, 1, 1)
KMUFED = ("happy", "sad", "surprise", "fear", "disgust", "anger")


@pytest.fixture(scope="module", autouse=True)
def upstream_on_path():
    yield from on_path(UPSTREAM, TOP_LEVEL, private_prefix=PRIVATE, cleanup=drop_pkg_resources_stub)


@pytest.fixture(scope="module")
def clivpfer():
    from adapters import clivpfer

    return clivpfer


@pytest.fixture(autouse=True)
def tiny(monkeypatch):
    from adapters import openai_clip

    monkeypatch.setitem(openai_clip.ARCHITECTURES, "ViT-B-32.pt", TINY)


def ctx(classes=KMUFED, **kw) -> BuildContext:
    return BuildContext(**{"num_classes": len(classes), "input_size": 64, "pretrained": False,
                           "upstream_dir": UPSTREAM, "classes": classes, **kw})


def test_custom_net_compiles_from_its_own_lines_of_a_file_that_does_not_parse(clivpfer):
    import inspect

    path = UPSTREAM / "CLIP_KMU.py"
    with pytest.raises(SyntaxError):
        ast.parse(path.read_text())
    net_class = clivpfer.custom_net(ctx())
    assert inspect.getsourcefile(net_class) == str(path)
    lines = path.read_text().splitlines()
    first = lines.index("class CustomNet(nn.Module):") + 1
    assert net_class.__init__.__code__.co_firstlineno == first + 1  # line numbers are the file's: tracebacks point there
    net = net_class(num_classes=6, feature_dim=384)
    assert [type(m) for m in net.children()] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert (net.fc1.in_features, net.fc1.out_features, net.dropout.p, net.fc2.out_features) == (384, 512, 0.5, 6)


def test_statements_of_an_unparsable_file_are_read_one_by_one(tmp_path):
    from adapters.shims import definitions, top_level_statements

    path = tmp_path / "script.py"
    path.write_text(
        "import os\n@staticmethod\ndef decorated():\n    return 1\nif os:\n    x = 1\nelse:\n    x = 2\n"
        "def broken():\n    a = 1\n       b = 2\n# a comment\nclass Kept:\n    value = 3\n\n    # indented comment\n"
        "    def twice(self):\n        return 2 * self.value\n"
    )
    statements = top_level_statements(path)
    assert [type(s).__name__ for s in statements] == ["Import", "FunctionDef", "If", "ClassDef"]
    assert statements[1].decorator_list and statements[2].orelse and statements[3].lineno == 13
    assert definitions(path, ("Kept",), "ferbench_clivpfer_test_script", by_lines=True).Kept().twice() == 6
    with pytest.raises(FerbenchError, match=r"upstream no longer defines \['broken'\]"):
        definitions(path, ("broken",), "ferbench_clivpfer_test_broken", by_lines=True)


def test_captions_are_upstream_descriptions_in_ferbench_class_order(clivpfer):
    source = (UPSTREAM / "formatdescription.py").read_text()
    kmu = clivpfer.captions(ctx())
    assert len(set(kmu)) == 6 and all(f'"{text}"' in source for text in kmu)
    assert kmu[KMUFED.index("happy")].startswith("A facial expression with wide, bright eyes, raised cheeks")
    assert kmu[KMUFED.index("sad")].startswith("A facial expression with downward pointing corners")  # upstream "sadness"
    synthetic = ("neutral",) + KMUFED
    assert clivpfer.captions(ctx(synthetic)) == ["A neutral facial expression."] + kmu


@pytest.mark.parametrize("mode, width", [(0, 128), (1, 384)])
def test_pooled_feature_width_and_frozen_clip(clivpfer, mode, width):
    assert "CustomNet(num_classes=num_classes, feature_dim=384)" in (UPSTREAM / "CLIP_KMU.py").read_text()
    model = clivpfer.build(ctx(), mode=mode)
    assert model.head.fc1.in_features == width
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {f"head.{n}" for n, _ in model.head.named_parameters()}
    model.train()
    assert model.head.training and not model.clip.training
    images = torch.randn(3, 3, 64, 64)
    out = model(images) if mode == 0 else model(images, model.caption_tokens[torch.tensor([0, 1, 2])])
    assert out.shape == (3, 6)


def upstream_train(mode: int, clip_model, net, optimizer, batch):
    """CLIP_KMU.py's own `train()` (compiled from its lines), run for one epoch over one batch."""
    from sklearn.metrics import f1_score

    from adapters.shims import definitions

    module = definitions(UPSTREAM / "CLIP_KMU.py", ("train",), f"{PRIVATE}_train_{mode}", by_lines=True)
    loader = type("Loader", (list,), {})([batch])
    loader.dataset = batch[2]  # train() reads len(trainloader.dataset)
    module.__dict__.update(
        nn=nn, torch=torch, time=time, f1_score=f1_score, utils=SimpleNamespace(progress_bar=lambda *a, **k: None),
        trainloader=loader, clip_model=clip_model, net=net, optimizer=optimizer, criterion=nn.CrossEntropyLoss(),
        opt=SimpleNamespace(mode=mode), device="cpu", total_processing_time_train=0, all_labels=[], all_predictions=[],
        train_accuracy_values=[], train_loss_values=[],
    )
    module.train(0)
    return module.train_loss_values[0]


@pytest.mark.parametrize("mode", [0, 1])
def test_one_training_step_equals_upstream_train(clivpfer, mode):
    torch.manual_seed(0)
    model = clivpfer.build(ctx(), mode=mode)
    upstream_clip, upstream_net = copy.deepcopy(model.clip).requires_grad_(True), copy.deepcopy(model.head)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1])
    images = torch.randn(8, 3, 64, 64)
    tokens = model.caption_tokens[labels] if mode == 1 else torch.zeros(8, 77, dtype=torch.int)
    adam = dict(lr=3e-3, weight_decay=1e-4)

    torch.manual_seed(1)
    upstream_loss = upstream_train(mode, upstream_clip, upstream_net, torch.optim.Adam(upstream_net.parameters(), **adam),
                                   (images, tokens, labels))

    adapter = clivpfer.VARIANTS["label-caption"] if mode == 1 else clivpfer.ADAPTER
    optimizer = torch.optim.Adam(model.head.parameters(), **adam)
    model.train()
    torch.manual_seed(1)
    loss = adapter.train_loss(model, images, labels, nn.functional.cross_entropy)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert loss.item() == upstream_loss
    for ours, theirs in zip(model.head.state_dict().values(), upstream_net.state_dict().values()):
        assert torch.equal(ours, theirs)


def toy_splits(per_class: int, seed: int):
    """uint8 64 px images, six classes, each a faint tint of its own under heavy noise: the image alone is a weak
    cue (as real faces are), the true-class caption a perfect one."""
    from harness.run.loop import Split

    tints = torch.rand(6, 3, 1, 1, generator=torch.Generator().manual_seed(0)) * 60
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(6).repeat_interleave(per_class)
    images = (tints[labels] + torch.rand(len(labels), 3, 64, 64, generator=g) * 190).to(torch.uint8)
    return Split(images=images, labels=labels)


def trained(clivpfer, adapter, train_split):
    from harness.config import Recipe
    from harness.run.loop import Split, train

    recipe = Recipe(optimizer="adam", lr=3e-3, weight_decay=1e-4, epochs=12, batch_size=16)
    empty = Split(images=train_split.images[:0], labels=train_split.labels[:0])
    torch.manual_seed(0)
    model = adapter.build(ctx())
    data = dict(train=train_split, val=empty, test=train_split)
    train(model, adapter, data, recipe, "val_accuracy", torch.device("cpu"), ctx(), seed=0)
    return model


def accuracy(adapter, model, split, caption_labels=None) -> float:
    """Test accuracy; with `caption_labels` the leaky forward is fed those labels instead of the true ones."""
    from harness.run.loop import evaluate

    if caption_labels is None:
        return evaluate(model, adapter, split, adapter.eval_transform(64), 32, "cpu", 6).metrics["accuracy"]
    model.eval()
    with torch.no_grad():
        out = adapter.eval_forward_given_labels(model, adapter.eval_transform(64)(split.images), caption_labels)
    return (out.argmax(1) == split.labels).float().mean().item()


def test_shuffled_test_captions_collapse_the_label_caption_variant_only(clivpfer):
    leaky, image_only = clivpfer.VARIANTS["label-caption"], clivpfer.ADAPTER
    assert reads_test_labels(leaky) and not reads_test_labels(image_only)
    train_split, test_split = toy_splits(16, seed=0), toy_splits(8, seed=1)
    shuffled = test_split.labels[torch.randperm(len(test_split.labels), generator=torch.Generator().manual_seed(2))]

    with_labels = trained(clivpfer, leaky, train_split)
    true_captions = accuracy(leaky, with_labels, test_split)
    shuffled_captions = accuracy(leaky, with_labels, test_split, shuffled)
    assert true_captions >= 0.95 and shuffled_captions <= 0.4, (true_captions, shuffled_captions)

    image = trained(clivpfer, image_only, train_split)
    before = accuracy(image_only, image, test_split)
    leaky_with_image = copy.copy(leaky)  # the same evaluation path, with a forward that ignores the captions
    object.__setattr__(leaky_with_image, "eval_forward_given_labels", lambda model, images, labels: model(images))
    assert accuracy(image_only, image, test_split) == before == accuracy(leaky_with_image, image, test_split, shuffled)
    assert before > shuffled_captions + 0.1, (before, shuffled_captions)  # the image alone beats the leak, shuffled


def test_every_caption_scores_each_class_with_its_own_caption(clivpfer):
    adapter = clivpfer.VARIANTS["every-caption"]
    assert not reads_test_labels(adapter)
    torch.manual_seed(0)
    model = adapter.build(ctx()).eval()
    images = torch.randn(4, 3, 64, 64)
    scores = adapter.eval_forward(model, images)
    assert scores.shape == (4, 6)
    for c in (0, 5):
        alone = model(images, model.caption_tokens[torch.full((4,), c)]).log_softmax(dim=1)[:, c]
        assert torch.allclose(scores[:, c], alone, atol=1e-6)
