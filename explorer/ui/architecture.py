"""Architecture tab: any model's stages, shapes, parameters and GFLOPs, beside the paper's figures."""
from __future__ import annotations

import gradio as gr

from explorer.layouts import TRIOS
from explorer.paper import family_point, model_figures
from explorer.plots import family_chart
from explorer.report import HEADERS
from explorer.ui.common import friendly, model_choices, parse_input_size, spec_choices
from explorer.views import architecture, isotropic
from explorer.ui.links import Linked
from explorer.zoo import ExplorerError, get_spec, specs_by_family

DEFAULT_MODEL = "convnext_tiny"
INPUT_SIZES = [160, 224, 256, 288, 320, 384, 448, 512]
MODEL_NAME_WIDTH = 260  # px: a model's name in a dropdown; a phone gives such a dropdown a line of its own

INTRO = """Pick a model and an input size to see how it is built: the tensor shape after the stem and
each stage, where the parameters and the compute (GFLOPs, counted the paper's way: multiply-accumulates
of convolutions, linear layers and matmuls) sit, and how the counts compare with the paper's tables."""


@friendly
def show(name: str, size, compare: str):
    """Headline, table and the two per-stage charts for `name` (and `compare` overlaid)."""
    return architecture(name, parse_input_size(size), compare)


def pick_model(name: str, compare: str):
    """A new model starts at its own default input size."""
    size = get_spec(name).input_size
    return (size, *show(name, size, compare))


def pick_family(family: str, compare: str):
    """A family's models in the picker, and its first model shown (one trip to the server)."""
    models = specs_by_family()[family]
    return (gr.update(choices=spec_choices(models), value=models[0].name), *pick_model(models[0].name, compare))


def draw_family_chart(progress=gr.Progress()):
    figures = progress.tqdm(model_figures(), desc="Counting every model the paper prints")
    return family_chart([family_point(figure) for figure in figures])


ISOTROPIC_INTRO = """The paper's Section 3.3 builds an **isotropic ConvNeXt**: a 16x16 patchify stem, then ConvNeXt
blocks that never downsample, like ViT, to test the block itself against self-attention at equal size. Both
run every block on a 14x14 grid at 224 (ViT with one class token more), so their compute is spread evenly
over depth. The hierarchical ConvNeXt of about the same GFLOPs (T, B, XL) starts at 56x56, halves the grid
three times and does most of its compute in stage 3."""
ISOTROPIC_SIZES = [(" / ".join(get_spec(name).label.removesuffix(" (IN-1K head)") for name in TRIOS[size]), size)
                   for size in TRIOS]


@friendly
def show_isotropic(size: str):
    return isotropic(size)


def build_architecture_tab(demo: gr.Blocks) -> Linked:
    groups = specs_by_family()
    with gr.Tab("Architecture", id="architecture"):
        gr.Markdown(INTRO)
        with gr.Row():
            family = gr.Radio(list(groups), value="ConvNeXt", label="Family", scale=2)
            model = gr.Dropdown(spec_choices(groups["ConvNeXt"]), value=DEFAULT_MODEL, label="Model",
                                elem_id="arch-model", scale=2, min_width=MODEL_NAME_WIDTH)
            size = gr.Dropdown(INPUT_SIZES, value=224, label="Input size", allow_custom_value=True,
                               elem_id="arch-size", scale=1)
            compare = gr.Dropdown([("none", "")] + model_choices(), value="", label="Overlay a second model",
                                  elem_id="arch-compare", scale=2, min_width=MODEL_NAME_WIDTH)
        headline = gr.Markdown(elem_id="arch-headline")
        table = gr.Dataframe(headers=HEADERS, interactive=False, elem_id="arch-table")
        with gr.Row():
            params_plot = gr.Plot(show_label=False)
            gflops_plot = gr.Plot(show_label=False)
        family_plot = gr.Plot(show_label=False, elem_id="arch-family")
        with gr.Accordion("Isotropic vs hierarchical: ViT, the isotropic ConvNeXt and ConvNeXt", open=True):
            gr.Markdown(ISOTROPIC_INTRO)
            iso_size = gr.Radio(ISOTROPIC_SIZES, value="S", label="Size", elem_id="arch-iso-size")
            iso_text = gr.Markdown(elem_id="arch-iso-text")
            iso_plot = gr.Plot(show_label=False, elem_id="arch-iso-chart")

    outputs = [headline, table, params_plot, gflops_plot]
    # A person's pick of a model resets the size; a link sets both, so it must not trigger the reset.
    family.input(pick_family, [family, compare], [model, size, *outputs])
    model.select(pick_model, [model, compare], [size, *outputs])
    gr.on([size.change, compare.change], show, [model, size, compare], outputs)
    # These run after the page has drawn; the family chart summarizes 31 models (seconds when cold).
    demo.load(draw_family_chart, None, family_plot)
    iso_size.change(show_isotropic, iso_size, [iso_text, iso_plot])
    demo.load(show_isotropic, iso_size, [iso_text, iso_plot])
    return Linked({"family": family, "model": model, "size": size, "overlay": compare},
                  lambda opened: opened.then(show, [model, size, compare], outputs))
