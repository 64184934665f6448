"""End to end through the CLI: a run keeps its model, `ferbench evaluate` reproduces its test figures exactly,
cross-dataset targets are scored from the saved model, an upstream-format DAN checkpoint is mapped by class name,
and `ferbench predict` finds, aligns and classifies faces."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, SHARED, TINY_TOML, child_env

pytestmark = pytest.mark.slow

CKPLUS = SHARED / "datasets" / "CK+48"
TOML = TINY_TOML.replace("epochs = 1", "epochs = 2") + """
[datasets.ckplus]
classes = ["happy", "sad", "surprise", "fear", "disgust", "anger", "contempt"]
layouts = ["ckplus-folders", "ckplus-crossval"]
protocol = "subject-kfold"
folds = 10
"""


def ferbench(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "harness", *args], env=env, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"ferbench {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_dataset):
    """A results store with one baseline run on `synthetic` that kept its model."""
    home = tmp_path_factory.mktemp("models_out")
    (home / "benchmark.toml").write_text(TOML)
    env = dict(child_env(), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", FERBENCH_CONFIG=str(home / "benchmark.toml"),
               FERBENCH_DATA_ROOT=str(tiny_dataset), FERBENCH_RESULTS_DIR=str(home / "results"),
               FERBENCH_VENDOR_DIR=str(home / "vendor"))
    ferbench(env, "run", "--model", "baseline", "--dataset", "synthetic", "--repeats", "1", "--save-model")
    (run_dir,) = (home / "results" / "synthetic" / "baseline" / "official").iterdir()
    return env, home, run_dir


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_saved_model_files(store):
    _, _, run_dir = store
    meta = json.loads((run_dir / "model.json").read_text())
    assert meta["run_id"] == run_dir.name and meta["model"] == "baseline" and meta["input_size"] == 32
    assert meta["classes"][0] == "neutral" and meta["eval_transform"].endswith("imagenet_eval")
    from safetensors.torch import load_file

    assert "fc.weight" in load_file(str(run_dir / "model.safetensors"))


def test_evaluate_run_reproduces_result_exactly(store):
    env, home, run_dir = store
    result = json.loads((run_dir / "result.json").read_text())
    shown = ferbench(env, "evaluate", "--run", run_dir.name, "--dataset", "synthetic", "--device", "cpu")
    assert "same order" in shown.stdout
    (record_dir,) = (home / "results" / "evaluations" / "synthetic").iterdir()
    record = json.loads((record_dir / "evaluation.json").read_text())
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "confusion_matrix"):
        assert record[key] == result[key], key
    assert read_csv(record_dir / "predictions.csv") == read_csv(run_dir / "predictions.csv")
    again = ferbench(env, "evaluate", "--run", run_dir.name, "--dataset", "synthetic", "--device", "cpu")
    assert "already stored" in again.stdout


def test_evaluate_refuses_a_run_without_model_and_bad_arguments(store):
    env, _, _ = store
    done = ferbench(env, "evaluate", "--dataset", "synthetic", check=False)
    assert done.returncode == 2 and "exactly one of --run" in done.stderr


@pytest.mark.skipif(not CKPLUS.is_dir(), reason="../shared/datasets/CK+48 not present")
def test_cross_dataset_target_over_shared_classes(store):
    env, home, run_dir = store
    ferbench(env, "run", "--model", "baseline", "--dataset", "synthetic", "--repeats", "1", "--target", f"ckplus={CKPLUS}")
    (record_dir,) = (home / "results" / "evaluations" / "ckplus").iterdir()
    record = json.loads((record_dir / "evaluation.json").read_text())
    assert record["run_id"] == run_dir.name and record["split"]["name"] == "all"
    assert record["classes"] == ["happy", "sad", "surprise", "fear", "disgust", "anger"]
    assert record["excluded"] == {"contempt": 54} and record["class_map"]["masked"] == ["neutral"]
    assert record["samples"] == 981 - 54
    report = ferbench(env, "report").stdout
    assert "## Cross-dataset" in report and "| baseline | synthetic |" in report


def test_dan_checkpoint_in_upstream_format_is_mapped_by_class_name(tmp_path, tiny_dataset):
    vendor = REPO / "vendor"
    if not (vendor / "dan").is_dir():
        pytest.skip("vendor/dan not fetched; run `ferbench fetch dan`")
    checkpoint = tmp_path / "rafdb_epoch3_acc0.9_bacc0.8.pth"
    # rafdb.py's own save, from random weights, with the last BatchNorm pinned so that output 0 always wins:
    # output 0 is Surprise in RAF-DB's order, so every face must come out as `surprise`, not as index 0 `neutral`.
    script = f"""
import sys, torch
sys.path.insert(0, {str(vendor / 'dan')!r})
from networks.dan import DAN
torch.manual_seed(0)
model = DAN(num_class=7, num_head=4, pretrained=False)
with torch.no_grad():
    model.bn.weight.zero_(); model.bn.bias.copy_(torch.tensor([5.0, 0, 0, 0, 0, 0, 0]))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
torch.save({{'iter': 3, 'model_state_dict': model.state_dict(), 'optimizer_state_dict': optimizer.state_dict()}}, {str(checkpoint)!r})
"""
    env = dict(child_env(), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", FERBENCH_DATA_ROOT=str(tiny_dataset),
               FERBENCH_RESULTS_DIR=str(tmp_path / "results"), FERBENCH_VENDOR_DIR=str(vendor),
               FERBENCH_WEIGHTS_DIR=str(tmp_path / "weights"))
    env.pop("FERBENCH_CONFIG", None)
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    shown = ferbench(env, "evaluate", "--model", "dan", "--dataset", "synthetic", "--trained-on", "rafdb",
                     "--checkpoint", str(checkpoint), "--device", "cpu")
    assert "reordered" in shown.stdout
    (record_dir,) = (tmp_path / "results" / "evaluations" / "synthetic").iterdir()
    record = json.loads((record_dir / "evaluation.json").read_text())
    assert record["kind"] == "checkpoint" and record["format"] == "dan" and record["trained_on"] == "rafdb"
    assert record["class_map"]["outputs"] == [6, 3, 4, 0, 1, 2, 5]
    predicted = {row["predicted"] for row in read_csv(record_dir / "predictions.csv")}
    assert predicted == {"surprise"}
    assert record["per_class_recall"][3] == 1.0  # surprise is canonical index 3
    # The same file read through another [[checkpoints]] entry (FER-crossval's CK+ order) is another evaluation.
    other = ferbench(env, "evaluate", "--model", "dan", "--dataset", "synthetic", "--trained-on", "ckplus",
                     "--format", "fer-crossval", "--checkpoint", str(checkpoint), "--device", "cpu")
    assert "already stored" not in other.stdout
    assert len(list((tmp_path / "results" / "evaluations" / "synthetic").iterdir())) == 2


def faces_predicted(env, run_id, image, tmp_path):
    out = tmp_path / "faces.csv"
    ferbench(env, "predict", "--run", run_id, str(image), "--out", str(out), "--annotate", str(tmp_path / "annotated"),
             "--device", "cpu")
    rows = read_csv(out)
    assert (tmp_path / "annotated" / f"{image.stem}.png").is_file()
    return rows


def test_predict_on_a_generated_face(store, tmp_path):
    from PIL import Image
    from skimage import data

    env, _, run_dir = store
    image = tmp_path / "astronaut.png"
    Image.fromarray(data.astronaut()).save(image)
    rows = faces_predicted(env, run_dir.name, image, tmp_path)
    assert len(rows) == 1
    row = rows[0]
    left, top, right, bottom = (float(row[k]) for k in ("box_left", "box_top", "box_right", "box_bottom"))
    assert 150 < left < right < 300 and 0 < top < bottom < 250  # Eileen Collins' face, top centre
    probabilities = [float(row[f"p_{c}"]) for c in ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")]
    assert abs(sum(probabilities) - 1) < 1e-4 and row["label"] in ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
    assert "un-aligned" in row["note"]


@pytest.mark.skipif(not (SHARED / "faces" / "portrait-1.jpg").is_file(), reason="../shared/faces not present")
def test_predict_on_portrait(store, tmp_path):
    env, _, run_dir = store
    rows = faces_predicted(env, run_dir.name, SHARED / "faces" / "portrait-1.jpg", tmp_path)
    assert len(rows) == 1 and float(rows[0]["box_right"]) > float(rows[0]["box_left"])


def test_posterpp_checkpoint_with_dataparallel_keys_and_recorders(tmp_path, tiny_dataset):
    """main.py's save_checkpoint: DataParallel `module.` keys and pickled `__main__.RecorderMeter` logs, loaded
    weights-only and strictly into the adapter's POSTER++."""
    vendor = REPO / "vendor"
    if not (vendor / "posterpp").is_dir():
        pytest.skip("vendor/posterpp not fetched; run `ferbench fetch posterpp`")
    checkpoint = tmp_path / "raf-db-model_best.pth"
    script = f"""
import sys, numpy as np, torch
from pathlib import Path
sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(vendor / 'posterpp')!r})
from adapters import load_adapter
from adapters.contract import BuildContext

class RecorderMeter:
    def __init__(self):
        self.total_epoch, self.epoch_losses = 200, np.zeros((200, 2), dtype=np.float32)

class RecorderMeter1(RecorderMeter):
    pass

torch.manual_seed(0)
model = load_adapter("posterpp").build(BuildContext(num_classes=7, input_size=224, pretrained=False,
                                                    upstream_dir=Path({str(vendor / 'posterpp')!r})))
parallel = torch.nn.DataParallel(model)
optimizer = torch.optim.Adam(parallel.parameters(), lr=3.5e-5)
torch.save({{'epoch': 12, 'state_dict': parallel.state_dict(), 'best_acc': torch.tensor(91.0),
            'optimizer': optimizer.state_dict(), 'recorder1': RecorderMeter1(), 'recorder': RecorderMeter()}},
           {str(checkpoint)!r})
"""
    env = dict(child_env(), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", FERBENCH_DATA_ROOT=str(tiny_dataset),
               FERBENCH_RESULTS_DIR=str(tmp_path / "results"), FERBENCH_VENDOR_DIR=str(vendor),
               FERBENCH_WEIGHTS_DIR=str(tmp_path / "weights"))
    env.pop("FERBENCH_CONFIG", None)
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=300)
    assert "__main__.RecorderMeter" in torch.serialization.get_unsafe_globals_in_checkpoint(checkpoint)
    ferbench(env, "evaluate", "--model", "posterpp", "--dataset", "synthetic", "--checkpoint", str(checkpoint),
             "--device", "cpu")
    (record_dir,) = (tmp_path / "results" / "evaluations" / "synthetic").iterdir()
    record = json.loads((record_dir / "evaluation.json").read_text())
    assert record["format"] == "posterpp" and record["class_map"]["outputs"] == [6, 3, 4, 0, 1, 2, 5]
    assert len(read_csv(record_dir / "predictions.csv")) == record["samples"] > 0


def test_predict_reads_every_nth_video_frame(store, tmp_path):
    import cv2
    from skimage import data

    from harness import config
    from harness.paths import Paths
    from harness.predict import predict

    env, home, run_dir = store
    video = tmp_path / "clip.avi"
    frame = cv2.cvtColor(data.astronaut()[::2, ::2], cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (frame.shape[1], frame.shape[0]))
    for _ in range(5):
        writer.write(frame)
    writer.release()
    seen = []
    paths = Paths(data_root=home, results=home / "results", vendor=home / "vendor", weights=home / "weights")
    rows = predict(config.load(home / "benchmark.toml"), paths, run_dir.name, [video], tmp_path / "video.csv",
                   every=2, device="cpu", progress=lambda what, done, total: seen.append((what, done, total)))
    written = read_csv(tmp_path / "video.csv")
    assert rows == len(written) == 3 and [r["frame"] for r in written] == ["0", "2", "4"]
    assert seen[-1] == ("clip.avi", 3, 3)
