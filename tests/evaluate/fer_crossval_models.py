"""Does a FER-crossval checkpoint load into ferbench's model? Run as `python -m tests.evaluate.fer_crossval_models
MODEL...` (in a process of its own: FER-crossval's and the upstreams' top-level packages `networks`, `models` and
`model` collide, so they are forgotten between one model's imports and the next's).

For each `[[checkpoints]]` entry of MODEL in format fer-crossval: the network is built from vendor/fer-crossval's
own model code with the arguments its scripts pass (tests/evaluate/test_fer_crossval_models.py checks them against
the scripts), no pretrained file read, with and without DataParallel, in the container its script saves; ferbench reads that container (`formats.extract`) and builds and strictly loads its
own adapter model the way `ferbench evaluate --checkpoint` does (`engine.build_model`). Everything is built on
the meta device: shapes only, nothing allocated, no initialisation run. Prints one JSON line per entry.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import sys
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "vendor"
CROSSVAL = VENDOR / "fer-crossval"

SAVED = {  # model → (its FER-crossval folder, the key its scripts save `model.state_dict()` under)
    "adadf": ("AdaDF", "state_dict"),  # Ada-DF's save_checkpoint; adadf_expw_crossval.py: model_state_dict
    "dan": ("DAN", "model_state_dict"),
    "ddamfn": ("DDAMFN", "model_state_dict"),
    "gsdnet": ("GSDNet", "model_state_dict"),
    "lnsunet": ("LNSUNet", "state_dict_model"),
    "poster": ("POSTER", "model_state_dict"),
    "posterpp": ("POSTER++", "model_state_dict"),
}
"""Whether a script wraps the model in DataParallel (DDAMFN, LNSUNet, POSTER always; GSDNet and POSTER++ on
several GPUs; DAN and Ada-DF never) only adds `module.`: both wrappings are tried for every model."""


def saved_key(model: str, trained_on: str) -> str:
    return "model_state_dict" if (model, trained_on) == ("adadf", "expw") else SAVED[model][1]


DEVICE = {"lnsunet": "cpu", "poster": "cpu", "posterpp": "cpu"}
"""Where a model cannot be built on the meta device (its constructor calls `.item()` on a stochastic-depth
schedule), it is built on the CPU."""


def _purge(*packages: str) -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in packages]:
        del sys.modules[name]


@contextlib.contextmanager
def _script_folder(folder: Path):
    """Imports as the script makes them (its folder first on sys.path), forgotten afterwards."""
    _purge("networks", "models", "model", "backbones", "expression", "utils")
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        _purge("networks", "models", "model", "backbones", "expression", "utils")


def build_crossval(model: str, num_classes: int) -> nn.Module:
    """The network as FER-crossval's scripts construct it, without pretrained files; built from FER-crossval's
    own copy of the model code (checked: not the upstream's)."""
    network = _build_crossval(model, num_classes)
    where = Path(type(network).__init__.__code__.co_filename).resolve()
    assert where.is_relative_to(CROSSVAL.resolve()), f"{model} built from {where}, not from vendor/fer-crossval"
    return network


def _build_crossval(model: str, num_classes: int) -> nn.Module:
    from adapters.poster import constructor_without_weights
    from adapters.shims import load_module_from, stand_ins

    folder = CROSSVAL / SAVED[model][0]
    with _script_folder(folder):
        if model == "dan":
            from networks.dan import DAN
            return DAN(num_head=4, num_class=num_classes, pretrained=False)
        if model == "ddamfn":
            from networks.DDAM import DDAMNet
            return DDAMNet(num_class=num_classes, num_head=2, pretrained=False)
        if model == "gsdnet":
            import model.gsdnet as gsdnet
            gsdnet.open = lambda *args, **kwargs: io.BytesIO(pickle.dumps({}))  # the VGGFace2 .pkl: nothing
            return gsdnet.GSDNet(num_class=num_classes)
        if model == "lnsunet":  # expression/__init__.py imports a verification.py FER-crossval lacks: load by path
            swin = load_module_from(folder / "backbones" / "swin.py", "_fer_crossval_swin")
            models = load_module_from(folder / "expression" / "models.py", "_fer_crossval_lnsunet_models")
            return models.SwinTransFER(swin=swin.SwinTransformer(num_classes=512), swin_num_features=768,
                                       num_classes=num_classes, cam=True)
        with constructor_without_weights():
            if model == "adadf":
                from model.model import create_model
                return create_model(num_classes, 0.0)
            if model == "poster":
                with stand_ins("matplotlib", "matplotlib.pyplot"):
                    from models.emotion_hyp import pyramid_trans_expr
                return pyramid_trans_expr(img_size=224, num_classes=num_classes, type="large")
            with stand_ins("thop", profile=None):
                entry = "PosterV2_8cls" if num_classes == 8 else "PosterV2_7cls"
                module = __import__(f"models.{entry}", fromlist=["pyramid_trans_expr2"])
            return module.pyramid_trans_expr2(img_size=112, num_classes=num_classes)
    raise ValueError(model)


def containers(model: str, network: nn.Module, trained_on: str) -> dict[str, dict]:
    """The object the script saves, as built without and with DataParallel."""
    key = saved_key(model, trained_on)
    return {name: {"epoch": 3, key: (nn.DataParallel(network) if wrapped else network).state_dict(), "optimizer_state_dict": {}}
            for name, wrapped in (("plain", False), ("DataParallel", True))}


def check(model: str) -> list[dict]:
    """One result per entry: ferbench's model is built and loaded once per (classes, input size); every other
    wrapping must extract the very same tensors."""
    from harness import config
    from harness.errors import FerbenchError
    from harness.evaluate import formats
    from harness.evaluate.engine import Weights, build_model
    from harness.paths import Paths

    cfg = config.load()
    paths = Paths(vendor=VENDOR, weights=REPO / "weights" / "none")  # no architecture here reads a weight file
    fmt = formats.get("fer-crossval")
    networks: dict[int, nn.Module] = {}
    loaded: dict[tuple[int, int], str] = {}
    results = []
    with torch.device(DEVICE.get(model, "meta")), contextlib.redirect_stdout(io.StringIO()):
        for entry in (c for c in cfg.checkpoints if c.model == model and c.format == "fer-crossval"):
            count, size = len(entry.classes), entry.input_size or cfg.model(model).input_size
            if count not in networks:
                networks[count] = build_crossval(model, count)
            states = {wrapping: formats.extract(container, fmt, f"{model} {entry.trained_on} ({wrapping})")
                      for wrapping, container in containers(model, networks[count], entry.trained_on).items()}
            first = next(iter(states.values()))
            if (count, size) not in loaded:
                weights = Weights(model=model, state=first, classes=entry.classes, sha256="", input_size=size,
                                  eval_batch_size=2, kind="checkpoint", trained_on=entry.trained_on,
                                  info=dict(path=f"FER-crossval {model} {entry.trained_on}"))
                try:
                    build_model(cfg, paths, weights)
                    loaded[count, size] = ""
                except FerbenchError as failure:
                    loaded[count, size] = str(failure)
            same = all({k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in first.items()}
                       for state in states.values())
            results.append(dict(trained_on=entry.trained_on, wrappings=sorted(states), classes=count, input_size=size,
                                tensors=len(first), same_tensors=same, error=loaded[count, size]))
    return results


if __name__ == "__main__":
    for name in sys.argv[1:]:
        for line in check(name):
            print(json.dumps(dict(model=name, **line)), flush=True)
        _purge("networks", "models", "model", "backbones", "expression", "utils")  # the adapter's imports too
