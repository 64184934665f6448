"""env.json: what ran, where, with which code and data, so a number can be traced and repeated."""

from __future__ import annotations

import platform
import socket
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision

import harness

REPO_ROOT = Path(harness.__file__).resolve().parent.parent


def git_state(path: Path) -> dict:
    """HEAD sha and dirty flag of the git checkout holding `path`; None fields when it is not one."""
    try:
        import git

        repo = git.Repo(path, search_parent_directories=True)
        return {"sha": repo.head.commit.hexsha, "dirty": repo.is_dirty(untracked_files=False)}
    except Exception:  # not a checkout, or git missing: provenance records that it is unknown
        return {"sha": None, "dirty": None}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def environment(device: torch.device, upstream_dir: Path | None, deterministic: dict) -> dict:
    ferbench_git = git_state(REPO_ROOT)
    return dict(
        ferbench_version=harness.__version__,
        ferbench_git_sha=ferbench_git["sha"],
        ferbench_git_dirty=ferbench_git["dirty"],
        upstream_head=git_state(upstream_dir)["sha"] if upstream_dir else None,
        python=sys.version.split()[0],
        platform=platform.platform(),
        hostname=socket.gethostname(),
        numpy=np.__version__,
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        device=str(device),
        device_name=device_name(device),
        torch_threads=torch.get_num_threads(),
        determinism=deterministic,
    )
