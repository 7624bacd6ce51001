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
