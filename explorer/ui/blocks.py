"""Blocks tab: the ResNet, ResNeXt, inverted-bottleneck, Swin, ConvNeXt, ViT and ConvNeXt V2 blocks side by side."""
from __future__ import annotations

import gradio as gr

from explorer.compare import DESIGNS, STAGES
from explorer.ui.common import friendly
from explorer.ui.links import Linked
from explorer.ui.normalization import build_normalization_section
from explorer.views import blocks_at

INTRO = """Seven residual blocks at the same width C (the channels each block takes and returns) and the
same resolution, as in a stage of ConvNeXt-T or Swin-T. Each is built from its module structure and
counted (batch 1). The highlighted cells are where a block's design differs from the ConvNeXt block:
how it mixes space, how wide it is inside, and how many norms and activations it has. The last row
holds ViT's block (attention over every position, as in the paper's isotropic comparison; it takes
the H x W positions as a sequence) and the ConvNeXt V2 block, whose GRN (Global Response Normalization)
sits between the two pointwise layers."""
ROWS = (DESIGNS[:3], DESIGNS[3:5], DESIGNS[5:])
STAGE_CHOICES = [(f"stage {s}: C = {c}, {h}x{h}", s) for s, (c, h) in STAGES.items()]


@friendly
def show_blocks(stage: int):
    return blocks_at(int(stage))


def build_blocks_tab() -> Linked:
    with gr.Tab("Blocks", id="blocks"):
        gr.Markdown(INTRO)
        stage = gr.Radio(STAGE_CHOICES, value=1, label="Width and resolution", elem_id="blocks-stage")
        table = gr.HTML(elem_id="blocks-table")
        diagrams = []
        for row in ROWS:  # the ResNet family's three blocks, Swin's beside ConvNeXt's, ViT's beside V2's
            with gr.Row():
                diagrams += [gr.Plot(show_label=False, elem_id=f"blocks-{d.key}") for d in row]
        build_normalization_section()
    stage.change(show_blocks, stage, [table, *diagrams])
    return Linked({"stage": stage}, lambda opened: opened.then(show_blocks, stage, [table, *diagrams]))
