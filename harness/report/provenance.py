"""The report's footer: what produced the numbers (code, upstream pins, protocol, selection, repeats,
initialisation, devices) and which cells are missing or incomplete. Plain sentences; templates format them."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from harness.report.aggregate import protocol_key


def _known(value) -> bool:
    return value is not None and value == value and value != ""  # value == value: not NaN


def _counted(values, unknown: str = "not recorded") -> str:
    """`a (3 runs), b (1 run)`, most frequent first; missing values count as `unknown`."""
    counts = Counter(str(v) if _known(v) else unknown for v in values)
    return ", ".join(f"{value} ({n} run{'s' if n != 1 else ''})" for value, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _span(values) -> str:
    values = sorted(set(int(v) for v in values))
    return str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"


def _ferbench(runs: pd.DataFrame) -> str:
    versions = []
    for version, sha, dirty in zip(runs["ferbench_version"], runs["ferbench_git_sha"], runs["ferbench_git_dirty"]):
        if not _known(version) and not _known(sha):
            versions.append(None)
            continue
        text = str(version) if _known(version) else "?"
        if _known(sha):
            text += f" at {str(sha)[:12]}" + (" with uncommitted changes" if dirty else "")
        versions.append(text)
    return _counted(versions)


def _upstreams(runs: pd.DataFrame) -> list[str]:
    """`dan: dan @ 3872eefef144` per model; the checked-out head is named when it differs from the pin."""
    lines = []
    for model, group in runs.groupby("model_name", sort=True):
        pins = set()
        dirty = group["upstream_dirty"] if "upstream_dirty" in group else [False] * len(group)
        for upstream, commit, head, modified in zip(group["upstream"], group["upstream_commit"], group["upstream_head"], dirty):
            if not _known(upstream):
                pins.add("built in (no upstream code)")
                continue
            text = f"{upstream} @ {str(commit)[:12] if _known(commit) else 'unpinned'}"
            if _known(head) and _known(commit) and head != commit:
                text += f" (checked out {str(head)[:12]})"
            if modified:
                text += " (modified upstream: see env.json upstream_changed, upstream_untracked, upstream_diff_sha256)"
            pins.add(text)
        lines.append(f"{model}: {'; '.join(sorted(pins))}")
    return lines


def mixed_splits(runs: pd.DataFrame) -> list[str]:
    """Rows whose models ran on different split files (other data, folds or validation fraction): their cells
    are not comparable and cannot be paired."""
    out = []
    for (protocol, dataset), group in runs.groupby(["protocol", "dataset"], sort=True):
        files = group.groupby("splits")["model"].unique()
        if len(files) > 1:
            parts = [f"{', '.join(sorted(models))} on {name}" for name, models in files.items()]
            out.append(f"{dataset} ({protocol}): {'; '.join(parts)}")
    return out


def missing_cells(summary: pd.DataFrame, tables) -> list[str]:
    """Empty cells of the rendered tables, as `model on dataset (protocol)`."""
    out = []
    for protocol, table in tables:
        for dataset, cells in table.rows:
            for model, cell in zip(table.models, cells):
                if cell is None:
                    out.append(f"{model} on {dataset} ({protocol})")
    return sorted(set(out), key=out.index)


def provenance(runs: pd.DataFrame, summary: pd.DataFrame, test: str, alpha: float, ci: bool) -> dict:
    """Footer facts for the runs the report shows (current splits only)."""
    pretrained = sorted(summary.loc[summary["pretrained"], "model"].unique())
    random_init = sorted(summary.loc[~summary["pretrained"], "model"].unique())
    incomplete = summary[~summary["complete"]]
    stale = summary[summary["superseded"] > 0]
    protocols = ", ".join(
        f"{p} ({len(g)} runs on {g['splits'].nunique()} split file{'s' if g['splits'].nunique() != 1 else ''})"
        for p, g in sorted(runs.groupby("protocol"), key=lambda item: protocol_key(item[0]))
    )
    return dict(
        ferbench=_ferbench(runs),
        upstreams=_upstreams(runs),
        protocols=protocols,
        selection=_counted(runs["selection"]),
        repeats=(
            f"{_span(summary['repeats'])} requested per cell"
            + (" (seeds per fold in fold protocols)" if summary["folded"].any() else "")
            + f", {_span(summary['runs'])} complete; "
            f"seeds {_span(runs['seed'])}; {len(runs)} runs in all"
            + (f"; {_span(summary.loc[summary['folded'], 'n'])} of "
               f"{_span(summary.loc[summary['folded'], 'fold_count'])} folds complete" if summary["folded"].any() else "")
        ),
        pretrained=pretrained,
        random_init=random_init,
        devices=_counted(runs["device"]),
        torch=_counted(runs["torch"]),
        incomplete=[
            f"{r.model} on {r.dataset} ({r.protocol}): "
            + (f"{r.n}/{r.requested} folds, {r.runs}/{r.runs_requested} runs" if r.folded else f"{r.n}/{r.requested}")
            for r in incomplete.itertuples()
        ],
        mixed_splits=mixed_splits(runs),
        superseded=[f"{r.model} on {r.dataset} ({r.protocol}): {r.superseded}" for r in stale.itertuples()],
        final=bool(runs["model"].str.endswith("final)").any()),
        test=test,
        alpha=alpha,
        ci=ci,
    )
