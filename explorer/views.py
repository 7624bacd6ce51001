"""Views of the app that show counted figures: for each, one function that gives what the tab lays
out (text, tables, figures), from counts kept by `explorer.figure_cache`. The lessons' panels are in
`explorer.lesson_panels`.

The models never change, so neither do these views: each is drawn once per process and kept
(`VIEWS_KEPT` of each), which makes a click that comes back to a view cost only its transfer. The
figures are shared between callers: do not modify them.
"""
from __future__ import annotations

from functools import lru_cache

import plotly.graph_objects as go

from explorer.analysis import summarize, typical_block
from explorer.compare import STAGES, compare
from explorer.layouts import reading, trio
from explorer.plots import block_diagram, compute_layout_chart, roadmap_chart, stage_bars
from explorer.report import blocks_html, html_table, paper_comparison, printed_beside_counted, table_rows
from explorer.roadmap import get_step, roadmap_table, step_name, steps

VIEWS_KEPT = 64  # of each view: both regimes' 18 steps, every lesson choice; a figure is tens of KB


@lru_cache(maxsize=VIEWS_KEPT)
def architecture(name: str, size: int, compare: str = "") -> tuple[str, list[list], go.Figure, go.Figure]:
    """The Architecture tab: headline, stage table and the per-stage parameters and GFLOPs of `name`
    at `size`, with a second model `compare` overlaid ("" for none)."""
    summary = summarize(name, size)
    summaries = [summary] + ([summarize(compare, size)] if compare else [])
    headline = "\n\n".join(f"**{s.label}** at {s.input_size}x{s.input_size}: {paper_comparison(s)}" for s in summaries)
    return headline, table_rows(summary), stage_bars(summaries, "params"), stage_bars(summaries, "gflops")


def step_text(regime: str, number: int) -> str:
    """Step `number` (from 1) of a regime: what changed, why, and its counted figures beside the paper's."""
    all_steps = steps(regime)
    step = all_steps[number - 1]
    counted = summarize(step_name(step.id, regime))
    figures = f"Counted: **{counted.gflops:.3f} GFLOPs**, {counted.params / 1e6:.2f} M parameters."
    if step.paper_gflops is not None:
        figures += f" Paper: {step.paper_gflops:.2f} GFLOPs, {step.paper_top1:.2f}% top-1 on ImageNet-1K."
    base = f" Changed from *{get_step(step.base, regime).title}*." if step.base else ""
    note = f"\n\n> **Why the paper's GFLOPs differ:** {step.note}" if step.note else ""
    return (f"### Step {number} / {len(all_steps)}: {step.title}\n*{step.section}*{base}\n\n"
            f"**What changed.** {step.change}\n\n**Why.** {step.why}\n\n{figures}{note}")


@lru_cache(maxsize=VIEWS_KEPT)
def roadmap_step(regime: str, number: int) -> tuple[str, go.Figure, str, go.Figure]:
    """The Roadmap tab at step `number` (from 1): text, one block drawn, the stage table with what
    changed highlighted, and the Figure 2 chart."""
    step = steps(regime)[number - 1]
    name = step_name(step.id, regime)
    block = typical_block(name)
    previous = summarize(step_name(step.base, regime)) if step.base else None
    rows = roadmap_table(regime)
    return (step_text(regime, number),
            block_diagram(list(block.layers), f"One block ({block.block}), {block.input_size}x{block.input_size} input"),
            html_table(summarize(name), previous), roadmap_chart(rows[:-1], step.id, rows[-1]))


@lru_cache(maxsize=VIEWS_KEPT)
def isotropic(size: str) -> tuple[str, go.Figure]:
    """ViT, the isotropic ConvNeXt and the hierarchical ConvNeXt of one size: where each puts its compute."""
    summaries = trio(size)
    return f"{reading(summaries)}\n\n{printed_beside_counted(summaries)}", compute_layout_chart(summaries)


@lru_cache(maxsize=VIEWS_KEPT)
def blocks_at(stage: int) -> tuple:
    """The Blocks tab at stage `stage` (1-4): the comparison table, then one drawing per design."""
    reports = compare(*STAGES[stage])
    return blocks_html(reports), *(block_diagram(list(r.layers), r.title) for r in reports)
