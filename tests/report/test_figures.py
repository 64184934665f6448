"""The HTML figures: the selected epoch marked on the curves, honest recall bars, no caption repeating the title."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

from harness.report import plots
from tests.report.conftest import history


def test_error_bars_are_cut_at_zero_and_one_and_say_so():
    bars, clipped = plots.error_bars(np.array([0.95, 0.5, 0.02]), np.array([0.1, 0.1, 0.05]))
    np.testing.assert_allclose(bars, [[0.1, 0.1, 0.02], [0.05, 0.1, 0.05]])
    assert clipped
    assert not plots.error_bars(np.array([0.5]), np.array([0.1]))[1]


def runs(selected: list[int], stages: bool = False) -> pd.DataFrame:
    rows = []
    for epoch in selected:
        parts = {"eva": {"history": history(0.8, 0.7, epochs=3)}, "cat": {"history": history(0.9, 0.8)}} if stages else {}
        rows.append(dict(history=[] if stages else history(0.9, 0.8), stages=parts, selected_epoch=epoch,
                         confusion_matrix=[[8, 2], [1, 9]], per_class_recall=[0.8, 0.9], classes=("happy", "sad"),
                         video=False, selection="val_balanced_accuracy"))
    return pd.DataFrame(rows)


def test_selected_epochs_follow_the_stages():
    assert plots._selected_epochs(runs([2, 4])) == [2, 4]
    assert plots._selected_epochs(runs([2], stages=True)) == [5]  # epoch 2 of the last stage, after 3 of the first


def test_each_runs_selected_epoch_is_marked(monkeypatch):
    marked = []
    original = Axes.plot

    def plot(self, *args, **kwargs):
        if kwargs.get("marker") == "v":
            marked.append(args[:2])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", plot)
    assert plots.cell_figure(runs([2, 4]), "baseline on synthetic")[:4] == b"\x89PNG"
    assert [epoch for epoch, _ in marked] == [2, 4]
    assert marked[0][1] == pytest.approx(0.8 * 2 / 4)  # on the run's validation curve

