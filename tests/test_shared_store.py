"""A store a group can share: files and folders honour the umask, and another user can read a store."""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness.files import write_json_atomic
from harness.run import checkpoint
from tests.conftest import child_env, ferbench_argv


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in (root, *root.rglob("*"))}


def test_files_get_0644_under_umask_022(tmp_path, umask):
    umask(0o022)
    write_json_atomic(tmp_path / "store" / "run" / "result.json", {"accuracy": 0.5})
    checkpoint.save(tmp_path / "store" / "run" / "checkpoints" / "last.pt", {"format": 1})
    assert modes(tmp_path / "store") == {".": 0o755, "run": 0o755, "run/result.json": 0o644,
                                         "run/checkpoints": 0o755, "run/checkpoints/last.pt": 0o644}


def test_a_setgid_group_folder_under_umask_002_stays_group_writable(tmp_path, umask):
    umask(0o002)
    shared = tmp_path / "shared"
    shared.mkdir()
    group = next((g.gr_gid for g in grp.getgrall() if g.gr_gid != os.getgid()), os.getgid())
    if os.geteuid() == 0:
        os.chown(shared, -1, group)
    os.chmod(shared, 0o2775)
    write_json_atomic(shared / "ckplus" / "dan" / "result.json", {"accuracy": 0.5})
    got = modes(shared)
    assert got["ckplus"] == got["ckplus/dan"] == 0o2775 and got["ckplus/dan/result.json"] == 0o664
    assert {(shared / p).stat().st_gid for p in ("ckplus", "ckplus/dan", "ckplus/dan/result.json")} == {shared.stat().st_gid}


@pytest.mark.slow
def test_a_store_written_under_umask_022_is_readable_by_another_user(tiny_dataset):
    """`ferbench run` as root under umask 022, then `ferbench report` and `status` as nobody on that store."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    from tests.conftest import TINY_TOML

    shared = Path(tempfile.mkdtemp(prefix="ferbench-shared-"))
    try:
        os.chmod(shared, 0o755)
        (shared / "benchmark.toml").write_text(TINY_TOML)
        os.chmod(shared / "benchmark.toml", 0o644)
        env = dict(child_env(), FERBENCH_RESULTS_DIR=str(shared / "results"), FERBENCH_DATA_ROOT=str(tiny_dataset),
                   FERBENCH_CONFIG=str(shared / "benchmark.toml"), HOME=str(shared), COLUMNS="200")
        written = subprocess.run(ferbench_argv("run", "--model", "baseline", "--dataset", "synthetic", "--repeats", "1"),
                                 capture_output=True, text=True, env=env, cwd=shared, timeout=300,
                                 preexec_fn=lambda: os.umask(0o022))
        assert written.returncode == 0, written.stderr
        store = modes(shared / "results")
        assert {m for p, m in store.items() if (shared / "results" / p).is_dir()} == {0o755}
        assert {m for p, m in store.items() if (shared / "results" / p).is_file()} == {0o644}, store
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        for command in (["report"], ["status"]):
            done = subprocess.run([*as_nobody, *ferbench_argv(*command)], capture_output=True, text=True, env=env,
                                  cwd=shared, timeout=120)
            if "No module named" in done.stderr:
                pytest.skip(f"the other user cannot run this checkout: {done.stderr.strip().splitlines()[-1]}")
            assert done.returncode == 0 and "unreadable:" not in done.stdout, done.stderr + done.stdout
            assert "synthetic" in done.stdout and "baseline" in done.stdout
    finally:
        shutil.rmtree(shared, ignore_errors=True)
