"""Readable everywhere, in headless Chromium: WCAG contrast of every visible text in light and dark mode on
each tab, no sideways scroll of the page and no clipped or overlapping figure text at phone and laptop
width, and a CSV under every table that equals it."""
from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect

from explorer.analysis import summarize
from explorer.links import TABS
from explorer.report import HEADERS, table_rows
from explorer.roadmap import step_name

SLOW = 90_000  # ms
WCAG_AA = 4.5  # the contrast every text must reach (WCAG 2 level AA for body text)

# For each visible text in the page: its colour (CSS `color`, or `fill` for the SVG text of figures) and
# the background behind it, found by compositing the background colours of its ancestors over white;
# both composited with their alpha, then the WCAG 2 contrast ratio of their relative luminances.
CONTRAST = """(root) => {
  const parse = (text) => {
    const m = text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const [r, g, b, a] = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [r, g, b, a === undefined ? 1 : a];
  };
  const over = (top, below) => top.slice(0, 3).map((c, i) => c * top[3] + below[i] * (1 - top[3])).concat(1);
  const luminance = ([r, g, b]) => {
    const lin = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const background = (element) => {
    const chain = [];
    for (let e = element; e && e.nodeType === 1; e = e.parentElement) {
      const style = getComputedStyle(e);
      const color = parse(style.backgroundColor);
      if (color && color[3] > 0) chain.push(color);
      if (color && color[3] === 1) break;
    }
    return chain.reverse().reduce((below, top) => over(top, below), [255, 255, 255, 1]);
  };
  // SVG text of a figure sits on what the figure painted before it: the last filled bar, box or marker
  // (in document order, which is paint order) under the middle of the text; else on the page behind.
  const drawnUnder = (text) => {
    const plot = text.closest(".js-plotly-plot");
    if (!plot) return null;
    const box = text.getBoundingClientRect();
    const [x, y] = [box.left + box.width / 2, box.top + box.height / 2];
    let under = null;
    for (const shape of plot.querySelectorAll("path, rect, circle")) {
      if (!(shape.compareDocumentPosition(text) & Node.DOCUMENT_POSITION_FOLLOWING)) continue;
      const style = getComputedStyle(shape);
      const fill = parse(style.fill);
      const opacity = Number(style.fillOpacity || 1) * Number(style.opacity || 1);
      if (!fill || fill[3] * opacity === 0 || style.display === "none") continue;
      const r = shape.getBoundingClientRect();
      if (r.width && r.height && r.left <= x && x <= r.right && r.top <= y && y <= r.bottom) {
        under = [fill[0], fill[1], fill[2], fill[3] * opacity];
      }
    }
    return under;
  };
  const visible = (e) => {
    const box = e.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) return false;
    for (let a = e; a && a.nodeType === 1; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (s.display === "none" || s.visibility === "hidden" || Number(s.opacity) === 0) return false;
    }
    return true;
  };
  const failures = [];
  const elements = new Set();
  const walker = document.createTreeWalker(root ? document.querySelector(root) : document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.textContent.trim() && node.parentElement) elements.add(node.parentElement);
  }
  let checked = 0;
  for (const e of elements) {
    if (["SCRIPT", "STYLE", "NOSCRIPT", "TITLE", "OPTION"].includes(e.tagName) || !visible(e)) continue;
    const style = getComputedStyle(e);
    const svg = e instanceof SVGElement;
    let color = parse(svg ? style.fill : style.color);
    if (!color) continue;
    let alpha = color[3];
    if (svg) alpha *= Number(style.fillOpacity || 1);
    for (let a = e; a && a.nodeType === 1; a = a.parentElement) alpha *= Number(getComputedStyle(a).opacity);
    let behind = background(e);
    const shape = svg ? drawnUnder(e) : null;
    if (shape) behind = over(shape, behind);
    const fore = over([color[0], color[1], color[2], alpha], behind);
    const [l1, l2] = [luminance(fore), luminance(behind)].sort((x, y) => y - x);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    checked += 1;
    if (ratio < %s) {
      failures.push({ text: e.textContent.trim().slice(0, 60), ratio: Math.round(ratio * 100) / 100,
                      color: fore.slice(0, 3).map(Math.round).join(","), background: behind.slice(0, 3).map(Math.round).join(","),
                      where: (e.closest("[id]") || {}).id || e.tagName });
    }
  }
  return { checked, failures };
}""" % WCAG_AA


# The page scrolls sideways, or a page element (HTML, not a figure's inside) reaches past the screen's
# right edge outside a table that scrolls it (gradio's own containers scroll, so any box would pass):
# returns what sticks out, [] when nothing does.
STICKING_OUT = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  if (document.scrollingElement.scrollWidth > width) out.push("page " + document.scrollingElement.scrollWidth);
  for (const e of document.body.querySelectorAll("*")) {
    // a figure's inside, and gradio's hidden copy of the tab bar (it measures which tabs fit)
    if (e instanceof SVGElement || e.closest(".js-plotly-plot") || e.closest(".visually-hidden")) continue;
    const box = e.getBoundingClientRect();
    if (box.width === 0 || box.right <= width + 1 || getComputedStyle(e).visibility === "hidden") continue;
    let scrolled = false;
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      const overflow = getComputedStyle(a).overflowX;
      const table = a.tagName === "TABLE" || /table/.test(a.className);  // only tables may scroll sideways
      if (table && (overflow === "auto" || overflow === "scroll") && a.getBoundingClientRect().right <= width + 1) {
        scrolled = true; break;
      }
    }
    if (!scrolled && e.offsetParent !== null) out.push((e.id || e.tagName) + " " + Math.round(box.right));
  }
  return out.slice(0, 10);
}"""


# Installed in every document before the app's own scripts: the time of the page's last change.
WATCH_CHANGES = """window.__lastChange = performance.now();
new MutationObserver(() => { window.__lastChange = performance.now(); })
  .observe(document, { subtree: true, childList: true, attributes: true, characterData: true });"""
# True once no gradio status tracker is showing (nothing is waiting for the server) and the page has not
# changed for `quiet` ms (the figures the answers brought are drawn).
SETTLED = """(quiet) => {
  const busy = [...document.querySelectorAll('[data-testid="status-tracker"]:not(.hide)')]
    .some((e) => e.getClientRects().length > 0);
  return !busy && performance.now() - window.__lastChange > quiet;
}"""
QUIET = 750  # ms without a change that count as settled


def wait_until_settled(page) -> None:
    """Wait, up to SLOW, until what the last click started has come back and been drawn."""
    page.wait_for_function(SETTLED, arg=QUIET, timeout=SLOW, polling=100)


# In every figure shown: its title and its axes' titles within the figure's box and apart, its title clear
# of the tool bar, and no two names beside points on top of each other; and each dropdown's text ending before
# its arrow, with "..." where it is cut. Returns the faults, [] when there are none.
FIGURES_AND_FIELDS = """() => {
  const out = [];
  const inside = (r, box) => r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1 &&
                             r.bottom <= box.bottom + 1;
  const apart = (a, b) => a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top;
  // what a person sees: not a lesson drawn ahead and hidden (visibility: hidden)
  const shown = (e) => e.getBoundingClientRect().width > 0 && e.checkVisibility({visibilityProperty: true});
  for (const plot of document.querySelectorAll(".js-plotly-plot")) {
    if (!shown(plot)) continue;
    const box = plot.getBoundingClientRect();
    const where = (plot.closest("[id]") || {}).id || "a figure";
    const bar = plot.querySelector(".modebar");
    const titles = [...plot.querySelectorAll(".infolayer text[class$='title']")].filter((t) => t.getBoundingClientRect().width);
    for (const text of titles) {
      const r = text.getBoundingClientRect();
      const words = text.textContent.slice(0, 40);
      if (!inside(r, box)) out.push(`${where}: "${words}" outside its figure`);
      if (text.classList.contains("gtitle") && bar && !apart(r, bar.getBoundingClientRect())) {
        out.push(`${where}: "${words}" under the tool bar`);
      }
    }
    const names = [...plot.querySelectorAll(".textpoint text")].filter((t) => t.getBoundingClientRect().width);
    for (const group of [titles, names]) {
      group.forEach((a, i) => group.slice(i + 1).forEach((b) => {
        if (!apart(a.getBoundingClientRect(), b.getBoundingClientRect())) {
          out.push(`${where}: "${a.textContent.slice(0, 40)}" on "${b.textContent.slice(0, 40)}"`);
        }
      }));
    }
  }
  for (const input of document.querySelectorAll(".wrap-inner input")) {
    const arrow = input.closest(".wrap-inner").querySelector(".icon-wrap");
    if (!shown(input) || !arrow) continue;
    const style = getComputedStyle(input);
    const end = input.getBoundingClientRect().right - parseFloat(style.paddingRight);
    const cut = input.scrollWidth > input.clientWidth && style.textOverflow !== "ellipsis";
    if (end > arrow.getBoundingClientRect().left + 1 || cut) {
      out.push(`${(input.closest("[id]") || {}).id || "a dropdown"}: "${input.value}" under its arrow or cut unmarked`);
    }
  }
  return out;
}"""


def low_contrast(page, root: str | None = None) -> tuple[int, list[dict]]:
    """(texts checked, those under WCAG_AA) in the page, or under the element `root` selects."""
    result = page.evaluate(CONTRAST, root)
    return result["checked"], result["failures"]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_text_on_every_tab_has_enough_contrast(browser, app_url, theme):
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme=theme)
    context.add_init_script(WATCH_CHANGES)
    page = context.new_page()
    page.goto(f"{app_url}?__theme={theme}")
    expect(page.locator("#arch-headline")).to_contain_text("ConvNeXt-T", timeout=SLOW)
    failures, total = {}, 0
    for tab, label in TABS.items():
        page.get_by_role("tab", name=label, exact=True).click()
        wait_until_settled(page)
        checked, low = low_contrast(page)
        total += checked
        if low:
            failures[tab] = low
        page.screenshot(path=f"/tmp/readable-{theme}-{tab}.png", full_page=True)
    context.close()
    assert total > 200  # the check saw the page's texts
    assert not failures, f"texts under {WCAG_AA}:1 in {theme} mode: {failures}"


def test_the_highlighted_cells_read_in_dark_mode(browser, app_url):
    context = browser.new_context(viewport={"width": 1280, "height": 720}, color_scheme="dark")
    page = context.new_page()
    page.goto(f"{app_url}?tab=blocks&__theme=dark")
    mark = page.locator("#blocks-table mark").first
    expect(mark).to_be_visible(timeout=SLOW)
    checked, low = low_contrast(page, "#blocks-table")
    context.close()
    assert checked > 20 and not low, low


SCREENS = {"phone": dict(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True),
           "laptop": dict(viewport={"width": 1280, "height": 720})}


@pytest.mark.parametrize("screen", SCREENS)
def test_a_page_and_its_figures_fit_the_screen(browser, app_url, screen):
    """A phone never scrolls the page sideways, and on either screen no figure's title, axis title or
    point name, nor a dropdown's text, is clipped or drawn over another."""
    context = browser.new_context(**SCREENS[screen])
    context.add_init_script(WATCH_CHANGES)
    page = context.new_page()
    page.goto(app_url)
    expect(page.locator("#arch-headline")).to_contain_text("ConvNeXt-T", timeout=SLOW)
    expect(page.locator("#arch-family .textpoint text").first).to_be_visible(timeout=4 * SLOW)  # 31 models counted
    faults, figures = {}, 0
    for tab in ["architecture", "roadmap", "lessons", "blocks"]:
        page.goto(f"{app_url}?tab={tab}")
        expect(page.locator(".js-plotly-plot:visible").first).to_be_visible(timeout=SLOW)  # the tab has drawn
        wait_until_settled(page)
        figures += page.locator(".js-plotly-plot .gtitle").count()
        found = page.evaluate(FIGURES_AND_FIELDS) + (page.evaluate(STICKING_OUT) if screen == "phone" else [])
        if found:
            faults[tab] = found
        page.screenshot(path=f"/tmp/readable-{screen}-{tab}.png", full_page=True)
    context.close()
    assert figures >= 8  # the checks saw the titled figures of the four tabs
    assert not faults, f"on a {screen} screen: {faults}"


def test_a_tables_csv_holds_its_cells(page, app_url):
    page.goto(f"{app_url}?tab=roadmap&step=width")
    table = page.locator("#roadmap-table table")
    expect(table).to_contain_text("stage", timeout=SLOW)
    with page.expect_download() as download:
        page.locator("#roadmap-table .csv-download").click()
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    # the table the page was sent, cell by cell, from the counts themselves
    expected = [HEADERS] + [[str(cell) for cell in row] for row in table_rows(summarize(step_name("width"), 224))]
    assert rows == expected
    assert download.value.suggested_filename == "roadmap-table.csv"


def test_error_badges_go_with_the_next_change(page, app_url):
    page.goto(f"{app_url}?tab=inside")
    page.locator("#inside-explain").click()  # no image: a message, and an "Error" badge on each output
    expect(page.locator(".toast-body.error")).to_contain_text("Upload an image first", timeout=SLOW)
    badges = page.locator("#inside-overlay span.error, #inside-scores span.error, #inside-explain-info span.error")
    expect(badges.first).to_be_visible(timeout=SLOW)
    page.locator("#inside-method label").last.click()  # the reader changes something
    for i in range(badges.count()):
        expect(badges.nth(i)).to_be_hidden()
