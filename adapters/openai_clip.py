"""OpenAI CLIP towers for the upstreams that bundle their own copy of OpenAI's `clip` package (DFER-CLIP, CEPrompt).

Both upstreams call their bundled `clip.load(name_or_path, jit=False)`, which downloads the file when given a
model name, reads OpenAI's TorchScript archive with `torch.jit.load`, and builds the model from its state dict.
Here the model is built from random init with the architecture fixed by the file name, the declared, sha256-checked
local file is read the same way (a TorchScript archive, else a plain state dict through the weights-only loader) and
loaded strictly with `harness.weights.load_into`; nothing is ever downloaded. The caller passes the `CLIP` class of
its own upstream's bundled package: the two copies differ (CEPrompt's visual tower returns patch tokens too).
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import torch
from torch import nn

from adapters.contract import BuildContext

# clip/model.py CLIP(embed_dim, image_resolution, vision_layers, vision_width, vision_patch_size,
#                    context_length, vocab_size, transformer_width, transformer_heads, transformer_layers)
ARCHITECTURES = {
    "ViT-B-32.pt": (512, 224, 12, 768, 32, 77, 49408, 512, 8, 12),
    "ViT-B-16.pt": (512, 224, 12, 768, 16, 77, 49408, 512, 8, 12),
}
NOT_TENSORS = ("input_resolution", "context_length", "vocab_size")
"""Entries of OpenAI's archives that `build_model` deletes before loading: they are not model tensors."""


def read_state(ctx: BuildContext, name: str) -> dict:
    """The state dict of a declared CLIP file, read as the bundled `clip.load(path, jit=False)` reads it."""
    from adapters.shims import load_weights
    from harness.errors import FerbenchError

    if name not in ctx.weights:
        raise FerbenchError(f"weight file '{name}' is not declared for this model in benchmark.toml")
    try:
        with warnings.catch_warnings():  # torch ≥ 2.9 marks torch.jit deprecated; OpenAI's files are TorchScript
            warnings.simplefilter("ignore", FutureWarning)
            state = torch.jit.load(str(ctx.weights[name]), map_location="cpu").state_dict()
    except RuntimeError:  # not a TorchScript archive: a saved state dict, as clip.load falls back to
        state = load_weights(ctx, name)
    if not isinstance(state, dict):
        raise FerbenchError(f"{ctx.weights[name]}: expected a CLIP TorchScript archive or state dict")
    return {k: v for k, v in state.items() if k not in NOT_TENSORS}


def build(ctx: BuildContext, clip_class: type, name: str, seed: int | None = None) -> nn.Module:
    """A CLIP of the file's architecture in fp32 (as `clip.load` returns it on the CPU): random init, then the
    file's weights when `ctx.pretrained`. With `seed`, the random init is drawn from that seed without touching
    the global RNG stream, so two calls give the same model (CEPrompt's student and frozen teacher)."""
    from harness.weights import load_into

    architecture = ARCHITECTURES[name]
    rng = torch.random.fork_rng(devices=[]) if seed is not None else nullcontext()
    with rng:
        if seed is not None:
            torch.manual_seed(seed)
        model = clip_class(*architecture)
    if ctx.pretrained:
        load_into(model, read_state(ctx, name), what=f"{name} (OpenAI CLIP)")
    return model.float()
