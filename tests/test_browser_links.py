"""Deep links in headless Chromium: a link opens its view, the address follows the reader, a reload keeps it."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from playwright.sync_api import expect

from explorer.lessons import lessons
from tests.test_browser import ERROR_TOAST, choose

SLOW = 90_000  # ms: a view counts its models the first time it is drawn
CONVNEXT_T_STAGES = {1: (96, 56), 2: (192, 28), 3: (384, 14), 4: (768, 7)}  # the paper's Table 9, at 224


def open_link(page, app_url: str, query: str) -> None:
    page.goto(app_url + query)


def expect_address(page, **wanted: str) -> None:
    """Wait until the address bar's query holds `wanted` (and maybe more)."""
    def holds(url: str) -> bool:
        query = dict(parse_qsl(urlsplit(url).query))
        return all(query.get(key) == value for key, value in wanted.items())
    page.wait_for_url(holds, timeout=SLOW)


def expect_tab(page, label: str) -> None:
    expect(page.get_by_role("tab", name=label, exact=True)).to_have_attribute("aria-selected", "true", timeout=SLOW)


def test_tab_opens_follows_and_survives_a_reload(page, app_url):
    open_link(page, app_url, "?tab=blocks")
    expect_tab(page, "Blocks")
    page.get_by_role("tab", name="Receptive field").click()
    expect_address(page, tab="erf")
    page.reload()
    expect_tab(page, "Receptive field")
    open_link(page, app_url, "?tab=benchmark")  # the name on the page works too
    expect_tab(page, "Benchmark")


def test_model_size_and_overlay(page, app_url):
    open_link(page, app_url, "?tab=architecture&model=convnext_large&size=384&overlay=resnet50")
    headline = page.locator("#arch-headline")
    expect(headline).to_contain_text("ConvNeXt-L", timeout=SLOW)
    expect(headline).to_contain_text("at 384x384")
    expect(headline).to_contain_text("ResNet-50")
    choose(page, "arch-size", "256")
    expect(headline).to_contain_text("at 256x256", timeout=SLOW)
    expect_address(page, tab="architecture", model="convnext_large", size="256", overlay="resnet50")
    page.reload()
    expect(headline).to_contain_text("ConvNeXt-L", timeout=SLOW)
    expect(headline).to_contain_text("at 256x256")
    expect(headline).to_contain_text("ResNet-50")
    choose(page, "arch-model", "ConvNeXt-S (IN-1K head)")  # a person's pick still resets the size
    expect(headline).to_contain_text("ConvNeXt-S", timeout=SLOW)
    expect_address(page, model="convnext_small", size="224")


def test_regime_and_step(page, app_url):
    open_link(page, app_url, "?tab=roadmap&regime=resnet200&step=kernel7")
    text = page.locator("#roadmap-text")
    expect(text).to_contain_text("Step 10 / 18", timeout=SLOW)  # kernel7 is the tenth step
    expect(text).to_contain_text("7x7")
    expect(page.locator("#roadmap-regime input[value=resnet200]")).to_be_checked()
    page.locator("#roadmap-next").click()
    expect(text).to_contain_text("Step 11 / 18", timeout=SLOW)
    expect_address(page, tab="roadmap", regime="resnet200", step="kernel9")
    page.reload()
    expect(text).to_contain_text("Step 11 / 18", timeout=SLOW)
    expect(page.locator("#roadmap-regime input[value=resnet200]")).to_be_checked()


def test_lesson(page, app_url):
    count = len(lessons())
    open_link(page, app_url, "?tab=lessons&lesson=4")
    heading = page.locator("#lesson-heading")
    expect(heading).to_contain_text(f"4 / {count}", timeout=SLOW)
    expect(heading).to_contain_text(lessons()[3].title)
    page.locator("#lesson-next").click()
    expect(heading).to_contain_text(f"5 / {count}", timeout=SLOW)
    expect_address(page, tab="lessons", lesson="5")
    page.reload()
    expect(heading).to_contain_text(f"5 / {count}", timeout=SLOW)


def test_stage(page, app_url):
    open_link(page, app_url, "?tab=blocks&stage=3")
    table = page.locator("#blocks-table")
    width, side = CONVNEXT_T_STAGES[3]
    expect(table).to_contain_text(f"1 x {width} x {side} x {side}", timeout=SLOW)
    page.locator("#blocks-stage label").nth(1).click()
    width, side = CONVNEXT_T_STAGES[2]
    expect(table).to_contain_text(f"1 x {width} x {side} x {side}", timeout=SLOW)
    expect_address(page, tab="blocks", stage="2")
    page.reload()
    expect(table).to_contain_text(f"1 x {width} x {side} x {side}", timeout=SLOW)
    expect(page.locator("#blocks-stage input[value='2']")).to_be_checked()


def test_a_wrong_value_gets_a_sentence_and_the_rest_of_the_link_still_opens(page, app_url):
    open_link(page, app_url, "?tab=lessons&lesson=99&stage=two")
    expect(page.locator(".toast-body")).to_contain_text("`lesson=99` was ignored", timeout=SLOW)
    expect(page.locator(".toast-body")).to_contain_text("`stage=two` was ignored")
    expect_tab(page, "Lessons")
    expect(page.locator("#lesson-heading")).to_contain_text(f"/ {len(lessons())}", timeout=SLOW)
    expect(page.locator(ERROR_TOAST)).to_have_count(0)


def test_the_link_button_gives_the_address_of_the_view(page, app_url):
    open_link(page, app_url, "?tab=blocks&stage=3")
    expect(page.locator("#blocks-table")).to_contain_text("1 x 384 x 14 x 14", timeout=SLOW)
    page.locator("#blocks-stage label").nth(3).click()
    expect_address(page, tab="blocks", stage="4")
    page.locator("#link-copy").click()
    copied = page.locator("#link-copied")
    expect(copied).to_contain_text(re.compile(r"tab=blocks&stage=4"), timeout=SLOW)
