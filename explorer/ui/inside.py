"""Look inside tab: the depthwise filters, each stage's activations and attribution maps for an upload.

Five sections, each a thin layer over `explorer.inspect`, `explorer.attribution`, `explorer.sanity` and
`explorer.plots`: Filters (kernels of one block, the |weight|-vs-distance chart, the stem), Activations,
Attribution (one model, any method and class), Can you trust this map? (cascading randomization and
deletion/insertion for the chosen method) and Side by side (ResNet-50, Swin-T and ConvNeXt-T on one upload).
"""
from __future__ import annotations

import gradio as gr
import numpy as np
from PIL import Image

from explorer.attribution import (CAM_METHODS, METHOD_TITLES, SLOW_METHODS, AttributionResult, attribute, cam_layers,
                                  default_cam_layer, overlay)
from explorer.inspect import depthwise_blocks, depthwise_kernels, depthwise_models, distance_profiles, \
    stage_activations, stem_filters
from explorer.plots import activation_grid, deletion_insertion_chart, distance_chart, kernel_grid, \
    similarity_chart, stem_tiles
from explorer.report import faithfulness_table
from explorer.sanity import DEFAULT_STEPS, check_map
from explorer.ui.common import MODEL_EVENTS, friendly, model_choices, uploaded_image
from explorer.ui.image_source import caveat, image_source
from explorer.ui.predict import Opening, load_chosen, weights_inputs
from explorer.weights import LoadedModel, paper_or_random
from explorer.zoo import get_spec

STAGES_DRAWN = 4  # activation plots: every registry layout has four stages
SHOWN_SIDE = 384  # overlays smaller than this (the bundled model's 320 px) are enlarged to it for the page
SIDE_BY_SIDE = ("resnet50", "swin_tiny_patch4_window7_224", "convnext_tiny")  # the paper's three families
STEM_REFERENCE = "resnet50"  # whose 7x7 stem is shown next to the chosen model's

INTRO = """Look inside a network. **Filters** shows the kxk depthwise kernels a model learned (the
paper's 7x7 in ConvNeXt) and how much of each kernel is used; **Activations** shows what every stage
responds to in an image; **Attribution** shows where the model looks when it picks a class; **Side by
side** asks ResNet-50, Swin-T and ConvNeXt-T the same question. Random weights show structure only:
pick the paper's weights or the bundled model to see learned filters."""


# --- helpers ------------------------------------------------------------------------------------

def _stage_choices(blocks: dict[int, list[int]]) -> list[tuple[str, int]]:
    return [(f"stage {stage + 1}", stage) for stage in blocks]


def _block_choices(blocks: dict[int, list[int]], stage: int) -> list[tuple[str, int]]:
    return [(f"block {block + 1}", block) for block in blocks[stage]]


def _shown(result: AttributionResult) -> np.ndarray:
    """The overlay at the model's input size, enlarged (bicubic) for the page when it is small."""
    blended = overlay(result)
    scale = SHOWN_SIDE / max(blended.shape[:2])
    if scale <= 1:
        return blended
    size = (round(blended.shape[1] * scale), round(blended.shape[0] * scale))
    return np.asarray(Image.fromarray(blended).resize(size, Image.Resampling.BICUBIC))


def _described(loaded: LoadedModel) -> str:
    return f"**{get_spec(loaded.name).label}** with **{loaded.weights}**"


# --- handlers -----------------------------------------------------------------------------------

def filter_models():
    """Every model with depthwise convs (found once per architecture; seconds on the first call)."""
    return gr.update(choices=[(get_spec(name).label, name) for name in depthwise_models()])


@friendly
def show_filters(name: str, source: str, checkpoint: str | None, stage, block, sort: bool, compare: bool,
                 progress=gr.Progress()):
    progress(0.1, desc="Loading the model")
    loaded = load_chosen(name, source, checkpoint)
    blocks = depthwise_blocks(loaded)
    stage = stage if stage in blocks else max(blocks)
    block = block if block in blocks[stage] else blocks[stage][0]
    progress(0.5, desc="Reading the kernels")
    kernels = kernel_grid(depthwise_kernels(loaded, stage, block, sort_by_norm=bool(sort)))
    profile = distance_chart(distance_profiles(loaded), f"How much of the kernel {loaded.name} uses, per stage")
    stems = [stem_filters(loaded)] + ([stem_filters(paper_or_random(STEM_REFERENCE)[0])] if compare else [])
    return (gr.update(choices=_stage_choices(blocks), value=stage),
            gr.update(choices=_block_choices(blocks, stage), value=block),
            kernels, profile, stem_tiles(stems), f"{_described(loaded)}.")


@friendly
def show_activations(name: str, source: str, checkpoint: str | None, image: str | None, progress=gr.Progress()):
    picture = uploaded_image(image)
    progress(0.2, desc="Loading the model")
    loaded = load_chosen(name, source, checkpoint)
    progress(0.6, desc="Running the image through every stage")
    stages = stage_activations(loaded, picture)
    figures = [activation_grid(stage) for stage in stages][:STAGES_DRAWN]
    figures += [None] * (STAGES_DRAWN - len(figures))
    return (*figures, f"{_described(loaded)}: the {len(stages[0].channels)} most active channels "
                      f"(largest mean |activation|) of each stage.")


def layer_choices(name: str):
    """The stages Grad-CAM can read, the model's default first."""
    layers = cam_layers(name)
    default = default_cam_layer(name)
    return gr.update(choices=[(f"{layer} (default)" if layer == default else layer, layer) for layer in layers],
                     value=default)


def _caption(result: AttributionResult) -> str:
    where = f" at {result.layer}" if result.layer else ""
    return f"{METHOD_TITLES[result.method]}{where} for '{result.label}' ({result.seconds:.2f} s)"


@friendly
def explain(name: str, source: str, checkpoint: str | None, image: str | None, method: str, layer: str | None,
            target: str | None, progress=gr.Progress()):
    picture = uploaded_image(image)
    progress(0.1, desc="Loading the model")
    loaded = load_chosen(name, source, checkpoint)
    progress(0.3, desc=f"Computing {METHOD_TITLES.get(method, method)}")
    result = attribute(loaded, picture, method, layer if method in CAM_METHODS else None, target or None)
    scores = {f"{guess.label} ({guess.index})": guess.prob for guess in result.top}
    classes = [("top-1", "")] + [(f"{guess.label} ({guess.index})", str(guess.index)) for guess in result.top]
    value = target if any(target == value for _, value in classes) else ""
    info = f"{_described(loaded)}: {_caption(result)}.\n\n{caveat(loaded.name, picture)}"
    return _shown(result), scores, gr.update(choices=classes, value=value), info


def trust_note(method: str) -> str:
    """What the check will do for a method, with a warning before the slow ones."""
    note = (f"Computes {METHOD_TITLES.get(method, method)}'s map seven times (once per level of the cascade) "
            f"and runs the model {3 * 2 * (DEFAULT_STEPS + 1)} times for the curves (at {DEFAULT_STEPS} steps).")
    if method in SLOW_METHODS:
        note += (f" **{METHOD_TITLES[method]} runs the model many times for each map, so the seven maps can take "
                 f"minutes on a CPU** (seconds on the bundled model).")
    return note


@friendly
def check_trust(name: str, source: str, checkpoint: str | None, image: str | None, method: str, layer: str | None,
                target: str | None, steps: int, progress=gr.Progress()):
    picture = uploaded_image(image)
    progress(0.0, desc="Loading the model")
    loaded = load_chosen(name, source, checkpoint)
    checked = check_map(loaded, picture, method, layer if method in CAM_METHODS else None, target or None,
                        int(steps), progress=lambda fraction, what: progress(fraction, desc=what))
    maps = [(overlay(level.result), level.name) for level in checked.cascade.levels]  # the chart gives the numbers
    info = (f"{_described(loaded)}: {_caption(checked.cascade.original)}.\n\n**{checked.cascade.reading()}**\n\n"
            f"**{checked.faithfulness.reading()}**")
    return (maps, similarity_chart(checked.cascade), deletion_insertion_chart(checked.faithfulness),
            faithfulness_table(checked.faithfulness), info)


@friendly
def side_by_side(image: str | None, progress=gr.Progress()):
    picture = uploaded_image(image)
    gallery, lines = [], []
    for name in progress.tqdm(SIDE_BY_SIDE, desc="Grad-CAM in three families"):
        loaded, weights = paper_or_random(name)
        result = attribute(loaded, picture, "gradcam")
        gallery.append((_shown(result), f"{get_spec(name).label}: {_caption(result)}"))
        lines.append(f"- **{get_spec(name).label}** at {result.layer}: {weights}.")
    return gallery, "\n".join(lines)


# --- layout -------------------------------------------------------------------------------------

def _filters_section(tab: gr.Tab, start: Opening) -> None:
    gr.Markdown("### Filters\nThe depthwise kernels of one block (blue negative, red positive, one color "
                "scale for all), how their weight falls off away from the center, and the stem's filters.")
    with gr.Row():
        with gr.Column(scale=1):
            model, source, checkpoint = weights_inputs("inside-filter", start, [(get_spec(start.model).label, start.model)])
            stage = gr.Dropdown([], label="Stage", elem_id="inside-stage")
            block = gr.Dropdown([], label="Block", elem_id="inside-block")
            sort = gr.Checkbox(False, label="Strongest kernels first (L2 norm)")
            compare = gr.Checkbox(False, label="Show ResNet-50's 7x7 stem filters beside")
        with gr.Column(scale=3):
            info = gr.Markdown(elem_id="inside-filter-info")
            kernels = gr.Plot(show_label=False, elem_id="inside-kernels")
            profile = gr.Plot(show_label=False, elem_id="inside-profile")
    stem = gr.Plot(show_label=False, elem_id="inside-stem")
    inputs = [model, source, checkpoint, stage, block, sort, compare]
    gr.on([tab.select, model.input, source.input, checkpoint.upload, stage.input, block.input, sort.input,
           compare.input], show_filters, inputs, [stage, block, kernels, profile, stem, info], **MODEL_EVENTS)
    tab.select(filter_models, None, model)


def _image_sections(start: Opening) -> tuple[gr.Dropdown, gr.Dropdown]:
    gr.Markdown("### Your image\nOne model and one image for the activations and the attribution below.")
    with gr.Row():
        with gr.Column(scale=1):
            model, source, checkpoint = weights_inputs("inside", start, model_choices())
        with gr.Column(scale=1):
            picture = image_source("inside", start.examples)
    image = picture.image
    loaded_inputs = [model, source, checkpoint]

    gr.Markdown("### Activations\nEach stage's output for the image: its shape, and its most active channels.")
    activations_button = gr.Button("Show activations", elem_id="inside-activations-run")
    activations_info = gr.Markdown()
    with gr.Row():
        stage_plots = [gr.Plot(show_label=False) for _ in range(2)]
    with gr.Row():
        stage_plots += [gr.Plot(show_label=False) for _ in range(STAGES_DRAWN - 2)]
    picture.on([activations_button.click], show_activations, [*loaded_inputs, image],
               [*stage_plots, activations_info], **MODEL_EVENTS)

    gr.Markdown("### Attribution\nWhere the model looks for a class: Grad-CAM and the other CAM methods read a "
                "stage, Integrated Gradients, Occlusion and Saliency work on the pixels (slower: Integrated "
                "Gradients, Occlusion and Score-CAM run the model many times).")
    with gr.Row():
        with gr.Column(scale=1):
            method = gr.Radio([(title, key) for key, title in METHOD_TITLES.items()], value="gradcam",
                              label="Method", elem_id="inside-method")
            layer = gr.Dropdown(label="Layer (Grad-CAM and the other CAM methods)", elem_id="inside-layer")
            target = gr.Dropdown([("top-1", "")], value="", label="Class to explain", elem_id="inside-target")
            explain_button = gr.Button("Explain", variant="primary", elem_id="inside-explain")
            scores = gr.Label(num_top_classes=5, label="Top 5", elem_id="inside-scores")
        with gr.Column(scale=2):
            blended = gr.Image(label="Attribution over the image", interactive=False, elem_id="inside-overlay")
            explain_info = gr.Markdown(elem_id="inside-explain-info")
    model.change(layer_choices, model, layer)
    picture.on([explain_button.click, target.input], explain,
               [*loaded_inputs, image, method, layer, target], [blended, scores, target, explain_info], **MODEL_EVENTS)
    _trust_section(picture, [*loaded_inputs, image, method, layer, target], method)

    gr.Markdown("### Side by side\nThe same image through ResNet-50, Swin-T and ConvNeXt-T, Grad-CAM at each "
                "one's last stage, with the paper's weights where they can be reached.")
    compare_button = gr.Button("Compare the three families", elem_id="inside-compare")
    gallery = gr.Gallery(columns=3, height=360, label="Grad-CAM", elem_id="inside-gallery")
    compare_info = gr.Markdown(elem_id="inside-compare-info")
    picture.on([compare_button.click], side_by_side, [image], [gallery, compare_info], **MODEL_EVENTS)
    return model, layer


TRUST_INTRO = """A map is an explanation only if it depends on what the model learned and if the pixels it
ranks first really drive the score. Two checks from the literature, for the method and class chosen above:

- **Cascading randomization** (Adebayo et al. 2018): the layers are re-initialized from the top down (head,
  stage 4, ..., stem, on a copy of the model) and the map is drawn again at each level. Each map is compared with
  the original by Spearman's rank correlation of |map| and by SSIM. A map that barely changes while the weights
  are destroyed shows the image, not the model.
- **Deletion and insertion** (Petsiuk et al. 2018): the pixels are deleted (set to the mean color) or revealed
  on a blurred copy, highest ranked first, and the class probability is followed. A faithful map makes the
  deletion curve fall fast (small area) and the insertion curve rise fast (large area), faster than a random
  order or a Sobel edge map, which know nothing about the model."""


def _trust_section(picture, inputs: list, method: gr.Radio) -> None:
    with gr.Accordion("Can you trust this map?", open=False, elem_id="inside-trust"):
        gr.Markdown(TRUST_INTRO)
        with gr.Row():
            steps = gr.Slider(5, 50, value=DEFAULT_STEPS, step=1, label="Deletion/insertion steps",
                              elem_id="inside-trust-steps")
            run = gr.Button("Check this map", variant="primary", elem_id="inside-trust-run")
        note = gr.Markdown(trust_note("gradcam"), elem_id="inside-trust-note")
        info = gr.Markdown(elem_id="inside-trust-info")
        maps = gr.Gallery(columns=7, height=240, label="The map at each level of the cascade",
                          elem_id="inside-trust-maps")
        with gr.Row():
            similarity = gr.Plot(show_label=False, elem_id="inside-trust-similarity", scale=3)
            table = gr.Markdown(elem_id="inside-trust-table", scale=2)
        curves = gr.Plot(show_label=False, elem_id="inside-trust-curves")
    method.change(trust_note, method, note)
    picture.on([run.click], check_trust, [*inputs, steps], [maps, similarity, curves, table, info], **MODEL_EVENTS)


def build_inside_tab(demo: gr.Blocks, start: Opening) -> None:
    with gr.Tab("Look inside", id="inside") as tab:
        gr.Markdown(INTRO)
        _filters_section(tab, start)
        model, layer = _image_sections(start)
    demo.load(layer_choices, model, layer)
