"""Receptive field tab: effective receptive fields (RepLKNet's procedure) side by side, with their
radial profiles and area ratios, for the kernel sweep, the three families, the stages of one model,
or random against trained weights. A thin layer over `explorer.erf`, `explorer.plots` and
`explorer.report`."""
from __future__ import annotations

import gradio as gr

from explorer.erf import (BRANCHES_ON, COMPARISONS, DEFAULT_IMAGES, DEFAULT_SEEDS, EXAMPLES, MAX_SEEDS, NOISE, RANDOM,
                          TRAINED, Comparison, compare, comparison, growth)
from explorer.plots import erf_grid, erf_profiles
from explorer.report import erf_table
from explorer.ui.common import MODEL_EVENTS, friendly, model_choices
from explorer.weights import BUNDLED
from explorer.zoo import ExplorerError

UPLOAD, FILE = "upload", "file"
NOISE_SHOWN_MAX = 32  # the slider's end: each noise image is one forward and backward pass per model and seed
INTRO = """How far into the image does one output of a stage look? Its **effective receptive field** (ERF,
Luo et al. 2016) is the gradient of that output, at the centre of the stage's grid, with respect to the
input pixels, averaged over images; [RepLKNet](https://arxiv.org/abs/2203.06717) made it the standard
picture for large kernels. Each panel is drawn on one shared log scale, relative to its own peak (bright:
the peak, dark: 10^-4 of it); the dotted square, centred on the image, holds half of the total. The table
gives RepLKNet's **area ratio**: the smallest centred square holding more than t of log10(1 + map), as a
share of the image. Two things of the procedure show in the pictures: on an even grid (the bundled model's
10x10 at 320 px) the "central" output (h // 2, w // 2) is the one below and right of the centre; and strided
convs that read the top-left pixel of each 2x2 (ResNet's shortcuts, the roadmap before its last step)
move the field up and to the left. Both shift the field off the centred squares, so the ratio grows.

Random weights show the architecture's prior, but two init conventions hide most of it: timm's ConvNeXt
starts every block's layer scale at 1e-6, and timm's ResNet starts the last BatchNorm of each block at 0,
so at init their residual branches are nearly off and the ERF is that of the stem and the downsampling
layers alone. *Random init, residual branches on* sets those to 1. The roadmap's own blocks have neither
convention. With random weights the kernel sweep shows the prior of each kernel size, not what training
makes of it."""
WEIGHT_CHOICES = [("random init (averaged over seeds)", RANDOM),
                  ("random init, residual branches on (layer scale and zero-init norms at 1)", BRANCHES_ON),
                  ("trained: the bundled model's own; the paper's where they can be had", TRAINED),
                  ("a checkpoint file", FILE)]
IMAGE_CHOICES = [("noise images", NOISE), ("the bundled examples (8 shapes)", EXAMPLES), ("my images", UPLOAD)]
STAGE_CHOICES = [("last", "last")] + [(f"stage {index + 1}", str(index)) for index in range(4)]


def chosen(kind: str, models: list[str] | None, weights: str, checkpoint: str | None, images: str,
           uploads: list[str] | None, count: int, seeds: int, stage: str) -> Comparison:
    """The comparison the controls describe."""
    if weights == FILE:
        if not checkpoint:
            raise ExplorerError("Upload a checkpoint file (.safetensors, .pth or .bin) first.")
        weights = checkpoint
    if images == UPLOAD:
        if not uploads:
            raise ExplorerError("Upload some images first, or pick the examples or noise.")
        images = tuple(uploads)
    return comparison(kind, models or (), weights, images, int(count), int(seeds),
                      None if stage == "last" else int(stage))


@friendly
def show_erf(kind: str, models: list[str] | None, weights: str, checkpoint: str | None, images: str,
             uploads: list[str] | None, count: int, seeds: int, stage: str, progress=gr.Progress()):
    wanted = chosen(kind, models, weights, checkpoint, images, uploads, count, seeds, stage)
    results = compare(wanted, lambda fraction, what: progress(fraction, desc=what))
    seconds = sum(result.seconds for result in results)
    info = (f"**{wanted.title}**: {len(results)} maps, {seconds:.1f} s of computing (maps already on disk "
            f"count their first computation). {growth(results)}")
    if results[0].skipped:
        info += f" {results[0].skipped} of the files could not be read as images and were skipped."
    return (erf_grid(results, wanted.title), erf_profiles(results, "How the contribution falls off from the centre"),
            erf_table(results), info)


def build_erf_tab() -> None:
    with gr.Tab("Receptive field", id="erf"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1):
                kind = gr.Radio([(label, key) for key, label in COMPARISONS.items()], value="kernel_sweep",
                                label="Compare", elem_id="erf-kind")
                models = gr.Dropdown(model_choices(), value=[BUNDLED], multiselect=True, elem_id="erf-models",
                                     label="Models (stage by stage, random against trained, the models I pick)")
                stage = gr.Radio(STAGE_CHOICES, value="last", label="Stage (before pooling)", elem_id="erf-stage")
            with gr.Column(scale=1):
                weights = gr.Radio(WEIGHT_CHOICES, value=RANDOM, label="Weights", elem_id="erf-weights")
                checkpoint = gr.File(label="Checkpoint file", file_types=[".safetensors", ".pth", ".pt", ".bin"],
                                     type="filepath", visible=False, elem_id="erf-checkpoint")
                images = gr.Radio(IMAGE_CHOICES, value=NOISE, label="Images", elem_id="erf-images")
                uploads = gr.File(label="Images", file_count="multiple", type="filepath", visible=False,
                                  elem_id="erf-uploads")
                with gr.Row():
                    count = gr.Slider(1, NOISE_SHOWN_MAX, value=DEFAULT_IMAGES, step=1, label="Noise images",
                                      elem_id="erf-count")
                    seeds = gr.Slider(1, MAX_SEEDS, value=DEFAULT_SEEDS, step=1, label="Seeds (random init)",
                                      elem_id="erf-seeds")
        run = gr.Button("Compute the receptive fields", variant="primary", elem_id="erf-run")
        info = gr.Markdown(elem_id="erf-info")
        grid = gr.Plot(show_label=False, elem_id="erf-grid")
        with gr.Row():
            profile = gr.Plot(show_label=False, elem_id="erf-profile")
        table = gr.Markdown(elem_id="erf-table")
    weights.change(lambda choice: gr.update(visible=choice == FILE), weights, checkpoint)
    images.change(lambda choice: gr.update(visible=choice == UPLOAD), images, uploads)
    run.click(show_erf, [kind, models, weights, checkpoint, images, uploads, count, seeds, stage],
              [grid, profile, table, info], **MODEL_EVENTS)
