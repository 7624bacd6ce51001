"""Block diagrams: one colour per operation kind whatever the module class, a legend, layer scale and each
residual addition drawn, and a layer count that counts what computes (the paper's Figure 3 and 4)."""
from __future__ import annotations

import pytest

from explorer.analysis import computing_layers, operation
from explorer.compare import STAGES, report
from explorer.plots import block_diagram


def boxes(figure) -> dict[str, str]:
    """Layer name -> the fill of its box: each box is a rect, followed in order by its bold label."""
    rects = [shape.fillcolor for shape in figure.layout.shapes if shape.type == "rect"]
    names = [a.text.split("</b>")[0].removeprefix("<b>") for a in figure.layout.annotations
             if a.text and a.text.startswith("<b>") and a.text != "<b>+</b>"]
    assert len(rects) == len(names)
    return dict(zip(names, rects))


@pytest.fixture(scope="module")
def blocks():
    return {key: report(key, *STAGES[1]) for key in ("resnet", "convnext", "swin", "vit", "convnextv2")}


def test_a_1x1_conv_and_a_linear_layer_share_the_colour_of_channel_mixing(blocks):
    resnet = boxes(block_diagram(list(blocks["resnet"].layers), "ResNet"))
    convnext = boxes(block_diagram(list(blocks["convnext"].layers), "ConvNeXt"))
    swin = boxes(block_diagram(list(blocks["swin"].layers), "Swin"))
    # ResNet's 1x1 Conv2d and ConvNeXt's Linear both mix channels at each position
    assert resnet["pwconv1"] == convnext["pwconv1"] == convnext["pwconv2"] == swin["mlp.fc1"]
    # a 3x3 conv, a 7x7 depthwise conv and window attention all mix positions
    assert resnet["conv"] == convnext["dwconv"] == swin["attn"]
    assert resnet["norm1"] == convnext["norm"] == swin["norm1"]  # BatchNorm2d and LayerNorm: norms
    assert resnet["act1"] == convnext["act"]  # ReLU and GELU
    kinds = {resnet["pwconv1"], resnet["conv"], resnet["norm1"], resnet["act1"],
             convnext["to_channels_last"], convnext["gamma"]}
    assert len(kinds) == 6  # six kinds, six colours


def test_the_legend_names_each_kind_drawn(blocks):
    figure = block_diagram(list(blocks["convnext"].layers), "ConvNeXt")
    legend = [trace.name for trace in figure.data if trace.showlegend]
    assert sorted(legend) == sorted({"spatial mixing", "channel mixing", "norm", "activation", "layer scale",
                                     "layout"})
    assert figure.layout.legend.orientation == "h" and figure.layout.legend.y <= 0  # below the drawing


def test_layer_scale_and_the_residual_additions_are_drawn(blocks):
    def additions(key):
        figure = block_diagram(list(blocks[key].layers), key)
        return sum(a.text == "<b>+</b>" for a in figure.layout.annotations)
    assert [layer.name for layer in blocks["convnext"].layers][-1] == "gamma"  # after pwconv2, before the add
    assert operation(blocks["convnext"].layers[-1]) == "layer scale"
    assert additions("resnet") == additions("convnext") == additions("convnextv2") == 1
    assert additions("swin") == additions("vit") == 2  # x + attention(norm(x)), then x + MLP(norm(x))


def test_the_layer_count_counts_what_computes(blocks):
    # Figure 3/4 of the paper: ResNet bottleneck 3 convs + 3 BN + 3 ReLU; ConvNeXt d7x7, LN, 1x1, GELU, 1x1
    # (the two permutes and layer scale are not layers); Swin: LN, attention, LN, 1x1, GELU, 1x1
    assert computing_layers(blocks["resnet"].layers) == 9
    assert computing_layers(blocks["convnext"].layers) == 5
    assert computing_layers(blocks["swin"].layers) == 6


def test_log_axes_write_every_tick_label_in_full():
    from explorer.plots import log_axis, results_chart

    points = [{"family": "ConvNeXt", "name": "T", "gflops": 4.5, "top1": 82.1},
              {"family": "ConvNeXt", "name": "XL", "gflops": 179.0, "top1": 87.8}]
    axis = results_chart(points, "top-1").layout.xaxis
    assert axis.type == "log"
    assert [float(label.replace(",", "")) for label in axis.ticktext] == pytest.approx(list(axis.tickvals))
    assert {2.0, 5.0, 20.0, 50.0} <= set(axis.tickvals)  # 20 and 50 labelled "20" and "50", not "2" and "5"
    assert min(axis.tickvals) <= 4.5 and max(axis.tickvals) >= 179.0
    assert log_axis([1500.0])["ticktext"] == ["1,000", "2,000"]
