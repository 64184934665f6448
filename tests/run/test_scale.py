"""Scaling out: claims on a shared store, epoch checkpoints, --jobs K, the submitit launcher, grids, status."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import config
from harness.errors import FerbenchError
from harness.paths import Paths
from harness.run import claims
from harness.run.plan import Request, grid
from harness.run.status import scan
from harness.run.store import MARKER
from tests.conftest import TINY_TOML, child_env, ferbench_argv
from adapters.contract import Adapter
from tests.run.test_loop import CTX, DATA, recipe, tiny, to_float
from harness.run.loop import train


# --- claims -------------------------------------------------------------------------------------

def test_a_live_claim_excludes_others_until_released(tmp_path):
    first = claims.try_claim(tmp_path / "run")
    assert first is not None and claims.try_claim(tmp_path / "run") is None
    assert claims.is_claimed(tmp_path / "run")
    first.release()
    assert not claims.is_claimed(tmp_path / "run") and claims.try_claim(tmp_path / "run") is not None


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_claim_of_a_dead_process_or_without_heartbeat_is_taken_over(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir()
    import socket

    (folder / claims.CLAIM).write_text(json.dumps(dict(host=socket.gethostname(), pid=_dead_pid(), heartbeat=time.time())))
    assert claims.try_claim(folder) is not None

    (folder / claims.CLAIM).write_text(json.dumps(dict(host="elsewhere", pid=1, heartbeat=time.time())))
    assert claims.try_claim(folder) is None
    (folder / claims.CLAIM).write_text(json.dumps(dict(host="elsewhere", pid=1, heartbeat=time.time() - claims.STALE_AFTER_S - 1)))
    assert claims.try_claim(folder) is not None


def test_racing_takeovers_of_a_stale_claim_leave_one_owner(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / claims.CLAIM).write_text(json.dumps(dict(host="elsewhere", pid=1, heartbeat=0)))
    won, start = [], threading.Barrier(8)

    def contend():
        start.wait()
        won.append(claims.try_claim(folder))

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(c is not None for c in won) == 1


def test_heartbeat_keeps_the_claim_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(claims, "HEARTBEAT_S", 0.05)
    claim = claims.try_claim(tmp_path / "run")
    before = claims.read_claim(tmp_path / "run")["heartbeat"]
    with claim:
        time.sleep(0.3)
        assert claims.read_claim(tmp_path / "run")["heartbeat"] > before
    assert claims.read_claim(tmp_path / "run") is None


# --- epoch checkpoints ----------------------------------------------------------------------------

def noisy_transform(size):
    """Draws from torch, numpy and python RNGs, so a resume must restore all three."""
    def transform(batch):
        x = batch.float() / 255
        return x + 0.01 * torch.randn_like(x) + 0.01 * float(np.random.rand()) + 0.01 * random.random()
    return transform


class Stop(Exception):
    pass


def _fit(checkpoint=None, stop_after=None, epochs=4):
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.3), torch.nn.Linear(192, 3))
    def on_epoch(record):
        if stop_after is not None and record["epoch"] == stop_after:
            raise Stop
    noisy = Adapter(build=tiny, train_transform=noisy_transform, eval_transform=to_float)
    return train(model, noisy, DATA, recipe(epochs=epochs, optimizer="adam", lr=0.01, schedule="cosine"),
                 "val_balanced_accuracy", torch.device("cpu"), CTX, seed=3, on_epoch=on_epoch, checkpoint=checkpoint)


def test_a_run_resumed_from_its_epoch_checkpoint_ends_as_an_uninterrupted_one(tmp_path):
    whole = _fit()
    path = tmp_path / "checkpoints" / "train.pt"
    with pytest.raises(Stop):
        _fit(checkpoint=path, stop_after=2)
    resumed_at = []
    torch.manual_seed(123), np.random.seed(123), random.seed(123)  # whatever the new process's state is
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.3), torch.nn.Linear(192, 3))
    noisy = Adapter(build=tiny, train_transform=noisy_transform, eval_transform=to_float)
    again = train(model, noisy, DATA, recipe(epochs=4, optimizer="adam", lr=0.01, schedule="cosine"),
                  "val_balanced_accuracy", torch.device("cpu"), CTX, seed=3, checkpoint=path, on_resume=resumed_at.append)
    assert resumed_at == [1]  # the checkpoint of epoch 1 was the last one saved before the stop in epoch 2's callback
    strip = lambda history: [{k: v for k, v in r.items() if k != "seconds"} for r in history]
    assert strip(again.history) == strip(whole.history)
    assert again.selected_epoch == whole.selected_epoch and again.selected.metrics == whole.selected.metrics
    assert np.array_equal(again.selected.probabilities, whole.selected.probabilities)



def test_epoch_checkpoints_wait_for_their_interval(tmp_path, monkeypatch):
    """Short epochs do not each write model and optimizer state: a save waits for --checkpoint-interval."""
    from harness.run import checkpoint as checkpoints

    saved = []
    monkeypatch.setattr(checkpoints, "save", lambda path, state: saved.append(state["epoch"]))
    fit = lambda interval, **kw: train(
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 3)), Adapter(build=tiny, train_transform=to_float,
        eval_transform=to_float), DATA, recipe(epochs=3), "val_balanced_accuracy", torch.device("cpu"), CTX, seed=0,
        checkpoint=tmp_path / "train.pt", checkpoint_interval=interval, **kw)
    fit(0)
    assert saved == [1, 2, 3]
    saved.clear()
    fit(3600)
    assert saved == []
    fit(3600, keep_last_checkpoint=True)
    assert saved == [3]


def test_a_stage_that_a_later_stage_starts_from_keeps_its_last_checkpoint(tmp_path):
    """Resuming a two-stage run after stage one never retrains stage one, whatever the interval."""
    from adapters.contract import Stage
    from harness.run.stages import train_stages

    second = Adapter(build=lambda ctx: ctx.previous, train_transform=to_float, eval_transform=to_float)
    two = Adapter(build=tiny, train_transform=to_float, eval_transform=to_float, stage="first", stages=(Stage("second", second),))
    train_stages(two, CTX, recipe(epochs=2), {"second": recipe(epochs=1).model_dump()}, checkpoint_dir=tmp_path,
                 checkpoint_interval=3600, data=DATA, selection="val_balanced_accuracy", device=torch.device("cpu"), seed=0)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["first.pt"]

# --- planning a grid ------------------------------------------------------------------------------

GRID_TOML = TINY_TOML + """
[models.other]
adapter = "baseline"
input_size = 32
[models.other.recipe]
optimizer = "sgd"
lr = 1e-2
epochs = 1
batch_size = 8

[models.clipper]
adapter = "baseline"
input_size = 32
video = true
[models.clipper.recipe]
optimizer = "sgd"
lr = 1e-2
epochs = 1
batch_size = 8
"""


def test_grid_plans_every_pair_and_all_skips_video_mismatches(tmp_path, tiny_dataset):
    cfg = config.parse(GRID_TOML)
    paths = Paths(data_root=tiny_dataset, results=tmp_path / "results", vendor=tmp_path / "v", weights=tmp_path / "w")
    jobs, skipped = grid(cfg, paths, Request(repeats=2), ["baseline", "other"], ["synthetic"])
    assert [(j.spec.model, j.spec.repeat) for j in jobs] == [("baseline", 0), ("baseline", 1), ("other", 0), ("other", 1)]
    jobs, skipped = grid(cfg, paths, Request(repeats=1), [], [], every=True)
    assert {j.spec.model for j in jobs} == {"baseline", "other"} and skipped == ["clipper/synthetic"]
    with pytest.raises(FerbenchError, match="takes video clips but dataset 'synthetic' holds still images"):
        grid(cfg, paths, Request(repeats=1), ["clipper"], ["synthetic"])
    with pytest.raises(FerbenchError, match="--all"):
        grid(cfg, paths, Request(), [], ["synthetic"])


# --- through the CLI --------------------------------------------------------------------------------

def _run(workspace, *args, results="results", **kwargs):
    env = child_env()
    env["FERBENCH_RESULTS_DIR"] = str(workspace / results)
    return subprocess.run(ferbench_argv("run", "--dataset", "synthetic", *args), env=env, cwd=workspace,
                          capture_output=True, text=True, timeout=600, **kwargs)


def _results(root: Path) -> dict[tuple, dict]:
    out = {}
    for marker in root.glob(f"synthetic/*/official/*/{MARKER}"):
        result = json.loads((marker.parent / "result.json").read_text())
        config_ = json.loads((marker.parent / "config.json").read_text())
        out[(config_["model"], config_["repeat"])] = {
            "accuracy": result["accuracy"], "probabilities": (marker.parent / "predictions.csv").read_text(),
            "history": [{k: v for k, v in r.items() if k != "seconds"} for r in result["history"]],
        }
    return out


def test_jobs_2_gives_the_same_results_as_sequential_runs(workspace):
    (workspace / "benchmark.toml").write_text(GRID_TOML)
    args = ("--model", "baseline", "--model", "other", "--repeats", "1", "--epochs", "2")
    sequential = _run(workspace, *args, results="seq")
    parallel = _run(workspace, *args, "--jobs", "2", results="par")
    assert sequential.returncode == 0 and parallel.returncode == 0, parallel.stderr
    assert "2 run(s) completed" in parallel.stderr
    a, b = _results(workspace / "seq"), _results(workspace / "par")
    assert len(a) == 2 and a == b


def test_two_concurrent_invocations_train_each_run_exactly_once(workspace):
    env = child_env()
    argv = ferbench_argv("run", "--model", "baseline", "--dataset", "synthetic", "--repeats", "3", "--epochs", "1")
    procs = [subprocess.Popen(argv, env=env, cwd=workspace, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    completed = sum(int(re.search(r"(\d+) run\(s\) completed", e).group(1)) for e in errs)
    assert completed == 3, errs
    assert len(list((workspace / "results").glob(f"synthetic/baseline/official/*/{MARKER}"))) == 3
    assert not list((workspace / "results").glob("synthetic/baseline/official/*/CLAIM"))


def test_submitit_local_executor_runs_a_grid_then_status_reports_it(workspace):
    (workspace / "benchmark.toml").write_text(GRID_TOML)
    done = _run(workspace, "--model", "baseline", "--model", "other", "--repeats", "1", "--launcher", "slurm")
    assert done.returncode == 0, done.stderr
    assert "submitted 2 run(s) to local" in done.stderr and "2 run(s) completed" in done.stderr
    states = scan(workspace / "results")
    assert sorted((s.cell[1], s.state) for s in states) == [("baseline", "done"), ("other", "done")]
    again = _run(workspace, "--model", "baseline", "--model", "other", "--repeats", "1", "--launcher", "slurm")
    assert "nothing to submit" in again.stderr
    status = subprocess.run(ferbench_argv("status"), env={**child_env(), "COLUMNS": "200"}, cwd=workspace,
                            capture_output=True, text=True)
    assert status.returncode == 0 and "synthetic" in status.stdout and "other" in status.stdout


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_a_killed_run_resumes_from_its_checkpoint_and_matches_an_uninterrupted_one(workspace):
    args = ("--model", "baseline", "--repeats", "1", "--epochs", "3", "--checkpoint-interval", "0")
    reference = _run(workspace, *args, results="reference")
    assert reference.returncode == 0, reference.stderr
    env = child_env()
    env["FERBENCH_RESULTS_DIR"] = str(workspace / "killed")
    parent = subprocess.Popen(ferbench_argv("run", "--dataset", "synthetic", *args), env=env, cwd=workspace,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((workspace / "killed").glob("synthetic/*/*/*/checkpoints/train.pt")):
        assert parent.poll() is None, "the run finished before it could be killed"
        time.sleep(0.05)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    status = scan(workspace / "killed")
    assert [s.state for s in status] == ["interrupted"] and "train" in status[0].detail
    resumed = _run(workspace, *args, results="killed")
    assert resumed.returncode == 0, resumed.stderr
    log = next((workspace / "killed").glob("synthetic/*/*/*/worker.log")).read_text()
    assert "resuming after epoch" in log
    assert _results(workspace / "killed") == _results(workspace / "reference")
    assert not list((workspace / "killed").glob("synthetic/*/*/*/checkpoints"))


# --- GPU slots and run states ---------------------------------------------------------------------

def test_workers_are_spread_over_gpus_and_capped_when_they_share_one(monkeypatch):
    from harness.run.launch import slot_environments, visible_gpus

    assert slot_environments(2, []) == [{}, {}]
    spread = slot_environments(4, ["0", "1"])
    assert [e["CUDA_VISIBLE_DEVICES"] for e in spread] == ["0", "1", "0", "1"]
    assert {e["FERBENCH_GPU_MEMORY_FRACTION"] for e in spread} == {"0.4750"}
    assert slot_environments(2, ["3", "5"]) == [{"CUDA_VISIBLE_DEVICES": "3"}, {"CUDA_VISIBLE_DEVICES": "5"}]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,7")
    assert visible_gpus() == ["2", "7"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_status_reads_each_state_from_the_run_folder(tmp_path):
    from harness.files import write_json_atomic
    from tests.report.conftest import fake_run
    from harness.run.status import counts, run_state

    def folder(name):
        path = tmp_path / "synthetic" / "baseline" / "official" / name
        path.mkdir(parents=True)
        (path / "job.json").write_text("{}")
        return path

    done = fake_run(tmp_path, "synthetic", "baseline", 0, 1, 0.5, 0.4)  # complete runs must pass their schemas
    write_json_atomic(folder("failed") / "FAILED", {"message": "boom"})
    write_json_atomic(folder("queued") / "QUEUED", {"job_id": "42_0"})
    running = claims.try_claim(folder("running"))
    (folder("interrupted") / "checkpoints").mkdir()
    (tmp_path / "synthetic/baseline/official/interrupted/checkpoints/train.pt").write_bytes(b"")
    states = {"done" if s.folder == done else s.folder.name: s for s in scan(tmp_path)}
    assert {k: s.state for k, s in states.items()} == {
        "done": "done", "failed": "failed", "queued": "queued", "running": "running", "interrupted": "interrupted"}
    assert states["failed"].detail == "boom" and states["queued"].detail == "job 42_0"
    assert states["interrupted"].detail == "checkpoint: train"
    assert counts(list(states.values()))[("synthetic", "baseline", "official")]["done"] == 1
    running.release()
    assert run_state(states["running"].folder).state == "interrupted"
