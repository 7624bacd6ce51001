"""Deep links in the page: a link opens its view, the address bar follows what the reader does, and a
button copies the address. The parameters themselves are read and written by `explorer.links`.

Each tab that a link can set returns a `Linked`: its controls by parameter name, and how it draws its
first view. The page's opening event sets the controls from the link and only then draws each tab, so a
tab never draws its default view over the one the link asked for.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from explorer.links import REGIMES, TABS, View, address, read_link
from explorer.roadmap import steps
from explorer.zoo import get_spec, specs_by_family

# The address bar follows the view without adding a history entry per click (Back leaves the page).
FOLLOW = "(query) => { if (query) history.replaceState(history.state, '', query + location.hash); }"
# The selected top-level tab's label: the first selected tab inside the tab set is the top-level one.
SELECTED_TAB = """() => {
  const tab = document.querySelector('#explorer-tabs [role="tab"][aria-selected="true"]');
  return tab ? tab.textContent.trim() : null;
}"""
COPY = """async () => {
  const link = location.href;
  try { await navigator.clipboard.writeText(link); return 'Copied: ' + link; }
  catch (error) { return 'Copy this address: ' + link; }
}"""


@dataclass
class Linked:
    """A tab's part in deep links: `controls` maps parameter names (explorer.links.PARAMETERS) to the
    components they set; `draw(event)` attaches the tab's first drawing to the event that set them."""

    controls: dict[str, gr.components.Component]  # "family" too: the model picker's family
    draw: Callable[[gr.events.Dependency], object]


def link_button() -> None:
    """The "link to this view" button, with a line that shows what was copied."""
    with gr.Row(equal_height=True):
        button = gr.Button("Link to this view", size="sm", variant="secondary", scale=0, elem_id="link-copy")
        copied = gr.Markdown(elem_id="link-copied")
    button.click(None, None, copied, js=COPY)


def _open(view: View, saved: int) -> tuple:
    """The values a link gives the controls (gr.skip() where it asks nothing)."""
    keep = gr.skip()
    tabs, label = (gr.Tabs(selected=view.tab), TABS[view.tab]) if view.tab else (keep, keep)
    if view.model:
        spec = get_spec(view.model)
        family = spec.family
        model = gr.update(choices=[(s.label, s.name) for s in specs_by_family()[family]], value=view.model)
        size = view.size or spec.input_size
    else:
        family, model, size = keep, keep, view.size or keep
    overlay = keep if view.overlay is None else view.overlay
    regime = view.regime or keep
    step = keep if view.step is None else gr.update(value=view.step, maximum=len(steps(view.regime or REGIMES[0])))
    lesson = view.lesson - 1 if view.lesson else saved
    stage = view.stage or keep
    return tabs, label, family, model, size, overlay, regime, step, lesson, lesson, stage


def wire(demo: gr.Blocks, tabs: gr.Tabs, saved: gr.BrowserState, views: list[Linked]) -> None:
    """Open the link the page was loaded with, then keep the address bar on the view shown."""
    controls = {key: component for view in views for key, component in view.controls.items()}
    order = ["model", "size", "overlay", "regime", "step", "lesson"]
    tab_label = gr.Textbox(next(iter(TABS.values())), visible=False)  # the tab shown: the first at the start
    query = gr.Textbox(visible=False)

    def open_link(saved_lesson, request: gr.Request):
        view = read_link(dict(request.query_params))
        for sentence in view.ignored:
            gr.Warning(f"This link asked for something the explorer does not have. {sentence}")
        index = saved_lesson if isinstance(saved_lesson, int) else 0
        return _open(view, index)

    outputs = [tabs, tab_label, controls["family"], *[controls[key] for key in order], saved, controls["stage"]]
    opened = demo.load(open_link, saved, outputs)
    for view in views:
        view.draw(opened)

    def current(label, model, size, overlay, regime, step, lesson, stage) -> str:
        tab = {text: key for key, text in TABS.items()}.get(label)
        return address(View(tab=tab, model=model, size=_number(size), overlay=overlay or None, regime=regime,
                            step=_number(step), lesson=_number(lesson, 1), stage=_number(stage)))

    state = [tab_label, *[controls[key] for key in order], controls["stage"]]
    tabs.select(_label, None, tab_label, queue=False)
    tabs.change(None, None, tab_label, js=SELECTED_TAB)  # also when a button opened another tab
    # queued one at a time, so the address written last is the one of the latest change
    gr.on([component.change for component in state], current, state, query, show_progress="hidden",
          trigger_mode="always_last", concurrency_limit=1, concurrency_id="address")
    query.change(None, query, None, js=FOLLOW)


def _label(event: gr.SelectData) -> str:
    return event.value  # a tab's select event carries its label


def _number(value, offset: int = 0) -> int | None:
    try:
        return int(value) + offset
    except (TypeError, ValueError):
        return None
