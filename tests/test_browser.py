"""The app in headless Chromium, used the way a person would."""
from __future__ import annotations

from playwright.sync_api import expect

ERROR_TOAST = ".toast-body.error"


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


def test_step_through_every_roadmap_step(page):
    page.get_by_role("tab", name="Roadmap").click()
    text = page.locator("#roadmap-text")
    expect(text).to_contain_text("Step 1 / 18: ResNet-50", timeout=60_000)
    for number in range(2, 19):
        page.locator("#roadmap-next").click()
        expect(text).to_contain_text(f"Step {number} / 18", timeout=30_000)
        if number in (3, 5, 6):  # stage ratio, depthwise, width: the changed cells are highlighted
            expect(page.locator("#roadmap-table mark").first).to_be_attached()
    expect(text).to_contain_text("Swin-T (reference)")
    page.locator("#roadmap-prev").click()
    expect(text).to_contain_text("Step 17 / 18")
    expect(text).to_contain_text("4.49")  # the paper's figure for ConvNeXt-T, shown beside the count
    expect(page.locator(ERROR_TOAST)).to_have_count(0)
    page.screenshot(path="/tmp/roadmap-walk.png", full_page=True)


def test_a_bad_input_size_gets_a_message_and_the_app_keeps_serving(page):
    headline = page.locator("#arch-headline")
    expect(headline).to_contain_text("ConvNeXt-T", timeout=60_000)
    size = page.locator("#arch-size input")
    size.fill("100")
    size.press("Enter")
    expect(page.locator(ERROR_TOAST)).to_contain_text("multiple of 32", timeout=30_000)
    size.fill("384")
    size.press("Enter")
    expect(headline).to_contain_text("at 384x384", timeout=30_000)


def test_fast_clicks_on_next_are_not_lost(page):
    page.get_by_role("tab", name="Roadmap").click()
    text = page.locator("#roadmap-text")
    expect(text).to_contain_text("Step 1 / 18", timeout=60_000)
    for _ in range(5):
        page.locator("#roadmap-next").click()
    expect(text).to_contain_text("Step 6 / 18: increase width", timeout=60_000)
    expect(page.locator(ERROR_TOAST)).to_have_count(0)
