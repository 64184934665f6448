"""Protocols turn a dataset table into train/val/test index lists, saved once and shared by every model.

`official`, `official-folds`, `subject-kfold` and `photo-kfold` are ferbench's leak-free protocols;
`crossval-compat` (FER-crossval, harness/data/fer_crossval.py) and the upstream fold formulas
(`fer-pytorch-folds`, `clivp-folds`: harness/data/fold_formulas.py) reproduce published splits index for index.

Validation always comes from the training side, so model selection never sees the test set. Every split is
drawn by scikit-learn with a fixed seed and the drawn indices are saved under the results folder, so every
model, every repeat and every later scikit-learn version sees the same samples for as long as the dataset's
manifest is unchanged.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import sklearn
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, train_test_split

from harness.data import fer_crossval
from harness.data.fold_formulas import FORMULAS
from harness.errors import FerbenchError
from harness.files import read_json, write_json_atomic

SPLIT_SEED = 0
"""Seed of every ferbench-drawn split: every repeat and every model gets the same folds and validation."""


@dataclass(frozen=True)
class Fold:
    train: list[int]
    val: list[int]
    test: list[int]


@dataclass(frozen=True)
class Context:
    """What a protocol may depend on besides the table: the validation share, k, and which dataset and model
    (crossval-compat draws FER-crossval's split variant of the model's script on that dataset)."""

    val_fraction: float
    k: int = 10
    dataset: str = ""
    model: str = ""


class _Unfit(Exception):
    """The data cannot be split this way; the message says why, starting with a verb ('needs …')."""


def _sorted(indices) -> list[int]:
    return sorted(int(i) for i in indices)


def _carve_validation(indices: np.ndarray, labels: np.ndarray, fraction: float) -> tuple[list[int], list[int]]:
    """A stratified slice of `indices`, or a plain random one when a class is too small to stratify."""
    if fraction <= 0:
        return _sorted(indices), []
    if len(indices) < 2:
        raise _Unfit(f"needs at least 2 training samples to carve a validation slice, and a fold has {len(indices)}")
    try:
        train, val = train_test_split(indices, test_size=fraction, random_state=SPLIT_SEED, stratify=labels[indices])
    except ValueError:
        train, val = train_test_split(indices, test_size=fraction, random_state=SPLIT_SEED)
    return _sorted(train), _sorted(val)


def _group_folds(labels: np.ndarray, groups: np.ndarray, k: int) -> tuple[list[np.ndarray], str]:
    """k group-disjoint test folds (positions into `labels`), stratified by label where the classes allow it."""
    positions = np.zeros((len(labels), 1))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        try:
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=SPLIT_SEED)
            tests = [test for _, test in splitter.split(positions, labels, groups)]
        except ValueError:
            tests = []
    if tests and all(len(test) for test in tests):
        return tests, "StratifiedGroupKFold"
    return [test for _, test in GroupKFold(n_splits=k).split(positions, labels, groups)], "GroupKFold"


def _carve_subjects(
    indices: np.ndarray, labels: np.ndarray, subjects: np.ndarray, fraction: float
) -> tuple[list[int], list[int], str]:
    """Validation = one of round(1/fraction) stratified subject (or photo) groups of `indices`, so no group is in both."""
    if fraction <= 0:
        return _sorted(indices), [], "none"
    n_subjects = len(np.unique(subjects[indices]))
    if n_subjects < 2:
        raise _Unfit(f"needs 2 training subjects per fold to draw validation subjects, and a fold has {n_subjects}")
    parts = min(max(2, round(1 / fraction)), n_subjects)
    tests, splitter = _group_folds(labels[indices], subjects[indices], parts)
    val = indices[tests[0]]
    return _sorted(np.setdiff1d(indices, val)), _sorted(val), splitter


def official(table: pd.DataFrame, ctx: Context) -> tuple[list[Fold], dict]:
    """The dataset's own train/test split; validation is its official val split, else a stratified slice of train."""
    val_fraction = ctx.val_fraction
    split, labels = table["split"], table["label"].to_numpy()
    train_idx = np.flatnonzero(split.eq("train").to_numpy())
    official_val = np.flatnonzero(split.eq("val").to_numpy())
    if len(official_val):
        train, val = _sorted(train_idx), _sorted(official_val)
    else:
        train, val = _carve_validation(train_idx, labels, val_fraction)
    test = _sorted(np.flatnonzero(split.eq("test").to_numpy()))
    validation = "official val split" if len(official_val) else "stratified slice of train (train_test_split)"
    procedure = dict(validation=validation, val_fraction=val_fraction, val_seed=SPLIT_SEED)
    return [Fold(train=train, val=val, test=test)], procedure


def _grouped_kfold(table: pd.DataFrame, groups: np.ndarray, ctx: Context) -> tuple[list[Fold], dict]:
    """k group-disjoint folds stratified by label; validation groups come from the training folds."""
    val_fraction, k = ctx.val_fraction, ctx.k
    labels = table["label"].to_numpy()
    tests, fold_splitter = _group_folds(labels, groups, k)
    everything = np.arange(len(table))
    folds, val_splitters = [], set()
    for test in tests:
        train, val, val_splitter = _carve_subjects(np.setdiff1d(everything, test), labels, groups, val_fraction)
        folds.append(Fold(train=train, val=val, test=_sorted(test)))
        val_splitters.add(val_splitter)
    procedure = dict(
        k=k, fold_splitter=fold_splitter, fold_seed=SPLIT_SEED, val_fraction=val_fraction,
        val_subject_parts=max(2, round(1 / val_fraction)) if val_fraction > 0 else 0,
        val_splitter="/".join(sorted(val_splitters)), val_seed=SPLIT_SEED,
    )
    return folds, procedure


def subject_kfold(table: pd.DataFrame, ctx: Context) -> tuple[list[Fold], dict]:
    """k subject-disjoint folds; validation subjects come from the training folds."""
    folds, procedure = _grouped_kfold(table, table["subject"].astype(str).to_numpy(), ctx)
    return folds, dict(procedure, group="subject")


def photo_kfold(table: pd.DataFrame, ctx: Context) -> tuple[list[Fold], dict]:
    """k photo-disjoint folds: every face of one image file (ExpW's several labelled faces per photo) on one side."""
    folds, procedure = _grouped_kfold(table, table["path"].astype(str).to_numpy(), ctx)
    return folds, dict(procedure, group="image file (all faces of one photo)")


def official_folds(table: pd.DataFrame, ctx: Context) -> tuple[list[Fold], dict]:
    """Fold i tests the samples of the i-th official fold; validation is a stratified slice of the other folds."""
    val_fraction = ctx.val_fraction
    fold, labels = table["fold"].astype("Int64").to_numpy(dtype=int), table["label"].to_numpy()
    values = sorted({int(value) for value in fold})
    folds = []
    for value in values:
        train, val = _carve_validation(np.flatnonzero(fold != value), labels, val_fraction)
        folds.append(Fold(train=train, val=val, test=_sorted(np.flatnonzero(fold == value))))
    return folds, dict(fold_values=values, val_fraction=val_fraction, val_seed=SPLIT_SEED)


def _crossval_variant(ctx: Context) -> str:
    return fer_crossval.variant(ctx.model, ctx.dataset)


def crossval_compat(table: pd.DataFrame, ctx: Context) -> tuple[list[Fold], dict]:
    """FER-crossval's procedure, reproduced index for index: pooled, unstratified, overlapping test sets, with
    the validation rule of the model's own FER-crossval script on this dataset (see harness/data/fer_crossval.py)."""
    variant = _crossval_variant(ctx)
    folds = [
        Fold(train=_sorted(train), val=_sorted(val), test=_sorted(test))
        for train, val, test in fer_crossval.draw(len(table), variant)
    ]
    procedure = dict(
        variant=variant, rule=fer_crossval.VARIANTS[variant], iterations=fer_crossval.ITERATIONS,
        script=fer_crossval.script(ctx.model, ctx.dataset), layout=table.attrs.get("layout"),
    )
    return folds, procedure


def _formula_folds(name: str):
    formula = FORMULAS[name]

    def make(table: pd.DataFrame, ctx: Context) -> tuple[list[Fold], dict]:
        """The upstream's test blocks mapped to table rows by path; validation from the rest, by subject groups
        where the table has subjects, else a stratified slice."""
        order = formula.order(table)
        sizes = [len(rows) for rows in order]
        numbering = [row for rows in order for row in rows]
        labels, folds, tested = table["label"].to_numpy(), [], np.zeros(len(table), dtype=int)
        subjects = table["subject"].astype(str).to_numpy() if table["subject"].notna().all() else None
        val_splitters = set()
        for fold in range(1, formula.folds + 1):
            test = sorted({numbering[p] for p in formula.test_positions(sizes, fold)})
            tested[test] += 1
            rest = np.setdiff1d(np.arange(len(table)), test)
            if subjects is not None:  # upstream has no validation; ours at least shares no subject with train
                train, val, splitter = _carve_subjects(rest, labels, subjects, ctx.val_fraction)
                val_splitters.add(f"subject groups ({splitter})")
            else:
                train, val = _carve_validation(rest, labels, ctx.val_fraction)
                val_splitters.add("stratified slice (train_test_split)")
            folds.append(Fold(train=train, val=val, test=test))
        procedure = dict(
            source=formula.source, class_order=list(formula.classes), blocks=list(formula.blocks),
            class_sizes=sizes, upstream_class_sizes=list(formula.class_sizes),
            sizes_match_upstream=tuple(sizes) == formula.class_sizes, file_order=formula.file_order,
            test_predictions=int(tested.sum()), tested_once=int((tested == 1).sum()),
            tested_twice_or_more=int((tested > 1).sum()), never_tested=int((tested == 0).sum()),
            val_fraction=ctx.val_fraction, val_splitter="/".join(sorted(val_splitters)), val_seed=SPLIT_SEED,
            overlapping=True,
        )
        return folds, procedure

    def unfit(table: pd.DataFrame, ctx: Context) -> str | None:
        if ctx.dataset and ctx.dataset != formula.dataset:
            return f"is {formula.dataset}'s upstream fold formula and does not apply to '{ctx.dataset}'"
        return formula.unfit(table)

    return make, unfit


def _needs_crossval_layout(table: pd.DataFrame, ctx: Context) -> str | None:
    if len(table) < 5:
        return f"needs at least 5 samples, and it has {len(table)}"
    layout = table.attrs.get("layout")
    if layout is not None and layout not in fer_crossval.LAYOUTS.values():
        own = ", ".join(f"{d}: {lay}" for d, lay in fer_crossval.LAYOUTS.items())
        return (f"reproduces FER-crossval's indices, which name images only in its own label files ({own}); "
                f"this folder is layout '{layout}'")
    dropped = [note for note in table.attrs.get("notes", []) if "not among the classes" in note]
    if dropped:
        return (f"reproduces FER-crossval's indices, which count every row of its label file, and the table "
                f"{dropped[0].partition(': ')[2] or dropped[0]}")
    return None


def _needs_split(table: pd.DataFrame, ctx: Context) -> str | None:
    counts = table["split"].value_counts() if "split" in table else pd.Series(dtype=int)
    n_train, n_test = int(counts.get("train", 0)), int(counts.get("test", 0))
    if not n_train or not n_test:
        return f"needs an official train/test split (column 'split'), and it has {n_train} train, {n_test} test"
    return None


def _needs_subjects(table: pd.DataFrame, ctx: Context) -> str | None:
    k = ctx.k
    missing = int(table["subject"].isna().sum()) if "subject" in table else len(table)
    if missing:
        return f"needs a subject id for every sample, and {missing} of {len(table)} have none"
    n_subjects = table["subject"].astype(str).nunique()
    if n_subjects < k:
        return f"needs at least {k} subjects for {k} folds, and it has {n_subjects}"
    return None


def _needs_folds(table: pd.DataFrame, ctx: Context) -> str | None:
    missing = int(table["fold"].isna().sum()) if "fold" in table else len(table)
    if missing:
        return f"needs an official fold for every sample (column 'fold'), and {missing} of {len(table)} have none"
    if table["fold"].nunique() < 2:
        return "needs at least 2 official folds, and it has 1"
    return None


def _needs_photos(table: pd.DataFrame, ctx: Context) -> str | None:
    missing = int(table["face_id"].isna().sum()) if "face_id" in table else len(table)
    if missing:
        return (f"needs the face id of every sample within its photo (column 'face_id', as ExpW's label file "
                f"gives), and {missing} of {len(table)} have none")
    n_photos = table["path"].nunique()
    if n_photos < ctx.k:
        return f"needs at least {ctx.k} image files for {ctx.k} folds, and it has {n_photos}"
    return None


@dataclass(frozen=True)
class Protocol:
    """How a protocol draws its folds, what it needs from the table, and which parameters shape its folds.
    `variant` names a model-dependent way of drawing (crossval-compat's), part of the split file's name."""

    make: Callable[[pd.DataFrame, Context], tuple[list[Fold], dict]]
    unfit: Callable[[pd.DataFrame, Context], str | None]
    uses_k: bool
    uses_val_fraction: bool
    variant: Callable[[Context], str] | None = None


PROTOCOLS = {
    "official": Protocol(official, _needs_split, uses_k=False, uses_val_fraction=True),
    "official-folds": Protocol(official_folds, _needs_folds, uses_k=False, uses_val_fraction=True),
    "subject-kfold": Protocol(subject_kfold, _needs_subjects, uses_k=True, uses_val_fraction=True),
    "photo-kfold": Protocol(photo_kfold, _needs_photos, uses_k=True, uses_val_fraction=True),
    "crossval-compat": Protocol(crossval_compat, _needs_crossval_layout, uses_k=False, uses_val_fraction=False,
                                variant=_crossval_variant),
    **{name: Protocol(*_formula_folds(name), uses_k=False, uses_val_fraction=True) for name in FORMULAS},
}


def _protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise FerbenchError(f"unknown protocol '{name}'; valid: {', '.join(PROTOCOLS)}", exit_code=2)
    return PROTOCOLS[name]


def _draw(table: pd.DataFrame, name: str, ctx: Context) -> tuple[list[Fold], dict]:
    protocol = _protocol(name)
    try:
        reason = protocol.unfit(table, ctx)
        if reason is None:
            return protocol.make(table, ctx)
    except _Unfit as err:
        reason = str(err)
    others = [other for other, p in PROTOCOLS.items() if other != name and p.unfit(table, ctx) is None]
    dataset = ctx.dataset
    where = f"dataset '{dataset}'" if dataset else "the table"
    hint = f"; try --protocol {' or '.join(others)}" if others else ""
    raise FerbenchError(f"{where}: protocol '{name}' {reason}{hint}", exit_code=2)


def is_fold_protocol(folds: list) -> bool:
    """A protocol that draws more than one fold (k-fold, official folds, repeated iterations) is tested on
    every fold: a request plans them all, with `--repeats` seeds each. A property of the drawn split, so a
    protocol registered later gets it without being listed anywhere."""
    return len(folds) > 1


def parse_folds(text: str, count: int) -> list[int]:
    """`--folds 0,3-5` → [0, 3, 4, 5]: fold numbers (0-based, as in the split file and run folders), each
    within 0..count-1, ranges inclusive; duplicates collapse, the order is ascending."""
    chosen: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        first, dash, last = part.partition("-")
        try:
            low, high = int(first), int(last) if dash else int(first)
        except ValueError:
            raise FerbenchError(f"--folds: '{part}' is not a fold number or a range like 3-5", exit_code=2) from None
        if low > high:
            raise FerbenchError(f"--folds: '{part}' is an empty range (write the lower number first)", exit_code=2)
        if low < 0 or high >= count:
            raise FerbenchError(f"--folds: fold {high if high >= count else low} does not exist; this split has folds 0-{count - 1}", exit_code=2)
        chosen.update(range(low, high + 1))
    return sorted(chosen)


def whole_training_split(fold: dict, procedure: dict) -> dict:
    """The fold as `--selection final` trains it: the validation slice carved from the training data goes back
    into training (no hold-out); an official validation split (FER2013's PublicTest) is simply not used."""
    if procedure.get("validation") == "official val split":
        return dict(fold, val=[])
    return dict(fold, train=sorted([*fold["train"], *fold["val"]]), val=[])


def training_share(fold: dict, procedure: dict, selection: str) -> float:
    """The share of the protocol's training data a run trains on: 1.0 under `final` or with an official
    validation split, else 1 − the validation fraction actually carved."""
    if selection == "final" or procedure.get("validation") == "official val split" or not fold["val"]:
        return 1.0
    return len(fold["train"]) / (len(fold["train"]) + len(fold["val"]))


def make_folds(
    table: pd.DataFrame, protocol: str, val_fraction: float, folds: int = 10, dataset: str = "", model: str = ""
) -> list[Fold]:
    """The folds of `protocol` over `table`; `folds` is k for the k-fold protocols, `dataset` names it in errors
    (and picks crossval-compat's variant, with `model`)."""
    return _draw(table, protocol, Context(val_fraction, folds, dataset, model))[0]


def split_variant(protocol: str, dataset: str, model: str) -> str | None:
    """The model-dependent variant a protocol draws for (dataset, model), or None for protocols without one."""
    spec = _protocol(protocol)
    return spec.variant(Context(0.0, dataset=dataset, model=model)) if spec.variant else None


def splits_path(
    results_dir: Path, dataset: str, protocol: str, manifest: str, val_fraction: float, folds: int = 10,
    model: str = "",
) -> Path:
    """One file per set of parameters that shapes the folds: a changed manifest, k, val fraction or split variant
    gets a new one."""
    spec = _protocol(protocol)
    parts = [protocol, split_variant(protocol, dataset, model) or "", f"k{folds}" if spec.uses_k else "",
             f"val{val_fraction:g}" if spec.uses_val_fraction else ""]
    return results_dir / "splits" / dataset / f"{'-'.join(filter(None, [*parts, manifest[:16]]))}.json"


def _inconsistency(saved, n_samples: int, manifest: str) -> str | None:
    if not isinstance(saved, dict) or not isinstance(saved.get("folds"), list) or not saved["folds"]:
        return "it holds no folds"
    if saved.get("manifest") != manifest:
        return "it was drawn for another version of the dataset (its manifest differs)"
    for number, fold in enumerate(saved["folds"]):
        parts = [fold.get(part) if isinstance(fold, dict) else None for part in ("train", "val", "test")]
        if not all(isinstance(part, list) and all(type(i) is int for i in part) for part in parts):
            return f"fold {number} lacks integer train/val/test lists"
        outside = [i for part in parts for i in part if not 0 <= i < n_samples]
        if outside:
            return f"fold {number} has index {outside[0]}, out of range for the dataset's {n_samples} samples"
        if sum(map(len, parts)) != len(set().union(*parts)):
            return f"fold {number} puts a sample in two of train, val and test"
    return None


def _read_saved(path: Path, table: pd.DataFrame, manifest: str) -> list[Fold]:
    try:
        saved = read_json(path)
    except json.JSONDecodeError as err:
        raise FerbenchError(
            f"{path}:{err.lineno}: not a valid split file ({err.msg}); delete it to draw the splits again"
        ) from None
    except UnicodeDecodeError:
        raise FerbenchError(f"{path}: not a valid split file (not UTF-8 text); delete it to draw the splits again") from None
    problem = _inconsistency(saved, len(table), manifest)
    if problem:
        raise FerbenchError(f"{path}: {problem}; delete it to draw the splits again")
    return [Fold(train=fold["train"], val=fold["val"], test=fold["test"]) for fold in saved["folds"]]


def saved_folds(
    table: pd.DataFrame,
    results_dir: Path,
    dataset: str,
    protocol: str,
    manifest: str,
    val_fraction: float,
    folds: int = 10,
    model: str = "",
) -> tuple[Path, list[Fold]]:
    """Draw the folds once per (dataset, protocol, manifest, parameters) and reuse the saved file afterwards.
    A saved file is reused only if the protocol still accepts the table (crossval-compat's layout check)."""
    ctx = Context(val_fraction, folds, dataset, model)
    path = splits_path(results_dir, dataset, protocol, manifest, val_fraction, folds, model)
    reason = _protocol(protocol).unfit(table, ctx)
    if path.is_file() and reason is None:
        return path, _read_saved(path, table, manifest)
    drawn, procedure = _draw(table, protocol, ctx)
    write_json_atomic(
        path,
        dict(
            dataset=dataset, protocol=protocol, manifest=manifest, samples=len(table),
            procedure={**procedure, "sklearn": sklearn.__version__}, folds=[asdict(fold) for fold in drawn],
        ),
    )
    return path, drawn
