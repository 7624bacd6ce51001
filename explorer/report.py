"""Summaries as text a person reads: table rows and the counted-versus-paper line.

Shared by the command line and the app, so both print the same figures the same way.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from explorer.analysis import Summary, computing_layers
from explorer.paper import FIGURE_TABLES, figure_for
from explorer.zoo import get_spec

if TYPE_CHECKING:
    from explorer.compare import BlockReport
    from explorer.counting import Counting
    from explorer.normalization import NormComparison
    from explorer.erf import ErfResult
    from explorer.sanity import CascadeResult, FaithfulnessResult

HEADERS = ["part", "output (N, C, H, W)", "blocks", "params (M)", "GFLOPs", "activations (MiB)"]


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
    printed = [f"{figure.params_m:g} M parameters"] if figure.params_m is not None else []
    printed.append(f"{paper} GFLOPs")
    if figure.top1 is not None:
        printed.append(f"{figure.top1:.1f}% top-1")
    text = f"{counted}. Paper ({figure.paper_name} at {figure.input_size}): {', '.join(printed)}."
    if figure.source != FIGURE_TABLES["models"]:
        text = f"{text[:-1]} ({figure.source})."
    return f"{text} {figure.note}" if figure.note else text


def format_table(summary: Summary) -> str:
    """A plain-text table for the terminal."""
    widths = [14, 24, 7, 11, 9, 17]
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
    "layers (mixing, norm, activation)": lambda r: str(computing_layers(r.layers)),  # not permutes, layer scale
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


def counting_table(counting: Counting) -> str:
    """Every FLOP counter's total and its split by operator kind (billions of multiply-accumulates as each
    tool counts them) as a Markdown table, the paper's figure first where it prints one."""
    from explorer.counting import KIND_LABELS, KINDS, TOOLS

    head = "| counter | total | " + " | ".join(KIND_LABELS[k] for k in KINDS) + " | seconds |"
    rule = "|---" * (len(KINDS) + 3) + "|"
    rows = []
    if counting.paper is not None:
        rows.append(f"| **the paper's table** | **{counting.paper}** |" + " |" * len(KINDS) + " |")
    for tool in TOOLS:
        c = counting.count(tool.key)
        rows.append(f"| {tool.label} | **{c.total:.4g}** | " + " | ".join(f"{c.by_kind[k]:.4g}" for k in KINDS)
                    + f" | {c.seconds:.2f} |")
    return "\n".join([head, rule, *rows])


def counting_notes(counting: Counting) -> str:
    """What each tool counts, one sentence each, and the two gaps no table column shows."""
    from explorer.counting import KIND_LABELS, TOOLS

    reference = counting.count("flop_counter").total
    lines = []
    for tool in TOOLS:
        difference = counting.count(tool.key).total - reference
        gap = "" if tool.key == "flop_counter" else f"; {difference:+.4g} against the paper's convention"
        kinds = ", ".join(KIND_LABELS[kind] for kind in tool.kinds)
        lines.append(f"- **{tool.label}** (can count: {kinds}{gap}): {tool.says}")
    if abs(counting.flop_counter_cpu - reference) > 5e-5:
        lines.append(f"- On a CPU tensor instead of the meta device, torch.utils.flop_counter counts "
                     f"{counting.flop_counter_cpu:.4g}: the attention ran through a fused kernel it has no rule for.")
    if counting.paper is not None and abs(counting.paper - reference) >= 0.05:
        lines.append(f"- The paper prints {counting.paper}; the count by its convention is {reference:.3f}.")
    return "\n".join(lines)


def norm_summary(comparison: NormComparison) -> str:
    """What the norms did to this tensor and whether the two LayerNorms agree, in Markdown."""
    n, c, h, w = comparison.shape
    affine = (f"with the scale and shift of the model's `{comparison.affine_from}`" if comparison.affine_from
              else "with scale 1 and shift 0 (the model has no LayerNorm of this width)")
    ratio = comparison.seconds_permuted / comparison.seconds_channels_first
    return (
        f"Stage {comparison.stage + 1} of **{comparison.model}** ({comparison.weights}) gives a {n} x {c} x {h} x {w} "
        f"tensor. BatchNorm normalizes each of the {c} channels over the batch and the {h * w} positions (here the "
        f"batch is this one image; in training it is the whole batch, at inference the running averages); "
        f"LayerNorm, as ConvNeXt uses it, normalizes each of the {h * w} positions over its {c} channels. "
        f"Channel means range from {comparison.bn_mean.min():.3f} to {comparison.bn_mean.max():.3f}, position means "
        f"from {comparison.ln_mean.min():.3f} to {comparison.ln_mean.max():.3f}.\n\n"
        f"**The official channels_first LayerNorm against `nn.LayerNorm` after a permute**, {affine}: the largest "
        f"difference over the tensor is {comparison.max_difference:.2e} (float32 rounding). On this machine one pass "
        f"takes {comparison.seconds_channels_first * 1e6:.0f} us written out as the official code does and "
        f"{comparison.seconds_permuted * 1e6:.0f} us through the permute and `F.layer_norm` ({ratio:.2f}x; the fastest "
        f"of 50 passes each on the CPU, since other work on a shared machine only adds time). Both are the same "
        f"arithmetic; which is faster depends on the tensor's size and the machine."
    )


def bn_to_ln_text(before: Counting, after: Counting) -> str:
    """Why the paper's BN -> LN step moves no FLOPs, from the counting lab's figures of both networks."""
    def line(key: str) -> str:
        b, a = before.count(key), after.count(key)
        return f"| {key} | {b.total:.4f} | {a.total:.4f} | {b.by_kind['norms']:.4f} | {a.by_kind['norms']:.4f} |"

    from explorer.counting import TOOLS

    reference = before.count("flop_counter").total, after.count("flop_counter").total
    return "\n".join([
        f"The roadmap's network just before BN -> LN and just after, counted by every tool at {before.input_size}. "
        f"By the paper's convention (torch.utils.flop_counter) they are {reference[0]:.3f} and {reference[1]:.3f} "
        f"GFLOPs: a norm multiplies no weights with activations, so swapping one changes nothing there. The paper "
        f"prints {before.paper} and {after.paper}; the second figure does not follow from the networks. Tools that "
        "count norms see a change, because they charge LayerNorm and BatchNorm differently per element (fvcore 5 "
        "against 2; ptflops 1 for an exact nn.LayerNorm, nothing for its subclass LayerNorm2d; thop 4 for both). "
        "The rest of each change comes from how the LN network is written, not from the norm: on channels-last "
        "tensors its 1x1 convolutions are nn.Linear layers, which torchinfo counts once per image, and without a "
        "BatchNorm after them they keep their biases, which both ptflops backends add.",
        "",
        "| counter | BN network | LN network | BN's norms | LN's norms |",
        "|---|---|---|---|---|",
        *[line(tool.key) for tool in TOOLS],
    ])
def printed_beside_counted(summaries: list[Summary]) -> str:
    """A Markdown table: each model's counted parameters and GFLOPs beside the printed ones, with the
    printed top-1 and where the figures come from."""
    lines = ["| model | params (M) | paper | GFLOPs | paper | top-1, paper | source |",
             "|---|---|---|---|---|---|---|"]
    for summary in summaries:
        figure = figure_for(get_spec(summary.model), summary.input_size)

        def printed(value) -> str:
            return "-" if figure is None or value is None else f"{value:g}"

        lines.append(f"| {summary.label} | {summary.params / 1e6:.2f} | {printed(figure and figure.params_m)} | "
                     f"{summary.gflops:.3f} | {printed(figure and figure.gflops)} | "
                     f"{printed(figure and figure.top1)} | {figure.source if figure else '-'} |")
    return "\n".join(lines)


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
