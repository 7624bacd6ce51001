"""Counting tab: why FLOP counters disagree. Every counter's total for one model, split by operator kind,
beside the paper's figure, with a sentence per tool on what it counts. A thin layer over
`explorer.counting`, `explorer.plots` and `explorer.report`."""
from __future__ import annotations

import gradio as gr

from explorer.counting import MAX_CPU_GFLOPS, count
from explorer.plots import counting_chart
from explorer.report import counting_notes, counting_table
from explorer.ui.architecture import INPUT_SIZES
from explorer.ui.common import MODEL_EVENTS, friendly, model_choices, parse_input_size

DEFAULT_MODEL = "convnext_tiny"
INTRO = f"""Ask five FLOP counters about one network and you get five answers. Each is run here for real on
the model (random weights; the count does not depend on them) and reported as the tool reports it, in
billions of multiply-accumulates as that tool counts them, split by the kind of operator each of its
rules was for. The paper's "FLOPs" are the first row's: multiply-accumulates of convolutions, linear
layers and matmuls only. The tools differ in four ways: whether they count norms, activations and
pooling; whether biases count; whether a Linear on a (N, H, W, C) tensor counts once per position or
once per image; and which operators they see at all (a fused attention kernel, a matmul written as
`a @ b`). Five of the counters need a real forward pass on the CPU, so counting stops at
{MAX_CPU_GFLOPS:.0f} GFLOPs (ConvNeXt-B at 224 is 15.4; a 224 px model takes 10-30 s here)."""


@friendly
def show_counts(name: str, size, progress=gr.Progress()):
    progress(0, desc="Running six FLOP counters on the model")
    counting = count(name, parse_input_size(size))
    paper = f"the paper prints **{counting.paper}** GFLOPs" if counting.paper is not None else \
        "the paper prints no figure for this model at this size"
    headline = (f"**{counting.label}** at {counting.input_size}x{counting.input_size}, batch 1: {paper}; by its "
                f"convention the count is **{counting.count('flop_counter').total:.4g}**.")
    return headline, counting_table(counting), counting_chart(counting), counting_notes(counting)


def build_counting_tab() -> None:
    with gr.Tab("Counting", id="counting"):
        gr.Markdown(INTRO)
        with gr.Row():
            model = gr.Dropdown(model_choices(), value=DEFAULT_MODEL, label="Model", elem_id="count-model", scale=3)
            size = gr.Dropdown(INPUT_SIZES, value=224, label="Input size", allow_custom_value=True,
                               elem_id="count-size", scale=1)
            run = gr.Button("Count with every tool", variant="primary", elem_id="count-run", scale=1)
        headline = gr.Markdown(elem_id="count-headline")
        table = gr.Markdown(elem_id="count-table")
        chart = gr.Plot(show_label=False, elem_id="count-chart")
        notes = gr.Markdown(elem_id="count-notes")
    run.click(show_counts, [model, size], [headline, table, chart, notes], **MODEL_EVENTS)
