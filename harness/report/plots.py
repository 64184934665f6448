"""Where a model errs: one PNG per (protocol, dataset, model) cell, drawn with matplotlib (Agg, no pyplot).

Panels: the mean confusion matrix normalised by true class, mean per-class recall with its spread over runs,
and, when the runs recorded a history, training loss and the validation metric per epoch.
"""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import pandas as pd

from harness.report import metrics as metric_names

DPI = 80


def _normalised(matrix) -> np.ndarray:
    counts = np.asarray(matrix, dtype=float)
    support = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, counts / support, np.nan)


def mean_confusion(runs: pd.DataFrame) -> np.ndarray | None:
    """Mean over runs of each run's row-normalised confusion matrix (a class absent from a run's test set
    is left out of that row's mean); None when no run recorded one."""
    matrices = [_normalised(m) for m in runs["confusion_matrix"] if m]
    if not matrices:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row: the class was never tested
        return np.nanmean(np.stack(matrices), axis=0)


def recalls(runs: pd.DataFrame) -> np.ndarray | None:
    """Per-class recall, one row per run."""
    rows = [r for r in runs["per_class_recall"] if r]
    return np.asarray(rows, dtype=float) if rows else None


def _histories(runs: pd.DataFrame) -> tuple[list[list[dict]], list[int]]:
    """Each run's epochs, stages concatenated in order; the epochs at which a later stage starts."""
    histories, boundaries = [], []
    for history, stages in zip(runs["history"], runs["stages"]):
        if stages:
            parts = [summary.get("history") or [] for summary in stages.values()]
            boundaries = list(np.cumsum([len(p) for p in parts])[:-1])
            history = [epoch for part in parts for epoch in part]
        if history:
            histories.append(history)
    return histories, boundaries


def _selected_epochs(runs: pd.DataFrame) -> list[int]:
    """Each run's selected epoch on the concatenated epoch axis (1-based; the last stage's, after the earlier
    stages' epochs), in the order of `_histories`."""
    selected = []
    for history, stages, epoch in zip(runs["history"], runs["stages"], runs["selected_epoch"]):
        offset = 0
        if stages:
            parts = [summary.get("history") or [] for summary in stages.values()]
            offset = sum(len(part) for part in parts[:-1])
            history = [e for part in parts for e in part]
        if history:
            selected.append(offset + int(epoch))
    return selected


def error_bars(means: np.ndarray, spread: np.ndarray) -> tuple[np.ndarray, bool]:
    """(2 × k lower and upper bar lengths, whether any was clipped): mean ± std cut at 0 and 1, so a bar
    never claims a recall outside [0, 1] and a clipped one is visibly shorter on that side."""
    lower, upper = np.minimum(spread, means), np.minimum(spread, 1 - means)
    clipped = bool(np.any((lower < spread) | (upper < spread)))
    return np.vstack([lower, upper]), clipped


def _curve(histories: list[list[dict]], read) -> np.ndarray:
    """runs × epochs, NaN-padded where a run stopped early or did not record the value."""
    length = max(len(h) for h in histories)
    out = np.full((len(histories), length), np.nan)
    for i, history in enumerate(histories):
        for j, epoch in enumerate(history):
            value = read(epoch)
            if value is not None:
                out[i, j] = value
    return out


def _val_metric(selection: str) -> str:
    name = selection.split()[-1].removeprefix("val_") if selection else ""
    return name if name in ("accuracy", "balanced_accuracy") else "balanced_accuracy"


def cell_figure(runs: pd.DataFrame, title: str) -> bytes | None:
    """PNG bytes for one cell's runs (all of one protocol, dataset and model); None without a confusion matrix."""
    from matplotlib.figure import Figure

    confusion = mean_confusion(runs)
    if confusion is None:
        return None
    classes = list(runs["classes"].iloc[0]) or [str(i) for i in range(len(confusion))]
    video = bool(runs["video"].iloc[0])
    histories, boundaries = _histories(runs)
    panels = 3 if histories else 2
    k = len(classes)
    side = max(3.6, 0.42 * k + 1.6)
    fig = Figure(figsize=(side * panels + 0.9, side + 0.8), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, panels, squeeze=True, width_ratios=[1.15] + [1] * (panels - 1))
    fig.suptitle(title, fontsize=11)

    ax = axes[0]
    image = ax.imshow(confusion, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion, rows normalised (mean of {len(runs)})", fontsize=9)
    if k <= 12:
        for i in range(k):
            for j in range(k):
                value = confusion[i, j]
                if not np.isnan(value):
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if value > 0.6 else "black")
    fig.colorbar(image, ax=ax, shrink=0.8)

    ax = axes[1]
    per_class = recalls(runs)
    if per_class is None:
        per_class = np.diag(confusion)[None, :]
    means = np.nanmean(per_class, axis=0)
    spread = np.nanstd(per_class, axis=0, ddof=1) if len(per_class) > 1 else None
    bars, clipped = error_bars(means, spread) if spread is not None else (None, False)
    ax.barh(range(k), means, xerr=bars, color="tab:blue", alpha=0.8, capsize=2)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("recall")
    spread_note = "mean ± std, clipped to [0, 1]" if clipped else "mean ± std"
    ax.set_title(f"per-class recall ({spread_note})" if spread is not None else "per-class recall", fontsize=9)
    for i, value in enumerate(means):  # values in the right margin, clear of bars and error bars
        ax.text(1.02, i, f"{value:.2f}", va="center", fontsize=7, transform=ax.get_yaxis_transform())

    if histories:
        ax = axes[2]
        metric = _val_metric(runs["selection"].iloc[0])
        loss = _curve(histories, lambda e: e.get("train_loss"))
        val = _curve(histories, lambda e: (e.get("val") or {}).get(metric))
        epochs = np.arange(1, loss.shape[1] + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for row in loss:
                ax.plot(epochs, row, color="tab:blue", alpha=0.25, linewidth=0.8)
            ax.plot(epochs, np.nanmean(loss, axis=0), color="tab:blue", linewidth=2, marker=".", label="train loss")
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_xlim(0.5, len(epochs) + 0.5)
            ax.set_ylabel("train loss", color="tab:blue")
            if not np.all(np.isnan(val)):
                twin = ax.twinx()
                for row in val:
                    twin.plot(epochs, row, color="tab:orange", alpha=0.25, linewidth=0.8)
                name = f"validation {metric_names.label(metric, video) if video else metric_names.label(metric, video).lower()}"
                twin.plot(epochs, np.nanmean(val, axis=0), color="tab:orange", linewidth=2, marker=".", label=name)
                twin.set_ylabel(name, color="tab:orange")
                twin.set_ylim(0, 1)
            marked, values = (twin, val) if not np.all(np.isnan(val)) else (ax, loss)
            for row, epoch in zip(values, _selected_epochs(runs)):
                if 1 <= epoch <= len(epochs) and not np.isnan(row[epoch - 1]):
                    marked.plot(epoch, row[epoch - 1], marker="v", markersize=7, color="black", linestyle="none",
                                zorder=5)
        for boundary in boundaries:
            ax.axvline(boundary + 0.5, color="grey", linestyle=":", linewidth=1)
        ax.set_title("training curves (thin: runs, thick: mean, ▼: selected epoch)", fontsize=9)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def file_name(protocol: str, dataset: str, model: str) -> str:
    """`official_rafdb_dan-unified.png`: labels made safe for any file system."""
    safe = [re.sub(r"[^A-Za-z0-9.]+", "-", part).strip("-") for part in (protocol, dataset, model)]
    return "_".join(safe) + ".png"
