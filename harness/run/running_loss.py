"""The training loss of an epoch, summed on the device so that no step waits for the device to finish.

Reading a device value (`.item()`) blocks the host until every queued kernel has run, which leaves the GPU idle
while the next batch is launched. The loss is read only every `CHECK_EVERY` steps (finiteness), at the end of the
epoch, and for progress at most every `PROGRESS_SECONDS`.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
from torch import Tensor

CHECK_EVERY = 50
PROGRESS_SECONDS = 0.5


class RunningLoss:
    def __init__(self, epoch: int, steps: int, on_progress: Callable[[dict], None] | None = None):
        self.epoch, self.steps, self.on_progress = epoch, steps, on_progress
        self.total: Tensor | None = None
        self.count = 0
        self.reported = time.monotonic()

    def add(self, loss: Tensor) -> None:
        value = loss.detach().to(torch.float64)  # float64 as np.mean of the per-step values was
        self.total = value if self.total is None else self.total + value
        self.count += 1
        if self.count % CHECK_EVERY == 0:
            self._checked()
        if self.on_progress is not None and time.monotonic() - self.reported >= PROGRESS_SECONDS:
            self.reported = time.monotonic()
            self.on_progress(dict(epoch=self.epoch, step=self.count, steps=self.steps, train_loss=self._checked()))

    def _checked(self) -> float:
        value = self.total.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"non-finite training loss at epoch {self.epoch} (by step {self.count})")
        return value / self.count

    def mean(self) -> float:
        """The epoch's mean step loss; raises FloatingPointError when any step's loss was not finite."""
        return self._checked() if self.count else math.nan
