"""The Counting tab and the normalization lab (Blocks tab) in headless Chromium."""
from __future__ import annotations

from playwright.sync_api import expect

from explorer.zoo import SHAPES_NET
from tests.test_browser import ERROR_TOAST, choose

SLOW = 180_000  # ms: six counters on a CPU shared with the rest of the suite


def test_count_the_bundled_model_with_every_tool(page):
    page.get_by_role("tab", name="Counting").click()
    choose(page, "count-model", "Bundled: ConvNeXt-Shapes (bundled, 8 classes)")
    page.locator("#count-size input").fill("128")
    page.locator("#count-size input").press("Enter")
    page.locator("#count-run").click()
    expect(page.locator("#count-headline")).to_contain_text("prints no figure", timeout=SLOW)
    table = page.locator("#count-table table")
    for label in ("torch.utils.flop_counter", "fvcore", "ptflops, pytorch backend", "ptflops, aten backend",
                  "thop (ultralytics-thop)", "torchinfo"):
        expect(table).to_contain_text(label)
    expect(page.locator("#count-chart .js-plotly-plot")).to_be_visible()
    expect(page.locator("#count-notes")).to_contain_text("counted once per image")
    expect(page.locator(ERROR_TOAST)).to_have_count(0)
    page.screenshot(path="/tmp/counting-tab.png", full_page=True)


def test_a_model_too_big_for_the_cpu_is_a_message(page):
    page.get_by_role("tab", name="Counting").click()
    page.locator("#count-size input").fill("512")  # ConvNeXt-T at 512: 23.3 GFLOPs
    page.locator("#count-size input").press("Enter")
    page.locator("#count-run").click()
    expect(page.locator(ERROR_TOAST)).to_contain_text("stops at 20 GFLOPs", timeout=60_000)


def test_normalization_lab_on_a_bundled_example(page):
    page.get_by_role("tab", name="Blocks").click()
    page.locator("#norm-stage label", has_text="stage 2").click()
    page.locator("#norm-run").click()
    side = SHAPES_NET.input_size // 8  # stage 2: after the 4x4 stem and one downsampling
    expect(page.locator("#norm-summary")).to_contain_text(f"1 x 32 x {side} x {side}", timeout=SLOW)
    expect(page.locator("#norm-summary")).to_contain_text("largest difference")
    expect(page.locator("#norm-sharing .js-plotly-plot")).to_be_visible()
    expect(page.locator("#norm-histograms .js-plotly-plot")).to_be_visible()
    expect(page.locator(ERROR_TOAST)).to_have_count(0)
    page.locator("#norm-summary").scroll_into_view_if_needed()
    page.screenshot(path="/tmp/normalization-lab.png", full_page=True)
