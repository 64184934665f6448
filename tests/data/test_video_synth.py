"""`ferbench synth --video`: synthetic clips in DFER-CLIP's list layouts that the real loaders read as DFEW,
FERV39k and MAFW (relative paths, folds, the 11-class MAFW map), reproducible, animated, cheap to re-request."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import config as config_mod
from harness.cli import main
from harness.data.protocols import Context, official_folds
from harness.data.synth import MANIFEST, VIDEO_DATASET, _intensity, generate_video, render_clip, video_classes
from harness.data.table import load_table
from harness.data.vocabulary import ENCODINGS
from harness.errors import FerbenchError
from tests.conftest import REPO



def _dataset(name: str, layout: str, **fields) -> config_mod.Dataset:
    return config_mod.Dataset(name=name, classes=video_classes(layout), layouts=(layout,), video=True, **fields)


DATASETS = {"dfew": _dataset(VIDEO_DATASET, "dfew", protocol="official-folds", folds=5),
            "ferv39k": _dataset("ferv39k", "ferv39k"), "mafw": _dataset("mafw", "mafw", protocol="official-folds", folds=5)}
TINY = dict(clips_per_class=5, frames=(4, 34), size=16, seed=0)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    base = tmp_path_factory.mktemp("video-synth")
    return {layout: (base / layout, generate_video(base / layout, layout, **TINY)) for layout in ("dfew", "ferv39k", "mafw")}


def test_registry_entry_is_dfew_shaped_and_video():
    registry = config_mod.load(REPO / "benchmark.toml")
    ours, dfew, mafw = registry.dataset(VIDEO_DATASET), registry.dataset("dfew"), registry.dataset("mafw")
    assert mafw.classes == video_classes("mafw") and len(mafw.classes) == 11
    assert ours.video and ours.layouts == ("dfew",) and ours.protocol == "official-folds" and ours.folds == 5
    assert ours.classes == dfew.classes == video_classes("dfew")


def test_dfew_layout_loads_with_one_clip_per_class_in_each_fold(written):
    root, summary = written["dfew"]
    table = load_table(root, DATASETS["dfew"])
    assert table.attrs["layout"] == "dfew" and len(table) == 35 == summary["clips"]
    assert table["path"].str.fullmatch(r"DFEW_Frame_Face/\d{5}").all()
    assert (table.groupby(["fold", "label"]).size() == 1).all() and set(table["fold"]) == {1, 2, 3, 4, 5}
    assert table["frames"].sum() == summary["total_frames"]
    assert table["frames"].min() < 16 < table["frames"].max()  # both of DFER-CLIP's sampling branches
    for path, frames in zip(table["path"], table["frames"]):
        assert sorted(p.name for p in (root / path).iterdir()) == [f"{t + 1:05d}.jpg" for t in range(frames)]
    lists = sorted((root / "annotation").iterdir())
    assert [p.name for p in lists] == [f"DFEW_set_{k}_{part}.txt" for k in range(1, 6) for part in ("test", "train")]
    # the official-folds protocol tests each fold on its own clips, trained on the other four
    folds, _ = official_folds(table, Context(0.2, 5))
    for k, fold in enumerate(folds, start=1):
        assert set(table["fold"].iloc[fold.test]) == {k} and k not in set(table["fold"].iloc[fold.train + fold.val])


def test_list_labels_use_dfews_native_encoding(written):
    root, _ = written["dfew"]
    natives = {name: native for native, name in ENCODINGS["dfew"].items()}
    line = (root / "annotation" / "DFEW_set_1_test.txt").read_text().splitlines()[0]
    path, frames, native = line.split()
    assert native == natives["neutral"] == "2"  # first clip drawn is neutral; DFEW numbers it 2
    assert int(frames) == len(list((root / path).iterdir()))


def test_mafw_layout_has_eleven_classes_through_its_native_map(written):
    root, summary = written["mafw"]
    table = load_table(root, DATASETS["mafw"])
    assert len(DATASETS["mafw"].classes) == 11 and summary["classes"] == list(DATASETS["mafw"].classes)
    assert table.groupby("label").size().to_dict() == {name: 5 for name in summary["classes"]}
    assert set(zip(table["native_label"], table["label"])) == {(str(i), name) for i, name in enumerate(
        ["happy", "sad", "neutral", "anger", "surprise", "disgust", "fear",
         "contempt", "anxiety", "helplessness", "disappointment"])}
    assert table["path"].str.fullmatch(r"data/faces/\d{5}").all()


def test_ferv39k_layout_has_one_train_test_split(written):
    root, _ = written["ferv39k"]
    table = load_table(root, DATASETS["ferv39k"])
    assert table["fold"].isna().all()
    assert table.groupby(["split", "label"]).size().to_dict() == {
        **{("train", n): 4 for n in video_classes("ferv39k")}, **{("test", n): 1 for n in video_classes("ferv39k")}}
    assert table["path"].str.fullmatch(r"2_ClipsforFaceCrop/\w+/\w+/\d{4}").all()


def test_frames_are_rgb_jpegs_at_the_size_asked(written):
    root, _ = written["dfew"]
    for path in sorted(root.rglob("*.jpg"))[::50]:
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.mode == "RGB" and im.size == (16, 16)


def test_same_parameters_reuse_and_reproduce_other_seeds_differ(written, tmp_path):
    root, _ = written["dfew"]
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert generate_video(root, "dfew", **TINY)["reused"] is True
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    again = generate_video(tmp_path / "again", "dfew", **TINY)
    assert again["reused"] is False and _digest(tmp_path / "again") == _digest(root)
    generate_video(tmp_path / "other", "dfew", **{**TINY, "seed": 1})
    assert _digest(tmp_path / "other") != _digest(root)


def test_new_parameters_leave_no_stale_frames_or_clips(tmp_path):
    generate_video(tmp_path, "dfew", clips_per_class=6, frames=(20, 30), size=16)
    summary = generate_video(tmp_path, "dfew", clips_per_class=5, frames=(4, 10), size=16)
    table = load_table(tmp_path, DATASETS["dfew"])  # a stale frame would break the frame counts
    assert len(table) == 35 and sum(1 for _ in tmp_path.rglob("*.jpg")) == summary["total_frames"]
    assert len(list((tmp_path / "DFEW_Frame_Face").iterdir())) == 35
    assert json.loads((tmp_path / MANIFEST).read_text())["frames"] == [4, 10]


def test_expression_animates_from_neutral_onset_to_held_apex():
    for seed in range(20):
        strength = _intensity(30, np.random.default_rng(seed))
        assert strength[0] == 0.0 and strength[-1] == 1.0 and (np.diff(strength) >= 0).all()
    frames = np.stack(render_clip("surprise", 2, 30, 48, 0)).astype(float)

    def largest_local_change(a, b):  # mean absolute difference in the most changed 4x4 block
        return np.abs(a - b).reshape(12, 4, 12, 4, 3).mean(axis=(1, 3, 4)).max()

    assert largest_local_change(frames[-1], frames[0]) > 3 * largest_local_change(frames[1], frames[0])
    assert largest_local_change(frames[-1], frames[-2]) < largest_local_change(frames[-1], frames[0]) / 3  # apex held
    assert np.array_equal(np.stack(render_clip("surprise", 2, 30, 48, 0)), frames.astype(np.uint8))


@pytest.mark.parametrize("bad", [dict(layout="affectnet"), dict(clips_per_class=0), dict(frames=(9, 3)), dict(size=8)])
def test_bad_parameters_are_user_errors(tmp_path, bad):
    with pytest.raises(FerbenchError):
        generate_video(tmp_path, **{"layout": "dfew", **TINY, **bad})


def test_cli_writes_synthetic_video_under_the_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("FERBENCH_DATA_ROOT", str(tmp_path))
    with pytest.raises(SystemExit) as done:
        main(["synth", "--video", "--clips-per-class", "5", "--frames", "12", "--size", "16"])
    assert done.value.code == 0
    manifest = json.loads((tmp_path / VIDEO_DATASET / MANIFEST).read_text())
    assert manifest["layout"] == "dfew" and manifest["clips"] == 35 and manifest["frames"] == [8, 12]
    assert len(load_table(tmp_path / VIDEO_DATASET, DATASETS["dfew"])) == 35
