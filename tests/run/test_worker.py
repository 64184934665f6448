import os
import sys
from pathlib import Path

from harness.run.worker import isolate_sys_path


def test_worker_sys_path_holds_its_upstream_first_and_not_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", str(tmp_path), *sys.path])
    upstream = tmp_path / "vendor" / "dan"
    isolate_sys_path(upstream)
    assert sys.path[0] == str(upstream)
    assert "" not in sys.path
    assert all(os.path.realpath(p) != os.path.realpath(tmp_path) for p in sys.path)
    assert sum(Path(p).name == "dan" for p in sys.path) == 1
