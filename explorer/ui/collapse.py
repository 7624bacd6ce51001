"""Feature collapse tab: ConvNeXt against ConvNeXt V2, block by block, with the V2 paper's measure
(`explorer.collapse`), for an image a person chooses."""
from __future__ import annotations

import gradio as gr

from explorer.collapse import PAIRS, collapse_profile, reading
from explorer.plots import collapse_chart
from explorer.ui.common import MODEL_EVENTS, friendly, uploaded_image
from explorer.ui.predict import Opening
from explorer.weights import load, paper_or_random, pretrained_cached
from explorer.zoo import get_spec

INTRO = """ConvNeXt V2 (Woo et al. 2023) adds **Global Response Normalization** (GRN) to the ConvNeXt block,
between its two pointwise layers, because its authors saw **feature collapse** in ConvNeXt's MLPs: many
channels of the wide hidden layer dead, saturated or copies of each other. Their measure, drawn here for
every block: the mean pairwise cosine distance between the channels of that hidden layer, after pwconv1
and the GELU (0: all channels alike; about 0.5: unrelated). The models use the paper's weights when they
can be reached (ConvNeXt's supervised ImageNet-1K weights, V2's FCMAE pre-trained and ImageNet-1K
fine-tuned ones) and **random weights** otherwise, which the chart and the text say; random weights cannot
show the effect, which comes from training."""
SIZES = [(f"{get_spec(v1).label} vs {get_spec(v2).label}", size) for size, (v1, v2) in PAIRS.items()]
RANDOM, PAPER = "random", "paper"
WEIGHTS = [("the papers' weights where they can be reached, else random", PAPER),
           ("random init (shows the measure, not the effect)", RANDOM)]


@friendly
def show_collapse(size: str, weights: str, image: str | None, progress=gr.Progress()):
    picture = uploaded_image(image)
    profiles, families = [], []
    for done, name in enumerate(PAIRS[size]):
        progress(done / 2, desc=f"{get_spec(name).label}: loading and measuring")
        loaded = paper_or_random(name)[0] if weights == PAPER else load(name)
        profiles.append(collapse_profile(loaded, picture))
        families.append(get_spec(name).family)
    return reading(profiles), collapse_chart(profiles, families)


def build_collapse_tab(start: Opening) -> None:
    with gr.Tab("Feature collapse", id="collapse"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1):
                image = gr.Image(type="filepath", label="Image", value=start.examples[0] if start.examples else None,
                                 height=260, elem_id="collapse-image")
                gr.Examples(list(start.examples), image)
            with gr.Column(scale=1):
                size = gr.Radio(SIZES, value="T", label="Models", elem_id="collapse-size")
                cached = all(pretrained_cached(name) for name in PAIRS["T"])  # offline, start on random init
                weights = gr.Radio(WEIGHTS, value=PAPER if cached else RANDOM, label="Weights",
                                   elem_id="collapse-weights")
                run = gr.Button("Measure every block", variant="primary", elem_id="collapse-run")
        text = gr.Markdown(elem_id="collapse-reading")
        chart = gr.Plot(show_label=False, elem_id="collapse-chart")
    run.click(show_collapse, [size, weights, image], [text, chart], **MODEL_EVENTS)
