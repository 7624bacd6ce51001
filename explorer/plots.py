"""Plotly figures drawn from the data in `explorer.analysis`, `explorer.paper`, `explorer.inspect`,
`explorer.bench`, `explorer.erf` and `explorer.sanity`."""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from explorer.analysis import Summary, operation

if TYPE_CHECKING:  # types only: figures take the data, they do not compute it
    from explorer.bench import BenchReport
    from explorer.counting import Counting
    from explorer.normalization import NormComparison
    from explorer.collapse import CollapseProfile
    from explorer.erf import ErfResult
    from explorer.inspect import DepthwiseKernels, DistanceProfile, StageActivations, StemFilters
    from explorer.paper import FamilyPoint
    from explorer.sanity import CascadeResult, FaithfulnessResult

# plotly_white on a transparent background: the page's light or dark background shows through, and the
# page's style (explorer/ui/page.css) turns the template's text and grid light in dark mode.
# It is plotly's default template in this process: a figure takes its default as it is, while each
# `template=` given to a figure was checked again, 18 ms a figure, a third of the time the views took.
TEMPLATE = go.layout.Template(pio.templates["plotly_white"])
TEMPLATE.layout.update(paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)")
# Plotly never breaks a title's line, and a figure on a phone is about 350 px wide: `titled` breaks every
# title into lines of TITLE_CHARS characters or fewer, which that width holds at TITLE_SIZE px, hangs it
# from the figure's top edge below the tool bar (a phone shows the bar all the time, over the first line
# otherwise) and makes the top margin as tall as its lines. Plotly's own title margin (automargin) is no
# use here: it moves a title of two lines or more up off the figure on a push, leaves the lines over the
# plot when there is no push, and drops the push where other margins grew (turned tick labels).
TITLE_CHARS = 36
TITLE_SIZE = 15
TITLE_LINE = 20  # px: the height of one of its lines
TITLE_TOP = 44  # px from the figure's top edge: below the tool bar (28 px) whatever the number of lines
TEMPLATE.layout.title.update(font=dict(size=TITLE_SIZE), yref="container", y=1, yanchor="top", pad=dict(t=TITLE_TOP))
pio.templates["convnext-explorer"] = TEMPLATE  # after its last change: plotly keeps a copy
pio.templates.default = "convnext-explorer"
LABELLED_FAMILY = "ConvNeXt"  # the family chart names these models beside their markers
FAMILY_COLORS = {"ConvNeXt": "#1f77b4", "Swin": "#ff7f0e", "ResNet": "#7f7f7f", "ResNeXt": "#2ca02c",
                 "Roadmap": "#9467bd", "ConvNeXt V2": "#d62728", "Isotropic": "#17becf", "ViT": "#8c564b"}
METRICS = {"params": ("Parameters (M)", lambda row: row.params / 1e6),
           "gflops": ("GFLOPs (paper convention)", lambda row: row.gflops)}


def short_name(name: str) -> str:
    """A LABELLED_FAMILY model's name without the family: "ConvNeXt-B @384" -> "B @384"."""
    return name.removeprefix(f"{LABELLED_FAMILY}-")


def titled(text: str, above_plot: int = 0, below: int | None = None) -> dict:
    """Layout settings for a figure titled `text`: the title broken into lines that fit a phone (<br>
    breaks are kept; a <sub> line is broken into <sub> lines) and the top margin that holds them, with
    `above_plot` px more between title and plot (for subplot titles). A figure whose size follows its
    content gives the px `below` the top margin (plot and bottom margin) and gets its height: a longer
    title then makes the figure taller instead of squeezing the plot (to nothing, on a phone)."""
    lines = []
    for part in text.split("<br>"):
        sub = part.startswith("<sub>") and part.endswith("</sub>")
        words = part.removeprefix("<sub>").removesuffix("</sub>") if sub else part
        lines += [f"<sub>{line}</sub>" if sub else line for line in textwrap.wrap(words, TITLE_CHARS)]
    top = TITLE_TOP + TITLE_LINE * len(lines) + 8 + above_plot
    return dict(title=dict(text="<br>".join(lines)), margin_t=top, **({} if below is None else {"height": top + below}))


def stage_bars(summaries: list[Summary], metric: str) -> go.Figure:
    """Per-stage bars of `metric` ("params" or "gflops"), one group of bars per model."""
    title, value = METRICS[metric]
    fig = go.Figure()
    for summary in summaries:
        fig.add_bar(
            name=f"{summary.label} @{summary.input_size}",
            x=[row.name for row in summary.stages],
            y=[value(row) for row in summary.stages],
            hovertemplate="%{x}: %{y:.3f}<extra>%{fullData.name}</extra>",
        )
    fig.update_layout(**titled(f"{title} per stage"), barmode="group", height=340,
                      yaxis_title=title, legend=dict(orientation="h", y=-0.2), margin=dict(b=10))
    return fig


def log_axis(values, **settings) -> dict:
    """A log axis labelled at 1, 2 and 5 times each power of ten around `values`, every label written in
    full: plotly's own minor labels read "2 ... 5" for 20 and 50."""
    positive = [float(v) for v in values if v is not None and v > 0]
    if not positive:
        return dict(type="log", **settings)
    low, high = min(positive), max(positive)
    ticks = [m * 10.0 ** k for k in range(int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1)
             for m in (1, 2, 5)]
    ticks = [t for t in ticks if low / 2.5 <= t <= high * 2.5]
    return dict(type="log", tickvals=ticks, ticktext=[f"{t:,.4g}" for t in ticks], **settings)


def family_chart(points: list[FamilyPoint]) -> go.Figure:
    """Parameters against GFLOPs for whole families: counted markers, the paper's figures beside them.
    Models of equal size from different families sit on top of each other, so only LABELLED_FAMILY's
    markers carry a name: its size (T, S, B, L, XL, and the input size when not 224). At 224 it stands to
    the right, where no other family's model of that size sits; at 384 to the left, which is empty at that
    height and keeps the top right corner's name inside the plot. Every marker names its model on hover,
    and the legend its family."""
    fig = go.Figure()
    for family in dict.fromkeys(p.family for p in points):
        members = [p for p in points if p.family == family]
        color = FAMILY_COLORS.get(family, "#333333")
        fig.add_scatter(
            name=f"{family} (counted)", mode="markers", x=[p.params_m for p in members],
            y=[p.gflops for p in members], text=[p.name for p in members],
            marker=dict(color=color, size=11),
            hovertemplate="%{text}<br>%{x:.2f} M params<br>%{y:.2f} GFLOPs counted<extra></extra>",
        )
        printed = [p for p in members if p.paper_gflops is not None]
        fig.add_scatter(
            name=f"{family} (paper)", mode="markers", x=[p.params_m for p in printed],
            y=[p.paper_gflops for p in printed], text=[p.name for p in printed],
            marker=dict(color=color, size=15, symbol="circle-open", line=dict(width=2)),
            hovertemplate="%{text}<br>%{y:.1f} GFLOPs in the paper<extra></extra>",
        )
    named = [p for p in points if p.family == LABELLED_FAMILY]  # last, so no marker covers a name
    fig.add_scatter(
        mode="markers+text", x=[p.params_m for p in named], y=[p.gflops for p in named],
        text=[short_name(p.name) for p in named],
        textposition=["middle left" if "@" in p.name else "middle right" for p in named],
        marker=dict(size=15, opacity=0), showlegend=False, hoverinfo="skip",  # the names start past the rings
    )
    fig.update_layout(**titled("The families: parameters against GFLOPs"), height=620,
                      xaxis_title="Parameters (M)", yaxis_title="GFLOPs (paper convention)",
                      xaxis=dict(type="log", tickvals=[4, 10, 25, 50, 100, 200, 400], range=[0.45, 3.2],
                                 tickangle=0, automargin=True),  # seven labels fit a phone unturned
                      yaxis=dict(type="log", tickvals=[0.5, 1, 2, 4, 8, 15, 30, 60, 115, 180], automargin=True),
                      legend=dict(orientation="h", yref="container", y=0, yanchor="bottom"),
                      margin=dict(b=90, l=10, r=10))
    return fig


PART_COLORS = ("#c7c7c7", "#c6dbef", "#6baed6", "#2171b5", "#08306b", "#7f7f7f")  # stem, 3-4 middle rows, head


def _luminance(color: str) -> float:
    """WCAG relative luminance of a #rrggbb colour."""
    channels = [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def ink(fill: str) -> str:
    """The text colour, near-black or white, with the more contrast on `fill` (#rrggbb)."""
    light = _luminance(fill)
    return "#111827" if (light + 0.05) / (_luminance("#111827") + 0.05) >= 1.05 / (light + 0.05) else "#ffffff"


def compute_layout_chart(summaries: list[Summary]) -> go.Figure:
    """One horizontal bar per model, cut into its rows (stem, stages or groups of blocks, head) by
    their share of the model's GFLOPs; each part is labelled with its output shape."""
    fig = go.Figure()
    for summary in summaries:
        last = len(summary.stages) - 1
        for index, row in enumerate(summary.stages):
            share = 100 * row.gflops / summary.gflops
            color = PART_COLORS[0 if index == 0 else -1 if index == last else min(index, len(PART_COLORS) - 2)]
            shape = "x".join(str(d) for d in row.output_shape[1:])
            fig.add_bar(
                y=[summary.label], x=[share], orientation="h", marker=dict(color=color, line=dict(color="white", width=1)),
                text=[f"{row.name}<br>{shape}" if share >= 8 else ""], textposition="inside", insidetextanchor="middle",
                insidetextfont=dict(color=ink(color)),
                showlegend=False, hovertemplate=(f"{summary.label}, {row.name}: output {shape}<br>"
                                                 f"{row.gflops:.3f} GFLOPs (%{{x:.1f}}% of {summary.gflops:.2f})<extra></extra>"))
    fig.update_layout(barmode="stack",
                      **titled("Where the compute sits: each part's share of the model's GFLOPs, with its "
                               "output shape", below=70 + 90 * len(summaries)),
                      xaxis=dict(title="share of the GFLOPs (%)", range=[0, 100]), yaxis=dict(autorange="reversed"),
                      margin=dict(b=10))
    return fig

# One fill per operation kind (explorer.analysis.OPERATIONS), pale enough for dark text in either theme.
OPERATION_COLORS = {"spatial mixing": "#93c5fd", "channel mixing": "#fdba74", "norm": "#86efac",
                    "activation": "#fca5a5", "layer scale": "#c4b5fd", "layout": "#d1d5db"}
BOX_TEXT = "#1f2937"  # text inside the boxes: 10:1 or more on every fill above


def _branches(layers: list) -> list[tuple[int, int]]:
    """(first, last) layer index of each residual branch. A block with attention is two pre-norm branches,
    x + attention(norm(x)) and then x + MLP(norm(x)): the second starts at the first norm after the
    attention. Every other block here is one branch."""
    kinds = [layer.kind for layer in layers]
    if "attention" in kinds:
        after = kinds.index("attention") + 1
        second = next((i for i in range(after, len(kinds)) if kinds[i] == "norm"), None)
        if second is not None:
            return [(0, second - 1), (second, len(layers) - 1)]
    return [(0, len(layers) - 1)]


def block_diagram(layers: list, title: str) -> go.Figure:
    """One block drawn top to bottom: a box per layer coloured by what it does (a legend below), its
    output shape beside it, and each residual branch's shortcut ending in its addition (+)."""
    rows, y = [], 0.0  # the y of each layer; an addition takes a row of its own after its branch
    ends = {last for _first, last in _branches(layers)}
    for i, layer in enumerate(layers):
        rows.append(y)
        y -= 1.0 if i not in ends else 1.8
    # Shapes and annotations are collected and handed to the figure at once: plotly's add_shape and
    # add_annotation copy every earlier one on each call, which made a 12-layer block take 0.3 s.
    shapes, notes = [], []
    arrow = dict(xref="x", yref="y", axref="x", ayref="y", showarrow=True, arrowhead=2, arrowcolor="#6b7280", text="")
    for i, layer in enumerate(layers):
        y = rows[i]
        shapes.append(dict(type="rect", x0=0, x1=1, y0=y - 0.36, y1=y + 0.36, line=dict(color="#6b7280", width=1),
                           fillcolor=OPERATION_COLORS[operation(layer)]))
        notes.append(dict(x=0.5, y=y, text=f"<b>{layer.name}</b>  {layer.detail}", showarrow=False,
                          font=dict(color=BOX_TEXT, size=11)))
        notes.append(dict(x=1.04, y=y, text=" x ".join(str(d) for d in layer.output_shape), showarrow=False,
                          xanchor="left"))
        if i:  # from the box above, or from the addition that ended the branch above
            start = y + 0.64 if rows[i - 1] - y < 1.5 else rows[i - 1] - 0.9 - 0.28
            notes.append(dict(arrow, x=0.5, y=y + 0.36, ax=0.5, ay=start))
    for first, last in _branches(layers):
        top, plus = rows[first] + 0.5, rows[last] - 0.9
        shapes.append(dict(type="path", path=f"M 0.5 {top} L -0.12 {top} L -0.12 {plus} L 0.44 {plus}",
                           line=dict(color="#6b7280", dash="dot")))
        shapes.append(dict(type="circle", x0=0.44, x1=0.56, y0=plus - 0.28, y1=plus + 0.28,
                           line=dict(color="#6b7280"), fillcolor="#ffffff"))
        notes.append(dict(x=0.5, y=plus, text="<b>+</b>", showarrow=False, font=dict(color=BOX_TEXT, size=16)))
        notes.append(dict(arrow, x=0.5, y=plus + 0.28, ax=0.5, ay=rows[last] - 0.36))
        notes.append(dict(x=-0.14, y=(top + plus) / 2, text="shortcut", textangle=-90, showarrow=False,
                          xanchor="right"))
    shown = {operation(layer) for layer in layers}  # a legend entry per kind in this block
    legend = [go.Scatter(x=[None], y=[None], mode="markers", name=kind, showlegend=True,
                         marker=dict(symbol="square", size=12, color=OPERATION_COLORS[kind],
                                     line=dict(color="#6b7280", width=1)))
              for kind in OPERATION_COLORS if kind in shown]
    bottom = min(rows) - 1.4
    return go.Figure(legend, layout=dict(
        **titled(title, below=110 + 44 * (len(rows) + len(ends))), shapes=shapes,
        annotations=notes, xaxis=dict(visible=False, range=[-0.3, 1.6], fixedrange=True),
        yaxis=dict(visible=False, range=[bottom, 0.8], fixedrange=True),
        legend=dict(orientation="h", x=0, y=0, yanchor="top"), margin=dict(b=10, l=0, r=0)))


def roadmap_chart(rows: list[dict], current: str, reference: dict) -> go.Figure:
    """The paper's Figure 2 made live: top-1 and GFLOPs per step, the current step marked, and the
    reference Transformer's top-1 as the line to beat."""
    from plotly.subplots import make_subplots

    titles = [row["title"] for row in rows]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.55, 0.45])
    fig.add_scatter(x=titles, y=[row["paper_top1"] for row in rows], mode="lines+markers", name="top-1 (paper)",
                    line=dict(color=FAMILY_COLORS["ConvNeXt"]), row=1, col=1,
                    hovertemplate="%{x}: %{y:.2f}% top-1<extra></extra>")
    fig.add_hline(y=reference["paper_top1"], line=dict(color=FAMILY_COLORS["Swin"], dash="dash"), row=1, col=1,
                  annotation_text=f"{reference['title']}: {reference['paper_top1']:.2f}%",
                  annotation_position="top left")
    fig.add_bar(x=titles, y=[row["gflops"] for row in rows], name="GFLOPs (counted)", row=2, col=1,
                marker_color=["#d62728" if row["id"] == current else "#9ecae1" for row in rows],
                hovertemplate="%{x}: %{y:.3f} GFLOPs counted<extra></extra>")
    fig.add_scatter(x=titles, y=[row["paper_gflops"] for row in rows], mode="markers", name="GFLOPs (paper)",
                    marker=dict(symbol="line-ew-open", size=22, line=dict(width=3, color="#333")), row=2, col=1,
                    hovertemplate="%{x}: %{y:.2f} GFLOPs in the paper<extra></extra>")
    position = titles[[row["id"] for row in rows].index(current)] if current in [r["id"] for r in rows] else None
    if position is not None:
        fig.add_vline(x=position, line=dict(color="#d62728", width=1))
    fig.update_yaxes(title_text="top-1 (%)", row=1, col=1)  # ImageNet-1K; short enough for its row on a phone
    fig.update_yaxes(title_text="GFLOPs", row=2, col=1)
    fig.update_layout(height=600, **titled("Figure 2, live: each step's accuracy and cost"),
                      legend=dict(orientation="h", yref="container", y=0, yanchor="bottom"), margin=dict(b=40))
    return fig


# --- looking inside: filters, activations ---------------------------------------------------------

KERNELS_SHOWN = 64  # kernels drawn in one grid (the first ones, or the strongest when sorted)
KERNEL_COLUMNS = 16
KERNEL_GRID_WIDTH = 700  # pixels the grid is expected to get; the height keeps the kernels square
DIVERGING = "RdBu_r"  # negative blue, zero white, positive red
STAGE_COLORS = ("#9ecae1", "#4292c6", "#2171b5", "#08306b")  # stage 1 light .. stage 4 dark


def _mosaic(tiles: np.ndarray, columns: int, gap: int = 1) -> np.ndarray:
    """(T, k, k) tiles -> one (rows*(k+gap)-gap, columns*(k+gap)-gap) array with NaN between tiles."""
    count, height, width = tiles.shape[:3]
    rows = -(-count // columns)
    mosaic = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap) + tiles.shape[3:], np.nan)
    for index, tile in enumerate(tiles):
        top, left = (index // columns) * (height + gap), (index % columns) * (width + gap)
        mosaic[top:top + height, left:left + width] = tile
    return mosaic


def kernel_grid(kernels: DepthwiseKernels, shown: int = KERNELS_SHOWN) -> go.Figure:
    """The kxk depthwise kernels of one block as heatmaps on one symmetric color scale (0 is white)."""
    weights = kernels.weights[:shown]  # (T, k, k)
    size = kernels.kernel_size
    columns = min(KERNEL_COLUMNS, len(weights))
    values = _mosaic(weights, columns)
    channel_of = _mosaic(np.broadcast_to(kernels.channels[:shown, None, None].astype(float), weights.shape), columns)
    limit = float(np.abs(weights).max()) or 1.0
    fig = go.Figure(go.Heatmap(
        z=values, customdata=channel_of, zmin=-limit, zmax=limit, zmid=0, colorscale=DIVERGING,
        hovertemplate="channel %{customdata:.0f}<br>weight %{z:.4f}<extra></extra>", hoverongaps=False,
        colorbar=dict(title="weight")))
    order = "strongest first (L2 norm)" if kernels.sorted_by_norm else "channels in order"
    total = len(kernels.channels)
    grid = int(KERNEL_GRID_WIDTH * values.shape[0] / values.shape[1])  # px: the kernels' mosaic, square cells
    fig.update_layout(
        **titled(f"{kernels.layer.name}<br><sub>{min(shown, total)} of {total} {size}x{size} "
                                 f"kernels, {order}</sub>", below=30 + grid),
        margin=dict(b=10, l=10, r=10),
        xaxis=dict(visible=False), yaxis=dict(visible=False, autorange="reversed", scaleanchor="x"))
    return fig


def distance_chart(profiles: list[DistanceProfile], title: str) -> go.Figure:
    """Mean |weight| against distance from the kernel's center, one line per stage."""
    fig = go.Figure()
    for profile in profiles:
        fig.add_scatter(
            x=profile.distances, y=profile.mean_abs, mode="lines+markers",
            name=f"stage {profile.stage + 1} ({profile.kernels} kernels)",
            line=dict(color=STAGE_COLORS[profile.stage % len(STAGE_COLORS)]),
            hovertemplate="distance %{x:.2f}: mean |w| %{y:.4f}<extra>%{fullData.name}</extra>")
    size = profiles[0].kernel_size if profiles else 0
    fig.update_layout(**titled(title), height=360, margin=dict(b=10),
                      xaxis_title=f"taps from the {size}x{size} kernel's center",  # fits a phone's figure
                      yaxis_title="mean |weight|", legend=dict(orientation="h", y=-0.25))
    return fig


def stem_tiles(stems: list[StemFilters], columns: int = 8) -> go.Figure:
    """Stem filters as RGB tiles (0 is mid-grey), one panel per model, side by side."""
    from plotly.subplots import make_subplots

    titles = [f"{stem.model} ({stem.weights_label}): {stem.layer}, {stem.tiles.shape[0]} filters "
              f"{stem.tiles.shape[1]}x{stem.tiles.shape[2]}, stride {stem.stride}" for stem in stems]
    fig = make_subplots(rows=1, cols=len(stems), subplot_titles=titles, horizontal_spacing=0.04)
    for column, stem in enumerate(stems, start=1):
        mosaic = _mosaic(stem.tiles.astype(float), columns)
        image = np.nan_to_num(mosaic, nan=255).astype(np.uint8)  # white gaps
        fig.add_trace(go.Image(z=image, hovertemplate="x %{x}, y %{y}<extra></extra>"), row=1, col=column)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=11)
    fig.update_layout(height=420, margin=dict(b=10, l=10, r=10),
                      **titled("Stem filters on the RGB image", above_plot=18))
    return fig


def activation_grid(stage: StageActivations, columns: int = 4) -> go.Figure:
    """The most active channels of one stage output, titled with the tensor's shape."""
    from plotly.subplots import make_subplots

    count = len(stage.channels)
    rows = -(-count // columns)
    fig = make_subplots(rows=rows, cols=columns, horizontal_spacing=0.02, vertical_spacing=0.04,
                        subplot_titles=[f"ch {channel}" for channel in stage.channels])
    for index, (channel, values) in enumerate(zip(stage.channels, stage.maps)):
        low, high = float(values.min()), float(values.max())
        fig.add_trace(go.Heatmap(
            z=values, colorscale="Viridis", showscale=False,
            hovertemplate=(f"channel {channel}<br>range [{low:.3g}, {high:.3g}]"
                           "<br>(%{x}, %{y}): %{z:.3g}<extra></extra>")),
            row=index // columns + 1, col=index % columns + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_annotations(font_size=10)
    shape = " x ".join(str(size) for size in stage.shape)
    fig.update_layout(**titled(f"stage {stage.stage + 1} ({stage.module}): {shape}", above_plot=16,
                                                  below=10 + 150 * rows), margin=dict(b=5, l=5, r=5))
    return fig


# --- lessons --------------------------------------------------------------------------------------

def results_chart(points: list[dict], title: str) -> go.Figure:
    """ImageNet top-1 against counted GFLOPs, one line per family (dicts: family, name, gflops, top1).
    As in the family chart, only LABELLED_FAMILY's models at 224 carry a name (above, where the Swin model
    of the same GFLOPs is not: it scores lower; the larger inputs crowd the top right); every other model
    gives its name on hover."""
    fig = go.Figure()
    for family in dict.fromkeys(p["family"] for p in points):
        members = sorted((p for p in points if p["family"] == family), key=lambda p: p["gflops"])
        fig.add_scatter(name=family, x=[p["gflops"] for p in members], y=[p["top1"] for p in members],
                        text=[p["name"] for p in members], textposition="top left",
                        texttemplate=[short_name(p["name"]) if "@" not in p["name"] else "" for p in members],
                        mode="lines+markers+text" if family == LABELLED_FAMILY else "lines+markers",
                        line=dict(color=FAMILY_COLORS.get(family, "#333333")), marker=dict(size=10),
                        hovertemplate="%{text}<br>%{x:.2f} GFLOPs counted<br>%{y:.1f}% top-1<extra></extra>")
    fig.update_layout(**titled(title), height=440,
                      xaxis=log_axis([p["gflops"] for p in points], title="GFLOPs (counted)"),
                      yaxis_title="ImageNet-1K top-1 (%, the paper's)", legend=dict(orientation="h", y=-0.18),
                      margin=dict(b=10))
    return fig


def sweep_chart(values: list, gflops: list[float], top1: list[float | None], current, label: str) -> go.Figure:
    """A design sweep: counted GFLOPs (bars, current value marked) and the paper's top-1 (line)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(x=values, y=gflops, name="GFLOPs (counted)",
                marker_color=["#d62728" if v == current else "#9ecae1" for v in values],
                hovertemplate=f"{label} %{{x}}: %{{y:.3f}} GFLOPs<extra></extra>")
    printed = [(v, t) for v, t in zip(values, top1) if t is not None]
    fig.add_scatter(x=[v for v, _ in printed], y=[t for _, t in printed], name="top-1 (paper)", mode="lines+markers",
                    line=dict(color=FAMILY_COLORS["ConvNeXt"]), secondary_y=True,
                    hovertemplate=f"{label} %{{x}}: %{{y:.2f}}% top-1<extra></extra>")
    fig.update_yaxes(title_text="GFLOPs", secondary_y=False)
    fig.update_yaxes(title_text="ImageNet-1K top-1 (%)", secondary_y=True)
    fig.update_layout(height=360, xaxis=dict(title=label, tickvals=values),
                      legend=dict(orientation="h", y=-0.25), margin=dict(t=30, b=10))
    return fig


def paired_bars(categories: list[str], series: dict[str, list[float | None]], title: str, axis: str) -> go.Figure:
    """Grouped bars: one group per category, one bar per series (e.g. Swin and ConvNeXt)."""
    fig = go.Figure()
    for name, values in series.items():
        fig.add_bar(name=name, x=categories, y=values, marker_color=FAMILY_COLORS.get(name.split()[0]),
                    text=[f"{v:g}" if v is not None else "" for v in values], textposition="outside",
                    hovertemplate="%{x}: %{y}<extra>" + name + "</extra>")
    fig.update_layout(**titled(title), barmode="group", height=420, yaxis_title=axis,
                      legend=dict(orientation="h", y=-0.2), margin=dict(b=10))
    return fig


# --- throughput -----------------------------------------------------------------------------------

MEASURED_COLOR, PLAIN_COLOR, PAPER_COLOR = "#1f77b4", "#aec7e8", "#ff7f0e"


def throughput_chart(report: BenchReport) -> go.Figure:
    """Images per second measured here beside the paper's A100 figures (log scale: a CPU and an A100
    differ a hundredfold), each ConvNeXt/Swin ratio written above its ConvNeXt."""
    measured, first = report.measurements, report.measurements[0]
    titles = [m.title for m in measured]
    settings = f"{first.precision}, {'compiled' if first.compiled else 'eager'}"
    fig = go.Figure()
    fig.add_bar(name=f"here ({settings})", x=titles, y=[m.images_per_s for m in measured],
                marker_color=MEASURED_COLOR, hovertemplate="%{x}: %{y:,.1f} images/s<extra>%{fullData.name}</extra>")
    if any(m.plain_images_per_s for m in measured):
        fig.add_bar(name="here, timm's plain path (fp32, eager)", x=titles, y=[m.plain_images_per_s for m in measured],
                    marker_color=PLAIN_COLOR, hovertemplate="%{x}: %{y:,.1f} images/s<extra>%{fullData.name}</extra>")
    fig.add_bar(name="paper, A100 (TF32, channels-last)", x=titles, y=[m.paper_images_per_s for m in measured],
                marker_color=PAPER_COLOR, hovertemplate="%{x}: %{y:,.1f} images/s<extra>%{fullData.name}</extra>")
    for ratio in report.ratios:
        fig.add_annotation(x=ratio.convnext, y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                           text=f"/ {ratio.swin}:<br>{ratio.measured:.2f}x here<br>{ratio.paper:.2f}x paper")
    fig.update_layout(barmode="group", height=440,
                      **titled(f"Throughput on {first.device}, batch {first.batch}, beside the paper's Table 12",
                                   above_plot=48),  # the ratios stand over the bars
                      yaxis=log_axis([v for m in measured for v in (m.images_per_s, m.plain_images_per_s,
                                                                     m.paper_images_per_s)],
                                     title="images per second (log scale)"),
                      legend=dict(orientation="h", y=-0.15), margin=dict(b=10))
    return fig


# --- effective receptive fields -------------------------------------------------------------------

ERF_DECADES = 4  # the color scale runs from 10^-4 of a map's peak (dark) to its peak (bright)
ERF_SHOWN_SIDE = 112  # maps are averaged down to at most this many pixels a side for the page
ERF_COLORS = ("#08306b", "#2171b5", "#6baed6", "#fd8d3c", "#d62728", "#756bb1", "#31a354")
INFERNO = [[0.0, "#000004"], [0.25, "#57106e"], [0.5, "#bc3754"], [0.75, "#f98e09"], [1.0, "#fcffa4"]]


def _shrunk(values: np.ndarray, side: int) -> tuple[np.ndarray, int]:
    """A map averaged over f x f blocks (f the smallest whole factor that brings it to `side` or
    less), and f."""
    factor = max(1, -(-values.shape[0] // side))
    height, width = (values.shape[0] // factor) * factor, (values.shape[1] // factor) * factor
    blocks = values[:height, :width].reshape(height // factor, factor, width // factor, factor)
    return blocks.mean(axis=(1, 3)), factor


def erf_decades(values: np.ndarray) -> np.ndarray:
    """log10 of a map relative to its own peak, clipped at -ERF_DECADES: one scale for every model,
    whatever the size of its gradients."""
    peak = float(values.max())
    if peak <= 0:
        return np.full(values.shape, -float(ERF_DECADES))
    return np.log10(np.clip(values / peak, 10.0 ** -ERF_DECADES, None))


def _erf_names(results: list[ErfResult]) -> list[str]:
    """Each map's name: its model, or its weights where the models are the same."""
    labels = [result.label for result in results]
    if len(set(labels)) == len(labels) or len({result.weights for result in results}) == 1:
        return labels
    return [f"{result.label}: {result.weights}" for result in results]


def erf_grid(results: list[ErfResult], title: str) -> go.Figure:
    """The maps side by side on one shared log color scale, each titled with its area ratio at t = 0.5
    and a centred square marking that area."""
    from plotly.subplots import make_subplots

    columns = min(len(results), 5)
    rows = -(-len(results) // columns)
    titles = [f"{name.replace(': ', '<br>', 1)}<br>{r.stage}, ratio@0.5 {r.ratios[2].ratio:.3f}"
              for name, r in zip(_erf_names(results), results)]
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.12 / rows)
    for index, result in enumerate(results):
        shown, factor = _shrunk(erf_decades(result.map), ERF_SHOWN_SIDE)
        pixels = (np.arange(shown.shape[0]) + 0.5) * factor  # input pixels at the block centres
        row, column = index // columns + 1, index % columns + 1
        fig.add_trace(go.Heatmap(
            z=shown, x=pixels, y=pixels, coloraxis="coloraxis",
            hovertemplate="x %{x:.0f}, y %{y:.0f}: 10^%{z:.2f} of the peak<extra>" + result.model + "</extra>"),
            row=row, col=column)
        half = result.ratios[2].side / 2
        centre_y, centre_x = result.map.shape[0] // 2 + 0.5, result.map.shape[1] // 2 + 0.5
        axis = "" if index == 0 else str(index + 1)
        fig.add_shape(type="rect", x0=centre_x - half, x1=centre_x + half, y0=centre_y - half, y1=centre_y + half,
                      line=dict(color="#7fdbff", width=1, dash="dot"), xref=f"x{axis}", yref=f"y{axis}")
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    for index in range(1, len(results)):  # every panel square
        fig.update_yaxes(scaleanchor=f"x{index + 1}", row=index // columns + 1, col=index % columns + 1)
    fig.update_annotations(font_size=11)
    fig.update_layout(
        **titled(title, above_plot=48, below=260 * rows - 30), margin=dict(b=10, l=10, r=10),
        coloraxis=dict(colorscale=INFERNO, cmin=-ERF_DECADES, cmax=0,
                       colorbar=dict(title="log10 of<br>the peak", tickvals=list(range(-ERF_DECADES, 1)))))
    return fig


def erf_profiles(results: list[ErfResult], title: str) -> go.Figure:
    """Mean share of the total per pixel against the distance from the centre, one line per map."""
    from explorer.erf import radial_profile

    fig = go.Figure()
    for index, (name, result) in enumerate(zip(_erf_names(results), results)):
        distances, shares = radial_profile(result.map)
        fig.add_scatter(x=distances, y=np.clip(shares, 1e-12, None), mode="lines", name=f"{name} ({result.stage})",
                        line=dict(color=ERF_COLORS[index % len(ERF_COLORS)], width=2),
                        hovertemplate="%{x:.0f} px: %{y:.2e} of the total per pixel<extra>%{fullData.name}</extra>")
    fig.update_layout(**titled(title), height=380, margin=dict(b=10),
                      xaxis_title="distance from the centre (input pixels)",
                      yaxis=dict(type="log", title="share of the total per pixel", exponentformat="power"),
                      legend=dict(orientation="h", y=-0.25))
    return fig


# --- FLOP counters and norms ------------------------------------------------------------------------

COUNT_KIND_COLORS = {"convolution": "#aec7e8", "linear": "#ffbb78", "attention_matmuls": "#c5b0d5",
                     "norms": "#98df8a", "activations": "#ff9896", "other": "#dddddd"}


def counting_chart(counting: Counting) -> go.Figure:
    """One stacked bar per FLOP counter, split by operator kind, with the paper's figure as a line."""
    from explorer.counting import KIND_LABELS, KINDS, TOOLS

    labels = [tool.label.split(" (")[0] for tool in TOOLS]
    fig = go.Figure()
    for kind in KINDS:
        fig.add_bar(name=KIND_LABELS[kind], x=labels, y=[counting.count(t.key).by_kind[kind] for t in TOOLS],
                    marker_color=COUNT_KIND_COLORS[kind], hovertemplate="%{x}: %{y:.4f} G<extra>" + kind + "</extra>")
    for tool, label in zip(TOOLS, labels):
        fig.add_annotation(x=label, y=counting.count(tool.key).total, text=f"{counting.count(tool.key).total:.3f}",
                           showarrow=False, yanchor="bottom")
    if counting.paper is not None:
        fig.add_hline(y=counting.paper, line_dash="dot", annotation_text=f"paper: {counting.paper}")
    fig.update_layout(barmode="stack", height=440,
                      **titled(f"{counting.label or counting.model} at {counting.input_size}: "
                                   "what each counter counts"),
                      yaxis_title="billions of multiply-accumulates, as each tool counts them",
                      legend=dict(orientation="h", y=-0.15), margin=dict(b=10))
    return fig


NORM_POSITIONS_SHOWN = 64  # positions (columns) drawn in the sharing picture: the first rows of the grid


def norm_sharing(comparison: NormComparison) -> go.Figure:
    """Which elements share a mean: the stage output as a channels x positions grid, each cell colored by
    the mean it is normalized with. BatchNorm's means run along rows (one per channel), LayerNorm's
    down columns (one per position)."""
    from plotly.subplots import make_subplots

    channels, height, width = comparison.values.shape
    shown = min(NORM_POSITIONS_SHOWN, height * width)
    bn = np.repeat(comparison.bn_mean[:, None], shown, axis=1)
    ln = np.repeat(comparison.ln_mean.reshape(1, -1)[:, :shown], channels, axis=0)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=(
        f"BatchNorm: {channels} means, one per channel (row)",
        f"LayerNorm: {height * width} means, one per position (column)"))
    for col, grid in ((1, bn), (2, ln)):  # each on its own scale: the pattern matters, not the range
        fig.add_heatmap(z=grid, row=1, col=col, colorscale="Viridis", showscale=False,
                        hovertemplate="channel %{y}, position %{x}: mean %{z:.3f}<extra></extra>")
    fig.update_xaxes(title_text=f"position (first {shown} of {height}x{width}, row by row)")
    fig.update_yaxes(title_text="channel", autorange="reversed")
    fig.update_layout(height=380, margin=dict(b=10),
                      **titled("Which elements share a mean and a variance (color: that mean, each panel on its "
                                   "own scale)", above_plot=24))
    return fig


HISTOGRAM_VALUES = 20_000  # values drawn per histogram (a fixed random subset of bigger tensors)


def norm_histograms(comparison: NormComparison) -> go.Figure:
    """The stage output's values before normalization, after BatchNorm's and after LayerNorm's."""
    rng = np.random.default_rng(0)
    fig = go.Figure()
    for name, values, color in (("before", comparison.values, "#7f7f7f"), ("after BatchNorm (per channel)",
                                comparison.after_bn, "#1f77b4"), ("after LayerNorm (per position)",
                                comparison.after_ln, "#ff7f0e")):
        flat = values.ravel()
        if flat.size > HISTOGRAM_VALUES:
            flat = rng.choice(flat, HISTOGRAM_VALUES, replace=False)
        fig.add_histogram(x=flat, name=name, opacity=0.55, marker_color=color, nbinsx=80)
    fig.update_layout(barmode="overlay", height=360, xaxis_title="value", yaxis_title="elements",
                      **titled("Values before and after each norm (no scale and shift)"),
                      legend=dict(orientation="h", y=-0.2), margin=dict(b=10))
    return fig


# --- feature collapse -----------------------------------------------------------------------------

COLLAPSE_COLORS = {"ConvNeXt": FAMILY_COLORS["ConvNeXt"], "ConvNeXt V2": "#d62728"}


def collapse_chart(profiles: list[CollapseProfile], families: list[str]) -> go.Figure:
    """The mean pairwise cosine distance between MLP channels, block by block, one line per model;
    dotted lines where a stage ends."""
    fig = go.Figure()
    for profile, family in zip(profiles, families):
        fig.add_scatter(
            name=f"{profile.label} ({profile.weights})", x=list(range(1, len(profile.blocks) + 1)),
            y=list(profile.distances), text=list(profile.blocks), mode="lines+markers",
            line=dict(color=COLLAPSE_COLORS.get(family, "#333333"), dash="dot" if profile.random else "solid"),
            hovertemplate="block %{x} (%{text}): %{y:.4f}<extra>%{fullData.name}</extra>")
    first = profiles[0]
    for index in range(1, len(first.stages)):
        if first.stages[index] != first.stages[index - 1]:
            fig.add_vline(x=index + 0.5, line=dict(color="#bbb", dash="dot"))
    weights = "random weights: no trained effect to see" if any(p.random for p in profiles) else "trained weights"
    fig.update_layout(**titled(f"Feature collapse, block by block ({weights})"), height=420,
                      xaxis_title="block (dotted lines: stage boundaries)",
                      yaxis_title="mean pairwise cosine distance of MLP channels",
                      legend=dict(orientation="h", y=-0.25), margin=dict(b=10))
    return fig


# --- can you trust the map? -------------------------------------------------------------------------

SIMILARITY_COLORS = {"Spearman (|map|)": "#1f77b4", "SSIM": "#ff7f0e"}
ORDER_COLORS = {"map": "#d62728", "random": "#7f7f7f", "edge": "#2ca02c"}


def similarity_chart(result: CascadeResult) -> go.Figure:
    """Spearman and SSIM of each cascade level's map with the original, level by level."""
    names = [level.name for level in result.levels]
    fig = go.Figure()
    for series, values in (("Spearman (|map|)", [level.spearman for level in result.levels]),
                           ("SSIM", [level.ssim for level in result.levels])):
        fig.add_scatter(name=series, x=names, y=values, mode="lines+markers", line=dict(color=SIMILARITY_COLORS[series]),
                        hovertemplate="%{x}: %{y:.3f}<extra>" + series + "</extra>")
    fig.add_hline(y=0, line=dict(color="#999999", dash="dot"))
    fig.update_layout(**titled("Similarity with the original map as layers are re-initialized"),
                      height=340, yaxis=dict(range=[-1.05, 1.05], title="similarity"),
                      xaxis_title="re-initialized, from the top down (each level keeps the ones before)",
                      legend=dict(orientation="h", y=-0.3), margin=dict(b=10))
    return fig


def deletion_insertion_chart(result: FaithfulnessResult) -> go.Figure:
    """The target's probability as pixels are deleted (left) and inserted (right), for the map's order
    and the two baselines."""
    from plotly.subplots import make_subplots

    from explorer.sanity import ORDERS

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=("Deletion: the lower the area, the better",
                                        "Insertion: the higher the area, the better"))
    x = np.linspace(0, 1, result.steps + 1)
    for key, curves in result.curves.items():
        for col, (kind, values, auc) in enumerate((("deletion", curves.deletion, curves.deletion_auc),
                                                   ("insertion", curves.insertion, curves.insertion_auc)), start=1):
            fig.add_scatter(x=x, y=values, name=ORDERS[key], legendgroup=key, showlegend=col == 1, mode="lines",
                            line=dict(color=ORDER_COLORS[key], width=3 if key == "map" else 1.5),
                            hovertemplate=f"{ORDERS[key]}, {kind}: %{{x:.0%}} of the pixels, p = %{{y:.3f}} "
                                          f"(area {auc:.3f})<extra></extra>", row=1, col=col)
    fig.update_xaxes(title_text="pixels deleted (highest ranked first)", tickformat=".0%", row=1, col=1)
    fig.update_xaxes(title_text="pixels revealed (highest ranked first)", tickformat=".0%", row=1, col=2)
    fig.update_yaxes(title_text=f"p('{result.result.label}')", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_layout(height=380, legend=dict(orientation="h", y=-0.3), margin=dict(t=50, b=10))
    return fig
