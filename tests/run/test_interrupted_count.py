"""After Ctrl-C the progress bar counts only the runs that finished, not the one cut short."""

import io
import signal
import threading
import time
from types import SimpleNamespace

import pytest
from rich.console import Console

from harness.errors import FerbenchError
from harness.run import launch
from harness.run.attempt import Outcome


def test_interrupted_run_is_not_counted_as_done(tmp_path, monkeypatch):
    jobs = [SimpleNamespace(spec=SimpleNamespace(model="baseline", dataset="synthetic", repeat=r, recipe={"epochs": 2}),
                            run_dir=tmp_path / f"run{r}", fold_count=1) for r in range(2)]

    def attempt(job, on_event, overwrite, env, started, interrupted):
        if job.spec.repeat == 0:
            return Outcome("done")
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C while the second run trains
        deadline = time.monotonic() + 10
        while not interrupted() and time.monotonic() < deadline:
            time.sleep(0.01)
        return Outcome("interrupted", "interrupted")

    monkeypatch.setattr(launch, "attempt", attempt)
    out = io.StringIO()
    with pytest.raises(FerbenchError) as stopped:
        launch.execute(jobs, Console(file=out, width=120), use_gpus=False)
    assert stopped.value.exit_code == 130 and "1 complete run(s) are kept" in str(stopped.value)
    final = out.getvalue().splitlines()
    assert any("runs" in line and "1/2" in line for line in final), out.getvalue()
    assert not any("runs" in line and "2/2" in line for line in final), out.getvalue()
