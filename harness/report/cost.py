"""The model-cost block of the report (`ferbench report --cost`): parameters, forward GFLOPs and inference speed
per model, input size and device, from the `cost` each run recorded (harness/run/cost.py)."""

from __future__ import annotations

import pandas as pd
from pydantic import ValidationError

from harness.run.records import CostRecord

COLUMNS = ("model", "input", "params (M)", "trainable (M)", "GFLOPs", "img/s", "latency (ms)", "device")


def cost_rows(runs: pd.DataFrame) -> list[dict]:
    """One row per (model, input size, device), from its most recently finished run with a cost."""
    rows = {}
    for run in runs.sort_values("finished").itertuples():
        try:
            cost = CostRecord.model_validate(getattr(run, "cost", None))
        except ValidationError:  # no cost (older runs), a failed measurement, or an edited file
            continue
        shape = cost.input_shape
        size = "×".join(str(n) for n in shape[-2:]) + (f" ×{shape[0]} frames" if len(shape) == 4 else "")
        rows[(run.model, size, cost.device)] = {
            "model": run.model,
            "input": size,
            "params (M)": f"{cost.params_total / 1e6:.2f}",
            "trainable (M)": f"{cost.params_trainable / 1e6:.2f}",
            "GFLOPs": f"{cost.gflops:.2f}",
            "img/s": f"{cost.inference_img_s:.1f}",
            "latency (ms)": f"{cost.latency_ms:.1f}" + ("" if cost.latency_batch == 1 else f" (batch {cost.latency_batch})"),
            "device": cost.device,
        }
    return [rows[key] for key in sorted(rows)]


def render_markdown(rows: list[dict]) -> str:
    if not rows:
        return "\n## Model cost\n\nNo run recorded a model cost (runs from before ferbench measured it).\n"
    lines = ["", "## Model cost", "",
             "Forward GFLOPs per sample (torch.utils.flop_counter, a multiply-add counts two); inference speed in "
             "float32, eval mode, on the device named.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row[c] for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"
