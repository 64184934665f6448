"""Batches prepared ahead of the training step, so host work overlaps device work.

Training batch i+1 is gathered and augmented while batch i trains. Augmentation is per sample and draws from
the global RNGs (torchvision's ops use torch's, timm's and the video group transforms Python's `random`), so
each sample gets its own seed, drawn in order from the run's seeded generator, and is transformed with every
global RNG set from that seed. The result depends on the seed alone: the same with 0, 1 or N workers.

Workers are forked processes, not threads: threads would share (and race on) the global RNGs with each other
and with the training step's dropout, and the per-sample Python of torchvision/PIL pipelines holds the GIL
(benchmarks/step_throughput.py measures the overlap). A forked worker inherits the split and the transform, so
nothing is pickled but indices, seeds and the finished float batch (through shared memory).

With 0 workers the same per-sample work runs inline, with the main process's RNG states saved and put back,
so the model's own randomness (dropout) sees the same stream either way. Evaluation batches and the uint8
batches of `--augment-on device` are only gathered (and pinned on CUDA) by one background thread.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import random
import signal
import threading
from collections import deque
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import Tensor

SEED_BOUND = 2**62
DEPTH = 2
"""Batches prepared ahead of the one training."""

_WORKER_STATE: tuple | None = None
"""(split, transform) the forked workers inherit; set only while the pool is being created."""


def default_workers(jobs: int = 1) -> int:
    """CPUs this process may use, shared among `--jobs` runs, less the one each run's training step uses."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // max(1, jobs) - 1)


def sample_seeds(n: int, generator: torch.Generator) -> Tensor:
    """One seed per sample of an epoch's order, from the run's generator."""
    return torch.randint(0, SEED_BOUND, (n,), generator=generator, dtype=torch.int64)


def seed_globals(seed: int) -> None:
    torch.default_generator.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def augment(images: Tensor, seeds: Tensor, transform: Callable[[Tensor], Tensor]) -> Tensor:
    """Each image alone through `transform`, every global RNG seeded from its own seed."""
    out = []
    for image, seed in zip(images, seeds.tolist()):
        seed_globals(seed)
        out.append(transform(image.unsqueeze(0))[0])
    return torch.stack(out)


@contextmanager
def kept_global_rngs():
    """Run a block that reseeds the global RNGs, then put the caller's states back."""
    saved = torch.get_rng_state(), random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        torch.set_rng_state(saved[0])
        random.setstate(saved[1])
        np.random.set_state(saved[2])


def _worker_init() -> None:
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and closes the pool
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the run
    except OSError:
        pass


def _worker_augment(idx: Tensor | None, images: Tensor | None, seeds: Tensor) -> Tensor:
    split, transform = _WORKER_STATE
    if images is None:
        images = split.batch(idx)
    return augment(images, seeds, transform)


def _chunks(n: int, parts: int) -> list[slice]:
    bounds = np.linspace(0, n, min(parts, n) + 1).round().astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _background(produce: Iterable, depth: int) -> Iterator:
    """Iterate `produce` in a thread, at most `depth` items ahead; its exceptions surface here."""
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def fill():
        try:
            for item in produce:
                while not stop.is_set():
                    try:
                        out.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            out.put(end)
        except BaseException as err:  # handed to the consumer, raised there
            out.put(err)

    thread = threading.Thread(target=fill, name="ferbench-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                out.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


def _pinned(batch: Tensor, device: torch.device) -> Tensor:
    return batch.pin_memory() if device.type == "cuda" else batch


class Loader:
    """Training and evaluation batches of one split, prepared ahead. The worker pool is forked at the start
    of each training epoch and ended with it (also when the epoch is left early), as a DataLoader does."""

    def __init__(self, split, transform: Callable[[Tensor], Tensor] | None, device, workers: int = 0,
                 depth: int = DEPTH):
        self.split, self.transform, self.device = split, transform, torch.device(device)
        self.workers, self.depth = max(0, workers), depth

    @contextmanager
    def _pool(self):
        global _WORKER_STATE
        _WORKER_STATE = (self.split, self.transform)
        try:
            pool = multiprocessing.get_context("fork").Pool(self.workers, initializer=_worker_init)
        finally:
            _WORKER_STATE = None
        try:
            yield pool
        finally:
            pool.terminate()
            pool.join()

    def train(self, batches: list[Tensor], generator: torch.Generator) -> Iterator[tuple[Tensor, Tensor]]:
        """(augmented images, labels) on the device, for each index batch, in order. Seeds come from
        `generator` now; a video split's clip sampling draws from it as each batch is gathered, so nothing else
        may draw from it until the epoch's batches are consumed."""
        seeds = sample_seeds(sum(len(idx) for idx in batches), generator).split([len(idx) for idx in batches])
        # Still images are gathered by the workers; video clips are sampled here, in order, from the generator.
        gather_here = getattr(self.split, "images", None) is None
        if self.workers == 0:
            for idx, s in zip(batches, seeds):
                images = self.split.batch(idx, training=True, generator=generator)
                with kept_global_rngs():
                    images = augment(images, s, self.transform)
                yield images.to(self.device), self.split.labels[idx].to(self.device)
            return

        def produce(pool):
            pending: deque = deque()
            for idx, s in zip(batches, seeds):
                images = self.split.batch(idx, training=True, generator=generator) if gather_here else None
                pending.append((idx, [
                    pool.apply_async(_worker_augment, (None if gather_here else idx[part],
                                                       None if images is None else images[part], s[part]))
                    for part in _chunks(len(idx), self.workers)
                ]))
                if len(pending) > self.depth:
                    yield self._collect(*pending.popleft())
            while pending:
                yield self._collect(*pending.popleft())

        with self._pool() as pool:
            for images, labels in _background(produce(pool), self.depth):
                yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)

    def _collect(self, idx: Tensor, parts) -> tuple[Tensor, Tensor]:
        images = torch.cat([part.get() for part in parts])
        return _pinned(images, self.device), _pinned(self.split.labels[idx], self.device)

    def raw(self, batches: list[Tensor], training: bool = False,
            generator: torch.Generator | None = None) -> Iterator[tuple[Tensor, Tensor]]:
        """(uint8 images, labels) on the device, gathered (and pinned) one thread ahead: evaluation, and
        training with `--augment-on device`. A video split's training clips draw from `generator` in order."""

        def produce():
            for idx in batches:
                images = self.split.batch(idx, training=training, generator=generator)
                yield _pinned(images, self.device), _pinned(self.split.labels[idx], self.device)

        for images, labels in _background(produce(), self.depth):
            yield images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
