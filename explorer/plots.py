"""Plotly figures drawn from the data in `explorer.analysis` and `explorer.paper`."""
from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from explorer.analysis import Summary

TEMPLATE = "plotly_white"
LABEL_SIDES = {"ConvNeXt": "middle left", "Swin": "middle right"}  # the two families sit on top of each other
FAMILY_COLORS = {"ConvNeXt": "#1f77b4", "Swin": "#ff7f0e", "ResNet": "#7f7f7f", "ResNeXt": "#2ca02c",
                 "Roadmap": "#9467bd"}
METRICS = {"params": ("Parameters (M)", lambda row: row.params / 1e6),
           "gflops": ("GFLOPs (paper convention)", lambda row: row.gflops)}


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
    fig.update_layout(template=TEMPLATE, title=f"{title} per stage", barmode="group", height=340,
                      yaxis_title=title, legend=dict(orientation="h", y=-0.2), margin=dict(t=50, b=10))
    return fig


@dataclass(frozen=True)
class FamilyPoint:
    """One model of the family chart: counted figures and, where printed, the paper's."""

    family: str
    name: str  # the paper's name with its input size, e.g. "ConvNeXt-B @384"
    params_m: float
    gflops: float
    paper_gflops: float | None


def family_chart(points: list[FamilyPoint]) -> go.Figure:
    """Parameters against GFLOPs for whole families: counted markers, the paper's figures beside them."""
    fig = go.Figure()
    for family in dict.fromkeys(p.family for p in points):
        members = [p for p in points if p.family == family]
        color = FAMILY_COLORS.get(family, "#333333")
        fig.add_scatter(
            name=f"{family} (counted)", mode="markers+text", x=[p.params_m for p in members],
            y=[p.gflops for p in members], text=[p.name for p in members], textposition=LABEL_SIDES.get(family, "top center"),
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
    fig.update_layout(template=TEMPLATE, title="The families: parameters against GFLOPs", height=520,
                      xaxis_title="Parameters (M)", yaxis_title="GFLOPs (paper convention)",
                      xaxis=dict(type="log", tickvals=[25, 50, 100, 200, 400]),
                      yaxis=dict(type="log", tickvals=[2, 4, 8, 15, 30, 60, 100, 180]),
                      margin=dict(t=50, b=10))
    return fig


KIND_COLORS = {"conv": "#aec7e8", "linear": "#ffbb78", "norm": "#98df8a", "act": "#ff9896",
               "attention": "#c5b0d5", "other": "#dddddd"}


def block_diagram(layers: list, title: str) -> go.Figure:
    """One block drawn top to bottom: a box per layer with its output shape, the residual on the side."""
    fig = go.Figure()
    for i, layer in enumerate(layers):
        y = -i
        fig.add_shape(type="rect", x0=0, x1=1, y0=y - 0.38, y1=y + 0.38, line=dict(color="#555", width=1),
                      fillcolor=KIND_COLORS[layer.kind])
        fig.add_annotation(x=0.5, y=y, text=f"<b>{layer.name}</b>  {layer.detail}", showarrow=False)
        shape = " x ".join(str(d) for d in layer.output_shape)
        fig.add_annotation(x=1.05, y=y, text=shape, showarrow=False, xanchor="left", font=dict(color="#444"))
        if i:
            fig.add_annotation(x=0.5, y=y + 0.38, ax=0.5, ay=y + 0.62, xref="x", yref="y", axref="x", ayref="y",
                               showarrow=True, arrowhead=2, text="")
    bottom = -len(layers) + 1
    fig.add_shape(type="path", path=f"M -0.02 0.38 C -0.25 0.38, -0.25 {bottom - 0.38}, -0.02 {bottom - 0.38}",
                  line=dict(color="#888", dash="dot"))
    fig.add_annotation(x=-0.2, y=bottom / 2, text="residual", textangle=-90, showarrow=False,
                       font=dict(color="#888"))
    fig.update_layout(template=TEMPLATE, title=title, height=90 + 46 * len(layers), showlegend=False,
                      xaxis=dict(visible=False, range=[-0.3, 1.6]), yaxis=dict(visible=False, range=[bottom - 0.7, 0.7]),
                      margin=dict(t=40, b=0, l=0, r=0))
    return fig


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
    fig.update_yaxes(title_text="ImageNet-1K top-1 (%)", row=1, col=1)
    fig.update_yaxes(title_text="GFLOPs", row=2, col=1)
    fig.update_layout(template=TEMPLATE, height=560, title="Figure 2, live: each step's accuracy and cost",
                      legend=dict(orientation="h", y=1.08), margin=dict(t=80, b=10))
    return fig
