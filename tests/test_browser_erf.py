"""The Receptive field tab in headless Chromium (random against trained weights for the bundled model,
side by side, with the area-ratio table), and its handler's messages for a person's mistakes."""
from __future__ import annotations

import gradio as gr
import pytest
from playwright.sync_api import expect

from tests.test_browser import ERROR_TOAST

SLOW = 180_000  # ms: a cold disk cache computes 3 maps x 8 examples (2 seeds for the random ones)


def test_compare_random_and_trained_weights_of_the_bundled_model(page):
    page.get_by_role("tab", name="Receptive field").click()
    page.locator("#erf-kind label", has_text="random init against trained").click()
    page.locator("#erf-images label", has_text="the bundled examples").click()
    page.locator("#erf-run").click()
    expect(page.locator("#erf-info")).to_contain_text("3 maps", timeout=SLOW)
    expect(page.locator("#erf-grid .js-plotly-plot")).to_be_visible(timeout=30_000)
    expect(page.locator("#erf-profile .js-plotly-plot")).to_be_visible()
    table = page.locator("#erf-table table")
    expect(table).to_contain_text("t = 0.99")
    expect(table).to_contain_text("residual branches on")
    expect(table).to_contain_text("bundled convnext_shapes (trained by the project)")
    expect(page.locator(ERROR_TOAST)).to_have_count(0)
    page.screenshot(path="/tmp/erf-trained.png", full_page=True)


def test_my_images_without_an_upload_is_a_message(page):
    page.get_by_role("tab", name="Receptive field").click()
    page.locator("#erf-images label", has_text="my images").click()
    page.locator("#erf-run").click()
    expect(page.locator(ERROR_TOAST)).to_contain_text("Upload some images first", timeout=30_000)


def test_handler_turns_mistakes_into_messages():
    from explorer.ui.erf import show_erf

    def quiet(*_args, **_kwargs) -> None:  # stands in for gr.Progress outside a running app
        return None

    with pytest.raises(gr.Error, match="Pick a model first"):
        show_erf("stages", [], "random", None, "noise", None, 1, 1, "last", progress=quiet)
    with pytest.raises(gr.Error, match="Upload a checkpoint file"):
        show_erf("stages", ["convnext_shapes"], "file", None, "noise", None, 1, 1, "last", progress=quiet)
    with pytest.raises(gr.Error, match="has 4 stages"):
        show_erf("models", ["convnext_shapes"], "random", None, "noise", None, 1, 1, "7", progress=quiet)
    with pytest.raises(gr.Error, match="No published weights"):
        show_erf("kernel_sweep", [], "trained", None, "noise", None, 1, 1, "last", progress=quiet)
