"""Model cost, as papers' comparison tables give it: parameters, forward GFLOPs, inference speed.

Computed once per (model, input size, classes, device, torch version) and cached per user (`cost/` under
harness.data.content's cache folder: `$FERBENCH_CACHE_DIR`, else `~/.cache/ferbench`), then recorded in every
run's result.json (`cost`). The first FLOP count of a process imports torch._dynamo (seconds), hence the cache. GFLOPs come from `torch.utils.flop_counter` (one multiply-add counts as two
FLOPs) for one sample through the adapter's evaluation forward, so test-time crops count. Speed is measured in
eval mode without gradients, after a warm-up, over up to 10 forwards (at least 3, fewer once a second has
passed; a warm-up forward slower than a second is the figure itself): latency is the median time of a one-sample forward, throughput the img/s of the median forward of a
batch of `batch_size` (at most 64), in float32 (no `--amp`). Parameters and FLOPs do not depend on the device;
speed does.
"""

from __future__ import annotations

import json
import statistics
import time
from contextlib import suppress
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from harness.files import write_json_atomic

REPEATS = 10
"""Most timed forwards per figure; fewer (at least `FEWEST`) once `BUDGET_S` has passed, for slow models on CPUs."""
FEWEST = 3
BUDGET_S = 1.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(forward, device: torch.device, repeats: int) -> list[float]:
    start = time.perf_counter()
    forward()  # warm-up: allocator, kernels, lazy initialisation
    _sync(device)
    first = time.perf_counter() - start
    if first >= BUDGET_S:  # a big model on a CPU: warm-up effects are noise beside one forward, which stands
        return [first]
    times: list[float] = []
    while len(times) < repeats and (len(times) < FEWEST or sum(times) < BUDGET_S):
        start = time.perf_counter()
        forward()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def device_label(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"


@torch.no_grad()
def measure(model: torch.nn.Module, forward, sample: torch.Tensor, device, batch_size: int,
            repeats: int = REPEATS) -> dict:
    """`forward(model, batch)` on `sample`: two transformed inputs on `device` (some upstream forwards squeeze the
    batch dimension, so FLOPs are counted on two and halved; latency falls back to two when one fails)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            forward(model, sample)
        flops = counter.get_total_flops() / len(sample)
        batch = sample[:1].expand(batch_size, *sample.shape[1:]).contiguous()
        try:
            latency_batch = 1
            latency = statistics.median(_timed(lambda: forward(model, sample[:1]), device, repeats))
        except Exception:  # noqa: BLE001 - a forward that squeezes the batch dimension: time two
            latency_batch = len(sample)
            latency = statistics.median(_timed(lambda: forward(model, sample), device, repeats))
        throughput = batch_size / statistics.median(_timed(lambda: forward(model, batch), device, repeats))
    finally:
        model.train(was_training)
    params = list(model.parameters())
    return dict(
        params_total=sum(p.numel() for p in params),
        params_trainable=sum(p.numel() for p in params if p.requires_grad),
        gflops=round(flops / 1e9, 4),
        input_shape=list(sample.shape[1:]),
        inference_img_s=round(throughput, 2),
        latency_ms=round(latency * 1e3, 3),
        latency_batch=latency_batch,
        batch_size=batch_size,
        device=device_label(device),
    )


def cached_cost(cache_dir: Path, key: dict, compute) -> dict:
    """The cost for `key` from `cache_dir`, computed (and saved) on the first call."""
    name = "-".join(str(key[k]) for k in sorted(key)).replace("/", "_").replace(" ", "_")
    path = cache_dir / f"{name}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            pass
    cost = dict(compute(), key=key)
    with suppress(OSError):  # a cache that cannot be written only costs a new measurement next time
        write_json_atomic(path, cost)
    return cost


def run_cost(model_name: str, model, adapter, split, eval_transform, device, num_classes: int, input_size: int,
             batch_size: int) -> dict:
    """The run's model cost, from the cache when the same model, size and device were measured before."""
    from harness.data.content import cache_dir

    device = torch.device(device)
    # the parameter count is cheap and tells a changed model (same name, other adapter or upstream) apart
    key = dict(model=model_name, input_size=input_size, classes=num_classes, device=device_label(device),
               torch=torch.__version__, params=sum(p.numel() for p in model.parameters()))

    def given_a_label(model, images):  # a model fed the label (CLIVP-FER's caption): any label costs the same
        labels = torch.zeros(len(images), dtype=torch.long, device=images.device)
        return adapter.eval_forward_given_labels(model, images, labels)

    forward = adapter.eval_forward if adapter.eval_forward_given_labels is None else given_a_label

    def compute():
        sample = eval_transform(split.batch(torch.arange(min(2, len(split)))).to(device))
        return measure(model, forward, sample, device, min(batch_size, 64))

    return cached_cost(cache_dir() / "cost", key, compute)
