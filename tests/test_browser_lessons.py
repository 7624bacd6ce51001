"""The Lessons and Blocks tabs in headless Chromium: every lesson, every control, and a reload."""
from __future__ import annotations

import time

from playwright.sync_api import expect

from explorer.lessons import LESSONS_DIR, lessons
from tests.test_browser import ERROR_TOAST

SLOW = 60_000  # ms: the first drawing of a panel counts its models
# ms: the kernel lesson measures five receptive fields the first time; the session's own cache folder
# starts empty, and on a busy 2-core machine the measurement takes minutes
FIRST_ERF = 600_000
DRAWING = ".js-plotly-plot, table:not(.lesson-text table)"  # a panel's figure or table (not a table of the text)


def first_line(lesson) -> str:
    """The first line of a lesson's text, as the page shows it."""
    return (LESSONS_DIR / lesson.file).read_text().splitlines()[0].lstrip("# ")


def use_every_control(page, panel) -> int:
    """Move each radio group to its last choice and each slider to its maximum; wait for the panel to
    redraw after each. Returns how many controls were used."""
    used = 0
    groups = panel.locator(".block:has(> div input[type=radio]), fieldset:has(input[type=radio])")
    for i in range(groups.count()):
        labels = groups.nth(i).locator("label:has(input[type=radio])")
        if labels.count() < 2:
            continue
        before = panel.inner_text()
        labels.last.click()
        expect(panel).not_to_have_text(before, timeout=SLOW)
        used += 1
    sliders = panel.locator("input[type=number]")
    for i in range(sliders.count()):
        slider = sliders.nth(i)
        before = panel.inner_text()
        slider.fill(slider.get_attribute("max"))
        slider.press("Enter")
        expect(panel).not_to_have_text(before, timeout=SLOW)
        used += 1
    return used


def test_walk_every_lesson_use_every_control_and_come_back_after_a_reload(page):
    count = len(lessons())
    page.get_by_role("tab", name="Lessons").click()
    heading = page.locator("#lesson-heading")
    expect(heading).to_contain_text(f"1 / {count}", timeout=SLOW)
    start, controls = time.monotonic(), 0
    for number, lesson in enumerate(lessons()):
        expect(heading).to_contain_text(f"{number + 1} / {count}", timeout=SLOW)
        expect(heading).to_contain_text(lesson.title)
        panel = page.locator(f"#lesson-panel-{lesson.id}")
        expect(panel).to_be_visible()
        first_draw = FIRST_ERF if lesson.panel == "kernel" else SLOW
        drawing = panel.locator(DRAWING)
        expect(drawing.first).to_be_visible(timeout=first_draw)
        body = page.locator(f"#lesson-text-{lesson.id}")
        expect(body).to_be_visible()
        expect(body).to_contain_text(first_line(lesson), timeout=SLOW)  # its own text has come
        expect(body).not_to_contain_text("{{")  # every number was filled in
        for other in lessons():  # the only lesson shown
            if other is not lesson:
                expect(page.locator(f"#lesson-panel-{other.id}")).to_be_hidden()
        controls += use_every_control(page, panel)
        toasts = page.locator(ERROR_TOAST)
        assert toasts.count() == 0, f"lesson {number}: {toasts.all_inner_texts()}"
        page.screenshot(path=f"/tmp/lesson-{number}.png", full_page=True)
        if number < count - 1:
            page.locator("#lesson-next").click()
    print(f"walked {count} lessons and used {controls} controls in {time.monotonic() - start:.1f} s")
    assert controls >= count
    expect(page.locator(ERROR_TOAST)).to_have_count(0)

    page.reload()
    page.get_by_role("tab", name="Lessons").click()
    expect(heading).to_contain_text(f"{count} / {count}", timeout=SLOW)  # the position survived
    page.locator("#lesson-prev").click()
    expect(heading).to_contain_text(f"{count - 1} / {count}", timeout=SLOW)


def test_once_the_tab_is_open_every_lesson_is_in_the_page_at_the_width_it_is_shown(page):
    """The open tab draws every lesson ahead, hidden: with every request to the server held back from
    then on, Next still shows each lesson's own text and figures, and each figure fills its box (a
    figure drawn in a box with no width would keep plotly's 700 px default)."""
    count = len(lessons())
    page.get_by_role("tab", name="Lessons").click()
    heading = page.locator("#lesson-heading")
    expect(heading).to_contain_text(f"1 / {count}", timeout=SLOW)
    drawings = [page.locator(f"#lesson-panel-{lesson.id}").locator(DRAWING).first for lesson in lessons()]
    for lesson, drawing in zip(lessons(), drawings):
        expect(drawing).to_be_attached(timeout=FIRST_ERF if lesson.panel == "kernel" else SLOW)
        expect(page.locator(f"#lesson-text-{lesson.id}")).to_contain_text(first_line(lesson), timeout=SLOW)
    page.route("**/gradio_api/**", lambda route: None)  # held: never answered
    for number, (lesson, drawing) in enumerate(zip(lessons(), drawings)):
        if number:
            page.locator("#lesson-next").click()
        expect(heading).to_contain_text(f"{number + 1} / {count}: {lesson.title}")
        expect(drawing).to_be_visible()
        expect(page.locator(f"#lesson-text-{lesson.id}")).to_be_visible()
        for plot in page.locator(f"#lesson-panel-{lesson.id} .js-plotly-plot").all():
            box = plot.locator("xpath=ancestor::div[contains(@class, 'block')][1]").bounding_box()["width"]
            drawn = plot.locator(".main-svg").first.bounding_box()["width"]
            assert abs(drawn - box) <= 4, f"{lesson.id}: a figure {drawn:.0f} px wide in a {box:.0f} px box"


def test_a_lesson_opens_the_roadmap_at_its_step(page):
    from explorer.roadmap import steps

    number, lesson = next((n, l) for n, l in enumerate(lessons()) if "roadmap" in l.tabs and l.steps)
    step = next(s for s in steps() if s.id == lesson.steps[0])
    page.get_by_role("tab", name="Lessons").click()
    heading = page.locator("#lesson-heading")
    expect(heading).to_contain_text(f"1 / {len(lessons())}", timeout=SLOW)
    for n in range(number):
        page.locator("#lesson-next").click()
        expect(heading).to_contain_text(f"{n + 2} / {len(lessons())}", timeout=SLOW)
    page.locator(f"#lesson-panel-{lesson.id}").get_by_role("button", name="Open the Roadmap tab").click()
    expect(page.locator("#roadmap-text")).to_contain_text(step.title, timeout=SLOW)


def test_the_blocks_tab_highlights_what_differs_from_convnext(page):
    page.get_by_role("tab", name="Blocks").click()
    table = page.locator("#blocks-table")
    expect(table).to_contain_text("Swin block", timeout=SLOW)
    expect(table.locator("mark").first).to_be_visible()
    expect(table).to_contain_text("1 x 96 x 56 x 56")
    page.locator("#blocks-stage label").last.click()
    expect(table).to_contain_text("1 x 768 x 7 x 7", timeout=SLOW)
    expect(page.locator("#blocks-convnext .js-plotly-plot")).to_be_visible()
    expect(page.locator(ERROR_TOAST)).to_have_count(0)
    page.screenshot(path="/tmp/blocks.png", full_page=True)


def test_fast_clicks_on_next_are_not_lost(page):
    """Four clicks faster than the server answers land four lessons on (the number counts in the page)."""
    count = len(lessons())
    page.get_by_role("tab", name="Lessons").click()
    heading = page.locator("#lesson-heading")
    expect(heading).to_contain_text(f"1 / {count}", timeout=SLOW)
    for _ in range(4):
        page.locator("#lesson-next").click()
    expect(heading).to_contain_text(f"5 / {count}", timeout=SLOW)
    expect(heading).to_contain_text(lessons()[4].title)
    expect(page.locator(ERROR_TOAST)).to_have_count(0)
