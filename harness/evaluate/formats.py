"""Upstream checkpoint formats: where the model weights sit in the file each upstream's training script writes.

Each format is read from the script that saves it (file and line in `Format.written_by`); docs/guides/
evaluate-and-predict.md shows them all. Files load with `torch.load(weights_only=True)` through
harness.weights.load_state: no code from the file runs. Two formats pickle a training-log object beside the
weights (POSTER++'s and DFER-CLIP's `RecorderMeter`, defined in their `main.py`, so saved as
`__main__.RecorderMeter`); for those the weights-only loader is allowed to rebuild that one name as an inert
record (`Recorded`) and the numpy arrays it holds, nothing else. FER-crossval's files may hold plain numpy
values beside the weights (LNSUNet's `best_val_balanced_acc`, a numpy float from scikit-learn; Ada-DF's RAF-DB
`test_indices` array): numpy arrays and scalars, and nothing else, are allowed there. A `module.` prefix from
`nn.DataParallel` is removed. Importing this module does not import torch (benchmark.toml validation lists FORMATS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import FerbenchError


@dataclass(frozen=True)
class Format:
    name: str
    written_by: str
    layout: str
    """The saved object, as the script builds it."""
    weights_keys: tuple[str, ...]
    """Keys that hold the model's state dict, tried in order; () for a bare state dict."""
    recorders: tuple[str, ...] = ()
    """`__main__` classes pickled in the file (training logs) that may be rebuilt as inert records."""
    numpy: bool = False
    """Whether numpy arrays and scalars may sit beside the weights (always, with recorders)."""


_ITER_DICT = "{'iter': epoch, 'model_state_dict': model.state_dict(), 'optimizer_state_dict': optimizer.state_dict()}"

FORMAT_TABLE: tuple[Format, ...] = (
    Format("dan", "yaoing/DAN rafdb.py:256 (affectnet.py:303 the same)", _ITER_DICT, ("model_state_dict",)),
    Format("ddamfn", "SainingZhang/DDAMFN rafdb_train.py:225 (affectnet_train.py, ferPlus_train.py, "
           "DDAMFN++/*_sam_opt_*.py the same)", _ITER_DICT, ("model_state_dict",)),
    Format(
        "posterpp", "Talented-Q/POSTER_V2 main.py:202 save_checkpoint (main_8.py:301 the same)",
        "{'epoch': epoch + 1, 'state_dict': DataParallel(model).state_dict(), 'best_acc': tensor, "
        "'optimizer': optimizer.state_dict(), 'recorder1': RecorderMeter1, 'recorder': RecorderMeter} "
        "(the checkpoint_path file; the best_checkpoint_path file holds only the optimizer state, "
        "because save_checkpoint saves `state.pop('optimizer')`)",
        ("state_dict",), recorders=("RecorderMeter", "RecorderMeter1"),
    ),
    Format(
        "adadf", "taylor-xy0827/Ada-DF train.py:130 save_checkpoint (utils.py:117; model_best.pth.tar is a copy)",
        "{'epoch': epoch + 1, 'state_dict': model.state_dict(), 'acc': tensor, 'best_acc': tensor, "
        "'optimizer': optimizer.state_dict(), 'class_distributions': tensor}",
        ("state_dict",),
    ),
    Format(
        "ceprompt-stage2", "HaoliangZhou/CEPrompt engine_fer_second_stage.py:57 (commented out upstream; "
        "train_fer_second_stage.py:107 reads --eval_ckpt the same way)",
        "model.state_dict() of CLIPVIT, a bare state dict (loaded upstream with strict=False)", (),
    ),
    Format(
        "dferclip", "zengqunzhao/DFER-CLIP main.py:225 save_checkpoint (model_best.pth is a copy)",
        "{'epoch': epoch + 1, 'state_dict': DataParallel(model).state_dict(), 'best_acc': tensor, "
        "'optimizer': optimizer.state_dict(), 'recorder': RecorderMeter}",
        ("state_dict",), recorders=("RecorderMeter",),
    ),
    Format(
        "fer-crossval", "StevenHSKim/FER-crossval <Model>/<model>_<dataset>_crossval.py, best checkpoint per split",
        "{'epoch' or 'iter': epoch, 'model_state_dict': model.state_dict() (DataParallel for DDAMFN, POSTER, "
        "POSTER++ and GSDNet on several GPUs), 'optimizer_state_dict': …} (DAN, DDAMFN, GSDNet, POSTER, POSTER++, "
        "AdaDF on ExpW); LNSUNet: {'epoch', 'state_dict_model': DataParallel(model).state_dict(), 'state_optimizer', "
        "'state_lr_scheduler', 'best_val_acc', 'best_val_balanced_acc' (a numpy float), 'iteration'}; AdaDF on "
        "CK+, SFEW, FERPlus, FER2013 and RAF-DB: Ada-DF's own {'epoch', 'state_dict', 'optimizer' or "
        "'optimizer_state_dict', 'class_distributions', …} (RAF-DB adds 'test_indices', a numpy array)",
        ("model_state_dict", "state_dict_model", "state_dict"), numpy=True,
    ),
    Format("state-dict", "any script that saves model.state_dict() itself", "a bare state dict", ()),
)
FORMATS: tuple[str, ...] = tuple(f.name for f in FORMAT_TABLE)


def get(name: str) -> Format:
    for entry in FORMAT_TABLE:
        if entry.name == name:
            return entry
    raise FerbenchError(f"unknown checkpoint format '{name}'; known: {', '.join(FORMATS)}", exit_code=2)


class Recorded:
    """An inert stand-in for a pickled training-log object: its attributes are restored as data, no method runs."""

    def __setstate__(self, state) -> None:
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})


def _stand_ins(fmt: Format) -> list:
    """Globals the weights-only loader may rebuild for this format: each recorder `__main__.Name` as an inert
    record, and numpy arrays and scalars (under numpy 2's and numpy 1's module names)."""
    if not (fmt.recorders or fmt.numpy):
        return []
    import numpy as np
    from numpy._core.multiarray import _reconstruct, scalar

    allowed: list = [(type(name, (Recorded,), {"__module__": "__main__"}), f"__main__.{name}") for name in fmt.recorders]
    allowed += [_reconstruct, (_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype]
    allowed += [scalar, (scalar, "numpy.core.multiarray.scalar")]
    allowed += [getattr(np.dtypes, kind) for kind in ("Float32DType", "Float64DType", "Int64DType", "Int32DType")]
    return allowed


def read(path: Path, fmt: Format) -> dict:
    """The file's model state dict (name → tensor), without any `module.` prefix."""
    import torch

    from harness.weights import load_state

    with torch.serialization.safe_globals(_stand_ins(fmt)):
        saved = load_state(path, what=f"the {fmt.name} checkpoint format")
    return extract(saved, fmt, str(path))


def extract(saved: object, fmt: Format, what: str) -> dict:
    if not isinstance(saved, Mapping):
        raise FerbenchError(f"{what}: expected a {fmt.name} checkpoint ({fmt.layout}), got a {type(saved).__name__}")
    state = saved
    if fmt.weights_keys:
        key = next((k for k in fmt.weights_keys if k in saved), None)
        if key is None:
            hint = (" — this looks like POSTER++'s best_checkpoint_path file, which holds only the optimizer state; "
                    "evaluate the checkpoint_path file" if fmt.name == "posterpp" and "param_groups" in saved else "")
            raise FerbenchError(f"{what}: not a {fmt.name} checkpoint: no {' or '.join(repr(k) for k in fmt.weights_keys)} "
                                f"among its keys ({', '.join(map(str, list(saved)[:6]))}){hint}")
        state = saved[key]
    if not isinstance(state, Mapping):
        raise FerbenchError(f"{what}: the {fmt.name} weights entry is a {type(state).__name__}, not a state dict")
    prefixed = all(str(k).startswith("module.") for k in state) and len(state) > 0
    return {(str(k)[len("module."):] if prefixed else str(k)): v for k, v in state.items()}
