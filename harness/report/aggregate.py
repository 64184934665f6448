"""Collect complete runs into a tidy frame and summarise each (protocol, dataset, model) cell."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from harness.errors import FerbenchError
from harness.report.metrics import METRICS, POOLED
from harness.run.records import RunRecord, Unreadable, json_dump, read_run
from harness.run.store import MARKER, RESULT_FILES, complete_runs

CELL = ["protocol", "dataset", "model"]
PAIR = ["splits", "fold", "seed"]
"""Two runs are a pair for the significance test when they share the split file, the fold and the seed."""
PROTOCOL_ORDER = ("official", "official-folds", "subject-kfold", "crossval-compat")
"""Report sections in this order (the leaky crossval-compat last); other protocols after, by name."""


def protocol_key(protocol: str) -> tuple[int, str]:
    return (PROTOCOL_ORDER.index(protocol) if protocol in PROTOCOL_ORDER else len(PROTOCOL_ORDER), protocol)


def _dataset_label(config: dict) -> str:
    """Runs on an aligned copy are a row of their own, e.g. `ckplus (aligned_112)`."""
    aligned = config.get("aligned")
    return f"{config['dataset']} ({aligned.rsplit('-', 1)[0]})" if aligned else config["dataset"]


def _model_label(config: dict, result: dict | None = None) -> str:
    """Runs under a shared recipe (`--recipe unified`), `--selection final` or `--augment-on device` are a column
    of their own, e.g. `dan (unified)`, `dan (final)`, `dan (unified, final, device augment)`. A model's display name from benchmark.toml, recorded
    in result.json, replaces its key (`clivpfer (label caption)`)."""
    recipe = config["recipe"].get("name", "upstream")
    name = (result or {}).get("display") or config["model"]
    tags = [tag for tag in (recipe if recipe != "upstream" else "", "final" if config.get("selection") == "final" else "",
                            "device augment" if config.get("augment_on") == "device" else "") if tag]
    return f"{name} ({', '.join(tags)})" if tags else name


def _selection(config: dict, result: dict) -> str:
    """`validation val_balanced_accuracy`, or `final epoch` when a run had no validation data."""
    if config.get("selection") == "final":
        return "final epoch"  # of the whole training split: the published-number note states the training share
    if str(result.get("selection_rule", "")).startswith("final epoch"):
        return "final epoch"
    return f"validation {config['selection']}" if config.get("selection") else "validation"


def _row(record: RunRecord, video_datasets: frozenset[str]) -> dict:
    config, result, env = json_dump(record.config), json_dump(record.result), json_dump(record.env)
    return dict(
        splits=config.get("splits", ""),
        split_variant=env.get("split_variant") or "",
        finished=record.marker.finished,
        protocol=config["protocol"],
        dataset=_dataset_label(config),
        model=_model_label(config, result) + (" (modified upstream)" if env.get("upstream_dirty") else ""),
        dataset_name=config["dataset"],
        model_name=config["model"],
        video=bool(config.get("video", config["dataset"] in video_datasets)),
        recipe=config["recipe"].get("name", "upstream"),
        run_id=config["run_id"],
        fold=config.get("fold", 0),
        repeat=config["repeat"],
        seed=config["seed"],
        requested=config["repeats"],
        pretrained=config["pretrained"],
        epochs=config["recipe"]["epochs"],
        selected_epoch=result["selected_epoch"],
        selection=_selection(config, result),
        upstream=config.get("upstream"),
        upstream_commit=config.get("upstream_commit"),
        upstream_head=env.get("upstream_head"),
        ferbench_version=env.get("ferbench_version"),
        ferbench_git_sha=env.get("ferbench_git_sha"),
        ferbench_git_dirty=env.get("ferbench_git_dirty"),
        upstream_dirty=bool(env.get("upstream_dirty")),
        device=env.get("device_name") or env.get("device") or config.get("device"),
        torch=env.get("torch"),
        classes=tuple(result.get("classes") or config.get("classes") or ()),
        per_class_recall=result.get("per_class_recall"),
        confusion_matrix=result.get("confusion_matrix"),
        history=result.get("history") or [],
        stages=result.get("stages") or {},
        test_label_input=bool(result.get("test_label_input", False)),
        fold_count=int(config.get("fold_count", 1)),
        training_share=float(result.get("training_share", math.nan)),
        tested=int((result.get("samples") or {}).get("test", 0)),
        cost=result.get("cost"),
        **{metric: result[metric] for metric in METRICS},
    )


def load_runs(
    results_dir: Path, video_datasets: frozenset[str] | set[str] = frozenset(), unreadable: list[Unreadable] | None = None
) -> pd.DataFrame:
    """One row per complete run whose files pass their schemas (harness.run.records); `video_datasets` names
    the datasets whose metrics are UAR / WAR. Runs that fail are left out and appended to `unreadable`."""
    rows, bad = [], []
    for folder in complete_runs(results_dir):
        record = read_run(folder)
        (bad.append(record) if isinstance(record, Unreadable) else rows.append(_row(record, frozenset(video_datasets))))
    if unreadable is not None:
        unreadable.extend(bad)
    if not rows:
        unread = unfinished_runs(results_dir)
        hint = f" ({unread} run folder(s) without a {MARKER} marker: unfinished or failed)" if unread else ""
        if bad:
            hint += f" ({len(bad)} unreadable, e.g. {bad[0].path}: {bad[0].reason})"
        raise FerbenchError(f"{results_dir}: no complete runs found{hint}; run `ferbench run` or `ferbench demo` first")
    return pd.DataFrame(rows)


def unfinished_runs(results_dir: Path) -> int:
    """Run folders holding result files but no completion marker: never read by the report."""
    if not results_dir.is_dir():
        return 0
    folders = {path.parent for name in RESULT_FILES for path in results_dir.glob(f"*/*/*/*/{name}")}
    return sum(1 for folder in folders if not (folder / MARKER).is_file())


def _pick(runs: pd.DataFrame, column: str, wanted: tuple[str, ...], option: str, *also: str) -> pd.DataFrame:
    """Keep runs whose `column` (or any of `also`) equals one of `wanted`; an unmatched value is an error."""
    if not wanted:
        return runs
    columns = (column, *also)
    for value in wanted:
        if not any((runs[c] == value).any() for c in columns):
            present = ", ".join(sorted(set(runs[column])))
            raise FerbenchError(f"{option}: no complete runs for '{value}'; the store has: {present}", exit_code=2)
    keep = pd.Series(False, index=runs.index)
    for c in columns:
        keep |= runs[c].isin(wanted)
    return runs[keep]


def _names(values: tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    return tuple(part.strip() for value in values or () for part in value.split(",") if part.strip())


def select(runs: pd.DataFrame, models=(), datasets=(), protocol: str | None = None) -> pd.DataFrame:
    """`--models` / `--datasets` match a base name (`dan`: also `dan (unified)`) or a full label;
    values may repeat the option or be comma-separated."""
    runs = _pick(runs, "model", _names(models), "--models", "model_name")
    runs = _pick(runs, "dataset", _names(datasets), "--datasets", "dataset_name")
    return _pick(runs, "protocol", (protocol,) if protocol else (), "--protocol")


def current(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split runs into those on each cell's newest data/splits and the superseded rest.

    A changed dataset (new manifest) or fold setting gives new run ids; averaging old and new runs
    together would mix two experiments, so only the splits of the most recently finished run count.
    """
    latest = runs.sort_values("finished").groupby(CELL)["splits"].transform("last").reindex(runs.index)
    keep = runs["splits"] == latest
    return runs[keep], runs[~keep]


def t_interval(std: float, n: int, level: float = 0.95) -> float:
    """Half-width of the two-sided t confidence interval of a mean; NaN below two runs."""
    from scipy import stats

    if n < 2 or math.isnan(std):
        return math.nan
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n))


def pooled(runs: pd.DataFrame) -> pd.DataFrame:
    """Accuracy over all test predictions of one seed's folds pooled (WuJie1010's and most CK+ papers'
    figure); a sample tested by two folds counts twice. On a single split it equals the run's accuracy.

    One row per (cell, split file, seed): pooled accuracy and the number of test predictions pooled.
    `fold` is -1 and `finished` the latest fold's, so the frame pairs and supersedes like runs do."""
    runs = runs.assign(correct=(runs["accuracy"] * runs["tested"]).round())
    frame = runs.groupby([*CELL, "splits", "seed"], sort=True).agg(
        correct=("correct", "sum"), predictions=("tested", "sum"), finished=("finished", "max"),
    ).reset_index()
    frame[POOLED] = frame["correct"] / frame["predictions"].where(frame["predictions"] > 0)
    return frame.assign(fold=-1)


def _units(runs: pd.DataFrame) -> pd.DataFrame:
    """What a cell's mean and std are taken over: each run of a single-split cell, each fold of a fold cell
    (the mean of its seeds), so a fold cell gives the mean ± std over folds."""
    folded = runs["fold_count"] > 1
    per_fold = runs[folded].groupby([*CELL, "fold"], sort=True)[list(METRICS)].mean().reset_index()
    return pd.concat([runs.loc[~folded, [*CELL, *METRICS]], per_fold[[*CELL, *METRICS]]], ignore_index=True)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell: mean, sample std (ddof=1), population std (ddof=0), 95 % t-interval half-width and counts,
    over runs (single split) or folds (fold protocols: `n` folds present of `fold_count`, `runs` of
    `runs_requested`); `requested` is the largest repeat count asked for, or the fold count; the pooled
    accuracy is averaged over seeds, with `predictions` test predictions pooled per seed."""
    runs, superseded = current(runs)
    counts = runs.groupby(CELL, sort=True).agg(
        runs=("run_id", "count"), repeats=("requested", "max"), fold_count=("fold_count", "max"),
        folds=("fold", "nunique"), training_share=("training_share", "min"),
    )
    stats = _units(runs).groupby(CELL, sort=True).agg(
        **{f"{m}_mean": (m, "mean") for m in METRICS},
        **{f"{m}_std": (m, lambda s: s.std(ddof=1)) for m in METRICS},
        **{f"{m}_pstd": (m, lambda s: s.std(ddof=0)) for m in METRICS},
    )
    seeds = pooled(runs).groupby(CELL, sort=True).agg(
        seeds=("seed", "count"), predictions=("predictions", "max"),
        **{f"{POOLED}_mean": (POOLED, "mean"), f"{POOLED}_std": (POOLED, lambda s: s.std(ddof=1)),
           f"{POOLED}_pstd": (POOLED, lambda s: s.std(ddof=0))},
    )
    grouped = runs.groupby(CELL, sort=True)
    summary = grouped.agg(
        requested=("requested", "max"),
        pretrained=("pretrained", "all"),
        model_name=("model_name", "first"),
        dataset_name=("dataset_name", "first"),
        video=("video", "any"),
        recipe=("recipe", "first"),
        selection=("selection", lambda s: ", ".join(sorted(set(s)))),
        test_label_input=("test_label_input", "any"),
        split_variant=("split_variant", lambda s: ", ".join(sorted(set(s)))),
    ).join(counts).join(stats).join(seeds)
    summary["folded"] = summary["fold_count"] > 1
    summary["n"] = summary["folds"].where(summary["folded"], summary["runs"])
    summary["requested"] = summary["fold_count"].where(summary["folded"], summary["requested"])
    summary["runs_requested"] = (summary["fold_count"] * summary["repeats"]).where(summary["folded"], summary["repeats"])
    for m in METRICS:
        summary[f"{m}_ci"] = [t_interval(std, n) for std, n in zip(summary[f"{m}_std"], summary["n"])]
    summary[f"{POOLED}_ci"] = [t_interval(std, n) for std, n in zip(summary[f"{POOLED}_std"], summary["seeds"])]
    summary["complete"] = (summary["n"] >= summary["requested"]) & (summary["runs"] >= summary["runs_requested"])
    summary["superseded"] = superseded.groupby(CELL).size().reindex(summary.index, fill_value=0)
    return summary.reset_index()
