"""The Look inside tab: in headless Chromium (upload an image, run Grad-CAM, see the overlay), and its
handlers' messages for a person's mistakes."""
from __future__ import annotations

import numpy as np
from PIL import Image
from playwright.sync_api import expect

from tests.test_browser import ERROR_TOAST


def test_upload_an_image_and_get_a_gradcam_overlay(page, tmp_path):
    pixels = np.full((160, 200, 3), 235, dtype=np.uint8)
    pixels[40:120, 60:140] = (200, 40, 40)  # a red square on a light background
    upload = tmp_path / "square.png"
    Image.fromarray(pixels).save(upload)

    page.get_by_role("tab", name="Look inside").click()
    expect(page.locator("#inside-filter-info")).to_contain_text("with", timeout=90_000)  # filters drawn
    page.locator("#inside-image input[type=file]").set_input_files(str(upload))
    expect(page.locator("#inside-image img")).to_be_visible(timeout=30_000)
    page.locator("#inside-explain").click()
    expect(page.locator("#inside-overlay img")).to_be_visible(timeout=90_000)
    expect(page.locator("#inside-explain-info")).to_contain_text("Grad-CAM at")
    expect(page.locator("#inside-scores")).to_be_visible()
    expect(page.locator(ERROR_TOAST)).to_have_count(0)
    page.screenshot(path="/tmp/inside-gradcam.png", full_page=True)


def test_click_a_bundled_example_and_the_trained_model_names_and_finds_the_shape(page):
    page.get_by_role("tab", name="Look inside").click()
    expect(page.locator("#inside-filter-info")).to_contain_text("ConvNeXt-Shapes", timeout=90_000)  # opens on it
    page.locator("button.gallery-item:visible").nth(6).click()  # the examples sort by name: the seventh is the star
    expect(page.locator("#inside-image img")).to_be_visible(timeout=30_000)
    page.locator("#inside-explain").click()
    expect(page.locator("#inside-explain-info")).to_contain_text("Grad-CAM at stages.2 for 'star'", timeout=90_000)
    expect(page.locator("#inside-scores")).to_contain_text("star")
    expect(page.locator(ERROR_TOAST)).to_have_count(0)


def test_can_you_trust_this_map_shows_both_checks_and_reads_them(page):
    page.get_by_role("tab", name="Look inside").click()
    expect(page.locator("#inside-filter-info")).to_contain_text("ConvNeXt-Shapes", timeout=90_000)
    page.locator("button.gallery-item:visible").nth(6).click()  # the star
    expect(page.locator("#inside-image img")).to_be_visible(timeout=30_000)
    page.locator("#inside-method").get_by_text("Score-CAM").click()
    page.get_by_text("Can you trust this map?").click()  # the accordion opens
    expect(page.locator("#inside-trust-note")).to_contain_text("can take minutes")  # warned before running
    page.locator("#inside-method").get_by_text("Grad-CAM", exact=True).click()
    expect(page.locator("#inside-trust-note")).not_to_contain_text("can take minutes")
    page.locator("#inside-trust-run").click()
    info = page.locator("#inside-trust-info")
    expect(info).to_contain_text("Grad-CAM at stages.2 for 'star'", timeout=120_000)
    expect(info).to_contain_text("with every layer random")  # the cascade's reading
    expect(info).to_contain_text("Sobel edges")  # the curves' reading
    expect(page.locator("#inside-trust-maps img")).to_have_count(7)  # the original and six levels
    page.wait_for_function("[...document.querySelectorAll('#inside-trust-maps img')]"
                           ".every(img => img.complete && img.naturalWidth > 0)")
    expect(page.locator("#inside-trust-similarity .js-plotly-plot")).to_be_visible()
    expect(page.locator("#inside-trust-curves .js-plotly-plot")).to_be_visible()
    expect(page.locator("#inside-trust-table")).to_contain_text("random order")
    expect(page.locator(ERROR_TOAST)).to_have_count(0)
    page.locator("#inside-trust").screenshot(path="/tmp/inside-trust.png")


def test_small_overlays_are_enlarged_for_the_page():
    from explorer.ui.inside import SHOWN_SIDE, explain
    from explorer.ui.predict import EXAMPLES_DIR

    shown, scores, _classes, info = explain("convnext_shapes", "default", None, str(EXAMPLES_DIR / "ring-0.png"),
                                            "gradcam", None, "", progress=lambda *args, **kwargs: None)
    assert shown.shape == (SHOWN_SIDE, SHOWN_SIDE, 3) and shown.dtype == np.uint8  # from the model's 256 px
    assert max(scores, key=scores.get) == "ring (5)" and "stages.2" in info


def test_handlers_turn_mistakes_into_messages():
    import gradio as gr
    import pytest

    from explorer.ui.inside import check_trust, explain, show_filters, side_by_side
    from explorer.ui.predict import EXAMPLES_DIR

    def quiet(*_args, **_kwargs) -> None:  # stands in for gr.Progress outside a running app
        return None

    with pytest.raises(gr.Error, match="Upload an image first"):
        explain("convnext_shapes", "default", None, None, "gradcam", None, "", progress=quiet)
    with pytest.raises(gr.Error, match="Upload an image first"):
        side_by_side(None, progress=quiet)
    with pytest.raises(gr.Error, match="Upload an image first"):
        check_trust("convnext_shapes", "default", None, None, "gradcam", None, "", 20, progress=quiet)
    with pytest.raises(gr.Error, match="0 steps is not possible"):  # the slider stops at 5; the API does not
        check_trust("convnext_shapes", "default", None, str(EXAMPLES_DIR / "ring-0.png"), "gradcam", None, "", 0,
                    progress=quiet)
    with pytest.raises(gr.Error, match="no depthwise convolutions"):
        show_filters("roadmap:resnet50", "default", None, None, None, False, False, progress=quiet)
