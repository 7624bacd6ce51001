"""The Benchmark tab in headless Chromium: a run gives a chart, a table and a CSV; a mistake a message."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.test_browser import ERROR_TOAST, choose


def test_benchmark_two_models_then_a_bad_batch(page):
    page.get_by_role("tab", name="Benchmark").click()
    choose(page, "bench-resolution", "160x160")  # small and quick on a CPU; the paper's sizes work the same
    batch = page.locator("#bench-batch input")
    batch.fill("1")
    page.locator("#bench-run").click()
    table = page.locator("#bench-table")
    expect(table).to_contain_text("convnext_tiny", timeout=180_000)
    expect(table).to_contain_text("swin_tiny_patch4_window7_224")
    expect(page.locator("#bench-summary")).to_contain_text("images/s")
    expect(page.locator("#bench-chart .js-plotly-plot")).to_be_visible()
    expect(page.locator("#bench-csv")).to_contain_text(".csv")
    page.screenshot(path="/tmp/benchmark-tab.png", full_page=True)
    batch.fill("0")
    page.locator("#bench-run").click()
    expect(page.locator(ERROR_TOAST)).to_contain_text("at least 1 image", timeout=60_000)
