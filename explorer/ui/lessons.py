"""Lessons tab: the paper's argument one lesson at a time, each with a live part to try.

The texts and their index live in `lessons/` (see `explorer.lessons`). Every lesson has one panel
here: a few controls and the figures they drive. The page's opening draws the lesson the reader is
at; opening the tab draws the others, hidden, so that Previous and Next are done in the browser. Where
the reader is survives a reload (browser storage).
"""
from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from explorer.lesson_panels import (BEYOND, FAMILY_SIZES, MACRO_STEPS, METRICS, MICRO_STEPS, PRETRAINING, WIDTHS,
                                    KERNELS, family_models, show_beyond, show_family, show_inverted,
                                    show_macro, show_micro, show_next, show_results, show_width)
from explorer.lesson_panels import show_inside as inside_panel
from explorer.lesson_panels import show_kernel as kernel_panel
from explorer.lessons import lessons, text
from explorer.roadmap import get_step, steps
from explorer.ui.architecture import ISOTROPIC_SIZES
from explorer.ui.common import friendly
from explorer.ui.links import SELECTED_TAB, Linked
from explorer.zoo import get_spec

STORAGE_KEY = "convnext-explorer-lesson"
TAB_LABELS = {"architecture": "Architecture", "roadmap": "Roadmap", "blocks": "Blocks", "predict": "Predict",
              "inside": "Look inside", "bench": "Benchmark", "erf": "Receptive field", "counting": "Counting",
              "collapse": "Feature collapse"}
# A panel's redraws run one at a time, in the order asked: a drawing started by Next must not land
# after (and overwrite) the one for a choice the reader made while it was running.
PANEL_EVENTS = {"concurrency_id": "lesson-panel", "concurrency_limit": 1}
COMING = "*This lesson is on its way from the server...*"  # a lesson's text until its own comes
LESSONS_SHOWN = f"() => ({SELECTED_TAB})() === 'Lessons'"  # whether the page shows the Lessons tab


@dataclass
class Panel:
    """A lesson's live part: `show(*inputs)` gives the values of `outputs`."""

    inputs: list
    outputs: list
    show: Callable


def show_kernel(size: int, progress=gr.Progress()):
    """The kernel panel, with a progress bar while the receptive fields are measured the first time."""
    return kernel_panel(size, progress)


def show_inside(stage: int, progress=gr.Progress()):
    """The Look inside panel, with a progress bar while its model loads (3 s the first time)."""
    progress(0, desc="Loading the model")
    return inside_panel(stage)


# --- the panels ---------------------------------------------------------------------------------

def _step_radio(step_ids: tuple[str, ...], label: str) -> gr.Radio:
    return gr.Radio([(get_step(s).title, s) for s in step_ids], value=step_ids[0], label=label)


def _results_panel() -> Panel:
    pretraining = gr.Radio(list(zip(("ImageNet-1K", "ImageNet-22K pre-training"), PRETRAINING)), value="in1k",
                           label="Training data")
    with gr.Row():
        results, roadmap = gr.Plot(show_label=False), gr.Plot(show_label=False)
    return Panel([pretraining], [results, roadmap], show_results)


def _macro_panel() -> Panel:
    with gr.Row():
        step = _step_radio(MACRO_STEPS, "Step")
        metric = gr.Radio(list(zip(("GFLOPs", "parameters"), METRICS)), value="gflops", label="Per stage")
    return Panel([step, metric], [gr.Markdown(), gr.Plot(show_label=False)], show_macro)


def _resnextify_panel() -> Panel:
    width = gr.Slider(WIDTHS[0], WIDTHS[-1], value=96, step=16, label="Width C of stage 1 (depthwise network)")
    return Panel([width], [gr.Markdown(), gr.Plot(show_label=False)], show_width)


def _stage_panel(show: Callable) -> Panel:
    """A stage slider, a line of text and two figures side by side."""
    stage = gr.Slider(1, 4, value=1, step=1, label="Stage")
    line = gr.Markdown()
    with gr.Row():
        left, right = gr.Plot(show_label=False), gr.Plot(show_label=False)
    return Panel([stage], [line, left, right], show)


def _kernel_panel() -> Panel:
    size = gr.Slider(min(KERNELS), max(KERNELS), value=7, step=2, label="Depthwise kernel size")
    outputs = [gr.Markdown(), gr.Plot(show_label=False), gr.Markdown(elem_id="lesson-erf-info"),
               gr.Plot(show_label=False, elem_id="lesson-erf-grid"), gr.Plot(show_label=False),
               gr.Markdown(elem_id="lesson-erf-table")]
    return Panel([size], outputs, show_kernel)


def _micro_panel() -> Panel:
    step = _step_radio(MICRO_STEPS, "Step")
    return Panel([step], [gr.Markdown(), gr.Plot(show_label=False)], show_micro)


def _family_panel() -> Panel:
    with gr.Row():
        convnexts = family_models()
        model = gr.Radio([(get_spec(n).label, n) for n in convnexts], value=convnexts[0], label="Model")
        size = gr.Radio(list(FAMILY_SIZES), value=FAMILY_SIZES[0], label="Input size")
    return Panel([model, size], [gr.Markdown(), gr.HTML()], show_family)


def _next_panel() -> Panel:
    size = gr.Radio(ISOTROPIC_SIZES, value="S", label="Size")
    text = gr.Markdown()
    with gr.Row():
        compute, block = gr.Plot(show_label=False, scale=2), gr.Plot(show_label=False, scale=1)
    return Panel([size], [text, compute, block], show_next)


def _beyond_panel() -> Panel:
    table = gr.Radio([(label, key) for key, (label, _chart) in BEYOND.items()], value="coco", label="The paper's table")
    return Panel([table], [gr.Plot(show_label=False)], show_beyond)


PANELS: dict[str, Callable[[], Panel]] = {
    "results": _results_panel,
    "macro": _macro_panel,
    "resnextify": _resnextify_panel,
    "inverted": lambda: _stage_panel(show_inverted),
    "kernel": _kernel_panel,
    "micro": _micro_panel,
    "family": _family_panel,
    "next": _next_panel,
    "beyond": _beyond_panel,
    "inside": lambda: _stage_panel(show_inside),
}


# --- the tab ------------------------------------------------------------------------------------

def _clamp(index) -> int:
    try:
        return min(max(int(index), 0), len(lessons()) - 1)
    except (TypeError, ValueError):
        return 0


def lesson_text(index) -> list:
    """Lesson `index`'s text for its column; the other columns left as they are."""
    shown = _clamp(index)
    return [text(number) if number == shown else gr.skip() for number in range(len(lessons()))]


def show_lesson_js() -> str:
    """The browser's part of showing lesson `i` (from 0): its column (by a style rule, which also holds
    for a tab that is not drawn yet) and its heading, with no trip to the server."""
    ids = json.dumps([lesson.id for lesson in lessons()])
    titles = json.dumps([lesson.title for lesson in lessons()])
    return f"""(i) => {{
  const ids = {ids}, titles = {titles};
  const n = Math.min(Math.max(Number(i) || 0, 0), ids.length - 1);
  let rule = document.getElementById("lesson-shown");
  if (!rule) {{ rule = document.createElement("style"); rule.id = "lesson-shown"; document.head.append(rule); }}
  rule.textContent = `#lesson-panel-${{ids[n]}} {{
    position: static !important; height: auto; overflow: visible; visibility: visible;
  }}`;
  return `**Lesson ${{n + 1}} / ${{ids.length}}**: ${{titles[n]}}`;
}}"""


def _reports_progress(show: Callable) -> bool:
    """Whether a panel's drawing reports its progress: it may take long (the kernel panel measures)."""
    return "progress" in inspect.signature(show).parameters


def _call(show: Callable, values: list, progress) -> list:
    """A panel's outputs as a list (one output comes back bare); a long panel shows a progress bar."""
    drawn = show(*values, progress=progress) if _reports_progress(show) else show(*values)
    return list(drawn) if isinstance(drawn, (tuple, list)) else [drawn]


def lesson_memory() -> gr.BrowserState:
    """Where the reader is, kept in the browser. Create it outside the tabs: a tab's components are
    mounted only when the tab is first opened, too late for the page's load event to read them."""
    # a fixed key: the lesson number is no secret, and it should outlive a restart of the server
    return gr.BrowserState(0, storage_key=STORAGE_KEY, secret=STORAGE_KEY)


def build_lessons_tab(saved: gr.BrowserState, tabs: gr.Tabs, roadmap_position: gr.Slider) -> Linked:
    with gr.Tab("Lessons", id="lessons") as tab:
        index = gr.Number(0, visible=False, precision=0)
        drawn = gr.State([])  # the lessons whose panels the page holds: the drawing of the rest skips them
        reading = gr.Checkbox(False, visible=False)  # whether the Lessons tab is the one shown (set in the page)
        with gr.Row():
            back = gr.Button("< Previous", elem_id="lesson-prev", scale=1)
            heading = gr.Markdown(elem_id="lesson-heading")
            forward = gr.Button("Next >", elem_id="lesson-next", scale=1)
        bodies, panels = [], []
        for lesson in lessons():
            # every lesson's column is in the page; page.css hides them and show_lesson_js shows one
            with gr.Column(elem_id=f"lesson-panel-{lesson.id}"):
                bodies.append(gr.Markdown(COMING, elem_id=f"lesson-text-{lesson.id}", elem_classes="lesson-text"))
                gr.Markdown(f"*Below:* {lesson.shows}", elem_classes="lesson-shows")
                panel = PANELS[lesson.panel]()
                with gr.Row():
                    for other in lesson.tabs:
                        link = gr.Button(f"Open the {TAB_LABELS[other]} tab", size="sm", variant="secondary")
                        _link(link, other, lesson.steps, tabs, roadmap_position)
            panel.show = friendly(panel.show)
            for control in panel.inputs:
                control.change(panel.show, panel.inputs, panel.outputs, trigger_mode="always_last", **PANEL_EVENTS)
            panels.append(panel)

    values = [control for panel in panels for control in panel.inputs]
    outputs = [output for panel in panels for output in panel.outputs]

    def draw(among: list[int], wanted: set[int], settings: tuple, progress) -> list:
        """The outputs of the lessons `among` (`settings`: their controls' values, in that order): those
        in `wanted` drawn, the others left as they are."""
        parts, at = [], 0
        for number in among:
            panel = panels[number]
            chosen, at = settings[at:at + len(panel.inputs)], at + len(panel.inputs)
            parts += _call(panel.show, chosen, progress) if number in wanted else [gr.skip()] * len(panel.outputs)
        return parts

    every = list(range(len(panels)))

    def show_panel(number, held: list, *settings, progress=gr.Progress()) -> list:
        """The shown lesson's panel (one trip to the server), and that the page holds it too."""
        shown = _clamp(number)
        return [sorted({*held, shown}), *draw(every, {shown}, settings, progress)]

    def drawing_ahead(long: bool) -> dict:
        """While the Lessons tab is open, the event that draws the texts and panels of the lessons the
        page does not hold yet, so that stepping to one is done in the browser (page.css lays hidden
        panels out at full width): the quick panels with no progress shown, then those that report
        theirs (the inside panel loads a model; on a new server the kernel panel measures for minutes)."""
        among = [n for n in every if _reports_progress(panels[n].show) == long]

        def show_the_rest(reading: bool, held: list, *settings, progress=gr.Progress()) -> list:
            wanted = set(among) - set(held) if reading else set()
            texts = [text(n) if n in wanted else gr.skip() for n in among]
            return [sorted({*held, *wanted}), *texts, *draw(among, wanted, settings, progress)]
        return dict(fn=show_the_rest, inputs=[reading, drawn, *[c for n in among for c in panels[n].inputs]],
                    outputs=[drawn, *[bodies[n] for n in among], *[o for n in among for o in panels[n].outputs]],
                    show_progress="full" if long else "hidden", **PANEL_EVENTS)

    ahead = [drawing_ahead(long=False), drawing_ahead(long=True)]

    def draw_ahead(event) -> None:
        event.then(**ahead[0]).then(**ahead[1])

    draw_ahead(tab.select(lambda: True, None, reading, queue=False))

    def open_lesson(opened) -> None:
        """The page's opening has set the lesson (the link's, or the saved one): its column and heading
        in the browser, then its text and its panel, asked for at once (the text does not wait for a
        panel that measures); on a link to the Lessons tab, the rest follow."""
        shown = opened.then(None, index, heading, js=show_lesson_js())
        shown.then(friendly(lesson_text), index, bodies, queue=False)
        drawing = shown.then(show_panel, [index, drawn, *values], [drawn, *outputs], **PANEL_EVENTS)
        draw_ahead(drawing.then(None, None, reading, js=LESSONS_SHOWN))

    # Stepping is done in the browser: it counts there (a click sent before the last one was done does
    # not read the old number), remembers the number there, and shows a column the page holds.
    last = len(lessons()) - 1
    for button, move in ((back, -1), (forward, 1)):
        button.click(None, index, [index, saved],
                     js=f"(i) => {{ const n = Math.min(Math.max(Number(i) + {move}, 0), {last}); return [n, n]; }}"
                     ).then(None, index, heading, js=show_lesson_js())
    return Linked({"lesson": index}, open_lesson)


def _link(button: gr.Button, tab: str, lesson_steps: tuple[str, ...], tabs: gr.Tabs, position: gr.Slider) -> None:
    """A button that opens a full tab; the Roadmap tab opens at the lesson's first step."""
    if tab == "roadmap" and lesson_steps:
        number = [s.id for s in steps()].index(lesson_steps[0]) + 1
        button.click(lambda: (gr.Tabs(selected=tab), number), None, [tabs, position], queue=False)
    else:
        button.click(lambda: gr.Tabs(selected=tab), None, tabs, queue=False)
