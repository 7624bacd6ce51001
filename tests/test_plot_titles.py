"""Figure titles broken into lines that fit a phone, the words kept in order."""
from __future__ import annotations

import re

from explorer.plots import TITLE_CHARS, titled


def test_a_long_title_is_broken_into_short_lines_with_every_word():
    text = "Where the compute sits: each part's share of the model's GFLOPs, with its output shape"
    lines = titled(text)["title"]["text"].split("<br>")
    assert len(lines) >= 3  # 86 characters
    assert all(len(line) <= TITLE_CHARS for line in lines)
    assert " ".join(lines) == text


def test_given_breaks_stay_and_a_smaller_line_keeps_its_tag_on_every_piece():
    title = titled("stages.1.blocks.0.conv_dw<br><sub>32 of 96 7x7 kernels, strongest first (L2 norm), "
                   "on one colour scale</sub>")["title"]["text"]
    first, *rest = title.split("<br>")
    assert first == "stages.1.blocks.0.conv_dw" and len(rest) >= 2
    assert all(line.startswith("<sub>") and line.endswith("</sub>") for line in rest)
    assert all(len(re.sub(r"<[^>]+>", "", line)) <= TITLE_CHARS for line in rest)


def test_a_figure_sized_by_its_content_keeps_its_plot_whatever_the_title():
    """The lesson's kernel grid of a 16-channel stage had 16 px left for its plot once its title took
    three lines (plotly then fails in the page: "Something went wrong with axis scaling")."""
    import numpy as np

    from explorer.inspect import DepthwiseKernels, DepthwiseLayer
    from explorer.plots import kernel_grid

    for channels in (4, 16, 96):
        weights = np.random.default_rng(0).normal(size=(channels, 7, 7)).astype(np.float32)
        kernels = DepthwiseKernels(DepthwiseLayer("stages.0.blocks.0.conv_dw", stage=0, block=0), weights,
                                   channels=np.arange(channels), norms=np.linalg.norm(weights, axis=(1, 2)),
                                   sorted_by_norm=True)
        layout = kernel_grid(kernels).layout
        plot = layout.height - layout.margin.t - layout.margin.b
        assert plot >= 40, (channels, layout.height, layout.margin.t)  # 48 px before titles could wrap
