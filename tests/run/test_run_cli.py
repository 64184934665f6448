"""`ferbench run` end to end on tiny synthetic data: store layout, skip/overwrite, kill-and-resume."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from torchvision.models import resnet18

from harness.run.store import MARKER
from tests.conftest import child_env, cli, ferbench_argv


def run_dirs(results: Path) -> list[Path]:
    return sorted(p for p in (results / "synthetic" / "baseline" / "official").iterdir() if p.is_dir())


def complete(results: Path) -> list[Path]:
    return [p for p in run_dirs(results) if (p / MARKER).is_file()]


def test_run_writes_complete_runs_then_skips_overwrites_and_reports(workspace, capsys):
    results = workspace / "results"
    assert cli("run", "--model", "baseline", "--dataset", "synthetic", "--repeats", "2") == 0
    runs = complete(results)
    assert len(runs) == 2
    first = runs[0]
    for name in ("config.json", "result.json", "predictions.csv", "env.json"):
        assert (first / name).is_file()
    result = json.loads((first / "result.json").read_text())
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "per_class_recall", "confusion_matrix",
                "selected_epoch", "selection_rule", "final_epoch", "test_best_epoch_oracle", "wall_time_s"):
        assert key in result
    assert len(result["per_class_recall"]) == 7 and len(result["confusion_matrix"]) == 7
    assert result["cost"]["params_total"] == sum(p.numel() for p in resnet18(num_classes=7).parameters())
    assert result["cost"]["gflops"] > 0 and result["cost"]["inference_img_s"] > 0
    env = json.loads((first / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["dataset_manifest"] and env["device"] == "cpu"
    assert env["determinism"]["seed"] in (0, 1)
    config = json.loads((first / "config.json").read_text())
    assert config["run_id"] == first.name and config["repeats"] == 2
    predictions = pd.read_csv(first / "predictions.csv")
    assert list(predictions.columns[:3]) == ["path", "true", "predicted"]
    assert len(predictions) == result["samples"]["test"]
    assert (predictions.filter(like="p_").sum(axis=1) - 1).abs().max() < 1e-4

    markers = {p: (p / MARKER).stat().st_mtime_ns for p in runs}
    assert cli("run", "--model", "baseline", "--dataset", "synthetic", "--repeats", "2") == 0
    assert {p: (p / MARKER).stat().st_mtime_ns for p in complete(results)} == markers

    before = {p.name: json.loads((p / "result.json").read_text()) for p in runs}
    assert cli("run", "--model", "baseline", "--dataset", "synthetic", "--repeats", "2", "--overwrite") == 0
    after = {p.name: json.loads((p / "result.json").read_text()) for p in complete(results)}
    assert all((p / MARKER).stat().st_mtime_ns != markers[p] for p in runs)
    for name in before:  # same seed, same machine: same numbers
        assert after[name]["accuracy"] == before[name]["accuracy"]
        assert after[name]["history"][0]["train_loss"] == before[name]["history"][0]["train_loss"]

    capsys.readouterr()
    assert cli("report") == 0
    out = capsys.readouterr().out
    assert "| synthetic | **" in out and "±" in out
    assert cli("report", "--cost") == 0
    out = capsys.readouterr().out
    assert "## Model cost" in out and f"| baseline | 32×32 | {result['cost']['params_total'] / 1e6:.2f} |" in out


def _workers_of(job_file: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(job_file).encode() in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find worker processes")
def test_kill_during_second_repeat_then_resume(workspace):
    results = workspace / "results"
    argv = ferbench_argv("run", "--model", "baseline", "--dataset", "synthetic", "--repeats", "2", "--epochs", "2")
    parent = subprocess.Popen(argv, env=child_env(), cwd=workspace, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    second_job = None
    while time.monotonic() < deadline and second_job is None:
        time.sleep(0.2)
        if (results / "synthetic").exists() and len(complete(results)) == 1:
            pending = [p / "job.json" for p in run_dirs(results) if not (p / MARKER).exists() and (p / "job.json").exists()]
            second_job = pending[0] if pending else None
        assert parent.poll() is None, "ferbench finished before it could be killed"
    assert second_job is not None, "second repeat never started"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(50):  # the worker dies with its parent
        if not _workers_of(second_job):
            break
        time.sleep(0.1)
    assert not _workers_of(second_job)
    kept = complete(results)
    assert len(kept) == 1
    kept_marker = (kept[0] / MARKER).stat().st_mtime_ns

    resumed = subprocess.run(argv, env=child_env(), cwd=workspace, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "1 of 2 runs already complete" in resumed.stderr
    assert len(complete(results)) == 2 and len(run_dirs(results)) == 2
    assert (kept[0] / MARKER).stat().st_mtime_ns == kept_marker


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA to make runs fail")
def test_failed_runs_are_summarised_and_others_still_run(workspace, capsys):
    code = cli("run", "--model", "baseline", "--dataset", "synthetic", "--repeats", "2", "--device", "cuda")
    assert code == 1
    err = capsys.readouterr().err
    assert "0 run(s) completed" in err and "2 failed" in err
    assert err.count("torch sees no CUDA device") == 2
    assert complete(workspace / "results") == []
