"""The worker's data loading and the training loop on video: VideoSplits from the frame cache, TSN clips drawn
from the run's seeded generator in training, the fixed middle frames in evaluation; still images unchanged."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from adapters.contract import Adapter, BuildContext
from harness.config import Dataset, Recipe
from harness.data.clips import SEGMENTS, eval_indices
from harness.data.images import decode
from harness.data.protocols import Context, official, official_folds
from harness.data.synth import CLASSES, VIDEO_DATASET, generate_video, video_classes
from harness.data.table import load_table, manifest_hash
from harness.run.loop import Split, VideoSplit, evaluate, train
from harness.run.worker import load_splits

SIZE = 16
VIDEO = Dataset(name=VIDEO_DATASET, classes=video_classes("dfew"), layouts=("dfew",), protocol="official-folds",
                folds=5, video=True)
CTX = BuildContext(num_classes=len(CLASSES), input_size=SIZE, pretrained=False)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, pd.DataFrame, str, dict]:
    base = tmp_path_factory.mktemp("video-run")
    root = base / VIDEO_DATASET
    generate_video(root, "dfew", clips_per_class=5, frames=(6, 40), size=SIZE, seed=0)
    table = load_table(root, VIDEO)
    folds, _ = official_folds(table, Context(0.2, 5))
    return root, table, manifest_hash(root, table), asdict(folds[0])


@pytest.fixture(scope="module")
def splits(video, tmp_path_factory):
    root, table, manifest, fold = video
    data, path = load_splits(tmp_path_factory.mktemp("results"), VIDEO, root, table, manifest, fold, VIDEO.classes, SIZE)
    return data, path


class FrameAverage(nn.Module):
    """The smallest video model: average the frames, then a linear classifier."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3 * SIZE * SIZE, len(CLASSES))

    def forward(self, clips):
        assert clips.shape[1:] == (SEGMENTS, 3, SIZE, SIZE)
        return self.linear(clips.mean(dim=1).flatten(1))


def to_float(size):
    return lambda batch: batch.float() / 255


def fit(data, seed, adapter=None, epochs=2):
    torch.manual_seed(0)
    model = FrameAverage()
    recipe = Recipe(optimizer="sgd", lr=0.05, epochs=epochs, batch_size=4, momentum=0.0)
    adapter = adapter or Adapter(build=lambda ctx: model, train_transform=to_float, eval_transform=to_float)
    result = train(model, adapter, data, recipe, "val_balanced_accuracy", torch.device("cpu"), CTX, seed)
    return model, result


def test_worker_loads_video_folds_as_video_splits_over_the_frame_cache(video, splits):
    root, table, _, fold = video
    data, path = splits
    assert path.name.endswith(f"-{SIZE}-frames.u8") and path.is_file()
    for part in ("train", "val", "test"):
        split = data[part]
        assert isinstance(split, VideoSplit) and len(split) == len(fold[part]) and split.images is None
        assert split.labels.tolist() == [VIDEO.classes.index(label) for label in table["label"].iloc[fold[part]]]
    test = data["test"]
    assert set(table["fold"].iloc[test.clips]) == {1}
    clip = test.batch(torch.tensor([2, 0]))
    assert clip.dtype == torch.uint8 and clip.shape == (2, SEGMENTS, 3, SIZE, SIZE)
    row = int(test.clips[2])
    files = sorted((root / table["path"][row]).iterdir())
    for t, index in enumerate(eval_indices(int(table["frames"][row]))):
        assert np.array_equal(clip[0, t].numpy(), decode(files[index], SIZE))


def test_training_samples_tsn_clips_from_the_runs_generator_evaluation_the_fixed_frames(splits, monkeypatch):
    data, _ = splits
    calls = []
    original = VideoSplit.batch

    def spy(self, idx, training=False, generator=None):
        calls.append((self is data["train"], training, generator is not None))
        return original(self, idx, training, generator)

    monkeypatch.setattr(VideoSplit, "batch", spy)
    fit(data, seed=0, epochs=1)
    assert {c for c in calls if c[0]} == {(True, True, True)}
    assert {c for c in calls if not c[0]} == {(False, False, False)}
    train_idx = torch.arange(len(data["train"]))
    g = torch.Generator().manual_seed(1)
    assert not torch.equal(original(data["train"], train_idx, True, g), original(data["train"], train_idx, True, g))
    assert torch.equal(original(data["test"], train_idx[:5]), original(data["test"], train_idx[:5]))


def test_video_training_is_reproducible_from_the_seed(splits):
    data, _ = splits
    a_model, a = fit(data, seed=3)
    b_model, b = fit(data, seed=3)
    _, c = fit(data, seed=4)
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    assert all(torch.equal(x, y) for x, y in zip(a_model.state_dict().values(), b_model.state_dict().values()))
    assert [r["train_loss"] for r in a.history] != [r["train_loss"] for r in c.history]
    assert set(a.selected.metrics) >= {"accuracy", "balanced_accuracy"}  # WAR and UAR
    assert a.selected.probabilities.shape == (len(data["test"]), len(CLASSES))


def test_evaluation_of_video_is_deterministic(splits):
    data, _ = splits
    model = FrameAverage()
    adapter = Adapter(build=lambda ctx: model, train_transform=to_float, eval_transform=to_float)
    first = evaluate(model, adapter, data["test"], to_float(SIZE), 4, torch.device("cpu"), len(CLASSES))
    second = evaluate(model, adapter, data["test"], to_float(SIZE), 5, torch.device("cpu"), len(CLASSES))
    assert np.allclose(first.probabilities, second.probabilities, atol=1e-6) and first.loss == pytest.approx(second.loss)


def test_epoch_hooks_see_no_train_images_for_video_and_the_images_for_stills(splits, tiny_dataset, tmp_path):
    seen = []
    hook = Adapter(build=lambda ctx: None, train_transform=to_float, eval_transform=to_float,
                   epoch_start=lambda state: seen.append(state.train_images))
    data, _ = splits
    fit(data, seed=0, adapter=hook, epochs=1)
    assert seen == [None]

    still = Dataset(name="synthetic", classes=CLASSES, layouts=("split-folders",))
    root = tiny_dataset / "synthetic"
    table = load_table(root, still)
    fold = asdict(official(table, Context(0.2, 1))[0][0])
    images, path = load_splits(tmp_path, still, root, table, manifest_hash(root, table), fold, CLASSES, SIZE)
    assert path.name.endswith(f"-{SIZE}.u8")
    assert all(isinstance(images[p], Split) for p in ("train", "val", "test"))
    idx = torch.tensor([1, 0])
    assert torch.equal(images["train"].batch(idx, training=True, generator=torch.Generator()), images["train"].images[idx])
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * SIZE * SIZE, len(CLASSES)))
    recipe = Recipe(optimizer="sgd", lr=0.05, epochs=1, batch_size=3, momentum=0.0)
    seen.clear()
    train(model, hook, images, recipe, "val_balanced_accuracy", torch.device("cpu"), CTX, 0)
    assert seen[0] is images["train"].images
