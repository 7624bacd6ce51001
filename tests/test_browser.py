"""The app in headless Chromium, used the way a person would."""
from __future__ import annotations

from playwright.sync_api import expect


def choose(page, elem_id: str, option: str) -> None:
    """Open a gradio dropdown and click one of its options."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_convnext_xl_at_384_shows_the_papers_179_gflops(page):
    headline = page.locator("#arch-headline")
    expect(headline).to_contain_text("ConvNeXt-T", timeout=60_000)
    choose(page, "arch-model", "ConvNeXt-XL (IN-1K head)")
    expect(headline).to_contain_text("ConvNeXt-XL", timeout=30_000)
    choose(page, "arch-size", "384")
    expect(headline).to_contain_text("at 384x384", timeout=30_000)
    expect(headline).to_contain_text("179.0 GFLOPs")
    expect(page.locator("#arch-table")).to_contain_text("2048 x 12 x 12")
    page.screenshot(path="/tmp/convnext-xl-384.png", full_page=True)
