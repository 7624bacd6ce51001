"""The normalization lab, a section of the Blocks tab: BatchNorm against LayerNorm on a real stage output,
the official channels_first LayerNorm against nn.LayerNorm, and why BN -> LN moves no FLOPs."""
from __future__ import annotations

import gradio as gr

from explorer.erf import EXAMPLES_DIR
from explorer.inference import open_image
from explorer.normalization import bn_to_ln_counts, compare_norms
from explorer.plots import norm_histograms, norm_sharing
from explorer.report import bn_to_ln_text, norm_summary
from explorer.ui.common import MODEL_EVENTS, friendly, model_choices
from explorer.ui.image_file import ImageFile
from explorer.weights import BUNDLED, load

INTRO = """### Normalization lab: BatchNorm or LayerNorm?
ConvNeXt replaces BatchNorm with LayerNorm (the paper's "BN -> LN" step). On a real stage output of a
model for an image: which elements each norm averages together, what each does to the values, and
whether the official code's own "channels_first" LayerNorm is the same as `nn.LayerNorm` after a
permute (the question of issues #19, #101, #112 and #136 of the official repository)."""
EXAMPLE_FILES = sorted(path.name for path in EXAMPLES_DIR.iterdir())
STAGES = [(f"stage {index + 1}", index) for index in range(4)]


@friendly
def show_norms(name: str, example: str, upload: str | None, stage: int, progress=gr.Progress()):
    progress(0, desc="Running the image through the model")
    image = open_image(upload) if upload else open_image(EXAMPLES_DIR / example)
    comparison = compare_norms(load(name), image, int(stage))
    return norm_summary(comparison), norm_sharing(comparison), norm_histograms(comparison)


@friendly
def show_bn_to_ln(progress=gr.Progress()):
    progress(0, desc="Counting the networks before and after BN -> LN with every tool")
    return bn_to_ln_text(*bn_to_ln_counts())


def build_normalization_section() -> None:
    gr.Markdown(INTRO)
    with gr.Row():
        model = gr.Dropdown(model_choices(), value=BUNDLED, label="Model (the bundled one has trained weights; "
                            "others random)", elem_id="norm-model", scale=2)
        stage = gr.Radio(STAGES, value=0, label="Stage output", elem_id="norm-stage", scale=2)
        example = gr.Dropdown(EXAMPLE_FILES, value=EXAMPLE_FILES[0], label="Example image", elem_id="norm-example",
                              scale=1)
        upload = ImageFile(label="... or your own image", sources=["upload"], height=140, elem_id="norm-upload",
                           scale=1)
    run = gr.Button("Compare BatchNorm and LayerNorm", variant="primary", elem_id="norm-run")
    summary = gr.Markdown(elem_id="norm-summary")
    sharing = gr.Plot(show_label=False, elem_id="norm-sharing")
    histograms = gr.Plot(show_label=False, elem_id="norm-histograms")
    flops = gr.Button("Why BN -> LN moves no FLOPs: count both networks (about a minute on a CPU)",
                      elem_id="norm-flops-run")
    flops_text = gr.Markdown(elem_id="norm-flops")
    run.click(show_norms, [model, example, upload, stage], [summary, sharing, histograms],
              **MODEL_EVENTS)
    flops.click(show_bn_to_ln, None, flops_text, **MODEL_EVENTS)
