"""Summaries as text a person reads: table rows and the counted-versus-paper line.

Shared by the command line and the app, so both print the same figures the same way.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from explorer.analysis import Summary
from explorer.paper import figure_for
from explorer.zoo import get_spec

if TYPE_CHECKING:
    from explorer.compare import BlockReport
    from explorer.erf import ErfResult
    from explorer.sanity import CascadeResult, FaithfulnessResult

HEADERS = ["part", "output (N, C, H, W)", "blocks", "params (M)", "GFLOPs", "activations (MB)"]


def _shape(shape: tuple[int, ...]) -> str:
    return " x ".join(str(d) for d in shape)


def table_rows(summary: Summary) -> list[list]:
    """One list per stem/stage/head row plus a total, in HEADERS order."""
    rows = [
        [row.name, _shape(row.output_shape), row.blocks or "", round(row.params / 1e6, 3),
         round(row.gflops, 3), round(row.activation_bytes / 2**20, 2)]
        for row in summary.stages
    ]
    rows.append(["total", "", sum(r.blocks for r in summary.stages),
                 round(summary.params / 1e6, 3), round(summary.gflops, 3), ""])
    return rows


def paper_comparison(summary: Summary) -> str:
    """Counted figures beside the paper's, with the reason where they disagree."""
    counted = f"Counted: {summary.params / 1e6:.3f} M parameters, {summary.gflops:.3f} GFLOPs"
    figure = figure_for(get_spec(summary.model), summary.input_size)
    if figure is None:
        return f"{counted}. The paper prints no figure for this model at {summary.input_size}x{summary.input_size}."
    # str() keeps the precision the paper printed: 4.46, 45.1, 179.0
    paper = str(figure.gflops) if figure.gflops_alt is None else f"{figure.gflops} / {figure.gflops_alt}"
    text = f"{counted}. Paper ({figure.paper_name} at {figure.input_size}): {paper} GFLOPs."
    return f"{text} {figure.note}" if figure.note else text


def format_table(summary: Summary) -> str:
    """A plain-text table for the terminal."""
    widths = [8, 24, 7, 11, 9, 17]
    lines = ["".join(str(h).ljust(w) for h, w in zip(HEADERS, widths))]
    lines += ["".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in table_rows(summary)]
    return "\n".join(lines)


def format_roadmap(rows: list[dict], steps) -> str:
    """The roadmap as a terminal table, with the paper's notes where its figures differ from the count."""
    widths = [13, 38, 20, 11, 9, 8, 8]
    header = ["id", "title", "section", "params (M)", "GFLOPs", "paper", "top-1"]
    lines = ["".join(h.ljust(w) for h, w in zip(header, widths))]
    for row in rows:
        cells = [row["id"], row["title"], row["section"], f"{row['params'] / 1e6:.3f}",
                 f"{row['gflops']:.3f}", row["paper_gflops"] or "-", row["paper_top1"] or "-"]
        lines.append("".join(str(c).ljust(w) for c, w in zip(cells, widths)))
    lines += [f"\n{step.id}: {step.note}" for step in steps if step.note]
    return "\n".join(lines)


def html_table(summary: Summary, previous: Summary | None = None) -> str:
    """The per-stage table as HTML; cells that differ from `previous` are highlighted."""
    rows = table_rows(summary)
    before = table_rows(previous) if previous else rows
    head = "".join(f"<th>{h}</th>" for h in HEADERS)
    body = "".join(
        "<tr>" + "".join(f"<td><mark>{c}</mark></td>" if c != b else f"<td>{c}</td>" for c, b in zip(row, old))
        + "</tr>"
        for row, old in zip(rows, before)
    )
    return f'<table class="stage-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def counted(layers: tuple[str, ...]) -> str:
    """("BatchNorm2d", "BatchNorm2d") -> "2 BatchNorm2d"."""
    return ", ".join(f"{layers.count(kind)} {kind}" for kind in dict.fromkeys(layers)) or "none"


BLOCK_ROWS = {  # row label -> the cell of one BlockReport; the marked rows are the paper's micro designs
    "from": lambda r: r.origin,
    "input": lambda r: _shape(r.input_shape),
    "params (K)": lambda r: f"{r.params / 1e3:.1f}",
    "GFLOPs": lambda r: f"{r.gflops:.4f}",
    "spatial mixing": lambda r: r.spatial,
    "inner width": lambda r: f"{r.expansion:g} C",
    "norms": lambda r: counted(r.norms),
    "activations": lambda r: counted(r.activations),
    "layers": lambda r: str(len(r.layers)),
}
DESIGN_ROWS = ("spatial mixing", "inner width", "norms", "activations")  # highlighted where they differ


def blocks_html(reports: list[BlockReport], reference: str = "convnext") -> str:
    """Blocks side by side, one column each; design cells that differ from `reference`'s are highlighted."""
    ref = next(r for r in reports if r.key == reference)
    head = "<th></th>" + "".join(f"<th>{r.title}</th>" for r in reports)
    body = ""
    for label, cell in BLOCK_ROWS.items():
        cells = ""
        for r in reports:
            value = cell(r)
            differs = label in DESIGN_ROWS and value != cell(ref)
            cells += f"<td><mark>{value}</mark></td>" if differs else f"<td>{value}</td>"
        body += f"<tr><th>{label}</th>{cells}</tr>"
    return f'<table class="block-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def erf_table(results: list[ErfResult]) -> str:
    """The area ratios of several ERFs as a Markdown table: side (pixels) and ratio at every threshold."""
    thresholds = [r.threshold for r in results[0].ratios] if results else []
    head = "| model | weights | stage | images | " + " | ".join(f"t = {t:g}" for t in thresholds) + " |"
    rule = "|---" * (4 + len(thresholds)) + "|"
    rows = [f"| {r.label} | {r.weights} | {r.stage} | {r.images} | "
            + " | ".join(f"{a.ratio:.4f} ({a.side} px)" for a in r.ratios) + " |" for r in results]
    return "\n".join([head, rule, *rows])


def cascade_table(result: CascadeResult) -> str:
    """The cascade's similarities as a Markdown table, one row per level."""
    rows = [f"| {level.name} | {level.spearman:.3f} | {level.ssim:.3f} |" for level in result.levels]
    return "\n".join(["| re-initialized | Spearman (abs map) | SSIM |", "|---|---|---|", *rows])


def faithfulness_table(result: FaithfulnessResult) -> str:
    """Deletion and insertion areas of the map and its baselines as a Markdown table."""
    from explorer.sanity import ORDERS

    rows = [f"| {ORDERS[key]} | {curves.deletion_auc:.3f} | {curves.insertion_auc:.3f} |"
            for key, curves in result.curves.items()]
    return "\n".join(["| pixel order | deletion AUC (lower: better) | insertion AUC (higher: better) |",
                      "|---|---|---|", *rows])
