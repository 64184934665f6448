"""The report's sections built from evaluation records (harness/evaluate/record.py).

Cross-dataset: one table per metric, rows (model, source dataset), columns target datasets, each cell the mean ±
sample std over the source runs' saved models (n/requested when repeats are missing; per source and target the
best model in bold, the others marked as in the in-dataset tables by a paired test over their source runs'
split, fold and seed), and a heatmap figure. Released checkpoints: each upstream checkpoint
evaluated on a dataset, beside the paper's number and ferbench's trained mean on the same dataset.
"""

from __future__ import annotations

import html
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.evaluate.record import records
from harness.report.aggregate import PAIR
from harness.report.metrics import METRICS
from harness.report.render import MARK_TITLES, MARKS, format_cell, tex, tex_counts, tex_label, tex_mark, tex_number
from harness.report.significance import paired_p

METRIC_TITLES = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "macro_f1": "macro F1"}
HEATMAP = "cross-dataset-{metric}.png"


@dataclass(frozen=True)
class CrossCell:
    mean: float
    std: float
    n: int
    requested: int
    best: bool = False
    mark: str = ""
    """As in the in-dataset tables: `ns` not significantly below the best model from the same source on this
    target (paired runs), `untested` fewer than 2 pairs."""


@dataclass(frozen=True)
class CrossTable:
    metric: str
    targets: list[str]
    rows: list[tuple[str, str, list[CrossCell | None], str]]
    """(model, source, cell per target, scored classes note)."""


def load(results: Path) -> pd.DataFrame:
    rows = list(records(results))
    return pd.DataFrame(rows) if rows else pd.DataFrame()


def _paired(runs: pd.DataFrame | None, frame: pd.DataFrame) -> pd.DataFrame:
    """Evaluation rows with their source run's (split file, fold, seed), the pairing key of significance tests."""
    if runs is None or runs.empty:
        return frame.assign(splits=frame["run_id"], fold=0, seed=0)
    keys = runs[["run_id", *PAIR]].drop_duplicates("run_id")
    return frame.merge(keys, on="run_id", how="left")


def cross_tables(evaluations: pd.DataFrame, metrics=("accuracy", "balanced_accuracy"), runs: pd.DataFrame | None = None,
                 models=(), datasets=(), test: str = "ttest", alpha: float = 0.05) -> list[CrossTable]:
    if evaluations.empty:
        return []
    cross = evaluations[(evaluations["kind"] == "run") & (evaluations["dataset"] != evaluations["trained_on"])]
    if models:
        cross = cross[cross["model"].isin(models)]
    if datasets:
        cross = cross[cross["trained_on"].isin(datasets) | cross["dataset"].isin(datasets)]
    if cross.empty:
        return []
    cross = _paired(runs, cross.drop_duplicates(["run_id", "dataset", "id"]))
    requested = {}
    if runs is not None and not runs.empty:
        requested = runs.groupby(["model_name", "dataset_name"])["requested"].max().to_dict()
    targets = sorted(cross["dataset"].unique())
    pairs = sorted({(m, s) for m, s in zip(cross["model"], cross["trained_on"])}, key=lambda p: (p[1], p[0]))
    tables = []
    for metric in metrics:
        cells: dict[tuple, CrossCell] = {}
        for (source, target), group in cross.groupby(["trained_on", "dataset"], sort=True):
            stats = {}
            for model, runs_of in group.groupby("model"):
                values = runs_of.drop_duplicates("run_id")[metric].to_numpy(dtype=float)
                std = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
                stats[model] = (float(values.mean()), std, len(values), int(requested.get((model, source), len(values))))
            complete = {m: v for m, v in stats.items() if v[2] >= v[3]}
            best = max(complete, key=lambda m: complete[m][0]) if len(stats) > 1 and complete else None
            for model, (mean, std, n, wanted) in stats.items():
                mark = ""
                if best is not None and model != best:
                    joined = group[group["model"] == best][[*PAIR, metric]].merge(
                        group[group["model"] == model][[*PAIR, metric]], on=PAIR, suffixes=("_best", "_other"))
                    p = paired_p(joined[f"{metric}_best"].to_numpy(), joined[f"{metric}_other"].to_numpy(), test)
                    mark = "untested" if math.isnan(p) else ("" if p < alpha else "ns")
                cells[(model, source, target)] = CrossCell(mean, std, n, wanted, best=model == best, mark=mark)
        rows = []
        for model, source in pairs:
            group = cross[(cross["model"] == model) & (cross["trained_on"] == source)]
            scored = "; ".join(sorted({_scored(r) for r in group.drop_duplicates("dataset").itertuples()}))
            rows.append((model, source, [cells.get((model, source, t)) for t in targets], scored))
        tables.append(CrossTable(metric, targets, rows))
    return tables


def _scored(record) -> str:
    """`ckplus: happy, sad, … (not scored: contempt, 54 samples; masked output: neutral)`."""
    notes = [f"not scored: {name}, {count} samples" for name, count in sorted((getattr(record, "excluded", None) or {}).items())]
    masked = (getattr(record, "class_map", None) or {}).get("masked") or []
    if masked:
        notes.append(f"masked output: {', '.join(masked)}")
    return f"{record.dataset}: {', '.join(record.classes)}" + (f" ({'; '.join(notes)})" if notes else "")


def cell_text(cell: CrossCell | None) -> str:
    if cell is None:
        return "–"
    text = format_cell(cell.mean, cell.std, cell.n, cell.requested)
    text = f"**{text}**" if cell.best else text
    return f"{text} {MARKS[cell.mark]}" if cell.mark else text


def cross_markdown(tables: list[CrossTable]) -> str:
    if not tables:
        return ""
    out = ["", "## Cross-dataset (train on the source, test on each target)", "",
           "Each cell: mean ± std over the source runs' saved models, scored over the classes source and target share "
           "(docs/concepts/cross-dataset.md). **Bold**: the best model from the same source on that target; "
           f"{MARKS['ns']} {MARK_TITLES['ns']}; {MARKS['untested']} {MARK_TITLES['untested']}.", ""]
    for table in tables:
        out += [f"### {METRIC_TITLES.get(table.metric, table.metric)}", "",
                "| model | source | " + " | ".join(table.targets) + " |", "|---|---|" + "---|" * len(table.targets)]
        for model, source, cells, _ in table.rows:
            out.append(f"| {model} | {source} | " + " | ".join(cell_text(c) for c in cells) + " |")
        out.append("")
    out += ["Scored classes: " + "; ".join(f"{m} from {s} → {note}" for m, s, _, note in tables[0].rows), ""]
    return "\n".join(out)


def heatmap(table: CrossTable) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.array([[c.mean if c else np.nan for c in cells] for _, _, cells, _ in table.rows])
    labels = [f"{m} ({s})" for m, s, _, _ in table.rows]
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(table.targets), 1.2 + 0.5 * len(labels)))
    image = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(table.targets)), table.targets)
    ax.set_yticks(range(len(labels)), labels)
    for (i, j), v in np.ndenumerate(values):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="white" if v < 0.6 else "black", fontsize=8)
    ax.set_xlabel("target")
    ax.set_title(f"cross-dataset {METRIC_TITLES.get(table.metric, table.metric)}")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def write_heatmaps(tables: list[CrossTable], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        path = folder / HEATMAP.format(metric=table.metric)
        path.write_bytes(heatmap(table))
        written.append(path)
    return written


def released_rows(evaluations: pd.DataFrame, runs: pd.DataFrame | None, published, models=(), datasets=()) -> list[dict]:
    """One row per evaluated upstream checkpoint: paper number, ferbench's trained mean, the checkpoint's figure."""
    if evaluations.empty:
        return []
    released = evaluations[evaluations["kind"] == "checkpoint"]
    rows = []
    for _, e in released.sort_values(["model", "dataset"]).iterrows():
        if (models and e["model"] not in models) or (datasets and e["dataset"] not in datasets):
            continue
        paper = next((p.value for p in published if p.model == e["model"] and p.dataset == e["dataset"]
                      and p.measure == "accuracy"), None)
        trained = None
        if runs is not None and not runs.empty:
            own = runs[(runs["model_name"] == e["model"]) & (runs["dataset_name"] == e["dataset"])]
            if (e["split"] or {}).get("protocol"):
                own = own[own["protocol"] == e["split"]["protocol"]]
            trained = (float(own["accuracy"].mean()), len(own)) if len(own) else None
        rows.append(dict(model=e["model"], dataset=e["dataset"], trained_on=e["trained_on"], paper=paper, trained=trained,
                         released=float(e["accuracy"]), samples=int(e["samples"]), file=Path(str(e["path"])).name,
                         mapping=e["class_mapping"]))
    return rows


def released_markdown(rows: list[dict]) -> str:
    if not rows:
        return ""
    out = ["", "## Released checkpoints (accuracy)", "",
           "| model | dataset | paper | ferbench trained (mean, n) | released checkpoint | file |", "|---|---|---|---|---|---|"]
    for r in rows:
        paper = f"{r['paper']:.4f}" if r["paper"] is not None else "–"
        trained = f"{r['trained'][0]:.4f} (n={r['trained'][1]})" if r["trained"] else "–"
        out.append(f"| {r['model']} | {r['dataset']} | {paper} | {trained} | {r['released']:.4f} | {r['file']} |")
    out += ["", "Class mapping: " + "; ".join(f"{r['model']} ({r['trained_on']}) on {r['dataset']}: {r['mapping']}" for r in rows), ""]
    return "\n".join(out)


def cross_latex(tables: list[CrossTable]) -> str:
    """One booktabs table per metric, captioned like the in-dataset tables."""
    out = []
    for table in tables:
        out += ["", "\\begin{table}[htbp]", "\\centering",
                f"\\caption{{Cross-dataset {tex(METRIC_TITLES.get(table.metric, table.metric))}: trained on the source, "
                "tested on each target over the classes both share; mean $\\pm$ sample standard deviation over the "
                "source runs' saved models; (k/N): k of N requested repeats. Bold: best model from the same source on "
                "that target; $^{\\dagger}$: not significantly different from it, $^{\\ddagger}$: not tested.}",
                f"\\label{{{tex_label('cross-dataset', table.metric)}}}",
                "\\begin{tabular}{ll" + "c" * len(table.targets) + "}", "\\toprule",
                "Model & Source & " + " & ".join(tex(t) for t in table.targets) + " \\\\", "\\midrule"]
        for model, source, cells, _ in table.rows:
            out.append(f"{tex(model)} & {tex(source)} & " + " & ".join(
                "--" if c is None else tex_number(c.mean, c.std, c.n, c.best) + tex_counts(c.n, c.requested) + tex_mark(c.mark)
                for c in cells) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    if tables:
        out += [f"% Scored classes: {m} from {s} -> {note}" for m, s, _, note in tables[0].rows]
    return "\n".join(out) + ("\n" if out else "")


def released_latex(rows: list[dict]) -> str:
    if not rows:
        return ""
    out = ["", "\\begin{table}[htbp]", "\\centering",
           "\\caption{Released checkpoints: accuracy in the paper, ferbench's trained mean (n runs) and the checkpoint "
           "evaluated by ferbench on the same dataset.}", f"\\label{{{tex_label('released-checkpoints')}}}",
           "\\begin{tabular}{llccc}", "\\toprule",
           "Model & Dataset & Paper & ferbench trained & Released checkpoint \\\\", "\\midrule"]
    for r in rows:
        paper = f"${r['paper']:.4f}$" if r["paper"] is not None else "--"
        trained = f"${r['trained'][0]:.4f}$ ($n{{=}}{r['trained'][1]}$)" if r["trained"] else "--"
        out.append(f"{tex(r['model'])} & {tex(r['dataset'])} & {paper} & {trained} & ${r['released']:.4f}$ \\\\")
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    out += [f"% {r['model']} ({r['trained_on']}) on {r['dataset']}: {r['file']}; class mapping {r['mapping']}" for r in rows]
    return "\n".join(out) + "\n"


def csv_rows(tables: list[CrossTable], released: list[dict]) -> pd.DataFrame:
    """Rows to append to the tidy CSV: `protocol` cross-dataset (dataset = target, `source` = training dataset)
    and released-checkpoint (the checkpoint's own accuracy, the paper's and ferbench's trained mean)."""
    rows: dict[tuple, dict] = {}
    for table in tables:
        for model, source, cells, _ in table.rows:
            for target, cell in zip(table.targets, cells):
                if cell is None:
                    continue
                row = rows.setdefault((model, source, target), dict(
                    protocol="cross-dataset", dataset=target, model=model, source=source, n=cell.n,
                    requested=cell.requested, complete=cell.n >= cell.requested))
                row.update({f"{table.metric}_mean": cell.mean, f"{table.metric}_std": cell.std,
                            f"{table.metric}_best": cell.best, f"{table.metric}_mark": cell.mark})
    out = list(rows.values()) + [
        dict(protocol="released-checkpoint", dataset=r["dataset"], model=r["model"], source=r["trained_on"], n=1,
             requested=1, complete=True, accuracy_mean=r["released"], checkpoint=r["file"], samples=r["samples"],
             paper_accuracy=r["paper"], trained_accuracy_mean=r["trained"][0] if r["trained"] else math.nan,
             trained_runs=r["trained"][1] if r["trained"] else 0)
        for r in released]
    return pd.DataFrame(out)


def as_html(markdown_text: str, pngs: list[bytes]) -> str:
    """The sections as a plain HTML fragment (tables from the markdown) plus inline heatmaps."""
    import base64

    parts, table = [], []
    for line in markdown_text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not set("".join(cells)) <= set("-"):
                tag = "th" if not table else "td"
                table.append("<tr>" + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in cells) + "</tr>")
            continue
        if table:
            parts.append("<table>" + "".join(table) + "</table>")
            table = []
        if line.startswith("### "):
            parts.append(f"<h3>{html.escape(line[4:])}</h3>")
        elif line.startswith("## "):
            parts.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.strip():
            parts.append(f"<p>{_inline(line)}</p>")
    if table:
        parts.append("<table>" + "".join(table) + "</table>")
    parts += [f'<img alt="cross-dataset heatmap" src="data:image/png;base64,{base64.b64encode(p).decode()}">' for p in pngs]
    return "\n".join(parts)


def _inline(text: str) -> str:
    escaped = html.escape(text)
    while escaped.count("**") >= 2:
        escaped = escaped.replace("**", "<b>", 1).replace("**", "</b>", 1)
    return escaped


def has_records(results: Path) -> bool:
    return next(records(results), None) is not None


def with_sections(text: str, fmt: str, results: Path, runs: pd.DataFrame | None, published, options, models, datasets,
                  plots: Path | None) -> str:
    """`text` (the rendered report, or "" for a store without runs) with the evaluation sections added in every
    format: markdown and LaTeX tables, HTML tables with inline heatmaps, CSV rows; `--plots` the heatmap PNGs."""
    wanted = dict(models=tuple(n for v in models for n in v.split(",")), datasets=tuple(n for v in datasets for n in v.split(",")))
    found = load(results)
    per_run = tuple(m for m in options.metrics if m in METRICS)  # pooled_accuracy exists only per report cell
    cross = cross_tables(found, per_run, runs, **wanted, test=options.test, alpha=options.alpha)
    released = released_rows(found, runs, published, **wanted)
    extra = cross_markdown(cross) + released_markdown(released)
    if plots and cross:
        write_heatmaps(cross, plots)
    if not extra:
        return text
    if fmt == "latex":
        return text + cross_latex(cross) + released_latex(released)
    if fmt == "csv":  # both parts as written text, so the in-dataset rows keep every cell as render_csv wrote it
        added = csv_rows(cross, released).convert_dtypes().to_csv(index=False, float_format="%.6f")
        parts = [pd.read_csv(io.StringIO(part), dtype=str, keep_default_na=False) for part in (text, added) if part]
        return pd.concat(parts, ignore_index=True).fillna("").to_csv(index=False)
    if fmt == "html":
        fragment = as_html(extra, [heatmap(table) for table in cross])
        if "</body>" in text:
            return text.replace("</body>", fragment + "\n</body>", 1)
        return text + fragment if text else f"<!doctype html><html><head><meta charset=\"utf-8\"><title>ferbench</title></head><body>{fragment}</body></html>\n"
    return text + extra if fmt == "md" else text
