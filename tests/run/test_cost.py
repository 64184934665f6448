"""Model cost: parameter counts, FLOPs from torch's counter, the per-model cache and the report block."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from harness.report.cost import cost_rows, render_markdown
from harness.run.cost import cached_cost, measure


@pytest.mark.slow  # the first FLOP count of a process imports torch._dynamo
def test_parameters_and_flops_of_a_known_model():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
    model[3].weight.requires_grad_(False)
    cost = measure(model, lambda m, x: m(x), torch.rand(2, 3, 2, 2), "cpu", batch_size=4, repeats=2)
    assert cost["params_total"] == 12 * 5 + 5 + 5 * 3 + 3 and cost["params_trainable"] == 12 * 5 + 5 + 3
    assert cost["gflops"] == round(2 * (12 * 5 + 5 * 3) / 1e9, 4)  # per sample, a multiply-add is two FLOPs
    assert cost["latency_batch"] == 1 and cost["inference_img_s"] > 0 and cost["input_shape"] == [3, 2, 2]
    assert model.training, "the model's mode is put back"


def test_a_forward_that_needs_two_samples_is_timed_on_two():
    def forward(model, x):
        assert len(x) > 1, "squeezes the batch dimension"
        return model(x)

    cost = measure(nn.Linear(4, 2), forward, torch.rand(2, 4), "cpu", batch_size=4, repeats=2)
    assert cost["latency_batch"] == 2


def test_the_cost_is_computed_once_per_key(tmp_path):
    calls = []
    key = dict(model="m", input_size=8, classes=3, device="cpu")
    compute = lambda: calls.append(1) or dict(gflops=1.0)
    assert cached_cost(tmp_path, key, compute) == cached_cost(tmp_path, key, compute) == dict(gflops=1.0, key=key)
    assert calls == [1]


def test_report_rows_keep_the_latest_cost_per_model_and_skip_runs_without():
    cost = dict(params_total=11_200_000, params_trainable=11_000_000, gflops=1.8234, inference_img_s=512.3,
                latency_ms=4.25, latency_batch=1, input_shape=[3, 224, 224], device="NVIDIA H100")
    runs = pd.DataFrame([
        dict(model="DAN", finished="2", cost=cost),
        dict(model="DAN", finished="1", cost=dict(cost, gflops=9.0)),
        dict(model="old", finished="3", cost=None),
    ])
    rows = cost_rows(runs)
    assert rows == [{"model": "DAN", "input": "224×224", "params (M)": "11.20", "trainable (M)": "11.00",
                     "GFLOPs": "1.82", "img/s": "512.3", "latency (ms)": "4.2", "device": "NVIDIA H100"}]
    assert "| DAN | 224×224 | 11.20 | 11.00 | 1.82 |" in render_markdown(rows)


def test_a_malformed_or_failed_cost_is_left_out_of_the_block():
    runs = pd.DataFrame([dict(model="a", finished="1", cost=dict(error="RuntimeError: x")),
                         dict(model="b", finished="1", cost=dict(params_total="many", gflops=1.0))])
    assert cost_rows(runs) == []
