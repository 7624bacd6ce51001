"""The wider family in headless Chromium: the isotropic-vs-hierarchical section and the family chart of
the Architecture tab, the ViT and ConvNeXt V2 blocks, and the Feature collapse tab on random weights."""
from __future__ import annotations

import re

import gradio as gr
import pytest
from playwright.sync_api import expect

from tests.test_browser import ERROR_TOAST

SLOW = 240_000  # ms: random init of ConvNeXt-T and V2-T on a busy 2-core CPU, then one pass each


def test_isotropic_against_hierarchical_and_the_family_chart(page):
    text = page.locator("#arch-iso-text")
    expect(text).to_contain_text("ConvNeXt-S (iso.)", timeout=60_000)
    expect(text).to_contain_text("79.7")  # the paper's top-1, beside the counts
    expect(text).to_contain_text("spread evenly over depth")
    expect(page.locator("#arch-iso-chart .js-plotly-plot")).to_be_visible()
    page.locator("#arch-iso-size label", has_text="ConvNeXt-XL").click()
    expect(text).to_contain_text("ConvNeXt-L (iso.)", timeout=60_000)
    expect(text).to_contain_text("% of it in stage 3")
    family = page.locator("#arch-family")
    expect(family).to_contain_text("ConvNeXt V2 (counted)", timeout=120_000)
    expect(family).to_contain_text("Isotropic (paper)")
    expect(family).to_contain_text("ViT (counted)")
    expect(page.locator(ERROR_TOAST)).to_have_count(0)
    page.locator("#arch-iso-chart").scroll_into_view_if_needed()
    page.screenshot(path="/tmp/arch-isotropic.png", full_page=True)


def test_the_blocks_tab_has_the_vit_and_v2_blocks(page):
    page.get_by_role("tab", name="Blocks").click()
    table = page.locator("#blocks-table table")
    expect(table).to_contain_text("ConvNeXt V2 block", timeout=60_000)
    expect(table).to_contain_text("global self-attention")
    expect(table).to_contain_text("GlobalResponseNorm")
    expect(page.locator("#blocks-convnextv2")).to_contain_text("mlp.grn")  # the diagram, drawn
    expect(page.locator("#blocks-vit")).to_contain_text("attn")
    page.screenshot(path="/tmp/blocks-v2-vit.png", full_page=True)


def test_feature_collapse_on_random_weights_says_so(page):
    page.get_by_role("tab", name="Feature collapse").click()
    expect(page.locator("#collapse-weights input[value='random']")).to_be_checked()  # no weights cached here
    page.locator("#collapse-run").click()
    reading = page.locator("#collapse-reading")
    expect(reading).to_contain_text("Random weights", timeout=SLOW)
    expect(reading).to_contain_text("needs trained weights")
    chart = page.locator("#collapse-chart")
    # the title is broken into lines (explorer.plots.titled), which the page's text joins without a space
    expect(chart).to_contain_text(re.compile(r"random weights: no trained\s*effect\s*to see"))
    expect(chart).to_contain_text("ConvNeXt V2-Tiny (random init)")
    expect(page.locator(ERROR_TOAST)).to_have_count(0)
    page.screenshot(path="/tmp/collapse.png", full_page=True)


def test_collapse_without_an_image_is_a_message():
    from explorer.ui.collapse import RANDOM, show_collapse

    with pytest.raises(gr.Error, match="Upload an image first"):
        show_collapse("T", RANDOM, None, progress=lambda *_args, **_kwargs: None)
