"""Operating-system errors end as one line, `error: PATH: reason`, exit 1, with no temporary file left behind.

Each errno is injected where the store is written (the atomic rename every store file goes through);
a full disk, a read-only file system and a foreign owner are then produced for real where the test
runs as root (a few-MB tmpfs; another user through setpriv), and skipped elsewhere.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch

from harness import files
from harness.run import checkpoint
from tests.conftest import child_env, ferbench_argv
from tests.conftest import cli

RUN = ("run", "--model", "baseline", "--dataset", "synthetic", "--repeats", "1")
INJECTED = {
    errno.EACCES: "permission denied",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENOTDIR: "a file is where a folder is expected",
    errno.EEXIST: "already exists",
}


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("code", sorted(INJECTED), ids=[errno.errorcode[c] for c in sorted(INJECTED)])
def test_each_injected_write_error_is_one_line(workspace, monkeypatch, capsys, code):
    real = os.replace

    def failing(src, dst, *args, **kwargs):
        if str(dst).endswith(".json"):
            raise OSError(code, os.strerror(code), str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(files.os, "replace", failing)
    assert cli(*RUN) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert INJECTED[code] in err and str(workspace / "results") in err
    assert leftovers(workspace / "results") == []


def test_results_dir_that_is_a_file(workspace, capsys):
    blocker = workspace / "results-file"
    blocker.write_text("not a folder")
    assert cli("--results-dir", str(blocker), *RUN) == 1
    assert capsys.readouterr().err.strip() == f"error: {blocker}: a file is where a folder is expected"


def test_plots_into_a_file_path(tmp_path, monkeypatch, capsys):
    from tests.report.conftest import REGISTRY, fake_run

    fake_run(tmp_path / "results", "ckplus", "dan", 0, 1, 0.9, 0.9)
    (tmp_path / "benchmark.toml").write_text(REGISTRY)
    monkeypatch.setenv("FERBENCH_CONFIG", str(tmp_path / "benchmark.toml"))
    blocker = tmp_path / "plots"
    blocker.write_text("")
    assert cli("--results-dir", str(tmp_path / "results"), "report", "--plots", str(blocker / "figs")) == 1
    assert capsys.readouterr().err.strip() == f"error: {blocker}: a file is where a folder is expected"


@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MB tmpfs (root only), unmounted afterwards."""
    where = tmp_path / "tmpfs"
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def _run(workspace, results: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(child_env(), FERBENCH_RESULTS_DIR=str(results))
    return subprocess.run(ferbench_argv(*extra, *RUN), capture_output=True, text=True, env=env, cwd=workspace, timeout=300)


def test_full_disk_is_one_line_and_leaves_no_temporary_file(workspace, tmpfs):
    (tmpfs / "filler").write_bytes(b"\0" * (1024 * 1024 - 8192))
    done = _run(workspace, tmpfs / "results")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {tmpfs / 'results'}")
    assert "no space left on the device" in done.stderr
    assert leftovers(tmpfs) == []


def test_read_only_results_dir_is_one_line(workspace, tmpfs):
    (tmpfs / "results").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    done = _run(workspace, tmpfs / "results")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() .endswith("read-only file system") and str(tmpfs / "results") in done.stderr


def test_a_results_dir_owned_by_someone_else_is_one_line(workspace, tiny_dataset):
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    shared = Path(tempfile.mkdtemp(prefix="ferbench-eacces-"))
    try:
        shutil.copytree(tiny_dataset, shared / "data")
        shutil.copy(workspace / "benchmark.toml", shared / "benchmark.toml")
        (shared / "results").mkdir()
        for path in (shared, *shared.rglob("*")):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        env = dict(child_env(), FERBENCH_RESULTS_DIR=str(shared / "results"), FERBENCH_DATA_ROOT=str(shared / "data"),
                   FERBENCH_CONFIG=str(shared / "benchmark.toml"), HOME=str(shared))
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *ferbench_argv(*RUN)],
                              capture_output=True, text=True, env=env, cwd=shared, timeout=300)
        if "No module named" in done.stderr:
            pytest.skip(f"the other user cannot run this checkout: {done.stderr.strip().splitlines()[-1]}")
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().endswith("permission denied") and str(shared / "results") in done.stderr
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_an_unreadable_checkpoint_is_moved_aside_and_the_run_restarts(tmp_path, capsys):
    path = tmp_path / "checkpoints" / "last.pt"
    checkpoint.save(path, {"format": checkpoint.FORMAT, "epoch": 3, "model": {"w": torch.zeros(1000)}})
    assert checkpoint.load(path)["epoch"] == 3
    path.write_bytes(path.read_bytes()[:300])  # truncated: a kill mid-copy, a full disk, a bad sector
    assert checkpoint.load(path) is None
    assert not path.exists() and (path.parent / "last.pt.corrupt").is_file()
    warning = capsys.readouterr().err.strip()
    assert warning.startswith(f"warning: {path}: unreadable checkpoint") and "restarts from the beginning" in warning
    assert len(warning.splitlines()) == 1
