"""Upstream checkpoint formats, each built with random tensors in the exact container its training script saves,
and the class mapping by canonical name. Fast: no model is built."""

from __future__ import annotations

import __main__

import numpy as np
import pytest
import torch

from harness.errors import FerbenchError
from harness.evaluate import formats
from harness.evaluate.classmap import class_map

RAF = ("surprise", "fear", "disgust", "happy", "sad", "anger", "neutral")
CANON7 = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
CKPLUS = ("happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")


def tiny_state(prefix: str = "") -> dict:
    g = torch.Generator().manual_seed(0)
    return {f"{prefix}fc.weight": torch.randn(7, 4, generator=g), f"{prefix}fc.bias": torch.randn(7, generator=g),
            f"{prefix}bn.num_batches_tracked": torch.tensor(3)}


def optimizer_state() -> dict:
    param = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    param.grad = torch.ones(2)
    opt.step()
    return opt.state_dict()


class RecorderMeter:
    """Stands for POSTER++'s / DFER-CLIP's main.RecorderMeter, pickled as __main__.RecorderMeter."""

    def __init__(self, total_epoch=3):
        self.total_epoch, self.current_epoch = total_epoch, 1
        self.epoch_losses = np.zeros((total_epoch, 2), dtype=np.float32)
        self.epoch_accuracy = np.ones((total_epoch, 2), dtype=np.float32)


class RecorderMeter1(RecorderMeter):
    pass


@pytest.fixture
def pickled_as_main(monkeypatch):
    for cls in (RecorderMeter, RecorderMeter1):
        monkeypatch.setattr(cls, "__module__", "__main__")
        monkeypatch.setattr(__main__, cls.__name__, cls, raising=False)


def saved(tmp_path, obj, name="ckpt.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def check(state: dict) -> None:
    reference = tiny_state()
    assert set(state) == set(reference)
    for key, value in reference.items():
        assert torch.equal(state[key], value)


@pytest.mark.parametrize("name", ["dan", "ddamfn"])
def test_iter_model_state_dict_optimizer(tmp_path, name):
    path = saved(tmp_path, {"iter": 12, "model_state_dict": tiny_state(), "optimizer_state_dict": optimizer_state()})
    check(formats.read(path, formats.get(name)))


def test_posterpp_full_checkpoint_with_recorders_loads_weights_only(tmp_path, pickled_as_main):
    path = saved(tmp_path, {"epoch": 5, "state_dict": tiny_state("module."), "best_acc": torch.tensor(91.2),
                            "optimizer": optimizer_state(), "recorder1": RecorderMeter1(), "recorder": RecorderMeter()})
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    assert "__main__.RecorderMeter" in unsafe  # the plain weights-only loader alone would refuse this file
    check(formats.read(path, formats.get("posterpp")))


def test_posterpp_best_file_is_only_the_optimizer_state(tmp_path):
    path = saved(tmp_path, optimizer_state())  # save_checkpoint: best_state = state.pop('optimizer')
    with pytest.raises(FerbenchError, match="holds only the optimizer state"):
        formats.read(path, formats.get("posterpp"))


def test_dferclip_checkpoint(tmp_path, pickled_as_main):
    path = saved(tmp_path, {"epoch": 3, "state_dict": tiny_state("module."), "best_acc": torch.tensor(55.0),
                            "optimizer": optimizer_state(), "recorder": RecorderMeter()})
    check(formats.read(path, formats.get("dferclip")))


def test_adadf_checkpoint(tmp_path):
    path = saved(tmp_path, {"epoch": 4, "state_dict": tiny_state(), "acc": torch.tensor(88.0), "best_acc": torch.tensor(89.0),
                            "optimizer": optimizer_state(), "class_distributions": torch.rand(7, 7)})
    check(formats.read(path, formats.get("adadf")))


def test_ceprompt_stage2_bare_state_dict(tmp_path):
    check(formats.read(saved(tmp_path, tiny_state()), formats.get("ceprompt-stage2")))


def scheduler_state() -> dict:
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([param], lr=1e-3)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10).state_dict()


@pytest.mark.parametrize("container", [
    # DAN, DDAMFN (DataParallel), GSDNet, POSTER, POSTER++, AdaDF on ExpW
    {"epoch": 9, "model_state_dict": tiny_state("module."), "optimizer_state_dict": optimizer_state()},
    {"iter": 9, "model_state_dict": tiny_state(), "optimizer_state_dict": {}},
    # LNSUNet: balanced_accuracy_score(...) * 100 is a numpy float (scikit-learn before 1.6)
    {"epoch": 9, "state_dict_model": tiny_state("module."), "state_optimizer": optimizer_state(),
     "state_lr_scheduler": scheduler_state(), "best_val_acc": 91.5, "best_val_balanced_acc": np.float64(84.25),
     "iteration": 2},
    # AdaDF on CK+ and SFEW (their own save_checkpoint)
    {"epoch": 4, "state_dict": tiny_state(), "optimizer_state_dict": optimizer_state(),
     "class_distributions": torch.rand(7, 7)},
    # AdaDF on RAF-DB (Ada-DF's utils.save_checkpoint, with the iteration's test indices)
    {"epoch": 5, "state_dict": tiny_state(), "acc": 80.5, "best_acc": 81.0, "optimizer": optimizer_state(),
     "class_distributions": torch.rand(7, 7), "test_indices": np.array([4, 0, 17], dtype=np.int64)},
], ids=["epoch-dataparallel", "iter", "lnsunet-numpy-float", "adadf-own", "adadf-rafdb-numpy-array"])
def test_fer_crossval_best_checkpoints(tmp_path, container):
    check(formats.read(saved(tmp_path, container), formats.get("fer-crossval")))


def test_numpy_values_are_refused_where_a_format_does_not_expect_them(tmp_path):
    path = saved(tmp_path, {"iter": 1, "model_state_dict": tiny_state(), "acc": np.float64(0.5)})
    with pytest.raises(FerbenchError, match="numpy"):
        formats.read(path, formats.get("dan"))


def test_a_fer_crossval_entry_gives_its_input_size_and_note(tmp_path):
    from harness import config
    from harness.evaluate.engine import checkpoint_weights

    cfg = config.load()
    path = saved(tmp_path, {"epoch": 1, "model_state_dict": tiny_state(), "optimizer_state_dict": {}})
    sfew = checkpoint_weights(cfg, "dan", path, "sfew", "fer-crossval")
    assert sfew.input_size == 112 and cfg.model("dan").input_size == 224 and "note" not in sfew.info
    assert sfew.classes == ("anger", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert checkpoint_weights(cfg, "dan", path, "rafdb", "fer-crossval").input_size == 224
    raf = checkpoint_weights(cfg, "adadf", saved(tmp_path, {"state_dict": tiny_state()}, "a.pth"), "rafdb", "fer-crossval")
    assert "get_dataloaders" in raf.info["note"] and raf.input_size == 224


def test_a_checkpoint_that_saw_the_other_channel_order_is_fed_it(tmp_path):
    """FER-crossval's POSTER on SFEW trained on RGB; ferbench's POSTER feeds BGR: the entry swaps them back."""
    from harness import config
    from harness.evaluate.engine import _swapped, checkpoint_weights

    cfg = config.load()
    path = saved(tmp_path, {"epoch": 1, "model_state_dict": tiny_state(), "optimizer_state_dict": {}})
    assert checkpoint_weights(cfg, "poster", path, "sfew", "fer-crossval").swap_channels
    assert not checkpoint_weights(cfg, "poster", path, "rafdb", "fer-crossval").swap_channels
    images = torch.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2)
    clips = torch.arange(2 * 4 * 3 * 2 * 2).reshape(2, 4, 3, 2, 2)
    assert torch.equal(_swapped(lambda batch: batch, images)[:, 0], images[:, 2])
    assert torch.equal(_swapped(lambda batch: batch, clips)[:, :, 2], clips[:, :, 0])


def test_a_code_running_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    path = saved(tmp_path, {"model_state_dict": tiny_state(), "extra": Evil()})
    with pytest.raises(FerbenchError, match="refused: the file needs the global builtins.print"):
        formats.read(path, formats.get("dan"))


def test_wrong_container_names_its_keys(tmp_path):
    with pytest.raises(FerbenchError, match="no 'model_state_dict'"):
        formats.read(saved(tmp_path, {"net": tiny_state()}), formats.get("dan"))


def test_class_map_raf_order_onto_canonical():
    mapping = class_map(RAF, CANON7)
    assert mapping.shared == CANON7 and not mapping.masked and not mapping.unscored
    assert [RAF[i] for i in mapping.outputs] == list(CANON7)
    assert "reordered" in mapping.describe()


def test_class_map_reports_neutral_and_contempt():
    mapping = class_map(CANON7, CKPLUS)
    assert mapping.masked == ("neutral",) and mapping.unscored == ("contempt",)
    assert mapping.shared == CKPLUS[:-1]
    with pytest.raises(FerbenchError, match="share 1 class"):
        class_map(("happy", "sad"), ("happy", "contempt"))


def test_registry_declares_valid_checkpoint_kinds():
    from harness import config

    cfg = config.load()
    kinds = {(c.model, c.trained_on, c.format) for c in cfg.checkpoints}
    assert ("dan", "rafdb", "dan") in kinds and ("dan", "ckplus", "fer-crossval") in kinds
    bad = config.DEFAULT_CONFIG.read_text() + '\n[[checkpoints]]\nmodel = "dan"\ntrained_on = "rafdb"\nformat = "nope"\n' \
        'classes = ["happy", "sad"]\nsource = "x"\n'
    with pytest.raises(FerbenchError, match="format: unknown format 'nope'"):
        config.parse(bad)


def test_selected_weights_follow_the_selected_epoch():
    from types import SimpleNamespace

    from harness.evaluate.saved import selected_weights

    model = torch.nn.Linear(2, 2)
    kept = {"weight": torch.zeros(2, 2), "bias": torch.zeros(2)}
    last = SimpleNamespace(selected_epoch=3, history=[{}, {}, {}], selected_state=kept)
    assert torch.equal(selected_weights(model, last)["weight"], model.weight)
    earlier = SimpleNamespace(selected_epoch=2, history=[{}, {}, {}], selected_state=kept)
    assert selected_weights(model, earlier) is kept
    with pytest.raises(RuntimeError, match="not kept"):
        selected_weights(model, SimpleNamespace(selected_epoch=1, history=[{}, {}], selected_state=None))


def test_evaluate_prints_the_checkpoints_note(tmp_path, monkeypatch):
    from rich.console import Console

    from harness import config
    from harness.evaluate import engine
    from harness.evaluate.cli import evaluate_command
    from harness.paths import Paths

    record = dict(samples=3, accuracy=0.5, balanced_accuracy=0.5, macro_f1=0.5, class_mapping="7 shared classes",
                  excluded={}, id="abc", note="trained on RGB images")
    monkeypatch.setattr(engine, "evaluate", lambda *args, **kwargs: (record, True))
    path = saved(tmp_path, {"epoch": 1, "model_state_dict": tiny_state(), "optimizer_state_dict": {}})
    out = Console(record=True, width=200)
    evaluate_command(config.load(), Paths(results=tmp_path), out, Console(stderr=True), model="poster", dataset="sfew",
                     run_id=None, checkpoint=path, trained_on="sfew", fmt="fer-crossval", split="test", protocol=None,
                     fold=None, dataset_dir=None, aligned=None, device="cpu", overwrite=False)
    assert "note on this checkpoint: trained on RGB images" in out.export_text()
