"""Roadmap tab: step from ResNet to ConvNeXt one design decision at a time (the paper's Figure 2)."""
from __future__ import annotations

import json

import gradio as gr

from explorer.roadmap import steps
from explorer.ui.links import Linked
from explorer.views import roadmap_step

REGIME_CHOICES = [("ResNet-50 -> ConvNeXt-T (Figure 2)", "resnet50"),
                  ("ResNet-200 -> ConvNeXt-B (appendix)", "resnet200")]
BESIDE_WIDTH = 340  # px: the least the block drawing and the table each need


def show_step(regime: str, number: int):
    """Text, block drawing, highlighted stage table and the Figure 2 chart for step `number` (from 1)."""
    return roadmap_step(regime, int(number))


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
        with gr.Row():  # side by side on a laptop, one above the other on a phone
            diagram = gr.Plot(show_label=False, elem_id="roadmap-block", min_width=BESIDE_WIDTH)
            table = gr.HTML(elem_id="roadmap-table", min_width=BESIDE_WIDTH)
        chart = gr.Plot(show_label=False, elem_id="roadmap-chart")

    outputs = [text, diagram, table, chart]
    # Stepping runs in the browser, so each click counts from the step the last click set (a round trip
    # to the server read the old step when clicks came faster than answers); drawing keeps only the
    # latest request, so fast clicks never pile up.
    last = json.dumps({name: len(steps(name)) for _, name in REGIME_CHOICES})
    back.click(None, position, position, js="(n) => Math.max(Number(n) - 1, 1)")
    forward.click(None, [regime, position], position, js=f"(r, n) => Math.min(Number(n) + 1, {last}[r])")
    position.change(show_step, [regime, position], outputs, trigger_mode="always_last")
    regime.input(pick_regime, regime, [position, *outputs])  # a link sets regime and step: no reset then
    return Linked({"regime": regime, "step": position},
                  lambda opened: opened.then(show_step, [regime, position], outputs))
