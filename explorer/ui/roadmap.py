"""Roadmap tab: step from ResNet to ConvNeXt one design decision at a time (the paper's Figure 2)."""
from __future__ import annotations

import gradio as gr

from explorer.analysis import default_block, summarize, trace_block
from explorer.plots import block_diagram, roadmap_chart
from explorer.report import html_table
from explorer.roadmap import get_step, roadmap_table, step_name, steps
from explorer.ui.links import Linked
from explorer.zoo import build_model, get_spec

INPUT_SIZE = 224
REGIME_CHOICES = [("ResNet-50 -> ConvNeXt-T (Figure 2)", "resnet50"),
                  ("ResNet-200 -> ConvNeXt-B (appendix)", "resnet200")]


def _text(regime: str, number: int) -> str:
    all_steps = steps(regime)
    step = all_steps[number - 1]
    counted = summarize(step_name(step.id, regime), INPUT_SIZE)
    figures = f"Counted: **{counted.gflops:.3f} GFLOPs**, {counted.params / 1e6:.2f} M parameters."
    if step.paper_gflops is not None:
        figures += f" Paper: {step.paper_gflops:.2f} GFLOPs, {step.paper_top1:.2f}% top-1 on ImageNet-1K."
    base = f" Changed from *{get_step(step.base, regime).title}*." if step.base else ""
    note = f"\n\n> **Why the paper's GFLOPs differ:** {step.note}" if step.note else ""
    return (f"### Step {number} / {len(all_steps)}: {step.title}\n*{step.section}*{base}\n\n"
            f"**What changed.** {step.change}\n\n**Why.** {step.why}\n\n{figures}{note}")


def show_step(regime: str, number: int):
    """Text, block drawing, highlighted stage table and the Figure 2 chart for step `number` (from 1)."""
    number = int(number)
    step = steps(regime)[number - 1]
    name = step_name(step.id, regime)
    model = build_model(name, INPUT_SIZE, device="meta")
    block = default_block(model, get_spec(name).layout)
    layers = trace_block(model, block, INPUT_SIZE)
    previous = summarize(step_name(step.base, regime), INPUT_SIZE) if step.base else None
    table = html_table(summarize(name, INPUT_SIZE), previous)
    rows = roadmap_table(regime)
    chart = roadmap_chart(rows[:-1], step.id, rows[-1])
    return _text(regime, number), block_diagram(layers, f"One block ({block}), 224x224 input"), table, chart


def pick_regime(regime: str):
    """A new regime starts again at its first step."""
    return gr.update(value=1, maximum=len(steps(regime))), *show_step(regime, 1)


def build_roadmap_tab() -> Linked:
    """The tab; its step slider (controls["step"]) also lets lessons open it at a step."""
    count = len(steps("resnet50"))
    with gr.Tab("Roadmap", id="roadmap"):
        gr.Markdown("Each step changes one design decision of the step before it. The highlighted cells "
                    "of the table are what that change did to the network.")
        regime = gr.Radio(REGIME_CHOICES, value="resnet50", label="Regime", elem_id="roadmap-regime")
        with gr.Row():
            back = gr.Button("< Previous", elem_id="roadmap-prev", scale=1)
            position = gr.Slider(1, count, value=1, step=1, label="Step", elem_id="roadmap-step", scale=6)
            forward = gr.Button("Next >", elem_id="roadmap-next", scale=1)
        text = gr.Markdown(elem_id="roadmap-text")
        with gr.Row():
            diagram = gr.Plot(show_label=False, elem_id="roadmap-block")
            table = gr.HTML(elem_id="roadmap-table")
        chart = gr.Plot(show_label=False, elem_id="roadmap-chart")

    outputs = [text, diagram, table, chart]
    # Stepping is instant (no queue); drawing keeps only the latest request, so fast clicks never pile up.
    back.click(lambda n: max(int(n) - 1, 1), position, position, queue=False)
    forward.click(lambda r, n: min(int(n) + 1, len(steps(r))), [regime, position], position, queue=False)
    position.change(show_step, [regime, position], outputs, trigger_mode="always_last")
    regime.input(pick_regime, regime, [position, *outputs])  # a link sets regime and step: no reset then
    return Linked({"regime": regime, "step": position},
                  lambda opened: opened.then(show_step, [regime, position], outputs))
