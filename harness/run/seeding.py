"""Seeds and determinism switches, applied once at the start of a worker process."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> dict:
    """Seed python, numpy and torch and ask torch for deterministic kernels; return what was set."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    return dict(
        seed=seed,
        cudnn_deterministic=True,
        cudnn_benchmark=False,
        torch_deterministic_algorithms="warn_only",
        cublas_workspace_config=os.environ["CUBLAS_WORKSPACE_CONFIG"],
    )
