"""The prefetch stage: per-sample seeds from the run's generator make training identical for any worker count."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

from adapters.augment import flip_rotate_crop_erase
from adapters.contract import Adapter
from harness.run.loop import Split, batches, train
from harness.run.prefetch import Loader, default_workers
from tests.run.test_loop import CTX, DATA, recipe, tiny, to_float


def noisy(size):
    """Draws from torch's and Python's global RNGs, as torchvision and timm pipelines do."""
    pipeline = flip_rotate_crop_erase(8, 20, 2)
    return lambda batch: pipeline(batch) + random.random() * 0.01


def dropout_model(ctx=CTX) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(3 * 8 * 8, ctx.num_classes))


def fit(workers: int):
    torch.manual_seed(0)
    adapter = Adapter(build=dropout_model, train_transform=noisy, eval_transform=to_float)
    out = train(dropout_model(), adapter, DATA, recipe(epochs=2, batch_size=5), "val_balanced_accuracy",
                torch.device("cpu"), CTX, seed=7, loader_workers=workers)
    return [{k: v for k, v in r.items() if k != "seconds"} for r in out.history], out.selected.probabilities


def test_the_same_metrics_with_0_1_and_4_workers():
    history, probabilities = fit(0)
    for workers in (1, 4):
        other_history, other_probabilities = fit(workers)
        assert other_history == history
        assert np.array_equal(other_probabilities, probabilities)


def test_augmentation_leaves_the_callers_global_rngs_alone():
    loader = Loader(DATA["train"], noisy(8), "cpu", workers=0)
    torch.manual_seed(1), random.seed(1)
    expected = torch.rand(3), random.random()
    torch.manual_seed(1), random.seed(1)
    list(loader.train(batches(12, 4, False, torch.Generator().manual_seed(0)), torch.Generator().manual_seed(0)))
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]


def test_a_workers_error_reaches_the_training_loop():
    def broken(batch):
        raise ValueError("bad sample")

    loader = Loader(DATA["train"], broken, "cpu", workers=1)
    with pytest.raises(ValueError, match="bad sample"):
        list(loader.train(batches(12, 4, False), torch.Generator().manual_seed(0)))


def test_evaluation_batches_arrive_in_order_and_whole():
    split = Split(images=torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 2, 2).clone(),
                  labels=torch.arange(10))
    got = list(Loader(split, None, "cpu").raw([torch.tensor([0, 1, 2]), torch.tensor([5, 9])]))
    assert [labels.tolist() for _, labels in got] == [[0, 1, 2], [5, 9]]
    assert torch.equal(got[1][0][:, 0, 0, 0], torch.tensor([5, 9], dtype=torch.uint8))


def test_default_workers_share_the_cpus_among_jobs(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    assert default_workers(1) == 15 and default_workers(4) == 3 and default_workers(32) == 1


def test_device_augmentation_trains_reproducibly_from_the_seed():
    adapter = Adapter(build=tiny, train_transform=lambda size: flip_rotate_crop_erase(size, 20, 2), eval_transform=to_float)
    runs = [train((torch.manual_seed(0), tiny())[1], adapter, DATA, recipe(epochs=2), "val_balanced_accuracy", torch.device("cpu"), CTX, seed=s,
                  augment_on="device").history for s in (5, 5, 6)]
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(runs[0]) == strip(runs[1]) != strip(runs[2])
