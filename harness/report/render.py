"""Render a built report with the Jinja templates in `templates/` (markdown, HTML, LaTeX) or as tidy CSV.

Cells are formatted here, once per format; the templates only lay them out.
"""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from harness.report.build import Cell, Report
from harness.report.plots import cell_figure, file_name

TEMPLATES = Path(__file__).resolve().parent / "templates"
MARKS = {"ns": "†", "untested": "‡"}
MARK_TITLES = {
    "ns": "not significantly different from the best of its row",
    "untested": "not tested: fewer than 2 runs paired with the best",
}


def counts(n: int, requested: int, folds: int = 0, fold_count: int = 0, runs: int = 0, runs_requested: int = 0,
           predictions: int = 0) -> str:
    """What a cell's number rests on, when it is not simply complete: `(3/10 folds)` for a fold-protocol cell
    missing folds, `(7/10)` for missing repeats (or `(19/20 runs)` for a fold cell missing seeds), `(n=1)`
    for a single run; `981 predictions` for a pooled accuracy."""
    parts = []
    if fold_count and folds < fold_count:
        parts.append(f"{folds}/{fold_count} folds")
    elif fold_count and runs < runs_requested:
        parts.append(f"{runs}/{runs_requested} runs")
    elif n < requested:
        parts.append(f"{n}/{requested}")
    elif n < 2:
        parts.append("1 seed" if predictions else "n=1")
    if predictions:
        parts.append(f"{predictions} predictions")
    return f" ({', '.join(parts)})" if parts else ""


def format_cell(mean: float, std: float, n: int, requested: int, ci: float = math.nan, **more) -> str:
    """`0.960 ± 0.013`; `(7/10)` when repeats are missing, `(3/10 folds)` when folds are; no ± when one run
    cannot give a std; ` [0.928, 0.992]` when a confidence half-width is given (clipped to [0, 1])."""
    if math.isnan(mean):
        return "–"
    text = f"{mean:.3f}" if n < 2 or math.isnan(std) else f"{mean:.3f} ± {std:.3f}"
    if not math.isnan(ci):
        text += f" [{max(mean - ci, 0.0):.3f}, {min(mean + ci, 1.0):.3f}]"
    return text + counts(n, requested, **more)


def _more(cell: Cell) -> dict:
    return dict(folds=cell.folds, fold_count=cell.fold_count, runs=cell.runs, runs_requested=cell.runs_requested,
                predictions=cell.predictions)


def cell_text(cell: Cell) -> str:
    return format_cell(cell.mean, cell.std, cell.n, cell.requested, cell.ci, **_more(cell))


def value(number: float) -> str:
    """A published value as recorded: `0.897`, `0.94646`."""
    return f"{number:.5f}".rstrip("0").rstrip(".")


def signed(number: float) -> str:
    return "–" if math.isnan(number) else f"{number:+.3f}"


# --- markdown -------------------------------------------------------------------------------------------------


def md_cell(cell: Cell | None) -> str:
    if cell is None:
        return "–"
    text = f"**{cell_text(cell)}**" if cell.best else cell_text(cell)
    return f"{text} {MARKS[cell.mark]}" if cell.mark else text


def reference_text(cell) -> str:
    """`0.980 ± 0.010 vs 0.993 ± 0.008 (-0.013)`: ours, the reference, ours − reference."""
    if cell is None:
        return "–"
    return f"{ours_text(cell.ours)} vs {cell.mean:.3f} ± {cell.std:.3f} ({signed(cell.difference)})"


def md_escape(text: str) -> str:
    return str(text).replace("|", "\\|")


# --- LaTeX ----------------------------------------------------------------------------------------------------

TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
               "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
TEX_TEXT = {"±": r"$\pm$", "≥": r"$\geq$", "–": "--", "−": "-", "→": r"$\rightarrow$", "×": r"$\times$"}


def tex(text) -> str:
    """Escape plain text for LaTeX."""
    out = "".join(TEX_SPECIAL.get(ch, ch) for ch in str(text))
    for plain, command in TEX_TEXT.items():
        out = out.replace(plain, command)
    return out


def tex_number(mean: float, std: float, n: int, bold: bool = False) -> str:
    body = f"{mean:.3f}" if n < 2 or math.isnan(std) else f"{mean:.3f} \\pm {std:.3f}"
    return f"$\\mathbf{{{body}}}$" if bold else f"${body}$"


def tex_cell(cell: Cell | None) -> str:
    if cell is None:
        return "--"
    text = tex_number(cell.mean, cell.std, cell.n, cell.best)
    if not math.isnan(cell.ci):
        text += f" {{\\scriptsize [{max(cell.mean - cell.ci, 0):.3f}, {min(cell.mean + cell.ci, 1):.3f}]}}"
    return text + tex_counts(cell.n, cell.requested, **_more(cell)) + tex_mark(cell.mark)


def tex_counts(n: int, requested: int, **more) -> str:
    return counts(n, requested, **more).replace("n=1", "$n{=}1$")


def tex_mark(mark: str) -> str:
    """† / ‡ of MARKS in LaTeX."""
    return {"ns": "\\textsuperscript{\\dag}", "untested": "\\textsuperscript{\\ddag}"}.get(mark, "")


def tex_ours(ours) -> str:
    text = tex_number(ours.mean, ours.std, ours.n)
    unit = " folds" if getattr(ours, "folded", False) else ""
    return text + (f" ({ours.n}/{ours.requested}{unit})" if ours.n < ours.requested else "")


def tex_signed(number: float) -> str:
    return "--" if math.isnan(number) else f"${number:+.3f}$"


def tex_reference(cell) -> str:
    if cell is None:
        return "--"
    return f"{tex_ours(cell.ours)} vs ${cell.mean:.3f} \\pm {cell.std:.3f}$ ({tex_signed(cell.difference)})"


def tex_label(*parts: str) -> str:
    """`tab:ferbench-official-accuracy`: only characters a \\label accepts everywhere."""
    cleaned = (re.sub(r"[^A-Za-z0-9]+", "-", part).strip("-").lower() for part in parts)
    return "tab:ferbench-" + "-".join(part for part in cleaned if part)


# --- HTML -----------------------------------------------------------------------------------------------------


def html_cell(cell: Cell | None) -> Markup:
    if cell is None:
        return Markup('<td class="missing">–</td>')
    text = escape(format_cell(cell.mean, cell.std, cell.n, cell.requested, **_more(cell)))
    inner = Markup(f"<strong>{text}</strong>") if cell.best else text
    if not math.isnan(cell.ci):  # the interval on a line of its own keeps wide tables readable
        low, high = max(cell.mean - cell.ci, 0.0), min(cell.mean + cell.ci, 1.0)
        inner += Markup(f'<br><span class="ci">[{low:.3f}, {high:.3f}]</span>')
    if cell.mark:
        inner += Markup(f' <sup title="{MARK_TITLES[cell.mark]}">{MARKS[cell.mark]}</sup>')
    classes = " ".join(c for c in ("best" if cell.best else "", "incomplete" if not cell.complete else "") if c)
    title = "" if math.isnan(cell.p) else f' title="p = {cell.p:.3g} against the best"'
    return Markup(f'<td class="{classes}"{title}>') + inner + Markup("</td>")


def ours_text(ours) -> str:
    folds = dict(folds=ours.n, fold_count=ours.requested) if getattr(ours, "folded", False) else {}
    return format_cell(ours.mean, ours.std, ours.n, ours.requested, **folds)


LATEX_SYNTAX = dict(block_start_string="<%", block_end_string="%>", variable_start_string="<<",
                    variable_end_string=">>", comment_start_string="<#", comment_end_string="#>")
"""LaTeX is full of braces and percent signs, so its template marks Jinja with << >> and <% %>."""


def _environment(autoescape: bool = False, latex: bool = False) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True,
        trim_blocks=True, lstrip_blocks=True, autoescape=autoescape, **(LATEX_SYNTAX if latex else {}),
    )
    env.filters.update(
        md_cell=md_cell, md=md_escape, tex=tex, tex_cell=tex_cell, tex_ours=tex_ours, tex_signed=tex_signed, tex_reference=tex_reference,
        html_cell=html_cell, ours=ours_text, md_reference=reference_text, reference=reference_text, value=value, signed=signed, three=lambda x: f"{x:.3f}",
    )
    return env


def _render(template: str, report: Report, autoescape: bool = False, latex: bool = False, **extra) -> str:
    return _environment(autoescape, latex).get_template(template).render(
        report=report, tex_label=tex_label, sections=report.sections, p=report.provenance, marks=MARKS, **extra
    )


def render_markdown(report: Report) -> str:
    return _render("report.md.j2", report)


def render_latex(report: Report) -> str:
    return _render("report.tex.j2", report, latex=True)


def figures(report: Report) -> list[dict]:
    """One PNG per (protocol, dataset, model) cell, in report order; `png` is None without a confusion matrix."""
    out = []
    for protocol, dataset, model, runs in report.cells():
        title = f"{model} on {dataset} — protocol {protocol}, {len(runs)} run{'s' if len(runs) != 1 else ''}"
        out.append(dict(protocol=protocol, dataset=dataset, model=model, title=title,
                        file=file_name(protocol, dataset, model), png=cell_figure(runs, title)))
    return out


def write_plots(items: list[dict], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for item in items:
        if item["png"] is not None:
            path = folder / item["file"]
            path.write_bytes(item["png"])
            written.append(path)
    return written


def render_html(report: Report, items: list[dict] | None = None) -> str:
    """One self-contained page: tables, then per protocol and dataset each model's figure as an inline PNG."""
    items = figures(report) if items is None else items
    by_dataset: dict[tuple[str, str], list[dict]] = {}
    for item in items:
        src = None if item["png"] is None else "data:image/png;base64," + base64.b64encode(item["png"]).decode()
        by_dataset.setdefault((item["protocol"], item["dataset"]), []).append(dict(item, src=src))
    return _render("report.html.j2", report, autoescape=True, figures=by_dataset, mark_titles=MARK_TITLES)


def render_csv(report: Report) -> str:
    """One row per cell: counts, then per chosen metric mean, std, 95 % CI half-width, the row's best and p."""
    rows = []
    marks = {}
    for section in report.sections:
        for table in section.tables:
            best = {}
            for dataset, cells in table.rows:
                best[dataset] = next((m for m, c in zip(table.models, cells) if c is not None and c.best), "")
                for model, cell in zip(table.models, cells):
                    if cell is not None:
                        marks[(section.protocol, dataset, model, table.metric)] = (best[dataset], cell.p)
    for r in report.summary.itertuples():
        row = dict(protocol=r.protocol, dataset=r.dataset, model=r.model, n=r.n, requested=r.requested,
                   complete=r.complete, pretrained=r.pretrained, video=r.video, selection=r.selection,
                   folds=r.folds if r.folded else "", fold_count=r.fold_count if r.folded else "", runs=r.runs,
                   test_predictions=r.predictions)
        for m in report.options.metrics:
            best, p = marks.get((r.protocol, r.dataset, r.model, m), ("", math.nan))
            row.update({f"{m}_mean": getattr(r, f"{m}_mean"), f"{m}_std": getattr(r, f"{m}_std"),
                        f"{m}_ci95": getattr(r, f"{m}_ci"), f"{m}_best": best, f"{m}_p_vs_best": p})
        rows.append(row)
    return pd.DataFrame(rows).to_csv(index=False, float_format="%.6f")


RENDERERS = {"md": render_markdown, "html": render_html, "csv": render_csv, "latex": render_latex}
